r"""An unconstrained message-passing GNN with coordinates as features."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.nn import MessagePassing

from torch_geometric_remul._checks import check_int
from torch_geometric_remul.nn.models.base import BaseModel, mlp, node_features
from torch_geometric_remul.nn.models.pair_linear import PairLinear


class GNNLayer(MessagePassing):
    r"""One residual message-passing layer
    :math:`h_i \leftarrow h_i + \phi_h(h_i, \sum_{j \to i}
    \phi_e(h_i, h_j, a_{ij}))` with sum aggregation.

    Args:
        hidden (int): Node feature width.
        edge_dim (int, optional): Width of the edge features
            :math:`a_{ij}`. (default: ``0``)

    Example:

        >>> layer = GNNLayer(8)
        >>> h = torch.randn(3, 8)
        >>> edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])
        >>> layer(h, edge_index).shape
        torch.Size([3, 8])
    """
    def __init__(self, hidden: int, edge_dim: int = 0):
        super().__init__(aggr='add')
        self.phi_e_in = PairLinear(hidden, edge_dim, hidden)
        self.phi_e = mlp(hidden, hidden, hidden, 1, act_last=True)
        self.phi_h = mlp(2 * hidden, hidden, hidden, 2)

    def forward(self, h: Tensor, edge_index: Tensor,
                edge_attr: Optional[Tensor] = None) -> Tensor:
        a, b = self.phi_e_in.node_terms(h)
        e = self.phi_e_in.edge_term(edge_attr)
        if e is None:
            e = h.new_zeros(1, 1).expand(edge_index.size(1), 1)
        m = self.propagate(edge_index, a=a, b=b, e=e)
        return h + self.phi_h(torch.cat([h, m], dim=-1))

    def message(self, a_i: Tensor, b_j: Tensor, e: Tensor) -> Tensor:
        return self.phi_e(F.silu(a_i + b_j + e))


class GNN(BaseModel):
    r"""An unconstrained message-passing network (the "GNN" baseline of
    EGNN and REMUL): positions and declared vectors are plain node input
    features, so nothing ties the output to rotations or translations.

    Node features :math:`h^0 = W [x, v_1, \dots, s]` pass through
    ``num_layers`` residual :class:`GNNLayer` blocks over ``data.edge_index``
    (with the declared edge scalars as :math:`a_{ij}`). Outputs: ``"point"``
    :math:`x + \mathrm{MLP}(h)`, ``"vector"`` :math:`\mathrm{MLP}(h)`,
    ``"scalar"`` :math:`\mathrm{MLP}(\mathrm{pool}(h))`.

    Args:
        hidden_channels (int, optional): Node feature width.
            (default: ``64``)
        num_layers (int, optional): Number of message-passing layers.
            (default: ``4``)
        **kwargs: The input/output declaration of
            :class:`~torch_geometric_remul.nn.models.base.BaseModel`.

    Example:

        >>> from torch_geometric.data import Data
        >>> from torch_geometric_remul.graph import fully_connected_graph
        >>> data = Data(pos=torch.randn(4, 3), vel=torch.randn(4, 3))
        >>> data.edge_index = fully_connected_graph(data)
        >>> GNN(vectors=('vel',), hidden_channels=16, num_layers=2)(data).shape
        torch.Size([4, 3])
    """
    def __init__(self, *, hidden_channels: int = 64, num_layers: int = 4,
                 **kwargs):
        super().__init__(**kwargs)
        self.hidden_channels = check_int(hidden_channels, 'hidden_channels',
                                         1)
        self.num_layers = check_int(num_layers, 'num_layers', 1)

    def build_layers(self) -> None:
        self.embed = torch.nn.Linear(self.node_feature_dim,
                                     self.hidden_channels)
        self.convs = torch.nn.ModuleList(
            GNNLayer(self.hidden_channels, self.edge_scalar_dim)
            for _ in range(self.num_layers))
        self.head = mlp(self.hidden_channels, self.hidden_channels,
                        self.out_channels, 2)

    def forward(self, data: Data) -> Tensor:
        r"""Returns ``[N, 3]`` (``"point"``/``"vector"``) or
        ``[B, out_dim]`` (``"scalar"``)."""
        inputs = self.read_inputs(data)
        h = self.embed(node_features(inputs))
        for conv in self.convs:
            h = conv(h, inputs.edge_index, inputs.edge_scalars)
        return self.assemble_output(h, inputs, self.head)

    def extra_repr(self) -> str:
        return (f'hidden_channels={self.hidden_channels}, '
                f'num_layers={self.num_layers}, ' +
                super().extra_repr())


__all__ = ['GNN', 'GNNLayer']
