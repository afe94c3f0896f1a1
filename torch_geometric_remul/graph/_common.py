r"""The batch and radius checks, the search driver and the native dense-block
search used by :func:`~torch_geometric_remul.graph.radius_graph` and
:func:`~torch_geometric_remul.graph.knn_graph`."""
from typing import Callable, Iterator, List, Optional, Tuple

import torch
from torch import Tensor

import torch_geometric_remul.typing as remul_typing
from torch_geometric_remul._checks import (
    check_bool,
    check_index,
    check_real,
)
from torch_geometric_remul.batching.segment import batch_to_ptr

#: Largest number of pairwise-difference elements (``graphs x queries x
#: candidates x dims``) the native search materialises at once. 2**24
#: float32 elements are 64 MiB; larger problems are processed in chunks.
BLOCK_BUDGET = 1 << 24

#: dtypes handed to torch-cluster; others take the native search.
CLUSTER_DTYPES = (torch.float32, torch.float64)

#: ``search(pos, batch) -> edge_index`` on detached positions.
Search = Callable[[Tensor, Tensor], Tensor]


def check_radius(r) -> float:
    r"""A positive finite radius (a one-element tensor is read once: it
    sets the search, not a per-step value)."""
    if isinstance(r, Tensor) and r.numel() == 1:
        r = r.item()
    return check_real(r, 'r', minimum=0, strict=True)


def check_sorted_batch(batch: Optional[Tensor], num_nodes: int,
                       device: torch.device) -> Tensor:
    r"""Returns a sorted ``[num_nodes]`` long graph index (zeros if
    ``batch`` is ``None``). Its values are always read: the graph's edges
    depend on them."""
    if batch is None:
        return torch.zeros(num_nodes, dtype=torch.long, device=device)
    check_index(batch, 'batch', num_nodes)
    if batch.device != device:
        raise ValueError(f"'batch' is on {batch.device} but 'pos' is on "
                         f"{device}")
    if num_nodes > 0:
        if int(batch.min()) < 0:
            raise ValueError("'batch' must hold non-negative graph indices")
        if num_nodes > 1 and bool((batch[1:] < batch[:-1]).any()):
            raise ValueError("'batch' must be sorted (non-decreasing), as in "
                             "a PyG Batch: nodes of a graph are contiguous")
    return batch.long()


def empty_edges(device: torch.device) -> Tensor:
    r"""An ``edge_index`` with no edges, ``[2, 0]`` (``torch.long``)."""
    return torch.empty(2, 0, dtype=torch.long, device=device)


def neighbour_search(pos: Tensor, batch: Optional[Tensor], loop: bool,
                     cap: int, cluster: Search, native: Search) -> Tensor:
    r"""The driver shared by the neighbour searches, after their own
    argument checks: checks ``loop`` and ``batch``, answers an empty
    graph, and on detached positions without autograd runs ``cluster``
    (when torch-cluster is installed, not disabled with
    :func:`~torch_geometric_remul.typing.force_native`, takes the dtype and
    the call is not traced by :func:`torch.compile`, which cannot trace
    torch-cluster's ops) or else ``native``.

    The edges of ``cluster`` are capped at ``cap`` per target: torch-cluster
    can return one more (``knn_graph`` with duplicate points, where the node
    itself may fall outside the ``k + 1`` candidates; ``radius_graph`` with
    ``loop=False``).
    """
    check_bool(loop, 'loop')
    N = pos.size(0)
    batch = check_sorted_batch(batch, N, pos.device)
    if N == 0:
        return empty_edges(pos.device)
    with torch.no_grad():
        pos = pos.detach()
        if remul_typing.WITH_TORCH_CLUSTER and pos.dtype in CLUSTER_DTYPES \
                and not torch.compiler.is_compiling():
            return cap_per_target(cluster(pos, batch), cap, N)
        return native(pos, batch)


def stack_edges(rows: List[Tensor], cols: List[Tensor],
                device: torch.device) -> Tensor:
    r"""``edge_index`` ``[2, E]`` from per-block sources ``rows`` and
    targets ``cols`` (no blocks: no edges)."""
    if not rows:
        return empty_edges(device)
    return torch.stack([torch.cat(rows), torch.cat(cols)], dim=0)


