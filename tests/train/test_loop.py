import json
import os.path as osp

import pytest
import torch
from torch_geometric.data import Batch

import torch_geometric_remul.train.build as build
import torch_geometric_remul.train.loop as loop
from tests.train._helpers import (
    TINY,
    interrupt_in_epoch,
    make_config,
    one_line_error,
    quiet,
    tiny_args,
)
from torch_geometric_remul import debug, is_debug_enabled
from torch_geometric_remul.cli import main
from torch_geometric_remul.testing import assert_no_syncs, count_syncs
from torch_geometric_remul.train import (
    EpochStats,
    TrainConfig,
    TrainingError,
    build_loss,
    build_optimizer,
    build_task_model,
    last_layer_parameters,
    restore_model,
    task_spec,
    train,
    train_step,
)


def config(tmp_path, data_root, **kw):
    return make_config(tmp_path / 'run', data_root, **kw)


def test_cli_train_evaluate_check(tmp_path, data_root, capsys):
    run = str(tmp_path / 'run')
    assert main(tiny_args(data_root, epochs=2, run_dir=run)) == 0
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
    args = tiny_args(data_root, run_dir=run, task='gravity', model='egnn',
                     loss='plain')
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
                 log=quiet)
    part = train(config(tmp_path / 'b', data_root, epochs=1), progress=False,
                 log=quiet)
    assert len(part.history) == 1
    lines = []
    resumed = train(TrainConfig(epochs=3), resume_from=part.run_dir,
                    progress=False, log=lines.append)
    assert 'resuming with --epochs 3 (was 1)' in lines
    keys = ('train_loss', 'train_task', 'train_equi', 'val_mse',
            'val_E_prime')
    for a, b in zip(full.history, resumed.history):
        for key in keys:
            assert a[key] == b[key], (key, a, b)
    sa = torch.load(osp.join(full.run_dir, 'checkpoint.pt'),
                    weights_only=True)['model']
    sb = torch.load(osp.join(resumed.run_dir, 'checkpoint.pt'),
                    weights_only=True)['model']
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
                progress=False, log=quiet)
    assert res.test['mse'] > 0 and len(res.history) == 1


@pytest.mark.parametrize('fused', [False, True])
def test_compute_matched_augmentation(tmp_path, data_root, fused):
    # two transformed copies per step: two forward passes, like REMUL's,
    # and no task term on the untransformed graphs
    cfg = config(tmp_path, data_root, epochs=1, loss='augment',
                 num_samples=2, fused=fused).resolved()
    spec = task_spec(cfg)
    loss_fn = build_loss(cfg, spec, torch.nn.Linear(3, 3),
                         steps_per_epoch=2)
    assert loss_fn.num_samples == 2 and loss_fn.weighting.alpha == 0
    calls = []
    res = train(cfg, progress=False, log=quiet)
    assert res.test['mse'] > 0
    # one forward on 2B graphs (fused) or two on B graphs each
    net = res.model
    batch = Batch.from_data_list(list(spec.load('train'))[:4])
    handle = net.register_forward_hook(
        lambda m, i, o: calls.append(o.shape[0]))
    try:
        loss_fn(net, batch, batch[spec.target]).loss.backward()
    finally:
        handle.remove()
    n = batch.num_nodes
    assert calls == ([2 * n] if fused else [n, n])
    row = res.history[0]
    assert row['val_E_prime_paper'] >= row['val_E_prime'] > 0


def test_gradnorm_starts_from_the_given_weights(tmp_path, data_root):
    # --alpha/--beta were silently ignored with --weighting gradnorm
    res = train(config(tmp_path, data_root, epochs=1, weighting='gradnorm',
                       alpha=1.0, beta=3.0, fused=True), progress=False,
                log=quiet)
    first = res.history[0]
    assert first['beta'] > first['alpha']  # renormalised 0.5 : 1.5 start


def _nan_model(monkeypatch, at_steps):
    """Makes the model's output NaN during the given (1-based) training
    steps, counted by the loop's calls of ``train_step``."""
    real_build, real_step = build.build_model, loop.train_step
    current = {'step': 0}

    def counting_step(*args, **kwargs):
        current['step'] += 1
        return real_step(*args, **kwargs)

    def nan_model(name, **kw):
        model = real_build(name, **kw)
        original = model.forward

        def forward(data):
            out = original(data)
            if model.training and current['step'] in at_steps:
                out = out * float('nan')
            return out

        model.forward = forward
        return model

    monkeypatch.setattr(build, 'build_model', nan_model)
    monkeypatch.setattr(loop, 'train_step', counting_step)
    return current


def test_non_finite_loss_in_a_debug_step_names_the_step(tmp_path, data_root,
                                                        monkeypatch):
    _nan_model(monkeypatch, at_steps={1})
    with pytest.raises(TrainingError, match='epoch 1, step 1: .*non-finite'):
        train(config(tmp_path, data_root), progress=False, log=quiet)
    assert not (tmp_path / 'run').exists()  # nothing left behind


