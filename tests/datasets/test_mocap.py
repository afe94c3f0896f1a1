import json
import os

import numpy as np
import pytest
import torch

import torch_geometric_remul.datasets.mocap as mocap_mod
from torch_geometric_remul.datasets import (
    MotionCapture,
    asf_amc_positions,
    generate_mocap_proxy,
    read_gmn_split,
)

SMALL = dict(delta_frame=10, num_train=12, num_val=6, num_test=6)


@pytest.fixture
def proxy_root(tmp_path):
    asf, amcs = generate_mocap_proxy(str(tmp_path / 'raw'), num_clips=3,
                                     num_frames=40, seed=1)
    return str(tmp_path), asf, amcs


def load(root, **kw):
    with pytest.warns(UserWarning, match='synthetic proxy'):
        return MotionCapture(root, **{**SMALL, **kw})


def check_sample(data, X, t: int, horizon: int = 10) -> None:
    """``data`` is the sample of clip positions ``X`` [frames, joints, 3]
    at frame ``t``: positions, velocity to the next frame and positions
    ``horizon`` frames later, in float32."""
    torch.testing.assert_close(data.pos, torch.tensor(
        X[t], dtype=torch.float32))
    torch.testing.assert_close(data.vel, torch.tensor(
        X[t + 1] - X[t], dtype=torch.float32))
    torch.testing.assert_close(data.y, torch.tensor(
        X[t + horizon], dtype=torch.float32))


def test_attributes_and_labels(proxy_root):
    root, asf, amcs = proxy_root
    ds = load(root)
    assert ds.is_synthetic_proxy and 'synthetic proxy' in repr(ds)
    assert 'proxy' in os.path.basename(ds.processed_paths[0])
    assert len(ds) == 12 and len(ds.joint_names) == 19
    d = ds[0]
    assert set(d.keys()) == {'pos', 'vel', 'y', 'edge_index', 'joint',
                             'clip', 'frame'}
    assert d.pos.shape == d.vel.shape == d.y.shape == (19, 3)
    assert d.pos.dtype == torch.float32 and d.joint.dtype == torch.long
    assert d.edge_index.shape == (2, 36)
    edges = set(map(tuple, d.edge_index.t().tolist()))
    assert all((j, i) in edges for i, j in edges)  # both directions
    clips = {p: asf_amc_positions(asf, p).positions for p in amcs}
    parents = asf_amc_positions(asf, amcs[0]).parents
    assert edges == {(p, c) for c, p in enumerate(parents) if p >= 0} | {
        (c, p) for c, p in enumerate(parents) if p >= 0}
    for data in ds:
        t = int(data.frame)
        assert 0 <= t < 40 - 10
        check_sample(data, clips[ds.files[int(data.clip)]], t)


def test_pooled_splits_disjoint(proxy_root):
    root, _, _ = proxy_root
    seen = {}
    for split, n in (('train', 12), ('val', 6), ('test', 6)):
        ds = load(root, split=split)
        assert len(ds) == n
        seen[split] = set(zip(ds._data.clip.tolist(),
                              ds._data.frame.tolist()))
        assert len(seen[split]) == n
    assert not (seen['train'] & seen['val'] or seen['train'] & seen['test']
                or seen['val'] & seen['test'])


def test_split_by_clip(proxy_root):
    root, _, amcs = proxy_root
    names = [os.path.basename(p) for p in amcs]
    files = {'train': names[:2], 'val': names[2:], 'test': names[2:]}
    tr = load(root, files=files)
    va = load(root, split='val', files=files)
    assert set(tr._data.clip.tolist()) <= {0, 1}
    assert set(va._data.clip.tolist()) == {2}
    with pytest.raises(ValueError, match='dict'):
        MotionCapture(root, split='test', files={'train': names}, **SMALL)


def test_cache_reused_and_invalidated(proxy_root, monkeypatch):
    root, _, _ = proxy_root
    ds = load(root)

    def boom(*args, **kwargs):
        raise AssertionError('read again although cached')

    monkeypatch.setattr(mocap_mod, 'asf_amc_positions', boom)
    again = load(root)
    torch.testing.assert_close(again._data.pos, ds._data.pos)
    assert again.joint_names == ds.joint_names
    for change in ({'delta_frame': 9}, {'seed': 3}, {'num_train': 11}):
        with pytest.warns(UserWarning), pytest.raises(AssertionError):
            MotionCapture(root, **{**SMALL, **change})
    monkeypatch.undo()
    generate_mocap_proxy(os.path.join(root, 'raw'), num_clips=3,
                         num_frames=41, seed=1)  # files change
    monkeypatch.setattr(mocap_mod, 'asf_amc_positions', boom)
    with pytest.warns(UserWarning), pytest.raises(AssertionError):
        MotionCapture(root, **SMALL)


BVH_HEAD = """HIERARCHY
ROOT hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT spine
  {
    OFFSET 0 2 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 1 0
    }
  }
}
MOTION
"""


