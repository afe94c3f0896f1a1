r"""Sampling and constructing rotation matrices.

Every rotation in the package is produced here or by
:class:`~torch_geometric_remul.group.RigidTransform`; nothing else samples or
builds one.
"""
import math
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from torch_geometric_remul._checks import check_int
from torch_geometric_remul.typing import Device

#: Groups of pure rotations understood by :func:`random_rotations`.
ROTATION_GROUPS = ('SO3', 'O3', 'SO2')

AxisLike = Union[int, str, Sequence[float], Tensor]
_AXIS_NAMES = {'x': 0, 'y': 1, 'z': 2}


def _quaternion_map() -> Tensor:
    """The constant ``[16, 9]`` matrix ``L`` with ``R = vec(q q^T) L / |q|^2``
    for a quaternion ``q = (w, x, y, z)``: every entry of the rotation matrix
    is a quadratic form in ``q``, so one small GEMM converts a whole batch."""
    w, x, y, z = range(4)
    terms = [  # row-major R entries as {(a, b): coefficient of q_a q_b}
        {(w, w): 1, (x, x): 1, (y, y): -1, (z, z): -1},
        {(x, y): 2, (w, z): -2},
        {(x, z): 2, (w, y): 2},
        {(x, y): 2, (w, z): 2},
        {(w, w): 1, (x, x): -1, (y, y): 1, (z, z): -1},
        {(y, z): 2, (w, x): -2},
        {(x, z): 2, (w, y): -2},
        {(y, z): 2, (w, x): 2},
        {(w, w): 1, (x, x): -1, (y, y): -1, (z, z): 1},
    ]
    L = torch.zeros(16, 9, dtype=torch.float64)
    for k, entry in enumerate(terms):
        for (a, b), c in entry.items():
            L[4 * a + b, k] = c
    return L


_QUATERNION_MAP = _quaternion_map()


def quaternion_to_matrix(q: Tensor) -> Tensor:
    r"""Converts quaternions :math:`(w, x, y, z)` of shape ``[..., 4]`` into
    rotation matrices of shape ``[..., 3, 3]``. Any non-zero 4-vector is
    accepted (the result is divided by :math:`|q|^2`).

    Args:
        q (torch.Tensor): Quaternions, real part first.

    Example:

        >>> q = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
        >>> quaternion_to_matrix(q)
        tensor([[[1., 0., 0.],
                 [0., 1., 0.],
                 [0., 0., 1.]]])
    """
    if not isinstance(q, Tensor) or q.size(-1) != 4:
        shape = list(q.shape) if isinstance(q, Tensor) else type(q).__name__
        raise ValueError(f"'q' must be a tensor of shape [..., 4], got "
                         f"{shape}")
    batch_shape = q.shape[:-1]
    R = _planar_quaternion_to_matrix(q.reshape(-1, 4).t())
    return R.view(*batch_shape, 3, 3)


#: Device copies of constant host tensors, made once per (tensor, dtype,
#: device) and reused: a copy from host memory per call would make every
#: step wait for the device (see :func:`~torch_geometric_remul.testing.
#: count_syncs`).
_DEVICE_CONSTANTS = {}


def _on_device(constant: Tensor, dtype: torch.dtype, device) -> Tensor:
    device = torch.device(device)
    if device.type == 'cpu':
        return constant.to(dtype)
    key = (id(constant), dtype, device)
    cached = _DEVICE_CONSTANTS.get(key)
    if cached is None:
        cached = constant.to(dtype=dtype, device=device)
        if not torch.compiler.is_compiling():  # no side effect in a trace
            _DEVICE_CONSTANTS[key] = cached
    return cached


def _planar_quaternion_to_matrix(qp: Tensor) -> Tensor:
    """``[4, M]`` quaternions (one per column) to ``[M, 3, 3]`` matrices.
    Working on rows of length ``M`` keeps every op contiguous, which is
    several times faster than ``[M, 4]`` broadcasting for large ``M``."""
    qp = qp.contiguous()
    outer = (qp.unsqueeze(1) * qp.unsqueeze(0)).view(16, -1)
    L = _on_device(_QUATERNION_MAP, qp.dtype, qp.device)
    # [M, 16] (a transposed view, read directly by the GEMM) @ [16, 9]
    R = (outer.t() @ L) / (qp * qp).sum(0).unsqueeze(-1)
    return R.view(-1, 3, 3)


