r"""Readers of motion-capture files (Acclaim ASF/AMC as used by the CMU
database, and BVH) that return joint positions by forward kinematics.

Rotation conventions (documented because the formats leave them loose):

* **ASF/AMC**: a list of rotations (``axis 10 0 20 XYZ`` of a bone, the
  ``dof rx ry rz`` channels of a bone in the AMC, the ``RX RY RZ`` entries of
  the root ``order``) is applied in the listed order about fixed axes, i.e.
  the matrix is :math:`R_{L_3}(a_3) R_{L_2}(a_2) R_{L_1}(a_1)` for letters
  :math:`L_1 L_2 L_3` with angles :math:`a_1 a_2 a_3` (for the CMU files'
  ``XYZ``: :math:`R_z R_y R_x`). Every bone has a constant frame
  :math:`C` (from ``axis``) and a per-frame motion :math:`M` (from the AMC);
  its global rotation is :math:`G = G_{parent} C M C^\top` and its end point
  :math:`p = p_{parent} + \ell\, G\, d` for the ``direction`` :math:`d` and
  ``length`` :math:`\ell`. The root's :math:`C` comes from ``orientation``
  with the root ``axis`` order, its position from the AMC translation
  channels (the ASF ``position`` line is not added). Coordinates stay in the
  file's length units; angles follow ``:units angle`` (``deg`` default) or an
  AMC ``:RADIANS``/``:DEGREES`` header.
* **BVH**: the rotation channels of a joint are composed in the listed order
  as intrinsic rotations, :math:`R = R_{c_1} R_{c_2} R_{c_3}` (so
  ``Zrotation Xrotation Yrotation`` is :math:`R_z R_x R_y`); a joint's
  position is its parent's position plus the parent's global rotation times
  the joint's ``OFFSET``, except that position channels, where present,
  replace the ``OFFSET``. ``End Site`` blocks become joints named
  ``<parent>_end``. Angles are in degrees.

Forward kinematics runs entirely in the group layer: the rotations come
from :func:`~torch_geometric_remul.group.euler_to_matrix` and every joint's
global frame (rotation and position, one element per frame of the clip) is
a :class:`~torch_geometric_remul.group.RigidTransform` composed from its
parent's.
"""
import bisect
import codecs
import math
import os.path as osp
import re
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import networkx as nx
import numpy as np
import torch
from torch import Tensor

from torch_geometric_remul.group import RigidTransform, euler_to_matrix

#: Marker of synthetic proxy files (ASF ``:name`` prefix).
PROXY_NAME_PREFIX = 'synthetic_proxy'


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
        >>> from torch_geometric_remul.datasets import generate_mocap_proxy
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


# Rotations ##################################################################

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


# ASF ########################################################################

@dataclass
class AsfBone:
    name: str
    direction: np.ndarray
    length: float
    axis: np.ndarray  # 3 angles, paired with axis_order letters
    axis_order: str
    dofs: Tuple[str, ...]
    line: int


@dataclass
class AsfSkeleton:
    r"""A parsed ASF skeleton (see :func:`read_asf`).

    Example:

        >>> import tempfile
        >>> from torch_geometric_remul.datasets import generate_mocap_proxy
        >>> asf, _ = generate_mocap_proxy(tempfile.mkdtemp(), num_clips=1,
        ...                               num_frames=2)
        >>> skel = read_asf(asf)
        >>> skel.name, skel.angle_unit, skel.root_order
        ('synthetic_proxy_walk', 'deg', ('TX', 'TY', 'TZ', 'RX', 'RY', 'RZ'))
        >>> len(skel.bones), skel.parent['lfemur']
        (18, 'lhip')
    """
    path: str
    name: str
    angle_unit: str
    root_order: Tuple[str, ...]
    root_axis: str
    root_orientation: np.ndarray
    bones: Dict[str, AsfBone] = field(default_factory=dict)
    parent: Dict[str, str] = field(default_factory=dict)
    documentation: str = ''

    @property
    def is_synthetic_proxy(self) -> bool:
        r"""Whether the skeleton's ``:name`` marks it as the labelled
        synthetic proxy of
        :func:`~torch_geometric_remul.datasets.generate_mocap_proxy`."""
        return self.name.lower().startswith(PROXY_NAME_PREFIX)

    def joint_names(self) -> List[str]:
        r"""Root first, then the bones in depth-first order of the
        hierarchy (children in the order listed)."""
        graph = _hierarchy_graph(self.bones, self.parent)
        return list(nx.dfs_preorder_nodes(graph, 'root'))

    def to_networkx(self) -> 'nx.DiGraph':
        r"""The hierarchy as a :class:`networkx.DiGraph` of parent -> child
        edges rooted at ``"root"`` (a tree: checked when the file is
        read)."""
        return _hierarchy_graph(self.bones, self.parent)


