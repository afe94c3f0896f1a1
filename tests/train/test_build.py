import pytest
import torch

from torch_geometric_remul.nn.weighting import (
    Constant,
    GradNorm,
    Schedule,
    TargetEquivariance,
    available_weightings,
)
from torch_geometric_remul.train import TrainConfig, build_loss, task_spec
from torch_geometric_remul.train import build as build_module
from torch_geometric_remul.train.config import WEIGHTINGS


def test_weightings_come_from_the_registry():
    # one registry, as for models: the configuration's choices, the CLI's
    # and the options train/build.py passes are the registry's names
    assert list(WEIGHTINGS) == available_weightings()
    assert list(build_module.WEIGHTING_OPTIONS) == available_weightings()


@pytest.mark.parametrize('name,cls', [
    ('constant', Constant), ('schedule', Schedule), ('gradnorm', GradNorm),
    ('target', TargetEquivariance)])
def test_build_loss_builds_each_weighting_from_the_config(name, cls):
    config = TrainConfig(loss='remul', weighting=name, alpha=0.5, beta=3.0,
                         epsilon=0.2, epochs=4).resolved()
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 3))
    loss = build_loss(config, task_spec(config), model, steps_per_epoch=5)
    weighting = loss.weighting
    assert type(weighting) is cls
    if name == 'schedule':  # beta rises over the first half of the run
        assert weighting.beta_end == 3.0 and weighting.total_steps == 10
    elif name == 'gradnorm':  # balanced on the model's output layer
        assert [p.shape for p in weighting._shared] == \
            [torch.Size([3, 4]), torch.Size([3])]
    elif name == 'target':
        assert weighting.epsilon == 0.2 and weighting.alpha == 0.5
    else:
        assert (weighting.alpha, weighting.beta) == (0.5, 3.0)


def test_augment_and_plain():
    config = TrainConfig(loss='augment').resolved()
    loss = build_loss(config, task_spec(config), torch.nn.Linear(3, 3), 5)
    assert (loss.weighting.alpha, loss.weighting.beta) == (0.0, 1.0)
    config = TrainConfig(loss='plain').resolved()
    assert build_loss(config, task_spec(config), torch.nn.Linear(3, 3),
                      5) is None
