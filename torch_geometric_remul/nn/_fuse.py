"""Concatenating copies of one ``Batch`` that differ only in the values of a
few attributes, so that a model sees them in one forward pass."""
from typing import Sequence

import torch
from torch_geometric.data import Batch, Data


def concat_copies(batches: Sequence[Data]) -> Batch:
    r"""Stacks ``K`` batches with identical structure (same graphs, edges and
    attribute shapes; values may differ) into one ``Batch`` of ``K * B``
    graphs: copy ``k`` owns graphs ``k * B ... (k + 1) * B - 1`` and rows
    ``k * N ... (k + 1) * N - 1`` of every node-level attribute. Edge
    indices are offset like :meth:`Batch.from_data_list` would."""
    first = batches[0]
    K = len(batches)
    if isinstance(first, Batch):
        B = first.num_graphs
        batch_vec = first.batch
    else:
        B = 1
        batch_vec = None
    N = first.num_nodes
    out = {}
    for key in first.keys():
        if key in ('batch', 'ptr'):
            continue
        value = first[key]
        if not isinstance(value, torch.Tensor):
            out[key] = value
            continue
        dim = first.__cat_dim__(key, value)
        inc = first.__inc__(key, value)
        parts = []
        for k, b in enumerate(batches):
            part = b[key]
            if isinstance(inc, int) and inc != 0:
                part = part + k * inc
            elif isinstance(inc, torch.Tensor):  # pragma: no cover
                part = part + k * inc
            parts.append(part)
        if dim is None:  # stacked, e.g. graph-level tensors without cat dim
            out[key] = torch.stack(parts, 0)
        else:
            out[key] = torch.cat(parts, dim=dim)
    device = first[first.keys()[0]].device if first.keys() else None
    if batch_vec is None:
        batch_vec = torch.zeros(N, dtype=torch.long, device=device)
    out['batch'] = torch.cat([batch_vec + k * B for k in range(K)])
    counts = torch.bincount(batch_vec, minlength=B).repeat(K)
    ptr = counts.new_zeros(K * B + 1)
    torch.cumsum(counts, 0, out=ptr[1:])
    out['ptr'] = ptr
    fused = Batch(**out)
    fused._num_graphs = K * B
    return fused
