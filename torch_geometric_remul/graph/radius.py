r"""Radius graphs: every pair of nodes of the same graph closer than ``r``."""
from typing import List, Optional

import torch
from torch import Tensor

import torch_geometric_remul.typing as remul_typing
from torch_geometric_remul._checks import check_int, check_positions
from torch_geometric_remul.graph._common import (
    check_radius,
    dense_blocks,
    neighbour_search,
    stack_edges,
)


def radius_graph(pos: Tensor, r: float, batch: Optional[Tensor] = None,
                 loop: bool = False, max_num_neighbors: int = 32) -> Tensor:
    r"""Connects every pair of nodes of the same graph whose distance is
    strictly smaller than ``r``.

    Edges follow PyG's ``flow="source_to_target"`` convention of
    :func:`torch_cluster.radius_graph`: ``edge_index[0]`` holds the source
    (neighbour) ``j`` and ``edge_index[1]`` the target ``i`` whose
    neighbourhood is searched, so a message ``j -> i`` is aggregated at
    ``i``. Nodes of different graphs are never connected. Edges come
    grouped by increasing target; the order inside a group is unspecified.

    Uses ``torch_cluster.radius_graph`` when torch-cluster is installed
    (and not disabled with :func:`~torch_geometric_remul.typing.force_native`),
    otherwise a vectorised native search over dense per-graph distance
    blocks (chunked to bound memory). Both return the same edge set
    whenever no node has more than ``max_num_neighbors`` neighbours within
    ``r``. The arguments come in the order of
    :func:`torch_cluster.radius_graph` (``pos, r, batch, loop,
    max_num_neighbors``), so positional calls mean the same on both.

    If a target has more neighbours, at most ``max_num_neighbors`` are
    kept on both paths; *which* ones depends on the path: the native path
    keeps the ``max_num_neighbors`` nearest (ties go to the lower source
    index), torch-cluster keeps the first ones in its search order (not
    by distance). (Unlike plain ``torch_cluster.radius_graph``, which can
    return ``max_num_neighbors + 1`` neighbours when ``loop=False``, the
    cap is enforced here.)

    Args:
        pos (torch.Tensor): Node positions ``[N, D]`` (floating point).
        r (float): The cut-off radius (exclusive).
        batch (torch.Tensor, optional): Sorted graph index of each node
            ``[N]``, as in a PyG ``Batch``. (default: one graph)
        loop (bool, optional): Whether to include self-loops ``i -> i``.
            (default: ``False``)
        max_num_neighbors (int, optional): Maximum number of neighbours
            (sources) per target. (default: ``32``)

    Returns:
        torch.Tensor: ``edge_index`` of shape ``[2, E]`` (``torch.long``).

    Example:

        >>> pos = torch.tensor([[0.0, 0, 0], [0.5, 0, 0], [3.0, 0, 0],
        ...                     [0.0, 0, 0], [0.2, 0, 0]])
        >>> batch = torch.tensor([0, 0, 0, 1, 1])
        >>> radius_graph(pos, r=1.0, batch=batch)
        tensor([[1, 0, 4, 3],
                [0, 1, 3, 4]])
    """
    check_positions(pos)
    r = check_radius(r)
    max_num_neighbors = check_int(max_num_neighbors, 'max_num_neighbors',
                                  minimum=1)
    return neighbour_search(
        pos, batch, loop, max_num_neighbors,
        cluster=lambda pos, batch: remul_typing.torch_cluster.radius_graph(
            pos, r, batch=batch, loop=loop,
            max_num_neighbors=max_num_neighbors, flow='source_to_target'),
        native=lambda pos, batch: _radius_native(pos, r, batch,
                                                 max_num_neighbors, loop))


def _radius_native(pos: Tensor, r: float, batch: Tensor,
                   max_num_neighbors: int, loop: bool) -> Tensor:
    r2 = r * r
    rows: List[Tensor] = []
    cols: List[Tensor] = []
    for dist2, target, source in dense_blocks(pos, batch, loop):
        M = dist2.size(-1)
        inside = dist2 < r2
        if max_num_neighbors < M and bool(
                (inside.sum(-1) > max_num_neighbors).any()):
            # keep the nearest: a stable sort puts lower indices first
            # among equal distances
            order = torch.sort(dist2, dim=-1, stable=True).indices
            order = order[..., :max_num_neighbors]
            inside = torch.zeros_like(inside).scatter_(
                -1, order, inside.gather(-1, order))
        g, q, m = inside.nonzero(as_tuple=True)
        rows.append(source[g, m])
        cols.append(target[g, q])
    return stack_edges(rows, cols, pos.device)


__all__ = ['radius_graph']
