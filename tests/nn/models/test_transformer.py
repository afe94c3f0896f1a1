import pytest
import torch

from tests.nn.models._helpers import (DTYPES, VARIABLE_SIZES,
                                      check_forward_pass, check_gradients,
                                      check_graphs_independent,
                                      check_not_equivariant_at_init,
                                      check_seeded, model_factory,
                                      nbody_batch)
from torch_geometric_remul.nn.models import (OUTPUTS, Transformer,
                                             TransformerBlock)

NODE_ONLY = dict(vectors=('vel', ), scalars=('charge', ), scalar_dim=1)

make = model_factory(Transformer, hidden=16, layers=2, heads=4)


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('output', OUTPUTS)
def test_forward(output, dtype):
    check_forward_pass(make, output, dtype)


@pytest.mark.parametrize('output', OUTPUTS)
def test_not_equivariant(output):
    check_not_equivariant_at_init(make, output)


@pytest.mark.parametrize('attention', ['padded', 'block'])
@pytest.mark.parametrize('edges', [True, False])
def test_attention_stays_inside_each_graph(attention, edges):
    torch.manual_seed(0)
    kw = {} if edges else dict(NODE_ONLY, edge_scalars=(),
                               edge_scalar_dim=0)
    model = make('point', attention=attention, **kw)
    check_graphs_independent(model, nbody_batch(VARIABLE_SIZES))
    model.output = 'scalar'  # pooled head of width 3, same check
    check_graphs_independent(model, nbody_batch(VARIABLE_SIZES))


@pytest.mark.parametrize('edges', [True, False])
def test_padded_and_block_attention_agree(edges):
    kw = {} if edges else dict(NODE_ONLY, edge_scalars=(),
                               edge_scalar_dim=0)
    torch.manual_seed(0)
    padded = make('vector', **kw)
    block = make('vector', attention='block', **kw)
    block.load_state_dict(padded.state_dict())
    batch = nbody_batch(VARIABLE_SIZES)
    assert torch.allclose(padded(batch), block(batch), atol=1e-12)


def test_edge_bias_only_reads_edges_when_declared():
    torch.manual_seed(0)
    batch = nbody_batch()
    model = make('point')
    assert model.uses_edges()
    other = batch.clone()
    other.edge_attr = 2 * batch.edge_attr
    assert not torch.allclose(model(batch), model(other))
    no_edges = make('point', **dict(NODE_ONLY, edge_scalars=(),
                                    edge_scalar_dim=0))
    assert not no_edges.uses_edges()
    del other.edge_index
    no_edges(other)  # no edge_index needed
    with pytest.raises(ValueError, match='edge_index'):
        model(other)


def test_gradients_and_seed():
    batch = nbody_batch()
    torch.manual_seed(0)
    check_gradients(make('point'), batch)
    check_gradients(make('scalar', attention='block'), batch)
    check_seeded(lambda: make('vector'), batch)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"'hidden' \(10\) must be divisible "
                       r"by 'heads' \(4\)"):
        Transformer(hidden=10, heads=4)
    with pytest.raises(ValueError, match="'attention' must be one of"):
        Transformer(attention='sparse')


def test_block_masks_fully():
    torch.manual_seed(0)
    block = TransformerBlock(8, heads=2)
    x = torch.randn(1, 4, 8)
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    mask[..., :2, :2] = True
    mask[..., 2:, 2:] = True
    out = block(x, mask)
    y = x.clone()
    y[:, 2:] = torch.randn(1, 2, 8)  # change tokens 2, 3 only
    assert torch.allclose(block(y, mask)[:, :2], out[:, :2], atol=1e-6)
