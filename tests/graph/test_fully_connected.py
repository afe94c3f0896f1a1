import itertools

import pytest
import torch
from torch_geometric.data import Batch, Data

from tests.graph._helpers import check_within_graphs, edge_set
from torch_geometric_remul.graph import fully_connected_graph


def expected(sizes, loop=False):
    edges, start = [], 0
    for n in sizes:
        nodes = range(start, start + n)
        edges += [(j, i) for i, j in itertools.product(nodes, nodes)
                  if loop or i != j]
        start += n
    return sorted(edges)


@pytest.mark.parametrize('loop', [False, True])
@pytest.mark.parametrize('sizes', [[5], [4, 1, 7, 0, 3], [2, 2, 2], [0],
                                   [1]])
def test_all_ordered_pairs(sizes, loop):
    sizes_t = torch.tensor(sizes)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), sizes_t)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), sizes_t.cumsum(0)])
    from_batch = fully_connected_graph(batch, loop=loop)
    from_ptr = fully_connected_graph(ptr=ptr, loop=loop)
    assert torch.equal(from_batch, from_ptr)
    assert edge_set(from_batch) == expected(sizes, loop)
    n2 = sum(n * n if loop else n * (n - 1) for n in sizes)
    assert from_batch.shape == (2, n2)
    check_within_graphs(from_batch, batch)
    # sorted by target, then source
    key = from_batch[1] * 10_000 + from_batch[0]
    assert torch.equal(key, key.sort().values)


def test_data_batch_and_count():
    graphs = [Data(pos=torch.randn(n, 3)) for n in (3, 2)]
    batch = Batch.from_data_list(graphs)
    assert edge_set(fully_connected_graph(batch)) == expected([3, 2])
    assert edge_set(fully_connected_graph(graphs[0])) == expected([3])
    assert edge_set(fully_connected_graph(4)) == expected([4])
    assert fully_connected_graph(0).shape == (2, 0)


def test_bad_input():
    with pytest.raises(ValueError, match="exactly one of 'batch'"):
        fully_connected_graph()
    with pytest.raises(ValueError, match="exactly one of 'batch'"):
        fully_connected_graph(torch.zeros(3, dtype=torch.long),
                              ptr=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="'batch' must be sorted"):
        fully_connected_graph(torch.tensor([0, 1, 0]))
    with pytest.raises(TypeError, match="'batch' must be an integer"):
        fully_connected_graph(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"'batch' must have shape"):
        fully_connected_graph(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="'ptr' must be non-decreasing"):
        fully_connected_graph(ptr=torch.tensor([0, 3, 2, 4]))
    with pytest.raises(TypeError, match="'batch' must be a Data/Batch"):
        fully_connected_graph('graph')
    with pytest.raises(ValueError, match="node count 'batch' must be >= 0"):
        fully_connected_graph(-1)
    with pytest.raises(TypeError, match="'loop' must be a bool"):
        fully_connected_graph(3, loop=1)
