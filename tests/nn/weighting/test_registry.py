import pytest
import torch

from torch_geometric_remul.nn.weighting import (
    WEIGHTINGS,
    Constant,
    GradNorm,
    Schedule,
    TargetEquivariance,
    available_weightings,
    build_weighting,
)


def test_available_weightings():
    assert available_weightings() == ['constant', 'schedule', 'gradnorm',
                                      'target']
    assert WEIGHTINGS['target'] is TargetEquivariance


@pytest.mark.parametrize('name,cls,kwargs', [
    ('constant', Constant, dict(beta=2.0)),
    ('Schedule', Schedule, dict(beta_end=2.0, total_steps=4)),
    ('gradnorm', GradNorm,
     dict(shared_parameters=torch.nn.Linear(2, 2).parameters())),
    ('target', TargetEquivariance, dict(epsilon=0.1)),
])
def test_build_every_weighting_by_name(name, cls, kwargs):
    weighting = build_weighting(name, alpha=0.5, **kwargs)
    assert type(weighting) is cls


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown weighting 'gradnrom'; "
                       "available weightings: constant, schedule"):
        build_weighting('gradnrom')
    with pytest.raises(TypeError, match="'name' must be a str"):
        build_weighting(Constant)