def test_bvh_dataset(tmp_path):
    raw = tmp_path / 'raw'
    raw.mkdir()
    T = 25
    t = np.arange(T)
    rows = np.zeros((T, 9))
    rows[:, 2] = 0.1 * t  # walk along z
    rows[:, 6] = 20 * np.sin(t / 3)  # spine rotation
    text = BVH_HEAD + f'Frames: {T}\nFrame Time: 0.01\n' + '\n'.join(
        ' '.join(f'{v:.6f}' for v in r) for r in rows) + '\n'
    (raw / 'walk.bvh').write_text(text)
    ds = MotionCapture(str(tmp_path), delta_frame=5, num_train=10,
                       num_val=2, num_test=2)
    assert not ds.is_synthetic_proxy
    d = ds[0]
    assert d.pos.shape == (3, 3) and d.edge_index.shape == (2, 4)
    assert ds.joint_names == ['hips', 'spine', 'spine_end']
    t0 = int(d.frame)
    torch.testing.assert_close(d.y[0], torch.tensor(
        [0.0, 0.0, 0.1 * (t0 + 5)]))
    with pytest.raises(ValueError, match='start frames'):
        MotionCapture(str(tmp_path), delta_frame=5, num_train=20,
                      num_val=2, num_test=2)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        MotionCapture(str(tmp_path))
    msg = str(info.value)
    assert os.path.join(str(tmp_path), 'raw') in msg
    assert 'mocap.cs.cmu.edu' in msg and '35.asf' in msg
    assert 'generate_mocap_proxy' in msg
    raw = tmp_path / 'raw'
    raw.mkdir()
    (raw / '35_01.amc').write_text('1\nroot 0 0 0 0 0 0\n')
    with pytest.raises(FileNotFoundError, match='no .asf file'):
        MotionCapture(str(tmp_path))
    with pytest.raises(FileNotFoundError, match='35_02.amc'):
        MotionCapture(str(tmp_path), files=['35_02.amc'])


def test_malformed_clip_surfaces(proxy_root):
    root, asf, amcs = proxy_root
    with open(amcs[1], 'a') as f:
        f.write('41\nroot 0 0 0\n')
    with pytest.warns(UserWarning), pytest.raises(
            ValueError, match=r'synthetic_proxy_walk_02.amc: line \d+'):
        MotionCapture(root, **SMALL)


def test_several_skeletons(proxy_root):
    root, asf, _ = proxy_root
    with open(asf) as f, open(os.path.join(root, 'raw', 'other.asf'),
                              'w') as g:
        g.write(f.read())
    with pytest.raises(ValueError, match='several skeletons'):
        MotionCapture(root, **SMALL)
    with pytest.warns(UserWarning, match='synthetic proxy'):
        MotionCapture(root, skeleton=os.path.basename(asf), **SMALL)


# GMN protocol ###############################################################

def write_split(path, split):
    with open(path, 'w') as f:
        json.dump({k: {str(c): v for c, v in cases.items()}
                   for k, cases in split.items()}, f)
    return str(path)


GMN_SPLIT = {'train': {1: [5, 1, 3], 0: [2, 0, 4]}, 'val': {2: [0, 28, 7]},
             'test': {3: [6, 2, 9]}}
GMN_SIZES = dict(delta_frame=10, num_train=4, num_val=2, num_test=3)


@pytest.fixture
def gmn_root(tmp_path):
    asf, amcs = generate_mocap_proxy(str(tmp_path / 'raw'), num_clips=4,
                                     num_frames=40, seed=2)
    write_split(tmp_path / 'raw' / 'split.json', GMN_SPLIT)
    return str(tmp_path), asf, amcs


def load_gmn(root, **kw):
    with pytest.warns(UserWarning, match='synthetic proxy'):
        return MotionCapture(root, gmn_split='split.json',
                             **{**GMN_SIZES, **kw})


def test_gmn_samples_follow_the_split_file(gmn_root):
    root, asf, amcs = gmn_root
    clips = [asf_amc_positions(asf, p).positions for p in amcs]
    expected = {'train': [(0, 2), (0, 0), (1, 5), (1, 1)],  # 4 // 2 cases
                'val': [(2, 0), (2, 28)], 'test': [(3, 6), (3, 2), (3, 9)]}
    for split, pairs in expected.items():
        ds = load_gmn(root, split=split)
        assert 'GMN split' in repr(ds)
        assert ds.gmn_samples() == pairs
        got = list(zip(ds._data.clip.tolist(), ds._data.frame.tolist()))
        assert got == pairs  # dataset order: cases by id, file order
        for data, (c, t) in zip(ds, pairs):
            check_sample(data, clips[c], t)
    # the seed plays no part; the split file's content does
    a = load_gmn(root, seed=0)
    b = load_gmn(root, seed=5)
    assert torch.equal(a._data.frame, b._data.frame)
    assert a.processed_paths == b.processed_paths  # one cache for all seeds
    write_split(os.path.join(root, 'raw', 'split.json'),
                {**GMN_SPLIT, 'train': {1: [7, 1], 0: [2, 0]}})
    c = load_gmn(root)
    assert c.gmn_samples() == [(0, 2), (0, 0), (1, 7), (1, 1)]


