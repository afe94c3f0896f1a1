"""The mocap task on its synthetic proxy: split by clip (no test frame from
a training clip), generated once with a fixed data seed, so every run seed
sees the same clips."""
import os
import warnings

import pytest

from torch_geometric_remul.datasets import generate_mocap_proxy
from torch_geometric_remul.train import TrainConfig, task_spec
from torch_geometric_remul.train.tasks import (
    PROXY_CLIPS,
    PROXY_DATA_SEED,
    proxy_clip_files,
)

SIZES = dict(num_train=40, num_val=30, num_test=30)


def _load(tmp_path, seed, split):
    config = TrainConfig(task='mocap', source='proxy', seed=seed,
                         data_root=str(tmp_path), **SIZES).resolved()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "synthetic proxy" warning
        return task_spec(config).load(split)


def test_proxy_clip_files_partition_the_clips():
    files = proxy_clip_files()
    assert list(files) == [split for split, _ in PROXY_CLIPS]
    names = [f for split in files.values() for f in split]
    assert len(names) == len(set(names)) == sum(n for _, n in PROXY_CLIPS)
    assert [len(files[s]) for s, _ in PROXY_CLIPS] == \
        [n for _, n in PROXY_CLIPS]


def test_proxy_splits_by_clip(tmp_path):
    clips = {}
    for split in ('train', 'val', 'test'):
        ds = _load(tmp_path, 0, split)
        assert ds.is_synthetic_proxy
        assert len(ds) == SIZES[f'num_{split}']
        clips[split] = {os.path.basename(ds.files[int(g.clip)]) for g in ds}
        # every sample of a split comes from that split's clips
        assert clips[split] <= set(proxy_clip_files()[split])
    assert not clips['train'] & clips['test']
    assert not clips['train'] & clips['val']
    assert not clips['val'] & clips['test']
    # the run seed redraws the samples, not the clips
    other = _load(tmp_path, 3, 'test')
    assert {os.path.basename(other.files[int(g.clip)]) for g in other} <= \
        set(proxy_clip_files()['test'])
    frames = [int(g.frame) for g in _load(tmp_path, 0, 'test')]
    assert frames != [int(g.frame) for g in other]


def test_proxy_data_do_not_depend_on_the_first_run_seed(tmp_path):
    _load(tmp_path / 'a', 5, 'train')  # a first run with seed 5 makes it
    raw = tmp_path / 'a' / 'mocap-proxy-by-clip' / 'raw'
    asf, amcs = generate_mocap_proxy(str(tmp_path / 'ref'),
                                     num_clips=len(os.listdir(raw)) - 1,
                                     seed=PROXY_DATA_SEED)
    for path in [asf] + amcs:
        with open(path, 'rb') as f, \
                open(raw / os.path.basename(path), 'rb') as g:
            assert f.read() == g.read()


def test_proxy_regenerates_only_missing_clips(tmp_path):
    _load(tmp_path, 0, 'train')
    raw = tmp_path / 'mocap-proxy-by-clip' / 'raw'
    kept = raw / proxy_clip_files()['train'][0]
    before = kept.read_bytes()
    gone = raw / proxy_clip_files()['test'][-1]
    gone.unlink()
    ds = _load(tmp_path, 1, 'test')
    assert gone.is_file() and kept.read_bytes() == before
    assert len(ds) == SIZES['num_test']


@pytest.mark.parametrize('split', ['val', 'test'])
def test_proxy_split_too_large_for_its_clips(tmp_path, split):
    config = TrainConfig(task='mocap', source='proxy',
                         data_root=str(tmp_path),
                         **dict(SIZES, **{f'num_{split}': 5000})).resolved()
    with warnings.catch_warnings(), pytest.raises(ValueError,
                                                  match='start frames'):
        warnings.simplefilter('ignore')
        task_spec(config).load(split)


def test_gmn_source_reads_the_split_file_beside_the_clips(tmp_path):
    import json

    from torch_geometric_remul.train.tasks import GMN_SPLIT_FILE
    raw = tmp_path / 'mocap' / 'raw'
    generate_mocap_proxy(str(raw), num_clips=4, num_frames=45, seed=0)
    with open(raw / GMN_SPLIT_FILE, 'w') as f:
        json.dump({'train': {'2': [3, 1, 4], '0': [5, 9]},
                   'val': {'1': [2, 6]}, 'test': {'3': [0]}}, f)
    config = TrainConfig(task='mocap', source='gmn', data_root=str(tmp_path),
                         num_train=4, num_val=2, num_test=1).resolved()
    spec = task_spec(config)
    assert 'GMN split' in spec.description
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "synthetic proxy" warning
        train = spec.load('train')
    assert train.gmn_samples() == [(0, 5), (0, 9), (2, 3), (2, 1)]
    # centred per graph, like the task's other sources
    assert float(train[0].pos.mean(0).abs().max()) < 1e-5