def _hierarchy_graph(bones: Sequence[str],
                     parent: Dict[str, str]) -> 'nx.DiGraph':
    """Parent -> child edges, added in bonedata order so that siblings keep
    it in traversals."""
    graph = nx.DiGraph()
    graph.add_node('root')
    graph.add_edges_from((parent[b], b) for b in bones)
    return graph


def _check_tree(graph: 'nx.DiGraph', path: str) -> None:
    """Every bone reaches the root by exactly one path (an arborescence)."""
    if nx.is_arborescence(graph):
        return
    try:
        cycle = [u for u, _ in nx.find_cycle(graph)]
    except nx.NetworkXNoCycle:  # pragma: no cover - parents are unique
        cycle = []
    unreachable = sorted(set(graph) - nx.descendants(graph, 'root') -
                         {'root'})
    raise ValueError(f"{path}: the :hierarchy is not a tree rooted at "
                     f"'root': bones {unreachable} do not descend from it"
                     + (f" (cycle {' -> '.join(cycle)})" if cycle else ''))


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


_AXIS_ORDERS = {''.join(p) for p in
                ('XYZ', 'XZY', 'YXZ', 'YZX', 'ZXY', 'ZYX')}
_ROT_DOFS = {'rx': 'x', 'ry': 'y', 'rz': 'z'}


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


