import os
import os.path as osp

import numpy as np
import pytest
import torch

from torch_geometric_remul.datasets import (
    RMD17,
    find_rmd17_files,
    rmd17_molecule,
)
from torch_geometric_remul.datasets.rmd17 import sha256_file

ETHANOL_Z = np.array([6, 6, 8, 1, 1, 1, 1, 1, 1], dtype=np.uint8)
# the real files: ../shared/data/rmd17 beside the project (or
# $REMUL_RMD17_ROOT)
SHARED = os.environ.get('REMUL_RMD17_ROOT') or osp.join(
    osp.dirname(__file__), '..', '..', '..', 'shared', 'data', 'rmd17')


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch):
    # the default cache (no cache_dir) goes under $XDG_CACHE_HOME
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg-cache'))


def frames(T, z=ETHANOL_Z, seed=0):
    rng = np.random.default_rng(seed)
    return dict(nuclear_charges=z, coords=rng.normal(size=(T, z.size, 3)),
                energies=rng.normal(size=T) - 97000.0,
                forces=rng.normal(size=(T, z.size, 3)))


def write_split(root, molecule='ethanol', fold=1, T=20, z=ETHANOL_Z,
                **overrides):
    out = {}
    for k, part in enumerate(('train', 'test')):
        arrays = frames(T, z, seed=10 * fold + k)
        arrays['old_indices'] = np.arange(T) + k * 1000
        arrays.update(overrides.get(part, {}))
        path = osp.join(root, f'rmd17_{molecule}_{part}_{fold:02d}.npz')
        np.savez(path, **arrays)
        out[part] = arrays
    return out


def write_official(root, molecule='ethanol', T=40, fold=1, train=None,
                   test=None):
    os.makedirs(osp.join(root, 'npz_data'), exist_ok=True)
    os.makedirs(osp.join(root, 'splits'), exist_ok=True)
    arrays = frames(T)
    np.savez(osp.join(root, 'npz_data', f'rmd17_{molecule}.npz'), **arrays)
    rng = np.random.default_rng(3)
    perm = rng.permutation(T)
    train = perm[:12] if train is None else train
    test = perm[12:20] if test is None else test
    for part, rows in (('train', train), ('test', test)):
        with open(osp.join(root, 'splits', f'index_{part}_{fold:02d}.csv'),
                  'w') as f:
            f.write(''.join(f'{int(r)}\n' for r in rows))
    return arrays, train, test


def load(root, split, **kwargs):
    kwargs.setdefault('num_val', 5)
    return RMD17(root, 'ethanol', split=split,
                 cache_dir=osp.join(root, 'cache'), **kwargs)


def test_split_layout_values_and_splits(tmp_path):
    root = str(tmp_path)
    data = write_split(root)
    train, val, test = (load(root, s) for s in ('train', 'val', 'test'))
    assert (len(train), len(val), len(test)) == (15, 5, 20)
    d = val[0]
    assert set(d.keys()) == {'pos', 'z', 'energy', 'force', 'idx'}
    assert d.pos.dtype == d.force.dtype == torch.float32
    assert d.z.dtype == torch.long and d.energy.dtype == torch.float64
    assert d.energy.shape == (1, ) and d.force.shape == (9, 3)
    # val = the last 5 training frames in file order, train the first 15
    assert val._data.idx.tolist() == list(range(15, 20))
    assert train._data.idx.tolist() == list(range(15))
    assert test._data.idx.tolist() == list(range(20))
    for ds, part in ((train, 'train'), (val, 'train'), (test, 'test')):
        for g in ds:
            i = int(g.idx)
            np.testing.assert_array_equal(g.z.numpy(), ETHANOL_Z)
            torch.testing.assert_close(g.pos, torch.tensor(
                data[part]['coords'][i], dtype=torch.float32))
            torch.testing.assert_close(g.force, torch.tensor(
                data[part]['forces'][i], dtype=torch.float32))
            assert float(g.energy) == data[part]['energies'][i]  # exact


