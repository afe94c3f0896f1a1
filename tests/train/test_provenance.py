"""Provenance of a run: code version (git), library versions, machine."""
import json
import os.path as osp
import subprocess

import torch_geometric_remul.train.provenance as prov
from tests.train._helpers import make_config, quiet
from torch_geometric_remul import __version__
from torch_geometric_remul.train import (
    code_version,
    machine,
    same_code,
    train,
)
from torch_geometric_remul.train.provenance import provenance

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _in_git_checkout() -> bool:
    try:
        return subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT,
                              capture_output=True).returncode == 0
    except OSError:
        return False


def test_code_version_of_this_checkout():
    version = code_version()
    if not _in_git_checkout():
        assert version['commit'] is None
        return
    head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()
    assert version['commit'] == head
    assert isinstance(version['dirty'], bool)
    assert isinstance(version['package_dirty'], bool)
    assert (version['package_diff_sha256'] is None) == \
        (not version['package_dirty'])
    tree = subprocess.run(['git', 'rev-parse', 'HEAD:torch_geometric_remul'],
                          cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    assert version['package_tree'] == tree and len(tree) == 40


def test_no_git_gives_none_and_never_fails(monkeypatch, tmp_path):
    def missing(*args, **kwargs):
        raise FileNotFoundError(2, 'No such file or directory', 'git')

    monkeypatch.setattr(subprocess, 'run', missing)
    assert code_version() == {'commit': None, 'dirty': None,
                              'package_dirty': None,
                              'package_diff_sha256': None,
                              'package_tree': None}
    monkeypatch.undo()

    def slow(*args, **kwargs):
        raise subprocess.TimeoutExpired('git', prov.GIT_TIMEOUT)

    monkeypatch.setattr(subprocess, 'run', slow)
    assert code_version()['commit'] is None
    monkeypatch.undo()
    # a directory outside any git checkout
    assert code_version(str(tmp_path))['commit'] is None


def test_same_code():
    a = {'commit': 'a' * 40, 'package_dirty': False,
         'package_diff_sha256': None}
    assert same_code(a, dict(a))
    assert not same_code(a, dict(a, commit='b' * 40))
    edited = dict(a, package_dirty=True, package_diff_sha256='1' * 64)
    assert same_code(edited, dict(edited))
    assert not same_code(edited, dict(edited, package_diff_sha256='2' * 64))
    assert not same_code(a, edited)
    unknown = dict(a, commit=None)
    assert not same_code(unknown, dict(unknown))
    assert not same_code(None, a)
    assert not same_code(a, unknown)


def test_same_code_follows_the_package_sources_across_commits():
    # a later commit that changes only docs keeps the package's tree
    a = {'commit': 'a' * 40, 'package_dirty': False,
         'package_diff_sha256': None, 'package_tree': 't' * 40}
    assert same_code(a, dict(a, commit='b' * 40))
    assert not same_code(a, dict(a, commit='b' * 40, package_tree='u' * 40))
    assert not same_code(a, dict(a, package_dirty=True,
                                 package_diff_sha256='1' * 64))
    # a record without the tree (older runs) falls back to the commit
    old = {k: v for k, v in a.items() if k != 'package_tree'}
    assert same_code(old, a) and not same_code(old, dict(a, commit='b' * 40))


def test_machine_and_versions():
    info = machine()
    assert info['cpu_count'] >= 1 and info['cpu_usable'] >= 1
    assert set(info) >= {'cpu', 'gpu', 'platform', 'python'}
    versions = provenance()['versions']
    assert versions['torch_geometric_remul'] == __version__


def test_run_records_provenance(finished):
    results = json.load(open(finished / 'results.json'))
    record = results['provenance']
    assert set(record) == {'code', 'versions', 'machine', 'code_versions'}
    assert record['code_versions'] == [record['code']]
    assert record['versions']['torch_geometric_remul'] == __version__
    assert record['machine']['cpu_count'] >= 1
    assert results['selection'] == 'best_val' and results['best_epoch'] == 1


def test_resume_on_other_code_is_recorded(tmp_path, data_root, monkeypatch):
    import torch_geometric_remul.train.loop as loop
    from torch_geometric_remul.train import TrainConfig
    versions = iter([{'commit': 'a' * 40}, {'commit': 'b' * 40}])
    monkeypatch.setattr(loop, 'code_version', lambda: next(versions))
    run = tmp_path / 'run'
    train(make_config(run, data_root, epochs=1), progress=False, log=quiet)
    train(TrainConfig(epochs=2), resume_from=str(run), progress=False,
          log=quiet)
    record = json.load(open(run / 'results.json'))['provenance']
    assert [v['commit'] for v in record['code_versions']] == ['a' * 40,
                                                              'b' * 40]
    assert record['code'] == {'commit': 'b' * 40}


def _sh(path, body):
    path.write_text('#!/bin/sh\n' + body)
    path.chmod(0o755)
    return str(path)


def _repo(tmp_path, track_package):
    """A repository holding a package folder ``pkg`` (its __init__.py
    tracked or not) whose .git/config, written after the commit, names
    commands at every place git could run one; each appends to PWNED."""
    repo, marker = tmp_path / 'repo', tmp_path / 'PWNED'
    pkg = repo / 'pkg'
    pkg.mkdir(parents=True)
    (pkg / '__init__.py').write_text('x = 1\n')
    (repo / 'user.txt').write_text('the user\'s own file\n')

    def git(*args):
        subprocess.run(['git', '-c', 'user.name=t', '-c', 'user.email=t@t',
                        '-c', 'init.defaultBranch=main', *args], cwd=repo,
                       check=True, capture_output=True)

    git('init', '-q')
    git('add', 'user.txt', *(['pkg/__init__.py'] if track_package else []))
    git('commit', '-q', '-m', 'init')
    evil = _sh(tmp_path / 'evil', f'echo "$0 $*" >> {marker}\ncat\n')
    hooks = repo / '.git' / 'hooks'
    for hook in ('post-index-change', 'reference-transaction',
                 'post-checkout'):
        _sh(hooks / hook, f'echo hook {hook} >> {marker}\n')
    with open(repo / '.git' / 'config', 'a') as f:
        f.write(f'[core]\n\tfsmonitor = {evil}\n\tpager = {evil}\n'
                f'[diff]\n\texternal = {evil}\n'
                f'[diff "evil"]\n\ttextconv = {evil}\n\tcommand = {evil}\n'
                f'[filter "evil"]\n\tclean = {evil}\n\tsmudge = {evil}\n'
                f'[filter "evil2"]\n\tprocess = {evil}\n\trequired = true\n'
                f'[pager]\n\tstatus = {evil}\n\tdiff = {evil}\n')
    (repo / '.gitattributes').write_text('* filter=evil diff=evil\n'
                                         '*.py filter=evil2\n')
    # uncommitted changes: git status and diff read (and would filter) them
    (pkg / '__init__.py').write_text('x = 2\n')
    (pkg / 'new.py').write_text('y = 1\n')
    return repo, pkg, marker


def _head(repo):
    return subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=repo,
                          capture_output=True, text=True).stdout.strip()


def test_git_runs_no_command_of_the_repository_config(tmp_path):
    repo, pkg, marker = _repo(tmp_path, track_package=True)
    version = code_version(str(pkg))
    assert not marker.exists(), marker.read_text()
    assert version['commit'] == _head(repo)
    assert version['dirty'] and version['package_dirty']
    assert len(version['package_diff_sha256']) == 64


def test_untracked_package_is_not_given_the_repositorys_commit(tmp_path):
    # e.g. a wheel installed in a virtual environment inside the user's
    # repository: the user's commit is not the package's version
    repo, pkg, marker = _repo(tmp_path, track_package=False)
    assert _head(repo)
    assert code_version(str(pkg)) == {
        'commit': None, 'dirty': None, 'package_dirty': None,
        'package_diff_sha256': None, 'package_tree': None}
    assert not marker.exists(), marker.read_text()