def read_asf(path: str) -> AsfSkeleton:
    r"""Parses an Acclaim ASF skeleton file.

    Args:
        path (str): The ``.asf`` file.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: On any malformed content (naming the file and line).

    Example:

        >>> import tempfile
        >>> from torch_geometric_remul.datasets import generate_mocap_proxy
        >>> asf, _ = generate_mocap_proxy(tempfile.mkdtemp(), num_clips=1,
        ...                               num_frames=2)
        >>> skel = read_asf(asf)
        >>> skel.is_synthetic_proxy, skel.joint_names()[:3]
        (True, ['root', 'lhip', 'lfemur'])
    """
    lines = _read_text(path)
    section = None
    name = ''
    angle_unit = 'deg'
    root_order: Tuple[str, ...] = ()
    root_axis = 'XYZ'
    root_orientation = np.zeros(3)
    bones: Dict[str, AsfBone] = {}
    parent: Dict[str, str] = {}
    doc: List[str] = []
    current: Optional[dict] = None
    in_hierarchy = False
    seen_root = seen_bonedata = seen_hierarchy = False

    def finish_bone(lineno: int) -> None:
        nonlocal current
        b = current
        for key in ('name', 'direction', 'length'):
            if key not in b:
                raise ValueError(f"{path}: bone ending at line {lineno} has "
                                 f"no '{key}'")
        if b['name'] in bones or b['name'] == 'root':
            raise ValueError(f"{path}: line {b['line']}: duplicate bone name "
                             f"{b['name']!r}")
        d = b['direction']
        norm = float(np.linalg.norm(d))
        if norm == 0:
            raise ValueError(f"{path}: line {b['line']}: bone "
                             f"{b['name']!r} has a zero direction")
        bones[b['name']] = AsfBone(
            name=b['name'], direction=d / norm, length=b['length'],
            axis=b.get('axis', np.zeros(3)),
            axis_order=b.get('axis_order', 'XYZ'),
            dofs=tuple(b.get('dofs', ())), line=b['line'])
        current = None

    for lineno, raw in enumerate(lines, start=1):
        line = raw.split('#', 1)[0].strip()
        if not line:
            continue
        tokens = line.split()
        key = tokens[0].lower()
        if line.startswith(':'):
            if current is not None:
                raise ValueError(f"{path}: line {lineno}: section "
                                 f"{tokens[0]} inside an unfinished bone "
                                 f"(missing 'end')")
            section = key[1:]
            if section == 'name' and len(tokens) > 1:
                name = ' '.join(tokens[1:])
            elif section == 'root':
                seen_root = True
            elif section == 'bonedata':
                seen_bonedata = True
            elif section == 'hierarchy':
                seen_hierarchy = True
            elif section == 'units' and len(tokens) > 1:
                tokens = tokens[1:]  # ":units angle deg" on one line
                key = tokens[0].lower()
            else:
                continue
            if section != 'units':
                continue
        if section == 'units':
            if key == 'angle':
                if len(tokens) < 2 or tokens[1].lower() not in ('deg',
                                                                'rad'):
                    raise ValueError(f"{path}: line {lineno}: 'angle' must "
                                     f"be 'deg' or 'rad'")
                angle_unit = tokens[1].lower()
        elif section == 'documentation':
            doc.append(line)
        elif section == 'root':
            if key == 'order':
                root_order = tuple(t.upper() for t in tokens[1:])
                bad = [t for t in root_order if t not in
                       ('TX', 'TY', 'TZ', 'RX', 'RY', 'RZ')]
                if bad or len(set(root_order)) != len(root_order):
                    raise ValueError(f"{path}: line {lineno}: bad root "
                                     f"order {' '.join(tokens[1:])!r}")
            elif key == 'axis':
                if len(tokens) < 2 or tokens[1].upper() not in _AXIS_ORDERS:
                    raise ValueError(f"{path}: line {lineno}: root 'axis' "
                                     f"must be an order such as XYZ")
                root_axis = tokens[1].upper()
            elif key == 'orientation':
                root_orientation = _floats(tokens[1:], 3, path, lineno,
                                           'root orientation')
            elif key == 'position':
                _floats(tokens[1:], 3, path, lineno, 'root position')
        elif section == 'bonedata':
            if key == 'begin':
                if current is not None:
                    raise ValueError(f"{path}: line {lineno}: 'begin' "
                                     f"inside a bone (missing 'end')")
                current = {'line': lineno}
            elif key == 'end':
                if current is None:
                    raise ValueError(f"{path}: line {lineno}: 'end' "
                                     f"without 'begin'")
                finish_bone(lineno)
            elif current is None:
                raise ValueError(f"{path}: line {lineno}: {tokens[0]!r} "
                                 f"outside a begin/end bone block")
            elif key == 'id':
                pass
            elif key == 'name':
                if len(tokens) != 2:
                    raise ValueError(f"{path}: line {lineno}: bone 'name' "
                                     f"must be one word")
                current['name'] = tokens[1]
            elif key == 'direction':
                current['direction'] = _floats(tokens[1:], 3, path, lineno,
                                               'direction')
            elif key == 'length':
                length = float(_floats(tokens[1:], 1, path, lineno,
                                       'length')[0])
                if length < 0:
                    raise ValueError(f"{path}: line {lineno}: negative "
                                     f"length")
                current['length'] = length
            elif key == 'axis':
                current['axis'] = _floats(tokens[1:], 3, path, lineno,
                                          'axis')
                order = tokens[4].upper() if len(tokens) > 4 else 'XYZ'
                if order not in _AXIS_ORDERS:
                    raise ValueError(f"{path}: line {lineno}: axis order "
                                     f"{order!r} is not a permutation of "
                                     f"XYZ")
                current['axis_order'] = order
            elif key == 'dof':
                dofs = [t.lower() for t in tokens[1:]]
                bad = [d for d in dofs if d not in _ROT_DOFS]
                if bad:
                    raise ValueError(f"{path}: line {lineno}: unsupported "
                                     f"dof {bad} (only rx, ry, rz)")
                current['dofs'] = dofs
            elif key == 'limits' or line.startswith('('):
                pass
            else:
                raise ValueError(f"{path}: line {lineno}: unknown bone "
                                 f"field {tokens[0]!r}")
        elif section == 'hierarchy':
            if key == 'begin':
                in_hierarchy = True
            elif key == 'end':
                in_hierarchy = False
            elif not in_hierarchy:
                raise ValueError(f"{path}: line {lineno}: hierarchy entry "
                                 f"outside begin/end")
            else:
                par = tokens[0]
                if par != 'root' and par not in bones:
                    raise ValueError(f"{path}: line {lineno}: unknown "
                                     f"parent {par!r} in the hierarchy")
                for child in tokens[1:]:
                    if child not in bones:
                        raise ValueError(f"{path}: line {lineno}: unknown "
                                         f"bone {child!r} in the hierarchy")
                    if child in parent:
                        raise ValueError(f"{path}: line {lineno}: bone "
                                         f"{child!r} has two parents")
                    parent[child] = par
        elif section is None:
            raise ValueError(f"{path}: line {lineno}: content before the "
                             f"first ':' section; not an ASF file")
    if current is not None:
        raise ValueError(f"{path}: unfinished bone (missing 'end' at the "
                         f"end of the file)")
    for what, seen in ((':root', seen_root), (':bonedata', seen_bonedata),
                       (':hierarchy', seen_hierarchy)):
        if not seen:
            raise ValueError(f"{path}: no {what} section; not an ASF file "
                             f"or truncated")
    if not root_order:
        raise ValueError(f"{path}: the :root section has no 'order'")
    orphans = [b for b in bones if b not in parent]
    if orphans:
        raise ValueError(f"{path}: bones {orphans} do not appear in the "
                         f":hierarchy (file truncated?)")
    _check_tree(_hierarchy_graph(bones, parent), path)
    return AsfSkeleton(path=path, name=name, angle_unit=angle_unit,
                       root_order=root_order, root_axis=root_axis,
                       root_orientation=root_orientation, bones=bones,
                       parent=parent, documentation='\n'.join(doc))


