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


# The datasets' cache bookkeeping (CachedDataset) ###########################

def _gravity(root, **kw):
    from torch_geometric_remul.datasets import Gravity
    return Gravity(str(root), split='train', seed=0, num_train=4, num_val=2,
                   num_test=2, **kw)


def test_every_dataset_uses_the_safe_cache_bookkeeping():
    from torch_geometric_remul.datasets import (
        ChargedParticles,
        Gravity,
        MD17Trajectories,
        MotionCapture,
    )
    from torch_geometric_remul.datasets._utils import CachedDataset
    for cls in (ChargedParticles, Gravity, MD17Trajectories, MotionCapture):
        assert issubclass(cls, CachedDataset)


def test_half_written_record_is_skipped_not_fatal(tmp_path):
    # another process rewriting pre_transform.pt while this one starts: PyG
    # itself fails with EOFError ("Ran out of input") here
    first = _gravity(tmp_path)
    record = tmp_path / 'processed' / 'pre_transform.pt'
    assert record.is_file()
    record.write_bytes(b'')
    again = _gravity(tmp_path)
    assert torch.equal(again[0].pos, first[0].pos)


def test_records_are_never_unpickled(tmp_path):
    import pickle
    _gravity(tmp_path)
    record = tmp_path / 'processed' / 'pre_filter.pt'

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled')", ))

    record.write_bytes(pickle.dumps(Boom(), protocol=2))
    _gravity(tmp_path)  # weights_only=True refuses it: skipped, not run


def test_other_pre_transform_warns_and_records_are_atomic(tmp_path):
    _gravity(tmp_path)
    with pytest.warns(UserWarning, match='pre_transform` argument differs'):
        _gravity(tmp_path, pre_transform=lambda d: d)
    processed = tmp_path / 'processed'
    assert not [p for p in processed.iterdir() if p.name.endswith('.tmp')]
    assert torch.load(processed / 'pre_transform.pt',
                      weights_only=True) == 'None'
