r"""E(n)-equivariant graph neural network (Satorras, Hoogeboom and Welling,
"E(n) Equivariant Graph Neural Networks", ICML 2021)."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from torch_geometric_remul._checks import check_int
from torch_geometric_remul.nn.models.base import BaseModel, inverse_degree, mlp
from torch_geometric_remul.nn.models.pair_linear import PairLinear


class EGNNLayer(torch.nn.Module):
    r"""One E(n)-equivariant layer (equations 3-6 of Satorras et al., with
    the velocity variant of their equation 7):

    .. math::
        m_{ij} &= \phi_e(h_i, h_j, \|x_i - x_j\|^2, a_{ij}) \\
        v_i' &= \sum_k \phi_v^k(h_i)\, v_{i,k} +
                C \sum_{j \to i} (x_i - x_j)\, \phi_x(m_{ij}) \\
        x_i' &= x_i + v_i' \\
        h_i' &= h_i + \phi_h\Big(h_i, \sum_{j \to i} m_{ij}\Big)

    with :math:`C = 1 / |\mathcal{N}(i)|` (mean over incoming edges) and
    :math:`v_{i,k}` the declared input vectors (velocities); without
    vectors the first term of :math:`v_i'` is absent. Distances and
    :math:`h` are invariant, every vector term is a difference of
    positions or an input vector times an invariant, so the layer is
    E(3)-equivariant per connected component.

    Args:
        hidden (int): Width of :math:`h` and :math:`m`.
        edge_dim (int, optional): Width of the edge scalars
            :math:`a_{ij}`. (default: ``0``)
        num_vectors (int, optional): Number of input vectors
            :math:`v_{i,k}`. (default: ``0``)
        update_features (bool, optional): Whether to compute :math:`h'`;
            the last layer of a model that only reads positions skips it
            and returns :math:`h` unchanged. (default: ``True``)

    Example:

        >>> layer = EGNNLayer(8)
        >>> h, x = torch.randn(3, 8), torch.randn(3, 3)
        >>> edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])
        >>> h, x = layer(h, x, edge_index)
        >>> h.shape, x.shape
        (torch.Size([3, 8]), torch.Size([3, 3]))
    """
    def __init__(self, hidden: int, edge_dim: int = 0, num_vectors: int = 0,
                 update_features: bool = True):
        super().__init__()
        self.num_vectors = num_vectors
        # phi_e = SiLU . Linear . SiLU . PairLinear (first layer per node)
        self.phi_e_in = PairLinear(hidden, 1 + edge_dim, hidden)
        self.phi_e = mlp(hidden, hidden, hidden, 1, act_last=True)
        self.phi_x = mlp(hidden, hidden, 1, 2)
        # start with small coordinate updates (a choice for stability)
        with torch.no_grad():
            self.phi_x[-1].weight.mul_(1e-2)
            self.phi_x[-1].bias.zero_()
        self.phi_h = (mlp(2 * hidden, hidden, hidden, 2)
                      if update_features else None)
        self.phi_v = (mlp(hidden, hidden, num_vectors, 2)
                      if num_vectors > 0 else None)

    def forward(self, h: Tensor, x: Tensor, edge_index: Tensor,
                edge_attr: Optional[Tensor] = None,
                vectors: Optional[Tensor] = None,
                inv_deg: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        r"""Args:
            h (torch.Tensor): Invariant node features ``[N, hidden]``.
            x (torch.Tensor): Positions ``[N, 3]``.
            edge_index (torch.Tensor): ``[2, E]``, source ``j`` then
                target ``i``.
            edge_attr (torch.Tensor, optional): ``[E, edge_dim]``.
            vectors (torch.Tensor, optional): ``[N, num_vectors, 3]``.
            inv_deg (torch.Tensor, optional): ``1 / max(deg_i, 1)``
                ``[N, 1]`` (computed if omitted).

        Returns:
            ``(h', x')``.
        """
        N = h.size(0)
        src, dst = edge_index
        if edge_attr is None:
            edge_attr = h.new_zeros(src.numel(), 0)
        if inv_deg is None:
            inv_deg = inverse_degree(dst, N, h)
        rel = x.index_select(0, dst) - x.index_select(0, src)  # x_i - x_j
        dist2 = (rel * rel).sum(-1, keepdim=True)
        m = self.phi_e(F.silu(self.phi_e_in(
            h, edge_index, torch.cat([dist2, edge_attr], dim=-1))))
        shift = x.new_zeros(N, 3).index_add(0, dst, rel * self.phi_x(m))
        velocity = shift * inv_deg
        if self.num_vectors > 0:
            if vectors is None or vectors.size(1) != self.num_vectors:
                raise ValueError(f"EGNNLayer was built for "
                                 f"{self.num_vectors} input vector(s) "
                                 f"'vectors' [N, {self.num_vectors}, 3]")
            scale = self.phi_v(h).unsqueeze(-1)  # [N, V, 1]
            velocity = velocity + (scale * vectors).sum(1)
        if self.phi_h is not None:
            agg = h.new_zeros(N, m.size(1)).index_add(0, dst, m)
            h = h + self.phi_h(torch.cat([h, agg], dim=-1))
        return h, x + velocity


class EGNN(BaseModel):
    r"""The E(n)-equivariant GNN of Satorras et al. (2021), exactly
    equivariant to rotations, reflections and translations of each graph,
    with the velocity variant used on N-body systems.

    Invariant node features are embedded from the declared scalars and the
    norms :math:`\|v_k\|` of the declared vectors (a learned constant if
    there are none); positions are updated by ``num_layers``
    :class:`EGNNLayer` blocks over ``data.edge_index``, in which the
    declared vectors enter as :math:`\phi_v(h)\, v` and the declared edge
    scalars (e.g. :math:`q_i q_j`) as :math:`a_{ij}`. Outputs:
    ``"point"`` the final positions :math:`x^L` (input position plus the
    accumulated displacement), ``"vector"`` the displacement
    :math:`x^L - x^0`, ``"scalar"`` :math:`\mathrm{MLP}(\mathrm{pool}
    (h^L))` (invariant).

    The defaults (``hidden_channels=64``, ``num_layers=4``) are those of the
    EGNN N-body experiment.

    EGNN's vector outputs are polar (built from position differences and
    the input vectors), so it offers no ``"pseudovector"`` output.

    Args:
        hidden_channels (int, optional): Feature width. (default: ``64``)
        num_layers (int, optional): Number of layers. (default: ``4``)
        **kwargs: The input/output declaration of
            :class:`~torch_geometric_remul.nn.models.base.BaseModel`.

    Example:

        >>> from torch_geometric.data import Data
        >>> from torch_geometric_remul.graph import fully_connected_graph
        >>> data = Data(pos=torch.randn(5, 3), vel=torch.randn(5, 3),
        ...             charge=torch.randn(5, 1))
        >>> data.edge_index = fully_connected_graph(data)
        >>> model = EGNN(vectors='vel', scalars='charge', hidden_channels=16,
        ...              num_layers=2)
        >>> model(data).shape
        torch.Size([5, 3])
    """
    supported_outputs = ('point', 'vector', 'scalar')

    def __init__(self, *, hidden_channels: int = 64, num_layers: int = 4,
                 **kwargs):
        super().__init__(**kwargs)
        self.hidden_channels = check_int(hidden_channels, 'hidden_channels',
                                         1)
        self.num_layers = check_int(num_layers, 'num_layers', 1)

    def build_layers(self) -> None:
        in_dim = self.scalar_dim + self.num_vectors
        if in_dim > 0:
            self.embed = torch.nn.Linear(in_dim, self.hidden_channels)
            self.h0 = None
        else:
            self.embed = None
            self.h0 = torch.nn.Parameter(torch.randn(self.hidden_channels))
        # point/vector outputs read positions only: the last feature
        # update would be unused
        self.convs = torch.nn.ModuleList(
            EGNNLayer(self.hidden_channels, self.edge_scalar_dim,
                      self.num_vectors,
                      update_features=(i < self.num_layers - 1
                                       or self.output == 'scalar'))
            for i in range(self.num_layers))
        self.head = (mlp(self.hidden_channels, self.hidden_channels,
                         self.out_dim, 2)
                     if self.output == 'scalar' else None)

    def _unsupported_output_hint(self) -> str:
        return ("; EGNN's vector outputs are polar vectors: use SEGNN or an "
                "unconstrained backbone for a pseudovector output")

    def forward(self, data: Data) -> Tensor:
        r"""Returns ``[N, 3]`` (``"point"``/``"vector"``) or
        ``[B, out_dim]`` (``"scalar"``)."""
        inputs = self.read_inputs(data)
        pos, vectors = inputs.pos, inputs.vectors
        N = pos.size(0)
        if self.embed is not None:
            norms = vectors.norm(dim=-1)  # [N, V], invariant
            h = self.embed(torch.cat([inputs.scalars, norms], dim=-1))
        else:
            h = self.h0.expand(N, -1)
        inv_deg = inverse_degree(inputs.edge_index[1], N, pos)
        x = pos
        for conv in self.convs:
            h, x = conv(h, x, inputs.edge_index, inputs.edge_scalars,
                        vectors, inv_deg)
        if self.output == 'scalar':
            return self.assemble_output(h, inputs, self.head)
        return x if self.output == 'point' else x - pos

    def extra_repr(self) -> str:
        return (f'hidden_channels={self.hidden_channels}, '
                f'num_layers={self.num_layers}, ' +
                super().extra_repr())


__all__ = ['EGNN', 'EGNNLayer']