# AMC ########################################################################

_INT = re.compile(r'^[+-]?\d+$')


def read_amc(path: str, skeleton: AsfSkeleton) -> Dict[str, np.ndarray]:
    r"""Parses an AMC motion file for ``skeleton``: returns the channel
    values ``{"root": [T, len(order)], bone: [T, len(dofs)]}`` in the
    file's angle unit converted to radians (translations untouched).

    Args:
        path (str): The ``.amc`` file.
        skeleton (AsfSkeleton): Its skeleton (:func:`read_asf`).

    Frame numbers must increase: a repeated or decreasing one raises a
    :class:`ValueError` naming the file and line. A gap (frames missing,
    e.g. a clip cut from a longer take) is accepted with a warning naming
    the file and the line of the first gap: the frames read are used as
    consecutive. The first frame number may be any.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: On malformed content (naming the file and line).

    Example:

        >>> import tempfile
        >>> from torch_geometric_remul.datasets import generate_mocap_proxy
        >>> asf, amcs = generate_mocap_proxy(tempfile.mkdtemp(), num_clips=1,
        ...                                  num_frames=5)
        >>> motion = read_amc(amcs[0], read_asf(asf))
        >>> motion['root'].shape, motion['lfemur'].shape  # [T, channels]
        ((5, 6), (5, 3))
    """
    lines = _read_text(path)
    unit = skeleton.angle_unit
    expected = {'root': len(skeleton.root_order)}
    expected.update({b.name: len(b.dofs) for b in skeleton.bones.values()
                     if b.dofs})
    frames: List[Dict[str, List[float]]] = []
    frame_line = 0
    number = 0
    gaps: List[Tuple[int, int, int]] = []  # (line, previous, number)
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        if line.startswith(':'):
            if frames:
                raise ValueError(f"{path}: line {lineno}: header line "
                                 f"{line!r} after the first frame")
            if line.upper() == ':RADIANS':
                unit = 'rad'
            elif line.upper() == ':DEGREES':
                unit = 'deg'
            continue
        tokens = line.split()
        if len(tokens) == 1 and _INT.match(tokens[0]):
            previous, number = number, int(tokens[0])
            if frames:
                _check_frame(frames[-1], expected, path, frame_line)
                if number == previous:
                    raise ValueError(
                        f"{path}: line {lineno}: frame number {number} "
                        f"given twice (also at line {frame_line})")
                if number < previous:
                    raise ValueError(
                        f"{path}: line {lineno}: frame number {number} "
                        f"after frame {previous} (line {frame_line}): "
                        f"frames out of order")
                if number > previous + 1:
                    gaps.append((lineno, previous, number))
            frames.append({})
            frame_line = lineno
            continue
        if not frames:
            raise ValueError(f"{path}: line {lineno}: {tokens[0]!r} before "
                             f"the first frame number; not an AMC file?")
        bone = tokens[0]
        if bone not in expected:
            raise ValueError(f"{path}: line {lineno}: {bone!r} is not a "
                             f"bone with degrees of freedom in "
                             f"{skeleton.path}")
        if bone in frames[-1]:
            raise ValueError(f"{path}: line {lineno}: {bone!r} given twice "
                             f"in one frame")
        n = expected[bone]
        if len(tokens) - 1 != n:
            raise ValueError(f"{path}: line {lineno}: {bone!r} needs {n} "
                             f"values (got {len(tokens) - 1})")
        frames[-1][bone] = list(_floats(tokens[1:], n, path, lineno, bone))
    if not frames:
        raise ValueError(f"{path}: no frames; not an AMC file or empty")
    _check_frame(frames[-1], expected, path, frame_line)
    if gaps:
        lineno, previous, number = gaps[0]
        missing = sum(b - a - 1 for _, a, b in gaps)
        warnings.warn(
            f"{path}: line {lineno}: frame {number} follows frame "
            f"{previous}; {missing} frame number(s) missing in "
            f"{len(gaps)} gap(s) (the first here). The frames read are "
            f"used as consecutive: across a gap, velocities and "
            f"'delta_frame' span more than one frame interval",
            UserWarning, stacklevel=2)
    out = {k: np.array([f[k] for f in frames], dtype=np.float64)
           for k in expected}
    scale = math.pi / 180.0 if unit == 'deg' else 1.0
    rot = [i for i, c in enumerate(skeleton.root_order) if c[0] == 'R']
    out['root'][:, rot] *= scale
    for k in expected:
        if k != 'root':
            out[k] *= scale
    return out


