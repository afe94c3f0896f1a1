r"""The star-and-planets gravity system of the GATr N-body experiment: a
vectorised simulator and a PyG dataset with an out-of-distribution split of
randomly rotated systems, and optionally GATr's randomly rotated, shifted
and permuted in-distribution systems."""
import math
from typing import Callable, List, NamedTuple, Optional, Tuple

import numpy as np
import torch
from torch_geometric.data import Data

from torch_geometric_remul._checks import (
    check_bool,
    check_choice,
    check_int,
    check_interval,
    check_real,
)
from torch_geometric_remul.datasets._utils import (
    CachedDataset,
    cache_name,
    derived_torch_generator,
    full_edge_index,
    split_rng,
    split_sizes,
    to_float,
)
from torch_geometric_remul.group import RigidTransform

#: Extra seed tag of the rotations of the out-of-distribution split.
_OOD_TAG = 7
#: Extra seed tags of the in-distribution rotations (``rotate=True``) and
#: body orders (``permute=True``) of a split.
_ROTATE_TAG = 11
_PERMUTE_TAG = 13


class GravitySimulation(NamedTuple):
    r"""Systems returned by :func:`simulate_gravity` (numpy, float64).
    Body 0 is the star, bodies ``1..num_planets`` the planets.

    Attributes:
        mass: Masses ``[num_sims, num_bodies]``.
        pos: Initial positions ``[num_sims, num_bodies, 3]``.
        vel: Initial velocities ``[num_sims, num_bodies, 3]``.
        pos_final: Positions after ``num_steps`` steps.
        vel_final: Velocities after ``num_steps`` steps.
        trajectory: Positions at every step
            ``[num_sims, num_steps + 1, num_bodies, 3]`` (``None`` unless
            requested).

    Example:

        >>> sim = simulate_gravity(2, num_steps=10, return_trajectory=True)
        >>> isinstance(sim, GravitySimulation), sim.trajectory.shape
        (True, (2, 11, 4, 3))
    """
    mass: np.ndarray
    pos: np.ndarray
    vel: np.ndarray
    pos_final: np.ndarray
    vel_final: np.ndarray
    trajectory: Optional[np.ndarray]


def simulate_gravity(
    num_sims: int,
    num_planets: int = 3,
    num_steps: int = 100,
    time: float = 0.1,
    star_mass_range: Tuple[float, float] = (1.0, 10.0),
    planet_mass_range: Tuple[float, float] = (0.01, 0.1),
    radius_range: Tuple[float, float] = (0.1, 1.0),
    vel_std: float = 0.01,
    shift_std: float = 0.0,
    outlier_threshold: Optional[float] = 2.0,
    return_trajectory: bool = False,
    seed: int = 0,
) -> GravitySimulation:
    r"""Simulates ``num_sims`` star-and-planets systems under Newtonian
    gravity (:math:`G = 1`), following the N-body setup of GATr
    (Brehmer et al., 2023).

    Per system: the star mass is log-uniform in ``star_mass_range`` and each
    planet mass log-uniform in ``planet_mass_range`` (as in GATr's
    simulator). The star starts at rest at the origin; each planet starts in
    the :math:`x`-:math:`y` plane at a point uniform (by area) in the annulus
    of radii ``radius_range`` around it, with the velocity of a circular
    orbit around the star, :math:`\sqrt{M / r}` tangentially, turning
    clockwise or counter-clockwise with probability 1/2 each, plus Gaussian
    noise of standard deviation ``vel_std`` in every component. Optionally
    the whole system is translated by :math:`\mathcal{N}(0,`
    ``shift_std`` :math:`^2 I)`. The system then evolves for ``num_steps``
    semi-implicit Euler steps (:math:`v \leftarrow v + \Delta t\, a`,
    :math:`x \leftarrow x + \Delta t\, v`) of length ``time / num_steps``.
    Systems in which any body moves farther than ``outlier_threshold`` are
    rejected and replaced by fresh draws (GATr's outlier removal); all
    systems are integrated together, one Python iteration per time step.

    Args:
        num_sims (int): Number of systems.
        num_planets (int, optional): Planets per system. (default: ``3``)
        num_steps (int, optional): Euler steps. (default: ``100``)
        time (float, optional): Length of the time window.
            (default: ``0.1``)
        star_mass_range ((float, float), optional): Star mass range.
            (default: ``(1.0, 10.0)``)
        planet_mass_range ((float, float), optional): Planet mass range.
            (default: ``(0.01, 0.1)``)
        radius_range ((float, float), optional): Initial star-planet
            distance range. (default: ``(0.1, 1.0)``)
        vel_std (float, optional): Velocity noise. (default: ``0.01``)
        shift_std (float, optional): Standard deviation of a random
            translation of each system. (default: ``0.0``)
        outlier_threshold (float, optional): Maximum displacement of any
            body; ``None`` keeps every system. (default: ``2.0``)
        return_trajectory (bool, optional): Also return every step.
            (default: ``False``)
        seed (int, optional): Seed of the numpy generator. (default: ``0``)

    Returns:
        :class:`GravitySimulation`: numpy arrays (float64).

    Example:

        >>> sim = simulate_gravity(3, seed=0)
        >>> sim.mass.shape, sim.pos.shape, sim.pos_final.shape
        ((3, 4), (3, 4, 3), (3, 4, 3))
        >>> bool((sim.mass[:, 0] >= 1).all())
        True
    """
    num_sims = check_int(num_sims, 'num_sims', minimum=0)
    num_planets = check_int(num_planets, 'num_planets', minimum=1)
    num_steps = check_int(num_steps, 'num_steps', minimum=0)
    time = check_real(time, 'time', minimum=0, strict=True)
    star_mass_range = check_interval(star_mass_range, 'star_mass_range')
    planet_mass_range = check_interval(planet_mass_range, 'planet_mass_range')
    radius_range = check_interval(radius_range, 'radius_range')
    vel_std = check_real(vel_std, 'vel_std', minimum=0)
    shift_std = check_real(shift_std, 'shift_std', minimum=0)
    if outlier_threshold is not None:
        outlier_threshold = check_real(outlier_threshold,
                                       'outlier_threshold', minimum=0,
                                       strict=True)
    rng = np.random.default_rng(seed)
    return _simulate(rng, num_sims, num_planets, num_steps, time,
                     star_mass_range, planet_mass_range, radius_range,
                     vel_std, shift_std, outlier_threshold,
                     bool(return_trajectory))