@pytest.mark.parametrize('loss', ['plain', 'remul'])
def test_non_finite_loss_names_epoch_and_step_window(tmp_path, data_root,
                                                     monkeypatch, capsys,
                                                     loss):
    # 32 graphs in batches of 8: 4 steps per epoch; the NaN comes at step 7,
    # long after the debug steps: the device-side flag catches it at the
    # end of epoch 2, before its checkpoint is written.
    current = _nan_model(monkeypatch, at_steps={7})
    run = tmp_path / 'run'
    cfg = config(tmp_path, data_root, epochs=3, num_train=32, loss=loss,
                 fused=True)
    message = ('non-finite loss in epoch 2, steps 5-8 (first at step 7): '
               'training stopped before writing a checkpoint (the last one '
               'holds epoch 1)')
    with pytest.raises(TrainingError, match=message.replace('(', r'\(')
                       .replace(')', r'\)')):
        train(cfg, progress=False, log=quiet)
    ckpt = torch.load(run / 'checkpoint.pt', weights_only=True)
    assert ckpt['epoch'] == 1
    assert all(torch.isfinite(v).all() for v in ckpt['model'].values())
    # the command: one line, exit 1
    current['step'] = 0
    args = tiny_args(data_root, epochs=3, num_train=32, loss=loss,
                     run_dir=str(tmp_path / 'cli'))
    assert main(args + ['--fused']) == 1
    assert message in one_line_error(capsys.readouterr().err)


def test_epoch_stats_read_once():
    stats = EpochStats(first_step=5)
    values = [1.0, 2.0, float('inf'), float('nan')]
    with count_syncs() as syncs:
        for value in values:
            stats.add(torch.tensor(value), torch.tensor(value / 2), None,
                      share=0.5)
    assert_no_syncs(syncs, 'EpochStats.add')
    with count_syncs() as syncs:
        sums = stats.read()
    assert syncs.count == 1
    assert sums['nonfinite'] == 2 and sums['first_nonfinite_step'] == 7
    assert sums['steps'] == 4 and sums['equi'] != sums['equi']  # NaN
    finite = EpochStats(first_step=1)
    for value in (1.0, 2.0):
        finite.add(torch.tensor(value, dtype=torch.float32), None,
                   torch.tensor(3.0), share=0.25)
    sums = finite.read()
    assert sums['loss'] == 0.75 and sums['equi'] == 1.5
    assert sums['nonfinite'] == 0 and sums['first_nonfinite_step'] is None
    assert sums['task'] != sums['task']  # not computed: NaN


STEPS = ([(model, loss, 'constant') for model in ('gnn', 'transformer',
                                                  'egnn')
          for loss in ('plain', 'augment', 'remul', 'remul-fused')] +
         [('gnn', 'remul-fused', weighting) for weighting in
          ('schedule', 'gradnorm', 'target')])


@pytest.mark.parametrize('model,loss,weighting', STEPS)
def test_training_step_makes_no_host_sync(data_root, model, loss,
                                          weighting):
    """The loop's step (forward, loss, backward, running sums, the
    non-finite flag and the optimiser step, fused Adam's) does not
    synchronise."""
    cfg = TrainConfig(loss=loss.split('-')[0], fused=loss.endswith('fused'),
                      model=model, weighting=weighting, data_root=data_root,
                      **TINY).resolved()
    spec = task_spec(cfg)
    dataset = spec.load('train')
    net = build_task_model(cfg, spec, dataset[0])
    loss_fn = build_loss(cfg, spec, net, steps_per_epoch=2)
    batch = Batch.from_data_list([dataset[i] for i in range(8)])
    stats = EpochStats()
    train_step(net, loss_fn, batch, batch.y)  # first call: lazy set-up
    optimizer = build_optimizer(cfg, net)
    optimizer.step()  # the optimiser's state built
    assert not is_debug_enabled()
    with count_syncs() as syncs:
        loss_value, task, equi, _, _ = train_step(net, loss_fn, batch,
                                                  batch.y)
        stats.add(loss_value, task, equi, share=1.0)
        optimizer.step()
    assert_no_syncs(syncs, f'{model}/{loss}/{weighting} training step')
    # in debug mode the step checks the loss at once (one read)
    with debug(), count_syncs() as syncs:
        train_step(net, loss_fn, batch, batch.y)
    assert syncs.count >= 1


def test_debug_mode_for_the_first_steps_only(tmp_path, data_root,
                                             monkeypatch):
    seen = []
    real = loop.train_step

    def recording(*args, **kwargs):
        seen.append(is_debug_enabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, 'train_step', recording)
    cfg = config(tmp_path, data_root, epochs=2)  # 2 steps per epoch
    train(cfg, progress=False, log=quiet)
    assert loop.DEBUG_STEPS == 2
    assert seen == [True, True, False, False]
    assert not is_debug_enabled()
    # a resumed run checks its first steps again
    seen.clear()
    train(TrainConfig(epochs=3), resume_from=cfg.run_dir, progress=False,
          log=quiet)
    assert seen == [True, True]
    # debug mode switched on by the user stays on for every step
    seen.clear()
    with debug():
        train(config(tmp_path / 'b', data_root, epochs=2), progress=False,
              log=quiet)
        assert is_debug_enabled()
    assert seen == [True] * 4


