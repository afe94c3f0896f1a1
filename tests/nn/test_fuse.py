"""concat_copies under torch.compile (its eager behaviour: tests in
test_loss.py, next to the fused loss)."""
import torch
from torch_geometric.data import Batch, Data

from torch_geometric_remul._copy import shallow_copy
from torch_geometric_remul.nn import concat_copies


def _batch():
    g = torch.Generator().manual_seed(0)
    graphs = [Data(pos=torch.randn(n, 3, generator=g),
                   edge_index=torch.randint(0, n, (2, 2 * n), generator=g),
                   face=torch.randint(0, n, (3, n), generator=g),
                   u=torch.randn(1, 3, generator=g)) for n in (3, 1, 2)]
    return Batch.from_data_list(graphs)


def test_compiled_concat_copies_is_the_eager_batch():
    """Traced in one graph (fullgraph), the fused Batch has the eager
    values: every copy's edge indices and faces offset by the node count
    (Dynamo cannot read the count inside PyG's ``__inc__``), the graph
    assignment, offsets, graph count and collation record."""
    batch = _batch()

    def fuse(b):
        moved = shallow_copy(b)
        moved['pos'] = b.pos + 1
        fused = concat_copies([b, moved, b])
        return fused, {k: fused[k] for k in fused.keys()}

    ref, ref_values = fuse(batch)
    torch._dynamo.reset()
    out, values = torch.compile(fuse, backend='eager', fullgraph=True)(batch)
    assert type(out) is type(ref)
    assert values.keys() == ref_values.keys()
    for key, value in ref_values.items():
        assert torch.equal(values[key], value), key
    assert out.num_graphs == ref.num_graphs == 9
    assert ref._slice_dict.keys() == out._slice_dict.keys()
    for key, value in ref._slice_dict.items():
        assert torch.equal(out._slice_dict[key], value), key
    for a, b in zip(out.to_data_list(), ref.to_data_list()):
        assert torch.equal(a.edge_index, b.edge_index)
        assert torch.equal(a.face, b.face)


def test_compiled_concat_copies_of_a_single_data():
    """Copies of a single Data (not a Batch) are stacked eagerly inside a
    compiled region, with their edge indices offset."""
    data = Data(pos=torch.randn(4, 3),
                edge_index=torch.tensor([[0, 1], [1, 2]]))

    def fuse(d):
        fused = concat_copies([d, d])
        return fused.pos * 2, fused.edge_index, fused.ptr, fused.batch

    torch._dynamo.reset()
    out = torch.compile(fuse, backend='eager')(data)
    for a, b in zip(out, fuse(data)):
        assert torch.equal(a, b)
    assert out[1].tolist() == [[0, 1, 4, 5], [1, 2, 5, 6]]