def dense_layout(batch: Tensor) -> Tuple[Tensor, Tensor, int, int]:
    r"""``(ptr, local, num_graphs, max_nodes)`` of a sorted ``batch``:
    ``local[i]`` is the index of node ``i`` inside its graph."""
    num_graphs = int(batch[-1]) + 1 if batch.numel() > 0 else 0
    ptr = batch_to_ptr(batch, num_graphs)
    counts = ptr.diff()
    max_nodes = int(counts.max()) if num_graphs > 0 else 0
    local = torch.arange(batch.numel(), device=batch.device) - ptr[batch]
    return ptr, local, num_graphs, max_nodes


def dense_blocks(pos: Tensor, batch: Tensor, loop: bool,
                 budget: Optional[int] = None
                 ) -> Iterator[Tuple[Tensor, Tensor, Tensor]]:
    r"""Yields per-graph dense blocks of squared distances.

    Each item is ``(dist2, target, source)``: ``dist2`` has shape
    ``[G, Q, M]`` for ``G`` graphs, ``Q`` target (query) slots and ``M``
    candidate source slots; ``target`` (``[G, Q]``) and ``source``
    (``[G, M]``) hold the global node index of each slot. Pairs that are
    not allowed (padding, or ``i == j`` when ``loop`` is false) are
    ``inf``. Graph chunks (and, for one huge graph, query chunks) keep each
    block under ``budget`` difference elements; blocks come in increasing
    target order. ``budget`` defaults to :data:`BLOCK_BUDGET` (read at call
    time).
    """
    budget = BLOCK_BUDGET if budget is None else budget
    N, D = pos.shape
    if N == 0:
        return
    ptr, local, B, n = dense_layout(batch)
    dense = pos.new_zeros(B, n, D)
    dense[batch, local] = pos
    index = torch.full((B, n), -1, dtype=torch.long, device=pos.device)
    index[batch, local] = torch.arange(N, device=pos.device)
    valid = index >= 0
    per_graph = n * n * D
    graphs_per_chunk = max(1, budget // max(per_graph, 1))
    queries_per_chunk = n if graphs_per_chunk > 1 else max(
        1, min(n, budget // max(n * D, 1)))
    inf = torch.tensor(float('inf'), dtype=pos.dtype, device=pos.device)
    for g0 in range(0, B, graphs_per_chunk):
        g1 = min(B, g0 + graphs_per_chunk)
        P, V, Idx = dense[g0:g1], valid[g0:g1], index[g0:g1]
        for q0 in range(0, n, queries_per_chunk):
            q1 = min(n, q0 + queries_per_chunk)
            diff = P[:, q0:q1, None, :] - P[:, None, :, :]
            dist2 = (diff * diff).sum(-1)
            allowed = V[:, q0:q1, None] & V[:, None, :]
            if not loop:
                eye = (torch.arange(q0, q1, device=pos.device)[:, None] !=
                       torch.arange(n, device=pos.device)[None, :])
                allowed = allowed & eye
            yield torch.where(allowed, dist2, inf), Idx[:, q0:q1], Idx


def cap_per_target(edge_index: Tensor, cap: int, num_nodes: int) -> Tensor:
    r"""Keeps at most ``cap`` edges per target (``edge_index[1]``), the
    first ones in the given order."""
    target = edge_index[1]
    if target.numel() == 0:
        return edge_index
    deg = torch.bincount(target, minlength=num_nodes)
    if int(deg.max()) <= cap:
        return edge_index
    perm = torch.sort(target, stable=True).indices
    sorted_target = target[perm]
    start = torch.zeros_like(deg)
    start[1:] = deg.cumsum(0)[:-1]
    rank = torch.arange(target.numel(), device=target.device) - \
        start[sorted_target]
    keep = perm[rank < cap]
    keep = torch.sort(keep).values  # preserve the given order
    return edge_index[:, keep]