def _check_frame(frame: Dict[str, List[float]], expected: Dict[str, int],
                 path: str, lineno: int) -> None:
    missing = [k for k in expected if k not in frame]
    if missing:
        raise ValueError(f"{path}: frame starting at line {lineno} lacks "
                         f"{missing} (truncated file?)")


def asf_amc_positions(asf: str, amc: str,
                      skeleton: Optional[AsfSkeleton] = None) -> MocapClip:
    r"""Joint positions of an ASF/AMC clip by forward kinematics (see the
    module docstring for the conventions).

    Args:
        asf (str): The ``.asf`` skeleton file (ignored when ``skeleton`` is
            given).
        amc (str): The ``.amc`` motion file.
        skeleton (AsfSkeleton, optional): An already parsed skeleton.

    Returns:
        :class:`MocapClip`: ``positions`` ``[T, 1 + num_bones, 3]``, the
        root first and then every bone's end point.

    Example:

        >>> import tempfile
        >>> from torch_geometric_remul.datasets import generate_mocap_proxy
        >>> asf, amcs = generate_mocap_proxy(tempfile.mkdtemp(), num_clips=1,
        ...                                  num_frames=5)
        >>> clip = asf_amc_positions(asf, amcs[0])
        >>> clip.positions.shape, clip.is_synthetic_proxy
        ((5, 19, 3), True)
    """
    skel = skeleton if skeleton is not None else read_asf(asf)
    motion = read_amc(amc, skel)
    T = motion['root'].shape[0]
    rad = math.pi / 180.0 if skel.angle_unit == 'deg' else 1.0

    def const(order: str, angles: np.ndarray) -> RigidTransform:
        a = torch.from_numpy(np.asarray(angles, dtype=np.float64) * rad)
        return _rotations(order, a.view(1, 3))

    order = skel.root_order
    root = torch.from_numpy(motion['root'])
    trans = torch.zeros(T, 3, dtype=torch.float64)
    for i, c in enumerate(order):
        if c[0] == 'T':
            trans[:, 'XYZ'.index(c[1])] = root[:, i]
    rot_idx = [i for i, c in enumerate(order) if c[0] == 'R']
    letters = ''.join(order[i][1] for i in rot_idx)
    # global frame of a joint: x -> G x + p, one element per frame
    local = _conjugate(const(skel.root_axis, skel.root_orientation),
                       _rotations(letters, root[:, rot_idx]))
    frames = {'root': RigidTransform(translation=trans).compose(local)}
    names = skel.joint_names()
    for name in names[1:]:
        bone = skel.bones[name]
        motion_rot = None
        if bone.dofs:
            motion_rot = _rotations(
                ''.join(_ROT_DOFS[d] for d in bone.dofs),
                torch.from_numpy(motion[name]))
        local = _conjugate(const(bone.axis_order, bone.axis), motion_rot)
        # G = G_parent C M C^T; the end point p = p_parent + G (l d)
        offset = RigidTransform(
            translation=torch.from_numpy(bone.direction * bone.length))
        frames[name] = frames[skel.parent[name]].compose(local).compose(
            offset)
    positions = torch.stack([frames[n].translation for n in names],
                            dim=1).numpy()
    index = {n: i for i, n in enumerate(names)}
    parents = [-1] + [index[skel.parent[n]] for n in names[1:]]
    return MocapClip(positions, names, parents, None, amc,
                     skel.is_synthetic_proxy)


