import math

import pytest
import torch

from torch_geometric_remul import debug
from torch_geometric_remul.nn.weighting import Schedule
from torch_geometric_remul.testing import assert_no_syncs, count_syncs


def run(s, steps):
    for _ in range(steps):
        s.update(None, torch.tensor(0.0))


def test_linear_and_cosine_ramps():
    lin = Schedule(beta_end=2.0, total_steps=10, beta_start=0.0)
    cos = Schedule(beta_end=2.0, total_steps=10, kind='cosine')
    seen = []
    for step in range(12):
        a, b = lin.weights()
        assert a == 1.0 and abs(b - 2.0 * min(step / 10, 1)) < 1e-12
        _, c = cos.weights()
        frac = min(step / 10, 1)
        assert abs(c - 2.0 * 0.5 * (1 - math.cos(math.pi * frac))) < 1e-12
        seen.append(b)
        run(lin, 1)
        run(cos, 1)
    assert seen == sorted(seen)


def test_callable_and_state_dict():
    s = Schedule(fn=lambda step: (1.0 / (1 + step), 0.1 * step))
    run(s, 3)
    assert s.weights() == (0.25, 0.1 * 3)
    t = Schedule(fn=lambda step: 0.1 * step)
    t.load_state_dict(s.state_dict())
    assert t.weights() == (1.0, 0.1 * 3)


def test_bad_args():
    with pytest.raises(ValueError, match="'kind'"):
        Schedule(kind='step')
    with pytest.raises(ValueError, match="'total_steps' must be >= 1"):
        Schedule(total_steps=0)
    with pytest.raises(TypeError, match="'total_steps' must be an integer"):
        Schedule(total_steps=10.0)
    with pytest.raises(TypeError, match="'fn'"):
        Schedule(fn=3)


@pytest.mark.parametrize('kw,name', [
    (dict(beta_end=-5), 'beta_end'), (dict(alpha=-1), 'alpha'),
    (dict(beta_start=float('nan')), 'beta_start'),
    (dict(beta_end=float('inf')), 'beta_end'),
])
def test_rejects_negative_or_non_finite_weights(kw, name):
    with pytest.raises(ValueError, match=f"'{name}' must be a finite number"):
        Schedule(**kw)


def test_fn_results_are_validated():
    s = Schedule(fn=lambda step: -0.5 * step)
    assert s.weights() == (1.0, 0.0)
    run(s, 1)
    with pytest.raises(ValueError, match="the beta that 'fn' returned at "
                       "step 1 must be a finite number >= 0"):
        s.weights()
    pair = Schedule(fn=lambda step: (float('nan'), 1.0))
    with pytest.raises(ValueError, match="the alpha that 'fn' returned"):
        pair.weights()
    with pytest.raises(ValueError, match="beta or \\(alpha, beta\\)"):
        Schedule(fn=lambda step: (1.0, 2.0, 3.0)).weights()


def test_fn_tensor_results_checked_in_debug_mode_only():
    s = Schedule(fn=lambda step: torch.tensor(-1.0))
    with count_syncs() as syncs:
        alpha, beta = s.weights()
    assert_no_syncs(syncs, 'Schedule.weights with a tensor-valued fn')
    assert alpha == 1.0 and beta.shape == ()
    with debug(), pytest.raises(ValueError, match="'fn' returned at step 0 "
                                "must be a finite number >= 0"):
        s.weights()
    with pytest.raises(ValueError, match='floating-point scalar'):
        Schedule(fn=lambda step: torch.ones(2)).weights()


def test_step_counter_on_host_and_restored():
    s = Schedule(beta_end=1.0, total_steps=10)
    with count_syncs() as syncs:
        for _ in range(4):
            s.update(None, torch.tensor(0.0))
            s.weights()
    assert_no_syncs(syncs, 'Schedule.update/weights')
    assert int(s.step) == 4 and s.weights() == (1.0, 0.4)
    t = Schedule(beta_end=1.0, total_steps=10)
    t.load_state_dict(s.state_dict())
    assert t.weights() == (1.0, 0.4)
