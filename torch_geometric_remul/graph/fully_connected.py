r"""Fully connected graphs: all ordered pairs of nodes within each graph."""
import numbers
from typing import Optional, Union

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from torch_geometric_remul._checks import (
    check_bool,
    check_ptr,
    check_tensor,
)
from torch_geometric_remul.batching.segment import batch_to_ptr
from torch_geometric_remul.graph._common import check_sorted_batch


def fully_connected_graph(
    batch: Union[Data, Tensor, int, None] = None,
    *,
    ptr: Optional[Tensor] = None,
    loop: bool = False,
) -> Tensor:
    r"""All ordered pairs ``(j, i)``, ``i != j``, of nodes of the same graph.

    The graphs are given by exactly one of:

    * ``batch`` as a PyG :class:`~torch_geometric.data.Batch` (its ``ptr``)
      or :class:`~torch_geometric.data.Data` (one graph of
      ``data.num_nodes`` nodes);
    * ``batch`` as a sorted graph-index vector ``[N]``;
    * ``batch`` as an ``int``: one graph of that many nodes;
    * ``ptr=``: CSR offsets ``[B + 1]`` of graphs stored contiguously.

    Edges follow the ``flow="source_to_target"`` convention of
    :func:`torch_cluster.radius_graph`: ``edge_index[0]`` is the source
    ``j``, ``edge_index[1]`` the target ``i``. Edges are sorted by target,
    then by source. A graph of ``n`` nodes gets ``n * (n - 1)`` edges
    (``n * n`` with ``loop=True``); nodes of different graphs are never
    connected.

    Args:
        batch (Data, Batch, torch.Tensor or int, optional): The graphs, as
            above.
        ptr (torch.Tensor, optional): CSR offsets, instead of ``batch``.
        loop (bool, optional): Whether to add self-loops ``i -> i``.
            (default: ``False``)

    Returns:
        torch.Tensor: ``edge_index`` of shape ``[2, E]`` (``torch.long``).

    Example:

        >>> fully_connected_graph(torch.tensor([0, 0, 1, 1, 1]))
        tensor([[1, 0, 3, 4, 2, 4, 2, 3],
                [0, 1, 2, 2, 3, 3, 4, 4]])
    """
    check_bool(loop, 'loop')
    if (batch is None) == (ptr is None):
        raise ValueError("fully_connected_graph needs exactly one of 'batch' "
                         "(a Data/Batch, a sorted graph index [num_nodes] "
                         "or a node count) and 'ptr' ([num_graphs + 1])")
    device = None
    if ptr is not None:
        check_tensor(ptr, 'ptr')
        # the edge count depends on the values anyway: always check them
        check_ptr(ptr, 'ptr', int(ptr[-1]) if ptr.numel() > 0 else 0,
                  values=True)
        ptr = ptr.long()
    elif isinstance(batch, Batch):
        ptr = batch.ptr.long()
    elif isinstance(batch, Data):
        n = batch.num_nodes
        if n is None:
            raise ValueError("cannot tell the number of nodes of 'batch' "
                             "(a Data with no node-level attribute); pass "
                             "the node count as an int")
        device = _data_device(batch)
        ptr = torch.tensor([0, n], dtype=torch.long, device=device)
    elif isinstance(batch, Tensor):
        vec = check_sorted_batch(batch, batch.numel(), batch.device)
        num_graphs = int(vec[-1]) + 1 if vec.numel() > 0 else 0
        ptr = batch_to_ptr(vec, num_graphs)
    elif isinstance(batch, numbers.Integral) and not isinstance(batch, bool):
        if batch < 0:
            raise ValueError(f"the node count 'batch' must be >= 0 "
                             f"(got {batch})")
        ptr = torch.tensor([0, int(batch)], dtype=torch.long)
    else:
        raise TypeError(f"'batch' must be a Data/Batch, a graph-index tensor "
                        f"or an int node count (got {type(batch).__name__})")
    return _from_ptr(ptr, loop)


def _data_device(data: Data) -> Optional[torch.device]:
    for value in data.values():
        if isinstance(value, Tensor):
            return value.device
    return None


def _from_ptr(ptr: Tensor, loop: bool) -> Tensor:
    device = ptr.device
    counts = ptr.diff()
    N = int(ptr[-1])
    if N == 0:
        return torch.empty(2, 0, dtype=torch.long, device=device)
    node_batch = torch.repeat_interleave(
        torch.arange(counts.numel(), device=device), counts, output_size=N)
    # every target i receives one candidate edge per node of its graph
    deg = counts[node_batch]
    E = int(deg.sum())
    target = torch.repeat_interleave(torch.arange(N, device=device), deg,
                                     output_size=E)
    start = torch.zeros_like(deg)
    start[1:] = deg.cumsum(0)[:-1]
    offset = torch.arange(E, device=device) - start[target]
    source = ptr[node_batch][target] + offset
    edge_index = torch.stack([source, target], dim=0)
    if not loop:
        edge_index = edge_index[:, source != target]
    return edge_index


__all__ = ['fully_connected_graph']
