r"""Reader of Acclaim ASF skeletons and AMC motions (the format of the CMU
motion-capture database), returning joint positions by forward kinematics.

Rotation conventions (documented because the format leaves them loose): a
list of rotations (``axis 10 0 20 XYZ`` of a bone, the ``dof rx ry rz``
channels of a bone in the AMC, the ``RX RY RZ`` entries of the root
``order``) is applied in the listed order about fixed axes, i.e. the matrix
is :math:`R_{L_3}(a_3) R_{L_2}(a_2) R_{L_1}(a_1)` for letters
:math:`L_1 L_2 L_3` with angles :math:`a_1 a_2 a_3` (for the CMU files'
``XYZ``: :math:`R_z R_y R_x`). Every bone has a constant frame :math:`C`
(from ``axis``) and a per-frame motion :math:`M` (from the AMC); its global
rotation is :math:`G = G_{parent} C M C^\top` and its end point
:math:`p = p_{parent} + \ell\, G\, d` for the ``direction`` :math:`d` and
``length`` :math:`\ell`. The root's :math:`C` comes from ``orientation`` with
the root ``axis`` order, its position from the AMC translation channels (the
ASF ``position`` line is not added). Coordinates stay in the file's length
units; angles follow ``:units angle`` (``deg`` default) or an AMC
``:RADIANS``/``:DEGREES`` header.
"""
import math
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import networkx as nx
import numpy as np
import torch

from torch_geometric_remul.datasets._mocap_common import (
    _INT,
    PROXY_NAME_PREFIX,
    MocapClip,
    _conjugate,
    _floats,
    _read_text,
    _rotations,
)
from torch_geometric_remul.group import RigidTransform

_AXIS_ORDERS = {''.join(p) for p in
                ('XYZ', 'XZY', 'YXZ', 'YZX', 'ZXY', 'ZYX')}
_ROT_DOFS = {'rx': 'x', 'ry': 'y', 'rz': 'z'}
_ROOT_CHANNELS = ('TX', 'TY', 'TZ', 'RX', 'RY', 'RZ')


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


