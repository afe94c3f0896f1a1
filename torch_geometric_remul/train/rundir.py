r"""Run directories of ``remul train``: reading them back with clear errors,
refusing to overwrite one, and leaving nothing behind when a new run fails
before its first checkpoint.

A run directory holds :data:`RUN_FILES` (and the plots). A new run

* checks, before any data is read or simulated, that its directory can be
  created and does not hold another run (:func:`check_new_run_dir`);
* creates the directory and writes ``config.json`` only once training
  starts (:class:`RunFiles`);
* removes what it created if it fails or is interrupted before writing its
  first checkpoint (nothing that existed before is ever removed).

A run (new or resumed) holds an exclusive lock on :data:`LOCK` in its
directory for as long as it runs (:class:`RunLock`): a second ``remul
train`` writing to the same directory (``--resume`` of a run still
training, ``--overwrite`` of it, two new runs given the same
``--run-dir``) is refused, naming the process that holds it.
"""
import errno
import os
import os.path as osp
import socket
import time
from typing import Any, Dict, List, Optional, Tuple

from torch_geometric_remul._io import atomic_write_json, atomic_write_text
from torch_geometric_remul.train.checkpoint import (
    BEST,
    RunDirectoryError,
    load_checkpoint,
)
from torch_geometric_remul.train.config import (
    ConfigFileError,
    TrainConfig,
    read_config_file,
)

CONFIG = 'config.json'
CHECKPOINT = 'checkpoint.pt'
#: The lock file of a run that is training (removed when it ends; a file
#: left by a killed run holds no lock and is taken over).
LOCK = 'run.lock'
#: The files a run writes (besides its plots).
RUN_FILES = (CONFIG, CHECKPOINT, BEST, 'metrics.json', 'metrics.csv',
             'results.json')
PLOTS = ('loss.png', 'equivariance.png')


def describe_os_error(error: OSError) -> str:
    r"""A one-line description of ``error``: the reason and the path."""
    reason = error.strerror or str(error) or type(error).__name__
    if error.filename is not None:
        return f'{reason}: {error.filename}'
    return reason


def default_run_dir(config: TrainConfig) -> str:
    r"""``runs/<task>-<model>-<loss>-<local time>``: where a run goes when
    no ``run_dir`` is given.

    Example:

        >>> default_run_dir(TrainConfig()).startswith('runs/nbody-gnn-remul-')
        True
    """
    stamp = time.strftime('%Y%m%d-%H%M%S')
    return osp.join('runs', f'{config.task}-{config.model}-{config.loss}-'
                    f'{stamp}')


def _restart_hint(run_dir: str) -> str:
    config = osp.join(run_dir, CONFIG)
    return (f"start it again with: remul train --run-dir {run_dir} "
            f"--overwrite (and the run's options, see {config})")


def read_config(run_dir: str) -> TrainConfig:
    r"""The validated configuration in ``run_dir/config.json``.

    Raises:
        RunDirectoryError: Naming the directory or the file, when the
            directory does not exist, is not a run directory, or its
            ``config.json`` cannot be read, is not valid JSON or does not
            hold a valid configuration.

    Example:

        >>> import os, tempfile
        >>> run = tempfile.mkdtemp()
        >>> with open(os.path.join(run, 'config.json'), 'w') as f:
        ...     _ = f.write('{"epochs": 3,')
        >>> try:
        ...     read_config(run)
        ... except RunDirectoryError as e:
        ...     print(str(e).replace(run, 'RUN').split(':')[0])
        RUN/config.json is damaged (not valid JSON
    """
    path = osp.join(run_dir, CONFIG)
    if not osp.exists(run_dir):
        raise RunDirectoryError(f"{run_dir} not found: no such run "
                                f"directory")
    if not osp.isdir(run_dir):
        raise RunDirectoryError(f"{run_dir} is a file, not a run directory "
                                f"written by 'remul train'")
    if not osp.lexists(path):
        if osp.lexists(osp.join(run_dir, CHECKPOINT)):
            raise RunDirectoryError(f"{path} not found: the run directory "
                                    f"is damaged (it has a checkpoint but "
                                    f"no configuration)")
        raise RunDirectoryError(f"{path} not found: is {run_dir!r} a run "
                                f"directory written by 'remul train'?")
    try:
        values = read_config_file(path)
    except ConfigFileError as e:
        raise RunDirectoryError(f"{path} is damaged ({e.reason})") from None
    except OSError as e:
        raise RunDirectoryError(f"cannot read {path}: "
                                f"{e.strerror or e}") from None
    try:
        return TrainConfig.from_dict(values).resolved()
    except (TypeError, ValueError) as e:
        raise RunDirectoryError(f"{path} does not hold a valid "
                                f"configuration: {e}") from None


