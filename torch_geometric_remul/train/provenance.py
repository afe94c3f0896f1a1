r"""Where a run's numbers come from: the code version (git commit, whether
the package sources differ from it), the library versions and the machine.

Every run records :func:`provenance` in its ``results.json`` (key
``"provenance"``) and the :func:`code_version` of every invocation that
trained it in its checkpoint, so that a benchmark reusing finished runs can
tell a current run from a stale one. Nothing here ever fails a run: when
``git`` is missing, the package is not in a git checkout, or a command does
not answer within a few seconds, the git fields are ``None``.

Git reads the repository's own configuration, which can name commands to
run (``core.fsmonitor``, hooks, a pager, filters, external diff drivers). So
git is asked about a repository only when that repository tracks the
package's own sources (``<package>/__init__.py``; a wheel installed in a
virtual environment inside some other repository is not tracked there, and
its code version is unknown rather than that repository's commit), and every
command runs with those commands switched off (:func:`_git`).
"""
import hashlib
import os
import os.path as osp
import platform
import subprocess
from typing import Any, Dict, List, Optional

import torch

#: Seconds any one ``git`` command may take before it is given up.
GIT_TIMEOUT = 5.0

_PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


#: Options that keep git from running any command named by a
#: repository's configuration: no file-system monitor, no hooks, no pager,
#: no external diff, no submodule recursion.
_GIT_SAFE = ('--no-pager', '-c', 'core.fsmonitor=', '-c',
             'core.hooksPath=/dev/null', '-c', 'core.pager=cat', '-c',
             'diff.external=', '-c', 'submodule.recurse=false', '-c',
             'core.untrackedCache=false')
#: Filter-driver keys blanked for every driver the configuration names
#: (an empty command disables it; ``required`` is set to false, so that the
#: file is read as it is).
_FILTER_KEYS = ('clean', 'smudge', 'process')


def _run_git(args: List[str], cwd: str) -> Optional[bytes]:
    env = dict(os.environ, GIT_OPTIONAL_LOCKS='0', LC_ALL='C',
               GIT_TERMINAL_PROMPT='0', GIT_PAGER='cat', PAGER='cat')
    for name in ('GIT_EXTERNAL_DIFF', 'GIT_DIR', 'GIT_WORK_TREE',
                 'GIT_INDEX_FILE'):
        env.pop(name, None)
    try:
        res = subprocess.run(['git', *_GIT_SAFE, *args], cwd=cwd,
                             stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=GIT_TIMEOUT, env=env)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout if res.returncode == 0 else None


def _filter_overrides(cwd: str) -> List[str]:
    """``-c filter.<name>.<key>=`` for every filter driver the
    configuration defines (reading the configuration runs nothing)."""
    out = _run_git(['config', '--null', '--name-only', '--get-regexp',
                    r'^filter\.'], cwd)
    if out is None:  # exit 1: no filter defined (or no git at all)
        return []
    names = set()
    for key in out.decode(errors='replace').split('\0'):
        if key.startswith('filter.') and key.count('.') >= 2:
            names.add(key[len('filter.'):key.rindex('.')])
    return [arg for name in sorted(names)
            for setting in (*(f'filter.{name}.{k}=' for k in _FILTER_KEYS),
                            f'filter.{name}.required=false')
            for arg in ('-c', setting)]


def _git(args: List[str], cwd: str,
         filters: Optional[List[str]] = None) -> Optional[bytes]:
    r"""The output of ``git <args>`` run in ``cwd``, or ``None`` when git
    is missing, fails or does not answer in time. Git runs without any
    command a repository's configuration could name: no file-system
    monitor, hooks, pager or external diff, ``GIT_OPTIONAL_LOCKS=0``, and
    ``filters`` (from :func:`_filter_overrides`) blanking its filter
    drivers; ``diff`` runs with ``--no-ext-diff --no-textconv``."""
    if args and args[0] == 'diff':
        args = ['diff', '--no-ext-diff', '--no-textconv', *args[1:]]
    return _run_git([*(filters or []), *args], cwd)


def _tracks_package(package_dir: str) -> bool:
    """Whether the repository around ``package_dir`` tracks the package's
    own ``__init__.py`` (the package is that repository's source, not a copy
    installed somewhere inside it)."""
    init = osp.join(package_dir, '__init__.py')
    if not osp.isfile(init):
        return False
    return _git(['ls-files', '--error-unmatch', '--', '__init__.py'],
                package_dir) is not None


