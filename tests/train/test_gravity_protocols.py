"""The gravity task's two data protocols (``source='canonical'``, our
canonical frame, and ``source='gatr'``, GATr's rotated, shifted and
permuted systems) and its extra splits (``'ood'``, ``'planets'``), from
``load_task`` to ``remul evaluate --split planets``."""
import pytest
import torch

from tests.train._helpers import (
    TINY,
    make_config,
    one_line_error,
    quiet,
    tiny_args,
)
from torch_geometric_remul.cli import main
from torch_geometric_remul.datasets import Gravity
from torch_geometric_remul.train import (
    TrainConfig,
    defaults,
    load_task,
    task_spec,
    train,
)
from torch_geometric_remul.train.tasks import (
    GRAVITY_PROTOCOLS,
    GRAVITY_TEST_PLANETS,
    prepared,
)

SIZES = dict(num_train=12, num_val=6, num_test=8)


def gravity(tmp_path, **kw):
    return TrainConfig(task='gravity', data_root=str(tmp_path), **SIZES,
                       **kw)


def star_nodes(graphs):
    """The node of the star (the heaviest body) of every graph."""
    return [int(g.mass.argmax()) for g in graphs]


def test_source_defaults_to_canonical():
    assert TrainConfig(task='gravity').resolved().source == 'canonical'
    assert defaults('gravity')['source'] == 'canonical'
    assert set(GRAVITY_PROTOCOLS) == {'canonical', 'gatr'}
    assert GRAVITY_PROTOCOLS['gatr']['data'] == dict(
        rotate=True, permute=True, shift_std=20.0)


def test_canonical_is_todays_data(tmp_path):
    # the default protocol reads the dataset with its defaults: the same
    # cached files, bit for bit
    spec, (train, _, test) = load_task(gravity(tmp_path))
    assert spec.name == 'gravity'
    plain = Gravity(str(tmp_path / 'gravity'), split='train', **SIZES)
    assert spec.load('train').processed_file_names == \
        plain.processed_file_names
    assert all(torch.equal(a.y, b.y) for a, b in
               zip(train, prepared(spec.load('train'))))
    assert set(star_nodes(train + test)) == {0}
    assert all(g.pos[:, 2].abs().max() == 0 for g in train)  # x-y plane
    assert spec.load('ood').ood_shift == 0.0


def test_gatr_protocol_rotates_shifts_and_permutes(tmp_path):
    spec, splits = load_task(gravity(tmp_path, source='gatr'))
    assert 'GATr protocol' in spec.description
    for graphs in splits:
        # the star is not always node 0, systems leave the x-y plane
        assert set(star_nodes(graphs)) != {0}
        assert max(g.pos[:, 2].abs().max() for g in graphs) > 0.05
        # centred on the centre of mass: the shift is undone
        for g in graphs:
            com = (g.mass * g.pos).sum(0) / g.mass.sum()
            assert com.abs().max() < 1e-4
    raw = spec.load('train')  # before centring: shifted by N(0, 20^2)
    assert raw._data.pos.view(-1, 4, 3).mean(1).abs().max() > 5
    assert (raw.rotate, raw.permute, raw.shift_std) == (True, True, 20.0)
    ood = spec.load('ood')
    assert ood.ood_shift == 200.0
    assert (ood._data.pos.view(-1, 4, 3)[:, :, 0].mean(1) - 200).abs() \
        .max() < 100


def test_equivariant_model_sees_the_same_task_under_both(tmp_path):
    # the GATr protocol moves, turns and reorders the very systems of the
    # canonical one: an E(3)- and permutation-equivariant model, from the
    # same initialisation and batches, trains and tests alike on both
    mse = {}
    for source in ('canonical', 'gatr'):
        result = train(make_config(tmp_path / source, tmp_path / 'data',
                                   task='gravity', model='egnn',
                                   loss='plain', epochs=1, source=source),
                       progress=False, log=quiet)
        mse[source] = result.test['mse']
    assert mse['gatr'] == pytest.approx(mse['canonical'], rel=1e-3)


