r"""A linear map of concatenated node-pair features, computed per node."""
from typing import Optional, Tuple

import torch
from torch import Tensor


class PairLinear(torch.nn.Module):
    r"""The linear map :math:`W [h_i, h_j, e_{ij}] + b` of an edge
    ``j -> i``, evaluated as :math:`(W_i h)_i + (W_j h)_j + W_e e_{ij} + b`.

    The node terms cost one matmul per *node* and a gather, instead of one
    matmul over a concatenated ``[E, 2 * node_dim + edge_dim]`` input: for
    ``E / N`` neighbours per node, the first layer of an edge MLP becomes
    about ``E / N`` times cheaper, with the same function class.

    Args:
        node_dim (int): Width of :math:`h`.
        edge_dim (int): Width of :math:`e_{ij}` (may be ``0``).
        out_dim (int): Output width.

    Example:

        >>> lin = PairLinear(4, 1, 8)
        >>> h = torch.randn(3, 4)
        >>> edge_index = torch.tensor([[0, 1], [1, 2]])
        >>> lin(h, edge_index, torch.randn(2, 1)).shape
        torch.Size([2, 8])
    """
    def __init__(self, node_dim: int, edge_dim: int, out_dim: int):
        super().__init__()
        self.lin_i = torch.nn.Linear(node_dim, out_dim)
        self.lin_j = torch.nn.Linear(node_dim, out_dim, bias=False)
        self.lin_e = (torch.nn.Linear(edge_dim, out_dim, bias=False)
                      if edge_dim > 0 else None)

    def node_terms(self, h: Tensor) -> Tuple[Tensor, Tensor]:
        r"""``(W_i h + b, W_j h)``, one row per node."""
        return self.lin_i(h), self.lin_j(h)

    def edge_term(self, edge_attr: Optional[Tensor]) -> Optional[Tensor]:
        r""":math:`W_e e_{ij}` (``None`` without edge features)."""
        if self.lin_e is None:
            return None
        return self.lin_e(edge_attr)

    def forward(self, h: Tensor, edge_index: Tensor,
                edge_attr: Optional[Tensor] = None) -> Tensor:
        src, dst = edge_index
        a, b = self.node_terms(h)
        out = a.index_select(0, dst) + b.index_select(0, src)
        e = self.edge_term(edge_attr)
        return out if e is None else out + e

    def as_dense(self) -> Tuple[Tensor, Tensor]:
        r"""The equivalent ``(weight, bias)`` of one linear layer on
        ``[h_i, h_j, e_ij]``."""
        parts = [self.lin_i.weight, self.lin_j.weight]
        if self.lin_e is not None:
            parts.append(self.lin_e.weight)
        return torch.cat(parts, dim=1), self.lin_i.bias


__all__ = ['PairLinear']
