r"""Reader of BVH motion-capture files, returning joint positions by forward
kinematics.

Conventions: the rotation channels of a joint are composed in the listed
order as intrinsic rotations, :math:`R = R_{c_1} R_{c_2} R_{c_3}` (so
``Zrotation Xrotation Yrotation`` is :math:`R_z R_x R_y`); a joint's position
is its parent's position plus the parent's global rotation times the joint's
``OFFSET``, except that position channels, where present, replace the
``OFFSET``. ``End Site`` blocks become joints named ``<parent>_end``. Angles
are in degrees.
"""
import bisect
import math
from typing import List, Optional, Tuple

import numpy as np
import torch

from torch_geometric_remul.datasets._mocap_common import (
    _INT,
    MocapClip,
    _floats,
    _read_text,
)
from torch_geometric_remul.group import RigidTransform, euler_to_matrix

_BVH_CHANNELS = {'xposition', 'yposition', 'zposition', 'xrotation',
                 'yrotation', 'zrotation'}


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _tokens(lines: List[str],
            path: str) -> Tuple[List[Tuple[str, int]], int]:
    r"""The tokens of the HIERARCHY part, each with its line number, and the
    number of the ``MOTION`` line."""
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
    return tokens, motion_line


class _Hierarchy:
    r"""The joints of a BVH ``HIERARCHY``, read by recursive descent over its
    tokens."""
    def __init__(self, tokens: List[Tuple[str, int]], path: str) -> None:
        self.tokens, self.path = tokens, path
        self.pos = 1  # after HIERARCHY
        self.names: List[str] = []
        self.parents: List[int] = []
        self.offsets: List[np.ndarray] = []
        self.channels: List[List[str]] = []
        tok, ln = self.take('ROOT')
        if tok.upper() != 'ROOT':
            raise ValueError(f"{path}: line {ln}: expected ROOT, got {tok!r}")
        root_name, _ = self.take('root name')
        self.joint(root_name, -1, False)
        if self.pos != len(tokens):
            raise ValueError(f"{path}: line {tokens[self.pos][1]}: "
                             f"unexpected {tokens[self.pos][0]!r} after the "
                             f"root joint")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"{path}: duplicate joint names")

    def take(self, what: str) -> Tuple[str, int]:
        if self.pos >= len(self.tokens):
            raise ValueError(f"{self.path}: unexpected end of the hierarchy "
                             f"while reading {what}")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def expect(self, word: str) -> None:
        tok, ln = self.take(repr(word))
        if tok.upper() != word.upper():
            raise ValueError(f"{self.path}: line {ln}: expected {word!r}, "
                             f"got {tok!r}")

    def joint(self, name: str, parent: int, end_site: bool) -> None:
        index = len(self.names)
        self.names.append(name)
        self.parents.append(parent)
        self.channels.append([])
        self.expect('{')
        tok, ln = self.take('OFFSET')
        if tok.upper() != 'OFFSET':
            raise ValueError(f"{self.path}: line {ln}: expected OFFSET in "
                             f"joint {name!r}, got {tok!r}")
        vals = [self.take('OFFSET values')[0] for _ in range(3)]
        self.offsets.append(_floats(vals, 3, self.path, ln,
                                    f'OFFSET of {name!r}'))
        while True:
            tok, ln = self.take("'}'")
            key = tok.upper()
            if key == '}':
                return
            if key == 'CHANNELS' and not end_site:
                self.channels[index] = self.channel_list(ln)
            elif key == 'JOINT' and not end_site:
                child, _ = self.take('joint name')
                self.joint(child, index, False)
            elif key == 'END' and not end_site:
                self.expect('Site')
                self.joint(f'{name}_end', index, True)
            else:
                raise ValueError(f"{self.path}: line {ln}: unexpected "
                                 f"{tok!r} in joint {name!r}")

    def channel_list(self, ln: int) -> List[str]:
        count_tok, _ = self.take('channel count')
        if not _INT.match(count_tok) or int(count_tok) < 0:
            raise ValueError(f"{self.path}: line {ln}: bad channel count "
                             f"{count_tok!r}")
        chans = [self.take('channel name')[0] for _ in range(int(count_tok))]
        bad = [c for c in chans if c.lower() not in _BVH_CHANNELS]
        if bad:
            raise ValueError(f"{self.path}: line {ln}: unknown channels "
                             f"{bad}")
        return [c.lower() for c in chans]


def _motion_header(line: str, lineno: int, path: str, key: str,
                   kind: type) -> float:
    try:
        return kind(line.split(':', 1)[1])
    except ValueError:
        raise ValueError(f"{path}: line {lineno}: bad '{key}' line") from None


def _motion(lines: List[str], motion_line: int, path: str,
            num_channels: int) -> Tuple[np.ndarray, Optional[float]]:
    r"""The ``MOTION`` part: values ``[num_frames, num_channels]`` and the
    frame time."""
    num_frames = frame_time = None
    values: List[str] = []
    starts: List[int] = []  # index in values of each data line's first
    value_lines: List[int] = []
    for lineno, raw in enumerate(lines[motion_line:], start=motion_line + 1):
        line = raw.strip()
        low = line.lower()
        if not line:
            continue
        if low.startswith('frames:'):
            num_frames = _motion_header(line, lineno, path, 'Frames:', int)
        elif low.startswith('frame time:'):
            frame_time = _motion_header(line, lineno, path, 'Frame Time:',
                                        float)
        elif num_frames is None:
            raise ValueError(f"{path}: line {lineno}: motion data before "
                             f"'Frames:'")
        else:
            starts.append(len(values))
            value_lines.append(lineno)
            values.extend(line.split())
    if num_frames is None or num_frames < 1:
        raise ValueError(f"{path}: missing or empty 'Frames:' line")
    C = num_channels
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
    return data, frame_time


def _positions(joints: _Hierarchy, data: np.ndarray) -> np.ndarray:
    r"""Forward kinematics: joint positions ``[T, num_joints, 3]``."""
    T = data.shape[0]
    # global frame of a joint: x -> G x + p, one element per frame
    frames: List[RigidTransform] = []
    col = 0
    for j, chans in enumerate(joints.channels):
        vals = torch.from_numpy(data[:, col:col + len(chans)])
        col += len(chans)
        local_t = torch.from_numpy(joints.offsets[j]).expand(T, 3).clone()
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
        p = joints.parents[j]
        # p = p_parent + G_parent t_local; G = G_parent R
        frames.append(local if p < 0 else frames[p].compose(local))
    return torch.stack([f.translation for f in frames], dim=1).numpy()


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
    tokens, motion_line = _tokens(lines, path)
    joints = _Hierarchy(tokens, path)
    data, frame_time = _motion(lines, motion_line, path,
                               sum(len(c) for c in joints.channels))
    return MocapClip(_positions(joints, data), joints.names, joints.parents,
                     frame_time, path, False)


__all__ = ['read_bvh', 'MocapClip']
