"""Checkpoints load with ``weights_only=True``: a hostile file runs nothing,
a damaged one is named; generator states survive the safe format."""
import json
import os
import os.path as osp
import pickle
import random

import numpy as np
import pytest
import torch

from tests.train._helpers import one_line_error, quiet
from torch_geometric_remul.cli import main
from torch_geometric_remul.train import (
    RunDirectoryError,
    TrainConfig,
    load_run,
    train,
)
from torch_geometric_remul.train.checkpoint import (
    load_checkpoint,
    rng_state,
    set_rng_state,
)

#: The three commands that read a run's checkpoint.
COMMANDS = {
    'evaluate': lambda run: ['evaluate', run],
    'check': lambda run: ['check', run, '--samples', '2', '--graphs', '2'],
    'train': lambda run: ['train', '--resume', run, '--no-progress',
                          '--epochs', '2'],
}


class Payload:
    """Unpickling this runs ``code`` (what a hostile checkpoint does)."""
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (exec, (self.code, ))


def test_genuine_checkpoint_loads_weights_only(finished):
    ckpt = torch.load(finished / 'checkpoint.pt', weights_only=True)
    assert ckpt['format'] == 3 and ckpt['epoch'] == 1
    # the best-validation state travels with the checkpoint
    assert ckpt['best']['epoch'] == 1
    assert ckpt['best']['val_mse'] == ckpt['history'][0]['val_mse']
    assert all(torch.equal(ckpt['best']['model'][k], ckpt['model'][k])
               for k in ckpt['model'])
    assert len(ckpt['code_versions']) == 1
    best = torch.load(finished / 'best.pt', weights_only=True)
    assert best['epoch'] == 1 and best['selection'] == 'best_val'
    rng = ckpt['rng']
    assert set(rng) == {'torch', 'python', 'numpy', 'loss_generator', 'cuda'}
    assert rng['python']['internal'].dtype == torch.int64
    assert rng['numpy']['keys'].shape == (624, )


def test_rng_state_round_trip_through_a_safe_file(tmp_path):
    generator = torch.Generator().manual_seed(3)
    random.seed(1)
    np.random.seed(2)
    random.gauss(0, 1)  # leaves a cached Gaussian in Python's state
    state = rng_state(generator)
    expected = (random.random(), random.gauss(0, 1), np.random.rand(),
                np.random.randn(), torch.rand(2),
                torch.rand(2, generator=generator))
    torch.save(state, tmp_path / 'rng.pt')
    loaded = torch.load(tmp_path / 'rng.pt', weights_only=True)
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    generator.manual_seed(99)
    set_rng_state(loaded, generator)
    got = (random.random(), random.gauss(0, 1), np.random.rand(),
           np.random.randn(), torch.rand(2),
           torch.rand(2, generator=generator))
    assert got[:4] == expected[:4]
    assert torch.equal(got[4], expected[4])
    assert torch.equal(got[5], expected[5])


def _hostile(run, marker):
    """Replaces the run's checkpoint with a genuine-looking one that also
    carries a payload creating ``marker`` when unpickled."""
    path = osp.join(run, 'checkpoint.pt')
    ckpt = torch.load(path, weights_only=True)
    ckpt['history'].append({'note': Payload(
        f'open({str(marker)!r}, "w").write("ran")')})
    torch.save(ckpt, path)
    return path


def test_the_payload_is_real(tmp_path):
    # what unrestricted unpickling (the old weights_only=False) does with it
    marker = tmp_path / 'ran-unsafe'
    pickle.loads(pickle.dumps(Payload(f'open({str(marker)!r}, "w")')))
    assert marker.exists()


@pytest.mark.parametrize('command', list(COMMANDS))
def test_hostile_checkpoint_runs_nothing(run_copy, tmp_path, capsys,
                                         command):
    marker = tmp_path / 'pwned'
    path = _hostile(run_copy, marker)
    before = open(path, 'rb').read()
    assert main(COMMANDS[command](str(run_copy))) == 1
    line = one_line_error(capsys.readouterr().err, command)
    assert f'{path} was refused' in line
    assert 'nothing in it was run' in line
    assert not marker.exists()
    assert open(path, 'rb').read() == before  # left for inspection
    with pytest.raises(RunDirectoryError, match='refused'):
        load_run(str(run_copy))
    assert not marker.exists()


