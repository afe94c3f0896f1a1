"""Atomic file writes shared by datasets, checkpoints and metrics.

A file is written to a temporary file in its directory, flushed to disk and
renamed over its final name: readers never see a partial file, even if the
writer is interrupted, killed or runs out of disk space. The file gets the
permissions a plain ``open(path, 'w')`` would give it (``0o666`` minus the
umask for a new file, the old mode when replacing one), not the ``0o600`` of
:func:`tempfile.mkstemp`.
"""
import io
import json
import os
import os.path as osp
import stat
import tempfile
from typing import Any, Callable, Optional


def _umask() -> int:
    r"""The process's umask, read without changing it where the platform
    allows (``/proc/self/status`` on Linux: changing the umask, even
    briefly, races with other threads creating files)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _target_mode(path: str) -> int:
    r"""The mode a plain write of ``path`` would leave it with."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def atomic_write(path: str, write: Callable[[Any], None],
                 mode: Optional[int] = None) -> None:
    r"""Calls ``write(file_object)`` on a temporary file in the directory of
    ``path`` and renames it over ``path``: readers never see a partial
    file, even if the writer is interrupted or crashes (the temporary file
    is removed when ``write`` raises, e.g. on a full disk).

    Args:
        path (str): The file to (re)write.
        write (callable): Writes the content to the binary file object it
            is given.
        mode (int, optional): Permission bits of the file. (default: those
            of a plain ``open(path, 'w')``: the mode of the file it
            replaces, else ``0o666`` minus the umask)
    """
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    final_mode = _target_mode(path) if mode is None else mode
    fd, tmp = tempfile.mkstemp(prefix='.' + osp.basename(path) + '.',
                               suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), final_mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    r"""Writes ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(text.encode('utf-8')))


def atomic_write_json(path: str, obj: Any) -> None:
    r"""Writes ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + '\n')


def atomic_torch_save(path: str, obj: Any) -> None:
    r""":func:`torch.save` of ``obj`` to ``path``, atomically."""
    import torch

    def write(f):
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        f.write(buffer.getvalue())

    atomic_write(path, write)
