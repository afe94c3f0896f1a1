r"""Molecule names, file names and the reader of MD17-format ``.npz`` files
(shared by :mod:`.md17` and :mod:`.md17_standin`)."""
import os.path as osp
import warnings
from collections import Counter
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from torch_geometric_remul._checks import check_str

#: canonical name -> (official MD17 file, official rMD17 file, PyG name,
#: chemical formula as {atomic number: count})
MOLECULES: Dict[str, Tuple[str, str, str, Dict[int, int]]] = {
    'aspirin': ('md17_aspirin.npz', 'rmd17_aspirin.npz', 'aspirin',
                {6: 9, 1: 8, 8: 4}),
    'benzene': ('md17_benzene2017.npz', 'rmd17_benzene.npz', 'benzene',
                {6: 6, 1: 6}),
    'ethanol': ('md17_ethanol.npz', 'rmd17_ethanol.npz', 'ethanol',
                {6: 2, 1: 6, 8: 1}),
    'malonaldehyde': ('md17_malonaldehyde.npz', 'rmd17_malonaldehyde.npz',
                      'malonaldehyde', {6: 3, 1: 4, 8: 2}),
    'naphthalene': ('md17_naphthalene.npz', 'rmd17_naphthalene.npz',
                    'naphthalene', {6: 10, 1: 8}),
    'salicylic_acid': ('md17_salicylic.npz', 'rmd17_salicylic.npz',
                       'salicylic acid', {6: 7, 1: 6, 8: 3}),
    'toluene': ('md17_toluene.npz', 'rmd17_toluene.npz', 'toluene',
                {6: 7, 1: 8}),
    'uracil': ('md17_uracil.npz', 'rmd17_uracil.npz', 'uracil',
               {6: 4, 1: 4, 7: 2, 8: 2}),
}

MD17_URL = 'http://quantum-machine.org/gdml/data/npz/{file}'
MD17_PAGE = 'http://www.sgdml.org/#datasets'
RMD17_URL = ('https://figshare.com/articles/dataset/'
             'Revised_MD17_dataset_rMD17_/12672038')

#: Keys of the two real layouts: (atomic numbers, positions, energies, forces)
MD17_KEYS = ('z', 'R', 'E', 'F')
RMD17_KEYS = ('nuclear_charges', 'coords', 'energies', 'forces')

#: Metadata key that marks a classical stand-in file.
STANDIN_KEY = 'standin'

_SYMBOLS = {1: 'H', 6: 'C', 7: 'N', 8: 'O'}


def canonical_molecule(molecule: str) -> str:
    r"""The canonical name (one of ``MD17_MOLECULES``) of an MD17 molecule
    given as ``"Salicylic acid"``, ``"salicylic-acid"``, ``"salicylic"``,
    ``"md17_ethanol"`` etc.

    Raises:
        ValueError: For a molecule that is not one of the eight.

    Example:

        >>> canonical_molecule('Salicylic acid')
        'salicylic_acid'
    """
    check_str(molecule, 'molecule')
    key = molecule.strip().lower().replace('-', '_').replace(' ', '_')
    if key == 'salicylic':
        key = 'salicylic_acid'
    if key.startswith('md17_'):
        key = key[5:]
    if key not in MOLECULES:
        raise ValueError(f"unknown MD17 molecule {molecule!r}; expected one "
                         f"of {sorted(MOLECULES)}")
    return key


def formula(counts: Dict[int, int]) -> str:
    order = sorted(counts, key=lambda z: (z != 6, z != 1, z))
    return ''.join(f'{_SYMBOLS.get(z, f"[Z={z}]")}'
                   f'{counts[z] if counts[z] > 1 else ""}' for z in order)


def standin_file_name(molecule: str) -> str:
    return f'md17_{canonical_molecule(molecule)}_standin.npz'


def candidate_paths(root: str, molecule: str, source: str
                    ) -> List[Tuple[str, str]]:
    r"""``(kind, path)`` pairs searched for ``source`` in ``"auto"``,
    ``"md17"``, ``"rmd17"``, ``"standin"``."""
    md17, rmd17, pyg, _ = MOLECULES[molecule]
    raw = osp.join(root, molecule, 'raw')
    pyg_raw = osp.join(root, pyg, 'raw')
    out = []
    if source in ('auto', 'md17'):
        for d in dict.fromkeys([raw, pyg_raw]):
            for f in dict.fromkeys([md17, f'md17_{molecule}.npz']):
                out.append(('md17', osp.join(d, f)))
    if source in ('auto', 'rmd17'):
        for f in dict.fromkeys([rmd17, f'rmd17_{molecule}.npz']):
            out.append(('rmd17', osp.join(raw, f)))
        out.append(('rmd17', osp.join(root, 'raw', 'rmd17', 'npz_data',
                                      rmd17)))
    if source == 'standin':
        out.append(('standin', osp.join(raw, standin_file_name(molecule))))
    return out