def load_run(run_dir: str) -> Tuple[TrainConfig, Dict[str, Any]]:
    r"""``(config, checkpoint)`` of a run directory; the checkpoint is
    loaded with ``weights_only=True`` (see
    ``torch_geometric_remul.train.checkpoint.load_checkpoint``).

    Raises:
        RunDirectoryError: Naming the file, when the directory is not a run
            directory, a file is damaged or unsafe, or the run never reached
            a checkpoint (it stopped during its first epoch).

    Example:

        ``result`` is the run trained by the example of
        :func:`~torch_geometric_remul.train.train` (shared by the doctests):

        >>> saved, checkpoint = load_run(result.run_dir)
        >>> saved.epochs, checkpoint['epoch']
        (1, 1)
    """
    config = read_config(run_dir)
    path = osp.join(run_dir, CHECKPOINT)
    if not osp.lexists(path):
        raise RunDirectoryError(
            f"{path} not found: the run in {run_dir} never reached a "
            f"checkpoint (it stopped before the end of its first epoch), so "
            f"there is nothing to resume or evaluate; "
            f"{_restart_hint(run_dir)}")
    return config, load_checkpoint(path)


def _nearest_existing(path: str) -> str:
    path = osp.abspath(path)
    while not osp.lexists(path):
        parent = osp.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def check_new_run_dir(run_dir: str, overwrite: bool = False) -> None:
    r"""Checks, before any work, that a new run can be written to
    ``run_dir``.

    Args:
        run_dir (str): The run directory.
        overwrite (bool, optional): Allow a directory that holds another run
            (its run files are replaced when the new run starts).
            (default: ``False``)

    Raises:
        RunDirectoryError: When ``run_dir`` is a file or lies under one,
            cannot be created or written, holds another run (with
            ``overwrite=False``), or another process is training in it
            (holds its :class:`RunLock`): the message says how to resume it
            or choose another directory.
    """
    if osp.lexists(run_dir):
        if not osp.isdir(run_dir):
            raise RunDirectoryError(f"the run directory {run_dir} is a "
                                    f"file, not a directory")
        _check_run_files(run_dir, overwrite)
        if not os.access(run_dir, os.W_OK | os.X_OK):
            raise RunDirectoryError(f"cannot write to the run directory "
                                    f"{run_dir}: permission denied or "
                                    f"read-only file system")
        if osp.lexists(osp.join(run_dir, LOCK)):  # a run may be training
            RunLock(run_dir).acquire().release()
        return
    parent = _nearest_existing(run_dir)
    if not osp.isdir(parent):
        raise RunDirectoryError(f"cannot create the run directory "
                                f"{run_dir}: {parent} is a file, not a "
                                f"directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RunDirectoryError(f"cannot create the run directory "
                                f"{run_dir}: {parent} is not writable "
                                f"(permission denied or read-only file "
                                f"system)")


def _not_writable(run_dir: str, reason: str) -> RunDirectoryError:
    return RunDirectoryError(
        f"cannot write to the run directory {run_dir} ({reason}): make it "
        f"writable (or remount its file system read-write), or copy the run "
        f"elsewhere and resume the copy")


def check_writable(run_dir: str) -> None:
    r"""Checks that the files of the run in ``run_dir`` can be replaced
    (before any work: a resumed run writes its first checkpoint only after
    an epoch of training).

    Raises:
        RunDirectoryError: Naming the directory, when it is not writable
            (permissions, or a read-only file system).
    """
    if not os.access(run_dir, os.W_OK | os.X_OK):
        erofs = False
        if hasattr(os, 'statvfs'):
            try:
                erofs = bool(os.statvfs(run_dir).f_flag & os.ST_RDONLY)
            except OSError:
                pass
        raise _not_writable(run_dir, 'read-only file system' if erofs
                            else 'permission denied')


