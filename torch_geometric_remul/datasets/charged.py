r"""The EGNN charged-particle N-body system: a vectorised simulator and a
PyG dataset built on it."""
from typing import Callable, List, NamedTuple, Optional, Tuple

import numpy as np
from torch_geometric.data import Data

from torch_geometric_remul._checks import (
    check_choice,
    check_int,
    check_real,
)
from torch_geometric_remul.datasets._utils import (
    CachedDataset,
    cache_name,
    full_edge_index,
    split_sizes,
    to_float,
)


class ChargedSimulation(NamedTuple):
    r"""Trajectories returned by :func:`simulate_charged` (numpy, float64).

    Attributes:
        pos: Saved positions ``[num_sims, num_frames, num_particles, 3]``.
        vel: Saved velocities, same shape: the velocity of the drift that
            reached each saved position (half a step behind it, as in
            EGNN's files).
        charge: Charges ``[num_sims, num_particles]`` (:math:`\pm 1`).
        pos_initial: Positions before the first step (after EGNN's
            initial box reflection) ``[num_sims, num_particles, 3]``.
        vel_initial: Velocities before the first step (norm ``vel_norm``).
        steps: The integration step of every saved frame ``[num_frames]``.

    Example:

        >>> sim = simulate_charged(2, num_steps=300, sample_every=100)
        >>> isinstance(sim, ChargedSimulation), sim.pos.shape
        (True, (2, 2, 5, 3))
        >>> sim.steps.tolist()
        [100, 200]
    """
    pos: np.ndarray
    vel: np.ndarray
    charge: np.ndarray
    pos_initial: np.ndarray
    vel_initial: np.ndarray
    steps: np.ndarray


#: EGNN's box: initial coordinates outside +-5 are reflected into it.
BOX_SIZE = 5.0


def num_charged_frames(num_steps: int, sample_every: int) -> int:
    r"""Number of frames :func:`simulate_charged` saves:
    ``num_steps // sample_every - 1`` (frame ``k`` is the state after
    ``(k + 1) * sample_every`` steps; as in the EGNN data the state at step
    ``num_steps`` itself is not stored).

    Args:
        num_steps (int): Integration steps.
        sample_every (int): Steps between saved frames.

    Example:

        >>> num_charged_frames(5000, 100)
        49
    """
    return num_steps // sample_every - 1