def missing_file_message(root: str, molecule: str, source: str,
                         searched: List[str]) -> str:
    md17, rmd17, _, counts = MOLECULES[molecule]
    raw = osp.join(root, molecule, 'raw')
    lines = [f"No {source if source != 'auto' else 'MD17 or rMD17'} "
             f"trajectory file for molecule {molecule!r} "
             f"({formula(counts)}) was found. This package downloads "
             f"nothing; place the file yourself:"]
    if source in ('auto', 'md17'):
        lines.append(f"  * MD17 (sGDML layout, keys z, R, E, F): download "
                     f"{MD17_URL.format(file=md17)} (listed at {MD17_PAGE}) "
                     f"and save it as {osp.join(raw, md17)}")
    if source in ('auto', 'rmd17'):
        lines.append(f"  * rMD17 (keys nuclear_charges, coords, energies, "
                     f"forces): take npz_data/{rmd17} from rmd17.tar.bz2 at "
                     f"{RMD17_URL} and save it as {osp.join(raw, rmd17)}")
    if source == 'standin':
        lines.append(f"  * the classical stand-in: generate it with "
                     f"torch_geometric_remul.datasets.generate_md17_standin("
                     f"{molecule!r}, root={root!r}), which writes "
                     f"{osp.join(raw, standin_file_name(molecule))}")
    lines.append("  or pass path='/path/to/file.npz' explicitly.")
    lines.append("Searched: " + ', '.join(searched))
    return '\n'.join(lines)



def standin_flag(value: np.ndarray, path: str) -> bool:
    r"""The stand-in marker of ``path``: a single boolean (or integer)."""
    value = np.asarray(value)
    if value.size != 1 or not (value.dtype == np.bool_ or np.issubdtype(
            value.dtype, np.integer)):
        raise ValueError(f"{path}: the {STANDIN_KEY!r} key marks a "
                         f"classical stand-in and must hold a single "
                         f"boolean (got shape {list(value.shape)}, dtype "
                         f"{value.dtype}); a real MD17/rMD17 file has no "
                         f"such key")
    return bool(value.reshape(()))


#: Lengths (in Å) of one unit of those a file may use by mistake.
LENGTH_UNITS = (('nm', 10.0), ('bohr', 0.529177210903), ('pm', 0.01))

#: Shortest interatomic distance (Å, median over the first frames) of a
#: plausible MD17 molecule: bonds to hydrogen are about 0.96-1.09 Å at
#: equilibrium (0.88-1.16 Å measured in the rMD17 files, thermal motion
#: included).
BOND_RANGE = (0.75, 1.35)


def check_length_unit(path: str, key: str, pos: np.ndarray,
                      num_frames: int = 10) -> None:
    r"""Warns (naming the file and the likely unit) when the shortest
    interatomic distance of the first ``num_frames`` frames of ``pos``
    ``[T, N, 3]`` (the median over those frames) is not a bond length in
    Å: coordinates in nm give ~0.1, in bohr ~1.8-2.1."""
    frames = pos[:num_frames]
    n = frames.shape[1]
    if n < 2:
        return
    dist = np.linalg.norm(frames[:, :, None] - frames[:, None], axis=-1)
    dist[:, np.arange(n), np.arange(n)] = np.inf
    d = float(np.median(dist.reshape(len(frames), -1).min(axis=1)))
    lo, hi = BOND_RANGE
    if lo <= d <= hi:
        return
    likely = [(u, f) for u, f in LENGTH_UNITS if lo <= d * f <= hi]
    if likely:
        unit, factor = likely[0]
        hint = (f"the coordinates look like {unit} (times {factor:g} gives "
                f"Å); convert them to Å")
    else:
        hint = ("the coordinates are not in Å (nor in nm, bohr or pm): "
                "check the file")
    warnings.warn(
        f"{path}: the shortest interatomic distance in {key!r} is {d:.3g} "
        f"(median over the first {len(frames)} frames), but bonds to "
        f"hydrogen in MD17 molecules are {lo}-{hi} Å; {hint}",
        UserWarning, stacklevel=3)