def _truncated(path):
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 2])


def _garbage(path):
    open(path, 'wb').write(b'\x00garbage\xff' * 100)


def _empty(path):
    open(path, 'wb').close()


def _directory(path):
    os.unlink(path)
    os.mkdir(path)


def _not_a_checkpoint(path):
    torch.save([1, 2, 3], path)


def _missing_entry(path):
    ckpt = torch.load(path, weights_only=True)
    del ckpt['optimizer']
    torch.save(ckpt, path)


DAMAGE = {'truncated': _truncated, 'garbage': _garbage, 'empty': _empty,
          'directory': _directory, 'not a checkpoint': _not_a_checkpoint,
          'missing entry': _missing_entry}


@pytest.mark.parametrize('damage', list(DAMAGE))
@pytest.mark.parametrize('command', list(COMMANDS))
def test_damaged_checkpoint_is_named(run_copy, capsys, damage, command):
    path = osp.join(run_copy, 'checkpoint.pt')
    DAMAGE[damage](path)
    assert main(COMMANDS[command](str(run_copy))) == 1
    line = one_line_error(capsys.readouterr().err, command)
    assert path in line
    assert 'damaged' in line or 'is a directory' in line


CONFIG_DAMAGE = {
    'empty': ('', 'is damaged (empty)'),
    'truncated': ('{"task": "nbody", "epochs": 1,', 'not valid JSON'),
    'garbage': ('\x00\x01 not json', 'not valid JSON'),
    'a list': ('[1, 2]', 'holds a JSON list'),
    'wrong type': (None, "'lr' must be a number"),
    'unknown field': (None, 'unknown config field'),
}


@pytest.mark.parametrize('damage', list(CONFIG_DAMAGE))
@pytest.mark.parametrize('command', list(COMMANDS))
def test_damaged_config_is_named(run_copy, capsys, damage, command):
    path = osp.join(run_copy, 'config.json')
    text, expected = CONFIG_DAMAGE[damage]
    if text is None:
        values = json.load(open(path))
        if damage == 'wrong type':
            values['lr'] = 'fast'
        else:
            values['colour'] = 'blue'
        text = json.dumps(values)
    open(path, 'w').write(text)
    assert main(COMMANDS[command](str(run_copy))) == 1
    line = one_line_error(capsys.readouterr().err, command)
    assert path in line and expected in line


def test_checkpoint_of_another_model_is_named(run_copy, capsys):
    path = osp.join(run_copy, 'config.json')
    values = json.load(open(path))
    values['hidden_channels'] = 16  # the weights were saved for 8
    json.dump(values, open(path, 'w'))
    for command in ('evaluate', 'train'):
        assert main(COMMANDS[command](str(run_copy))) == 1
        line = one_line_error(capsys.readouterr().err, command)
        # evaluate reads the best-validation model, train the checkpoint
        name = 'best.pt' if command == 'evaluate' else 'checkpoint.pt'
        assert osp.join(run_copy, name) in line
        assert "does not match the run's config.json" in line


def test_first_layout_checkpoint_resumes(run_copy):
    # checkpoints written before the safe layout kept the loss and CPU
    # generators at the top level
    path = osp.join(run_copy, 'checkpoint.pt')
    ckpt = torch.load(path, weights_only=True)
    rng = ckpt.pop('rng')
    del ckpt['format']
    ckpt['torch_rng'], ckpt['loss_generator'] = rng['torch'], \
        rng['loss_generator']
    torch.save(ckpt, path)
    assert load_checkpoint(path)['rng']['torch'].equal(rng['torch'])
    res = train(TrainConfig(epochs=2), resume_from=str(run_copy),
                progress=False, log=quiet)
    assert [row['epoch'] for row in res.history] == [1, 2]
