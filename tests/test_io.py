import os

import pytest
import torch

from torch_geometric_remul._io import (
    atomic_torch_save,
    atomic_write,
    atomic_write_json,
)


def mode(path):
    return os.stat(path).st_mode & 0o777


@pytest.mark.parametrize('umask', [0o022, 0o077, 0o002, 0o000])
def test_new_file_gets_the_mode_of_a_plain_write(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / 'a.json', {'x': 1})
        with open(tmp_path / 'plain', 'w') as f:
            f.write('x')
    finally:
        os.umask(old)
    assert mode(tmp_path / 'a.json') == mode(tmp_path / 'plain') == \
        0o666 & ~umask


def test_replaced_file_keeps_its_mode(tmp_path):
    path = tmp_path / 'state.pt'
    atomic_torch_save(path, {'a': torch.ones(2)})
    os.chmod(path, 0o640)
    atomic_torch_save(path, {'a': torch.zeros(2)})
    assert mode(path) == 0o640
    assert torch.equal(torch.load(path, weights_only=True)['a'],
                       torch.zeros(2))
    atomic_write(path, lambda f: f.write(b'x'), mode=0o600)
    assert mode(path) == 0o600


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / 'metrics.json'
    atomic_write_json(path, [1])

    def failing(f):
        f.write(b'partial')
        raise OSError(28, 'No space left on device')

    with pytest.raises(OSError, match='No space left'):
        atomic_write(path, failing)
    assert path.read_text() == '[\n  1\n]\n'
    assert sorted(os.listdir(tmp_path)) == ['metrics.json']


KILLED_WRITER = r'''
import importlib.util, os, signal, sys
spec = importlib.util.spec_from_file_location('_io', sys.argv[1])
io_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(io_module)

def write(f):
    f.write(b'half of the new content')
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)

io_module.atomic_write(sys.argv[2], write)
'''


def test_kill_9_while_writing_keeps_the_old_file(tmp_path):
    import subprocess
    import sys

    import torch_geometric_remul._io as io_module
    path = tmp_path / 'checkpoint.pt'
    path.write_bytes(b'the complete old content')
    proc = subprocess.run([sys.executable, '-c', KILLED_WRITER,
                           io_module.__file__, str(path)], timeout=60)
    assert proc.returncode == -9
    assert path.read_bytes() == b'the complete old content'
    # what remains of the interrupted write: one hidden temporary file
    left = sorted(p.name for p in tmp_path.iterdir() if p != path)
    assert len(left) == 1 and left[0].startswith('.checkpoint.pt.') and \
        left[0].endswith('.tmp')
