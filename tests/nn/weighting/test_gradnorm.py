import pytest
import torch

from torch_geometric_remul.nn.weighting import GradNorm
from torch_geometric_remul.testing import assert_no_syncs, count_syncs


def test_moves_toward_balanced_gradient_norms():
    # Two losses through one shared layer, one with 20x larger gradients.
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 1, bias=False)
    x = torch.randn(64, 4)
    y1, y2 = torch.randn(64, 1), torch.randn(64, 1)
    gn = GradNorm(layer.parameters(), asymmetry=0.0, lr=0.05)

    def losses():
        out = layer(x)
        return ((out - y1)**2).mean(), 20.0 * ((out - y2)**2).mean()

    def weighted_ratio():
        l1, l2 = losses()
        g1 = torch.autograd.grad(l1, layer.weight, retain_graph=True)[0].norm()
        g2 = torch.autograd.grad(l2, layer.weight)[0].norm()
        a, b = gn.weights()
        return (b * g2 / (a * g1)).item()

    before = weighted_ratio()
    for _ in range(60):
        gn.update(*losses())
    after = weighted_ratio()
    a, b = gn.weights()
    assert abs(a + b - 2.0) < 1e-9
    assert before > 10
    assert abs(after - 1.0) < 0.25 * abs(before - 1.0)
    assert b < a  # the loss with large gradients was down-weighted
    assert torch.isfinite(gn.grad_norms).all()


def test_state_dict_roundtrip_and_errors():
    layer = torch.nn.Linear(2, 1)
    gn = GradNorm(layer.parameters())
    out = layer(torch.randn(5, 2))
    gn.update((out**2).mean(), (out.abs()).mean())
    other = GradNorm(torch.nn.Linear(2, 1).parameters())
    other.load_state_dict(gn.state_dict())
    assert other.weights() == gn.weights()
    with pytest.raises(ValueError, match="'shared_parameters'"):
        GradNorm([])
    with pytest.raises(ValueError, match='needs the task loss'):
        gn.update(None, (out**2).mean())
    with pytest.raises(ValueError, match='does not depend'):
        GradNorm(torch.nn.Linear(2, 1).parameters()).update(
            (out**2).mean(), (out**2).mean())
    with pytest.raises(ValueError, match='autograd graph'):
        gn.update(torch.tensor(1.0), torch.tensor(1.0))


@pytest.mark.parametrize('kw,name', [
    (dict(alpha=float('inf')), 'alpha'), (dict(beta=float('nan')), 'beta'),
    (dict(alpha=-1.0), 'alpha'), (dict(lr=float('inf')), 'lr'),
    (dict(asymmetry=float('nan')), 'asymmetry'),
])
def test_rejects_non_finite_or_negative_arguments(kw, name):
    with pytest.raises(ValueError, match=f"'{name}' must be a finite"):
        GradNorm(torch.nn.Linear(2, 1).parameters(), **kw)


def test_state_on_device_and_update_without_host_read():
    layer = torch.nn.Linear(3, 1)
    gn = GradNorm(layer.parameters(), lr=0.1)
    x = torch.randn(8, 3)
    for _ in range(2):  # the first update records the initial losses
        out = layer(x)
        with count_syncs() as syncs:
            alpha, beta = gn.weights()
            gn.update((out**2).mean(), 3 * out.abs().mean())
        assert_no_syncs(syncs, 'GradNorm.weights + update')
    # weights are 0-dim tensors, copies: the update did not change them
    assert isinstance(alpha, torch.Tensor) and alpha.shape == ()
    a2, b2 = gn.weights()
    assert (float(alpha), float(beta)) != (float(a2), float(b2))
    assert torch.isfinite(gn.initial_losses).all()
