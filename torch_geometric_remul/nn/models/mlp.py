r"""A per-graph MLP over the flattened nodes of fixed-size graphs."""
from typing import Optional

import torch
from torch import Tensor
from torch_geometric.data import Data

from torch_geometric_remul._checks import check_int
from torch_geometric_remul.debug import is_debug_enabled
from torch_geometric_remul.nn.models.base import (
    BaseModel,
    ModelInputs,
    mlp,
    node_features,
)


class MLP(BaseModel):
    r"""An unconstrained multi-layer perceptron that reads each graph as one
    flat vector, as the MLP baseline of REMUL (Elhag et al., 2024).

    Every graph must have exactly ``num_nodes`` nodes. The node features
    (position, declared vectors and scalars, as plain numbers) of a graph
    are concatenated in node order into one vector of length
    ``num_nodes * (3 + 3 * len(vectors) + scalar_dim)``; declared edge
    scalars are laid out as a dense ``num_nodes x num_nodes`` block per
    graph (zero where there is no edge) and appended. The MLP maps it to
    ``num_nodes * 3`` numbers (``"point"``: a displacement added to the
    input positions; ``"vector"``) or to ``out_dim`` graph-level numbers
    (``"scalar"``). Nothing ties the output to rotations, translations
    or node permutations.

    Args:
        num_nodes (int): The fixed number of nodes of every graph.
        hidden_channels (int, optional): Width of the hidden layers.
            (default: ``128``)
        num_layers (int, optional): Number of linear layers. (default: ``4``)
        **kwargs: The input/output declaration of
            :class:`~torch_geometric_remul.nn.models.base.BaseModel`
            (``roles`` or ``output``/``points``/``vectors``, ``scalars``,
            ``edge_scalars``, their widths, ``out_dim``, ``pool``).

    Example:

        >>> from torch_geometric.data import Batch, Data
        >>> graphs = [Data(pos=torch.randn(4, 3), vel=torch.randn(4, 3))
        ...           for _ in range(2)]
        >>> model = MLP(num_nodes=4, vectors=('vel',), hidden_channels=16)
        >>> model(Batch.from_data_list(graphs)).shape
        torch.Size([8, 3])
    """
    requires_edges = False

    def __init__(self, num_nodes: Optional[int] = None, *,
                 hidden_channels: int = 128,
                 num_layers: int = 4, **kwargs):
        super().__init__(**kwargs)
        if num_nodes is None:
            raise ValueError("MLP needs 'num_nodes', the fixed number of "
                             "nodes of every graph (e.g. num_nodes=5 for "
                             "5-body systems)")
        self.num_nodes = check_int(num_nodes, 'num_nodes', 1)
        self.hidden_channels = check_int(hidden_channels, 'hidden_channels',
                                         1)
        self.num_layers = check_int(num_layers, 'num_layers', 1)

    def build_layers(self) -> None:
        n = self.num_nodes
        in_dim = n * self.node_feature_dim + n * n * self.edge_scalar_dim
        out = self.out_dim if self.output == 'scalar' else n * 3
        self.net = mlp(in_dim, self.hidden_channels, out, self.num_layers)

    def forward(self, data: Data) -> Tensor:
        r"""Returns ``[N, 3]`` (``"point"``/``"vector"``) or
        ``[B, out_dim]`` (``"scalar"``)."""
        inputs = self.read_inputs(data)
        B, n = inputs.num_graphs, self.num_nodes
        N = inputs.pos.size(0)
        if N != B * n:  # a shape: free
            raise ValueError(
                f"MLP(num_nodes={n}) flattens graphs of exactly {n} nodes, "
                f"but the batch has {N} nodes in {B} graph(s); use a GNN, "
                f"Transformer, EGNN or SEGNN for graphs of varying size")
        counts = inputs.ptr.diff()
        # equal totals can still hide unequal graphs: reading the sizes is a
        # host-device synchronisation, so it is checked in debug mode
        if is_debug_enabled() and bool((counts != n).any()):
            bad = (counts != n).nonzero().flatten()
            first = int(bad[0])
            raise ValueError(
                f"MLP(num_nodes={n}) flattens graphs of exactly {n} nodes, "
                f"but {bad.numel()} graph(s) of the batch differ (graph "
                f"{first} has {int(counts[first])} nodes); use a GNN, "
                f"Transformer, EGNN or SEGNN for graphs of varying size")
        x = node_features(inputs).reshape(B, n * self.node_feature_dim)
        if self.edge_scalar_dim > 0:
            x = torch.cat([x, self._dense_edges(inputs)], dim=-1)
        y = self.net(x)
        if self.output == 'scalar':
            return y  # one row per graph already: nothing to pool
        return self.assemble_output(y.reshape(B * n, 3), inputs)

    def _dense_edges(self, inputs: ModelInputs) -> Tensor:
        B, n, F = inputs.num_graphs, self.num_nodes, self.edge_scalar_dim
        src, dst = inputs.edge_index
        graph = dst // n
        flat = (graph * n + dst % n) * n + src % n  # [target, source] slot
        dense = inputs.edge_scalars.new_zeros(B * n * n, F)
        dense = dense.index_add(0, flat, inputs.edge_scalars)
        return dense.reshape(B, n * n * F)

    def extra_repr(self) -> str:
        return (f'num_nodes={self.num_nodes}, '
                f'hidden_channels={self.hidden_channels}, '
                f'num_layers={self.num_layers}, ' + super().extra_repr())


__all__ = ['MLP']
