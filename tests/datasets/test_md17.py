import os
import warnings

import numpy as np
import pytest
import torch

import torch_geometric_remul.datasets.md17 as md17_mod
from torch_geometric_remul.datasets import MD17_MOLECULES, MD17Trajectories

ETHANOL_Z = np.array([6, 6, 8, 1, 1, 1, 1, 1, 1])
BENZENE_Z = np.array([6] * 6 + [1] * 6)


def trajectory(num_frames=80, z=ETHANOL_Z, seed=0):
    # atoms on a grid 1.2 Å apart, jittered: plausible bond lengths in Å
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(np.arange(3), np.arange(3), np.arange(2),
                                indexing='ij'), axis=-1).reshape(-1, 3)
    base = (1.2 * grid[:z.size] + rng.normal(0.0, 0.05, (z.size, 3)))[None]
    return base + np.cumsum(rng.normal(0.0, 0.02, (num_frames, z.size, 3)),
                            axis=0)


def write_md17(path, R, z=ETHANOL_Z):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path, z=z, R=R, E=np.zeros((len(R), 1)),
             F=np.zeros_like(R))
    return path


def write_rmd17(path, R, z=ETHANOL_Z, old_indices=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    extra = {} if old_indices is None else {'old_indices': old_indices}
    np.savez(path, nuclear_charges=z, coords=R, energies=np.zeros(len(R)),
             forces=np.zeros_like(R), **extra)
    return path


SMALL = dict(delta_frame=10, margin=5, num_train=6, num_val=5, num_test=4)


@pytest.fixture
def md17_root(tmp_path):
    R = trajectory()
    write_md17(str(tmp_path / 'ethanol' / 'raw' / 'md17_ethanol.npz'), R)
    return str(tmp_path), R


def test_molecule_list():
    assert set(MD17_MOLECULES) == {
        'aspirin', 'benzene', 'ethanol', 'malonaldehyde', 'naphthalene',
        'salicylic_acid', 'toluene', 'uracil'}


def test_md17_loader_samples(md17_root):
    root, R = md17_root
    ds = MD17Trajectories(root, 'ethanol', **SMALL)
    assert len(ds) == 6 and not ds.is_standin
    d = ds[0]
    assert set(d.keys()) == {'pos', 'vel', 'z', 'y', 'edge_index', 'frame'}
    heavy = ETHANOL_Z > 1
    assert d.z.tolist() == [6, 6, 8] and d.z.dtype == torch.long
    assert d.pos.dtype == d.vel.dtype == d.y.dtype == torch.float32
    for data in ds:
        t = int(data.frame)
        assert 5 <= t < 80 - 10
        torch.testing.assert_close(data.pos, torch.tensor(
            R[t][heavy], dtype=torch.float32))
        torch.testing.assert_close(data.vel, torch.tensor(
            (R[t + 1] - R[t])[heavy], dtype=torch.float32))
        torch.testing.assert_close(data.y, torch.tensor(
            R[t + 10][heavy], dtype=torch.float32))


def test_splits_disjoint_and_sized(md17_root):
    root, _ = md17_root
    frames = {}
    for split, n in (('train', 6), ('val', 5), ('test', 4)):
        ds = MD17Trajectories(root, 'ethanol', split=split, **SMALL)
        assert len(ds) == n
        frames[split] = set(ds._data.frame.tolist())
        assert len(frames[split]) == n
    assert not (frames['train'] & frames['val'])
    assert not (frames['train'] & frames['test'])
    assert not (frames['val'] & frames['test'])
    other = MD17Trajectories(root, 'ethanol', seed=1, **SMALL)
    assert set(other._data.frame.tolist()) != frames['train']


def test_hydrogens_and_graphs(md17_root):
    root, R = md17_root
    ds = MD17Trajectories(root, 'ethanol', remove_hydrogens=False,
                          graph='full', **SMALL)
    d = ds[0]
    assert d.z.tolist() == ETHANOL_Z.tolist() and d.pos.shape == (9, 3)
    assert d.edge_index.shape == (2, 72)
    assert (d.edge_index[0] != d.edge_index[1]).all()
    rad = MD17Trajectories(root, 'ethanol', remove_hydrogens=False,
                           graph='radius', cutoff=1.5, **SMALL)
    for data in rad:
        pos = data.pos.double()
        expected = {(i, j) for i in range(9) for j in range(9)
                    if i != j and (pos[i] - pos[j]).norm() < 1.5}
        assert set(map(tuple, data.edge_index.t().tolist())) == expected
    assert 0 < rad._data.edge_index.size(1) < 72 * len(rad)


def test_rmd17_loader_and_reordering(tmp_path):
    R = trajectory(seed=1)
    perm = np.random.default_rng(0).permutation(len(R))
    write_rmd17(str(tmp_path / 'ethanol' / 'raw' / 'rmd17_ethanol.npz'),
                R[perm], old_indices=perm)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # contiguous indices: no warning
        ds = MD17Trajectories(str(tmp_path), 'ethanol', **SMALL)
    for data in ds:
        t = int(data.frame)
        torch.testing.assert_close(data.pos, torch.tensor(
            R[t][:3], dtype=torch.float32))
        torch.testing.assert_close(data.y, torch.tensor(
            R[t + 10][:3], dtype=torch.float32))


def test_rmd17_uneven_subsample_warns(tmp_path):
    R = trajectory(seed=2)
    path = write_rmd17(str(tmp_path / 'x.npz'), R,
                       old_indices=np.arange(len(R)) * 3)
    with pytest.warns(UserWarning, match='random subsample'):
        MD17Trajectories(str(tmp_path), 'ethanol', path=path, **SMALL)


def test_source_selection_and_explicit_path(tmp_path):
    R1, R2 = trajectory(seed=3), trajectory(seed=4)
    raw = tmp_path / 'ethanol' / 'raw'
    write_md17(str(raw / 'md17_ethanol.npz'), R1)
    write_rmd17(str(raw / 'rmd17_ethanol.npz'), R2)
    auto = MD17Trajectories(str(tmp_path), 'ethanol', **SMALL)
    assert auto.path.endswith('md17_ethanol.npz')
    assert not auto.path.endswith('rmd17_ethanol.npz')
    rev = MD17Trajectories(str(tmp_path), 'ethanol', source='rmd17', **SMALL)
    assert rev.path.endswith('rmd17_ethanol.npz')
    assert rev.processed_paths[0] != auto.processed_paths[0]
    t = int(rev[0].frame)
    torch.testing.assert_close(rev[0].pos, torch.tensor(
        R2[t][:3], dtype=torch.float32))
    elsewhere = write_md17(str(tmp_path / 'other' / 'mine.npz'), R2)
    exp = MD17Trajectories(str(tmp_path), 'ethanol', path=elsewhere,
                           **SMALL)
    torch.testing.assert_close(exp._data.pos, rev._data.pos)


def test_official_names_and_aliases(tmp_path):
    z = np.array([6] * 7 + [1] * 6 + [8] * 3)
    write_md17(str(tmp_path / 'salicylic_acid' / 'raw' /
                   'md17_salicylic.npz'), trajectory(z=z), z=z)
    ds = MD17Trajectories(str(tmp_path), 'Salicylic acid', **SMALL)
    assert ds.molecule == 'salicylic_acid' and ds[0].z.numel() == 10
    write_md17(str(tmp_path / 'benzene' / 'raw' / 'md17_benzene2017.npz'),
               trajectory(z=BENZENE_Z), z=BENZENE_Z)
    assert len(MD17Trajectories(str(tmp_path), 'benzene', **SMALL)) == 6


def test_cache_reused_and_invalidated(md17_root, monkeypatch):
    root, R = md17_root
    ds = MD17Trajectories(root, 'ethanol', **SMALL)

    def boom(*args, **kwargs):
        raise AssertionError('read again although cached')

    monkeypatch.setattr(md17_mod, 'read_trajectory', boom)
    again = MD17Trajectories(root, 'ethanol', **SMALL)
    torch.testing.assert_close(again._data.pos, ds._data.pos)
    for change in ({'delta_frame': 9}, {'num_train': 5}, {'seed': 2},
                   {'cutoff': 2.0}, {'remove_hydrogens': False}):
        with pytest.raises(AssertionError, match='read again'):
            MD17Trajectories(root, 'ethanol', **{**SMALL, **change})
    # a replaced raw file (new size/mtime) is never served from the cache
    path = os.path.join(root, 'ethanol', 'raw', 'md17_ethanol.npz')
    write_md17(path, trajectory(num_frames=90, seed=7))
    with pytest.raises(AssertionError, match='read again'):
        MD17Trajectories(root, 'ethanol', **SMALL)


# Bad input ##################################################################

def test_missing_file_message(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        MD17Trajectories(str(tmp_path), 'aspirin')
    msg = str(info.value)
    expected = os.path.join(str(tmp_path), 'aspirin', 'raw',
                            'md17_aspirin.npz')
    assert expected in msg
    assert 'quantum-machine.org/gdml/data/npz/md17_aspirin.npz' in msg
    assert 'rmd17_aspirin.npz' in msg and 'figshare' in msg
    with pytest.raises(FileNotFoundError, match='generate_md17_standin'):
        MD17Trajectories(str(tmp_path), 'aspirin', source='standin')
    with pytest.raises(FileNotFoundError, match='nowhere.npz'):
        MD17Trajectories(str(tmp_path), 'aspirin',
                         path=str(tmp_path / 'nowhere.npz'))


def test_unknown_molecule(tmp_path):
    with pytest.raises(ValueError, match="unknown MD17 molecule 'caffeine'"):
        MD17Trajectories(str(tmp_path), 'caffeine')


def write_truncated(tmp_path) -> str:
    """The first half of an MD17 file of ethanol under ``tmp_path``."""
    path = write_md17(str(tmp_path / 'ethanol' / 'raw' / 'md17_ethanol.npz'),
                      trajectory())
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    return path


def test_truncated_file(tmp_path):
    write_truncated(tmp_path)
    with pytest.raises(ValueError, match='md17_ethanol.npz') as info:
        MD17Trajectories(str(tmp_path), 'ethanol', **SMALL)
    assert 'truncated' in str(info.value)


def test_wrong_keys(tmp_path):
    path = str(tmp_path / 'ethanol' / 'raw' / 'md17_ethanol.npz')
    os.makedirs(os.path.dirname(path))
    np.savez(path, positions=trajectory(), numbers=ETHANOL_Z)
    with pytest.raises(ValueError, match='unexpected keys') as info:
        MD17Trajectories(str(tmp_path), 'ethanol', **SMALL)
    assert path in str(info.value) and "'R'" in str(info.value)


def test_wrong_shapes_and_composition(tmp_path):
    bad = str(tmp_path / 'bad.npz')
    np.savez(bad, z=ETHANOL_Z, R=np.zeros((10, 8, 3)))
    with pytest.raises(ValueError, match='bad.npz.*shape'):
        MD17Trajectories(str(tmp_path), 'ethanol', path=bad, **SMALL)
    benz = write_md17(str(tmp_path / 'benz.npz'), trajectory(z=BENZENE_Z),
                      z=BENZENE_Z)
    with pytest.raises(ValueError, match='C6H6.*C2H6O'):
        MD17Trajectories(str(tmp_path), 'ethanol', path=benz, **SMALL)


def test_too_few_frames(tmp_path):
    path = write_md17(str(tmp_path / 'short.npz'), trajectory(num_frames=20))
    with pytest.raises(ValueError, match='short.npz.*start frames'):
        MD17Trajectories(str(tmp_path), 'ethanol', path=path, **SMALL)


def test_argument_errors(md17_root):
    root, _ = md17_root
    with pytest.raises(ValueError, match='graph'):
        MD17Trajectories(root, 'ethanol', graph='knn', **SMALL)
    with pytest.raises(ValueError, match='source'):
        MD17Trajectories(root, 'ethanol', source='dft', **SMALL)
    with pytest.raises(ValueError, match='no stand-in marker'):
        MD17Trajectories(root, 'ethanol', source='standin',
                         path=os.path.join(root, 'ethanol', 'raw',
                                           'md17_ethanol.npz'), **SMALL)


@pytest.mark.parametrize('content', [b'', b'hello world',
                                     b'\x93NUMPY\x01\x00'])
def test_not_an_archive(tmp_path, content):
    path = tmp_path / 'junk.npz'
    path.write_bytes(content)
    with pytest.raises(ValueError, match='junk.npz: not an .npz archive'):
        MD17Trajectories(str(tmp_path), 'ethanol', path=str(path), **SMALL)


def test_replaced_file_with_same_size_and_mtime_is_reprocessed(md17_root):
    # cp -p, tar and touch -r keep size and modification time: the cache
    # is keyed on the content (SHA-256), not on path + size + mtime
    root, R = md17_root
    path = os.path.join(root, 'ethanol', 'raw', 'md17_ethanol.npz')
    st = os.stat(path)
    old = MD17Trajectories(root, 'ethanol', **SMALL)
    write_md17(path, R + 0.5)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size
    assert os.stat(path).st_mtime_ns == st.st_mtime_ns
    new = MD17Trajectories(root, 'ethanol', **SMALL)
    assert new.processed_paths[0] != old.processed_paths[0]
    torch.testing.assert_close(new._data.pos, old._data.pos + 0.5)


def test_truncated_file_is_closed(tmp_path):
    import gc
    path = write_truncated(tmp_path)

    def message():
        try:
            MD17Trajectories(str(tmp_path), 'ethanol', **SMALL)
        except ValueError as e:
            return str(e)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        text = message()
        gc.collect()
    assert text.startswith(path) and 'truncated' in text
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, [str(w.message) for w in leaks]


@pytest.mark.parametrize('value', [np.array([True, False]), np.ones(3),
                                   np.array('yes')])
def test_standin_marker_that_is_not_a_boolean(tmp_path, value):
    path = str(tmp_path / 'ethanol' / 'raw' / 'md17_ethanol.npz')
    os.makedirs(os.path.dirname(path))
    R = trajectory()
    np.savez(path, z=ETHANOL_Z, R=R, E=np.zeros(len(R)), F=np.zeros_like(R),
             standin=value)
    with pytest.raises(ValueError, match="md17_ethanol.npz: the 'standin' "
                       "key .* must hold a single boolean"):
        MD17Trajectories(str(tmp_path), 'ethanol', **SMALL)
    with pytest.raises(ValueError, match="md17_ethanol.npz: the 'standin'"):
        md17_mod.read_trajectory(path, 'ethanol')


@pytest.mark.parametrize('scale, unit', [(0.1, 'nm'),
                                         (1 / 0.529177210903, 'bohr'),
                                         (100.0, 'pm'),
                                         (10.0, 'not in Å')])
def test_coordinates_in_another_unit_warn(tmp_path, scale, unit):
    path = write_md17(str(tmp_path / 'x.npz'), trajectory() * scale)
    with pytest.warns(UserWarning, match='shortest interatomic distance') \
            as info:
        MD17Trajectories(str(tmp_path), 'ethanol', path=path, **SMALL)
    message = next(str(w.message) for w in info
                   if 'interatomic' in str(w.message))
    assert message.startswith(path) and "'R'" in message
    assert (f'look like {unit} ' if unit != 'not in Å' else unit) in message


def test_coordinates_in_angstrom_do_not_warn(tmp_path):
    path = write_md17(str(tmp_path / 'x.npz'), trajectory())
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        MD17Trajectories(str(tmp_path), 'ethanol', path=path, **SMALL)
