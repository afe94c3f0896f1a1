r"""A classical **stand-in** for MD17: Langevin dynamics of the eight MD17
molecules under the MMFF94 force field (RDKit), written in the MD17 file
layout. It is not MD17 (DFT) data and must never be compared with MD17
numbers; it exists so that the MD17 pipeline can be exercised where the real
files are not available. Needs the ``md`` extra (``pip install rdkit``)."""
import os.path as osp
from typing import Dict, Optional

import numpy as np

from torch_geometric_remul._checks import (
    check_int,
    check_real,
)
from torch_geometric_remul._io import atomic_write
from torch_geometric_remul.datasets._md17_files import (
    MOLECULES,
    STANDIN_KEY,
    canonical_molecule,
    standin_file_name,
)

#: SMILES of the eight MD17 molecules (hydrogens are added by RDKit).
STANDIN_SMILES: Dict[str, str] = {
    'aspirin': 'CC(=O)Oc1ccccc1C(=O)O',
    'benzene': 'c1ccccc1',
    'ethanol': 'CCO',
    'malonaldehyde': 'O=CCC=O',
    'naphthalene': 'c1ccc2ccccc2c1',
    'salicylic_acid': 'O=C(O)c1ccccc1O',
    'toluene': 'Cc1ccccc1',
    'uracil': 'O=c1cc[nH]c(=O)[nH]1',
}

#: Boltzmann constant in kcal/mol/K.
KB_KCAL = 0.0019872041
#: 1 kcal/mol/Å per amu, in Å/fs^2.
ACCEL_UNIT = 4.184e-4
#: Langevin friction (1/fs) during equilibration.
EQUILIBRATION_FRICTION = 0.02

STANDIN_THEORY = ('MMFF94 classical force field (RDKit), Langevin dynamics: '
                  'a STAND-IN for MD17, not DFT data')


def _require_rdkit():
    try:
        from rdkit import Chem
        from rdkit.Chem import AllChem
    except ImportError as e:  # pragma: no cover - depends on environment
        raise ImportError(
            "the MD17 stand-in generator needs RDKit: install the 'md' extra "
            "(pip install 'torch-geometric-remul[md]' or pip install rdkit)"
        ) from e
    return Chem, AllChem