class RunLock:
    r"""An exclusive lock on a run directory (:func:`fcntl.flock` on its
    :data:`LOCK` file, which holds the PID and host of the holder), for the
    life of a run: another process (or another open of the file) that
    tries to take it is refused at once, naming the holder. The kernel
    releases it when the process ends, however it ends; a file left by a
    killed process is taken over.

    Without :mod:`fcntl` (Windows) no lock is taken.

    Args:
        run_dir (str): The run directory (must exist).

    Example:

        >>> import tempfile
        >>> run = tempfile.mkdtemp()
        >>> first = RunLock(run).acquire()
        >>> try:
        ...     RunLock(run).acquire()
        ... except RunDirectoryError as e:
        ...     print('in use' in str(e))
        True
        >>> first.release()
        >>> RunLock(run).acquire().release()
    """
    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir
        self.path = osp.join(run_dir, LOCK)
        self._fd: Optional[int] = None

    @property
    def held(self) -> bool:
        r"""Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> 'RunLock':
        r"""Takes the lock (returns ``self``).

        Raises:
            RunDirectoryError: Naming the directory and the process holding
                the lock, when another run holds it; naming the directory
                and the reason, when the lock file cannot be written (a
                read-only file system, permissions).
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover (not POSIX)
            return self
        if self._fd is not None:
            return self
        flags = os.O_RDWR | os.O_CREAT | getattr(os, 'O_CLOEXEC', 0) | \
            getattr(os, 'O_NOFOLLOW', 0)
        while True:
            try:
                fd = os.open(self.path, flags, 0o644)
            except OSError as e:
                raise _not_writable(self.run_dir,
                                    describe_os_error(e)) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = _holder(fd)
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EACCES,
                                   errno.EWOULDBLOCK):
                    raise RunDirectoryError(
                        f"cannot lock the run directory {self.run_dir}: "
                        f"{describe_os_error(e)}") from None
                raise RunDirectoryError(
                    f"{self.run_dir} is in use by another run ({holder} "
                    f"holds {self.path}): two processes writing one run "
                    f"directory would overwrite each other's files; wait "
                    f"for it to finish (or stop it), or choose another "
                    f"--run-dir") from None
            # The holder we waited for may have removed the file (and
            # another process created a new one): lock the file at the path.
            try:
                current = os.stat(self.path, follow_symlinks=False)
                same = osp.samestat(os.fstat(fd), current)
            except OSError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f'{os.getpid()} {socket.gethostname()}\n'.encode())
        except OSError as e:
            os.close(fd)
            raise _not_writable(self.run_dir, describe_os_error(e)) from None
        self._fd = fd
        return self

    def release(self) -> None:
        r"""Removes the lock file and releases the lock (nothing when it is
        not held)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)  # while holding it: see acquire
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None


def _holder(fd: int) -> str:
    r"""``'process PID on HOST'`` from a lock file's content."""
    try:
        fields = os.pread(fd, 256, 0).decode('utf-8', 'replace').split()
    except OSError:
        fields = []
    if not fields or not fields[0].isdigit():
        return 'a process (its PID is not recorded yet)'
    host = f' on {fields[1]}' if len(fields) > 1 else ''
    return f'process {fields[0]}{host}'


def _check_run_files(run_dir: str, overwrite: bool) -> None:
    found = [name for name in RUN_FILES
             if osp.lexists(osp.join(run_dir, name))]
    if found and not overwrite:
        if found == [CONFIG]:
            raise RunDirectoryError(
                f"{run_dir} holds a run that never reached a checkpoint "
                f"(only {CONFIG}): pass --overwrite to start over in it, "
                f"or choose another --run-dir")
        raise RunDirectoryError(
            f"{run_dir} holds another run ({', '.join(found)}): continue "
            f"it with 'remul train --resume {run_dir}', choose another "
            f"--run-dir, or pass --overwrite to replace it")


