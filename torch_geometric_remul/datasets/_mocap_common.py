r"""What the motion-capture readers share: the clip they return, strict
text reading and number parsing that name the file and line, and the
rotation helpers of forward kinematics (see
:mod:`~torch_geometric_remul.datasets.mocap_formats`)."""
import codecs
import os.path as osp
import re
from typing import List, NamedTuple, Optional, Sequence

import numpy as np
from torch import Tensor

from torch_geometric_remul.group import RigidTransform, euler_to_matrix

#: Marker of synthetic proxy files (ASF ``:name`` prefix).
PROXY_NAME_PREFIX = 'synthetic_proxy'

_INT = re.compile(r'^[+-]?\d+$')


class MocapClip(NamedTuple):
    r"""Joint positions of one clip.

    Attributes:
        positions: ``[num_frames, num_joints, 3]`` float64 array.
        joint_names: Name of every joint (root first).
        parents: Parent index of every joint (``-1`` for the root).
        frame_time: Seconds per frame when the file says (BVH), else
            ``None``.
        path: The motion file.
        is_synthetic_proxy: Whether the skeleton is marked as a synthetic
            proxy (see :mod:`~torch_geometric_remul.datasets.mocap_proxy`).

    Example:

        >>> import tempfile
        >>> from torch_geometric_remul.datasets import (
        ...     asf_amc_positions, generate_mocap_proxy)
        >>> asf, amcs = generate_mocap_proxy(tempfile.mkdtemp(), num_clips=1,
        ...                                  num_frames=5)
        >>> clip = asf_amc_positions(asf, amcs[0])
        >>> clip.positions.shape, clip.joint_names[:2], clip.parents[:2]
        ((5, 19, 3), ['root', 'lhip'], [-1, 0])
        >>> clip.edges[:2].tolist()  # (parent, child)
        [[0, 1], [1, 2]]
    """
    positions: np.ndarray
    joint_names: List[str]
    parents: List[int]
    frame_time: Optional[float]
    path: str
    is_synthetic_proxy: bool

    @property
    def edges(self) -> np.ndarray:
        r"""Skeleton edges ``[num_joints - 1, 2]`` as (parent, child)."""
        return np.array([(p, c) for c, p in enumerate(self.parents)
                         if p >= 0], dtype=np.int64).reshape(-1, 2)


def _rotations(axes: str, angles: Tensor,
               intrinsic: bool = False) -> RigidTransform:
    r"""One rotation per row of ``angles`` ``[T, k]`` (radians) about
    ``axes`` (see :func:`~torch_geometric_remul.group.euler_to_matrix`)."""
    return RigidTransform(euler_to_matrix(angles, axes, intrinsic=intrinsic))


def _conjugate(frame: RigidTransform,
               motion: Optional[RigidTransform]) -> RigidTransform:
    r"""A bone's local rotation :math:`C M C^\top` (:math:`C C^\top` without
    ``motion``) for its constant ``frame`` :math:`C`."""
    inner = frame if motion is None else frame.compose(motion)
    return inner.compose(frame.inverse())


def _floats(tokens: Sequence[str], n: int, path: str, lineno: int,
            what: str) -> np.ndarray:
    if len(tokens) < n:
        raise ValueError(f"{path}: line {lineno}: {what} needs {n} numbers "
                         f"(got {len(tokens)})")
    try:
        out = np.array([float(t) for t in tokens[:n]])
    except ValueError:
        raise ValueError(f"{path}: line {lineno}: {what} must be numbers "
                         f"(got {' '.join(tokens[:n])!r})") from None
    if not np.isfinite(out).all():
        raise ValueError(f"{path}: line {lineno}: {what} must be finite")
    return out



def _read_text(path: str) -> List[str]:
    r"""The lines of a UTF-8 (or ASCII) text file, without a leading
    byte-order mark; a byte that is not UTF-8 (e.g. Latin-1 in a comment)
    raises a :class:`ValueError` naming the file and line."""
    if not osp.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, 'rb') as f:
        data = f.read()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as e:
        prefix = data[:e.start].decode('utf-8')
        lines = (prefix + '.').splitlines()  # numbered as the parsers do
        raise ValueError(
            f"{path}: line {len(lines)}, column {len(lines[-1])}: not a text "
            f"file in UTF-8 (byte 0x{data[e.start]:02x}: a Latin-1 or other "
            f"8-bit character?); save it as UTF-8 or ASCII") from None
    return text.splitlines()