def _axis_vector(axis: AxisLike) -> Tensor:
    if isinstance(axis, str):
        if axis.lower() not in _AXIS_NAMES:
            raise ValueError(f"'axis' must be one of 'x', 'y', 'z', an index "
                             f"0-2 or a 3-vector (got '{axis}')")
        axis = _AXIS_NAMES[axis.lower()]
    if isinstance(axis, int) and not isinstance(axis, bool):
        if axis not in (0, 1, 2):
            raise ValueError(f"'axis' index must be 0, 1 or 2 (got {axis})")
        out = torch.zeros(3, dtype=torch.float64)
        out[axis] = 1.0
        return out
    if isinstance(axis, (tuple, list)) and all(
            isinstance(a, (int, float)) and not isinstance(a, bool)
            for a in axis):
        # plain numbers: validated on the host, no tensor value is read
        if len(axis) != 3 or not all(math.isfinite(a) for a in axis):
            raise ValueError(f"'axis' must be a finite 3-vector, got "
                             f"{list(axis)}")
        norm = math.sqrt(sum(a * a for a in axis))
        if norm == 0:
            raise ValueError("'axis' must be a non-zero vector")
        return torch.tensor([a / norm for a in axis], dtype=torch.float64)
    out = torch.as_tensor(axis, dtype=torch.float64).detach().cpu()
    if out.shape != (3, ) or not bool(torch.isfinite(out).all()):
        raise ValueError(f"'axis' must be a finite 3-vector, got "
                         f"{list(out.shape)}")
    norm = out.norm()
    if norm == 0:
        raise ValueError("'axis' must be a non-zero vector")
    return out / norm


def axis_angle_to_matrix(axis: AxisLike, angle: Tensor) -> Tensor:
    r"""Rotations by ``angle`` (radians, shape ``[n]``) about a fixed
    ``axis`` (Rodrigues' formula), shape ``[n, 3, 3]``.

    Args:
        axis (int, str or sequence): ``0``/``'x'``, ``1``/``'y'``,
            ``2``/``'z'``, or any non-zero 3-vector.
        angle (torch.Tensor): Rotation angles in radians.

    Example:

        >>> import math
        >>> R = axis_angle_to_matrix('z', torch.tensor([math.pi / 2]))
        >>> (R[0] @ torch.tensor([1.0, 0.0, 0.0])).round(decimals=6)
        tensor([0., 1., 0.])
    """
    angle = torch.as_tensor(angle)
    if not angle.is_floating_point():
        angle = angle.to(torch.get_default_dtype())
    angle = angle.reshape(-1)
    # the axis is host data: its entries are filled in as numbers, so no
    # host tensor is copied to the device
    kx, ky, kz = (float(v) for v in _axis_vector(axis).numpy())
    K = torch.zeros(3, 3, dtype=angle.dtype, device=angle.device)
    K[0, 1], K[0, 2], K[1, 2] = -kz, ky, -kx
    K = K - K.t()
    eye = torch.eye(3, dtype=angle.dtype, device=angle.device)
    s = angle.sin().view(-1, 1, 1)
    c = angle.cos().view(-1, 1, 1)
    return eye + s * K + (1 - c) * (K @ K)


def euler_to_matrix(angles: Tensor, axes: str,
                    intrinsic: bool = False) -> Tensor:
    r"""Composes rotations about coordinate axes: ``angles[:, i]`` (radians)
    about the axis named by letter ``i`` of ``axes``, shape ``[T, 3, 3]``.

    * extrinsic (default): fixed axes, the first listed rotation applied
      first, :math:`R = R_k \cdots R_2 R_1`;
    * ``intrinsic=True``: each rotation about the axes already rotated by
      the previous ones, :math:`R = R_1 R_2 \cdots R_k` (the same matrix
      as the extrinsic composition of the reversed list).

    Letters may repeat (e.g. ``"zxz"``); with no letters (``angles`` of
    shape ``[T, 0]``) the result is ``T`` identities. The elementary
    rotations are :func:`axis_angle_to_matrix`.

    Args:
        angles (torch.Tensor): Angles ``[T, k]`` in radians.
        axes (str): ``k`` letters of ``"xyz"`` (any case).
        intrinsic (bool, optional): Compose as intrinsic rotations.
            (default: ``False``)

    Example:

        >>> import math
        >>> angles = torch.tensor([[math.pi / 2, math.pi / 2]])
        >>> x = torch.tensor([1.0, 0.0, 0.0])
        >>> # z first, then x about the fixed axes: x -> y -> z
        >>> (euler_to_matrix(angles, 'zx')[0] @ x).round(decimals=6)
        tensor([0., 0., 1.])
        >>> # intrinsic: R_z R_x sends x to y
        >>> R = euler_to_matrix(angles, 'zx', intrinsic=True)
        >>> (R[0] @ x).round(decimals=6)
        tensor([0., 1., 0.])
    """
    if not isinstance(axes, str):
        raise TypeError(f"'axes' must be a string of letters 'x', 'y', "
                         f"'z' (got {type(axes).__name__})")
    letters = axes.lower()
    bad = sorted({c for c in letters if c not in _AXIS_NAMES})
    if bad:
        raise ValueError(f"'axes' must hold only the letters 'x', 'y', "
                         f"'z' (got {axes!r}, with {', '.join(bad)})")
    if not isinstance(angles, Tensor):
        angles = torch.as_tensor(angles)
    if not angles.is_floating_point():
        angles = angles.to(torch.get_default_dtype())
    if angles.dim() != 2:
        raise ValueError(f"'angles' must have shape [T, k] (one row per "
                         f"rotation, one column per letter of 'axes'), got "
                         f"{list(angles.shape)}")
    if angles.size(1) != len(letters):
        raise ValueError(f"'axes' names {len(letters)} rotation(s) "
                         f"({axes!r}) but 'angles' has {angles.size(1)} "
                         f"column(s); expected shape [T, {len(letters)}]")
    if not letters:
        return torch.eye(3, dtype=angles.dtype, device=angles.device).expand(
            angles.size(0), 3, 3).clone()
    R = axis_angle_to_matrix(letters[0], angles[:, 0])
    for i in range(1, len(letters)):
        Ri = axis_angle_to_matrix(letters[i], angles[:, i])
        R = R @ Ri if intrinsic else Ri @ R
    return R