def _log_uniform(rng: np.random.Generator, lo: float, hi: float,
                 size) -> np.ndarray:
    return np.exp(rng.uniform(math.log(lo), math.log(hi), size=size))


def _accelerations(mass: np.ndarray, x: np.ndarray) -> np.ndarray:
    # a_i = sum_j m_j (x_j - x_i) / |x_j - x_i|^3
    d = x[:, None, :, :] - x[:, :, None, :]  # [S, i, j, 3] = x_j - x_i
    r2 = np.einsum('sijd,sijd->sij', d, d)
    n = x.shape[1]
    r2[:, np.arange(n), np.arange(n)] = np.inf
    w = mass[:, None, :] / (r2 * np.sqrt(r2))
    return np.einsum('sij,sijd->sid', w, d)


def _draw_and_run(rng, S, n_p, num_steps, time, star_range, planet_range,
                  radius_range, vel_std, shift_std, keep_traj):
    star = _log_uniform(rng, *star_range, size=(S, 1))
    planets = _log_uniform(rng, *planet_range, size=(S, n_p))
    mass = np.concatenate([star, planets], axis=1)
    r_lo, r_hi = radius_range
    radius = np.sqrt(rng.uniform(r_lo ** 2, r_hi ** 2, size=(S, n_p)))
    phi = rng.uniform(0.0, 2.0 * math.pi, size=(S, n_p))
    turn = rng.choice(np.array([-1.0, 1.0]), size=(S, n_p))
    noise = rng.normal(0.0, 1.0, size=(S, n_p, 3)) * vel_std
    shift = rng.normal(0.0, 1.0, size=(S, 1, 3)) * shift_std

    unit = np.stack([np.cos(phi), np.sin(phi), np.zeros_like(phi)], -1)
    tangent = np.stack([-np.sin(phi), np.cos(phi), np.zeros_like(phi)], -1)
    speed = np.sqrt(star / radius)  # circular orbit around a fixed star
    pos = np.zeros((S, n_p + 1, 3))
    vel = np.zeros((S, n_p + 1, 3))
    pos[:, 1:] = radius[..., None] * unit
    vel[:, 1:] = (turn * speed)[..., None] * tangent + noise
    pos = pos + shift

    dt = time / num_steps if num_steps > 0 else 0.0
    x, v = pos.copy(), vel.copy()
    traj = [x.copy()] if keep_traj else None
    for _ in range(num_steps):
        v = v + dt * _accelerations(mass, x)
        x = x + dt * v
        if keep_traj:
            traj.append(x.copy())
    traj = np.stack(traj, axis=1) if keep_traj else None
    return mass, pos, vel, x, v, traj