def simulate_charged(
    num_sims: int,
    num_particles: int = 5,
    num_steps: int = 5000,
    sample_every: int = 100,
    dt: float = 0.001,
    loc_std: float = 1.0,
    vel_norm: float = 0.5,
    interaction_strength: float = 1.0,
    clip_force: bool = True,
    max_force: Optional[float] = None,
    seed: int = 0,
    first: int = 0,
    box_size: Optional[float] = BOX_SIZE,
) -> ChargedSimulation:
    r"""Simulates ``num_sims`` independent charged-particle systems at once,
    producing the same dataset as the generator of the EGNN "charged"
    N-body benchmark (``vgsatorras/egnn``, ``n_body_system/dataset``), the
    same numbers for the same seed (see below).

    Each system has ``num_particles`` unit-mass particles in 3D with charges
    :math:`q_i = \pm 1` (probability 1/2 each), initial positions
    :math:`\mathcal{N}(0, 1) \cdot` ``loc_std`` :math:`\cdot (N / 5)^{1/3}`
    (EGNN keeps the density of 5 particles; no effect for 5), initial
    velocities drawn from :math:`\mathcal{N}(0, I_3)` and rescaled to norm
    ``vel_norm``; a coordinate outside :math:`\pm` ``box_size`` is
    reflected into the box once, at the start (its velocity component
    pointing inwards; EGNN's walls act only there, and only
    :math:`|x| > 5 \sigma` triggers them). The force on particle :math:`i`
    is

    .. math::
        F_i = c \sum_{j \neq i} q_i q_j \frac{x_i - x_j}{|x_i - x_j|^3},

    (:math:`c` = ``interaction_strength``; like charges repel) clipped per
    component to :math:`\pm` ``max_force`` when ``clip_force`` is set. The
    integrator is EGNN's: a first kick :math:`v \mathrel{+}= \Delta t\,
    F(x_0)`, then for every step a drift :math:`x \mathrel{+}= \Delta t\,
    v` followed by a kick :math:`v \mathrel{+}= \Delta t\, F(x)`
    (symplectic Euler, first order). Frame ``k`` is saved after the drift
    of step ``(k + 1) * sample_every``: the positions there and the
    velocity that made that drift (half a step behind the positions, as in
    EGNN's files). There are no walls during the run.

    Random numbers: one legacy numpy stream
    (:class:`numpy.random.RandomState`, Mersenne Twister) seeded with
    ``seed``, drawn per system in EGNN's order: ``num_particles`` uniforms
    for the charges (:math:`u < 1/2`: :math:`-1`), the positions and the
    velocities as ``[3, num_particles]`` normal arrays, then the two
    ``[num_frames, 3, num_particles]`` normal arrays of EGNN's observation
    noise (variance 0 there, so only drawn, never added). System ``s`` of
    the result is system ``first + s`` of the stream: EGNN's training,
    validation and test systems are systems ``0..``, then the ones after
    its ``--num-train`` training systems, then after the validation ones.
    The arithmetic of the force follows EGNN's (squared distances as
    :math:`|x_i|^2 + |x_j|^2 - 2 x_i \cdot x_j`, the same summation order),
    so that the trajectories agree with EGNN's generator to rounding; see
    ``docs/results.md`` for the comparison.

    All systems are integrated together: the cost is one Python iteration
    per time step, none per trajectory.

    Args:
        num_sims (int): Number of independent systems.
        num_particles (int, optional): Particles per system. (default: ``5``)
        num_steps (int, optional): Length of the run (EGNN's
            ``--length``): steps ``1 .. num_steps - 1`` are integrated; it
            also sets how many noise numbers each system draws. The number
            of frames is :func:`num_charged_frames`, 49 by default.
            (default: ``5000``)
        sample_every (int, optional): Save every this many steps.
            (default: ``100``)
        dt (float, optional): Time step. (default: ``0.001``)
        loc_std (float, optional): Scale of the initial positions (for 5
            particles). (default: ``1.0``)
        vel_norm (float, optional): Norm of every initial velocity.
            (default: ``0.5``)
        interaction_strength (float, optional): Coupling constant :math:`c`.
            (default: ``1.0``)
        clip_force (bool, optional): Clip each force component to
            :math:`\pm` ``max_force`` (as the reference simulator does; it
            tames close encounters but breaks energy conservation). Set it to
            ``False`` for exact Coulomb dynamics. (default: ``True``)
        max_force (float, optional): Clipping bound. (default: ``0.1 / dt``,
            i.e. ``100``)
        seed (int, optional): Seed of the stream (EGNN's ``--seed``: 43 for
            its "nbody_small" files). (default: ``0``)
        first (int, optional): Systems of the stream skipped before the
            first one returned (their random numbers drawn, nothing
            integrated). (default: ``0``)
        box_size (float, optional): The initial reflection box; ``None``:
            none. (default: ``5.0``)

    Returns:
        :class:`ChargedSimulation`: numpy arrays (float64).

    Example:

        >>> sim = simulate_charged(4, num_steps=500, sample_every=100, seed=1)
        >>> sim.pos.shape, sim.charge.shape
        ((4, 4, 5, 3), (4, 5))
        >>> sim.steps.tolist()
        [100, 200, 300, 400]
        >>> later = simulate_charged(2, num_steps=500, seed=1, first=2)
        >>> bool((later.pos == sim.pos[2:]).all())
        True
    """
    num_sims = check_int(num_sims, 'num_sims', minimum=0)
    num_particles = check_int(num_particles, 'num_particles', minimum=2)
    num_steps = check_int(num_steps, 'num_steps', minimum=0)
    sample_every = check_int(sample_every, 'sample_every', minimum=1)
    dt = check_real(dt, 'dt', minimum=0, strict=True)
    loc_std = check_real(loc_std, 'loc_std', minimum=0, strict=True)
    vel_norm = check_real(vel_norm, 'vel_norm', minimum=0)
    interaction_strength = check_real(interaction_strength,
                                      'interaction_strength', minimum=0)
    if max_force is None:
        max_force = 0.1 / dt
    max_force = check_real(max_force, 'max_force', minimum=0, strict=True)
    seed = check_int(seed, 'seed', minimum=0)
    first = check_int(first, 'first', minimum=0)
    if box_size is not None:
        box_size = check_real(box_size, 'box_size', minimum=0, strict=True)
    init = _initial_conditions(seed, first, num_sims, num_particles,
                              num_steps, sample_every, loc_std, vel_norm,
                              box_size)
    return _simulate(init, num_steps, sample_every, dt,
                     interaction_strength, bool(clip_force), max_force)