def normalize_group(group: str, allowed: Sequence[str]) -> str:
    r"""Returns the canonical (upper-case) name of ``group`` or raises a
    :class:`ValueError` listing the ``allowed`` names."""
    if not isinstance(group, str) or group.upper() not in allowed:
        raise ValueError(f"'group' must be one of {', '.join(allowed)} "
                         f"(got {group!r})")
    return group.upper()


def random_rotations(
    n: int,
    group: str = 'SO3',
    axis: AxisLike = 2,
    generator: Optional[torch.Generator] = None,
    dtype: Optional[torch.dtype] = None,
    device: Device = None,
) -> Tensor:
    r"""Samples ``n`` random orthogonal matrices of shape ``[n, 3, 3]``.

    * ``"SO3"``: Haar-uniform rotations (normalised Gaussian quaternions).
    * ``"O3"``: Haar-uniform on :math:`O(3)`: a Haar rotation multiplied by
      :math:`-I` with probability 1/2 (determinant :math:`\pm 1`).
    * ``"SO2"``: rotations by a uniform angle in :math:`[0, 2\pi)` about
      ``axis``, for tasks where gravity breaks the full symmetry.

    Random numbers are drawn in ``float32`` on the generator's device (fast),
    then cast to ``dtype`` before any arithmetic, so one seed gives the same
    rotations in every dtype, orthonormal to the precision of ``dtype``.
    Without a ``generator`` they are drawn on ``device`` itself (from its
    default generator), so no host-to-device copy is made; pass a
    generator on ``device`` (e.g. ``torch.Generator('cuda')``) for
    reproducible draws without a copy.

    Args:
        n (int): Number of matrices.
        group (str, optional): ``"SO3"``, ``"O3"`` or ``"SO2"``.
            (default: ``"SO3"``)
        axis (int, str or sequence, optional): Rotation axis for ``"SO2"``.
            (default: ``2``, the :math:`z`-axis)
        generator (torch.Generator, optional): Source of randomness.
        dtype (torch.dtype, optional): Output dtype (default: the default
            dtype).
        device (torch.device, optional): Output device.

    Example:

        >>> g = torch.Generator().manual_seed(0)
        >>> R = random_rotations(4, generator=g, dtype=torch.float64)
        >>> R.shape
        torch.Size([4, 3, 3])
        >>> torch.allclose(R @ R.transpose(1, 2), torch.eye(3).double())
        True
    """
    n = check_int(n, 'n', minimum=0)
    group = normalize_group(group, ROTATION_GROUPS)
    dtype = dtype or torch.get_default_dtype()
    if not dtype.is_floating_point:
        raise TypeError(f"'dtype' must be a floating-point dtype "
                        f"(got {dtype})")
    gen_device = generator.device if generator is not None else device
    opts = dict(dtype=torch.float32, device=gen_device)
    if generator is not None:  # no generator=None: traced with a symbolic
        opts['generator'] = generator  # n, it fails (torch.compile)
    cast = dict(dtype=dtype, device=device)
    if group == 'SO2':
        angle = torch.rand(n, **opts).to(**cast) * (2 * math.pi)
        return axis_angle_to_matrix(axis, angle)
    R = _planar_quaternion_to_matrix(torch.randn(4, n, **opts).to(**cast))
    if group == 'O3':
        flip = torch.rand(n, **opts).to(device) < 0.5
        R = torch.where(flip.view(n, 1, 1), -R, R)
    return R


def rotation_angle(R: Tensor) -> Tensor:
    r"""The rotation angle in :math:`[0, \pi]` of proper rotations
    ``R`` of shape ``[..., 3, 3]``: :math:`\arccos((\mathrm{tr} R - 1)/2)`.
    Under the Haar measure on :math:`SO(3)` its CDF is
    :math:`(\theta - \sin\theta)/\pi`.

    Args:
        R (torch.Tensor): Rotation matrices.

    Example:

        >>> import math
        >>> R = axis_angle_to_matrix('x', torch.tensor([0.5, math.pi]))
        >>> rotation_angle(R)
        tensor([0.5000, 3.1416])
    """
    trace = R.diagonal(dim1=-2, dim2=-1).sum(-1)
    return ((trace - 1) / 2).clamp(-1.0, 1.0).acos()


__all__ = [
    'ROTATION_GROUPS',
    'quaternion_to_matrix',
    'axis_angle_to_matrix',
    'euler_to_matrix',
    'normalize_group',
    'random_rotations',
    'rotation_angle',
]
