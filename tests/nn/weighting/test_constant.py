import pytest

from torch_geometric_remul.nn.weighting import Constant


def test_constant():
    w = Constant(0.5, 3.0)
    assert w.weights() == (0.5, 3.0)
    w.update(None, None)
    assert w.weights() == (0.5, 3.0)
    assert 'alpha=0.5' in repr(w)
    with pytest.raises(ValueError, match="'beta'"):
        Constant(1.0, -1.0)


@pytest.mark.parametrize('kw', [dict(alpha=float('nan')),
                                dict(beta=float('inf')), dict(alpha=-0.5),
                                dict(beta='1')])
def test_rejects_non_finite_and_negative(kw):
    name = next(iter(kw))
    with pytest.raises(ValueError, match=f"'{name}'"):
        Constant(**kw)
