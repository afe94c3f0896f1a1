"""How the C kernel is built, cached and loaded: bounded first-call latency,
no orphaned compiler, no partial files, damaged or unwritable caches."""
import hashlib
import os
import shutil
import stat
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
    assert [p.suffix for p in built] == ['.so', '.sha256']
    assert built[0].name.startswith('rigid-')
    data = built[0].read_bytes()
    # the record holds the library's SHA-256; folder 0700, files not
    # writable by others
    assert built[1].read_text().strip() == hashlib.sha256(data).hexdigest()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert all(p.stat().st_mode & 0o022 == 0 for p in built)
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
    cache.mkdir(mode=0o700)
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
        # recorded as if this user's build wrote it: loaded, then refused
        # by the ABI and symbol checks
        _record(target).write_text(
            hashlib.sha256(target.read_bytes()).hexdigest())
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # rebuilt quietly
        assert kernels.kernel_available()
    assert len(_files(cache)) == 2
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


# Security: a cached library is loaded only if this user's build wrote it ##

_PLANTED = r'''
#include <stdint.h>
#include <stdio.h>
__attribute__((constructor)) static void planted(void) {
  FILE *f = fopen(MARKER, "w");
  if (f) { fputs("the planted constructor ran", f); fclose(f); }
}
int rigid_kernel_abi_version(void) { return ABI; }
int rigid_set_parallel(void *a, void *b, void *c) { return 0; }
int64_t rigid_ptr_f32(void) { return -1; }
int64_t rigid_ptr_f64(void) { return -1; }
int64_t rigid_index_f32(void) { return -1; }
int64_t rigid_index_f64(void) { return -1; }
'''


def _record(library):
    # where the build records the library's SHA-256 (_cpu.record_path)
    return library.with_name(library.name + '.sha256')


def _plant(path, marker, record=True):
    """A library with every symbol of the kernel and a constructor that
    writes ``marker``: what an attacker would place in the cache. With
    ``record``, its correct SHA-256 record is placed too."""
    src = path.with_name('planted.c')
    src.write_text(_PLANTED)
    subprocess.run([*_cpu.compiler(), '-shared', '-fPIC',
                    f'-DMARKER="{marker}"', f'-DABI={_cpu.ABI_VERSION}',
                    str(src), '-o', str(path)], check=True, timeout=60)
    src.unlink()
    if record:
        _record(path).write_text(
            hashlib.sha256(path.read_bytes()).hexdigest() + '\n')
    return path


def _target(cache):
    return cache / f'rigid-{_cpu._key(_cpu.compiler())}.so'


@needs_cc
@pytest.mark.parametrize('case', ['world-writable', 'group-writable',
                                  'other-owner', 'other-owner-chown',
                                  'symlink', 'writable-parent'])
def test_unsafe_cache_folder_is_refused_before_loading(fresh, monkeypatch,
                                                       tmp_path, case):
    cache, _ = fresh
    marker = tmp_path / 'PWNED'
    if case == 'other-owner-chown' and os.geteuid() != 0:
        pytest.skip('needs root to give the folder to another user')
    if case == 'symlink':
        real = tmp_path / 'real'
        real.mkdir(mode=0o700)
        cache.symlink_to(real)
    elif case == 'writable-parent':
        shared = tmp_path / 'shared'
        shared.mkdir()
        shared.chmod(0o777)  # no sticky bit: others can replace 'cache'
        cache = shared / 'cache'
        monkeypatch.setenv('REMUL_CACHE_DIR', str(cache))
        cache.mkdir(mode=0o700)
    else:
        cache.mkdir(mode=0o700)
    planted = _plant(_target(cache), marker)
    if case == 'world-writable':
        cache.chmod(0o777)
    elif case == 'group-writable':
        cache.chmod(0o770)
    elif case == 'other-owner':
        uid = os.geteuid()
        monkeypatch.setattr(_cpu, '_uid', lambda: uid + 1, raising=False)
    elif case == 'other-owner-chown':
        os.chown(cache, 65534, 65534)
    before = planted.read_bytes()

    with pytest.warns(RuntimeWarning, match='is not private'):
        assert kernels.kernel_available()  # compiled privately instead
    assert not marker.exists(), 'a planted library was loaded'
    assert _cpu._STATE.lib is not None
    assert 'ready' == kernels.kernel_status()['cpu']
    assert planted.read_bytes() == before  # a refused folder is not written
    _assert_native_results(*_inputs())


@needs_cc
@pytest.mark.parametrize('case', ['no-record', 'wrong-record',
                                  'symlinked-library', 'symlinked-record',
                                  'writable-library', 'writable-record'])
def test_unverified_cached_library_is_never_loaded(fresh, tmp_path, case):
    # A private folder, but a library that this user's build did not
    # record: never loaded, replaced by a fresh build (quietly, as for a
    # damaged file).
    cache, _ = fresh
    marker = tmp_path / 'PWNED'
    cache.mkdir(mode=0o700)
    target = _target(cache)
    record = _record(target)
    if case == 'symlinked-library':
        elsewhere = tmp_path / 'elsewhere'
        elsewhere.mkdir()
        lib = _plant(elsewhere / 'lib.so', marker, record=False)
        target.symlink_to(lib)
        record.write_text(hashlib.sha256(lib.read_bytes()).hexdigest())
    else:
        _plant(target, marker, record=case != 'no-record')
    if case == 'wrong-record':
        record.write_text('0' * 64 + '\n')
    elif case == 'symlinked-record':
        moved = tmp_path / 'record'
        record.rename(moved)
        record.symlink_to(moved)
    elif case == 'writable-library':
        target.chmod(0o777)
    elif case == 'writable-record':
        record.chmod(0o666)

    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert kernels.kernel_available()
    assert not marker.exists(), 'an unverified library was loaded'
    # replaced by this user's own build, with its record
    assert not target.is_symlink() and not record.is_symlink()
    assert record.read_text().strip() == \
        hashlib.sha256(target.read_bytes()).hexdigest()
    assert b'the planted constructor ran' not in target.read_bytes()
    _assert_native_results(*_inputs())
    # and the next process loads that verified build from the cache
    _cpu._STATE = _cpu._State()
    assert _cpu.loaded_library() is not None
    assert _cpu._STATE.status == 'ready' and not marker.exists()


@needs_cc
def test_cache_folder_is_private_whatever_the_umask(fresh):
    cache, _ = fresh
    old = os.umask(0)
    try:
        assert kernels.kernel_available()
    finally:
        os.umask(old)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    files = _files(cache)
    assert len(files) == 2
    assert all(p.stat().st_mode & 0o022 == 0 for p in files)


@needs_cc
def test_cli_build_kernels_never_runs_a_planted_library(fresh, tmp_path,
                                                        capsys):
    # The reproduction of the report: a world-writable cache folder holding
    # a library under the predictable name, then `remul build-kernels`.
    cache, _ = fresh
    marker = tmp_path / 'PWNED'
    cache.mkdir()
    _plant(_target(cache), marker)
    cache.chmod(0o777)
    with pytest.warns(RuntimeWarning, match='chmod 700'):
        assert _cli(['build-kernels', '--timeout', '60']) == 0
    assert not marker.exists()
    assert 'ready' in capsys.readouterr().out
