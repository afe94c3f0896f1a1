import json
import os.path as osp

import pytest
import torch

import torch_geometric_remul.train.loop as loop
from torch_geometric_remul.cli import main
from torch_geometric_remul.train import (TrainConfig, TrainingError,
                                         last_layer_parameters, restore_model,
                                         train)

TINY = dict(num_train=16, num_val=8, num_test=8, hidden=8, layers=1,
            batch_size=8, eval_graphs=8, eval_samples=2)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp('data'))


def config(tmp_path, data_root, **kw):
    values = dict(TINY, epochs=2, data_root=data_root,
                  run_dir=str(tmp_path / 'run'))
    values.update(kw)
    return TrainConfig(**values)


def test_cli_train_evaluate_check(tmp_path, data_root, capsys):
    run = str(tmp_path / 'run')
    args = ['train', '--epochs', '2', '--data-root', data_root, '--run-dir',
            run, '--no-progress']
    for key, value in TINY.items():
        args += [f'--{key.replace("_", "-")}', str(value)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert 'test MSE' in out and "E' (equivariance error)" in out
    assert run in out
    for name in ('config.json', 'checkpoint.pt', 'metrics.csv',
                 'metrics.json', 'results.json'):
        assert osp.exists(osp.join(run, name)), name
    history = json.load(open(osp.join(run, 'metrics.json')))
    assert [row['epoch'] for row in history] == [1, 2]
    assert all(row['val_E_prime'] > 0 for row in history)
    try:
        import matplotlib  # noqa: F401
        assert osp.exists(osp.join(run, 'loss.png'))
        assert osp.exists(osp.join(run, 'equivariance.png'))
    except ImportError:
        pass
    assert main(['evaluate', run]) == 0
    assert 'MSE' in capsys.readouterr().out
    assert main(['check', run, '--samples', '3', '--graphs', '4']) == 0
    assert "E'" in capsys.readouterr().out
    # the rotated split belongs to the gravity task only
    assert main(['evaluate', run, '--split', 'ood']) == 1
    assert 'gravity task only' in capsys.readouterr().err


def test_cli_evaluate_gravity_ood_split(tmp_path, data_root, capsys):
    run = str(tmp_path / 'run')
    args = ['train', '--task', 'gravity', '--model', 'egnn', '--loss',
            'plain', '--epochs', '1', '--data-root', data_root, '--run-dir',
            run, '--no-progress']
    for key, value in TINY.items():
        args += [f'--{key.replace("_", "-")}', str(value)]
    assert main(args) == 0
    capsys.readouterr()
    mse = {}
    for split in ('test', 'ood'):
        assert main(['evaluate', run, '--split', split, '--data-root',
                     data_root]) == 0
        out = capsys.readouterr().out
        assert f'{split} split' in out
        mse[split] = float(out.split('MSE')[1].split()[0].strip('|'))
    # EGNN is equivariant: rotating every test system changes nothing
    assert mse['ood'] == pytest.approx(mse['test'], rel=1e-4)


def test_resume_is_bit_exact(tmp_path, data_root):
    full = train(config(tmp_path / 'a', data_root, epochs=3), progress=False,
                 log=lambda s: None)
    part = train(config(tmp_path / 'b', data_root, epochs=1), progress=False,
                 log=lambda s: None)
    assert len(part.history) == 1
    resumed = train(TrainConfig(epochs=3), resume_from=part.run_dir,
                    progress=False, log=lambda s: None)
    keys = ('train_loss', 'train_task', 'train_equi', 'val_mse',
            'val_E_prime')
    for a, b in zip(full.history, resumed.history):
        for key in keys:
            assert a[key] == b[key], (key, a, b)
    sa = torch.load(osp.join(full.run_dir, 'checkpoint.pt'),
                    weights_only=False)['model']
    sb = torch.load(osp.join(resumed.run_dir, 'checkpoint.pt'),
                    weights_only=False)['model']
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert full.test['mse'] == resumed.test['mse']


@pytest.mark.parametrize('loss,weighting', [('plain', 'constant'),
                                            ('augment', 'constant'),
                                            ('remul', 'schedule'),
                                            ('remul', 'gradnorm'),
                                            ('remul', 'target')])
def test_losses_and_weightings_run(tmp_path, data_root, loss, weighting):
    res = train(config(tmp_path, data_root, epochs=1, loss=loss,
                       weighting=weighting, fused=loss == 'remul'),
                progress=False, log=lambda s: None)
    assert res.test['mse'] > 0 and len(res.history) == 1


def test_non_finite_loss_names_epoch_and_step(tmp_path, data_root,
                                              monkeypatch):
    real = loop.build_model

    def nan_model(name, **kw):
        model = real(name, **kw)
        original = model.forward
        model.forward = lambda data: original(data) * float('nan')
        return model

    monkeypatch.setattr(loop, 'build_model', nan_model)
    with pytest.raises(TrainingError, match='epoch 1, step 1: .*non-finite'):
        train(config(tmp_path, data_root), progress=False, log=lambda s: None)
    assert main(['train', '--data-root', data_root, '--run-dir',
                 str(tmp_path / 'cli'), '--no-progress', '--epochs', '1',
                 '--num-train', '8', '--num-val', '8', '--num-test',
                 '8']) == 1


def test_crash_while_checkpointing_keeps_previous(tmp_path, data_root,
                                                  monkeypatch):
    cfg = config(tmp_path, data_root, epochs=2)
    calls = []
    real_save = torch.save

    def flaky_save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second epoch's checkpoint
            f.write(b'partial garbage')
            raise OSError('disk full')
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, 'save', flaky_save)
    with pytest.raises(OSError, match='disk full'):
        train(cfg, progress=False, log=lambda s: None)
    monkeypatch.setattr(torch, 'save', real_save)
    ckpt = torch.load(osp.join(cfg.run_dir, 'checkpoint.pt'),
                      weights_only=False)
    assert ckpt['epoch'] == 1
    assert not [p for p in (tmp_path / 'run').iterdir()
                if p.name.endswith('.tmp')]
    resumed = train(TrainConfig(), resume_from=cfg.run_dir, progress=False,
                    log=lambda s: None)
    assert len(resumed.history) == 2


