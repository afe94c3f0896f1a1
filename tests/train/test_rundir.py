"""Run directories: never overwritten, never left half-made, clear errors
for the environment (files in the way, read-only places, a full disk)."""
import errno
import json
import os
import os.path as osp
import resource
import signal
import tempfile

import pytest
import torch

import torch_geometric_remul.train.loop as loop
from tests.train._helpers import (
    make_config,
    one_line_error,
    quiet,
    snapshot,
    tiny_args,
)
from torch_geometric_remul.cli import main
from torch_geometric_remul.train import (
    RunDirectoryError,
    TrainConfig,
    TrainingError,
    train,
)
from torch_geometric_remul.train.rundir import LOCK, RUN_FILES, RunLock


def test_new_run_refuses_a_directory_holding_a_run(run_copy, data_root,
                                                   capsys):
    before = snapshot(run_copy)
    run = str(run_copy)
    assert main(tiny_args(data_root, run_dir=run, seed=5)) == 1
    line = one_line_error(capsys.readouterr().err)
    assert f"{run} holds another run" in line
    assert f"remul train --resume {run}" in line and '--overwrite' in line
    assert snapshot(run_copy) == before
    with pytest.raises(RunDirectoryError, match='holds another run'):
        train(make_config(run, data_root, epochs=1, seed=5), progress=False,
              log=quiet)
    assert snapshot(run_copy) == before
    # --overwrite replaces it
    assert main(tiny_args(data_root, run_dir=run, seed=5) +
                ['--overwrite']) == 0
    assert json.load(open(run_copy / 'config.json'))['seed'] == 5
    assert snapshot(run_copy)['checkpoint.pt'] != before['checkpoint.pt']


def test_resume_refuses_options_that_differ(run_copy, capsys):
    before = snapshot(run_copy)
    run = str(run_copy)
    assert main(['train', '--resume', run, '--lr', '5', '--model',
                 'transformer', '--beta', '100', '--no-progress']) == 1
    line = one_line_error(capsys.readouterr().err)
    for part in ("--lr 5.0 (the run has 0.0005)",
                 "--model transformer (the run has 'gnn')",
                 "--beta 100.0 (the run has 1.0)",
                 "only --epochs, --data-root, --val-equivariance may change"):
        assert part in line, line
    assert snapshot(run_copy) == before
    for bad, message in ((['--overwrite'], '--overwrite cannot be combined'),
                         (['--run-dir', 'elsewhere'],
                          '--run-dir cannot be combined'),
                         (['--epochs', '0'], "'epochs' must be >= 1")):
        assert main(['train', '--resume', run, '--no-progress'] + bad) == 1
        assert message in one_line_error(capsys.readouterr().err)
    assert snapshot(run_copy) == before
    # options equal to the run's are accepted; --epochs extends the run and
    # the command says what it applied
    assert main(['train', '--resume', run, '--no-progress', '--lr', '5e-4',
                 '--group', 'so3', '--epochs', '2']) == 0
    out = capsys.readouterr().out
    assert 'resuming with --epochs 2 (was 1)' in out
    assert json.load(open(run_copy / 'metrics.json'))[-1]['epoch'] == 2
    assert main(['train', '--resume', run, '--no-progress', '--epochs',
                 '1']) == 1
    assert ('--epochs 1 is fewer than the 2 epochs the run has already '
            'done') in one_line_error(capsys.readouterr().err)


def _killed_in_first_epoch(monkeypatch, run, data_root):
    """What ``kill -9`` during the first epoch leaves: the directory and
    its config.json (the process never gets to clean up)."""
    monkeypatch.setattr(loop.RunFiles, 'abandon', lambda self: None)

    def killed(*args, **kwargs):
        raise SystemExit(137)

    with monkeypatch.context() as m:
        m.setattr(loop, 'train_step', killed)
        with pytest.raises(SystemExit):
            train(make_config(run, data_root), progress=False, log=quiet)
    monkeypatch.undo()
    assert sorted(os.listdir(run)) == ['config.json']


def test_run_killed_in_its_first_epoch(tmp_path, data_root, monkeypatch,
                                       capsys):
    run = str(tmp_path / 'run')
    _killed_in_first_epoch(monkeypatch, run, data_root)
    for args in (['train', '--resume', run, '--no-progress'],
                 ['evaluate', run]):
        assert main(args) == 1
        line = one_line_error(capsys.readouterr().err, args[0])
        assert f'the run in {run} never reached a checkpoint' in line
        assert f'remul train --run-dir {run} --overwrite' in line
    assert main(tiny_args(data_root, run_dir=run)) == 1
    assert 'never reached a checkpoint (only config.json): pass ' \
        '--overwrite' in one_line_error(capsys.readouterr().err)
    assert main(tiny_args(data_root, run_dir=run) + ['--overwrite']) == 0