@pytest.mark.parametrize('source', ['canonical', 'gatr'])
def test_planets_split_has_more_planets(tmp_path, source):
    spec = task_spec(gravity(tmp_path, source=source))
    planets = spec.load('planets')
    assert len(planets) == SIZES['num_test']
    assert GRAVITY_TEST_PLANETS == 5
    graphs = prepared(planets)
    assert all(g.num_nodes == 6 and g.edge_index.size(1) == 30
               for g in graphs)
    torch.testing.assert_close(
        graphs[0].edge_attr,
        graphs[0].mass[graphs[0].edge_index[0]] *
        graphs[0].mass[graphs[0].edge_index[1]])
    assert planets.rotate == planets.permute == (source == 'gatr')
    if source == 'gatr':
        assert set(star_nodes(graphs)) != {0}


def test_errors_name_the_field(tmp_path):
    with pytest.raises(ValueError, match="'source' for the gravity task "
                       "must be one of canonical, gatr"):
        gravity(tmp_path, source='GATr-ish').resolved()
    with pytest.raises(ValueError, match="'source' is not an option of the "
                       "nbody task"):
        TrainConfig(task='nbody', source='gatr').resolved()
    spec = task_spec(gravity(tmp_path))
    with pytest.raises(ValueError, match="'split' must be one of train, "
                       "val, test, ood, planets"):
        spec.load('more')
    # the other tasks have no extra splits
    assert task_spec(TrainConfig(task='nbody')).splits == ('train', 'val',
                                                           'test')


def test_cli_gatr_run_evaluates_every_split(tmp_path, data_root, capsys):
    run = str(tmp_path / 'run')
    assert main(tiny_args(data_root, run_dir=run, task='gravity',
                          model='egnn', loss='plain', source='gatr')) == 0
    assert 'GATr protocol' in capsys.readouterr().out
    mse = {}
    for split in ('test', 'ood', 'planets'):
        assert main(['evaluate', run, '--split', split]) == 0
        out = capsys.readouterr().out
        assert f'{split} split ({TINY["num_test"]} graphs)' in out
        mse[split] = float(out.split('MSE')[1].split()[0].strip('|'))
    # EGNN is E(3)-equivariant and the graphs are centred: the rotated and
    # shifted split changes nothing
    assert mse['ood'] == pytest.approx(mse['test'], rel=1e-4)
    assert mse['planets'] > 0 and mse['planets'] != mse['test']
    assert main(['check', run, '--split', 'planets', '--samples', '2',
                 '--graphs', '4']) == 0
    assert 'planets graphs' in capsys.readouterr().out


def test_cli_planets_split_refused_where_it_cannot_work(tmp_path, data_root,
                                                        capsys):
    nbody = str(tmp_path / 'nbody')
    assert main(tiny_args(data_root, run_dir=nbody)) == 0
    capsys.readouterr()
    assert main(['evaluate', nbody, '--split', 'planets']) == 1
    line = one_line_error(capsys.readouterr().err, 'evaluate')
    assert '--split planets exists for the gravity task only' in line
    # the MLP takes graphs of one fixed size
    mlp = str(tmp_path / 'mlp')
    assert main(tiny_args(data_root, run_dir=mlp, task='gravity',
                          model='mlp', loss='plain')) == 0
    capsys.readouterr()
    assert main(['evaluate', mlp, '--split', 'planets']) == 1
    line = one_line_error(capsys.readouterr().err, 'evaluate')
    assert 'graphs of 6 nodes' in line and 'exactly 4' in line
    assert main(['evaluate', mlp, '--split', 'ood']) == 0


def test_train_help_lists_the_gravity_sources(capsys):
    with pytest.raises(SystemExit):
        main(['train', '--help'])
    out = capsys.readouterr().out
    assert 'gatr (GATr protocol' in ' '.join(out.split())
    row = [line for line in out.splitlines()
           if line.strip().startswith('gravity')]
    assert row and row[-1].rstrip().endswith('canonical')