class _AsfReader:
    r"""The state of :func:`read_asf` while it reads a file, with one method
    per ``:section`` (each takes a comment-free line's tokens and its
    number)."""
    def __init__(self, path: str) -> None:
        self.path = path
        self.section: Optional[str] = None
        self.name = ''
        self.angle_unit = 'deg'
        self.root_order: Tuple[str, ...] = ()
        self.root_axis = 'XYZ'
        self.root_orientation = np.zeros(3)
        self.bones: Dict[str, AsfBone] = {}
        self.parent: Dict[str, str] = {}
        self.doc: List[str] = []
        self.current: Optional[dict] = None  # the bone being read
        self.in_hierarchy = False
        self.seen = {'root': False, 'bonedata': False, 'hierarchy': False}
        self.line = ''  # the line being read

    def error(self, lineno: int, message: str) -> ValueError:
        return ValueError(f"{self.path}: line {lineno}: {message}")

    def read_line(self, line: str, lineno: int) -> None:
        self.line, tokens = line, line.split()
        if line.startswith(':'):
            tokens = self.header(tokens, lineno)
            if not tokens:
                return
        handler = self.HANDLERS.get(self.section)
        if handler is not None:
            handler(self, tokens, lineno)
        elif self.section is None:
            raise self.error(lineno, "content before the first ':' section; "
                             "not an ASF file")

    def header(self, tokens: List[str], lineno: int) -> List[str]:
        r"""Opens a ``:section``; returns what of the line is still to read
        (``:units angle deg`` on one line), else nothing."""
        if self.current is not None:
            raise self.error(lineno, f"section {tokens[0]} inside an "
                             f"unfinished bone (missing 'end')")
        self.section = tokens[0].lower()[1:]
        if self.section == 'name' and len(tokens) > 1:
            self.name = ' '.join(tokens[1:])
        elif self.section in self.seen:
            self.seen[self.section] = True
        elif self.section == 'units':
            return tokens[1:]
        return []

    def units(self, tokens: List[str], lineno: int) -> None:
        if tokens[0].lower() != 'angle':
            return
        if len(tokens) < 2 or tokens[1].lower() not in ('deg', 'rad'):
            raise self.error(lineno, "'angle' must be 'deg' or 'rad'")
        self.angle_unit = tokens[1].lower()

    def documentation(self, tokens: List[str], lineno: int) -> None:
        self.doc.append(self.line)

    def root(self, tokens: List[str], lineno: int) -> None:
        key = tokens[0].lower()
        if key == 'order':
            order = tuple(t.upper() for t in tokens[1:])
            bad = [t for t in order if t not in _ROOT_CHANNELS]
            if bad or len(set(order)) != len(order):
                raise self.error(lineno, f"bad root order "
                                 f"{' '.join(tokens[1:])!r}")
            self.root_order = order
        elif key == 'axis':
            if len(tokens) < 2 or tokens[1].upper() not in _AXIS_ORDERS:
                raise self.error(lineno, "root 'axis' must be an order such "
                                 "as XYZ")
            self.root_axis = tokens[1].upper()
        elif key == 'orientation':
            self.root_orientation = _floats(tokens[1:], 3, self.path, lineno,
                                            'root orientation')
        elif key == 'position':
            _floats(tokens[1:], 3, self.path, lineno, 'root position')

    def bonedata(self, tokens: List[str], lineno: int) -> None:
        key = tokens[0].lower()
        if key == 'begin':
            if self.current is not None:
                raise self.error(lineno, "'begin' inside a bone (missing "
                                 "'end')")
            self.current = {'line': lineno}
        elif key == 'end':
            if self.current is None:
                raise self.error(lineno, "'end' without 'begin'")
            self.finish_bone(lineno)
        elif self.current is None:
            raise self.error(lineno, f"{tokens[0]!r} outside a begin/end "
                             f"bone block")
        elif key in self.BONE_FIELDS:
            self.BONE_FIELDS[key](self, tokens, lineno)
        elif key not in ('id', 'limits') and not key.startswith('('):
            raise self.error(lineno, f"unknown bone field {tokens[0]!r}")

    def bone_name(self, tokens: List[str], lineno: int) -> None:
        if len(tokens) != 2:
            raise self.error(lineno, "bone 'name' must be one word")
        self.current['name'] = tokens[1]

    def bone_direction(self, tokens: List[str], lineno: int) -> None:
        self.current['direction'] = _floats(tokens[1:], 3, self.path, lineno,
                                            'direction')

    def bone_length(self, tokens: List[str], lineno: int) -> None:
        length = float(_floats(tokens[1:], 1, self.path, lineno,
                               'length')[0])
        if length < 0:
            raise self.error(lineno, "negative length")
        self.current['length'] = length

    def bone_axis(self, tokens: List[str], lineno: int) -> None:
        self.current['axis'] = _floats(tokens[1:], 3, self.path, lineno,
                                       'axis')
        order = tokens[4].upper() if len(tokens) > 4 else 'XYZ'
        if order not in _AXIS_ORDERS:
            raise self.error(lineno, f"axis order {order!r} is not a "
                             f"permutation of XYZ")
        self.current['axis_order'] = order

    def bone_dof(self, tokens: List[str], lineno: int) -> None:
        dofs = [t.lower() for t in tokens[1:]]
        bad = [d for d in dofs if d not in _ROT_DOFS]
        if bad:
            raise self.error(lineno, f"unsupported dof {bad} (only rx, ry, "
                             f"rz)")
        self.current['dofs'] = dofs

    def finish_bone(self, lineno: int) -> None:
        b, path = self.current, self.path
        for key in ('name', 'direction', 'length'):
            if key not in b:
                raise ValueError(f"{path}: bone ending at line {lineno} has "
                                 f"no '{key}'")
        if b['name'] in self.bones or b['name'] == 'root':
            raise self.error(b['line'], f"duplicate bone name "
                             f"{b['name']!r}")
        norm = float(np.linalg.norm(b['direction']))
        if norm == 0:
            raise self.error(b['line'], f"bone {b['name']!r} has a zero "
                             f"direction")
        self.bones[b['name']] = AsfBone(
            name=b['name'], direction=b['direction'] / norm,
            length=b['length'], axis=b.get('axis', np.zeros(3)),
            axis_order=b.get('axis_order', 'XYZ'),
            dofs=tuple(b.get('dofs', ())), line=b['line'])
        self.current = None

    def hierarchy(self, tokens: List[str], lineno: int) -> None:
        key = tokens[0].lower()
        if key in ('begin', 'end'):
            self.in_hierarchy = key == 'begin'
            return
        if not self.in_hierarchy:
            raise self.error(lineno, "hierarchy entry outside begin/end")
        par = tokens[0]
        if par != 'root' and par not in self.bones:
            raise self.error(lineno, f"unknown parent {par!r} in the "
                             f"hierarchy")
        for child in tokens[1:]:
            if child not in self.bones:
                raise self.error(lineno, f"unknown bone {child!r} in the "
                                 f"hierarchy")
            if child in self.parent:
                raise self.error(lineno, f"bone {child!r} has two parents")
            self.parent[child] = par

    HANDLERS = {'units': units, 'documentation': documentation, 'root': root,
                'bonedata': bonedata, 'hierarchy': hierarchy}
    BONE_FIELDS = {'name': bone_name, 'direction': bone_direction,
                   'length': bone_length, 'axis': bone_axis, 'dof': bone_dof}

    def skeleton(self) -> AsfSkeleton:
        r"""The skeleton read, after checking that the file was complete."""
        path = self.path
        if self.current is not None:
            raise ValueError(f"{path}: unfinished bone (missing 'end' at the "
                             f"end of the file)")
        for what, seen in self.seen.items():
            if not seen:
                raise ValueError(f"{path}: no :{what} section; not an ASF "
                                 f"file or truncated")
        if not self.root_order:
            raise ValueError(f"{path}: the :root section has no 'order'")
        orphans = [b for b in self.bones if b not in self.parent]
        if orphans:
            raise ValueError(f"{path}: bones {orphans} do not appear in the "
                             f":hierarchy (file truncated?)")
        _check_tree(_hierarchy_graph(self.bones, self.parent), path)
        return AsfSkeleton(path=path, name=self.name,
                           angle_unit=self.angle_unit,
                           root_order=self.root_order,
                           root_axis=self.root_axis,
                           root_orientation=self.root_orientation,
                           bones=self.bones, parent=self.parent,
                           documentation='\n'.join(self.doc))


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
    reader = _AsfReader(path)
    for lineno, raw in enumerate(_read_text(path), start=1):
        line = raw.split('#', 1)[0].strip()
        if line:
            reader.read_line(line, lineno)
    return reader.skeleton()


