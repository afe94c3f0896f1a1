import pytest
import torch
from torch.nn.parameter import is_lazy
from torch_geometric.data import Data

from tests.nn.models._helpers import NBODY, assert_not_mutated, nbody_batch
from torch_geometric_remul import debug
from torch_geometric_remul.nn.models import EGNN, GNN, BaseModel
from torch_geometric_remul.nn.models.base import ModelInputs
from torch_geometric_remul.testing import assert_no_syncs, count_syncs


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
        GNN(scalars=('charge', ), scalar_dim=0)
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
    with pytest.raises(ValueError, match="'readout' must be one of"):
        GNN(output='scalar', readout='atom')
    with pytest.raises(ValueError, match="'readout' is only used with "
                       "output='scalar'"):
        GNN(output='point', readout='node')
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


@pytest.mark.parametrize('name', ['gnn', 'transformer', 'egnn', 'segnn'])
@pytest.mark.parametrize('pool', ['sum', 'mean'])
def test_node_readout_pools_the_head_of_every_node(name, pool):
    from torch_geometric_remul.nn.models import build_model
    batch = nbody_batch([3, 7, 1, 0, 5])
    kw = dict(max_num_nodes=7) if name == 'transformer' else {}
    seen, out, weights = {}, {}, {}
    for readout in ('graph', 'node'):
        torch.manual_seed(0)
        model = build_model(
            name, hidden_channels=8, num_layers=1, **NBODY, **kw,
            output='scalar', out_dim=2, pool=pool, readout=readout).double()
        model(batch)  # builds the lazy layers from the data
        if readout == 'node':  # the weights of the 'graph' model
            with pytest.raises(ValueError, match="no 'node_readout' mark: "
                               "they are of readout='graph'"):
                model.load_state_dict(weights)
            model.load_state_dict(dict(weights, node_readout=torch.ones(
                (), dtype=torch.bool)))
        weights = model.state_dict()  # loaded by the next pass
        assert ('node_readout' in weights) == (readout == 'node')
        model.head.register_forward_hook(
            lambda m, i, o, r=readout: seen.update({r: (i[0], o)}))
        out[readout] = model(batch)
        assert out[readout].shape == (5, 2)
        assert ("readout='node'" in repr(model)) == (readout == 'node')
    inputs = model.read_inputs(batch)
    # 'graph': the head of the pooled rows; 'node': the pooled heads of the
    # same node rows (so an empty graph gets the pool of no rows, 0)
    h, y = seen['node']
    assert h.shape[0] == batch.num_nodes
    torch.testing.assert_close(seen['graph'][0], model.pool_graphs(h, inputs))
    torch.testing.assert_close(out['graph'], seen['graph'][1])
    torch.testing.assert_close(out['node'], model.pool_graphs(y, inputs))
    assert out['node'][3].abs().max() == 0
    assert not torch.allclose(out['node'], out['graph'])
    # and the other way: a 'node' model's weights into a 'graph' model
    graph = build_model(name, hidden_channels=8, num_layers=1, **NBODY, **kw,
                        output='scalar', out_dim=2, pool=pool).double()
    graph(batch)
    with pytest.raises(ValueError, match=r"readout='node' \('node_readout'"
                       r"\), this model has readout='graph'"):
        graph.load_state_dict(weights)
    model.reset_parameters()  # keeps the mark
    assert model.state_dict()['node_readout'].item() is True


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
    model = build_model(name, hidden_channels=8, num_layers=2, **NBODY,
                        **kw).double()
    with count_syncs() as syncs:
        model(batch).sum().backward()
    assert_no_syncs(syncs, f'{name} forward + backward')


def test_batch_without_batch_vector_and_value_checks_in_debug():
    batch = nbody_batch()
    inputs = small_gnn().read_inputs(batch)
    del batch.batch
    again = small_gnn().read_inputs(batch)  # rebuilt from ptr
    assert torch.equal(again.batch, inputs.batch)
    # a plain Data is one graph (as for the transforms and the loss:
    # torch_geometric_remul.layout); a batch vector naming several graphs
    # is refused in debug mode, and read nowhere outside it
    data = Data(pos=torch.randn(3, 3, dtype=torch.float64),
                vel=torch.randn(3, 3, dtype=torch.float64),
                charge=torch.randn(3, 1, dtype=torch.float64),
                edge_index=torch.tensor([[0], [1]]),
                edge_attr=torch.ones(1, 1, dtype=torch.float64))
    model = small_gnn(output='scalar')
    alone = model(data)
    assert alone.shape == (1, 1)
    data.batch = torch.zeros(3, dtype=torch.long)
    with debug():
        assert torch.equal(model(data), alone)
    data.batch = torch.tensor([0, 1, 1])
    with debug(), pytest.raises(ValueError, match="a plain Data is one "
                                "graph.*Batch.from_data_list"):
        model(data)
    with count_syncs() as syncs:
        out = model(data)
    assert_no_syncs(syncs, 'forward on a plain Data')
    assert torch.equal(out, alone)
    data.batch = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match=r"'data.batch' must have shape "
                       r"\[3\]"):
        model(data)


