import pytest
import torch

from torch_geometric_remul.nn.weighting import GradNorm


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
