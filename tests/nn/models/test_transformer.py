import pytest
import torch
from torch_geometric.data import Batch

from tests.nn.models._helpers import (
    DTYPES,
    VARIABLE_SIZES,
    check_forward_pass,
    check_gradients,
    check_graphs_independent,
    check_not_equivariant_at_init,
    check_seeded,
    model_factory,
    nbody_batch,
)
from torch_geometric_remul import debug
from torch_geometric_remul.nn.models import Transformer, TransformerBlock
from torch_geometric_remul.testing import assert_no_syncs, count_syncs

NODE_ONLY = dict(vectors=('vel', ), scalars=('charge', ), scalar_dim=1)

make = model_factory(Transformer, hidden_channels=16, num_layers=2, heads=4)


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('output', Transformer.supported_outputs)
def test_forward(output, dtype):
    check_forward_pass(make, output, dtype)


@pytest.mark.parametrize('output', Transformer.supported_outputs)
def test_not_equivariant(output):
    check_not_equivariant_at_init(make, output)


@pytest.mark.parametrize('attention', ['padded', 'block'])
@pytest.mark.parametrize('edges', [True, False])
def test_attention_stays_inside_each_graph(attention, edges):
    torch.manual_seed(0)
    kw = {} if edges else dict(NODE_ONLY, edge_scalars=(),
                               edge_scalar_dim=0)
    for output in ('point', 'scalar'):
        model = make(output, attention=attention, **kw)
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
    with pytest.raises(ValueError, match=r"'hidden_channels' \(10\) must be "
                       r"divisible "
                       r"by 'heads' \(4\)"):
        Transformer(hidden_channels=10, heads=4)
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


@pytest.mark.parametrize('edges', [True, False])
def test_max_num_nodes_same_output_and_no_device_read(edges):
    kw = {} if edges else dict(NODE_ONLY, edge_scalars=(),
                               edge_scalar_dim=0)
    torch.manual_seed(0)
    default = make('point', **kw)
    fixed = make('point', max_num_nodes=9, **kw)
    fixed.load_state_dict(default.state_dict())
    batch = nbody_batch(VARIABLE_SIZES)  # largest graph: 7 nodes
    with count_syncs() as syncs:
        out = fixed(batch)
    assert_no_syncs(syncs, 'Transformer(max_num_nodes=9) forward')
    assert torch.allclose(out, default(batch), atol=1e-12)
    assert 'max_num_nodes=9' in repr(fixed)


def test_padding_size_read_from_host_metadata_only():
    # without max_num_nodes the padding is the largest graph, read from the
    # Batch's collation metadata (host memory), never from the device
    torch.manual_seed(0)
    model = make('point')
    batch = nbody_batch(VARIABLE_SIZES)
    assert batch._slice_dict['pos'].device.type == 'cpu'
    with count_syncs() as syncs:
        out = model(batch)
    assert_no_syncs(syncs, 'Transformer forward on a collated Batch')
    # a Batch built by hand, without that metadata: ptr is read instead
    bare = Batch(**{k: v for k, v in batch.items()})
    bare._num_graphs = batch.num_graphs
    with count_syncs() as syncs:
        again = model(bare)
    assert syncs.count == 1 and '_padding_size' in syncs.events[0].location
    assert torch.equal(out, again)


def test_graph_larger_than_max_num_nodes():
    torch.manual_seed(0)
    model = make('vector', max_num_nodes=5)
    batch = nbody_batch(VARIABLE_SIZES)  # a graph of 7 nodes
    out = model(batch)
    big = slice(int(batch.ptr[1]), int(batch.ptr[2]))  # the 7-node graph
    # its 2 nodes beyond the padding are NaN (a non-finite loss follows),
    # every other row is finite
    bad = ~torch.isfinite(out).all(-1)
    assert int(bad.sum()) == 2
    assert bad[big].tolist() == [False] * 5 + [True] * 2
    with debug(), pytest.raises(ValueError, match="has 7 nodes but "
                                "'max_num_nodes' is 5"):
        model(batch)
    with pytest.raises(ValueError, match="'max_num_nodes' must be >= 1"):
        Transformer(max_num_nodes=0)