def test_failed_run_removes_only_what_it_created(tmp_path, data_root,
                                                 monkeypatch):
    def failing(*args, **kwargs):
        raise TrainingError('boom')

    monkeypatch.setattr(loop, 'train_step', failing)
    # directories this invocation created are removed, up to the first
    # one that existed
    nested = tmp_path / 'a' / 'b' / 'run'
    lines = []
    with pytest.raises(TrainingError, match='boom'):
        train(make_config(nested, data_root), progress=False,
              log=lines.append)
    assert not (tmp_path / 'a').exists() and tmp_path.exists()
    assert lines[-1] == ('the run stopped before its first checkpoint: the '
                         f'run directory {nested} was removed')
    # a directory that existed stays, with what it held
    existing = tmp_path / 'mine'
    existing.mkdir()
    (existing / 'notes.txt').write_text('keep me')
    with pytest.raises(TrainingError, match='boom'):
        train(make_config(existing, data_root), progress=False, log=quiet)
    assert sorted(os.listdir(existing)) == ['notes.txt']
    # a failure before any work creates nothing
    with pytest.raises(ValueError, match="'beta'"):
        train(make_config(tmp_path / 'never', data_root, beta=-1.0),
              progress=False, log=quiet)
    assert not (tmp_path / 'never').exists()


BAD_OPTIONS = {
    'group': (['--group', 'XYZ'], "'group' must be one of"),
    'beta nan': (['--beta', 'nan'], "'beta' must be a finite number >= 0"),
    'lr nan': (['--lr', 'nan'], "'lr' must be a finite number > 0"),
    'lr 0': (['--lr', '0'], "'lr' must be a finite number > 0"),
    'epsilon inf': (['--epsilon', 'inf'], "'epsilon' must be a finite"),
    'alpha -1 constant': (['--alpha', '-1'], "'alpha' must be a finite"),
    'alpha -1 schedule': (['--alpha', '-1', '--weighting', 'schedule'],
                          "'alpha' must be a finite"),
    'alpha -1 gradnorm': (['--alpha', '-1', '--weighting', 'gradnorm'],
                          "'alpha' must be a finite"),
    'alpha -1 target': (['--alpha', '-1', '--weighting', 'target'],
                        "'alpha' must be a finite"),
    'beta inf schedule': (['--beta', 'inf', '--weighting', 'schedule'],
                          "'beta' must be a finite"),
    'beta 0 gradnorm': (['--beta', '0', '--weighting', 'gradnorm'],
                        "'beta' must be > 0 with weighting 'gradnorm'"),
    'beta 0 target': (['--beta', '0', '--weighting', 'target'],
                      "weighting 'target'"),
    'both zero': (['--alpha', '0', '--beta', '0'], 'both 0'),
    'source': (['--source', 'bogus'],
               "'source' is not an option of the nbody task"),
    'mocap source': (['--task', 'mocap', '--source', 'bogus'],
                     "'source' for the mocap task must be one of"),
    'hidden_channels': (['--hidden-channels', '0'],
                        "'hidden_channels' must be >= 1"),
    'eval samples': (['--eval-samples', '0'], "'eval_samples' must be"),
}


@pytest.mark.parametrize('case', list(BAD_OPTIONS))
def test_options_are_checked_before_any_work(tmp_path, capsys, case):
    args, message = BAD_OPTIONS[case]
    data, run = tmp_path / 'data', tmp_path / 'run'
    assert main(tiny_args(str(data), run_dir=str(run)) + args) == 1
    assert message in one_line_error(capsys.readouterr().err)
    assert not data.exists() and not run.exists()  # nothing simulated


def test_zero_weights_where_they_make_sense(tmp_path, data_root):
    # alpha = 0: the equivariance term alone (augmentation), beta = 0: the
    # task loss alone
    for alpha, beta in ((0.0, 1.0), (1.0, 0.0)):
        res = train(make_config(tmp_path / f'{alpha}-{beta}', data_root,
                                epochs=1, alpha=alpha, beta=beta),
                    progress=False, log=quiet)
        assert res.history[0]['train_loss'] > 0