# roles= ####################################################################

from torch_geometric_remul.nn.models import MODELS, build_model  # noqa: E402
from torch_geometric_remul.roles import Roles  # noqa: E402

#: Small constructor arguments per model name (SEGNN needs e3nn).
SMALL = {
    'mlp': dict(num_nodes=4, hidden_channels=8, num_layers=2),
    'gnn': dict(hidden_channels=8, num_layers=2),
    'transformer': dict(hidden_channels=8, num_layers=2, heads=2),
    'egnn': dict(hidden_channels=8, num_layers=2),
    'segnn': dict(hidden_channels='4x0e+2x1o', num_layers=1),
}
LAZY = dict(scalars='charge', edge_scalars='edge_attr')  # widths inferred


def small(name, **kwargs):
    if name == 'segnn':
        pytest.importorskip('e3nn')
    return build_model(name, **SMALL[name], **kwargs)


@pytest.mark.parametrize('name', list(MODELS))
def test_roles_declare_what_the_shortcuts_declare(name):
    batch = nbody_batch([4, 4])
    roles = Roles(vectors='vel', output='vector')
    torch.manual_seed(0)
    a = small(name, roles=roles, **NBODY_NO_VECTORS).double()
    torch.manual_seed(0)
    b = small(name, vectors=('vel', ), output='vector',
              **NBODY_NO_VECTORS).double()
    assert a.roles == b.roles == roles
    assert (a.output, a.points, a.vectors) == ('vector', ('pos', ), ('vel', ))
    assert torch.equal(a(batch), b(batch))


NBODY_NO_VECTORS = {k: v for k, v in NBODY.items() if k != 'vectors'}


def test_roles_first_point_is_the_position():
    batch = nbody_batch()
    batch.y = batch.pos + 1.0
    torch.manual_seed(0)
    model = small_gnn(vectors=None, roles=Roles(points=('pos', 'y'),
                                                vectors='vel'))
    assert model.position_key == 'pos' and model.points == ('pos', 'y')
    torch.manual_seed(0)
    plain = small_gnn()
    assert torch.equal(model(batch), plain(batch))  # 'y' is not read
    torch.manual_seed(0)
    other = small_gnn(points=('x', 'pos'))
    with pytest.raises(ValueError, match="'x' .*declared in 'points'"):
        other(batch)


def test_roles_errors():
    roles = Roles(vectors='vel')
    with pytest.raises(ValueError, match="GNN: pass either 'roles' or "
                       "'vectors', not both"):
        GNN(roles=roles, vectors='vel')
    with pytest.raises(ValueError, match="pass either 'roles' or 'output'"):
        GNN(roles=roles, output='point')
    with pytest.raises(TypeError, match="'roles' must be a Roles"):
        GNN(roles={'vectors': 'vel'})
    with pytest.raises(ValueError, match="these backbones return one "
                       "tensor.*'energy'"):
        GNN(output={'energy': 'scalar', 'forces': 'vector'})
    with pytest.raises(ValueError, match="GNN reads no pseudovector inputs "
                       r"\(got pseudovectors=\['omega'\]\)"):
        GNN(roles=Roles(pseudovectors='omega'))
    with pytest.raises(ValueError, match="needs a position attribute"):
        GNN(points=())
    with pytest.raises(ValueError, match="'charge' is declared both in "
                       "'points' and in 'scalars'"):
        GNN(points=('pos', 'charge'), scalars='charge')
    with pytest.raises(ValueError, match="EGNN: 'output' must be one of "
                       "point, vector, scalar .*'pseudovector'.*polar"):
        EGNN(output='pseudovector')