# BVH ########################################################################

def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_BVH_CHANNELS = {'xposition', 'yposition', 'zposition', 'xrotation',
                 'yrotation', 'zrotation'}


def read_bvh(path: str) -> MocapClip:
    r"""Joint positions of a BVH clip by forward kinematics (see the module
    docstring for the conventions).

    Args:
        path (str): The ``.bvh`` file.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: On malformed content (naming the file and line).

    Example:

        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), 'clip.bvh')
        >>> with open(path, 'w') as f:
        ...     _ = f.write('''HIERARCHY
        ... ROOT hips
        ... {
        ...   OFFSET 0 0 0
        ...   CHANNELS 3 Xposition Yposition Zposition
        ...   End Site
        ...   {
        ...     OFFSET 0 1 0
        ...   }
        ... }
        ... MOTION
        ... Frames: 1
        ... Frame Time: 0.01
        ... 2 0 0
        ... ''')
        >>> clip = read_bvh(path)
        >>> clip.joint_names, clip.positions[0].tolist()
        (['hips', 'hips_end'], [[2.0, 0.0, 0.0], [2.0, 1.0, 0.0]])
    """
    lines = _read_text(path)
    tokens: List[Tuple[str, int]] = []
    motion_line = None
    for lineno, raw in enumerate(lines, start=1):
        if raw.strip().upper() == 'MOTION':
            motion_line = lineno
            break
        tokens.extend((t, lineno) for t in raw.replace('{', ' { ').replace(
            '}', ' } ').split())
    if not tokens or tokens[0][0].upper() != 'HIERARCHY':
        raise ValueError(f"{path}: does not start with HIERARCHY; not a BVH "
                         f"file")
    if motion_line is None:
        raise ValueError(f"{path}: no MOTION section (truncated file?)")

    names: List[str] = []
    parents: List[int] = []
    offsets: List[np.ndarray] = []
    channels: List[List[str]] = []
    pos = 1

    def take(what: str) -> Tuple[str, int]:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError(f"{path}: unexpected end of the hierarchy "
                             f"while reading {what}")
        tok = tokens[pos]
        pos += 1
        return tok

    def expect(word: str) -> None:
        tok, ln = take(repr(word))
        if tok.upper() != word.upper():
            raise ValueError(f"{path}: line {ln}: expected {word!r}, got "
                             f"{tok!r}")

    def parse_joint(name: str, parent: int, end_site: bool) -> None:
        index = len(names)
        names.append(name)
        parents.append(parent)
        channels.append([])
        offsets.append(np.zeros(3))
        expect('{')
        tok, ln = take('OFFSET')
        if tok.upper() != 'OFFSET':
            raise ValueError(f"{path}: line {ln}: expected OFFSET in joint "
                             f"{name!r}, got {tok!r}")
        vals = [take('OFFSET values') for _ in range(3)]
        offsets[index] = _floats([v for v, _ in vals], 3, path, ln,
                                 f'OFFSET of {name!r}')
        while True:
            tok, ln = take("'}'")
            key = tok.upper()
            if key == '}':
                return
            if key == 'CHANNELS' and not end_site:
                count_tok, _ = take('channel count')
                if not _INT.match(count_tok) or int(count_tok) < 0:
                    raise ValueError(f"{path}: line {ln}: bad channel count "
                                     f"{count_tok!r}")
                chans = [take('channel name')[0]
                         for _ in range(int(count_tok))]
                bad = [c for c in chans if c.lower() not in _BVH_CHANNELS]
                if bad:
                    raise ValueError(f"{path}: line {ln}: unknown channels "
                                     f"{bad}")
                channels[index] = [c.lower() for c in chans]
            elif key == 'JOINT' and not end_site:
                child, _ = take('joint name')
                parse_joint(child, index, False)
            elif key == 'END' and not end_site:
                expect('Site')
                parse_joint(f'{name}_end', index, True)
            else:
                raise ValueError(f"{path}: line {ln}: unexpected {tok!r} in "
                                 f"joint {name!r}")

    tok, ln = take('ROOT')
    if tok.upper() != 'ROOT':
        raise ValueError(f"{path}: line {ln}: expected ROOT, got {tok!r}")
    root_name, _ = take('root name')
    parse_joint(root_name, -1, False)
    if pos != len(tokens):
        raise ValueError(f"{path}: line {tokens[pos][1]}: unexpected "
                         f"{tokens[pos][0]!r} after the root joint")
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate joint names")

    rest = lines[motion_line:]
    num_frames = frame_time = None
    values: List[str] = []
    starts: List[int] = []  # index in values of each data line's first
    value_lines: List[int] = []
    for offset, raw in enumerate(rest, start=motion_line + 1):
        line = raw.strip()
        if not line:
            continue
        low = line.lower()
        if low.startswith('frames:'):
            try:
                num_frames = int(line.split(':', 1)[1])
            except ValueError:
                raise ValueError(f"{path}: line {offset}: bad 'Frames:' "
                                 f"line") from None
        elif low.startswith('frame time:'):
            try:
                frame_time = float(line.split(':', 1)[1])
            except ValueError:
                raise ValueError(f"{path}: line {offset}: bad 'Frame Time:' "
                                 f"line") from None
        else:
            if num_frames is None:
                raise ValueError(f"{path}: line {offset}: motion data before "
                                 f"'Frames:'")
            starts.append(len(values))
            value_lines.append(offset)
            values.extend(line.split())
    if num_frames is None or num_frames < 1:
        raise ValueError(f"{path}: missing or empty 'Frames:' line")
    C = sum(len(c) for c in channels)
    if len(values) != num_frames * C:
        raise ValueError(f"{path}: expected {num_frames} frames x {C} "
                         f"channels = {num_frames * C} values, found "
                         f"{len(values)} (truncated file?)")
    def where(index: int) -> str:
        line = value_lines[bisect.bisect_right(starts, index) - 1]
        return (f"line {line}: {values[index]!r} (frame {index // C + 1}, "
                f"channel {index % C + 1})")

    try:
        data = np.array(values, dtype=np.float64).reshape(num_frames, C)
    except ValueError:
        bad = next((i for i, v in enumerate(values) if not _is_float(v)),
                   None)
        raise ValueError(f"{path}: {where(bad) if bad is not None else ''}"
                         f": motion data must be numbers") from None
    finite = np.isfinite(data).ravel()
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"{path}: {where(bad)}: motion data contains NaN "
                         f"or infinity")

    T = num_frames
    # global frame of a joint: x -> G x + p, one element per frame
    frames: List[RigidTransform] = []
    col = 0
    for j, name in enumerate(names):
        chans = channels[j]
        vals = torch.from_numpy(data[:, col:col + len(chans)])
        col += len(chans)
        local_t = torch.from_numpy(offsets[j]).expand(T, 3).clone()
        rot_letters, rot_cols = '', []
        for k, c in enumerate(chans):
            if c.endswith('position'):
                local_t[:, 'xyz'.index(c[0])] = vals[:, k]
            else:
                rot_letters += c[0]
                rot_cols.append(k)
        R = euler_to_matrix(vals[:, rot_cols] * (math.pi / 180.0),
                            rot_letters, intrinsic=True)
        local = RigidTransform(R, local_t)
        p = parents[j]
        # p = p_parent + G_parent t_local; G = G_parent R
        frames.append(local if p < 0 else frames[p].compose(local))
    out = torch.stack([f.translation for f in frames], dim=1).numpy()
    return MocapClip(out, names, parents, frame_time, path, False)


__all__ = ['MocapClip', 'AsfSkeleton', 'AsfBone', 'read_asf', 'read_amc',
           'asf_amc_positions', 'read_bvh', 'PROXY_NAME_PREFIX']