def test_gmn_last_frame_only_serves_the_velocity(gmn_root):
    root, _, _ = gmn_root
    # 40 frames, delta 10: t = 28 is the last start (X truncated to 39)
    ds = load_gmn(root, split='val')
    assert ds.gmn_samples()[-1] == (2, 28)
    write_split(os.path.join(root, 'raw', 'split.json'),
                {**GMN_SPLIT, 'val': {2: [29]}})
    with pytest.warns(UserWarning), pytest.raises(
            ValueError, match=r'start frame 29 of case 2 .*_03\.amc'):
        MotionCapture(root, split='val', gmn_split='split.json',
                      **{**GMN_SIZES, 'num_val': 1})


def test_gmn_errors(gmn_root, tmp_path):
    root, _, amcs = gmn_root
    with pytest.warns(UserWarning), pytest.raises(
            ValueError, match=r'7 // 1 cases = 7 start frames per case'):
        MotionCapture(root, split='test', gmn_split='split.json',
                      **{**GMN_SIZES, 'num_test': 7})
    with pytest.raises(ValueError, match=r'case ids \[3\].*only 3 clips'):
        MotionCapture(root, split='test', gmn_split='split.json',
                      files=[os.path.basename(p) for p in amcs[:3]],
                      **GMN_SIZES)
    with pytest.raises(ValueError, match="'files' must be a list"):
        MotionCapture(root, gmn_split='split.json',
                      files={'train': amcs}, **GMN_SIZES)
    with pytest.raises(FileNotFoundError, match='no_such.json'):
        MotionCapture(root, gmn_split='no_such.json', **GMN_SIZES)
    bad = {'nonsense.json': '{"train": {}',
           'keys.json': '{"train": {"0": [1]}, "val": {"1": [1]}}',
           'case.json': ('{"train": {"a": [1]}, "val": {"1": [1]}, '
                         '"test": {"2": [1]}}'),
           'frames.json': ('{"train": {"0": [1.5]}, "val": {"1": [1]}, '
                           '"test": {"2": [1]}}'),
           'twice.json': ('{"train": {"0": [1]}, "val": {"0": [1]}, '
                          '"test": {"2": [1]}}')}
    messages = {'nonsense.json': 'not a JSON', 'keys.json': 'keys',
                'case.json': "case id 'a'", 'frames.json': 'start frames',
                'twice.json': "both 'train' and 'val'"}
    for name, text in bad.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(ValueError, match=messages[name]) as info:
            read_gmn_split(str(path))
        assert name in str(info.value)


#: The real CMU subject 35 files and GMN's split (read-only; the tests skip
#: when they are absent). ``REMUL_CMU_DIR`` overrides the place.
CMU_DIR = os.environ.get('REMUL_CMU_DIR', os.path.join(
    os.path.dirname(__file__), '..', '..', '..', 'shared', 'data',
    'cmu_mocap'))


@pytest.mark.skipif(not os.path.isfile(os.path.join(
    CMU_DIR, 'gmn_motion_split.json')), reason='real CMU data absent')
def test_gmn_protocol_on_the_real_files(tmp_path):
    raw = tmp_path / 'raw'
    raw.mkdir()
    sub = os.path.join(CMU_DIR, 'subject35')
    names = sorted(os.listdir(sub))
    for name in names + ['../gmn_motion_split.json']:
        os.symlink(os.path.abspath(os.path.join(sub, name)),
                   raw / os.path.basename(name))
    amcs = [n for n in names if n.endswith('.amc')]
    assert len(amcs) == 23
    split = read_gmn_split(str(raw / 'gmn_motion_split.json'))
    first = {}
    for name, size in (('train', 198), ('val', 600), ('test', 600)):
        ds = MotionCapture(str(tmp_path), split=name,
                           gmn_split='gmn_motion_split.json')
        assert len(ds) == size and not ds.is_synthetic_proxy
        assert ds[0].pos.shape == (31, 3)
        first[name] = (ds.files[int(ds[0].clip)], int(ds[0].frame))
        c0 = min(split[name])
        assert int(ds[0].clip) == c0 and int(ds[0].frame) == split[name][c0][0]
        if name == 'train':
            X = asf_amc_positions(str(raw / '35.asf'),
                                  str(raw / '35_02.amc')).positions
            torch.testing.assert_close(ds[0].y, torch.tensor(
                X[228 + 30], dtype=torch.float32))
    assert {k: (os.path.basename(p), t) for k, (p, t) in first.items()} == {
        'train': ('35_02.amc', 228), 'val': ('35_04.amc', 239),
        'test': ('35_01.amc', 115)}