class RunFiles:
    r"""The files of one invocation of ``remul train`` in its run directory
    (on the process that writes them): what it created, so that a run that
    fails before its first checkpoint leaves nothing behind.

    Args:
        run_dir (str): The run directory.
        resumed (bool, optional): The run continues from a checkpoint
            (nothing is ever removed then). (default: ``False``)
        overwrite (bool, optional): Replace the run files found in
            ``run_dir`` when the run starts. (default: ``False``)
    """
    def __init__(self, run_dir: str, resumed: bool = False,
                 overwrite: bool = False) -> None:
        self.run_dir = run_dir
        self.overwrite = overwrite
        #: Whether ``run_dir`` holds a checkpoint (the run can be resumed).
        self.checkpointed = resumed
        self._created_dirs: List[str] = []
        self._written: List[str] = []
        self._lock = RunLock(run_dir)

    def lock(self) -> None:
        r"""Checks that the run directory is writable and takes its lock
        (:class:`RunLock`), before any work; a resumed run calls it at once,
        a new run in :meth:`start`.

        Raises:
            RunDirectoryError: Naming the directory, when it is not writable
                or another process holds its lock.
        """
        check_writable(self.run_dir)
        self._lock.acquire()

    def close(self) -> None:
        r"""Releases the lock of the run directory (when held)."""
        self._lock.release()

    def start(self, config: TrainConfig) -> None:
        r"""Creates the run directory (and missing parents), takes its lock
        and writes ``config.json``; with ``overwrite``, first removes the
        previous run's files."""
        if self.checkpointed:
            self.lock()  # taken before any work; nothing when held
            return
        check_new_run_dir(self.run_dir, self.overwrite)  # nothing changed?
        missing, path = [], osp.abspath(self.run_dir)
        while not osp.lexists(path):
            missing.append(path)
            path = osp.dirname(path)
        try:
            os.makedirs(self.run_dir, exist_ok=True)
        except OSError as e:
            self._created_dirs = [d for d in reversed(missing)
                                  if osp.isdir(d)]
            self.abandon()
            raise RunDirectoryError(f"cannot create the run directory "
                                    f"{self.run_dir}: "
                                    f"{describe_os_error(e)}") from None
        self._created_dirs = list(reversed(missing))  # outermost first
        try:
            self.lock()
            # under the lock: no other run started here in the meantime
            _check_run_files(self.run_dir, self.overwrite)
        except RunDirectoryError:
            self.abandon()
            raise
        if self.overwrite:
            for name in RUN_FILES + PLOTS:
                path = osp.join(self.run_dir, name)
                if osp.isfile(path) or osp.islink(path):
                    os.unlink(path)
        self.write_text(CONFIG, config.to_json() + '\n')

    def write_text(self, name: str, text: str) -> None:
        r"""Writes ``run_dir/name`` atomically, remembering it."""
        self.record(name)
        atomic_write_text(osp.join(self.run_dir, name), text)

    def write_json(self, name: str, obj: Any) -> None:
        r"""Writes ``obj`` as JSON to ``run_dir/name`` atomically,
        remembering it."""
        self.record(name)
        atomic_write_json(osp.join(self.run_dir, name), obj)

    def path(self, name: str) -> str:
        r"""``run_dir/name``."""
        return osp.join(self.run_dir, name)

    def record(self, name: str) -> None:
        r"""Remembers that this invocation (re)writes ``run_dir/name``."""
        if name not in self._written:
            self._written.append(name)

    def abandon(self) -> Optional[str]:
        r"""Removes what this invocation created, if it never wrote a
        checkpoint; returns a description of what was removed (``None``
        when nothing was, or the run keeps its files)."""
        if self.checkpointed:
            return None
        removed = []
        for name in self._written:
            path = osp.join(self.run_dir, name)
            try:
                os.unlink(path)
                removed.append(name)
            except OSError:
                pass
        self.close()  # the run ends: its lock file goes too
        run_dir, dir_removed = osp.abspath(self.run_dir), False
        for directory in reversed(self._created_dirs):  # deepest first
            try:
                os.rmdir(directory)
            except OSError:
                break  # not empty (or not ours to remove): stop there
            dir_removed = dir_removed or directory == run_dir
        if dir_removed:
            return f'the run directory {self.run_dir} was removed'
        if removed:
            return f"{', '.join(removed)} removed from {self.run_dir}"
        return None


__all__ = ['RUN_FILES', 'PLOTS', 'CONFIG', 'CHECKPOINT', 'BEST', 'LOCK',
           'RunFiles', 'RunLock', 'check_new_run_dir', 'check_writable',
           'default_run_dir', 'describe_os_error', 'load_run', 'read_config']
