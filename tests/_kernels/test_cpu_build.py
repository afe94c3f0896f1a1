"""How the C kernel is built, cached and loaded: bounded first-call latency,
no orphaned compiler, no partial files, damaged or unwritable caches."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import pytest
import torch

import torch_geometric_remul._kernels as kernels
import torch_geometric_remul.typing as remul_typing
from torch_geometric_remul._kernels import _cpu
from torch_geometric_remul.group import RigidTransform

HAVE_CC = _cpu.compiler() is not None
needs_cc = pytest.mark.skipif(not HAVE_CC, reason='no C compiler ($CC, cc, '
                              'gcc or clang) on this machine')


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A fresh kernel state, a private cache and a private temp folder."""
    cache = tmp_path / 'cache'
    private = tmp_path / 'tmp'
    private.mkdir()
    monkeypatch.setenv('REMUL_CACHE_DIR', str(cache))
    monkeypatch.setattr(tempfile, 'tempdir', str(private))
    monkeypatch.setattr(_cpu, '_STATE', _cpu._State())
    monkeypatch.setattr(remul_typing, 'WITH_CPU_KERNEL', True)
    return cache, private


def _inputs(sizes=(3, 2, 4), dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.long)
    ptr[1:] = torch.tensor(sizes).cumsum(0)
    x = torch.randn(int(ptr[-1]), 3, generator=g, dtype=dtype)
    return x, ptr, RigidTransform.sample(len(sizes), 'SE3', generator=g,
                                         dtype=dtype)


def _assert_native_results(x, ptr, T):
    out = T.apply_points(x, ptr=ptr)
    with remul_typing.force_native():
        ref = T.apply_points(x, ptr=ptr)
    assert torch.allclose(out, ref, rtol=0, atol=1e-12)


def _script(path, body):
    path.write_text('#!/bin/sh\n' + body)
    path.chmod(0o755)
    return str(path)


def _out_arg():
    # shell snippet: $out is the argument after -o
    return ('out=""; prev=""\n'
            'for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; '
            'done\n')


def _alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(') ', 1)[1][0] not in 'ZX'
    except (FileNotFoundError, ProcessLookupError):
        return False


def _files(folder):
    return sorted(p for p in folder.rglob('*')) if folder.exists() else []


