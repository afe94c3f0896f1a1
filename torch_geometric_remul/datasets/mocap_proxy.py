r"""A labelled **synthetic proxy** for motion capture: walking-like periodic
motion of a small skeleton, written as ASF/AMC files. It is not motion
capture data; it exists for tests and demos where no real clip can be
downloaded."""
import math
import os
import os.path as osp
from typing import List, Tuple

import numpy as np
import torch

from torch_geometric_remul._checks import (
    check_int,
    check_real,
)
from torch_geometric_remul._io import atomic_write
from torch_geometric_remul.datasets.mocap_formats import PROXY_NAME_PREFIX
from torch_geometric_remul.group import RigidTransform, euler_to_matrix

#: Base name of the generated files.
PROXY_BASENAME = f'{PROXY_NAME_PREFIX}_walk'

# name, parent, direction, length, dofs  (y is up, walking along +z at zero
# heading)
_BONES = [
    ('lhip', 'root', (1, 0, 0), 1.0, ''),
    ('lfemur', 'lhip', (0, -1, 0), 4.0, 'rx ry rz'),
    ('ltibia', 'lfemur', (0, -1, 0), 4.0, 'rx'),
    ('lfoot', 'ltibia', (0, 0, 1), 1.5, 'rx'),
    ('rhip', 'root', (-1, 0, 0), 1.0, ''),
    ('rfemur', 'rhip', (0, -1, 0), 4.0, 'rx ry rz'),
    ('rtibia', 'rfemur', (0, -1, 0), 4.0, 'rx'),
    ('rfoot', 'rtibia', (0, 0, 1), 1.5, 'rx'),
    ('lowerback', 'root', (0, 1, 0), 2.0, 'rx ry rz'),
    ('upperback', 'lowerback', (0, 1, 0), 2.0, 'rx ry rz'),
    ('neck', 'upperback', (0, 1, 0), 1.0, 'rx'),
    ('head', 'neck', (0, 1, 0), 1.0, 'rx'),
    ('lclavicle', 'upperback', (1, 0, 0), 1.5, ''),
    ('lhumerus', 'lclavicle', (0, -1, 0), 3.0, 'rx ry rz'),
    ('lradius', 'lhumerus', (0, -1, 0), 2.5, 'rx'),
    ('rclavicle', 'upperback', (-1, 0, 0), 1.5, ''),
    ('rhumerus', 'rclavicle', (0, -1, 0), 3.0, 'rx ry rz'),
    ('rradius', 'rhumerus', (0, -1, 0), 2.5, 'rx'),
]


def _asf_text() -> str:
    out = [
        '# SYNTHETIC PROXY skeleton written by torch_geometric_remul: not',
        '# motion-capture data.',
        ':version 1.10',
        f':name {PROXY_BASENAME}',
        ':units',
        '  mass 1.0',
        '  length 1.0',
        '  angle deg',
        ':documentation',
        '  SYNTHETIC PROXY: a small skeleton with generated walking-like',
        '  motion, for tests and demos only; not motion capture.',
        ':root',
        '  order TX TY TZ RX RY RZ',
        '  axis XYZ',
        '  position 0 0 0',
        '  orientation 0 0 0',
        ':bonedata',
    ]
    for i, (name, _, d, length, dofs) in enumerate(_BONES, start=1):
        out += ['  begin', f'    id {i}', f'    name {name}',
                f'    direction {d[0]} {d[1]} {d[2]}',
                f'    length {length}', '    axis 0 0 0 XYZ']
        if dofs:
            out.append(f'    dof {dofs}')
            limits = ['(-180.0 180.0)'] * len(dofs.split())
            out.append('    limits ' + limits[0])
            out += ['           ' + lim for lim in limits[1:]]
        out.append('  end')
    out += [':hierarchy', '  begin']
    children = {}
    for name, parent, *_ in _BONES:
        children.setdefault(parent, []).append(name)
    for parent, kids in children.items():
        out.append(f'    {parent} {" ".join(kids)}')
    out += ['  end', '']
    return '\n'.join(out)