@pytest.mark.parametrize('name', ['mlp', 'gnn', 'transformer'])
def test_unconstrained_pseudovector_output(name):
    # a pseudovector output is [N, 3] like a vector (no position added)
    torch.manual_seed(0)
    model = small(name, output='pseudovector', **LAZY).double()
    batch = nbody_batch([4, 4])
    out = model(batch)
    assert out.shape == (8, 3) and model.out_channels == 3
    torch.manual_seed(0)
    vector = small(name, output='vector', **LAZY).double()
    assert torch.equal(out, vector(batch))


# Input widths inferred from the data ########################################

@pytest.mark.parametrize('name', list(MODELS))
def test_lazy_widths_equal_given_widths(name):
    # under the same seed, a model whose widths are inferred at the first
    # call has the parameters of one built with the widths given
    batch = nbody_batch([4, 4])
    torch.manual_seed(0)
    eager = small(name, **NBODY).double()
    assert eager.is_initialized
    torch.manual_seed(0)
    lazy = small(name, vectors='vel', **LAZY).double()
    assert not lazy.is_initialized and lazy.scalar_dim is None
    # lazy parameters of the same names until the first call
    assert [name for name, _ in lazy.named_parameters()] == \
        [name for name, _ in eager.named_parameters()]
    assert all(is_lazy(p) for p in lazy.parameters())
    assert lazy.state_dict() == {}  # no values yet
    assert 'uninitialized' in repr(lazy)
    torch.rand(5)  # draws between construction and the first call
    out = lazy(batch)  # builds (float64: .double() was recorded)
    assert lazy.is_initialized
    assert (lazy.scalar_dim, lazy.edge_scalar_dim) == (1, 1)
    assert all(p.dtype == torch.float64 for p in lazy.parameters())
    ref = eager.state_dict()
    assert lazy.state_dict().keys() == ref.keys()
    for key, value in lazy.state_dict().items():
        assert torch.equal(value, ref[key]), key
    assert torch.equal(out, eager(batch))


@pytest.mark.parametrize('name', list(MODELS))
def test_optimizer_created_before_the_first_call_trains(name):
    # build_model without widths: the lazy parameters go into the optimizer
    # (as with torch.nn.LazyLinear) and are materialised in place
    batch = nbody_batch([4, 4])
    torch.manual_seed(0)
    model = small(name, vectors='vel', **LAZY).double()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    params = list(model.parameters())
    assert params and all(is_lazy(p) for p in params)
    model(batch).square().mean().backward()  # builds, then trains
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert not any(is_lazy(p) for p in params)
    before = [p.detach().clone() for p in params]
    optimizer.step()
    changed = [not torch.equal(a, p) for a, p in zip(before, params)]
    assert all(changed[i] for i, p in enumerate(params)
               if p.grad is not None and p.grad.abs().sum() > 0)
    assert sum(changed) > len(params) // 2
    # and equal to a model built with the widths given, under the seed
    torch.manual_seed(0)
    eager = small(name, **NBODY).double()
    torch.manual_seed(0)
    lazy = small(name, vectors='vel', **LAZY).double()
    lazy.initialize(batch)
    for (key, a), b in zip(eager.state_dict().items(),
                           lazy.state_dict().values()):
        assert torch.equal(a, b), key


def test_lazy_parameters_stay_tied_and_follow_the_model():
    class Tied(BaseModel):
        requires_edges = False

        def build_layers(self):
            self.a = torch.nn.Linear(self.node_feature_dim, 3)
            self.b = torch.nn.Linear(self.node_feature_dim, 3)
            self.b.weight = self.a.weight

        def forward(self, data):
            inputs = self.read_inputs(data)
            from torch_geometric_remul.nn.models.base import node_features
            h = node_features(inputs)
            return self.assemble_output(self.a(h) + self.b(h), inputs)

    model = Tied(scalars='charge').double()
    assert model.a.weight is model.b.weight and is_lazy(model.a.weight)
    assert model.a.weight.dtype == torch.float64
    weight = model.a.weight
    model.initialize(nbody_batch())
    assert model.a.weight is weight is model.b.weight
    assert weight.shape == (3, 4) and weight.dtype == torch.float64


