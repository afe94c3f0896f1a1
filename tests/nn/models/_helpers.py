"""Shared data and checks for the model tests."""
import pytest
import torch
from torch_geometric.data import Batch

from tests.conftest import make_batch
from torch_geometric_remul.graph import fully_connected_graph
from torch_geometric_remul.testing import assert_equivariant

#: The N-body declaration: velocity vector, charge scalar, q_i q_j on edges.
NBODY = dict(vectors=('vel', ), scalars=('charge', ), scalar_dim=1,
             edge_scalars=('edge_attr', ), edge_scalar_dim=1)
SIZES = [4, 1, 6, 0, 3]
#: Graph sizes for the graph-independence checks (an empty graph included).
VARIABLE_SIZES = [3, 7, 1, 0, 5]
DTYPES = [torch.float32, torch.float64]


def model_factory(cls, **defaults):
    """``make(output='point', dtype=torch.float64, **kwargs)``: a ``cls``
    with the N-body declaration, then ``defaults``, ``out_dim=2`` for scalar
    outputs and ``kwargs``, cast to ``dtype``."""
    def make(output='point', dtype=torch.float64, **kwargs):
        kw = dict(NBODY, **defaults)
        if output == 'scalar':
            kw['out_dim'] = 2
        kw.update(kwargs)
        return cls(output=output, **kw).to(dtype)
    return make


def nbody_batch(sizes=SIZES, dtype=torch.float64, seed=0) -> Batch:
    """Graphs of the given sizes with pos, vel, charge [N, 1], fully
    connected edges and edge_attr = q_i q_j [E, 1], collated (so that
    ``to_data_list`` restores the graphs with their edges)."""
    graphs = make_batch(sizes, dtype=dtype, seed=seed).to_data_list()
    for data in graphs:
        data.edge_index = fully_connected_graph(data)
        src, dst = data.edge_index
        data.edge_attr = data.charge[src] * data.charge[dst]
    return Batch.from_data_list(graphs)


def assert_model_equivariant(model, batch: Batch, group: str = 'E3',
                             num_samples: int = 2):
    """The public :func:`~torch_geometric_remul.testing.assert_equivariant`
    with the model's own declaration (``model.roles``) and the default
    tolerance of the dtype (1e-9 in float64), seeded."""
    return assert_equivariant(model, batch, roles=model.roles, group=group,
                              num_samples=num_samples,
                              generator=torch.Generator().manual_seed(1))


def assert_not_mutated(batch: Batch, fn) -> None:
    before = {k: v.clone() for k, v in batch.items()
              if isinstance(v, torch.Tensor)}
    fn()
    for k, v in before.items():
        assert torch.equal(batch[k], v), k


def check_forward(model, batch, dtype):
    """Shapes and dtypes of every output kind, and the point = pos +
    displacement contract."""
    out = model(batch)
    assert out.dtype == dtype
    assert torch.isfinite(out).all()
    if model.output == 'scalar':
        assert out.shape == (batch.num_graphs, model.out_dim)
    else:
        assert out.shape == (batch.num_nodes, 3)
    return out


def check_forward_pass(make, output, dtype, sizes=SIZES, displaced=True):
    """:func:`check_forward` of a model built after ``torch.manual_seed(0)``
    on an N-body batch of ``sizes``; with ``displaced``, a point output
    must also move the input positions."""
    torch.manual_seed(0)
    batch = nbody_batch(sizes, dtype=dtype)
    out = check_forward(make(output, dtype), batch, dtype)
    if displaced and output == 'point':
        assert (out - batch.pos).abs().max() > 1e-3


def check_gradients(model, batch):
    """Every parameter and the input positions receive finite gradients,
    and the loss depends on the parameters."""
    pos = batch.pos.clone().requires_grad_(True)
    data = batch.clone()
    data.pos = pos
    model(data).square().sum().backward()
    assert pos.grad is not None and torch.isfinite(pos.grad).all()
    assert pos.grad.abs().sum() > 0
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    total = sum(p.grad.abs().sum() for p in model.parameters())
    assert total > 0


def check_seeded(factory, batch):
    """``torch.manual_seed`` before construction fixes the output; another
    seed changes it."""
    outs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        outs.append(factory()(batch))
    assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(outs[0], outs[2])


def check_not_equivariant_at_init(make, output, sizes=SIZES):
    """:func:`check_not_equivariant` of ``make(output)`` built after
    ``torch.manual_seed(0)``."""
    torch.manual_seed(0)
    check_not_equivariant(make(output), nbody_batch(sizes))


def check_not_equivariant(model, batch, margin=1e-3):
    """The relative equivariance error E' at initialisation exceeds
    ``margin`` for rotations+reflections+translations and, for point and
    scalar outputs, for translations alone."""
    groups = ['E3'] + (['T3'] if model.output in ('point', 'scalar') else [])
    for group in groups:
        with pytest.raises(AssertionError, match='not equivariant'):
            assert_equivariant(model, batch, roles=model.roles, group=group,
                               num_samples=2, atol=0.0, rtol=margin,
                               generator=torch.Generator().manual_seed(1))


def check_graphs_independent(model, batch):
    """The output on a batch equals the outputs on its graphs one by one:
    nothing leaks between graphs (and empty graphs are fine)."""
    out = model(batch)
    rows = []
    for i, data in enumerate(batch.to_data_list()):
        single = Batch.from_data_list([data])
        if model.output == 'scalar':
            rows.append(model(single))
        elif data.num_nodes > 0:
            rows.append(model(single))
    assert torch.allclose(out, torch.cat(rows), atol=1e-10)


def check_variable_sizes(make, output):
    """:func:`check_graphs_independent` of ``make(output)`` built after
    ``torch.manual_seed(0)``, on graphs of :data:`VARIABLE_SIZES`."""
    torch.manual_seed(0)
    check_graphs_independent(make(output), nbody_batch(VARIABLE_SIZES))
