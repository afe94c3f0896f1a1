import pytest
import torch

from torch_geometric_remul.nn.weighting import TargetEquivariance
from torch_geometric_remul.testing import assert_no_syncs, count_syncs


def feed(w, err, n):
    for _ in range(n):
        w.update(None, torch.tensor(0.0), error={
            'absolute': torch.tensor(err, dtype=torch.float64),
        'relative': torch.tensor(err / 10, dtype=torch.float64)
        })


def test_raises_above_and_lowers_below_epsilon():
    w = TargetEquivariance(epsilon=0.1, lr=0.1)
    feed(w, 0.5, 20)
    high = w.weights()[1]
    assert high > 2.0
    feed(w, 0.01, 60)
    assert w.weights()[1] < high
    # at the target the multiplier stops moving
    w2 = TargetEquivariance(epsilon=0.1, lr=0.1, momentum=0.0)
    feed(w2, 0.1, 10)
    assert abs(w2.weights()[1] - 1.0) < 1e-12


def test_relative_bounds_and_state():
    w = TargetEquivariance(epsilon=0.01, lr=1.0, relative=True,
                           beta_max=10.0)
    feed(w, 1.0, 50)  # relative error 0.1 > 0.01
    assert w.weights()[1] == pytest.approx(10.0)
    other = TargetEquivariance(epsilon=0.01, lr=1.0, relative=True,
                               beta_max=10.0)
    other.load_state_dict(w.state_dict())
    assert other.weights() == w.weights()
    with pytest.raises(ValueError, match='needs the per-batch'):
        w.update(None, torch.tensor(0.0), None)
    with pytest.raises(ValueError, match="'epsilon'"):
        TargetEquivariance(epsilon=0.0)


@pytest.mark.parametrize('kw,name', [
    (dict(alpha=-2), 'alpha'), (dict(alpha=float('inf')), 'alpha'),
    (dict(epsilon=float('inf')), 'epsilon'), (dict(lr=float('nan')), 'lr'),
    (dict(beta=float('nan')), 'beta'),
])
def test_rejects_negative_or_non_finite(kw, name):
    kw = dict(dict(epsilon=0.1), **kw)
    with pytest.raises(ValueError, match=f"'{name}' must be a finite"):
        TargetEquivariance(**kw)


def test_update_without_host_read():
    w = TargetEquivariance(epsilon=0.1, lr=0.5)
    with count_syncs() as syncs:
        for err in (0.5, 0.4):
            w.update(None, torch.tensor(0.0), error={
                'absolute': torch.tensor(err), 'relative': torch.tensor(0.)})
            alpha, beta = w.weights()
    assert_no_syncs(syncs, 'TargetEquivariance.update + weights')
    assert alpha == 1.0 and isinstance(beta, torch.Tensor)
    # first update starts the average, the second smooths it
    assert float(w.running_error) == pytest.approx(0.9 * 0.5 + 0.1 * 0.4)
    assert 'running_error=0.49' in repr(w)
