r"""Build, cache and load the C kernel of ``rigid.c`` (CPU tensors).

Life cycle, per process (see the package docstring for the user view):

* ``idle``: nothing tried yet. The first :func:`loaded_library` call
  computes the cache key *without running anything* (source, flags, the
  compiler's resolved path, size and mtime, the CPU model) and loads
  ``rigid-<key>.so`` from the cache if it is there and sound (see
  "Security" below).
* ``building``: otherwise a daemon thread compiles the library into a
  private temporary folder with a time limit per attempt, loads it to check
  it, then publishes it in the cache with its SHA-256 in
  ``rigid-<key>.so.sha256`` (each copied to a temporary name, then renamed
  atomically). The first caller waits at most :data:`FIRST_CALL_WAIT`
  seconds; every call meanwhile gets ``None`` (the native path serves it).
* ``ready`` or ``failed``: final for this process. A failure the user can
  fix (compiler error or time-out, unwritable or damaged cache) is reported
  by one :func:`warnings.warn` in the calling thread.

A forked child (DataLoader workers) keeps a ready library, used on one
thread there, and restarts an unfinished build on its own (the parent's
thread does not exist there). At interpreter exit a running compiler is
killed with its process group and no further attempt starts.

Security: loading a library runs its code (its constructors run inside
:func:`ctypes.CDLL`), so a cached library is loaded only when nobody but
this user can have put it there, and only if it is the file this user's
build wrote:

* the cache folder is created with mode 0700 (whatever the umask), and
  refused when it is a symbolic link, is not owned by this user, or is
  writable by the group or others; so is a folder above it that is owned by
  another user (other than root) or writable by others without the sticky
  bit (they could replace the cache folder). A refused folder is neither
  read nor written: the kernel is compiled privately in every process, and
  one warning names the folder and the fix;
* the library and its ``.sha256`` record are opened without following
  symbolic links and must be regular files owned by this user and not
  writable by the group or others;
* the library's SHA-256 must equal the record written by the build that
  published it. All of this is checked *before* :func:`ctypes.CDLL`; a
  file that fails is never loaded: it is deleted and rebuilt.
"""
import atexit
import ctypes
import hashlib
import os
import platform
import re
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import List, Optional, Tuple

SOURCE = Path(__file__).with_name('rigid.c')
ABI_VERSION = 4
#: Flags tried in order; the first set that compiles is kept. No OpenMP
#: flag: the library links no runtime and borrows torch's (see
#: :func:`_wire_parallel`). No FMA contraction: every output is rounded op
#: by op, the same bits with or without ``-march=native``.
FLAG_SETS: Tuple[Tuple[str, ...], ...] = (
    ('-O3', '-march=native'),
    ('-O3', ),
)
COMMON_FLAGS = ('-std=c99', '-ffp-contract=off', '-shared', '-fPIC')
#: Longest time (s) the first call waits for a build before it returns and
#: lets the native path serve it.
FIRST_CALL_WAIT = 2.0
#: Time limit (s) for one compiler run; the whole process group of the
#: compiler is killed when it expires.
COMPILE_TIMEOUT = 60.0
#: Suffix of the file that records the SHA-256 of a published library.
RECORD_SUFFIX = '.sha256'
#: Largest cached library (bytes) read for verification.
_MAX_LIBRARY_BYTES = 64 << 20
_SYMBOLS = ('rigid_ptr_f32', 'rigid_ptr_f64', 'rigid_index_f32',
            'rigid_index_f64')


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.status = 'idle'  # idle | building | ready | failed
        self.lib: Optional[ctypes.CDLL] = None
        self.error: Optional[str] = None
        self.pending_warning: Optional[str] = None
        self.warned = False
        self.done = threading.Event()
        self.proc: Optional[subprocess.Popen] = None
        self.pid = os.getpid()


_STATE = _State()


_FORKED = False


