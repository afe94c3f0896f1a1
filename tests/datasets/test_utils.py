import pytest
import torch

from torch_geometric_remul.datasets._utils import (
    cache_name,
    full_edge_index,
    radius_edge_index,
    split_rng,
)


@pytest.mark.parametrize('n', [1, 2, 5])
def test_full_edge_index(n):
    ei = full_edge_index(n)
    assert ei.dtype == torch.long and ei.shape == (2, n * (n - 1))
    pairs = set(map(tuple, ei.t().tolist()))
    assert pairs == {(i, j) for i in range(n) for j in range(n) if i != j}


def test_radius_edge_index_matches_brute_force():
    pos = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    ei = radius_edge_index(pos, 1.2)
    expected = {(i, j) for i in range(12) for j in range(12)
                if i != j and (pos[i] - pos[j]).norm() < 1.2}
    assert set(map(tuple, ei.t().tolist())) == expected
    assert len(expected) > 0


def test_cache_name_encodes_values():
    a = cache_name('x', {'n': 3, 'dt': 0.001, 'clip': True})
    b = cache_name('x', {'n': 3, 'dt': 0.0010001, 'clip': True})
    c = cache_name('x', {'n': 3, 'dt': 0.001, 'clip': False})
    assert len({a, b, c}) == 3 and '/' not in a


def test_split_rng_independent_per_split():
    a = split_rng(0, 'train').random(4)
    assert (a == split_rng(0, 'train').random(4)).all()
    assert not (a == split_rng(0, 'val').random(4)).any()
    assert not (a == split_rng(1, 'train').random(4)).any()
