import pytest
import torch

from torch_geometric_remul.group import (
    DEFAULT_GROUP,
    RigidSampler,
    RigidTransform,
)


def test_sampler_matches_rigid_transform_sample():
    s = RigidSampler('E3', translation_std=0.3,
                     generator=torch.Generator().manual_seed(4))
    T = s.sample(5, dtype=torch.float64)
    ref = RigidTransform.sample(5, 'E3', translation_std=0.3,
                                generator=torch.Generator().manual_seed(4),
                                dtype=torch.float64)
    assert torch.equal(T.rotation, ref.rotation)
    assert torch.equal(T.translation, ref.translation)
    assert RigidSampler().group == DEFAULT_GROUP == 'SO3'
    assert not RigidSampler().translates and s.translates
    assert repr(RigidSampler('SO2', axis='x')) == \
        "RigidSampler(group='SO2', axis='x')"


def test_sampler_errors():
    with pytest.raises(ValueError, match="'group' must be one of"):
        RigidSampler('SU3')
    with pytest.raises(ValueError, match="'translation_std'"):
        RigidSampler('SE3', translation_std=float('nan'))
    with pytest.raises(ValueError, match="'axis'"):
        RigidSampler('SO2', axis=(0, 0, 0))  # checked at construction
    with pytest.raises(TypeError, match="'generator'"):
        RigidSampler(generator=1)
    with pytest.raises(ValueError, match="either 'sampler' or 'group'"):
        RigidSampler.resolve(RigidSampler(), 'f', group='SE3')


def test_generator_reseeded_once_per_worker_seed(monkeypatch):
    import types

    import torch_geometric_remul.group.sampler as sampler_module
    from torch_geometric_remul.testing import assert_no_syncs, count_syncs

    def sampler():
        return RigidSampler(generator=torch.Generator().manual_seed(3))

    main = sampler().sample(4).rotation
    info = types.SimpleNamespace(seed=5)
    monkeypatch.setattr(sampler_module, 'get_worker_info', lambda: info)
    s = sampler()
    with count_syncs() as syncs:
        first = s.sample(4).rotation
        second = s.sample(4).rotation  # same worker seed: the stream goes on
    assert_no_syncs(syncs, 'RigidSampler.sample in a worker')
    assert not torch.equal(first, main)
    assert not torch.equal(first, second)
    assert torch.equal(first, sampler().sample(4).rotation)  # reproducible
    info.seed = 6  # the next epoch's worker
    assert not torch.equal(sampler().sample(4).rotation, first)


@pytest.mark.parametrize('axis', [2, 'x', (1.0, 1.0, 0.0),
                                  torch.tensor([0.0, 1.0, 0.0])])
def test_so2_construction_leaves_the_global_generator_alone(axis):
    """Building an SO2 sampler (or transform) used to draw from torch's
    global generator to check its axis, changing every later draw."""
    from torch_geometric_remul.transforms import RandomRigidTransform
    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    RigidSampler('SO2', axis=axis)
    RandomRigidTransform('SO2', axis=axis)
    assert torch.equal(torch.rand(4), expected)


def test_options_after_group_are_keyword_only():
    # the same rule as RandomRigidTransform: the group first, the rest by name
    assert RigidSampler('SE3', translation_std=2.0).translation_std == 2.0
    with pytest.raises(TypeError, match='positional'):
        RigidSampler('SE3', 2.0)
