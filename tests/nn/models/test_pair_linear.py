import torch

from torch_geometric_remul.graph import fully_connected_graph
from torch_geometric_remul.nn.models.pair_linear import PairLinear


def test_equals_linear_on_concatenated_pairs():
    torch.manual_seed(0)
    lin = PairLinear(5, 2, 7).double()
    h = torch.randn(6, 5, dtype=torch.float64)
    edge_index = fully_connected_graph(torch.tensor([0, 0, 0, 1, 1, 1]))
    e = torch.randn(edge_index.size(1), 2, dtype=torch.float64)
    src, dst = edge_index
    weight, bias = lin.as_dense()
    dense = torch.cat([h[dst], h[src], e], dim=-1) @ weight.t() + bias
    assert torch.allclose(lin(h, edge_index, e), dense, atol=1e-12)


def test_without_edge_features():
    torch.manual_seed(0)
    lin = PairLinear(3, 0, 4)
    h = torch.randn(3, 3)
    edge_index = torch.tensor([[0, 2], [1, 1]])
    out = lin(h, edge_index)
    assert lin.edge_term(None) is None
    assert torch.allclose(out[1], lin.lin_i(h[1]) + lin.lin_j(h[2]))
    out.sum().backward()
    assert lin.lin_j.weight.grad is not None
