r"""k-nearest-neighbour graphs, per graph of a batch."""
from typing import List, Optional

import torch
from torch import Tensor

import torch_geometric_remul.typing as remul_typing
from torch_geometric_remul._checks import check_int, check_positions
from torch_geometric_remul.graph._common import (
    dense_blocks,
    neighbour_search,
    stack_edges,
)


def knn_graph(pos: Tensor, k: int, batch: Optional[Tensor] = None,
              loop: bool = False) -> Tensor:
    r"""Connects every node to its ``k`` nearest nodes of the same graph.

    Edges follow PyG's ``flow="source_to_target"`` convention of
    :func:`torch_cluster.knn_graph`: ``edge_index[0]`` holds the source
    (neighbour) ``j`` and ``edge_index[1]`` the target ``i`` whose
    neighbours were searched; every target receives ``min(k, n - 1)``
    edges in a graph of ``n`` nodes (``min(k, n)`` with ``loop=True``,
    the node itself counting as its nearest neighbour). Nodes of different
    graphs are never connected. Edges come grouped by increasing target.

    Uses ``torch_cluster.knn_graph`` when torch-cluster is installed (and
    not disabled with :func:`~torch_geometric_remul.typing.force_native`),
    otherwise a vectorised native search over dense per-graph distance
    blocks. Both return the same edges when distances are distinct; with
    ties at the ``k``-th distance the native path keeps the lower source
    index.

    Args:
        pos (torch.Tensor): Node positions ``[N, D]`` (floating point).
        k (int): Number of neighbours per node.
        batch (torch.Tensor, optional): Sorted graph index of each node
            ``[N]``, as in a PyG ``Batch``. (default: one graph)
        loop (bool, optional): Whether a node may be its own neighbour.
            (default: ``False``)

    Returns:
        torch.Tensor: ``edge_index`` of shape ``[2, E]`` (``torch.long``).

    Example:

        >>> pos = torch.tensor([[0.0, 0], [1.0, 0], [3.0, 0]])
        >>> knn_graph(pos, k=1)
        tensor([[1, 0, 1],
                [0, 1, 2]])
    """
    check_positions(pos)
    k = check_int(k, 'k', minimum=1)
    return neighbour_search(
        pos, batch, loop, k,
        cluster=lambda pos, batch: remul_typing.torch_cluster.knn_graph(
            pos, k, batch=batch, loop=loop, flow='source_to_target'),
        native=lambda pos, batch: _knn_native(pos, k, batch, loop))


def _knn_native(pos: Tensor, k: int, batch: Tensor, loop: bool) -> Tensor:
    rows: List[Tensor] = []
    cols: List[Tensor] = []
    for dist2, target, source in dense_blocks(pos, batch, loop):
        kk = min(k, dist2.size(-1))
        # stable: among equal distances the lower source index comes first
        value, order = torch.sort(dist2, dim=-1, stable=True)
        value, order = value[..., :kk], order[..., :kk]
        g, q, c = torch.isfinite(value).nonzero(as_tuple=True)
        rows.append(source[g, order[g, q, c]])
        cols.append(target[g, q])
    return stack_edges(rows, cols, pos.device)


__all__ = ['knn_graph']
