"""Atomic file writes shared by datasets, checkpoints and metrics."""
import io
import json
import os
import os.path as osp
import tempfile
from typing import Any, Callable


def atomic_write(path: str, write: Callable[[Any], None]) -> None:
    r"""Calls ``write(file_object)`` on a temporary file in the directory of
    ``path`` and renames it over ``path``: readers never see a partial
    file, even if the writer is interrupted or crashes."""
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + osp.basename(path) + '.',
                               suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode('utf-8')))


def atomic_write_json(path: str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + '\n')


def atomic_torch_save(path: str, obj: Any) -> None:
    import torch

    def write(f):
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        f.write(buffer.getvalue())

    atomic_write(path, write)
