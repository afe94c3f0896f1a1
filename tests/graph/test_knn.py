import pytest
import torch

import torch_geometric_remul.typing as remul_typing
from tests.graph._helpers import (
    check_within_graphs,
    edge_set,
    need_cluster,
    random_graphs,
    reference_knn,
)
from torch_geometric_remul.graph import knn_graph


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('loop', [False, True])
@pytest.mark.parametrize('k', [1, 3, 8])
@pytest.mark.parametrize('sizes', [[21], [4, 1, 7, 0, 3, 12]])
def test_matches_brute_force(sizes, k, loop, dtype, backend):
    need_cluster(backend)
    pos, batch = random_graphs(sizes, dtype=dtype)
    out = knn_graph(pos, k, batch, loop=loop)
    check_within_graphs(out, batch)
    assert edge_set(out) == reference_knn(pos, k, batch, loop)
    # every target gets min(k, available) sources
    counts = torch.bincount(batch)[batch] - (0 if loop else 1)
    deg = torch.bincount(out[1], minlength=pos.size(0))
    assert torch.equal(deg, counts.clamp(max=k))


def test_both_paths_agree_and_match_torch_cluster():
    pos, batch = random_graphs([30, 9, 1, 40], seed=3, dim=2)
    fast = knn_graph(pos, 6, batch)
    with remul_typing.force_native():
        slow = knn_graph(pos, 6, batch)
    assert edge_set(fast) == edge_set(slow)
    if remul_typing.WITH_TORCH_CLUSTER:
        ref = remul_typing.torch_cluster.knn_graph(pos, 6, batch)
        assert edge_set(ref) == edge_set(slow)


def test_direction_and_ties():
    pos = torch.tensor([[0.0, 0], [1.0, 0], [3.0, 0]])
    # node 2's nearest is node 1, not the reverse: source first
    with remul_typing.force_native():
        assert edge_set(knn_graph(pos, 1)) == [(0, 1), (1, 0), (1, 2)]
        sym = torch.tensor([[0.0, 0], [1.0, 0], [-1.0, 0]])
        # node 0 has two neighbours at distance 1: the lower index wins
        assert edge_set(knn_graph(sym, 1)[:, :1]) == [(1, 0)]


def test_duplicate_points_cap(backend):
    need_cluster(backend)
    pos = torch.zeros(5, 3)
    out = knn_graph(pos, 2)
    assert torch.equal(torch.bincount(out[1], minlength=5),
                       torch.full((5, ), 2))
    assert bool((out[0] != out[1]).all())


def test_bad_input():
    pos, batch = random_graphs([3, 2])
    with pytest.raises(ValueError, match="'k' must be >= 1"):
        knn_graph(pos, 0)
    with pytest.raises(TypeError, match="'k' must be an int"):
        knn_graph(pos, 2.5)
    with pytest.raises(ValueError, match=r"'pos' must have shape"):
        knn_graph(pos.view(-1), 2)
    with pytest.raises(ValueError, match="'batch' must be sorted"):
        knn_graph(pos, 2, batch.flip(0))
    with pytest.raises(TypeError, match="'loop' must be a bool"):
        knn_graph(pos, 2, loop=None)


def test_compiled_search_does_not_call_torch_cluster(monkeypatch):
    """torch-cluster's ops cannot be traced by torch.compile: a traced call
    takes the native search, with the same edges."""
    pos, batch = random_graphs([6, 1, 5], seed=5)
    ref = knn_graph(pos, 3, batch)

    class Refuse:
        def __getattr__(self, name):
            raise AssertionError(f'torch_cluster.{name} used while tracing')

    monkeypatch.setattr(remul_typing, 'torch_cluster', Refuse())
    monkeypatch.setattr(remul_typing, 'WITH_TORCH_CLUSTER', True)
    torch._dynamo.reset()
    out = torch.compile(knn_graph, backend='eager')(pos, 3, batch)
    assert edge_set(out) == edge_set(ref)