def test_run_dir_in_the_way(tmp_path, capsys):
    data = tmp_path / 'data'
    a_file = tmp_path / 'file'
    a_file.write_text('x')
    for run, message in ((a_file, f'the run directory {a_file} is a file'),
                         (a_file / 'run', f'{a_file} is a file, not a '
                          f'directory')):
        assert main(tiny_args(str(data), run_dir=str(run))) == 1
        assert message in one_line_error(capsys.readouterr().err)
    assert not data.exists()


def _read_only(monkeypatch, path):
    """Makes ``path`` read-only: chmod, or, for root (whom permissions do
    not stop), what the kernel answers for a read-only file system."""
    path = osp.abspath(path)
    if os.geteuid() != 0:
        os.chmod(path, 0o555)
        return
    real_access, real_mkstemp = os.access, tempfile.mkstemp
    real_makedirs = os.makedirs

    def under(p):
        p = osp.abspath(p)
        return p == path or p.startswith(path + os.sep)

    def access(p, mode, *args, **kwargs):
        if under(p) and mode & os.W_OK:
            return False
        return real_access(p, mode, *args, **kwargs)

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and under(dir):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), dir)
        return real_mkstemp(*args, dir=dir, **kwargs)

    def makedirs(p, *args, **kwargs):
        if under(p) and not osp.isdir(p):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), p)
        return real_makedirs(p, *args, **kwargs)

    monkeypatch.setattr(os, 'access', access)
    monkeypatch.setattr(tempfile, 'mkstemp', mkstemp)
    monkeypatch.setattr(os, 'makedirs', makedirs)


def test_read_only_run_dir(tmp_path, data_root, monkeypatch, capsys):
    parent = tmp_path / 'ro'
    parent.mkdir()
    _read_only(monkeypatch, parent)
    try:
        assert main(tiny_args(data_root, run_dir=str(parent))) == 1
        assert f'cannot write to the run directory {parent}' in \
            one_line_error(capsys.readouterr().err)
        assert main(tiny_args(data_root, run_dir=str(parent / 'run'))) == 1
        assert f'{parent} is not writable' in \
            one_line_error(capsys.readouterr().err)
    finally:
        os.chmod(parent, 0o755)


def test_read_only_data_root(tmp_path, monkeypatch, capsys):
    data = tmp_path / 'data'
    data.mkdir()
    _read_only(monkeypatch, data)
    run = tmp_path / 'run'
    try:
        assert main(tiny_args(str(data), run_dir=str(run))) == 1
        line = one_line_error(capsys.readouterr().err)
        assert f'cannot prepare the nbody data under {data}' in line
        assert 'Read-only file system' in line or 'Permission denied' in line
        assert not run.exists()
    finally:
        os.chmod(data, 0o755)


@pytest.fixture
def file_size_limit():
    """Sets RLIMIT_FSIZE (the kernel then fails writes past it with EFBIG,
    as a full disk fails them with ENOSPC) and restores it."""
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def set_limit(size):
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, old_limit[1]))

    yield set_limit
    resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
    signal.signal(signal.SIGXFSZ, old_handler)


def test_file_too_large_is_one_line_and_leaves_nothing(tmp_path, data_root,
                                                       capsys,
                                                       file_size_limit):
    run = tmp_path / 'run'
    # config.json (< 1 kB) fits, the first checkpoint (tens of kB) does not
    file_size_limit(4096)
    code = main(tiny_args(data_root, run_dir=str(run)))
    file_size_limit(resource.RLIM_INFINITY)
    assert code == 1
    line = one_line_error(capsys.readouterr().err)
    assert line == (f'remul train: error: cannot write the run files in '
                    f'{run}: File too large')
    assert not run.exists()  # the run never reached a checkpoint


def test_full_disk_later_keeps_the_last_checkpoint(tmp_path, data_root,
                                                   monkeypatch, capsys):
    run = tmp_path / 'run'
    real_save = torch.save
    calls = []

    def full_disk(obj, f, *args, **kwargs):
        calls.append('optimizer' in obj)  # a checkpoint, not best.pt
        if sum(calls) == 2 and calls[-1]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, 'save', full_disk)
    assert main(tiny_args(data_root, run_dir=str(run), epochs=2)) == 1
    line = one_line_error(capsys.readouterr().err)
    assert line == (f'remul train: error: cannot write the run files in '
                    f'{run}: No space left on device; the checkpoint of '
                    f'epoch 1 is intact: make room, then continue with: '
                    f'remul train --resume {run}')
    monkeypatch.undo()
    assert main(['train', '--resume', str(run), '--no-progress']) == 0