def test_interrupt_leaves_valid_checkpoint(tmp_path, data_root,
                                           monkeypatch):
    cfg = config(tmp_path, data_root, epochs=3)
    real = loop.evaluate_split
    calls = []

    def interrupting(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # during epoch 2
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, 'evaluate_split', interrupting)
    lines = []
    res = train(cfg, progress=False, log=lines.append)
    assert res.interrupted and len(res.history) == 1
    assert any('remul train --resume' in line for line in lines)
    monkeypatch.setattr(loop, 'evaluate_split', real)
    resumed = train(TrainConfig(), resume_from=cfg.run_dir, progress=False,
                    log=lambda s: None)
    assert [r['epoch'] for r in resumed.history] == [1, 2, 3]


def test_bad_config_and_run_dir(tmp_path, capsys):
    with pytest.raises(ValueError, match="'task'"):
        TrainConfig(task='qm9').resolved()
    with pytest.raises(ValueError, match="'epochs'"):
        TrainConfig(epochs=0).resolved()
    with pytest.raises(ValueError, match="'model' must be one of"):
        TrainConfig(model='resnet').resolved()
    assert main(['evaluate', str(tmp_path / 'nope')]) == 1
    assert 'not found' in capsys.readouterr().err
    assert main(['train', '--task', 'mocap', '--no-progress',
                 '--data-root', str(tmp_path)]) == 1


def test_last_layer_parameters():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(),
                                torch.nn.Linear(3, 1))
    params = last_layer_parameters(model)
    assert params[0] is model[2].weight and params[1] is model[2].bias


def test_restore_model_with_moved_data(tmp_path, data_root):
    result = train(config(tmp_path, data_root), progress=False,
                   log=lambda s: None)
    cfg, spec, model = restore_model(result.run_dir)
    assert cfg.data_root == data_root and not model.training
    state = {k: v.clone() for k, v in model.state_dict().items()}
    moved = str(tmp_path / 'moved')
    cfg2, _, model2 = restore_model(result.run_dir, data_root=moved)
    assert cfg2.data_root == moved
    assert osp.isdir(osp.join(moved, 'charged'))  # the data were made there
    for key, value in model2.state_dict().items():
        assert torch.equal(value, state[key])