def simulate_md17_standin(
    molecule: str,
    num_frames: int = 30000,
    time_step_fs: float = 0.5,
    temperature: float = 500.0,
    friction_per_fs: float = 0.001,
    equilibration_steps: int = 2000,
    save_every: int = 1,
    seed: int = 0,
    remove_rigid_motion: bool = True,
) -> Dict[str, np.ndarray]:
    r"""Simulates a classical **stand-in** trajectory for an MD17 molecule
    and returns it in the MD17 layout. Not DFT data: never compare results
    on it with MD17 numbers.

    The molecule is built from SMILES (:data:`STANDIN_SMILES`) with
    hydrogens, embedded with ETKDG (v3, seeded) and relaxed with MMFF94;
    then a Langevin integrator (BAOAB splitting, numpy) runs at
    ``temperature`` with MMFF94 forces from RDKit. At every step the energy
    is evaluated (``ff.CalcEnergy(pos)``) **before** the gradient
    (``ff.CalcGrad(pos)``), since RDKit otherwise returns the gradient of the
    previous configuration. Initial velocities are Maxwell-Boltzmann with
    the centre-of-mass motion removed; ``equilibration_steps`` steps with a
    strong friction (at least 0.02/fs) are run and discarded before frames
    are saved with friction ``friction_per_fs``.

    A per-atom Langevin thermostat does not conserve momentum: left alone,
    the whole molecule diffuses (aspirin's centre of mass moves about 5 Å
    in 2.5 ps at 500 K) and tumbles, and a model asked to predict positions
    picoseconds ahead mostly faces that random rigid motion. With
    ``remove_rigid_motion`` (the default) the centre-of-mass velocity and
    the angular velocity of the whole molecule are projected out of the
    velocities after every thermostat step, so the centre of mass stays
    where it started and the trajectory holds the internal motion (the
    thermostat then acts on the :math:`3N - 6` internal degrees of
    freedom).

    Units follow MD17: positions in Å, energies in kcal/mol, forces in
    kcal/mol/Å, masses in amu; one saved frame every ``save_every`` steps
    of ``time_step_fs`` fs (MD17 saves every 0.5 fs step).

    Args:
        molecule (str): One of the eight MD17 molecules.
        num_frames (int, optional): Frames to save. (default: ``30000``)
        time_step_fs (float, optional): Time step in fs. (default: ``0.5``)
        temperature (float, optional): Temperature in K. (default: ``500``)
        friction_per_fs (float, optional): Langevin friction in 1/fs.
            (default: ``0.001``, i.e. 1/ps)
        equilibration_steps (int, optional): Discarded initial steps.
            (default: ``2000``)
        save_every (int, optional): Steps between saved frames.
            (default: ``1``)
        seed (int, optional): Seed of the embedding and of the thermostat.
            (default: ``0``)
        remove_rigid_motion (bool, optional): Remove centre-of-mass and
            rigid rotational motion after every thermostat step (see
            above). (default: ``True``)

    Returns:
        dict: ``z`` ``[N]`` (int64), ``R`` ``[T, N, 3]``, ``E`` ``[T, 1]``,
        ``F`` ``[T, N, 3]`` (float64) as in MD17, plus the metadata
        ``standin`` (``True``), ``name``, ``theory``, ``smiles``,
        ``temperature``, ``time_step_fs``, ``friction_per_fs``,
        ``save_every`` and ``seed``.

    Example:

        >>> out = simulate_md17_standin('ethanol', num_frames=5,
        ...                             equilibration_steps=0)
        >>> out['R'].shape, out['E'].shape, bool(out['standin'])
        ((5, 9, 3), (5, 1), True)
    """
    molecule = canonical_molecule(molecule)
    num_frames = check_int(num_frames, 'num_frames', minimum=1)
    dt = check_real(time_step_fs, 'time_step_fs', minimum=0, strict=True)
    temperature = check_real(temperature, 'temperature', minimum=0)
    gamma = check_real(friction_per_fs, 'friction_per_fs', minimum=0)
    equilibration_steps = check_int(equilibration_steps,
                                    'equilibration_steps', minimum=0)
    save_every = check_int(save_every, 'save_every', minimum=1)
    seed = check_int(seed, 'seed', minimum=0)
    remove_rigid_motion = bool(remove_rigid_motion)
    smiles = STANDIN_SMILES[molecule]
    z, mass, x, ff = _relaxed_molecule(molecule, smiles, seed)

    rng = np.random.default_rng(seed)
    kT = KB_KCAL * temperature
    sigma = np.sqrt(kT * ACCEL_UNIT / mass)  # thermal speed, Å/fs
    v = rng.standard_normal((z.size, 3)) * sigma
    v -= (mass * v).sum(0) / mass.sum()
    if remove_rigid_motion:
        v = _without_rigid_motion(x, v, mass)
    R, E, F = _langevin(ff, x, v, mass, sigma, rng, dt=dt, gamma=gamma,
                        equilibration_steps=equilibration_steps,
                        num_frames=num_frames, save_every=save_every,
                        remove_rigid_motion=remove_rigid_motion)
    if not (np.isfinite(R).all() and np.isfinite(E).all()):
        raise RuntimeError(  # pragma: no cover - a blown-up integration
            f"the stand-in simulation of {molecule!r} diverged; lower "
            f"'time_step_fs' or 'temperature'")
    return {
        'z': z, 'R': R, 'E': E, 'F': F,
        STANDIN_KEY: np.array(True),
        'name': np.array(f'{molecule} (classical stand-in)'),
        'theory': np.array(STANDIN_THEORY),
        'smiles': np.array(smiles),
        'temperature': np.array(temperature),
        'time_step_fs': np.array(dt),
        'friction_per_fs': np.array(gamma),
        'save_every': np.array(save_every),
        'seed': np.array(seed),
        'remove_rigid_motion': np.array(remove_rigid_motion),
    }


def _relaxed_molecule(molecule: str, smiles: str, seed: int):
    """``(z, mass [N, 1], positions [N, 3], force field)`` of the molecule
    built from ``smiles`` with hydrogens, embedded with ETKDG (v3, seeded)
    and relaxed with MMFF94."""
    Chem, AllChem = _require_rdkit()
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    params = AllChem.ETKDGv3()
    params.randomSeed = seed % (2 ** 31)
    if AllChem.EmbedMolecule(mol, params) != 0:  # pragma: no cover
        raise RuntimeError(f"RDKit could not embed {molecule!r} ({smiles})")
    props = AllChem.MMFFGetMoleculeProperties(mol)
    ff = AllChem.MMFFGetMoleculeForceField(mol, props)
    if ff is None:  # pragma: no cover
        raise RuntimeError(f"no MMFF94 parameters for {molecule!r}")
    ff.Initialize()
    ff.Minimize(maxIts=2000)
    z = np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int64)
    mass = np.array([a.GetMass() for a in mol.GetAtoms()])[:, None]
    x = np.array(ff.Positions(), dtype=np.float64).reshape(-1, 3)
    return z, mass, x, ff


def _without_rigid_motion(x: np.ndarray, v: np.ndarray,
                          mass: np.ndarray) -> np.ndarray:
    """``v`` without the centre-of-mass velocity and the rigid rotation:
    linear momentum, then angular momentum about the centre of mass
    (omega = I^-1 L, v -= omega x r; pinv: safe for linear molecules)."""
    v = v - (mass * v).sum(0) / mass.sum()
    r = x - (mass * x).sum(0) / mass.sum()
    L = (mass * np.cross(r, v)).sum(0)
    inertia = (mass[:, :, None] * ((r * r).sum(1)[:, None, None] *
                                   np.eye(3) - r[:, :, None] *
                                   r[:, None, :])).sum(0)
    omega = np.linalg.pinv(inertia) @ L
    return v - np.cross(omega, r)