def code_version(package_dir: Optional[str] = None) -> Dict[str, Any]:
    r"""The version of the code a run uses: ``{'commit', 'dirty',
    'package_dirty', 'package_diff_sha256', 'package_tree'}``.

    * ``commit``: the git commit (40 hex digits) of the checkout the
      package lives in, ``None`` when it is not in a git checkout, when
      that checkout does not track the package's sources (e.g. a wheel
      installed in a virtual environment inside another repository) or
      git is unavailable;
    * ``dirty``: whether any tracked file of the work tree differs from
      the commit, or untracked files exist (``None`` without git);
    * ``package_dirty``: the same for the package's own sources (the code
      that decides a run's numbers);
    * ``package_diff_sha256``: a SHA-256 of the package's uncommitted
      changes (the diff against the commit and the untracked files'
      contents), ``None`` when it is clean: two runs on the same commit
      with the same uncommitted edits get the same value;
    * ``package_tree``: the git object name of the package's directory in
      the commit (its committed sources): commits that change only
      documentation, tests or benchmarks keep it, so runs of the same
      package code are recognised across them (``None`` without git).

    Args:
        package_dir (str, optional): The package directory (default: this
            package's).

    Example:

        >>> version = code_version()
        >>> sorted(version)  # doctest: +NORMALIZE_WHITESPACE
        ['commit', 'dirty', 'package_diff_sha256', 'package_dirty',
         'package_tree']
        >>> version['commit'] is None or len(version['commit']) == 40
        True
    """
    package_dir = package_dir or _PACKAGE_DIR
    out = {'commit': None, 'dirty': None, 'package_dirty': None,
           'package_diff_sha256': None, 'package_tree': None}
    if not _tracks_package(package_dir):
        return out
    head = _git(['rev-parse', 'HEAD'], package_dir)
    top = _git(['rev-parse', '--show-toplevel'], package_dir)
    if head is None or top is None:
        return out
    filters = _filter_overrides(package_dir)
    out['commit'] = head.decode().strip()
    prefix = _git(['rev-parse', '--show-prefix'], package_dir)
    tree = None if prefix is None else _git(
        ['rev-parse', 'HEAD:' + prefix.decode().strip()], package_dir)
    if tree is not None:
        out['package_tree'] = tree.decode().strip() or None
    status = _git(['status', '--porcelain', '--ignore-submodules=all'],
                  package_dir, filters)
    package = ['--', package_dir]
    own = _git(['status', '--porcelain', '--ignore-submodules=all',
                *package], package_dir, filters)
    if status is None or own is None:
        return out
    out['dirty'] = bool(status.strip())
    out['package_dirty'] = bool(own.strip())
    if out['package_dirty']:
        diff = _git(['diff', 'HEAD', '--binary', *package], package_dir,
                    filters)
        untracked = _git(['ls-files', '--others', '--exclude-standard', '-z',
                          *package], package_dir, filters)
        if diff is not None and untracked is not None:
            digest = hashlib.sha256(diff)
            root = top.decode().strip()
            for name in sorted(n for n in untracked.split(b'\0') if n):
                digest.update(b'\0' + name + b'\0')
                try:
                    with open(osp.join(root, name.decode()), 'rb') as f:
                        digest.update(f.read())
                except OSError:
                    pass
            out['package_diff_sha256'] = digest.hexdigest()
    return out


def _cpu_model() -> Optional[str]:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.lower().startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine() -> Dict[str, Any]:
    r"""A description of this machine: CPU model, logical cores (and those
    this process may use), the GPU's name when CUDA is available, the
    operating system and the Python version.

    Example:

        >>> info = machine()
        >>> info['cpu_count'] >= 1 and 'gpu' in info
        True
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    gpu = None
    if torch.cuda.is_available():
        try:
            gpu = torch.cuda.get_device_name()
        except (RuntimeError, AssertionError):
            gpu = None
    return {'cpu': _cpu_model(), 'cpu_count': os.cpu_count() or 1,
            'cpu_usable': usable, 'torch_threads': torch.get_num_threads(),
            'gpu': gpu, 'platform': platform.platform(),
            'python': platform.python_version()}


def provenance(code: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    r"""Everything a result's reader needs to know where it came from:
    ``{'code', 'versions', 'machine'}`` (:func:`code_version`, the
    versions of this package, PyTorch and PyG, :func:`machine`).

    Args:
        code (dict, optional): A :func:`code_version` taken earlier
            (default: taken now).

    Example:

        >>> sorted(provenance()['versions'])
        ['torch', 'torch_geometric', 'torch_geometric_remul']
    """
    import torch_geometric

    from torch_geometric_remul import __version__
    return {'code': code_version() if code is None else dict(code),
            'versions': {'torch_geometric_remul': __version__,
                         'torch': torch.__version__,
                         'torch_geometric': torch_geometric.__version__},
            'machine': machine()}


def same_code(a: Optional[Dict[str, Any]],
              b: Optional[Dict[str, Any]]) -> bool:
    r"""Whether two :func:`code_version` records name the same package
    code: the same committed package sources (``package_tree``; the same
    commit when either record lacks it) and the same uncommitted package
    changes (none, or the same digest). Unknown versions (``None`` commit)
    never match.

    Example:

        >>> v = {'commit': 'a' * 40, 'package_diff_sha256': None}
        >>> same_code(v, dict(v)), same_code(v, dict(v, commit='b' * 40))
        (True, False)
        >>> same_code(v, dict(v, package_diff_sha256='0f'))
        False
        >>> w = dict(v, package_tree='c' * 40)  # a docs-only commit later:
        >>> same_code(w, dict(w, commit='b' * 40))
        True
        >>> same_code(w, dict(w, package_tree='d' * 40))
        False
    """
    if not a or not b or a.get('commit') is None or b.get('commit') is None:
        return False
    for v in (a, b):
        if v.get('package_dirty') and v.get('package_diff_sha256') is None:
            return False  # edited sources whose digest could not be taken
    if a.get('package_tree') and b.get('package_tree'):
        same_sources = a['package_tree'] == b['package_tree']
    else:
        same_sources = a.get('commit') == b.get('commit')
    return same_sources and (a.get('package_diff_sha256') ==
                             b.get('package_diff_sha256'))


__all__ = ['GIT_TIMEOUT', 'code_version', 'machine', 'provenance',
           'same_code']
