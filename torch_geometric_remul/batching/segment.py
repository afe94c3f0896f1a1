r"""Per-graph (segment) reductions over the rows of a batch.

Graphs of a :class:`torch_geometric.data.Batch` occupy contiguous row
ranges described either by ``batch`` (graph index of each row) or by
``ptr`` (CSR offsets, ``[num_graphs + 1]``). The helpers here use
``torch_scatter.segment_csr``/``gather_csr`` when torch-scatter is installed
and native PyTorch otherwise (see
:func:`torch_geometric_remul.typing.force_native`), and always inside
:func:`torch.compile` (Dynamo cannot trace torch-scatter's ops);
both paths agree to floating-point rounding.

None of them reads a tensor value on the host (no host-device
synchronisation) when the sizes are given: pass ``ptr`` (or ``batch`` with
``num_graphs``) and, for :func:`broadcast_to_rows`, ``num_rows``. Only when
``num_graphs``/``num_rows`` are omitted are they read from the index.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

import torch_geometric_remul.typing as remul_typing
from torch_geometric_remul._checks import check_index, check_ptr, check_tensor


def ptr_to_batch(ptr: Tensor, num_rows: Optional[int] = None) -> Tensor:
    r"""Converts CSR offsets ``ptr`` into a per-row graph index.

    Example:

        >>> ptr_to_batch(torch.tensor([0, 2, 2, 5]))  # graph 1 is empty
        tensor([0, 0, 2, 2, 2])
    """
    counts = ptr.diff()
    return torch.repeat_interleave(
        torch.arange(counts.numel(), device=ptr.device), counts,
        output_size=num_rows)


def batch_to_ptr(batch: Tensor, num_graphs: Optional[int] = None) -> Tensor:
    r"""Converts a **sorted** per-row graph index into CSR offsets. With
    ``num_graphs`` given it reads no value on the host; without it, the
    number of graphs is read from ``batch.max()``.

    Example:

        >>> batch_to_ptr(torch.tensor([0, 0, 2, 2, 2]))
        tensor([0, 2, 2, 5])
    """
    counts = segment_counts(batch, num_graphs)
    ptr = counts.new_zeros(counts.numel() + 1)
    torch.cumsum(counts, 0, out=ptr[1:])
    return ptr


def segment_counts(batch: Tensor, num_graphs: Optional[int] = None) -> Tensor:
    r"""Number of rows of each graph, ``[B]`` (``torch.long``), from a
    per-row graph index, without a host-device synchronisation when
    ``num_graphs`` is given (unlike :func:`torch.bincount`).

    Example:

        >>> segment_counts(torch.tensor([0, 0, 2]), num_graphs=4)
        tensor([2, 0, 1, 0])
    """
    if num_graphs is None:
        num_graphs = int(batch.max()) + 1 if batch.numel() > 0 else 0
    batch = batch.long()
    return torch.zeros(num_graphs, dtype=torch.long,
                       device=batch.device).index_add_(
                           0, batch, torch.ones_like(batch))


def _scatter_ok(x: Tensor) -> bool:
    """Whether to call torch-scatter (installed, enabled, a real device: its
    kernels have no meta-tensor implementation, and not inside
    :func:`torch.compile`: its ops have no fake-tensor implementation, so
    Dynamo cannot trace them; torch's own ``index_add``/``repeat_interleave``
    path below is traced instead, as PyG's ``torch_geometric.utils.scatter``
    does)."""
    return (remul_typing.WITH_TORCH_SCATTER and x.device.type != 'meta'
            and not torch.compiler.is_compiling())


def _resolve(x: Tensor, batch: Optional[Tensor], ptr: Optional[Tensor],
             num_graphs: Optional[int]) -> Tuple[Optional[Tensor],
                                                 Optional[Tensor], int]:
    check_tensor(x, 'x')
    if x.dim() < 1:
        raise ValueError(f"'x' must have at least one dimension (rows), got "
                         f"shape {list(x.shape)}")
    if ptr is not None:
        check_ptr(ptr, 'ptr', x.size(0), num_graphs)
        return None, ptr, ptr.numel() - 1
    if batch is None:
        raise ValueError("one of 'batch' or 'ptr' is required to tell which "
                         "rows belong to which graph")
    if num_graphs is None:
        num_graphs = int(batch.max()) + 1 if batch.numel() > 0 else 0
    check_index(batch, 'batch', x.size(0), num_graphs)
    return batch, None, num_graphs


def segment_sum(x: Tensor, batch: Optional[Tensor] = None,
                ptr: Optional[Tensor] = None,
                num_graphs: Optional[int] = None) -> Tensor:
    r"""Sums the rows of ``x`` per graph: ``[num_rows, *] -> [B, *]``.

    Args:
        x (torch.Tensor): Row features.
        batch (torch.Tensor, optional): Graph index of each row.
        ptr (torch.Tensor, optional): CSR offsets (preferred when rows are
            sorted by graph, as in a PyG ``Batch``).
        num_graphs (int, optional): Number of graphs ``B``.

    Example:

        >>> x = torch.tensor([[1.0], [2.0], [3.0]])
        >>> segment_sum(x, batch=torch.tensor([0, 0, 1]))
        tensor([[3.],
                [3.]])
    """
    return _reduce(x, batch, ptr, num_graphs, 'sum')


def segment_mean(x: Tensor, batch: Optional[Tensor] = None,
                 ptr: Optional[Tensor] = None,
                 num_graphs: Optional[int] = None) -> Tensor:
    r"""Averages the rows of ``x`` per graph: ``[num_rows, *] -> [B, *]``.
    Graphs without rows get zeros.

    Args:
        x (torch.Tensor): Row features.
        batch (torch.Tensor, optional): Graph index of each row.
        ptr (torch.Tensor, optional): CSR offsets (preferred when rows are
            sorted by graph, as in a PyG ``Batch``).
        num_graphs (int, optional): Number of graphs ``B``.

    Example:

        >>> x = torch.tensor([[1.0], [3.0], [10.0]])
        >>> segment_mean(x, ptr=torch.tensor([0, 2, 3]))
        tensor([[ 2.],
                [10.]])
    """
    return _reduce(x, batch, ptr, num_graphs, 'mean')


def _reduce(x: Tensor, batch: Optional[Tensor], ptr: Optional[Tensor],
            num_graphs: Optional[int], reduce: str) -> Tensor:
    batch, ptr, B = _resolve(x, batch, ptr, num_graphs)
    rest = x.shape[1:]
    if ptr is not None:
        if _scatter_ok(x):
            return remul_typing.torch_scatter.segment_csr(
                x, ptr.long(), reduce=reduce)
        count = ptr.diff()
        batch = ptr_to_batch(ptr, x.size(0))
    elif _scatter_ok(x):
        return remul_typing.torch_scatter.scatter(x, batch.long(), dim=0,
                                                  dim_size=B, reduce=reduce)
    else:
        count = segment_counts(batch, B)
    out = x.new_zeros((B, *rest)).index_add_(0, batch.long(), x)
    if reduce == 'mean':
        count = count.clamp(min=1)
        out = out / count.view(-1, *([1] * len(rest))).to(x.dtype)
    return out


def broadcast_to_rows(values: Tensor, batch: Optional[Tensor] = None,
                      ptr: Optional[Tensor] = None,
                      num_rows: Optional[int] = None) -> Tensor:
    r"""Repeats per-graph ``values`` (``[B, *]``) for every row of its
    graph (``[num_rows, *]``), the inverse shape of :func:`segment_sum`.

    Example:

        >>> values = torch.tensor([[1.0], [2.0]])
        >>> broadcast_to_rows(values, ptr=torch.tensor([0, 1, 3]))
        tensor([[1.],
                [2.],
                [2.]])
    """
    if ptr is not None:
        num_rows = int(ptr[-1]) if num_rows is None else num_rows
        check_ptr(ptr, 'ptr', num_rows, values.size(0))
        if _scatter_ok(values):
            return remul_typing.torch_scatter.gather_csr(values, ptr.long())
        return torch.repeat_interleave(values, ptr.diff(), dim=0,
                                       output_size=num_rows)
    if batch is None:
        raise ValueError("one of 'batch' or 'ptr' is required")
    check_index(batch, 'batch', batch.numel(), values.size(0))
    return values.index_select(0, batch.long())


def center(x: Tensor, batch: Optional[Tensor] = None,
           ptr: Optional[Tensor] = None,
           num_graphs: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    r"""Subtracts each graph's own centroid from its rows.

    Returns ``(x - centroid[graph], centroid)`` with ``centroid`` of shape
    ``[B, *]``. Unlike :class:`torch_geometric.transforms.Center` on a
    ``Batch``, every graph is centred on its own mean.

    Args:
        x (torch.Tensor): Row features, usually positions ``[N, 3]``.
        batch (torch.Tensor, optional): Graph index of each row.
        ptr (torch.Tensor, optional): CSR offsets.
        num_graphs (int, optional): Number of graphs ``B``.

    Example:

        >>> x = torch.tensor([[0.0, 0, 0], [2, 0, 0], [5, 5, 5]])
        >>> centred, mean = center(x, ptr=torch.tensor([0, 2, 3]))
        >>> centred
        tensor([[-1.,  0.,  0.],
                [ 1.,  0.,  0.],
                [ 0.,  0.,  0.]])
    """
    mean = segment_mean(x, batch, ptr, num_graphs)
    return x - broadcast_to_rows(mean, batch, ptr, x.size(0)), mean


__all__ = [
    'ptr_to_batch',
    'batch_to_ptr',
    'segment_counts',
    'segment_sum',
    'segment_mean',
    'broadcast_to_rows',
    'center',
]
