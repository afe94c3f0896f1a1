import pytest
import torch
from torch_geometric.data import Data

from tests.nn.models._helpers import NBODY, assert_not_mutated, nbody_batch
from torch_geometric_remul import debug
from torch_geometric_remul.testing import assert_no_syncs, count_syncs
from torch_geometric_remul.nn.models import EGNN, GNN, BaseModel
from torch_geometric_remul.nn.models.base import ModelInputs


def small_gnn(**kwargs):
    kw = dict(NBODY, hidden_channels=8, num_layers=1)
    kw.update(kwargs)
    return GNN(**kw).double()


def test_read_inputs_assembles_declared_attributes():
    batch = nbody_batch()
    batch.extra = torch.randn(batch.num_nodes, 2, dtype=torch.float64)
    model = small_gnn(scalars=('charge', 'extra'), scalar_dim=3,
                      vectors=('vel', 'pos2'))
    batch.pos2 = batch.pos * 2
    inputs = model.read_inputs(batch)
    assert isinstance(inputs, ModelInputs)
    N = batch.num_nodes
    assert inputs.vectors.shape == (N, 2, 3)
    assert torch.equal(inputs.vectors[:, 1], batch.pos2)
    assert torch.equal(inputs.scalars,
                       torch.cat([batch.charge, batch.extra], dim=-1))
    assert torch.equal(inputs.edge_scalars, batch.edge_attr)
    assert torch.equal(inputs.ptr, batch.ptr)
    assert inputs.num_graphs == batch.num_graphs
    # a 1-D scalar counts as width 1
    batch.charge = batch.charge.view(-1)
    inputs = small_gnn().read_inputs(batch)
    assert inputs.scalars.shape == (N, 1)


def test_single_data_without_batch_vector():
    batch = nbody_batch([5])
    data = Data(pos=batch.pos, vel=batch.vel, charge=batch.charge,
                edge_index=batch.edge_index, edge_attr=batch.edge_attr)
    model = small_gnn(output='scalar', out_dim=2)
    out = model(data)
    assert out.shape == (1, 2)
    assert torch.allclose(out, model(batch), atol=1e-12)


def test_missing_attributes():
    batch = nbody_batch()
    del batch.charge
    with pytest.raises(ValueError, match="'charge' .*declared in 'scalars'"
                       ".* missing"):
        small_gnn()(batch)
    batch = nbody_batch()
    with pytest.raises(ValueError, match="'force' .*declared in 'vectors'"):
        small_gnn(vectors=('force', ))(batch)
    with pytest.raises(ValueError, match="'x' .*declared in 'points'"):
        small_gnn(points='x')(batch)
    del batch.edge_attr
    with pytest.raises(ValueError, match="'edge_attr' .*'edge_scalars'"):
        small_gnn()(batch)
    batch = nbody_batch()
    del batch.edge_index
    with pytest.raises(ValueError, match="edge_index' is missing.*"
                       "fully_connected_graph"):
        small_gnn()(batch)
    with pytest.raises(ValueError, match="edge_index' is missing"):
        EGNN(hidden_channels=4, num_layers=1).double()(batch)


def test_wrong_shapes_and_widths():
    batch = nbody_batch()
    with pytest.raises(ValueError, match=r"'charge': 1\) have total width 1, "
                       r"expected scalar_dim=2"):
        small_gnn(scalar_dim=2)(batch)
    with pytest.raises(ValueError, match=r"'edge_attr': 1\) have total width "
                       r"1, expected edge_scalar_dim=3"):
        small_gnn(edge_scalar_dim=3)(batch)
    bad = nbody_batch()
    bad.vel = bad.vel[:, :2]
    with pytest.raises(ValueError, match=r"'data.vel' \(vectors\) must have "
                       r"shape \[14, 3\]"):
        small_gnn()(bad)
    bad = nbody_batch()
    bad.pos = bad.pos[:, :2]
    with pytest.raises(ValueError, match=r"'data.pos' \(points\) must have "
                       r"shape \[num_nodes, 3\]"):
        small_gnn()(bad)
    bad = nbody_batch()
    bad.charge = bad.charge.view(-1, 1, 1)
    with pytest.raises(ValueError, match=r"'data.charge' \(scalars\) must "
                       r"have shape \[14\] or \[14, k\]"):
        small_gnn()(bad)
    bad = nbody_batch()
    bad.edge_index = bad.edge_index[0]
    with pytest.raises(ValueError, match=r"shape \[2, num_edges\]"):
        small_gnn()(bad)

def test_edge_index_values_checked_in_debug_mode():
    # reading edge_index values waits for the device: debug mode only
    bad = nbody_batch()
    bad.edge_index = bad.edge_index.clone()
    bad.edge_index[0, 0] = 99
    with debug(), pytest.raises(ValueError, match="node indices in"):
        small_gnn()(bad)
    bad = nbody_batch()
    bad.edge_index = torch.cat([bad.edge_index, torch.tensor([[0], [5]])],
                               dim=1)
    bad.edge_attr = torch.cat([bad.edge_attr, bad.edge_attr[:1]])
    with debug(), pytest.raises(ValueError, match="connects nodes of "
                                "different"):
        small_gnn()(bad)
    # outside debug mode the forward pass reads nothing (and the cross-graph
    # edge is the caller's responsibility)
    with count_syncs() as syncs:
        small_gnn()(bad)
    assert_no_syncs(syncs, 'GNN forward outside debug mode')