def test_subsets_and_transform(tmp_path):
    root = str(tmp_path)
    write_split(root)
    ds = load(root, 'train', num_train=4)
    assert ds._data.idx.tolist() == [0, 1, 2, 3]
    assert len(load(root, 'test', num_test=3)) == 3

    def shift(data):
        data.energy = data.energy + 1.0
        return data
    shifted = load(root, 'test', transform=shift)
    plain = load(root, 'test')
    assert float(shifted[2].energy) == float(plain[2].energy) + 1.0
    assert float(plain[2].energy) == float(plain._data.energy[2])  # stored
    with pytest.raises(ValueError, match='num_train=20 exceeds the 15'):
        load(root, 'train', num_train=20)
    with pytest.raises(ValueError, match='num_val=20'):
        load(root, 'val', num_val=20)


def test_official_layout(tmp_path):
    root = str(tmp_path)
    arrays, train_rows, test_rows = write_official(root)
    assert find_rmd17_files(root, 'ethanol')[0] == 'official'
    train, val, test = (load(root, s) for s in ('train', 'val', 'test'))
    assert train._data.idx.tolist() == train_rows[:7].tolist()
    assert val._data.idx.tolist() == train_rows[7:].tolist()
    assert test._data.idx.tolist() == test_rows.tolist()  # file order
    g = test[3]
    torch.testing.assert_close(g.pos, torch.tensor(
        arrays['coords'][test_rows[3]], dtype=torch.float32))
    assert float(g.energy) == arrays['energies'][test_rows[3]]
    assert set(train.data_files) == {
        osp.join('npz_data', 'rmd17_ethanol.npz'),
        osp.join('splits', 'index_train_01.csv'),
        osp.join('splits', 'index_test_01.csv')}


def test_both_layouts_auto_prefers_split_files(tmp_path):
    root = str(tmp_path)
    write_official(root)
    write_split(root)
    assert find_rmd17_files(root, 'ethanol')[0] == 'split'
    assert find_rmd17_files(root, 'ethanol', layout='official')[0] == \
        'official'
    assert load(root, 'test', layout='official').layout == 'official'


def test_any_molecule_and_names(tmp_path):
    root = str(tmp_path)
    z = np.array([8, 1, 1], dtype=np.uint8)  # not an rMD17 molecule
    write_split(root, molecule='water', z=z)
    ds = RMD17(root, 'Water', split='test', num_val=5)
    assert ds.molecule == 'water' and ds[0].z.tolist() == [8, 1, 1]
    assert rmd17_molecule('Salicylic acid') == 'salicylic'
    assert rmd17_molecule('rmd17_uracil') == 'uracil'
    with pytest.raises(ValueError, match='letters, digits'):
        rmd17_molecule('../aspirin')


def test_missing_molecule_and_fold(tmp_path):
    root = str(tmp_path)
    write_split(root)
    with pytest.raises(FileNotFoundError) as info:
        load(root, 'train', fold=6)
    text = str(info.value)
    assert "fold 6" in text and 'rmd17_ethanol_train_06.npz' in text
    assert 'pre-split [1]' in text
    with pytest.raises(FileNotFoundError) as info:
        RMD17(root, 'aspirin')
    text = str(info.value)
    assert 'rmd17_aspirin_train_01.npz' in text
    assert osp.join('npz_data', 'rmd17_aspirin.npz') in text
    assert "Molecules found under" in text and "['ethanol']" in text
    os.remove(osp.join(root, 'rmd17_ethanol_test_01.npz'))
    with pytest.raises(FileNotFoundError, match='Present: .*train_01'):
        load(root, 'train')


