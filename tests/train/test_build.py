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


def test_build_optimizer_is_fused_adam_with_the_same_update():
    """``build_optimizer``: Adam with the run's rate and weight decay, on
    its fused kernel where every parameter has one; the same parameters
    as the default implementation after several steps, up to float
    rounding, and no host read in its step (unlike the default CPU
    Adam, which reads its step counter)."""
    from torch_geometric_remul.testing import count_syncs
    from torch_geometric_remul.train.build import build_optimizer
    config = TrainConfig(lr=1e-2, weight_decay=1e-3).resolved()
    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
                                torch.nn.Linear(8, 2)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    start = [p.detach().clone() for p in nets[0].parameters()]
    fused = build_optimizer(config, nets[0])
    assert fused.defaults['fused'] is True
    assert fused.defaults['lr'] == 1e-2
    assert fused.defaults['weight_decay'] == 1e-3
    reference = torch.optim.Adam(nets[1].parameters(), lr=1e-2,
                                 weight_decay=1e-3, foreach=False)
    x = torch.randn(16, 4)
    for step in range(20):
        for net, opt in zip(nets, (fused, reference)):
            opt.zero_grad()
            net(x).pow(2).sum().backward()
            if step == 19 and opt is fused:
                with count_syncs() as syncs:
                    opt.step()
                assert syncs.count == 0
            else:
                opt.step()
    for a, b, a0 in zip(nets[0].parameters(), nets[1].parameters(), start):
        assert (a - a0).abs().max() > 1e-2  # both trained
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_build_optimizer_falls_back_where_no_fused_kernel_exists():
    """Parameters on a device without a fused Adam kernel (``meta``) or
    not yet built get the default Adam, not an error at the first
    step."""
    from torch_geometric_remul.train.build import build_optimizer
    config = TrainConfig(lr=1e-3).resolved()
    meta = torch.nn.Linear(3, 3, device='meta')
    assert not build_optimizer(config, meta).defaults['fused']
    lazy = torch.nn.LazyLinear(3)
    assert not build_optimizer(config, lazy).defaults['fused']
    assert build_optimizer(config, torch.nn.Linear(3, 3)).defaults['fused']
