import pytest

from tests.nn.models._helpers import NBODY, nbody_batch
from torch_geometric_remul.nn.models import (
    EGNN,
    GNN,
    MLP,
    MODELS,
    SEGNN,
    BaseModel,
    Transformer,
    available_models,
    build_model,
)


def test_available_models():
    assert available_models() == ['mlp', 'gnn', 'transformer', 'egnn',
                                  'segnn']
    assert MODELS['segnn'] is SEGNN


@pytest.mark.parametrize('name,cls', [('mlp', MLP), ('gnn', GNN),
                                      ('transformer', Transformer),
                                      ('egnn', EGNN), ('segnn', SEGNN)])
def test_build_every_model_with_shared_keywords(name, cls):
    if name == 'segnn':
        pytest.importorskip('e3nn')
    kw = dict(NBODY, output='scalar', out_dim=3, points='pos', num_layers=1)
    kw['hidden_channels'] = '4x0e+2x1o' if name == 'segnn' else 8
    if name == 'mlp':
        kw['num_nodes'] = 4
    model = build_model(name.upper() if name == 'gnn' else name, **kw)
    assert type(model) is cls and isinstance(model, BaseModel)
    out = model.double()(nbody_batch([4, 4]))
    assert out.shape == (2, 3)


def test_defaults():
    assert GNN().hidden_channels == 64 and GNN().num_layers == 4
    assert EGNN().hidden_channels == 64 and EGNN().num_layers == 4
    t = Transformer()
    assert (t.hidden_channels, t.num_layers, t.heads) == (128, 4, 8)


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown model 'schnet'; available "
                       "models: mlp, gnn, transformer, egnn, segnn"):
        build_model('schnet')
    with pytest.raises(TypeError, match="'name' must be a str"):
        build_model(GNN)
    with pytest.raises(TypeError):
        build_model('gnn', hiden=3)
