"""Concatenating copies of one ``Batch`` that differ only in the values of a
few attributes, so that a model sees them in one forward pass."""
from typing import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from torch_geometric_remul._copy import shallow_copy
from torch_geometric_remul.batching import _collation as collation
from torch_geometric_remul.batching.layout import num_nodes
from torch_geometric_remul.batching.segment import batch_to_ptr, ptr_to_batch


def _stack_offsets(ptr: Tensor, K: int, total) -> Tensor:
    """CSR offsets of ``K`` copies of the segments of ``ptr`` whose rows
    number ``total`` per copy (an ``int`` or a 1-element tensor), by
    arithmetic only (no value is read)."""
    parts = [ptr[:-1] + k * total for k in range(K)]
    parts.append(ptr[-1:] + (K - 1) * total)
    return torch.cat(parts)


def _increment(data: Data, key: str, value, num_nodes):
    """``data.__inc__(key, value)``; PyG's own rule (an ``index`` attribute
    or ``face`` is offset by the node count) applied with the node count
    already known: Dynamo resolves ``data.num_nodes`` inside ``__inc__`` to
    an unresolved attribute, and the copies would not be offset."""
    if type(data).__inc__ is Data.__inc__ and 'batch' not in key:
        return num_nodes if 'index' in key or key == 'face' else 0
    return data.__inc__(key, value)


def concat_copies(batches: Sequence[Data]) -> Batch:
    r"""Stacks ``K`` batches with identical structure (same graphs, edges and
    attribute shapes; values may differ) into one ``Batch`` of ``K * B``
    graphs: copy ``k`` owns graphs ``k * B ... (k + 1) * B - 1`` and rows
    ``k * N ... (k + 1) * N - 1`` of every node-level attribute. Edge
    indices are offset like ``Batch.from_data_list`` would.

    ``batch``, ``ptr`` and the collation metadata (``_slice_dict``, so that
    :func:`torch_geometric_remul.layout.row_layout` works on the result) are
    built by arithmetic on those of the first copy: no tensor value is read
    (no host-device synchronisation), and the result equals
    ``Batch.from_data_list`` of all the copies' graphs, ``to_data_list()``
    included. Going through that public collation instead separates and
    re-collates every graph in Python: 30-35x slower in three runs for
    2 x 100 graphs of 5 nodes (15-30 ms, longer than the GNN's whole
    training step; ``benchmarks/fused_batch.py``).

    The result is a shallow copy of the first ``Batch`` (same class) holding
    the stacked values, so :func:`torch.compile` traces it with no graph
    break; copies of a single ``Data`` are stacked eagerly (a graph break
    inside a compiled region: Dynamo cannot trace the ``Batch``
    constructor).

    Example:

        >>> from torch_geometric.data import Batch, Data
        >>> batch = Batch.from_data_list([Data(pos=torch.zeros(n, 3))
        ...                               for n in (2, 3)])
        >>> moved = batch.clone()
        >>> moved.pos = moved.pos + 1
        >>> fused = concat_copies([batch, moved])
        >>> fused.num_graphs, fused.ptr.tolist()
        (4, [0, 2, 5, 7, 10])
        >>> len(fused.to_data_list())
        4
    """
    if not isinstance(batches[0], Batch):
        # copies of a single Data: eager (Dynamo resolves a Data's
        # num_nodes to the property itself, and cannot trace the Batch
        # constructor)
        return _concat_data_copies(batches)
    return _concat(batches)


def _concat(batches: Sequence[Data]) -> Batch:
    """:func:`concat_copies` (traced for copies of a ``Batch``)."""
    first = batches[0]
    K = len(batches)
    N = num_nodes(first)
    if isinstance(first, Batch):
        B = first.num_graphs
        batch_vec = first.batch if 'batch' in first else None
        ptr = first.ptr if 'ptr' in first else None
    else:
        B, batch_vec, ptr = 1, None, None
    out = {}
    for key in first.keys():
        if key in ('batch', 'ptr'):
            continue
        value = first[key]
        if not isinstance(value, torch.Tensor):
            out[key] = value
            continue
        dim = first.__cat_dim__(key, value)
        inc = _increment(first, key, value, N)
        parts = []
        for k, b in enumerate(batches):
            part = b[key]
            if isinstance(inc, (torch.Tensor, torch.SymInt)) or (
                    isinstance(inc, int) and inc != 0):
                part = part + k * inc
            parts.append(part)
        if dim is None:  # stacked, e.g. graph-level tensors without cat dim
            out[key] = torch.stack(parts, 0)
        else:
            out[key] = torch.cat(parts, dim=dim)
    device = first[first.keys()[0]].device if first.keys() else None
    if batch_vec is None:
        if ptr is not None:
            batch_vec = ptr_to_batch(ptr, N)
        else:
            batch_vec = torch.zeros(N, dtype=torch.long, device=device)
    if ptr is None:
        ptr = (batch_to_ptr(batch_vec, B) if isinstance(first, Batch) else
               torch.arange(2, device=device) * N)
    out['batch'] = torch.cat([batch_vec + k * B for k in range(K)])
    out['ptr'] = _stack_offsets(ptr, K, N)
    if isinstance(first, Batch):
        # a shallow copy of the first copy (its class and attributes) with
        # the stacked values: unlike the Batch constructor, torch.compile
        # traces it (no graph break)
        fused = shallow_copy(first)
        for key, value in out.items():
            fused[key] = value
    else:
        fused = Batch(**out)
    # PyG's collation record, as Batch.from_data_list writes it, built by
    # arithmetic on the first copy's (host memory): ``to_data_list()`` gives
    # the K * B graphs, and row_layout() reads per-attribute offsets. (The
    # public Batch.from_data_list would read every graph's offsets on the
    # host - a synchronisation per graph on a GPU.)
    fused._num_graphs = K * B
    slices = collation.slice_record(first)
    incs = collation.inc_record(first)
    if isinstance(first, Batch) and slices:
        fused_slices = {
            key: _stack_offsets(s, K, s[-1:]) if isinstance(s, Tensor) and
            s.dim() == 1 and s.numel() == B + 1 else s
            for key, s in slices.items()}
        fused_incs = {}
        for key, inc in incs.items():
            step = _increment(first, key, first[key], N) if key in first \
                else 0
            if isinstance(inc, Tensor) and isinstance(step,
                                                      (int, torch.SymInt)):
                fused_incs[key] = torch.cat(
                    [inc + k * step for k in range(K)])
            else:
                fused_incs[key] = inc
        collation.write_record(fused, fused_slices, fused_incs)
    return fused


_concat_data_copies = torch.compiler.disable(_concat, recursive=True)