def test_initialize_reads_widths_without_edge_index():
    # the widths come from the declared attributes' shapes: edges are
    # built later (e.g. by a transform)
    batch = nbody_batch()
    torch.manual_seed(0)
    ref = GNN(**NBODY, hidden_channels=8, num_layers=1).double()
    data = Data(pos=batch.pos, vel=batch.vel, charge=batch.charge)
    model = GNN(vectors='vel', scalars='charge', edge_scalar_dim=0,
                hidden_channels=8, num_layers=1)
    assert model.initialize(data).scalar_dim == 1 and model.is_initialized
    # edge scalars without edge_index: the rows of the first edge scalar
    torch.manual_seed(0)
    model = GNN(vectors='vel', **LAZY, hidden_channels=8,
                num_layers=1).double()
    data.edge_attr = batch.edge_attr
    model.initialize(data)
    assert (model.scalar_dim, model.edge_scalar_dim) == (1, 1)
    assert torch.equal(model(batch), ref(batch))
    data.edge_attr = torch.cat([batch.edge_attr, batch.edge_attr], dim=-1)
    with pytest.raises(ValueError, match="expected edge_scalar_dim=1"):
        model.initialize(data)  # an initialised model checks the widths


def test_initialize_builds_without_training_and_keeps_the_rng():
    batch = nbody_batch()
    torch.manual_seed(0)
    model = GNN(vectors='vel', **LAZY, hidden_channels=8, num_layers=1)
    before = torch.rand(3)
    torch.manual_seed(0)
    model = GNN(vectors='vel', **LAZY, hidden_channels=8,
                num_layers=1).double()
    with count_syncs() as syncs:
        assert model.initialize(batch) is model  # shapes only
    assert_no_syncs(syncs, 'GNN.initialize')
    # building drew from the state saved at construction, not the global
    # one, which is where it was
    assert torch.equal(torch.rand(3), before)
    assert all(p.grad is None for p in model.parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)  # afterwards
    loss = model(batch).square().mean()
    loss.backward()
    optimizer.step()
    # the data are checked against the inferred widths from then on
    bad = nbody_batch()
    bad.charge = torch.cat([bad.charge, bad.charge], dim=-1)
    with pytest.raises(ValueError, match=r"'charge': 2\) have total width 2, "
                       r"expected scalar_dim=1 \(inferred from the data at "
                       r"the first call\)"):
        model(bad)
    with pytest.raises(TypeError, match="expects a torch_geometric.data"):
        GNN(**LAZY).initialize(batch.pos)


@pytest.mark.parametrize('name', ['gnn', 'transformer', 'egnn'])
def test_first_call_builds_without_reading_the_device(name):
    batch = nbody_batch([3, 7, 1, 0, 5])
    kw = dict(max_num_nodes=7) if name == 'transformer' else {}
    model = small(name, vectors='vel', **LAZY, **kw).double()
    with count_syncs() as syncs:
        model(batch).sum().backward()
    assert_no_syncs(syncs, f'first (initialising) {name} forward+backward')


def test_only_the_missing_width_is_inferred():
    batch = nbody_batch()
    model = small_gnn(edge_scalar_dim=None)
    assert model.scalar_dim == 1 and not model.is_initialized
    model(batch)
    assert model.edge_scalar_dim == 1
    # a given width is checked against the data on the initialising call
    model = small_gnn(scalar_dim=2, edge_scalar_dim=None)
    with pytest.raises(ValueError, match=r"'charge': 1\) have total width 1, "
                       r"expected scalar_dim=2$"):
        model(batch)
    assert not model.is_initialized
    # nothing declared: nothing to infer, built at once
    assert GNN(hidden_channels=4, num_layers=1).is_initialized


def test_uninitialised_model_refuses_state_and_reset():
    batch = nbody_batch()
    torch.manual_seed(0)
    source = small_gnn()
    lazy = GNN(**dict(NBODY, scalar_dim=None, edge_scalar_dim=None),
               hidden_channels=8, num_layers=1)
    with pytest.raises(RuntimeError, match=r"GNN.load_state_dict\(\): the "
                       r"model is not initialised: scalar_dim and "
                       r"edge_scalar_dim will be inferred.*model.initialize"):
        lazy.load_state_dict(source.state_dict())
    with pytest.raises(RuntimeError, match=r"reset_parameters\(\): the model "
                       r"is not initialised"):
        lazy.reset_parameters()
    with pytest.raises(RuntimeError, match="'scalar_dim' is not known yet"):
        lazy.node_feature_dim
    # inside a parent module too
    parent = torch.nn.Sequential(lazy)
    with pytest.raises(RuntimeError, match="not initialised"):
        parent.load_state_dict({'0.' + k: v for k, v in
                                source.state_dict().items()})
    lazy.double().initialize(batch)
    lazy.load_state_dict(source.state_dict())
    assert torch.equal(lazy(batch), source(batch))