def open_npz(path: str, expected: str = '') -> 'np.lib.npyio.NpzFile':
    r"""Opens ``path`` as an ``.npz`` archive without unpickling; a missing,
    empty, non-zip or unreadable file raises :class:`FileNotFoundError` or
    :class:`ValueError` naming the file (``expected`` describes the keys
    the caller wants, for the message)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, 'rb') as f:
        magic = f.read(4)
    expected = expected or (f"an MD17 file with keys {list(MD17_KEYS)} or "
                            f"an rMD17 file with keys {list(RMD17_KEYS)}")
    if magic != b'PK\x03\x04':
        what = ('empty' if not magic else 'a single .npy array'
                if magic.startswith(b'\x93NUM') else 'not a zip archive')
        raise ValueError(f"{path}: not an .npz archive ({what}); expected "
                         f"{expected}")
    # the file is opened here, not by np.load, so that it is closed even
    # when the archive turns out truncated (np.load leaks it then)
    handle = open(path, 'rb')
    try:
        archive = np.load(handle, allow_pickle=False)
    except Exception as e:
        handle.close()
        raise ValueError(f"{path}: cannot be read as an .npz archive "
                         f"({type(e).__name__}: {e}); the file may be "
                         f"truncated or not an MD17 file") from None
    archive.fid = handle  # closed with the archive
    return archive


def read_array(archive, key: str, path: str) -> np.ndarray:
    r"""``archive[key]`` as an array; a damaged member raises
    :class:`ValueError` naming the file and the key."""
    try:
        return np.asarray(archive[key])
    except Exception as e:
        raise ValueError(f"{path}: cannot read array {key!r} "
                         f"({type(e).__name__}: {e}); the file may "
                         f"be truncated") from None


class Trajectory(NamedTuple):
    z: np.ndarray  # [N] int64
    pos: np.ndarray  # [T, N, 3] float64
    kind: str  # 'md17', 'rmd17' or 'standin'
    is_standin: bool


def read_trajectory(path: str, molecule: Optional[str] = None) -> Trajectory:
    r"""Reads an MD17 (``z, R, E, F``) or rMD17 (``nuclear_charges, coords,
    energies, forces``) file; every problem raises :class:`ValueError` or
    :class:`FileNotFoundError` naming the file."""
    archive = open_npz(path)
    with archive:
        keys = set(archive.files)
        if {'z', 'R'} <= keys:
            z_key, r_key, kind = 'z', 'R', 'md17'
        elif {'nuclear_charges', 'coords'} <= keys:
            z_key, r_key, kind = 'nuclear_charges', 'coords', 'rmd17'
        else:
            raise ValueError(
                f"{path}: unexpected keys {sorted(keys)}; an MD17 file holds "
                f"{list(MD17_KEYS)} and an rMD17 file "
                f"{list(RMD17_KEYS)} (atomic numbers and positions are "
                f"required)")

        def read(key: str) -> np.ndarray:
            return read_array(archive, key, path)

        z, pos = read(z_key), read(r_key)
        order = read('old_indices') if (kind == 'rmd17' and 'old_indices'
                                        in keys) else None
        is_standin = (STANDIN_KEY in keys
                      and standin_flag(read(STANDIN_KEY), path))
    if is_standin:
        kind = 'standin'

    check_atoms_and_frames(path, z, pos, z_key, r_key)
    if pos.shape[0] < 2:
        raise ValueError(f"{path}: needs at least 2 frames for velocities "
                         f"(got {pos.shape[0]})")
    if molecule is not None:
        check_composition(path, z, molecule, MOLECULES[molecule][3])
    pos = pos.astype(np.float64, copy=False)
    check_length_unit(path, r_key, pos)
    if order is not None:
        if order.shape != (pos.shape[0],):
            raise ValueError(f"{path}: 'old_indices' must have shape "
                             f"[{pos.shape[0]}] (got {list(order.shape)})")
        perm = np.argsort(order, kind='stable')
        pos = pos[perm]
        gaps = np.diff(np.asarray(order)[perm])
        if gaps.size and (gaps != 1).any():
            warnings.warn(
                f"{path}: rMD17 frames are a random subsample of the "
                f"original MD17 trajectory; they were put back in time "
                f"order by 'old_indices', but consecutive rows are "
                f"{int(gaps.min())} to {int(gaps.max())} original frames "
                f"apart, so 'delta_frame' counts rows and velocities are "
                f"differences over uneven time gaps", UserWarning,
                stacklevel=3)
    return Trajectory(z.astype(np.int64), pos, kind, is_standin)


def check_atoms_and_frames(path: str, z: np.ndarray, pos: np.ndarray,
                           z_key: str, r_key: str) -> None:
    r"""Checks the atomic numbers ``z`` ``[N]`` (integer) and the positions
    ``pos`` ``[T, N, 3]`` (finite floats) read from ``path``."""
    if z.ndim != 1 or z.size == 0 or not np.issubdtype(z.dtype,
                                                       np.integer):
        raise ValueError(f"{path}: {z_key!r} must be a non-empty 1-D integer "
                         f"array of atomic numbers (got shape "
                         f"{list(z.shape)}, dtype {z.dtype})")
    N = z.size
    if pos.ndim != 3 or pos.shape[1:] != (N, 3):
        raise ValueError(f"{path}: {r_key!r} must have shape [num_frames, "
                         f"{N}, 3] for {N} atoms (got {list(pos.shape)})")
    _check_finite_float(path, r_key, pos)


def _check_finite_float(path: str, key: str, value: np.ndarray) -> None:
    r"""A :class:`ValueError` naming ``path`` and ``key`` unless ``value``
    is a floating-point array of finite values."""
    if not np.issubdtype(value.dtype, np.floating):
        raise ValueError(f"{path}: {key!r} must be floating point (got "
                         f"{value.dtype})")
    if not np.isfinite(value).all():
        raise ValueError(f"{path}: {key!r} contains NaN or infinite "
                         f"values")


def check_composition(path: str, z: np.ndarray, molecule: str,
                      expected: Dict[int, int]) -> None:
    r"""Raises :class:`ValueError` when the atoms ``z`` of ``path`` are not
    the formula ``expected`` of ``molecule`` (a mislabelled file)."""
    found = dict(Counter(int(a) for a in z))
    if found != expected:
        raise ValueError(f"{path}: holds {formula(found)} but molecule "
                         f"{molecule!r} is {formula(expected)}; wrong "
                         f"file or wrong 'molecule'")


class LabelledFrames(NamedTuple):
    z: np.ndarray  # [N] int64
    pos: np.ndarray  # [T, N, 3] float64, Å
    energy: np.ndarray  # [T] float64, kcal/mol
    force: np.ndarray  # [T, N, 3] float64, kcal/mol/Å


def read_labelled_frames(path: str) -> LabelledFrames:
    r"""Reads the frames of an rMD17 (``nuclear_charges, coords, energies,
    forces``) or MD17 (``z, R, E, F``) file with their energies and forces,
    in file order (no re-ordering). Every problem (not an archive,
    truncated, missing key, wrong shape or dtype, non-finite value) raises
    :class:`ValueError` or :class:`FileNotFoundError` naming the file."""
    expected = (f"an rMD17 file with keys {list(RMD17_KEYS)} (or MD17 "
                f"{list(MD17_KEYS)})")
    archive = open_npz(path, expected)
    with archive:
        keys = set(archive.files)
        if set(RMD17_KEYS) <= keys:
            names = RMD17_KEYS
        elif set(MD17_KEYS) <= keys:
            names = MD17_KEYS
        else:
            raise ValueError(f"{path}: unexpected keys {sorted(keys)}; "
                             f"expected {expected}, with energies and "
                             f"forces")
        z, pos, energy, force = (read_array(archive, k, path)
                                 for k in names)
    z_key, r_key, e_key, f_key = names
    check_atoms_and_frames(path, z, pos, z_key, r_key)
    check_length_unit(path, r_key, pos)
    T, N = pos.shape[0], z.size
    if T < 1:
        raise ValueError(f"{path}: {r_key!r} holds no frame")
    if energy.shape not in ((T, ), (T, 1)):
        raise ValueError(f"{path}: {e_key!r} must have shape [{T}] (one "
                         f"energy per frame of {r_key!r}; got "
                         f"{list(energy.shape)})")
    if force.shape != (T, N, 3):
        raise ValueError(f"{path}: {f_key!r} must have shape [{T}, {N}, 3] "
                         f"like {r_key!r} (got {list(force.shape)})")
    for key, value in ((e_key, energy), (f_key, force)):
        _check_finite_float(path, key, value)
    return LabelledFrames(z.astype(np.int64), pos.astype(np.float64),
                          energy.reshape(T).astype(np.float64),
                          force.astype(np.float64))
