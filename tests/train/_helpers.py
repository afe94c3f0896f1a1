"""Tiny training configurations and command lines shared by the tests of
the training loop, run directories and checkpoints."""
import hashlib
import os
import os.path as osp

from torch_geometric_remul.train import TrainConfig


def interrupt_in_epoch(monkeypatch, epoch: int = 2):
    """Makes the training loop stop as on Ctrl-C in epoch ``epoch`` (its
    evaluation, called once per epoch, raises ``KeyboardInterrupt``);
    returns a function that undoes it."""
    import torch_geometric_remul.train.loop as loop
    real, calls = loop.evaluate_split, []

    def interrupting(*args, **kwargs):
        calls.append(1)
        if len(calls) == epoch:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(loop, 'evaluate_split', interrupting)
    return lambda: monkeypatch.setattr(loop, 'evaluate_split', real)


#: A configuration that trains in about a second.
TINY = dict(num_train=16, num_val=8, num_test=8, hidden_channels=8,
            num_layers=1, batch_size=8, eval_graphs=8, eval_samples=2)


def make_config(run_dir, data_root, **kw) -> TrainConfig:
    values = dict(TINY, epochs=2, data_root=str(data_root),
                  run_dir=str(run_dir))
    values.update(kw)
    return TrainConfig(**values)


def tiny_args(data_root, **kw):
    """``remul train`` arguments of a tiny run (``key=value`` overrides;
    ``key=None`` drops the option)."""
    values = dict(TINY, epochs=1, data_root=data_root)
    values.update(kw)
    args = ['train', '--no-progress']
    for key, value in values.items():
        if value is not None:
            args += [f'--{key.replace("_", "-")}', str(value)]
    return args


def quiet(line: str) -> None:
    pass


def snapshot(directory):
    """``{name: (sha256, mode)}`` of the files in ``directory``."""
    out = {}
    for name in sorted(os.listdir(directory)):
        path = osp.join(directory, name)
        if osp.isfile(path):
            with open(path, 'rb') as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            out[name] = (digest, os.stat(path).st_mode & 0o777)
    return out


def one_line_error(err: str, command: str = 'train') -> str:
    """The error line of a failed command: exactly one line on stderr
    (besides dataset progress lines), no traceback."""
    lines = [line for line in err.strip().splitlines()
             if line not in ('Processing...', 'Done!')]
    assert 'Traceback' not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f'remul {command}: error'), err
    return lines[0]