@pytest.mark.skipif(not os.path.isdir('/proc/self'), reason='needs /proc')
def test_hanging_compiler_bounded_latency_no_orphan(fresh, monkeypatch,
                                                     tmp_path):
    cache, private = fresh
    pidfile = tmp_path / 'sleep.pid'
    # A compiler that writes a 0-byte output, starts a child and hangs.
    cc = _script(tmp_path / 'hangcc', _out_arg() + ': > "$out"\n'
                 f'sleep 60 &\necho $! > {pidfile}\nwait\n')
    monkeypatch.setenv('CC', cc)
    monkeypatch.setattr(_cpu, 'FIRST_CALL_WAIT', 0.3)
    monkeypatch.setattr(_cpu, 'COMPILE_TIMEOUT', 1.0)
    x, ptr, T = _inputs()

    t0 = time.perf_counter()
    assert not kernels.kernel_usable(x, T.rotation, T.translation)
    assert time.perf_counter() - t0 < 1.0  # bounded by FIRST_CALL_WAIT
    t0 = time.perf_counter()
    _assert_native_results(x, ptr, T)  # served natively meanwhile
    assert time.perf_counter() - t0 < 0.5
    assert _cpu.status() == 'building'

    assert _cpu._STATE.done.wait(10)
    with pytest.warns(RuntimeWarning, match='no result after 1 s'):
        assert not kernels.kernel_usable(x, T.rotation, T.translation)
    assert 'killed' in kernels.kernel_error()
    # one attempt only: a hanging compiler would hang again
    assert kernels.kernel_error().count('no result after') == 1

    sleep_pid = int(pidfile.read_text())
    deadline = time.monotonic() + 3
    while _alive(sleep_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(sleep_pid), 'the compiler left a process behind'
    assert _files(cache) == []  # no 0-byte or partial file
    assert _files(private) == []  # the private build folder is gone
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # warned once only
        _assert_native_results(x, ptr, T)


@pytest.mark.skipif(not os.path.isdir('/proc/self'), reason='needs /proc')
def test_exit_during_build_leaves_no_compiler(tmp_path):
    # A process that exits while its compiler hangs must take the
    # compiler's whole process group with it, and start no other attempt.
    pidfile = tmp_path / 'sleep.pid'
    log = tmp_path / 'calls.log'
    cc = _script(tmp_path / 'hangcc', f'echo "$@" >> {log}\n'
                 f'sleep 60 &\necho $! > {pidfile}\nwait\n')
    code = ('import importlib.util, sys\n'
            'spec = importlib.util.spec_from_file_location("k", sys.argv[1])\n'
            'k = importlib.util.module_from_spec(spec)\n'
            'spec.loader.exec_module(k)\n'
            'k.FIRST_CALL_WAIT = 0.5\n'
            'assert k.loaded_library() is None and k.status() == "building"\n')
    env = {**os.environ, 'CC': cc, 'REMUL_CACHE_DIR': str(tmp_path / 'c')}
    subprocess.run([sys.executable, '-c', code, _cpu.__file__], env=env,
                   check=True, timeout=30)
    sleep_pid = int(pidfile.read_text())
    deadline = time.monotonic() + 3
    while _alive(sleep_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(sleep_pid), 'the compiler outlived the process'
    assert len(log.read_text().splitlines()) == 1  # no second attempt
    assert _files(tmp_path / 'c') == []


def test_compile_failure_warns_once_and_falls_back(fresh, monkeypatch,
                                                   tmp_path):
    cache, private = fresh
    cc = _script(tmp_path / 'badcc', _out_arg() +
                 ': > "$out"\necho "broken compiler" >&2\nexit 1\n')
    monkeypatch.setenv('CC', cc)
    with pytest.warns(RuntimeWarning, match='could not compile'):
        assert not kernels.kernel_available()
    assert 'broken compiler' in kernels.kernel_error()
    assert len(_cpu.FLAG_SETS) == kernels.kernel_error().count('exit 1')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert not kernels.kernel_available()
        _assert_native_results(*_inputs())
    assert _files(cache) == [] and _files(private) == []


def test_no_compiler_is_silent(fresh, monkeypatch):
    monkeypatch.setenv('CC', '')
    monkeypatch.setenv('PATH', '')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert not kernels.kernel_available()
        _assert_native_results(*_inputs())
    assert 'no C compiler' in kernels.kernel_error()


@needs_cc
def test_fresh_build_into_cache(fresh):
    cache, private = fresh
    assert kernels.kernel_status()['cpu'] == 'not built yet'
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert kernels.kernel_available()
    built = _files(cache)
    assert len(built) == 1 and built[0].name.startswith('rigid-')
    data = built[0].read_bytes()
    assert data[:4] == b'\x7fELF' or data[:4] in (b'\xcf\xfa\xed\xfe', )
    # no OpenMP runtime linked in (torch already brings one)
    assert b'libgomp' not in data and b'GOMP_' not in data
    assert b'libomp' not in data
    assert _files(private) == []
    assert kernels.kernel_status()['cpu'] == 'ready'
    _assert_native_results(*_inputs())
    # a second process-state finds it in the cache without compiling
    st = _cpu._State()
    _cpu._STATE = st
    t0 = time.perf_counter()
    assert _cpu.loaded_library() is not None
    assert time.perf_counter() - t0 < 0.5
    assert st.status == 'ready'


@needs_cc
def test_unwritable_cache_still_gives_kernel_and_warns(fresh, monkeypatch,
                                                       tmp_path):
    # A cache folder below a regular file cannot be created, even by root
    # (for whom a read-only folder is still writable).
    blocker = tmp_path / 'blocker'
    blocker.write_text('not a folder')
    monkeypatch.setenv('REMUL_CACHE_DIR', str(blocker / 'cache'))
    with pytest.warns(RuntimeWarning, match='could not write the compiled'):
        assert kernels.kernel_available()
    assert blocker.read_text() == 'not a folder'
    _assert_native_results(*_inputs())
    assert _files(fresh[1]) == []


@needs_cc
@pytest.mark.parametrize('damage', ['garbage', 'empty', 'abi', 'symbols'])
def test_damaged_cached_library_is_rebuilt(fresh, damage, tmp_path):
    cache, _ = fresh
    target = cache / f'rigid-{_cpu._key(_cpu.compiler())}.so'
    cache.mkdir()
    if damage == 'garbage':
        target.write_bytes(b'not a shared library' * 100)
    elif damage == 'empty':
        target.write_bytes(b'')
    else:
        src = tmp_path / 'old.c'
        src.write_text('int rigid_kernel_abi_version(void) { return %d; }\n'
                       % (_cpu.ABI_VERSION - 1 if damage == 'abi'
                          else _cpu.ABI_VERSION))
        subprocess.run([*_cpu.compiler(), '-shared', '-fPIC', str(src), '-o',
                        str(target)], check=True, timeout=60)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # rebuilt quietly
        assert kernels.kernel_available()
    assert len(_files(cache)) == 1
    assert target.stat().st_size > 1000
    _assert_native_results(*_inputs())


@needs_cc
def test_damaged_and_unremovable_cache_warns_and_falls_back(fresh):
    cache, _ = fresh
    target = cache / f'rigid-{_cpu._key(_cpu.compiler())}.so'
    target.mkdir(parents=True)  # cannot be loaded nor unlinked
    with pytest.warns(RuntimeWarning, match='damaged'):
        assert not kernels.kernel_available()
    assert 'REMUL_CACHE_DIR' in kernels.kernel_error()
    _assert_native_results(*_inputs())


def test_fork_restarts_an_unfinished_build(fresh, monkeypatch):
    monkeypatch.setattr(_cpu, '_FORKED', False)  # restored afterwards
    st = _cpu._STATE
    st.status = 'building'
    held = st.lock
    held.acquire()
    try:
        _cpu._after_fork_in_child()  # what the child runs after fork()
        assert st.status == 'idle' and st.lock is not held
        assert not st.lock.locked() and not st.done.is_set()
        assert _cpu._FORKED  # the child runs the kernel on one thread
    finally:
        held.release()


@needs_cc
def _cli(argv):
    # through the parser, not main(): main() sets process-wide float modes
    from torch_geometric_remul.cli import build_parser
    args = build_parser().parse_args(argv)
    return args.func(args)


def test_build_kernels_and_cli(fresh, capsys):
    status = kernels.build_kernels(cuda=False)
    assert status['cpu'] == 'ready' and 'triton' in status
    assert _cli(['build-kernels', '--timeout', '60']) == 0
    out = capsys.readouterr().out
    assert 'CPU kernel' in out and 'ready' in out
    assert str(fresh[0]) in out


def test_cli_reports_failure(fresh, monkeypatch, tmp_path, capsys):
    cc = _script(tmp_path / 'badcc', 'echo nope >&2\nexit 3\n')
    monkeypatch.setenv('CC', cc)
    with pytest.warns(RuntimeWarning):
        assert _cli(['build-kernels']) == 1
    assert 'exit 3' in capsys.readouterr().out


def test_cc_with_arguments_and_missing(monkeypatch):
    monkeypatch.setenv('CC', f'{shutil.which("sh")} -x')
    assert _cpu.compiler() == [shutil.which('sh'), '-x']
    monkeypatch.setenv('CC', '/nonexistent/cc')
    assert _cpu.compiler() is None or _cpu.compiler()[0] != '/nonexistent/cc'