def walking_proxy_angles(num_frames: int, frame_rate: float = 120.0,
                         seed: int = 0) -> dict:
    r"""Channel values (degrees; root translation in skeleton units) of
    one **synthetic proxy** walking clip: ``{"root": [T, 6], bone: [T,
    num_dofs]}`` for the skeleton of :func:`generate_mocap_proxy`.

    Per clip, a seeded generator draws the cadence (0.8-1.2 strides/s), the
    stride length, the amplitudes, the initial phase and the heading (a
    rotation about the vertical :math:`y` axis). Hips swing
    sinusoidally in antiphase, knees flex during the swing phase, arms
    swing against the legs, the pelvis bobs twice per stride, sways and
    twists slightly, and the root advances along the heading; Gaussian
    noise of 0.5 degrees is added to every angle.

    Args:
        num_frames (int): Number of frames ``T``.
        frame_rate (float, optional): Frames per second.
            (default: ``120.0``)
        seed (int, optional): Seed of the clip. (default: ``0``)

    Example:

        >>> ch = walking_proxy_angles(50, seed=0)
        >>> ch['root'].shape, ch['lfemur'].shape, ch['ltibia'].shape
        ((50, 6), (50, 3), (50, 1))
    """
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames) / frame_rate
    cadence = rng.uniform(0.8, 1.2)
    stride = rng.uniform(5.0, 7.0)
    hip_amp = rng.uniform(20.0, 30.0)
    knee_amp = rng.uniform(40.0, 60.0)
    arm_amp = rng.uniform(15.0, 25.0)
    phase0 = rng.uniform(0.0, 2 * math.pi)
    heading = rng.uniform(-180.0, 180.0)
    phi = 2 * math.pi * cadence * t + phase0
    T = num_frames

    def noise(*shape):
        return rng.normal(0.0, 0.5, size=(T,) + shape)

    # the path in the walker's frame (sway along x, advance along z),
    # turned to the heading about the vertical y axis
    path = torch.from_numpy(np.stack(
        [0.3 * np.sin(phi), np.zeros(T), stride * cadence * t], axis=1))
    turn = RigidTransform(euler_to_matrix(
        torch.tensor([[math.radians(heading)]], dtype=torch.float64), 'y'))
    ground = turn.apply_vectors(path).numpy()
    root = np.stack([
        ground[:, 0],
        8.0 + 0.2 * np.cos(2 * phi),
        ground[:, 2],
        2.0 * np.sin(2 * phi),
        heading + 4.0 * np.sin(phi),
        2.0 * np.sin(phi),
    ], axis=1)
    root[:, 3:] += noise(3)
    zeros = np.zeros(T)
    out = {'root': root}
    for side, shift in (('l', 0.0), ('r', math.pi)):
        p = phi + shift
        out[f'{side}femur'] = np.stack(
            [-hip_amp * np.sin(p), zeros, zeros], 1) + noise(3)
        out[f'{side}tibia'] = (knee_amp * np.clip(np.sin(p + 0.6), 0, None)
                               + 5.0)[:, None] + noise(1)
        out[f'{side}foot'] = (10.0 * np.sin(p - 0.5))[:, None] + noise(1)
        out[f'{side}humerus'] = np.stack(
            [arm_amp * np.sin(p), zeros, zeros], 1) + noise(3)
        out[f'{side}radius'] = (-(15.0 + 10.0 * np.sin(p)))[:, None] \
            + noise(1)
    out['lowerback'] = np.stack([5.0 + zeros, -5.0 * np.sin(phi), zeros],
                                1) + noise(3)
    out['upperback'] = np.stack([zeros, -3.0 * np.sin(phi), zeros],
                                1) + noise(3)
    out['neck'] = (-5.0 + zeros)[:, None] + noise(1)
    out['head'] = (2.0 * np.sin(2 * phi))[:, None] + noise(1)
    return out


def _amc_text(channels: dict, seed: int) -> str:
    T = channels['root'].shape[0]
    names = ['root'] + [b[0] for b in _BONES if b[4]]
    out = [f'# SYNTHETIC PROXY motion (walking-like, seed {seed}) written '
           f'by torch_geometric_remul: not motion capture.',
           ':FULLY-SPECIFIED', ':DEGREES']
    for t in range(T):
        out.append(str(t + 1))
        for name in names:
            vals = ' '.join(f'{v:.6f}' for v in channels[name][t])
            out.append(f'{name} {vals}')
    out.append('')
    return '\n'.join(out)


def generate_mocap_proxy(
    directory: str,
    num_clips: int = 4,
    num_frames: int = 600,
    frame_rate: float = 120.0,
    seed: int = 0,
) -> Tuple[str, List[str]]:
    r"""Writes a labelled **synthetic proxy** of a motion-capture subject:
    a small 19-joint skeleton (pelvis root, legs, spine, head, arms) as
    ``synthetic_proxy_walk.asf`` and ``num_clips`` walking-like clips as
    ``synthetic_proxy_walk_01.amc``, ... (see
    :func:`walking_proxy_angles`). The skeleton's ``:name`` and comments
    in both files say "synthetic proxy", and
    :class:`~torch_geometric_remul.datasets.MotionCapture` warns and sets
    ``is_synthetic_proxy`` when it reads them. Not motion capture data:
    for tests and demos only. Files are written atomically (existing ones
    are replaced).

    Args:
        directory (str): Output folder (e.g. ``root/raw`` of a
            :class:`~torch_geometric_remul.datasets.MotionCapture`).
        num_clips (int, optional): Number of clips. (default: ``4``)
        num_frames (int, optional): Frames per clip. (default: ``600``)
        frame_rate (float, optional): Frames per second (CMU: 120).
            (default: ``120.0``)
        seed (int, optional): Base seed; clip ``k`` uses ``seed + k``.
            (default: ``0``)

    Returns:
        (str, [str]): The skeleton path and the clip paths.

    Example:

        >>> import tempfile
        >>> from torch_geometric_remul.datasets import asf_amc_positions
        >>> asf, amcs = generate_mocap_proxy(tempfile.mkdtemp(), num_clips=1,
        ...                                  num_frames=10)
        >>> clip = asf_amc_positions(asf, amcs[0])
        >>> clip.positions.shape, clip.is_synthetic_proxy
        ((10, 19, 3), True)
    """
    num_clips = check_int(num_clips, 'num_clips', minimum=1)
    num_frames = check_int(num_frames, 'num_frames', minimum=1)
    frame_rate = check_real(frame_rate, 'frame_rate', minimum=0, strict=True)
    seed = check_int(seed, 'seed', minimum=0)
    directory = osp.expanduser(str(directory))
    os.makedirs(directory, exist_ok=True)
    asf = osp.join(directory, f'{PROXY_BASENAME}.asf')
    text = _asf_text()
    atomic_write(asf, lambda f: f.write(text.encode()))
    amcs = []
    for k in range(num_clips):
        path = osp.join(directory, f'{PROXY_BASENAME}_{k + 1:02d}.amc')
        body = _amc_text(walking_proxy_angles(num_frames, frame_rate,
                                              seed + k), seed + k)
        atomic_write(path, lambda f, b=body: f.write(b.encode()))
        amcs.append(path)
    return asf, amcs


__all__ = ['PROXY_BASENAME', 'walking_proxy_angles', 'generate_mocap_proxy']