def _after_fork_in_child() -> None:
    global _FORKED
    _FORKED = True
    st = _STATE
    st.lock = threading.Lock()  # the parent's may have been held
    st.proc = None
    st.pid = os.getpid()
    if st.status == 'building':  # the builder thread stayed in the parent
        st.status = 'idle'
        st.done = threading.Event()
    if st.lib is not None:
        # An OpenMP team used before fork() does not exist in the child
        # (torch's own ops hang there with more than one thread): the
        # kernel runs on the calling thread only in forked children.
        try:
            st.lib.rigid_set_parallel(None, None, None)
        except Exception:
            pass


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_after_fork_in_child)


_EXITING = threading.Event()


@atexit.register
def _kill_compiler_at_exit() -> None:
    """At interpreter exit: start no compiler any more, kill a running one
    with its process group (the build thread is a daemon and dies with the
    interpreter; its compiler would otherwise outlive it)."""
    st = _STATE
    locked = st.lock.acquire(timeout=1.0)
    try:
        _EXITING.set()
        proc = st.proc
    finally:
        if locked:
            st.lock.release()
    if proc is not None and proc.poll() is None:
        _kill_group(proc)


def cache_dir() -> Path:
    r"""``$REMUL_CACHE_DIR``, else ``$XDG_CACHE_HOME/torch_geometric_remul``,
    else ``~/.cache/torch_geometric_remul``."""
    root = os.environ.get('REMUL_CACHE_DIR')
    if root:
        return Path(root)
    xdg = os.environ.get('XDG_CACHE_HOME') or os.path.join(
        os.path.expanduser('~'), '.cache')
    return Path(xdg) / 'torch_geometric_remul'


def _cpu_signature() -> str:
    """CPU model and features, so that a cache shared between machines never
    serves a ``-march=native`` build to the wrong CPU."""
    parts = [platform.machine(), platform.processor()]
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith(('model name', 'flags', 'Features')):
                    parts.append(line.strip())
                if len(parts) >= 4:
                    break
    except OSError:
        pass
    return '|'.join(parts)


def compiler() -> Optional[List[str]]:
    r"""The compiler command: ``$CC`` (may hold arguments, e.g.
    ``"ccache gcc"``), else ``cc``, ``gcc`` or ``clang`` on ``PATH``."""
    cc = os.environ.get('CC', '').strip()
    if cc:
        try:
            argv = shlex.split(cc)
        except ValueError:
            argv = []
        if argv and shutil.which(argv[0]):
            return [shutil.which(argv[0]), *argv[1:]]
    for name in ('cc', 'gcc', 'clang'):
        path = shutil.which(name)
        if path:
            return [path]
    return None


def _key(cc: List[str]) -> str:
    """Cache key from the source, the flags and the compiler's identity
    (resolved path, size, mtime): nothing is run to compute it."""
    ident = [SOURCE.read_bytes().hex(), repr(FLAG_SETS), repr(COMMON_FLAGS),
             str(ABI_VERSION), repr(cc), _cpu_signature()]
    real = os.path.realpath(cc[0])
    try:
        st = os.stat(real)
        ident += [real, str(st.st_size), str(st.st_mtime_ns)]
    except OSError:
        ident.append(real)
    return hashlib.sha256('\0'.join(ident).encode()).hexdigest()[:16]


class UnsafeCacheError(OSError):
    r"""The cache folder or a cached file may have been written by someone
    other than this user: nothing is loaded from it."""


def _uid() -> Optional[int]:
    """This process's effective user id (``None`` where the OS has none)."""
    return os.geteuid() if hasattr(os, 'geteuid') else None


