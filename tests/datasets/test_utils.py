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


def test_repr_and_raw_files_of_the_shared_base(tmp_path):
    """``CachedDataset`` gives every dataset its repr (length, then the
    fields of ``_repr_fields``) and declares no raw files for PyG."""
    ds = _gravity(tmp_path)
    assert repr(ds) == "Gravity(4, split='train')"
    assert ds.raw_file_names == []


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
        # processed files go through the weights-only loader, never PyG's
        assert cls.load is CachedDataset.load


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


# Processed files: weights-only loads, damaged files ########################

class _CreatesFile:
    r"""A pickle whose loading creates a file (what a crafted processed file
    would do with a full unpickler)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, 'w'))


def test_crafted_processed_file_is_never_unpickled(tmp_path):
    first = _gravity(tmp_path)
    path = first.processed_paths[0]
    marker = tmp_path / 'PWNED'
    torch.save(_CreatesFile(marker), path)
    # PyG's InMemoryDataset.load retries with weights_only=False here and
    # creates the marker; the package treats the file as damaged
    with pytest.warns(UserWarning, match='damaged processed file') as info:
        again = _gravity(tmp_path)
    assert not marker.exists()
    assert any(path in str(w.message) for w in info)
    assert 'weights_only=False' not in str(info[0].message)
    assert 'weights-only load refuses it' in str(info[0].message)
    assert torch.equal(again[0].pos, first[0].pos)
    # rebuilt in place: it loads weights-only again
    assert isinstance(torch.load(path, weights_only=True), tuple)


@pytest.mark.parametrize('damage', ['empty', 'truncated', 'other_layout'])
def test_damaged_processed_file_is_rebuilt_naming_it(tmp_path, damage):
    first = _gravity(tmp_path)
    path = first.processed_paths[0]
    content = open(path, 'rb').read()
    if damage == 'empty':  # PyG: a bare EOFError
        open(path, 'wb').close()
    elif damage == 'truncated':  # PyG: "PytorchStreamReader failed ..."
        open(path, 'wb').write(content[:len(content) // 2])
    else:
        torch.save({'x': torch.zeros(2)}, path)
    with pytest.warns(UserWarning, match='rebuilding') as info:
        again = _gravity(tmp_path)
    assert path in str(info[0].message)
    assert torch.equal(again[0].pos, first[0].pos)
    assert open(path, 'rb').read() == content


def test_processed_file_that_stays_damaged_raises_naming_it(tmp_path,
                                                            monkeypatch):
    import torch_geometric_remul.datasets._utils as utils_mod
    from torch_geometric_remul.datasets._utils import DamagedProcessedFile
    path = _gravity(tmp_path).processed_paths[0]
    open(path, 'wb').close()
    # a rebuild that writes a damaged file again (e.g. a broken disk)
    monkeypatch.setattr(utils_mod, 'save_data_list',
                        lambda data_list, p: open(p, 'wb').close())
    with pytest.warns(UserWarning, match='rebuilding'), \
            pytest.raises(DamagedProcessedFile, match='force_reload') as info:
        _gravity(tmp_path)
    assert path in str(info.value) and isinstance(info.value, ValueError)


def test_read_processed_names_the_file(tmp_path):
    from torch_geometric_remul.datasets._utils import (
        DamagedProcessedFile,
        read_processed,
    )
    path = tmp_path / 'x.pt'
    path.write_bytes(b'')
    with pytest.raises(DamagedProcessedFile, match=f'{path}: damaged.*EOF'):
        read_processed(str(path))
    torch.save([1, 2], path)
    assert read_processed(str(path)) == [1, 2]
    with pytest.raises(DamagedProcessedFile, match='layout'):
        read_processed(str(path), lambda v: isinstance(v, dict))
    with pytest.raises(FileNotFoundError, match='nowhere'):
        read_processed(str(tmp_path / 'nowhere.pt'))


# Raw-file fingerprints ######################################################

def test_file_fingerprint_hashes_contents(tmp_path):
    import os

    from torch_geometric_remul.datasets._utils import file_fingerprint
    a, b = tmp_path / 'a.bin', tmp_path / 'b.bin'
    a.write_bytes(b'0123456789')
    st = os.stat(a)
    key = file_fingerprint([str(a)])
    # same size and modification time, other content (cp -p, tar, touch -r)
    a.write_bytes(b'0123456780')
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(a).st_mtime_ns == st.st_mtime_ns
    assert file_fingerprint([str(a)]) != key
    # the same content elsewhere gives the same key; the order counts
    b.write_bytes(b'0123456780')
    assert file_fingerprint([str(b)]) == file_fingerprint([str(a)])
    b.write_bytes(b'x')
    assert file_fingerprint([str(a), str(b)]) != \
        file_fingerprint([str(b), str(a)])


def test_damaged_mocap_joint_names_are_rebuilt(tmp_path):
    from torch_geometric_remul.datasets import (
        MotionCapture,
        generate_mocap_proxy,
    )
    generate_mocap_proxy(str(tmp_path / 'raw'), num_clips=2, num_frames=30,
                         seed=1)
    kw = dict(delta_frame=5, num_train=4, num_val=2, num_test=2)
    with pytest.warns(UserWarning, match='synthetic proxy'):
        first = MotionCapture(str(tmp_path), **kw)
    joints = first.processed_paths[0] + '.joints'
    marker = tmp_path / 'PWNED'
    torch.save(_CreatesFile(marker), joints)
    with pytest.warns(UserWarning) as info:
        again = MotionCapture(str(tmp_path), **kw)
    assert not marker.exists()
    assert any(joints in str(w.message) and 'damaged' in str(w.message)
               for w in info)
    assert again.joint_names == first.joint_names