def _initial_conditions(seed: int, first: int, num_sims: int,
                       num_particles: int, num_steps: int, sample_every: int,
                       loc_std: float, vel_norm: float,
                       box_size: Optional[float]
                       ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""``(charge [S, N], pos [S, N, 3], vel [S, N, 3])``: the initial state
    of systems ``first .. first + num_sims - 1`` of the stream of ``seed``,
    drawn as :func:`simulate_charged` describes (float64)."""
    rs = np.random.RandomState(seed)
    N = num_particles
    frames = max(num_charged_frames(num_steps, sample_every), 0)
    scale = loc_std * (N / 5.0) ** (1.0 / 3.0)
    charge = np.empty((num_sims, N))
    pos = np.empty((num_sims, N, 3))
    vel = np.empty((num_sims, N, 3))
    # The legacy normals form one sequence whatever the sizes of the calls
    # (an odd count leaves its spare for the next call), so one call per
    # system draws the positions, the velocities and EGNN's two noise
    # arrays (variance 0 there: drawn, never added) in EGNN's order.
    per_system = 2 * 3 * N + 2 * frames * 3 * N
    for s in range(first + num_sims):
        u = rs.random_sample(N)
        z = rs.standard_normal(per_system)
        if s >= first:
            k = s - first
            charge[k] = np.where(u < 0.5, -1.0, 1.0)
            pos[k] = z[:3 * N].reshape(3, N).T * scale
            vel[k] = z[3 * N:6 * N].reshape(3, N).T
    norm = np.sqrt((vel ** 2).sum(axis=-1, keepdims=True))
    vel = vel * vel_norm / norm
    if box_size is not None:  # reflect into the box, velocity inwards
        over, under = pos > box_size, pos < -box_size
        pos = np.where(over, 2 * box_size - pos, pos)
        pos = np.where(under, -2 * box_size - pos, pos)
        vel = np.where(over, -np.abs(vel), np.where(under, np.abs(vel),
                                                    vel))
    return charge, pos, vel


def _simulate(init: Tuple[np.ndarray, np.ndarray, np.ndarray],
              num_steps: int, every: int, dt: float, strength: float,
              clip: bool, max_force: float) -> ChargedSimulation:
    charge, pos0, vel0 = init
    S, N = charge.shape
    num_frames = max(num_charged_frames(num_steps, every), 0)
    # [S, 3, N] as EGNN's [3, N] per system
    x = np.ascontiguousarray(pos0.transpose(0, 2, 1))
    v = np.ascontiguousarray(vel0.transpose(0, 2, 1))
    qq = strength * (charge[:, :, None] * charge[:, None, :])  # [S, N, N]
    diagonal = np.eye(N, dtype=bool)

    def force(x: np.ndarray) -> np.ndarray:
        # EGNN's arithmetic, in its order (the sums below are numpy's
        # reduction order; the Gram matrix is the same BLAS product)
        sq = x[:, 0] * x[:, 0]
        sq += x[:, 1] * x[:, 1]
        sq += x[:, 2] * x[:, 2]  # [S, N]
        gram = np.matmul(x.transpose(0, 2, 1), x)  # [S, N, N]
        d2 = (sq[:, :, None] + sq[:, None, :]) - 2 * gram
        with np.errstate(divide='ignore', invalid='ignore'):
            size = qq / np.power(d2, 1.5)
        size[:, diagonal] = 0.0
        # F[:, c, i] = sum_j size[:, i, j] * (x[:, c, i] - x[:, c, j])
        F = size[:, None, :, 0] * (x - x[:, :, 0:1])
        for j in range(1, N):
            F += size[:, None, :, j] * (x - x[:, :, j:j + 1])
        if clip:
            F = np.minimum(np.maximum(F, -max_force), max_force)
        return F

    pos = np.empty((S, num_frames, N, 3))
    vel = np.empty_like(pos)
    last = num_frames * every  # no need to integrate past the last frame
    if last > 0:
        v += dt * force(x)
    for step in range(1, last + 1):
        x += dt * v
        if step % every == 0:
            k = step // every - 1
            pos[:, k] = x.transpose(0, 2, 1)
            vel[:, k] = v.transpose(0, 2, 1)
        if step < last:
            v += dt * force(x)
    steps = (np.arange(num_frames) + 1) * every
    return ChargedSimulation(pos=pos, vel=vel, charge=charge,
                             pos_initial=pos0, vel_initial=vel0, steps=steps)


def charged_energy(pos: np.ndarray, vel: np.ndarray, charge: np.ndarray,
                   interaction_strength: float = 1.0) -> np.ndarray:
    r"""Total energy (kinetic plus Coulomb potential) of charged systems:
    :math:`\sum_i \tfrac12 |v_i|^2 + c \sum_{i<j} q_i q_j / |x_i - x_j|`
    (unit masses). It is conserved by the unclipped dynamics of
    :func:`simulate_charged`.

    Args:
        pos (numpy.ndarray): Positions ``[..., N, 3]``.
        vel (numpy.ndarray): Velocities ``[..., N, 3]``.
        charge (numpy.ndarray): Charges ``[..., N]`` (broadcastable, e.g.
            ``[S, 1, N]`` against frames ``[S, T, N, 3]``).
        interaction_strength (float, optional): Coupling :math:`c`.

    Returns:
        numpy.ndarray: Energies of shape ``pos.shape[:-2]``.

    Example:

        >>> pos = np.array([[0., 0., 0.], [2., 0., 0.]])
        >>> vel = np.array([[1., 0., 0.], [0., 0., 0.]])
        >>> float(charged_energy(pos, vel, np.array([1., -1.])))
        0.0
    """
    pos, vel, charge = (np.asarray(a, dtype=np.float64)
                        for a in (pos, vel, charge))
    N = pos.shape[-2]
    ia, ja = np.triu_indices(N, 1)  # the pairs i < j
    kinetic = 0.5 * (vel ** 2).sum(axis=(-1, -2))
    r = np.linalg.norm(pos[..., ia, :] - pos[..., ja, :], axis=-1)
    potential = (charge[..., ia] * charge[..., ja] / r).sum(-1)
    return kinetic + interaction_strength * potential


class ChargedParticles(CachedDataset):
    r"""The charged-particle N-body dataset of EGNN (Satorras et al., 2021),
    simulated with :func:`simulate_charged` on first use and cached: with
    the defaults, EGNN's "nbody_small" data, the same numbers as its
    generator's files (``generate_dataset.py --num-train 10000 --seed 43
    --sufix small``; EGNN trains on the first 3,000 training systems).

    Each graph is one system of ``num_particles`` charged particles: the
    input is the state at frame ``frame_in`` and the target the positions
    at frame ``frame_out`` (frame ``k`` is the state after
    ``(k + 1) * sample_every`` integration steps; the defaults 30 and 40
    reproduce the EGNN "nbody_small" task).

    Attributes of every :class:`~torch_geometric.data.Data` (``N`` =
    ``num_particles``, ``E = N (N - 1)``), all float32 unless stated:

    * ``pos`` ``[N, 3]`` (point): positions at ``frame_in``.
    * ``vel`` ``[N, 3]`` (vector): velocities at ``frame_in``.
    * ``charge`` ``[N, 1]`` (scalar): charges, :math:`\pm 1`.
    * ``y`` ``[N, 3]`` (point): positions at ``frame_out``.
    * ``edge_index`` ``[2, E]`` (long): the complete directed graph, every
      ordered pair ``(i, j)`` with ``i != j`` (20 edges for 5 particles).
    * ``edge_attr`` ``[E, 1]`` (scalar): the charge product
      :math:`q_i q_j` of each edge.

    EGNN's node feature :math:`|v_i|` is not stored: compute it from
    ``vel`` (EGNN's models also append :math:`|x_i - x_j|^2` to the edge
    attribute). The splits are EGNN's: one random stream seeded with
    ``seed`` (see :func:`simulate_charged`) gives ``train_pool`` training
    systems, then ``num_val`` validation systems, then ``num_test`` test
    systems; the training split is the first ``num_train`` of its pool.
    Only the requested split is integrated. The processed file name
    encodes every
    parameter that determines its content, so changing one regenerates the
    file (written atomically);
    :attr:`~torch_geometric.data.Dataset.processed_paths` shows it.

    Args:
        root (str): Root directory; files go to ``root/processed``.
        split (str, optional): ``"train"``, ``"val"`` or ``"test"``.
            (default: ``"train"``)
        num_train (int, optional): Training trajectories. (default: ``3000``)
        num_val (int, optional): Validation trajectories.
            (default: ``2000``)
        num_test (int, optional): Test trajectories. (default: ``2000``)
        seed (int, optional): Seed of the simulation's stream (EGNN's
            "nbody_small": 43). (default: ``43``)
        train_pool (int, optional): Training systems generated before the
            validation ones (EGNN: 10,000); ``num_train`` of them are used.
            (default: ``10000``)
        frame_in (int, optional): Input frame. (default: ``30``)
        frame_out (int, optional): Target frame. (default: ``40``)
        num_particles (int, optional): Particles per system.
            (default: ``5``)
        num_steps (int, optional): Length of the reference simulation, which
            bounds the valid frames (``frame_out < num_steps // sample_every
            - 1``) and sets the random numbers each system draws; only the
            steps up to ``frame_out`` are integrated. (default: ``5000``)
        sample_every (int, optional): Steps between frames.
            (default: ``100``)
        dt (float, optional): Time step. (default: ``0.001``)
        loc_std (float, optional): Scale of initial positions.
            (default: ``1.0``)
        vel_norm (float, optional): Initial speed. (default: ``0.5``)
        interaction_strength (float, optional): Coupling constant.
            (default: ``1.0``)
        clip_force (bool, optional): Clip force components to
            :math:`\pm 0.1 / dt` as the reference does. (default: ``True``)
        transform (callable, optional): Applied to every access.
        pre_transform (callable, optional): Applied before caching.
        pre_filter (callable, optional): Filters graphs before caching.
        force_reload (bool, optional): Regenerate even if cached.
            (default: ``False``)

    Example:

        >>> import tempfile
        >>> ds = ChargedParticles(tempfile.mkdtemp(), split='val',
        ...                       num_val=4, seed=0)
        >>> len(ds), ds[0].pos.shape, ds[0].edge_index.shape
        (4, torch.Size([5, 3]), torch.Size([2, 20]))
    """
    SPLITS = ('train', 'val', 'test')

    def __init__(
        self,
        root: str,
        split: str = 'train',
        num_train: int = 3000,
        num_val: int = 2000,
        num_test: int = 2000,
        seed: int = 43,
        train_pool: int = 10000,
        frame_in: int = 30,
        frame_out: int = 40,
        num_particles: int = 5,
        num_steps: int = 5000,
        sample_every: int = 100,
        dt: float = 0.001,
        loc_std: float = 1.0,
        vel_norm: float = 0.5,
        interaction_strength: float = 1.0,
        clip_force: bool = True,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        pre_filter: Optional[Callable] = None,
        force_reload: bool = False,
    ) -> None:
        self.split = check_choice(split, 'split', self.SPLITS)
        self.sizes = split_sizes(self.split, num_train, num_val, num_test,
                                 'trajectory')
        self.seed = check_int(seed, 'seed', minimum=0)
        self.train_pool = check_int(train_pool, 'train_pool', minimum=0)
        if self.sizes['train'] > self.train_pool:
            raise ValueError(f"num_train={self.sizes['train']} exceeds "
                             f"train_pool={self.train_pool} (the training "
                             f"systems generated before the validation "
                             f"ones); raise train_pool")
        self.num_particles = check_int(num_particles, 'num_particles',
                                       minimum=2)
        self.num_steps = check_int(num_steps, 'num_steps', minimum=0)
        self.sample_every = check_int(sample_every, 'sample_every', minimum=1)
        num_frames = num_charged_frames(self.num_steps, self.sample_every)
        self.frame_in = check_int(frame_in, 'frame_in', minimum=0)
        self.frame_out = check_int(frame_out, 'frame_out', minimum=0)
        if not self.frame_in < self.frame_out < num_frames:
            raise ValueError(
                f"need 0 <= frame_in < frame_out < {num_frames} (the number "
                f"of frames of a {self.num_steps}-step run saved every "
                f"{self.sample_every} steps), got frame_in={frame_in}, "
                f"frame_out={frame_out}")
        self.dt = check_real(dt, 'dt', minimum=0, strict=True)
        self.loc_std = check_real(loc_std, 'loc_std', minimum=0, strict=True)
        self.vel_norm = check_real(vel_norm, 'vel_norm', minimum=0)
        self.interaction_strength = check_real(
            interaction_strength, 'interaction_strength', minimum=0)
        self.clip_force = bool(clip_force)
        super().__init__(root, transform, pre_transform, pre_filter,
                         force_reload=force_reload)
        self.load_processed()

    @property
    def processed_file_names(self) -> List[str]:
        return [cache_name(f'charged_{self.split}', {
            'gen': 'egnn',  # EGNN's stream, integrator and split layout
            'n': self.sizes[self.split],
            'seed': self.seed,
            'first': self.first,
            'steps': self.num_steps,
            'in': self.frame_in,
            'out': self.frame_out,
            'p': self.num_particles,
            'every': self.sample_every,
            'dt': self.dt,
            'loc': self.loc_std,
            'vel': self.vel_norm,
            'k': self.interaction_strength,
            'clip': self.clip_force,
        })]

    def process(self) -> None:
        init = _initial_conditions(
            self.seed, self.first, self.sizes[self.split],
            self.num_particles, self.num_steps, self.sample_every,
            self.loc_std, self.vel_norm, BOX_SIZE)
        sim = _simulate(init, (self.frame_out + 2) * self.sample_every,
                        self.sample_every, self.dt,
                        self.interaction_strength, self.clip_force,
                        0.1 / self.dt)
        pos = to_float(sim.pos[:, self.frame_in])
        vel = to_float(sim.vel[:, self.frame_in])
        y = to_float(sim.pos[:, self.frame_out])
        charge = to_float(sim.charge)
        edge_index = full_edge_index(self.num_particles)
        row, col = edge_index
        data_list = []
        for i in range(pos.size(0)):
            q = charge[i].view(-1, 1)
            data_list.append(Data(
                pos=pos[i], vel=vel[i], charge=q, y=y[i],
                edge_index=edge_index.clone(),
                edge_attr=q[row] * q[col]))
        self.save_processed(data_list)

    @property
    def first(self) -> int:
        r"""The index in the seed's stream of this split's first system."""
        return {'train': 0, 'val': self.train_pool,
                'test': self.train_pool + self.sizes['val']}[self.split]

__all__ = ['ChargedSimulation', 'simulate_charged',
           'charged_energy',
           'num_charged_frames', 'ChargedParticles']
