import pytest
import torch
from torch_geometric.data import Batch

from tests.nn.models._helpers import (
    DTYPES,
    NBODY,
    check_forward_pass,
    check_gradients,
    check_not_equivariant_at_init,
    check_seeded,
    model_factory,
    nbody_batch,
)
from torch_geometric_remul.nn.models import MLP

SIZES = [5, 5, 5]

make = model_factory(MLP, num_nodes=5, hidden_channels=32, num_layers=3)


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('output', MLP.supported_outputs)
def test_forward(output, dtype):
    check_forward_pass(make, output, dtype, SIZES)


@pytest.mark.parametrize('output', MLP.supported_outputs)
def test_not_equivariant(output):
    check_not_equivariant_at_init(make, output, SIZES)


def test_graphs_independent_and_flattened_in_node_order():
    torch.manual_seed(0)
    model = make('vector')
    batch = nbody_batch(SIZES)
    out = model(batch)
    single = model(Batch.from_data_list(batch.to_data_list()[1:2]))
    assert torch.allclose(out[5:10], single, atol=1e-12)
    # by hand: flatten [pos, vel, charge] node by node, then the dense
    # [target, source] block of edge_attr
    g = batch.to_data_list()[1]
    nodes = torch.cat([g.pos, g.vel, g.charge], dim=-1).reshape(-1)
    dense = torch.zeros(5, 5, dtype=torch.float64)
    dense[g.edge_index[1], g.edge_index[0]] = g.edge_attr.view(-1)
    x = torch.cat([nodes, dense.reshape(-1)])
    assert torch.allclose(model.net(x).view(5, 3), single, atol=1e-12)


def test_edge_order_does_not_matter():
    torch.manual_seed(0)
    model = make('point')
    batch = nbody_batch(SIZES)
    perm = torch.randperm(batch.num_edges)
    shuffled = batch.clone()
    shuffled.edge_index = batch.edge_index[:, perm]
    shuffled.edge_attr = batch.edge_attr[perm]
    assert torch.allclose(model(batch), model(shuffled), atol=1e-12)


def test_not_permutation_equivariant():
    # unlike the GNN, the flat MLP depends on the node order
    torch.manual_seed(0)
    model = make('vector', **dict(NBODY, edge_scalars=(),
                                  edge_scalar_dim=0))
    batch = nbody_batch([5])
    perm = torch.tensor([1, 0, 2, 3, 4])
    permuted = batch.clone()
    for key in ('pos', 'vel', 'charge'):
        permuted[key] = batch[key][perm]
    assert not torch.allclose(model(permuted), model(batch)[perm])


def test_gradients_and_seed():
    batch = nbody_batch(SIZES)
    torch.manual_seed(0)
    check_gradients(make('point'), batch)
    check_seeded(lambda: make('scalar'), batch)


def test_fixed_size():
    with pytest.raises(ValueError, match="MLP needs 'num_nodes'"):
        MLP()
    with pytest.raises(ValueError, match="'num_nodes' must be >= 1"):
        MLP(num_nodes=0)
    model = make('point')
    with pytest.raises(ValueError, match=r"MLP\(num_nodes=5\) flattens graphs "
                       r"of exactly 5 nodes.*14 nodes in 3 graph"):
        model(nbody_batch([5, 4, 5]))
    # equal totals, unequal graphs: found in debug mode (a value read)
    from torch_geometric_remul import debug
    with debug(), pytest.raises(ValueError, match="graph 1 has 4 nodes"):
        model(nbody_batch([5, 4, 6]))
    with pytest.raises(ValueError, match="exactly 5 nodes"):
        model(nbody_batch([6]))


def test_forward_backward_makes_no_host_sync():
    from torch_geometric_remul.testing import assert_no_syncs, count_syncs
    model = make('point')
    batch = nbody_batch([5, 5, 5])
    model(batch).sum().backward()
    with count_syncs() as syncs:
        model(batch).sum().backward()
    assert_no_syncs(syncs, 'MLP forward + backward')
