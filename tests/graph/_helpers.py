"""Brute-force references for the graph builders."""
import pytest
import torch

import torch_geometric_remul.typing as remul_typing


def need_cluster(backend):
    if backend == 'accelerated' and not remul_typing.WITH_TORCH_CLUSTER:
        pytest.skip('torch-cluster is not installed')


def random_graphs(sizes, dim=3, seed=0, dtype=torch.float32, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    sizes_t = torch.tensor(sizes, dtype=torch.long)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), sizes_t)
    pos = torch.randn(int(sizes_t.sum()), dim, generator=g, dtype=dtype)
    return pos * scale, batch


def edge_set(edge_index):
    return sorted(map(tuple, edge_index.t().tolist()))


def pairs(batch):
    """All ordered (j, i) pairs of the same graph, self-pairs included."""
    same = batch[:, None] == batch[None, :]
    i, j = same.nonzero(as_tuple=True)
    return j, i


def reference_radius(pos, r, batch, loop=False):
    j, i = pairs(batch)
    d2 = ((pos[i] - pos[j])**2).sum(-1)
    keep = d2 < r * r
    if not loop:
        keep &= i != j
    return edge_set(torch.stack([j[keep], i[keep]]))


def reference_knn(pos, k, batch, loop=False):
    edges = []
    for i in range(pos.size(0)):
        cand = (batch == batch[i]).nonzero().flatten()
        if not loop:
            cand = cand[cand != i]
        d2 = ((pos[cand] - pos[i])**2).sum(-1)
        order = torch.sort(d2, stable=True).indices[:k]
        edges += [(int(cand[o]), i) for o in order]
    return sorted(edges)


def check_within_graphs(edge_index, batch):
    assert edge_index.dtype == torch.long and edge_index.dim() == 2
    assert edge_index.size(0) == 2
    if edge_index.numel():
        assert torch.equal(batch[edge_index[0]], batch[edge_index[1]])
