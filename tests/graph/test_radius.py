import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import torch_geometric_remul.typing as remul_typing
from tests.graph._helpers import (
    check_within_graphs,
    edge_set,
    need_cluster,
    random_graphs,
    reference_radius,
)
from torch_geometric_remul.graph import radius_graph


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('loop', [False, True])
@pytest.mark.parametrize('sizes', [[21], [4, 1, 7, 0, 3, 12], [5] * 6])
def test_matches_brute_force(sizes, loop, dtype, backend):
    need_cluster(backend)
    pos, batch = random_graphs(sizes, dtype=dtype)
    out = radius_graph(pos, 1.2, batch, max_num_neighbors=64, loop=loop)
    check_within_graphs(out, batch)
    assert out.size(1) > 0
    assert edge_set(out) == reference_radius(pos, 1.2, batch, loop)
    # grouped by target
    assert torch.equal(out[1], out[1].sort().values)


def test_both_paths_agree_and_match_torch_cluster():
    pos, batch = random_graphs([30, 9, 1, 40], seed=3)
    fast = radius_graph(pos, 1.0, batch, max_num_neighbors=100)
    with remul_typing.force_native():
        slow = radius_graph(pos, 1.0, batch, max_num_neighbors=100)
    assert edge_set(fast) == edge_set(slow)
    if remul_typing.WITH_TORCH_CLUSTER:
        ref = remul_typing.torch_cluster.radius_graph(
            pos, 1.0, batch, max_num_neighbors=100)
        assert edge_set(ref) == edge_set(slow)


def test_direction_convention():
    # source first, target second (flow source_to_target): each target's
    # neighbourhood is searched, so capping neighbours caps in-degrees
    pos = torch.tensor([[0.0, 0, 0], [0.1, 0, 0], [0.2, 0, 0], [0.3, 0, 0]])
    with remul_typing.force_native():
        out = radius_graph(pos, 1.0, max_num_neighbors=1)
    # each target keeps its nearest source
    assert edge_set(out) == [(0, 1), (1, 0), (1, 2), (2, 3)]


def test_strict_radius(backend):
    need_cluster(backend)
    pos = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0, 2.0, 0]])
    assert radius_graph(pos, 1.0).size(1) == 0
    assert edge_set(radius_graph(pos, 1.5)) == [(0, 1), (1, 0)]


def test_truncation(backend):
    need_cluster(backend)
    pos, batch = random_graphs([25, 3, 12], seed=1)
    cap = 4
    out = radius_graph(pos, 10.0, batch, max_num_neighbors=cap)
    check_within_graphs(out, batch)
    deg = torch.bincount(out[1], minlength=pos.size(0))
    counts = torch.bincount(batch)[batch]
    assert torch.equal(deg, (counts - 1).clamp(max=cap))
    within = set(reference_radius(pos, 10.0, batch))
    assert set(edge_set(out)) <= within
    if backend == 'native':  # the native path keeps the nearest neighbours
        d = ((pos[out[0]] - pos[out[1]])**2).sum(-1)
        for i in range(pos.size(0)):
            same = (batch == batch[i]).nonzero().flatten()
            same = same[same != i]
            all_d = ((pos[same] - pos[i])**2).sum(-1).sort().values
            kept = d[out[1] == i].sort().values
            assert torch.equal(kept, all_d[:cap])


def test_truncation_ties_keep_lower_index():
    pos = torch.tensor([[0.0, 0], [1.0, 0], [-1.0, 0], [0, 1.0], [0, -1.0]])
    with remul_typing.force_native():
        out = radius_graph(pos, 1.5, max_num_neighbors=2)
    assert edge_set(out[:, out[1] == 0]) == [(1, 0), (2, 0)]


@pytest.mark.parametrize('budget', [400, 50, 1])
def test_chunked_search_matches(monkeypatch, budget):
    import torch_geometric_remul.graph._common as common
    pos, batch = random_graphs([9, 4, 11], seed=2)
    with remul_typing.force_native():
        full = edge_set(radius_graph(pos, 1.3, batch, max_num_neighbors=64))
        # tiny budgets: graph chunks, then query chunks inside one graph
        blocks = list(common.dense_blocks(pos, batch, False, budget))
        assert len(blocks) > 1
        monkeypatch.setattr(common, 'BLOCK_BUDGET', budget)
        out = radius_graph(pos, 1.3, batch, max_num_neighbors=64)
    assert edge_set(out) == full
    assert torch.equal(out[1], out[1].sort().values)


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(0, 8), min_size=1, max_size=5),
       r=st.floats(0.1, 3.0), seed=st.integers(0, 1000),
       loop=st.booleans())
def test_property_native_matches_brute_force(sizes, r, seed, loop):
    pos, batch = random_graphs(sizes, seed=seed, dtype=torch.float64)
    with remul_typing.force_native():
        out = radius_graph(pos, r, batch, max_num_neighbors=64, loop=loop)
    assert edge_set(out) == reference_radius(pos, r, batch, loop)


def test_gradient_free_and_input_untouched():
    pos, batch = random_graphs([5, 5])
    pos.requires_grad_(True)
    before = pos.detach().clone()
    out = radius_graph(pos, 1.5, batch)
    assert not out.requires_grad
    assert torch.equal(pos.detach(), before)


def test_bad_input():
    pos, batch = random_graphs([3, 2])
    with pytest.raises(ValueError, match=r"'pos' must have shape "
                       r"\[num_nodes, num_dims\]"):
        radius_graph(pos[:, 0], 1.0)
    with pytest.raises(TypeError, match="'pos' must have a floating-point"):
        radius_graph(pos.long(), 1.0)
    with pytest.raises(ValueError, match="'r' must be a finite number > 0"):
        radius_graph(pos, -1.0)
    with pytest.raises(TypeError, match="'r' must be a number"):
        radius_graph(pos, '1')
    with pytest.raises(ValueError, match="'max_num_neighbors' must be >= 1"):
        radius_graph(pos, 1.0, max_num_neighbors=0)
    with pytest.raises(ValueError, match=r"'batch' must have shape \[5\]"):
        radius_graph(pos, 1.0, batch[:3])
    with pytest.raises(ValueError, match="'batch' must be sorted"):
        radius_graph(pos, 1.0, batch.flip(0))
    with pytest.raises(TypeError, match="'batch' must be an integer"):
        radius_graph(pos, 1.0, batch.float())
    assert radius_graph(pos[:0], 1.0).shape == (2, 0)


def test_positional_order_matches_torch_cluster():
    # torch_cluster.radius_graph(x, r, batch, loop, max_num_neighbors)
    pos = torch.tensor([[0.0, 0, 0], [0.5, 0, 0], [0.9, 0, 0]])
    batch = torch.zeros(3, dtype=torch.long)
    with_loops = radius_graph(pos, 1.0, batch, True, 1)
    # loop=True, max_num_neighbors=1: one neighbour per target; which one
    # depends on the path (torch-cluster: the first found)
    assert sorted(with_loops[1].tolist()) == [0, 1, 2]
    with remul_typing.force_native():  # the native path keeps the nearest
        nearest = radius_graph(pos, 1.0, batch, True, 1)
    assert (nearest[0] == nearest[1]).all()  # itself
    if remul_typing.WITH_TORCH_CLUSTER:
        ref = remul_typing.torch_cluster.radius_graph(pos, 1.0, batch, True,
                                                      8)
        assert edge_set(radius_graph(pos, 1.0, batch, True, 8)) == \
            edge_set(ref)