def test_reset_parameters_in_place():
    batch = nbody_batch()
    torch.manual_seed(0)
    model = small_gnn()
    params = list(model.parameters())
    before = model(batch)
    torch.manual_seed(5)
    model.reset_parameters()
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert all(p.dtype == torch.float64 for p in params)
    assert not torch.allclose(model(batch), before)
    torch.manual_seed(5)
    fresh = small_gnn()  # the same draws as a model built now
    assert torch.equal(model(batch), fresh(batch))


def test_subclass_builds_after_its_whole_constructor():
    class Wider(GNN):
        def __init__(self, extra, **kwargs):
            super().__init__(**kwargs)
            self.extra = extra  # set after GNN's constructor returned

        def build_layers(self):
            super().build_layers()
            self.lin = torch.nn.Linear(self.scalar_dim, self.extra)

    eager = Wider(3, **NBODY, hidden_channels=4, num_layers=1)
    assert eager.lin.out_features == 3
    lazy = Wider(3, vectors='vel', **LAZY, hidden_channels=4, num_layers=1)
    lazy.double().initialize(nbody_batch())
    assert lazy.lin.in_features == 1 and lazy.lin.weight.dtype == \
        torch.float64


def test_width_dependent_layers_outside_build_layers():
    class Early(BaseModel):  # builds in __init__: needs the widths given
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.lin = torch.nn.Linear(self.node_feature_dim, 3)

    assert Early(scalars='charge', scalar_dim=1).lin.in_features == 4
    with pytest.raises(RuntimeError, match="create the layers that depend "
                       r"on it in build_layers\(\), or pass scalar_dim"):
        Early(scalars='charge')


def test_built_under_inference_mode_then_trained():
    batch = nbody_batch()
    model = GNN(vectors='vel', **LAZY, hidden_channels=4,
                num_layers=1).double()
    with torch.inference_mode():
        model(batch)
    model(batch).sum().backward()  # not inference tensors
    assert all(p.grad is not None for p in model.parameters())


def test_lazy_build_follows_the_device_of_the_model():
    # .to(device) before the first call is recorded (meta stands in for a
    # GPU): the layers are built on the CPU, then moved there
    batch = nbody_batch().to('meta')
    model = EGNN(vectors='vel', **LAZY, hidden_channels=4,
                 num_layers=1).to('meta', torch.float64)
    out = model(batch)
    assert out.device.type == 'meta' and out.shape == (batch.num_nodes, 3)
    assert {p.device.type for p in model.parameters()} == {'meta'}
    assert {p.dtype for p in model.parameters()} == {torch.float64}


@pytest.mark.parametrize('name', ['gnn', 'egnn', 'segnn'])
def test_out_of_range_indices_name_the_tensor(name):
    """Out-of-range indices in edge_index or batch are named in debug mode
    (outside it they are not read); edges on no nodes, a shape, always."""
    from torch_geometric.data import Batch

    from torch_geometric_remul.nn.models import build_model
    torch.manual_seed(0)
    model = build_model(name, vectors=('vel', ), hidden_channels=8,
                        num_layers=1)
    for edges, seen in (([[0, 1], [1, 9]], '[0, 9]'),
                        ([[0, -1], [1, 2]], '[-1, 2]')):
        data = Data(pos=torch.randn(7, 3), vel=torch.randn(7, 3),
                    edge_index=torch.tensor(edges))
        with debug(), pytest.raises(ValueError) as info:
            model(data)
        assert f"'data.edge_index' holds node indices in {seen} but there " \
            f"are 7 nodes" in str(info.value)
    batch = Batch.from_data_list([
        Data(pos=torch.randn(3, 3), vel=torch.randn(3, 3),
             edge_index=torch.tensor([[0, 1], [1, 2]])) for _ in range(2)])
    batch.batch = torch.tensor([0, 0, 0, 1, 1, 5])
    with debug(), pytest.raises(ValueError, match=r"'data.batch' holds graph "
                                r"indices in \[0, 5\] but only 2 "
                                r"graph\(s\) exist"):
        model(batch)
    empty = Data(pos=torch.zeros(0, 3), vel=torch.zeros(0, 3),
                 edge_index=torch.tensor([[0], [1]]))
    with pytest.raises(ValueError, match=r"'data.edge_index' holds 1 "
                       r"edge\(s\) but there are no nodes"):
        model(empty)