def _simulate(rng, S, n_p, num_steps, time, star_range, planet_range,
              radius_range, vel_std, shift_std, threshold, keep_traj
              ) -> GravitySimulation:
    parts = []
    kept = 0
    rounds = 0
    while kept < S or not parts:
        need = S - kept
        batch = _draw_and_run(rng, max(int(math.ceil(1.1 * need)) + 1, 1),
                              n_p, num_steps, time, star_range, planet_range,
                              radius_range, vel_std, shift_std, keep_traj)
        if threshold is not None:
            moved = np.linalg.norm(batch[3] - batch[1], axis=-1).max(-1)
            ok = moved <= threshold
            batch = tuple(None if a is None else a[ok] for a in batch)
        parts.append(batch)
        kept += batch[0].shape[0]
        rounds += 1
        if rounds > 100:
            raise RuntimeError(
                f"could not draw {S} systems within outlier_threshold="
                f"{threshold} (kept {kept} after {rounds} rounds); raise the "
                f"threshold or shorten the time window")
    out = [None if parts[0][k] is None else
           np.concatenate([p[k] for p in parts])[:S] for k in range(6)]
    return GravitySimulation(*out)


class Gravity(CachedDataset):
    r"""The gravitational N-body dataset of the GATr and REMUL papers: one
    star and ``num_planets`` planets; predict all positions after
    ``num_steps`` Euler steps spanning ``time`` (defaults: 100 steps, 0.1),
    simulated with :func:`simulate_gravity` on first use and cached.

    Attributes of every :class:`~torch_geometric.data.Data` (``N =
    num_planets + 1``; node 0 is the star unless ``permute=True``; ``E = N
    (N - 1)``), float32 unless stated:

    * ``pos`` ``[N, 3]`` (point): initial positions.
    * ``vel`` ``[N, 3]`` (vector): initial velocities.
    * ``mass`` ``[N, 1]`` (scalar): masses.
    * ``y`` ``[N, 3]`` (point): positions after ``num_steps`` steps.
    * ``edge_index`` ``[2, E]`` (long): the complete directed graph without
      self loops.
    * ``edge_attr`` ``[E, 1]`` (scalar): mass products :math:`m_i m_j`.

    **In distribution** (``"train"``, ``"val"``, ``"test"``) the systems
    lie, by default, in their canonical frame: star at the origin (unless
    ``shift_std > 0``), planets starting in the :math:`x`-:math:`y` plane,
    orbital angular momenta along :math:`\pm z`, the star at node 0. Two
    options give GATr's in-distribution data (with ``shift_std=20.0``):

    * ``rotate=True``: every system (after its shift, if any) is rotated
      about the origin by its own Haar-uniform random rotation in
      :math:`SO(3)`, applied to ``pos`` and ``y`` as points and to ``vel``
      as a vector (sampled and applied by :class:`RigidTransform
      <torch_geometric_remul.group.RigidTransform>`, in float64 before the
      cast to float32). Gravity is :math:`E(3)`-equivariant, so every
      rotated target is the exact simulation of the rotated input.
    * ``permute=True``: every system's bodies are put in their own random
      order (``pos``, ``vel``, ``mass`` and ``y`` permuted alike,
      ``edge_attr`` computed from the permuted masses; ``edge_index`` is
      the complete graph and stays as it is), so the star is at a random
      node.

    **Out of distribution** (``"ood"``): exactly the graphs of the
    ``"test"`` split (same seed, ``num_test`` and options, including
    ``rotate``, ``permute`` and ``shift_std``), each then rotated about the
    origin by its own further Haar-uniform random rotation in :math:`SO(3)`
    (from a generator derived from ``seed``), applied to ``pos`` and ``y``
    as points and to ``vel`` as a vector, and then translated by
    ``(ood_shift, 0, 0)`` (default ``0``: rotation only). On the canonical
    frame the gap between ``"test"`` and ``"ood"`` errors measures only the
    lack of rotational equivariance of a model. GATr's protocol instead
    rotates and shifts (standard deviation 20) the in-distribution systems
    and shifts its "domain shift" test set by 200 along :math:`x`: with
    ``rotate=True, permute=True, shift_std=20.0, ood_shift=200.0`` the
    ``"ood"`` split holds the rotated, shifted and permuted test systems,
    rotated once more (which leaves their distribution unchanged) and
    moved by 200 along :math:`x`.

    The splits use independent generators derived from ``(seed, split)``
    (and further ones for the rotations and body orders), so a split's
    simulation does not depend on ``rotate`` or ``permute``, and the
    rotations do not depend on ``permute``; only the requested split is
    simulated. The processed file name encodes every parameter that
    determines its content (``rotate`` and ``permute`` only when set, so
    the default names are those of earlier versions), so changing one
    regenerates the (atomically written) file.

    Args:
        root (str): Root directory; files go to ``root/processed``.
        split (str, optional): ``"train"``, ``"val"``, ``"test"`` or
            ``"ood"``. (default: ``"train"``)
        num_train (int, optional): Training systems. (default: ``10000``)
        num_val (int, optional): Validation systems. (default: ``2000``)
        num_test (int, optional): Test (and OOD) systems.
            (default: ``2000``)
        seed (int, optional): Base seed. (default: ``0``)
        num_planets (int, optional): Planets per system. (default: ``3``)
        num_steps (int, optional): Euler steps. (default: ``100``)
        time (float, optional): Time window. (default: ``0.1``)
        star_mass_range ((float, float), optional): (default: ``(1, 10)``)
        planet_mass_range ((float, float), optional):
            (default: ``(0.01, 0.1)``)
        radius_range ((float, float), optional): (default: ``(0.1, 1.0)``)
        vel_std (float, optional): Velocity noise. (default: ``0.01``)
        shift_std (float, optional): Random translation of in-distribution
            systems. (default: ``0.0``)
        outlier_threshold (float, optional): Reject systems in which a body
            moves farther; ``None`` keeps all. (default: ``2.0``)
        ood_shift (float, optional): Translation along :math:`x` of the
            ``"ood"`` split after its rotation. (default: ``0.0``)
        rotate (bool, optional): Rotate every system by its own random
            rotation. (default: ``False``)
        permute (bool, optional): Put the bodies of every system in their
            own random order. (default: ``False``)
        transform (callable, optional): Applied to every access.
        pre_transform (callable, optional): Applied before caching.
        pre_filter (callable, optional): Filters graphs before caching.
        force_reload (bool, optional): Regenerate even if cached.

    Example:

        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> test = Gravity(root, split='test', num_test=4)
        >>> ood = Gravity(root, split='ood', num_test=4)
        >>> test[0].pos.shape, float(test[0].pos[:, 2].abs().max()) == 0.0
        (torch.Size([4, 3]), True)
        >>> torch.allclose(test[0].pos.norm(dim=1), ood[0].pos.norm(dim=1),
        ...                atol=1e-5)
        True
        >>> gatr = Gravity(root, split='test', num_test=4, rotate=True,
        ...                permute=True, shift_std=20.0)
        >>> float(gatr[0].pos[:, 2].abs().max()) > 0.0  # out of the plane
        True
    """
    SPLITS = ('train', 'val', 'test', 'ood')

    def __init__(
        self,
        root: str,
        split: str = 'train',
        num_train: int = 10000,
        num_val: int = 2000,
        num_test: int = 2000,
        seed: int = 0,
        num_planets: int = 3,
        num_steps: int = 100,
        time: float = 0.1,
        star_mass_range: Tuple[float, float] = (1.0, 10.0),
        planet_mass_range: Tuple[float, float] = (0.01, 0.1),
        radius_range: Tuple[float, float] = (0.1, 1.0),
        vel_std: float = 0.01,
        shift_std: float = 0.0,
        outlier_threshold: Optional[float] = 2.0,
        ood_shift: float = 0.0,
        rotate: bool = False,
        permute: bool = False,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        pre_filter: Optional[Callable] = None,
        force_reload: bool = False,
    ) -> None:
        self.split = check_choice(split, 'split', self.SPLITS)
        self.sizes = split_sizes(self.split, num_train, num_val, num_test,
                                 'system')
        self.seed = check_int(seed, 'seed', minimum=0)
        self.num_planets = check_int(num_planets, 'num_planets', minimum=1)
        self.num_steps = check_int(num_steps, 'num_steps', minimum=0)
        self.time = check_real(time, 'time', minimum=0, strict=True)
        self.star_mass_range = check_interval(star_mass_range,
                                           'star_mass_range')
        self.planet_mass_range = check_interval(planet_mass_range,
                                             'planet_mass_range')
        self.radius_range = check_interval(radius_range, 'radius_range')
        self.vel_std = check_real(vel_std, 'vel_std', minimum=0)
        self.shift_std = check_real(shift_std, 'shift_std', minimum=0)
        self.outlier_threshold = (None if outlier_threshold is None else
                                  check_real(outlier_threshold,
                                             'outlier_threshold', minimum=0,
                                             strict=True))
        self.ood_shift = check_real(ood_shift, 'ood_shift')
        self.rotate = check_bool(rotate, 'rotate')
        self.permute = check_bool(permute, 'permute')
        super().__init__(root, transform, pre_transform, pre_filter,
                         force_reload=force_reload)
        self.load_processed()

    @property
    def processed_file_names(self) -> List[str]:
        base = 'test' if self.split == 'ood' else self.split
        params = {
            'n': self.sizes[base],
            'seed': self.seed,
            'p': self.num_planets,
            'steps': self.num_steps,
            'time': self.time,
            'star': self.star_mass_range,
            'planet': self.planet_mass_range,
            'radius': self.radius_range,
            'vstd': self.vel_std,
            'shift': self.shift_std,
            'outlier': ('none' if self.outlier_threshold is None else
                        self.outlier_threshold),
        }
        # only when set: the defaults keep the names of earlier versions
        if self.rotate:
            params['rot'] = True
        if self.permute:
            params['perm'] = True
        if self.split == 'ood':
            params['oodshift'] = self.ood_shift
        return [cache_name(f'gravity_{self.split}', params)]

    def process(self) -> None:
        base = 'test' if self.split == 'ood' else self.split
        S = self.sizes[base]
        sim = _simulate(split_rng(self.seed, base), S, self.num_planets,
                        self.num_steps, self.time, self.star_mass_range,
                        self.planet_mass_range, self.radius_range,
                        self.vel_std, self.shift_std, self.outlier_threshold,
                        False)
        n = self.num_planets + 1
        pos = torch.from_numpy(sim.pos).reshape(-1, 3)
        vel = torch.from_numpy(sim.vel).reshape(-1, 3)
        y = torch.from_numpy(sim.pos_final).reshape(-1, 3)
        mass = sim.mass
        ptr = torch.arange(S + 1) * n
        if self.rotate:  # the split's own rotations, about the origin
            gen = derived_torch_generator(
                split_rng(self.seed, base, _ROTATE_TAG))
            rot = RigidTransform.sample(S, group='SO3', generator=gen,
                                        dtype=torch.float64)
            pos = rot.apply_points(pos, ptr=ptr)
            y = rot.apply_points(y, ptr=ptr)
            vel = rot.apply_vectors(vel, ptr=ptr)
        if self.permute:  # after the rotation: rows move, values do not
            order = _body_orders(split_rng(self.seed, base, _PERMUTE_TAG),
                                 S, n)
            rows = torch.from_numpy(order + n * np.arange(S)[:, None])
            rows = rows.reshape(-1)
            pos, vel, y = pos[rows], vel[rows], y[rows]
            mass = np.take_along_axis(mass, order, axis=1)
        if self.split == 'ood':
            gen = derived_torch_generator(
                split_rng(self.seed, 'test', _OOD_TAG))
            rot = RigidTransform.sample(S, group='SO3', generator=gen,
                                        dtype=torch.float64)
            shift = torch.zeros(S, 3, dtype=torch.float64)
            shift[:, 0] = self.ood_shift
            T = RigidTransform(rot.rotation, shift)
            pos = T.apply_points(pos, ptr=ptr)
            y = T.apply_points(y, ptr=ptr)
            vel = T.apply_vectors(vel, ptr=ptr)
        pos, vel, y = (t.view(S, n, 3).float() for t in (pos, vel, y))
        mass = to_float(mass)
        edge_index = full_edge_index(n)
        row, col = edge_index
        data_list = []
        for i in range(S):
            m = mass[i].view(-1, 1)
            data_list.append(Data(pos=pos[i], vel=vel[i], mass=m, y=y[i],
                                  edge_index=edge_index.clone(),
                                  edge_attr=m[row] * m[col]))
        self.save_processed(data_list)

def _body_orders(rng: np.random.Generator, S: int, n: int) -> np.ndarray:
    r"""``S`` independent uniformly random permutations of ``n`` bodies,
    ``[S, n]`` (row ``i``: the original index of each new node)."""
    return rng.permuted(np.tile(np.arange(n), (S, 1)), axis=1)


__all__ = ['GravitySimulation', 'simulate_gravity', 'Gravity']
