import math

import pytest
import torch

from torch_geometric_remul.nn.weighting import Schedule


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
    with pytest.raises(ValueError, match="'total_steps'"):
        Schedule(total_steps=0)
    with pytest.raises(TypeError, match="'fn'"):
        Schedule(fn=3)