def _folder_problem(folder: Path) -> Optional[str]:
    """Why code must not be loaded from the existing ``folder`` (a
    sentence), or ``None`` when only this user (and root) can write it.
    Raises :class:`OSError` when it cannot be inspected."""
    uid = _uid()
    st = os.lstat(folder)
    if stat.S_ISLNK(st.st_mode):
        return (f'it is a symbolic link (to {os.path.realpath(folder)}); '
                f'name the real folder instead')
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(f'{folder} is not a folder')
    if uid is None:
        return None
    if st.st_uid != uid:
        return (f'it is owned by user id {st.st_uid}, not by this user '
                f'({uid})')
    if st.st_mode & 0o022:
        return (f'it is writable by other users (mode '
                f'{stat.S_IMODE(st.st_mode):04o}); run chmod 700 {folder}')
    parent = os.path.realpath(os.path.dirname(os.path.abspath(folder)))
    while True:
        st = os.stat(parent)
        if st.st_uid not in (uid, 0):
            return (f'the folder above it, {parent}, is owned by user id '
                    f'{st.st_uid} (neither this user nor root), who could '
                    f'replace it')
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            return (f'the folder above it, {parent}, is writable by other '
                    f'users (mode {stat.S_IMODE(st.st_mode):04o}, no sticky '
                    f'bit), who could replace it')
        up = os.path.dirname(parent)
        if up == parent:
            return None
        parent = up


def _refusal(folder: Path, problem: str) -> str:
    return (f'the kernel cache folder {folder} is not private, so nothing is '
            f'loaded from it or written to it: {problem}. A library placed '
            f'there would run code in this process. Set REMUL_CACHE_DIR to '
            f'a folder only you can write (it is created with mode 0700)')


def _check_folder(folder: Path) -> None:
    """Raises :class:`UnsafeCacheError` unless ``folder`` is private."""
    problem = _folder_problem(folder)
    if problem is not None:
        raise UnsafeCacheError(_refusal(folder, problem))


def _make_folder(folder: Path) -> None:
    """Creates ``folder`` (mode 0700 whatever the umask, folders above it
    as usual) if missing, then checks it (:class:`UnsafeCacheError`)."""
    folder = Path(os.path.abspath(folder))
    if not os.path.lexists(folder):
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:  # made meanwhile: checked below
            pass
        else:
            os.chmod(folder, 0o700)  # the umask may have removed bits
    _check_folder(folder)


