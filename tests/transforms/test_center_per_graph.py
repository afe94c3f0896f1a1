import pytest
import torch
import torch_geometric.transforms as T
from torch_geometric.data import Batch, Data

from tests.conftest import make_batch
from torch_geometric_remul.group import segment_mean
from torch_geometric_remul.transforms import CenterPerGraph

F64 = torch.float64


def test_each_graph_centred(backend):
    batch = make_batch([3, 1, 0, 6, 2])
    batch.pos = batch.pos + 5.0
    out = CenterPerGraph()(batch)
    means = segment_mean(out.pos, ptr=out.ptr)
    assert torch.allclose(means, torch.zeros_like(means), atol=1e-12)
    # shapes inside each graph are kept
    assert torch.allclose(out.pos[:3] - out.pos[0], batch.pos[:3] -
                          batch.pos[0], atol=1e-12)
    # PyG's Center uses the batch-wide mean instead
    pyg = T.Center()(batch)
    pyg_means = segment_mean(pyg.pos, ptr=pyg.ptr)
    assert pyg_means.abs().max() > 1e-3
    assert out.vel is batch.vel
    assert torch.equal(batch.pos, make_batch([3, 1, 0, 6, 2]).pos + 5.0)


def test_same_shift_for_all_points_and_weights():
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(4, 3, generator=g, dtype=F64)
    y = pos + 0.1
    mass = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64)
    data = Data(pos=pos, y=y, mass=mass)
    out = CenterPerGraph(points=('pos', 'y'), weight='mass')(data)
    com = (mass.unsqueeze(-1) * pos).sum(0) / mass.sum()
    assert torch.allclose(out.pos, pos - com, atol=1e-12)
    assert torch.allclose(out.y - out.pos, y - pos, atol=1e-12)
    assert torch.allclose((mass.unsqueeze(-1) * out.pos).sum(0),
                          torch.zeros(3, dtype=F64), atol=1e-12)
    assert repr(CenterPerGraph(weight='mass')) == (
        "CenterPerGraph(points=['pos'], weight='mass')")


def test_bad_input():
    data = Data(pos=torch.randn(3, 3), mass=torch.ones(2))
    with pytest.raises(ValueError, match="'y' .* is missing"):
        CenterPerGraph(points=('pos', 'y'))(data)
    with pytest.raises(ValueError, match="'data.mass' must have shape"):
        CenterPerGraph(weight='mass')(data)
    with pytest.raises(ValueError, match="weight attribute 'm' is missing"):
        CenterPerGraph(weight='m')(data)
    with pytest.raises(ValueError, match='at least one attribute'):
        CenterPerGraph(points=())


def test_zero_total_mass_is_never_silently_uncentred():
    from torch_geometric_remul import debug
    graphs = [Data(pos=torch.randn(2, 3), mass=torch.zeros(2)),
              Data(pos=torch.randn(3, 3), mass=torch.ones(3))]
    batch = Batch.from_data_list(graphs)
    out = CenterPerGraph(weight='mass')(batch)
    assert torch.isnan(out.pos[:2]).all()  # undefined centre: NaN, loud
    assert torch.allclose(out.pos[2:].mean(0), torch.zeros(3), atol=1e-6)
    with debug(), pytest.raises(ValueError, match="total weight 0 in "
                                "'data.mass'"):
        CenterPerGraph(weight='mass')(batch)


def test_negative_mass_rejected_in_debug_mode():
    from torch_geometric_remul import debug
    data = Data(pos=torch.randn(2, 3), mass=torch.tensor([1.0, -1.0]))
    with debug(), pytest.raises(ValueError, match='non-negative'):
        CenterPerGraph(weight='mass')(data)


@pytest.mark.parametrize('weight', [None, 'mass'])
def test_unsorted_batch_without_ptr_centres_each_graph(backend, weight):
    # An unsorted 'batch' and no 'ptr': each row is shifted by its own
    # graph's centre (rows were placed by position before)
    from torch_geometric_remul import debug
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(5, 3, generator=g, dtype=F64) + 5.0
    mass = torch.rand(5, generator=g, dtype=F64) + 0.5
    index = torch.tensor([1, 0, 1, 0, 1])
    for debug_on in (False, True):
        data = Batch(pos=pos, mass=mass, batch=index)
        with debug(debug_on):
            out = CenterPerGraph(weight=weight)(data)
        for graph in (0, 1):
            rows = index == graph
            w = mass[rows] if weight else torch.ones(int(rows.sum()),
                                                     dtype=F64)
            centre = (pos[rows] * w[:, None]).sum(0) / w.sum()
            assert torch.allclose(out.pos[rows], pos[rows] - centre,
                                  atol=1e-12)


def test_on_a_batch_compiles_in_one_graph():
    """torch.compile traces CenterPerGraph on a Batch in one graph
    (fullgraph): no host reads or data-dependent shapes (the collation
    record's values are not read while tracing: the rows are placed by
    shape), and the shallow copy of the Batch is one Dynamo follows."""
    from torch_geometric.data import Batch, Data
    batch = Batch.from_data_list([Data(pos=torch.randn(n, 3))
                                  for n in (3, 1, 4)])
    torch._dynamo.reset()
    explain = torch._dynamo.explain(lambda d: CenterPerGraph()(d).pos)(batch)
    assert explain.graph_break_count == 0, explain.break_reasons
    compiled = torch.compile(lambda d: CenterPerGraph()(d).pos,
                             backend='eager', fullgraph=True)
    assert torch.allclose(compiled(batch), CenterPerGraph()(batch).pos)