@pytest.mark.parametrize('umask', [0o022, 0o077, 0o002])
def test_run_files_respect_the_umask(tmp_path, data_root, umask):
    old = os.umask(umask)
    try:
        res = train(make_config(tmp_path / 'run', data_root, epochs=1),
                    progress=False, log=quiet)
    finally:
        os.umask(old)
    modes = {name: mode for name, (_, mode) in
             snapshot(res.run_dir).items()}
    expected = 0o666 & ~umask
    for name in RUN_FILES:
        assert modes[name] == expected, (name, oct(modes[name]))
    for name in ('loss.png', 'equivariance.png'):  # plain writes
        if name in modes:
            assert modes[name] == expected


def test_resumed_run_keeps_file_modes(run_copy):
    os.chmod(run_copy / 'checkpoint.pt', 0o640)
    train(TrainConfig(epochs=2), resume_from=str(run_copy), progress=False,
          log=quiet)
    assert os.stat(run_copy / 'checkpoint.pt').st_mode & 0o777 == 0o640


def test_resume_on_a_read_only_run_dir_fails_before_training(
        run_copy, monkeypatch, capsys):
    steps = []
    real_step = loop.train_step

    def counting_step(*args, **kwargs):
        steps.append(1)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, 'train_step', counting_step)
    before = snapshot(run_copy)
    _read_only(monkeypatch, run_copy)
    try:
        assert main(['train', '--no-progress', '--resume', str(run_copy),
                     '--epochs', '2']) == 1
    finally:
        os.chmod(run_copy, 0o755)
    line = one_line_error(capsys.readouterr().err)
    assert f'cannot write to the run directory {run_copy}' in line
    assert not steps  # no epoch was trained (it used to train one first)
    assert snapshot(run_copy) == before


_HOLDER = r'''
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f'{os.getpid()} somehost\n'.encode())
print('locked', flush=True)
sys.stdin.read()  # holds the lock until the test closes stdin
'''


@pytest.fixture
def lock_holder():
    """Starts a second process that holds the lock of a run directory
    (the way a training run does) until the test ends."""
    import subprocess
    import sys
    procs = []

    def hold(run_dir):
        proc = subprocess.Popen(
            [sys.executable, '-c', _HOLDER, osp.join(run_dir, LOCK)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == 'locked'
        return proc

    yield hold
    for proc in procs:
        proc.stdin.close()
        proc.wait(timeout=60)


def test_a_run_directory_in_use_is_refused(run_copy, data_root, lock_holder,
                                           capsys):
    run = str(run_copy)
    holder = lock_holder(run)
    before = snapshot(run_copy)
    # --resume of a run that is still training
    assert main(['train', '--no-progress', '--resume', run, '--epochs',
                 '2']) == 1
    line = one_line_error(capsys.readouterr().err)
    assert f'{run} is in use by another run (process {holder.pid} on ' \
        f'somehost holds {osp.join(run, LOCK)})' in line
    # --overwrite of it: refused before any data are read
    assert main(tiny_args(data_root, run_dir=run, overwrite=None) +
                ['--overwrite']) == 1
    assert f'process {holder.pid}' in one_line_error(capsys.readouterr().err)
    assert snapshot(run_copy) == before
    # once the other process is gone, the run resumes (and its lock goes)
    holder.stdin.close()
    holder.wait(timeout=60)
    assert main(['train', '--no-progress', '--resume', run, '--epochs',
                 '2']) == 0
    capsys.readouterr()
    assert json.loads((run_copy / 'results.json').read_text())
    assert not osp.lexists(osp.join(run, LOCK))


def test_the_lock_is_held_for_the_life_of_a_run(tmp_path, data_root,
                                                monkeypatch):
    """While a new run trains, another open of its lock file (the second
    open file description a second process would have) is refused; a lock
    file left by a killed run holds no lock and is taken over."""
    run = tmp_path / 'run'
    seen = []
    real_step = loop.train_step

    def probing_step(*args, **kwargs):
        if not seen:
            with pytest.raises(RunDirectoryError) as info:
                RunLock(str(run)).acquire()
            seen.append(str(info.value))
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, 'train_step', probing_step)
    train(make_config(run, data_root, epochs=1), progress=False, log=quiet)
    assert f'process {os.getpid()} on ' in seen[0]
    assert not osp.lexists(run / LOCK)  # released and removed at the end
    (run / LOCK).write_text('999999 elsewhere\n')  # left by a killed run
    result = train(make_config(run, data_root, epochs=2),
                   resume_from=str(run), progress=False, log=quiet)
    assert len(result.history) == 2 and len(seen) == 1
    assert not osp.lexists(run / LOCK)