def _read_private(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, opened without following a symbolic link;
    raises :class:`UnsafeCacheError` unless it is a regular file owned by
    this user, not writable by others and at most ``limit`` bytes."""
    flags = (os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0)
             | getattr(os, 'O_NONBLOCK', 0) | getattr(os, 'O_CLOEXEC', 0))
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if os.path.islink(path):
            raise UnsafeCacheError(f'{path} is a symbolic link') from None
        raise e
    try:
        st = os.fstat(fd)
        uid = _uid()
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeCacheError(f'{path} is not a regular file')
        if uid is not None and st.st_uid != uid:
            raise UnsafeCacheError(f'{path} is owned by user id {st.st_uid}, '
                                   f'not by this user ({uid})')
        if st.st_mode & 0o022:
            raise UnsafeCacheError(f'{path} is writable by other users')
        if st.st_size > limit:
            raise UnsafeCacheError(f'{path} has {st.st_size} bytes, more '
                                   f'than {limit}')
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b''.join(chunks)
    finally:
        os.close(fd)


def record_path(target: Path) -> Path:
    r"""The file that records the SHA-256 of the library ``target``."""
    return target.with_name(target.name + RECORD_SUFFIX)


def _open_cached(target: Path) -> ctypes.CDLL:
    """Loads the cached library ``target`` after checking its folder, the
    library and its record, and that the library's SHA-256 is the recorded
    one; raises :class:`UnsafeCacheError` (refused: never loaded) or
    :class:`OSError`."""
    _check_folder(target.parent)
    try:
        recorded = _read_private(record_path(target), 1024)
    except FileNotFoundError:
        raise UnsafeCacheError(f'no {record_path(target).name} records '
                               f'the hash of the build that wrote it') \
            from None
    data = _read_private(target, _MAX_LIBRARY_BYTES)
    digest = hashlib.sha256(data).hexdigest()
    if recorded.decode('ascii', 'replace').strip() != digest:
        raise UnsafeCacheError(f'its SHA-256 ({digest[:16]}...) is not the '
                               f'one recorded by the build')
    return _open(target)


def _open(path: Path) -> ctypes.CDLL:
    """Loads and checks a built library; raises :class:`OSError` for every
    kind of damage (unloadable, missing symbol, other ABI)."""
    try:
        lib = ctypes.CDLL(str(path))
        version = lib.rigid_kernel_abi_version()
        if version != ABI_VERSION:
            raise OSError(f'ABI version {version}, expected {ABI_VERSION}')
        i64, vp, cint = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
        for name in _SYMBOLS:
            fn = getattr(lib, name)
            fn.argtypes = [vp, vp, vp, vp, vp, i64, i64, cint]
            fn.restype = i64
        lib.rigid_set_parallel.argtypes = [vp, vp, vp]
        lib.rigid_set_parallel.restype = cint
    except OSError:
        raise
    except Exception as e:  # AttributeError (missing symbol), ValueError...
        raise OSError(f'{type(e).__name__}: {e}') from None
    _wire_parallel(lib)
    return lib


_OMP_NAME = re.compile(r'^lib(gomp|iomp5|omp)([-.][^/]*)?\.(so|dylib)')


def _openmp_entry_points() -> Optional[Tuple[int, int, int]]:
    """Addresses of ``GOMP_parallel``, ``omp_get_thread_num`` and
    ``omp_get_num_threads`` in the OpenMP runtime that torch has *already*
    loaded into this process, or ``None``. Never loads a library
    (``RTLD_NOLOAD``), so it can never add a second runtime."""
    try:
        import torch
        if 'parallel backend: OpenMP' not in \
                torch.__config__.parallel_info():
            return None
        with open('/proc/self/maps') as f:
            paths = {line.split(None, 5)[5].strip() for line in f
                     if line.count(' ') >= 5 and '/' in line}
    except Exception:  # no torch, no /proc (macOS), unreadable
        return None
    flags = getattr(os, 'RTLD_NOLOAD', 0) | getattr(os, 'RTLD_LAZY', 1)
    if not getattr(os, 'RTLD_NOLOAD', 0):
        return None
    for path in sorted(paths):
        if not _OMP_NAME.match(os.path.basename(path)):
            continue
        try:
            rt = ctypes.CDLL(path, mode=flags)
            addr = [ctypes.cast(getattr(rt, name), ctypes.c_void_p).value
                    for name in ('GOMP_parallel', 'omp_get_thread_num',
                                 'omp_get_num_threads')]
        except (OSError, AttributeError):
            continue
        if all(addr):
            return addr[0], addr[1], addr[2]
    return None


def _wire_parallel(lib: ctypes.CDLL) -> bool:
    """Lends torch's OpenMP runtime to the kernel; returns whether it has
    one (otherwise it runs on the calling thread only, as always in a
    forked child)."""
    entry = None if _FORKED else _openmp_entry_points()
    if entry is None:
        lib.rigid_set_parallel(None, None, None)
        return False
    return bool(lib.rigid_set_parallel(*entry))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        try:
            proc.kill()
        except OSError:
            pass


def _run_compiler(cmd: List[str], st: _State) -> Tuple[bool, str]:
    """Runs one compile in its own process group; returns (ok, message)."""
    with st.lock:  # no new compiler once the interpreter exits
        if _EXITING.is_set():
            return False, 'the interpreter is exiting'
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT,
                                    start_new_session=True)
        except OSError as e:
            return False, f'{shlex.join(cmd)}: {e}'
        st.proc = proc
    try:
        out, _ = proc.communicate(timeout=COMPILE_TIMEOUT)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        try:  # reap; a descendant that left the group may hold the pipe
            proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        return False, (f'{shlex.join(cmd)}: no result after '
                       f'{COMPILE_TIMEOUT:g} s; the compiler was killed')
    finally:
        st.proc = None
    text = out.decode(errors='replace').strip()
    if proc.returncode < 0:
        return False, (f'{shlex.join(cmd)}: killed by signal '
                       f'{-proc.returncode}: {text[-800:]}')
    if proc.returncode != 0:
        return False, f'{shlex.join(cmd)}: exit {proc.returncode}: ' \
            f'{text[-800:]}'
    return True, text


def _write_atomic(data: bytes, target: Path, mode: int) -> None:
    """Writes ``data`` as ``target`` (temporary name + rename: readers
    never see half a file)."""
    fd, tmp = tempfile.mkstemp(prefix=f'.{target.name}-', suffix='.tmp',
                               dir=target.parent)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        tmp = None
    finally:
        if tmp is not None:
            _unlink(Path(tmp))


def _publish(built: Path, target: Path) -> Optional[OSError]:
    """Copies ``built`` into the cache as ``target`` with the record of its
    SHA-256, each atomically; returns the error (an
    :class:`UnsafeCacheError` for a refused folder), or ``None``."""
    try:
        _make_folder(target.parent)
        data = built.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        _write_atomic(f'{digest}\n'.encode(), record_path(target), 0o644)
        _write_atomic(data, target, 0o755)
        return None
    except OSError as e:
        return e


def _compile(st: _State, cc: List[str], built: Path) -> Optional[str]:
    """Compiles into ``built`` with the first flag set that works; returns
    an error text, or ``None``."""
    errors = []
    for flags in FLAG_SETS:
        cmd = [*cc, *flags, *COMMON_FLAGS, str(SOURCE), '-o', str(built)]
        ok, msg = _run_compiler(cmd, st)
        if ok and built.is_file() and built.stat().st_size > 0:
            return None
        errors.append(msg if not ok else
                      f'{shlex.join(cmd)}: exit 0 but no library written')
        try:
            built.unlink()
        except OSError:
            pass
        if 'no result after' in msg or 'killed by signal' in msg or \
                _EXITING.is_set():
            break  # a hanging compiler would hang again
    return 'could not compile the CPU rigid-transform kernel:\n' + \
        '\n'.join(errors)


def _build(st: _State, cc: List[str], target: Path) -> None:
    """Background thread: compile in a private folder, check, publish in
    the cache. Sets the final state."""
    lib, error, warning = None, None, None
    workdir = None
    try:
        workdir = tempfile.mkdtemp(prefix='remul-kernel-')
        built = Path(workdir) / target.name
        error = _compile(st, cc, built)
        if error is None:
            try:  # check it before anyone else can load it
                lib = _open(built)
                problem = _publish(built, target)
            except OSError as e:  # e.g. a temp folder mounted noexec
                problem = _publish(built, target)
                if problem is None:
                    try:
                        lib = _open_cached(target)
                    except OSError as e2:
                        _unlink(target)
                        error = (f'the compiled kernel does not load: {e}; '
                                 f'{e2}')
                else:
                    error = f'the compiled kernel does not load: {e}'
            if isinstance(problem, UnsafeCacheError) and lib is not None:
                warning = (f'{problem}. The kernel is compiled again in '
                           f'every process.')
            elif isinstance(problem, UnsafeCacheError):
                error += f' ({problem})'
            elif problem is not None and lib is not None:
                warning = (f'could not write the compiled CPU kernel to the '
                           f'cache folder {target.parent} ({problem}); it '
                           f'is compiled again in every process. Set '
                           f'REMUL_CACHE_DIR to a writable folder.')
            elif problem is not None:
                error += (f' (and the cache folder {target.parent} is not '
                          f'writable: {problem})')
        if error is not None:
            warning = error
    except Exception as e:  # never let the thread die with the state open
        lib = None
        error = warning = f'building the CPU kernel failed: ' \
            f'{type(e).__name__}: {e}'
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    with st.lock:
        st.lib = lib
        st.error = error
        if warning is not None and not st.warned:
            st.pending_warning = warning
        st.status = 'ready' if lib is not None else 'failed'
        st.done.set()


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _start(st: _State) -> bool:
    """Under ``st.lock``: leaves ``idle``. Returns whether a build thread
    was started (the caller may then wait for it)."""
    st.pid = os.getpid()
    cc = compiler()
    if cc is None:
        st.status, st.error = 'failed', 'no C compiler found (set $CC)'
        st.done.set()
        return False
    try:
        target = cache_dir() / f'rigid-{_key(cc)}.so'
    except OSError as e:
        st.status, st.error = 'failed', f'cannot read the kernel source: {e}'
        st.done.set()
        return False
    if os.path.lexists(target):
        try:
            st.lib = _open_cached(target)
            st.status = 'ready'
            st.done.set()
            return False
        except OSError as e:
            if not _folder_refused(target.parent):
                # damaged, or not the file this user's build wrote: never
                # loaded, deleted and rebuilt
                damage = f'the cached kernel {target} is damaged ({e})'
                try:
                    target.unlink()  # rebuilt below
                except OSError as e2:
                    st.status = 'failed'
                    st.error = (f'{damage} and cannot be removed ({e2}); '
                                f'delete it or set REMUL_CACHE_DIR')
                    st.pending_warning = st.error
                    st.done.set()
                    return False
            # a refused folder is left alone; the build warns about it
    st.status = 'building'
    thread = threading.Thread(target=_build, args=(st, cc, target),
                              name='remul-kernel-build', daemon=True)
    thread.start()
    return True


def _folder_refused(folder: Path) -> bool:
    try:
        return _folder_problem(folder) is not None
    except OSError:
        return False


def _emit_warning(st: _State) -> None:
    msg = st.pending_warning
    if msg is not None and not st.warned:
        st.warned, st.pending_warning = True, None
        warnings.warn(f'torch_geometric_remul: {msg}\nThe native PyTorch '
                      f'path runs instead where the kernel is missing '
                      f'(same results, slower). REMUL_NO_CPU_KERNEL=1 turns '
                      f'the kernel off.', RuntimeWarning, stacklevel=4)


def loaded_library(wait: Optional[float] = None) -> Optional[ctypes.CDLL]:
    r"""The loaded kernel library, or ``None`` while it is being built or
    when it cannot be had.

    Args:
        wait (float, optional): Seconds to wait for a build in progress.
            ``None``: :data:`FIRST_CALL_WAIT` for the call that starts the
            build, no wait for the others.
    """
    st = _STATE
    lib = st.lib
    if lib is not None:
        return lib
    if st.status == 'failed' and st.pid == os.getpid():
        if st.pending_warning is not None:
            _emit_warning(st)
        return None
    with st.lock:
        started = False
        if st.status == 'idle' or st.pid != os.getpid():
            started = _start(st)
        done = st.done
    if wait is None:
        wait = FIRST_CALL_WAIT if started else 0.0
    if wait > 0:
        done.wait(wait)
    with st.lock:
        _emit_warning(st)
        return st.lib


def build(timeout: float = 2 * COMPILE_TIMEOUT + 10) -> Optional[str]:
    r"""Builds (or loads) the kernel now, waiting at most ``timeout``
    seconds; returns ``None`` on success, else the reason."""
    deadline = time.monotonic() + timeout
    loaded_library(wait=timeout)
    st = _STATE
    if st.lib is not None:
        return None
    if not st.done.wait(max(0.0, deadline - time.monotonic())):
        return f'still compiling after {timeout:g} s'
    return st.error or 'unavailable'


def status() -> str:
    r"""``"ready"``, ``"building"``, ``"not built yet"`` or the reason of a
    failure; starts nothing."""
    st = _STATE
    if st.lib is not None:
        return 'ready'
    if st.status == 'idle' or st.pid != os.getpid():
        return 'not built yet'
    if st.status == 'building':
        return 'building'
    return st.error or 'unavailable'


def error() -> Optional[str]:
    return _STATE.error