def _energy_and_force(ff, x: np.ndarray):
    """MMFF94 energy and forces at ``x``; the energy must be evaluated
    before the gradient (RDKit returns a stale gradient otherwise)."""
    flat = x.ravel().tolist()
    e = ff.CalcEnergy(flat)
    grad = np.asarray(ff.CalcGrad(flat)).reshape(x.shape)
    return e, -grad


def _langevin(ff, x: np.ndarray, v: np.ndarray, mass: np.ndarray,
              sigma: np.ndarray, rng: np.random.Generator, *, dt: float,
              gamma: float, equilibration_steps: int, num_frames: int,
              save_every: int, remove_rigid_motion: bool):
    """The BAOAB Langevin run from ``(x, v)`` (both updated in place):
    ``equilibration_steps`` strongly coupled steps, then ``num_frames``
    saved frames every ``save_every`` steps; returns ``(R, E, F)``."""
    def ou_coefficients(gamma: float):
        c1 = np.exp(-gamma * dt)
        return c1, np.sqrt(1.0 - c1 * c1) * sigma

    N = x.shape[0]
    # Equilibration couples strongly to the bath (relaxation time 50 fs) so
    # that the relaxed, cold start reaches the temperature quickly.
    c1, c2 = ou_coefficients(max(gamma, EQUILIBRATION_FRICTION))
    e, F = _energy_and_force(ff, x)
    R = np.empty((num_frames, N, 3))
    E = np.empty((num_frames, 1))
    Fs = np.empty((num_frames, N, 3))
    total = equilibration_steps + num_frames * save_every
    k = 0
    for step in range(1, total + 1):
        if step == equilibration_steps + 1:
            c1, c2 = ou_coefficients(gamma)
        v += (0.5 * dt * ACCEL_UNIT) * F / mass  # B
        x += (0.5 * dt) * v  # A
        v *= c1  # O
        v += c2 * rng.standard_normal((N, 3))
        if remove_rigid_motion:
            v = _without_rigid_motion(x, v, mass)
        x += (0.5 * dt) * v  # A
        e, F = _energy_and_force(ff, x)
        v += (0.5 * dt * ACCEL_UNIT) * F / mass  # B
        if (step > equilibration_steps
                and (step - equilibration_steps) % save_every == 0):
            R[k], E[k, 0], Fs[k] = x, e, F
            k += 1
    return R, E, Fs


def generate_md17_standin(
    molecule: str,
    root: Optional[str] = None,
    path: Optional[str] = None,
    overwrite: bool = False,
    **kwargs,
) -> str:
    r"""Simulates a classical **stand-in** trajectory with
    :func:`simulate_md17_standin` and writes it (atomically) as an MD17-style
    ``.npz`` file (keys ``z, R, E, F`` plus the stand-in metadata).

    The file goes to ``path``, or to
    ``root/<molecule>/raw/md17_<molecule>_standin.npz``, where
    :class:`~torch_geometric_remul.datasets.MD17Trajectories` finds it with
    ``source="standin"``. The name, the ``standin`` key and the ``theory``
    string all mark it as a stand-in; the dataset warns whenever it reads
    one. An existing file is kept unless ``overwrite``.

    Args:
        molecule (str): One of the eight MD17 molecules.
        root (str, optional): Dataset root (see above).
        path (str, optional): Explicit output file (takes precedence).
        overwrite (bool, optional): Regenerate an existing file.
            (default: ``False``)
        **kwargs: Passed to :func:`simulate_md17_standin`.

    Returns:
        str: The path of the file.

    Example:

        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> p = generate_md17_standin('ethanol', root=root, num_frames=40,
        ...                           equilibration_steps=0)
        >>> osp.basename(p)
        'md17_ethanol_standin.npz'
        >>> from torch_geometric_remul.datasets import MD17Trajectories
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter('ignore')
        ...     ds = MD17Trajectories(root, 'ethanol', source='standin',
        ...                           delta_frame=5, margin=0, num_train=4,
        ...                           num_val=4, num_test=4)
        >>> ds.is_standin, ds[0].pos.shape
        (True, torch.Size([3, 3]))
    """
    molecule = canonical_molecule(molecule)
    if path is None:
        if root is None:
            raise ValueError("give 'root' (the dataset root) or 'path' (the "
                             "output file)")
        path = osp.join(osp.expanduser(str(root)), molecule, 'raw',
                        standin_file_name(molecule))
    path = osp.expanduser(str(path))
    if osp.exists(path) and not overwrite:
        return path
    arrays = simulate_md17_standin(molecule, **kwargs)
    atomic_write(path, lambda f: np.savez(f, **arrays))
    return path


__all__ = ['STANDIN_SMILES', 'simulate_md17_standin',
           'generate_md17_standin']

if set(STANDIN_SMILES) != set(MOLECULES):  # pragma: no cover
    raise AssertionError('the stand-in must cover exactly the MD17 molecules')
