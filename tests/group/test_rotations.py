import math

import pytest
import torch
from scipy import stats

from torch_geometric_remul.group import (
    axis_angle_to_matrix,
    euler_to_matrix,
    quaternion_to_matrix,
    random_rotations,
    rotation_angle,
)

EYE64 = torch.eye(3, dtype=torch.float64)


@pytest.mark.parametrize('group', ['SO3', 'O3', 'SO2'])
@pytest.mark.parametrize('dtype,tol', [(torch.float64, 1e-10),
                                       (torch.float32, 1e-5)])
def test_orthonormal(group, dtype, tol):
    g = torch.Generator().manual_seed(1)
    R = random_rotations(500, group, generator=g, dtype=dtype)
    assert R.shape == (500, 3, 3) and R.dtype == dtype
    eye = EYE64.to(dtype).expand(500, 3, 3)
    assert torch.allclose(R @ R.transpose(1, 2), eye, atol=tol)
    det = torch.linalg.det(R)
    assert torch.allclose(det.abs(), torch.ones_like(det), atol=tol)
    if group == 'O3':
        # both components of O(3) appear, about half each
        frac = (det < 0).double().mean().item()
        assert 0.4 < frac < 0.6
    else:
        assert (det > 0).all()


def test_haar_angle_distribution():
    # Under the Haar measure the angle has CDF (theta - sin theta) / pi.
    g = torch.Generator().manual_seed(1234)
    R = random_rotations(20000, 'SO3', generator=g, dtype=torch.float64)
    theta = rotation_angle(R).numpy()
    cdf = lambda x: (x - __import__('numpy').sin(x)) / math.pi  # noqa: E731
    result = stats.kstest(theta, cdf)
    assert result.pvalue > 0.01
    # The test has power: per-axis uniform Euler angles (PyG RandomRotate)
    # are rejected.
    ang = torch.rand(3, 20000, generator=g, dtype=torch.float64)
    ang = ang * 2 * math.pi - math.pi
    E = (axis_angle_to_matrix('x', ang[0]) @ axis_angle_to_matrix('y', ang[1])
         @ axis_angle_to_matrix('z', ang[2]))
    assert stats.kstest(rotation_angle(E).numpy(), cdf).pvalue < 1e-6


def test_haar_axis_isotropic():
    # The image of a fixed vector is uniform on the sphere: mean ~ 0 and
    # second moment ~ I / 3.
    g = torch.Generator().manual_seed(7)
    R = random_rotations(40000, 'SO3', generator=g, dtype=torch.float64)
    v = R[:, :, 0]
    assert v.mean(0).abs().max() < 0.02
    cov = v.t() @ v / v.size(0)
    assert torch.allclose(cov, EYE64 / 3, atol=0.01)


def test_so2_axis():
    g = torch.Generator().manual_seed(0)
    for axis, idx in [(0, 0), ('y', 1), ('z', 2)]:
        R = random_rotations(50, 'SO2', axis=axis, generator=g,
                             dtype=torch.float64)
        e = EYE64[idx]
        assert torch.allclose(R @ e, e.expand(50, 3), atol=1e-12)
    axis = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
    R = random_rotations(50, 'SO2', axis=axis, generator=g,
                         dtype=torch.float64)
    u = axis / axis.norm()
    assert torch.allclose(R @ u, u.expand(50, 3), atol=1e-12)
    # angles cover the circle
    assert rotation_angle(R).max() > 3.0


def test_seed_reproducible_and_dtype_independent():
    a = random_rotations(10, generator=torch.Generator().manual_seed(3),
                         dtype=torch.float64)
    b = random_rotations(10, generator=torch.Generator().manual_seed(3),
                         dtype=torch.float64)
    c = random_rotations(10, generator=torch.Generator().manual_seed(3),
                         dtype=torch.float32)
    assert torch.equal(a, b)
    assert torch.allclose(a.float(), c, atol=1e-7)
    d = random_rotations(10, generator=torch.Generator().manual_seed(4),
                         dtype=torch.float64)
    assert not torch.allclose(a, d)


def test_quaternion_to_matrix_known():
    half = math.sqrt(0.5)
    # 90 degrees about z maps x to y
    q = torch.tensor([half, 0, 0, half], dtype=torch.float64)
    R = quaternion_to_matrix(q)
    assert torch.allclose(R @ EYE64[0], EYE64[1], atol=1e-12)
    # q and -q are the same rotation; scaling does not matter
    assert torch.allclose(quaternion_to_matrix(-3 * q), R, atol=1e-12)


def test_axis_angle_matches_quaternion():
    angle = torch.tensor([0.3, -1.2, 2.5], dtype=torch.float64)
    R = axis_angle_to_matrix('x', angle)
    q = torch.stack([torch.cos(angle / 2), torch.sin(angle / 2),
                     torch.zeros(3, dtype=torch.float64),
                     torch.zeros(3, dtype=torch.float64)], -1)
    assert torch.allclose(R, quaternion_to_matrix(q), atol=1e-12)
    assert torch.allclose(rotation_angle(R), angle.abs(), atol=1e-10)