# AMC ########################################################################

class _AmcReader:
    r"""The state of :func:`read_amc` while it reads a file."""
    def __init__(self, path: str, skeleton: AsfSkeleton) -> None:
        self.path = path
        self.skeleton = skeleton
        self.unit = skeleton.angle_unit
        self.expected = {'root': len(skeleton.root_order)}
        self.expected.update({b.name: len(b.dofs)
                              for b in skeleton.bones.values() if b.dofs})
        self.frames: List[Dict[str, List[float]]] = []
        self.frame_line = 0
        self.number = 0
        self.gaps: List[Tuple[int, int, int]] = []  # (line, previous, number)

    def error(self, lineno: int, message: str) -> ValueError:
        return ValueError(f"{self.path}: line {lineno}: {message}")

    def read_line(self, line: str, lineno: int) -> None:
        if line.startswith(':'):
            self.header(line, lineno)
            return
        tokens = line.split()
        if len(tokens) == 1 and _INT.match(tokens[0]):
            self.frame_number(int(tokens[0]), lineno)
        else:
            self.channels(tokens, lineno)

    def header(self, line: str, lineno: int) -> None:
        if self.frames:
            raise self.error(lineno, f"header line {line!r} after the first "
                             f"frame")
        if line.upper() == ':RADIANS':
            self.unit = 'rad'
        elif line.upper() == ':DEGREES':
            self.unit = 'deg'

    def frame_number(self, number: int, lineno: int) -> None:
        previous, self.number = self.number, number
        if self.frames:
            self.check_frame()
            if number == previous:
                raise self.error(lineno, f"frame number {number} given twice "
                                 f"(also at line {self.frame_line})")
            if number < previous:
                raise self.error(lineno, f"frame number {number} after frame "
                                 f"{previous} (line {self.frame_line}): "
                                 f"frames out of order")
            if number > previous + 1:
                self.gaps.append((lineno, previous, number))
        self.frames.append({})
        self.frame_line = lineno

    def channels(self, tokens: List[str], lineno: int) -> None:
        if not self.frames:
            raise self.error(lineno, f"{tokens[0]!r} before the first frame "
                             f"number; not an AMC file?")
        bone = tokens[0]
        if bone not in self.expected:
            raise self.error(lineno, f"{bone!r} is not a bone with degrees "
                             f"of freedom in {self.skeleton.path}")
        if bone in self.frames[-1]:
            raise self.error(lineno, f"{bone!r} given twice in one frame")
        n = self.expected[bone]
        if len(tokens) - 1 != n:
            raise self.error(lineno, f"{bone!r} needs {n} values (got "
                             f"{len(tokens) - 1})")
        self.frames[-1][bone] = list(_floats(tokens[1:], n, self.path,
                                             lineno, bone))

    def check_frame(self) -> None:
        missing = [k for k in self.expected if k not in self.frames[-1]]
        if missing:
            raise ValueError(f"{self.path}: frame starting at line "
                             f"{self.frame_line} lacks {missing} (truncated "
                             f"file?)")

    def warn_gaps(self) -> None:
        if not self.gaps:
            return
        lineno, previous, number = self.gaps[0]
        missing = sum(b - a - 1 for _, a, b in self.gaps)
        warnings.warn(
            f"{self.path}: line {lineno}: frame {number} follows frame "
            f"{previous}; {missing} frame number(s) missing in "
            f"{len(self.gaps)} gap(s) (the first here). The frames read are "
            f"used as consecutive: across a gap, velocities and "
            f"'delta_frame' span more than one frame interval",
            UserWarning, stacklevel=4)  # read_amc's caller

    def motion(self) -> Dict[str, np.ndarray]:
        r"""The channels read, angles in radians."""
        if not self.frames:
            raise ValueError(f"{self.path}: no frames; not an AMC file or "
                             f"empty")
        self.check_frame()
        self.warn_gaps()
        out = {k: np.array([f[k] for f in self.frames], dtype=np.float64)
               for k in self.expected}
        scale = math.pi / 180.0 if self.unit == 'deg' else 1.0
        rot = [i for i, c in enumerate(self.skeleton.root_order)
               if c[0] == 'R']
        out['root'][:, rot] *= scale
        for k in self.expected:
            if k != 'root':
                out[k] *= scale
        return out


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
    reader = _AmcReader(path, skeleton)
    for lineno, raw in enumerate(_read_text(path), start=1):
        line = raw.strip()
        if line and not line.startswith('#'):
            reader.read_line(line, lineno)
    return reader.motion()


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


__all__ = ['AsfSkeleton', 'AsfBone', 'read_asf', 'read_amc',
           'asf_amc_positions', 'MocapClip', 'PROXY_NAME_PREFIX']