def test_bad_data_fails_in_the_first_step_naming_the_field(
        tmp_path, data_root, monkeypatch, capsys):
    # a graph whose edges point past its nodes: caught by the library's
    # value-reading checks, on in the first steps
    real = loop.load_task

    def broken(cfg):
        spec, (train_ds, val_ds, test_ds) = real(cfg)
        graphs = [train_ds[i] for i in range(len(train_ds))]
        for data in graphs:
            data.edge_index = data.edge_index + 100
        return spec, (graphs, val_ds, test_ds)

    monkeypatch.setattr(loop, 'load_task', broken)
    run = tmp_path / 'run'
    assert main(tiny_args(data_root, run_dir=str(run))) == 1
    line = one_line_error(capsys.readouterr().err)
    assert 'edge_index' in line
    assert not run.exists()


def test_crash_while_checkpointing_keeps_previous(tmp_path, data_root,
                                                  monkeypatch):
    cfg = config(tmp_path, data_root, epochs=2)
    calls = []
    real_save = torch.save

    def flaky_save(obj, f, *args, **kwargs):
        calls.append('optimizer' in obj)  # a checkpoint, not best.pt
        if sum(calls) == 2 and calls[-1]:  # the second epoch's checkpoint
            f.write(b'partial garbage')
            raise OSError(28, 'No space left on device')
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, 'save', flaky_save)
    with pytest.raises(TrainingError) as info:
        train(cfg, progress=False, log=quiet)
    assert str(info.value) == (
        f'cannot write the run files in {cfg.run_dir}: No space left on '
        f'device; the checkpoint of epoch 1 is intact: make room, then '
        f'continue with: remul train --resume {cfg.run_dir}')
    monkeypatch.setattr(torch, 'save', real_save)
    ckpt = torch.load(osp.join(cfg.run_dir, 'checkpoint.pt'),
                      weights_only=True)
    assert ckpt['epoch'] == 1
    assert not [p for p in (tmp_path / 'run').iterdir()
                if p.name.endswith('.tmp')]
    resumed = train(TrainConfig(), resume_from=cfg.run_dir, progress=False,
                    log=quiet)
    assert len(resumed.history) == 2


def test_interrupt_leaves_valid_checkpoint(tmp_path, data_root,
                                           monkeypatch):
    cfg = config(tmp_path, data_root, epochs=3)
    undo = interrupt_in_epoch(monkeypatch, 2)
    lines = []
    res = train(cfg, progress=False, log=lines.append)
    assert res.interrupted and len(res.history) == 1
    assert any('holds epoch 1; continue with: remul train --resume' in line
               for line in lines)
    undo()
    resumed = train(TrainConfig(), resume_from=cfg.run_dir, progress=False,
                    log=quiet)
    assert [r['epoch'] for r in resumed.history] == [1, 2, 3]


def test_interrupt_in_the_first_epoch_leaves_nothing(tmp_path, data_root,
                                                     monkeypatch, capsys):
    real = loop.train_step
    calls = []

    def interrupting(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, 'train_step', interrupting)
    run = tmp_path / 'run'
    assert main(tiny_args(data_root, run_dir=str(run))) == 130
    out = capsys.readouterr().out
    assert ('interrupted before the first checkpoint: nothing to resume '
            f'(the run directory {run} was removed)') in out
    assert not run.exists()


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


def test_restore_model_with_moved_data(finished, data_root, tmp_path):
    cfg, spec, model = restore_model(str(finished))
    assert cfg.data_root == data_root and not model.training
    state = {k: v.clone() for k, v in model.state_dict().items()}
    moved = str(tmp_path / 'moved')
    cfg2, _, model2 = restore_model(str(finished), data_root=moved)
    assert cfg2.data_root == moved
    assert osp.isdir(osp.join(moved, 'charged'))  # the data were made there
    for key, value in model2.state_dict().items():
        assert torch.equal(value, state[key])


def test_clip_grad_norm_bounds_every_step(tmp_path, data_root, monkeypatch):
    """``clip_grad_norm``: the gradients' total norm at every optimiser
    step is at most the value (without it, it is far above), with no host
    read in the clipping."""
    norms = []
    real = torch.optim.Adam.step

    def recording(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups
                 for p in group['params'] if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
        return real(self, *args, **kwargs)
    monkeypatch.setattr(torch.optim.Adam, 'step', recording)
    train(config(tmp_path / 'free', data_root, epochs=1), progress=False,
          log=quiet)
    assert min(norms) > 1e-3
    norms.clear()
    clipped = train(config(tmp_path / 'clip', data_root, epochs=1,
                           clip_grad_norm=1e-3), progress=False, log=quiet)
    assert norms and max(norms) <= 1e-3 * (1 + 1e-5)
    with open(osp.join(clipped.run_dir, 'config.json')) as f:
        assert json.load(f)['clip_grad_norm'] == 1e-3
    net = torch.nn.Linear(3, 2)
    net(torch.randn(4, 3)).pow(2).sum().backward()
    with count_syncs() as syncs:
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1e-3)
    assert_no_syncs(syncs, 'clip_grad_norm_')