@pytest.mark.parametrize('kwargs,exc,match', [
    (dict(n=-1), ValueError, "'n' must be >= 0"),
    # one integer check in the package: TypeError for a non-integer
    (dict(n=2.5), TypeError, "'n' must be an integer"),
    (dict(n=True), TypeError, "'n' must be an integer"),
    (dict(n=2, group='SE4'), ValueError, "'group' must be one of"),
    (dict(n=2, group='SE3'), ValueError, "'group' must be one of"),
    (dict(n=2, group='SO2', axis=3), ValueError, "'axis'"),
    (dict(n=2, group='SO2', axis='w'), ValueError, "'axis'"),
    (dict(n=2, group='SO2', axis=[0.0, 0.0, 0.0]), ValueError, "'axis'"),
    (dict(n=2, group='SO2', axis=[1.0, 0.0]), ValueError, "'axis'"),
    (dict(n=2, dtype=torch.long), TypeError, "'dtype'"),
])
def test_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        random_rotations(**kwargs)


def test_quaternion_bad_shape():
    with pytest.raises(ValueError, match=r"\[\.\.\., 4\]"):
        quaternion_to_matrix(torch.zeros(3, 3))


def test_empty_and_lowercase_group():
    assert random_rotations(0).shape == (0, 3, 3)
    assert random_rotations(2, 'so3').shape == (2, 3, 3)


# Euler angles ###############################################################

def _angles(T=7, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, k, generator=g, dtype=torch.float64) * 2 - 1) \
        * math.pi


@pytest.mark.parametrize('axes', ['xyz', 'ZXY', 'zxz', 'yx', 'z'])
def test_euler_matches_explicit_products(axes):
    a = _angles(k=len(axes))
    Rs = [axis_angle_to_matrix(c.lower(), a[:, i])
          for i, c in enumerate(axes)]
    extrinsic = EYE64.expand(a.size(0), 3, 3)
    intrinsic = EYE64.expand(a.size(0), 3, 3)
    for R in Rs:
        extrinsic = R @ extrinsic  # the first listed rotation acts first
        intrinsic = intrinsic @ R
    assert torch.allclose(euler_to_matrix(a, axes), extrinsic, atol=1e-14)
    assert torch.allclose(euler_to_matrix(a, axes, intrinsic=True),
                          intrinsic, atol=1e-14)


def test_euler_known_rotation_order():
    # 90 degrees about z, then 90 degrees about the fixed x axis
    a = torch.tensor([[math.pi / 2, math.pi / 2]], dtype=torch.float64)
    e = EYE64
    assert torch.allclose(euler_to_matrix(a, 'zx')[0] @ e[0], e[2],
                          atol=1e-15)
    assert torch.allclose(euler_to_matrix(a, 'zx', intrinsic=True)[0]
                          @ e[0], e[1], atol=1e-15)


@pytest.mark.parametrize('axes', ['xyz', 'zyx', 'xzx', 'yz'])
def test_euler_intrinsic_is_reversed_extrinsic(axes):
    a = _angles(k=len(axes), seed=1)
    R = euler_to_matrix(a, axes, intrinsic=True)
    assert torch.allclose(R, euler_to_matrix(a.flip(1), axes[::-1]),
                          atol=1e-14)
    assert not torch.allclose(R, euler_to_matrix(a, axes), atol=1e-3)


def test_euler_orthonormal_float64():
    a = _angles(T=500, k=4, seed=2) * 10  # large angles too
    R = euler_to_matrix(a, 'xyzx')
    assert R.shape == (500, 3, 3) and R.dtype == torch.float64
    eye = EYE64.expand(500, 3, 3)
    assert (R @ R.transpose(1, 2) - eye).abs().max() < 1e-12
    assert (torch.linalg.det(R) - 1).abs().max() < 1e-12


def test_euler_dtype_empty_axes_and_gradients():
    a = _angles(k=2, seed=3).float()
    assert euler_to_matrix(a, 'xy').dtype == torch.float32
    none = euler_to_matrix(torch.zeros(4, 0, dtype=torch.float64), '')
    assert torch.equal(none, EYE64.expand(4, 3, 3))
    assert euler_to_matrix(torch.zeros(0, 3), 'xyz').shape == (0, 3, 3)
    a = _angles(k=2, seed=4).requires_grad_(True)
    euler_to_matrix(a, 'yz').sum().backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()


@pytest.mark.parametrize('angles,axes,exc,match', [
    (torch.zeros(2, 3), 'xwz', ValueError, "'axes'.*'xwz'"),
    (torch.zeros(2, 2), 'xyz', ValueError, r"'axes' names 3.*'angles' has 2"),
    (torch.zeros(2, 3), 'xy', ValueError, r"'angles' has 3 column"),
    (torch.zeros(3), 'xyz', ValueError, r"'angles' must have shape \[T, k\]"),
    (torch.zeros(2, 1, 3), 'xyz', ValueError, r"'angles' must have shape"),
    (torch.zeros(2, 3), ['x', 'y', 'z'], TypeError, "'axes'"),
])
def test_euler_bad_input(angles, axes, exc, match):
    with pytest.raises(exc, match=match):
        euler_to_matrix(angles, axes)