def test_wrong_dtypes():
    batch = nbody_batch()
    with pytest.raises(TypeError, match="'data.pos' has dtype torch.float64 "
                       "but the model parameters are torch.float32"):
        GNN(**NBODY, hidden_channels=4, num_layers=1)(batch)
    bad = nbody_batch()
    bad.charge = bad.charge.float()
    with pytest.raises(TypeError, match="'data.charge' has dtype "
                       "torch.float32 but the positions have torch.float64"):
        small_gnn()(bad)
    bad = nbody_batch()
    bad.charge = torch.ones(bad.num_nodes, dtype=torch.long)
    with pytest.raises(TypeError, match="'data.charge' .* floating-point"):
        small_gnn()(bad)
    bad = nbody_batch()
    bad.edge_index = bad.edge_index.double()
    with pytest.raises(TypeError, match="edge_index' must be an integer"):
        small_gnn()(bad)
    with pytest.raises(TypeError, match="expects a torch_geometric.data"):
        small_gnn()({'pos': batch.pos})


def test_bad_declarations():
    with pytest.raises(ValueError, match="'output' must be one of"):
        GNN(output='points')
    with pytest.raises(ValueError, match="'scalars' and 'scalar_dim' "
                       "disagree"):
        GNN(scalars=('charge', ))
    with pytest.raises(ValueError, match="'edge_scalars' and "
                       "'edge_scalar_dim' disagree"):
        GNN(edge_scalar_dim=2)
    with pytest.raises(ValueError, match="'out_dim' is only used with "
                       "output='scalar'"):
        GNN(output='point', out_dim=3)
    with pytest.raises(ValueError, match="'vel' is declared both"):
        GNN(vectors=('vel', ), scalars=('vel', ), scalar_dim=3)
    with pytest.raises(TypeError, match="'vectors' must hold attribute "
                       "names"):
        GNN(vectors=(1, ))
    with pytest.raises(ValueError, match="'vectors' lists an attribute "
                       "twice"):
        GNN(vectors=('vel', 'vel'))
    with pytest.raises(TypeError, match="'vectors' must be an attribute "
                       "name or a sequence of names"):
        GNN(vectors=3)
    with pytest.raises(ValueError, match="'pool' must be one of"):
        GNN(output='scalar', pool='max')
    with pytest.raises(ValueError, match="'hidden_channels' must be >= 1"):
        GNN(hidden_channels=0)
    with pytest.raises(TypeError, match="'num_layers' must be an int"):
        GNN(num_layers=2.0)


def test_pooling_sum_and_mean():
    batch = nbody_batch()
    torch.manual_seed(0)
    model = small_gnn(output='scalar')
    inputs = model.read_inputs(batch)
    h = torch.arange(batch.num_nodes, dtype=torch.float64).unsqueeze(-1)
    sums = model.pool_graphs(h, inputs)
    assert sums.view(-1).tolist() == [6.0, 4.0, 45.0, 0.0, 36.0]
    model.pool = 'mean'
    means = model.pool_graphs(h, inputs)
    assert means.view(-1).tolist() == [1.5, 4.0, 7.5, 0.0, 12.0]


def test_input_not_mutated_and_repr():
    batch = nbody_batch()
    model = small_gnn(output='scalar', out_dim=2)
    assert_not_mutated(batch, lambda: model(batch))
    text = repr(model)
    assert "vectors=('vel',)" in text and 'out_dim=2' in text
    assert isinstance(model, BaseModel)
    assert model.out_channels == 2 and model.uses_edges()


def test_inverse_degree_counts_without_bincount():
    from torch_geometric_remul.nn.models.base import inverse_degree
    dst = torch.tensor([0, 0, 2, 0, 2])
    like = torch.zeros(1, dtype=torch.float64)
    with count_syncs() as syncs:
        out = inverse_degree(dst, 4, like)
    assert_no_syncs(syncs, 'inverse_degree')
    assert out.dtype == torch.float64
    assert out.view(-1).tolist() == [1 / 3, 1.0, 0.5, 1.0]


@pytest.mark.parametrize('name', ['gnn', 'transformer', 'egnn'])
def test_forward_backward_on_a_batch_reads_nothing(name):
    from torch_geometric_remul.nn.models import build_model
    batch = nbody_batch([3, 7, 1, 0, 5])
    kw = dict(max_num_nodes=7) if name == 'transformer' else {}
    torch.manual_seed(0)
    model = build_model(name, hidden_channels=8, num_layers=2, **NBODY, **kw).double()
    with count_syncs() as syncs:
        model(batch).sum().backward()
    assert_no_syncs(syncs, f'{name} forward + backward')


def test_batch_without_batch_vector_and_value_checks_in_debug():
    batch = nbody_batch()
    inputs = small_gnn().read_inputs(batch)
    del batch.batch
    again = small_gnn().read_inputs(batch)  # rebuilt from ptr
    assert torch.equal(again.batch, inputs.batch)
    # a plain Data with an unsorted batch vector: checked in debug mode
    data = Data(pos=torch.randn(3, 3, dtype=torch.float64),
                vel=torch.randn(3, 3, dtype=torch.float64),
                charge=torch.randn(3, 1, dtype=torch.float64),
                edge_index=torch.tensor([[0], [1]]),
                edge_attr=torch.ones(1, 1, dtype=torch.float64),
                batch=torch.tensor([1, 0, 1]))
    with debug(), pytest.raises(ValueError, match="must be sorted"):
        small_gnn()(data)
