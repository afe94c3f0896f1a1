"""The rmd17 task: an interatomic potential (energy + autograd forces)
trained by ``remul train`` on small rMD17-layout files the tests write."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from tests.train._helpers import quiet
from torch_geometric_remul.cli import main
from torch_geometric_remul.datasets.rmd17 import sha256_file
from torch_geometric_remul.train import TrainConfig, task_spec, train
from torch_geometric_remul.train.mlip import (
    MEV_PER_KCAL_MOL,
    Potential,
    evaluate_potential,
)
from torch_geometric_remul.train.step import train_step

ETHANOL_Z = np.array([6, 6, 8, 1, 1, 1, 1, 1, 1], dtype=np.uint8)
TINY = dict(num_train=12, num_val=6, num_test=8, hidden_channels=8,
            num_layers=1, batch_size=6, eval_graphs=4, eval_samples=2,
            epochs=2)


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg-cache'))


@pytest.fixture
def rmd17_root(tmp_path):
    root = tmp_path / 'data' / 'rmd17'
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k, part in enumerate(('train', 'test')):
        T = 20
        np.savez(root / f'rmd17_ethanol_{part}_01.npz',
                 nuclear_charges=ETHANOL_Z,
                 coords=rng.normal(0, 1.0, (T, 9, 3)),
                 energies=rng.normal(0, 3.0, T) - 97000.0,
                 forces=rng.normal(0, 20.0, (T, 9, 3)),
                 old_indices=np.arange(T) + 100 * k)
    return str(tmp_path / 'data')


def config(root, run_dir=None, **kw):
    values = dict(TINY, task='rmd17', molecule='ethanol', data_root=root,
                  run_dir=None if run_dir is None else str(run_dir))
    values.update(kw)
    return TrainConfig(**values)


class Quadratic(torch.nn.Module):
    """E = sum_i a . x_i + b |x_i|^2 per graph (not rotation invariant)."""
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor([0.3, -0.2, 0.5],
                                                 dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.tensor(0.7, dtype=torch.float64))

    def forward(self, data):
        per_atom = data.pos @ self.a + self.b * data.pos.pow(2).sum(-1)
        out = torch.zeros(data.num_graphs, dtype=per_atom.dtype)
        return out.index_add(0, data.batch, per_atom).unsqueeze(-1)


def test_potential_forces_are_minus_the_energy_gradient():
    g = torch.Generator().manual_seed(0)
    batch = Batch.from_data_list([
        Data(pos=torch.randn(n, 3, generator=g, dtype=torch.float64))
        for n in (3, 5)])
    model = Potential(Quadratic())
    out = model(batch)
    assert out['energy'].shape == (2, ) and out['forces'].shape == (8, 3)
    expected = -(model.backbone.a + 2 * model.backbone.b * batch.pos)
    torch.testing.assert_close(out['forces'], expected)
    assert not batch.pos.requires_grad  # the input is not modified
    # training: the forces carry a graph to the parameters (double backward)
    model.train()
    forces = model(batch)['forces']
    assert forces.requires_grad
    forces.pow(2).sum().backward()
    assert model.backbone.b.grad is not None
    model.eval()
    with torch.no_grad():
        out = model(batch)
    assert not out['forces'].requires_grad
    torch.testing.assert_close(out['forces'], expected.detach())


def test_task_targets_standardised_and_centred(rmd17_root):
    spec = task_spec(config(rmd17_root))
    train_ds, test_ds = spec.load('train'), spec.load('test')
    stats = spec.energy_force_stats.as_dict()
    raw = np.load(osp.join(rmd17_root, 'rmd17', 'rmd17_ethanol_train_01.npz'))
    fit = slice(0, 14)  # 20 training frames: 14 + the last 6 for validation
    assert stats['shift'] == pytest.approx(raw['energies'][fit][:12].mean())
    assert stats['scale'] == pytest.approx(
        np.sqrt((raw['forces'][fit][:12] ** 2).mean()))
    for g in (train_ds[3], test_ds[5]):
        torch.testing.assert_close(g.y_force, g.force / stats['scale'])
        assert float(g.y_energy) == pytest.approx(
            (float(g.energy) - stats['shift']) / stats['scale'], rel=1e-6)
        assert g.energy.dtype == torch.float64  # the stored value
        assert g.pos.mean(0).abs().max() < 1e-5  # centred
        assert g.atom.shape == (9, 4) and g.edge_index.shape == (2, 72)
    targets = spec.targets(Batch.from_data_list([train_ds[0], train_ds[1]]))
    assert targets['energy'].shape == (2, ) and targets['forces'].shape == \
        (18, 3)


def test_plain_loss_weights_energy_and_forces():
    batch = Batch.from_data_list([Data(pos=torch.zeros(2, 3))])
    net = torch.nn.Linear(1, 1)
    model = lambda data: {'energy': net(torch.ones(1, 1)).view(-1),  # noqa
                          'forces': torch.zeros(2, 3)}
    target = {'energy': torch.full((1, ), 3.0), 'forces': torch.ones(2, 3)}
    loss, *_ = train_step(model, None, batch, target,
                          output_weights={'energy': 1.0, 'forces': 100.0})
    e = float(net(torch.ones(1, 1)).detach())
    assert float(loss) == pytest.approx((e - 3.0) ** 2 + 100.0)


@pytest.mark.parametrize('loss', ['plain', 'augment', 'remul'])
def test_train_writes_the_potential_metrics(rmd17_root, tmp_path, loss):
    result = train(config(rmd17_root, tmp_path / 'run', loss=loss),
                   progress=False, log=quiet)
    test = result.test
    for key in ('energy_mae', 'force_mae', 'rot_force_mae', 'E_prime',
                'energy_mae_meV', 'force_mae_meV', 'rot_force_mae_meV'):
        assert np.isfinite(test[key]) and test[key] > 0, key
    assert test['force_mae_meV'] == pytest.approx(test['force_mae'] *
                                                  MEV_PER_KCAL_MOL)
    with open(tmp_path / 'run' / 'results.json') as f:
        results = json.load(f)
    assert results['selection'] == 'best_val'
    files = results['provenance']['data']['files']
    for name in ('rmd17_ethanol_train_01.npz', 'rmd17_ethanol_test_01.npz'):
        assert files[name] == sha256_file(osp.join(rmd17_root, 'rmd17',
                                                   name))
    assert 'val_force_mae' in result.history[-1]


def test_fused_remul(rmd17_root, tmp_path):
    # one forward pass on the clean and rotated copies together
    result = train(config(rmd17_root, tmp_path / 'run', loss='remul',
                          fused=True, epochs=1), progress=False, log=quiet)
    assert np.isfinite(result.history[0]['train_equi'])
    assert result.history[0]['train_equi'] > 0


def test_egnn_energy_is_invariant(rmd17_root, tmp_path):
    result = train(config(rmd17_root, tmp_path / 'run', model='egnn',
                          loss='plain', epochs=1), progress=False, log=quiet)
    test = result.test
    assert test['energy_E_prime'] < 1e-3 * test['energy_mae']
    assert test['E_prime'] < 1e-3 * test['force_mae']
    # the energy of a rotated molecule is the same (the per-component force
    # MAE is not: the L1 norm of an error vector changes under rotation)
    assert test['rot_energy_mae'] == pytest.approx(test['energy_mae'],
                                                   rel=1e-4)


def test_metrics_in_physical_units(rmd17_root):
    spec = task_spec(config(rmd17_root))
    test_ds = spec.load('test')

    class Zero(torch.nn.Module):  # E = 0, F = 0 for every molecule
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, data):
            per_atom = self.w * data.pos.sum(-1)
            out = torch.zeros(data.num_graphs).index_add(0, data.batch,
                                                         per_atom)
            return out

    cfg = config(rmd17_root).resolved()
    metrics = evaluate_potential(Potential(Zero()), test_ds, spec, cfg,
                                 seed=0)
    stats = spec.energy_force_stats
    energy = np.array([float(g.energy) for g in test_ds])
    force = np.concatenate([g.force.numpy() for g in test_ds])
    assert metrics['energy_mae'] == pytest.approx(
        np.abs(energy - stats.shift).mean(), rel=1e-5)
    assert metrics['force_mae'] == pytest.approx(np.abs(force).mean(),
                                                 rel=1e-5)
    assert metrics['E_prime'] == 0.0


def test_cli_train_rmd17(rmd17_root, tmp_path, capsys):
    args = ['train', '--no-progress', '--task', 'rmd17', '--molecule',
            'ethanol', '--fold', '1', '--data-root',
            osp.join(rmd17_root, 'rmd17'), '--run-dir', str(tmp_path / 'r')]
    for key, value in TINY.items():
        args += [f'--{key.replace("_", "-")}', str(value)]
    assert main(args + ['--model', 'transformer']) == 0
    out = capsys.readouterr().out
    assert 'force MAE' in out and 'kcal/mol/A' in out
    # the run's best model evaluates again from its directory
    assert main(['evaluate', str(tmp_path / 'r')]) == 0
    assert "E'" in capsys.readouterr().out
    assert main(args[:5] + ['aspirin'] + args[6:] + ['--overwrite']) == 1
    err = capsys.readouterr().err
    assert "No rMD17 files for molecule 'aspirin'" in err


@pytest.mark.parametrize('field, value, match', [
    ('fold', 0, 'fold'), ('force_weight', 0.0, 'force_weight')])
def test_config_checks(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(task='rmd17', **{field: value}).resolved()


def test_weights_of_a_pooled_head_are_refused(rmd17_root, tmp_path):
    # a potential trained with its head on the pooled features (before
    # potentials summed atomic energies) has the same shapes: its file is
    # refused by name instead of restored as another function
    from torch_geometric_remul.train import RunDirectoryError, restore_model
    run = tmp_path / 'run'
    train(config(rmd17_root, run, epochs=1), progress=False, log=quiet)
    restore_model(str(run))
    best = torch.load(run / 'best.pt', weights_only=True)
    marks = [k for k in best['model'] if k.endswith('node_readout')]
    assert len(marks) == 1
    del best['model'][marks[0]]
    torch.save(best, run / 'best.pt')
    with pytest.raises(RunDirectoryError, match=r"best\.pt does not match.*"
                       r"readout='graph'.*this model readout='node'.*train "
                       r"it again\)"):
        restore_model(str(run))


def test_unmarked_weights_of_the_trees_that_summed_atomic_energies(
        rmd17_root, tmp_path, monkeypatch):
    # the package trees that summed atomic energies before the weights were
    # marked: their unmarked files restore (and resume) as they were trained
    from torch_geometric_remul.train import build, restore_model
    from torch_geometric_remul.train.rundir import load_run
    run = tmp_path / 'run'
    train(config(rmd17_root, run, epochs=1), progress=False, log=quiet)
    _, _, model = restore_model(str(run))
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    for name in ('best.pt', 'checkpoint.pt'):
        saved = torch.load(run / name, weights_only=True)
        [mark] = [k for k in saved['model'] if k.endswith('node_readout')]
        del saved['model'][mark]
        if name == 'checkpoint.pt':  # trained by one clean, listed tree
            del saved['best']['model'][mark]
            saved['code_versions'] = [dict(
                saved['code_versions'][-1], package_tree='f' * 40,
                package_dirty=False, package_diff_sha256=None)]
        torch.save(saved, run / name)
    versions = load_run(str(run))[1]['code_versions']
    monkeypatch.setattr(build, 'UNMARKED_NODE_READOUT_TREES',
                        frozenset({'f' * 40}))
    for which in ('best', 'last'):
        _, _, again = restore_model(str(run), which=which)
        if which == 'best':
            torch.testing.assert_close(again.state_dict(), expected)
    # resumed by today's code: trained on, its files marked from now on
    train(config(rmd17_root, run, epochs=2), progress=False, log=quiet,
          resume_from=str(run))
    assert any(k.endswith('node_readout') for k in torch.load(
        run / 'best.pt', weights_only=True)['model'])
    # a dirty tree, or another tree: left unmarked (and refused on loading)
    unmarked = {k: v for k, v in expected.items()
                if not k.endswith('node_readout')}
    assert build.legacy_readout_weights(unmarked, model, versions) == \
        dict(unmarked, **{k: v for k, v in expected.items()
                          if k.endswith('node_readout')})
    dirty = [dict(versions[0], package_dirty=True)]
    assert build.legacy_readout_weights(unmarked, model, dirty) is unmarked
    monkeypatch.setattr(build, 'UNMARKED_NODE_READOUT_TREES', frozenset())
    assert build.legacy_readout_weights(unmarked, model, versions) is \
        unmarked


def test_validation_without_equivariance(rmd17_root, tmp_path, capsys):
    # a potential validated without its rotated copy and E': the same
    # training, validation loss and test figures; those columns are nan
    runs = [train(config(rmd17_root, tmp_path / name, loss='remul',
                         epochs=2, val_equivariance=flag),
                  progress=False, log=quiet)
            for name, flag in (('full', True), ('lean', False))]
    for a, b in zip(runs[0].history, runs[1].history):
        for key in ('train_loss', 'val_mse', 'val_force_mae',
                    'val_energy_mae'):
            assert a[key] == b[key], key
        for key in ('val_rot_force_mae', 'val_E_prime', 'val_energy_E_prime',
                    'val_rot_energy_mae'):
            assert a[key] == a[key] and b[key] != b[key], key
    for key in set(runs[0].test) - {'seconds_per_epoch'}:
        assert runs[0].test[key] == runs[1].test[key], key
    # on the command line
    assert main(['train', '--no-progress', '--task', 'rmd17', '--molecule',
                 'ethanol', '--data-root', rmd17_root, '--epochs', '1',
                 '--num-train', '12', '--num-val', '6', '--num-test', '8',
                 '--hidden-channels', '8', '--num-layers', '1',
                 '--batch-size', '6', '--eval-graphs', '4',
                 '--eval-samples', '2', '--no-val-equivariance',
                 '--run-dir', str(tmp_path / 'cli')]) == 0
    with open(tmp_path / 'cli' / 'config.json') as f:
        assert json.load(f)['val_equivariance'] is False