def test_damaged_files(tmp_path):
    root = str(tmp_path)
    write_split(root)
    path = osp.join(root, 'rmd17_ethanol_train_01.npz')
    with open(path, 'rb') as f:
        content = f.read()
    with open(path, 'wb') as f:
        f.write(content[:len(content) // 2])  # truncated
    with pytest.raises(ValueError, match='rmd17_ethanol_train_01.npz'):
        load(root, 'train')
    with open(path, 'wb') as f:
        f.write(b'not an archive')
    with pytest.raises(ValueError, match='not an .npz archive'):
        load(root, 'train')


@pytest.mark.parametrize('override, match', [
    ({'forces': np.zeros((20, 9, 2))}, r"'forces' must have shape \[20, 9"),
    ({'energies': np.zeros((19, ))}, r"'energies' must have shape \[20\]"),
    ({'coords': np.full((20, 9, 3), np.nan)}, 'NaN'),
    ({'nuclear_charges': np.array([6, 6, 6, 1, 1, 1, 1, 1, 1])},
     r"holds C3H6 but molecule 'ethanol' is C2H6O"),
])
def test_malformed_train_file(tmp_path, override, match):
    root = str(tmp_path)
    write_split(root, train=override)
    with pytest.raises(ValueError, match=match) as info:
        load(root, 'val')
    assert 'rmd17_ethanol_train_01.npz' in str(info.value)


def test_missing_key(tmp_path):
    root = str(tmp_path)
    arrays = frames(20)
    del arrays['forces']
    for part in ('train', 'test'):
        np.savez(osp.join(root, f'rmd17_ethanol_{part}_01.npz'), **arrays)
    with pytest.raises(ValueError, match='unexpected keys'):
        load(root, 'test')


def test_mislabelled_split_files(tmp_path):
    root = str(tmp_path)
    # a test file holding the training frames again
    write_split(root, test={'old_indices': np.arange(20)})
    with pytest.raises(ValueError, match='share 20 frames'):
        load(root, 'test')
    write_split(root, test={'nuclear_charges': ETHANOL_Z[::-1].copy()})
    with pytest.raises(ValueError, match='differ from those of'):
        load(root, 'test')


def test_bad_index_files(tmp_path):
    root = str(tmp_path)
    write_official(root, train=np.array([1, 2, 3, 4, 5, 6, 99]))
    with pytest.raises(ValueError, match=r'index_train_01.csv: row index '
                       r'99 is out of range for a data file of 40'):
        load(root, 'train')
    write_official(root, train=np.arange(10), test=np.arange(8, 14))
    with pytest.raises(ValueError, match='share 2 row indices'):
        load(root, 'train')
    write_official(root)
    with open(osp.join(root, 'splits', 'index_test_01.csv'), 'a') as f:
        f.write('12.5\n')
    with pytest.raises(ValueError, match=r'index_test_01.csv, line 9'):
        load(root, 'test')


def test_default_cache_is_outside_the_data_folder(tmp_path, monkeypatch):
    root = str(tmp_path / 'data')
    os.makedirs(root)
    write_split(root)
    before = sorted(os.listdir(root))
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'home-cache'))
    ds = RMD17(root, 'ethanol', split='test', num_val=5)
    assert ds.processed_dir.startswith(str(tmp_path / 'home-cache'))
    assert osp.isdir(ds.processed_dir) and len(ds) == 20
    assert sorted(os.listdir(root)) == before  # nothing written there
    other = str(tmp_path / 'other')
    os.makedirs(other)
    write_split(other)
    assert RMD17(other, 'ethanol', num_val=5).processed_dir != \
        ds.processed_dir


@pytest.mark.skipif(not osp.isdir(SHARED),
                    reason='the real rMD17 files are not present')
def test_real_files(tmp_path):
    sums = {}
    with open(osp.join(SHARED, 'SHA256SUMS')) as f:
        for line in f:
            digest, name = line.split()
            sums[name] = digest
    test = RMD17(SHARED, 'aspirin', split='test', fold=1,
                 cache_dir=str(tmp_path))
    val = RMD17(SHARED, 'aspirin', split='val', fold=1,
                cache_dir=str(tmp_path))
    train = RMD17(SHARED, 'aspirin', split='train', fold=1,
                  cache_dir=str(tmp_path))
    assert (len(train), len(val), len(test)) == (950, 50, 1000)
    assert train[0].z.tolist().count(6) == 9 and train[0].num_nodes == 21
    assert -4.1e5 < float(test[0].energy) < -4.0e5  # kcal/mol
    for name, digest in test.data_files.items():
        assert sums[name] == digest
    salicylic = RMD17(SHARED, 'salicylic acid', split='val', fold=5,
                      cache_dir=str(tmp_path))
    assert salicylic[0].num_nodes == 16
    assert sha256_file(osp.join(SHARED, 'rmd17_uracil_test_03.npz')) == \
        sums['rmd17_uracil_test_03.npz']
