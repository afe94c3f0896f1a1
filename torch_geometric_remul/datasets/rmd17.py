r"""The revised MD17 (rMD17) dataset as energy + force regression (the
standard rMD17 protocol: train on at most 1000 frames of one molecule),
read from local files in the official release layout or as pre-split
files."""
import hashlib
import os
import os.path as osp
import re
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch_geometric.data import Data

from torch_geometric_remul._checks import check_choice, check_int, check_str
from torch_geometric_remul.datasets._md17_files import (
    RMD17_KEYS,
    RMD17_URL,
    check_composition,
    formula,
    open_npz,
    read_array,
    read_labelled_frames,
)
from torch_geometric_remul.datasets._utils import (
    CachedDataset,
    cache_name,
    file_fingerprint,
    to_float,
)

#: The molecules of the rMD17 release (file name stem after ``rmd17_``)
#: and their formulas ``{atomic number: count}``, used to catch a
#: mislabelled file. :class:`RMD17` reads any other molecule a file exists
#: for, without the formula check.
RMD17_FORMULAS: Dict[str, Dict[int, int]] = {
    'aspirin': {6: 9, 1: 8, 8: 4},
    'azobenzene': {6: 12, 1: 10, 7: 2},
    'benzene': {6: 6, 1: 6},
    'ethanol': {6: 2, 1: 6, 8: 1},
    'malonaldehyde': {6: 3, 1: 4, 8: 2},
    'naphthalene': {6: 10, 1: 8},
    'paracetamol': {6: 8, 1: 9, 7: 1, 8: 2},
    'salicylic': {6: 7, 1: 6, 8: 3},
    'toluene': {6: 7, 1: 8},
    'uracil': {6: 4, 1: 4, 7: 2, 8: 2},
}

#: The file layouts :class:`RMD17` reads.
LAYOUTS = ('auto', 'split', 'official')

#: Validation frames carved from the end of each split's training frames.
RMD17_NUM_VAL = 50

_NAME = re.compile(r'^[a-z0-9_]+$')


def rmd17_molecule(molecule: str) -> str:
    r"""The rMD17 file-name stem of ``molecule`` (``"Salicylic acid"``,
    ``"salicylic-acid"`` and ``"rmd17_salicylic"`` give ``"salicylic"``,
    as in ``rmd17_salicylic.npz``). Any name of letters, digits and
    underscores is accepted: the molecules are those files exist for.

    Example:

        >>> rmd17_molecule('Salicylic acid'), rmd17_molecule('rmd17_ethanol')
        ('salicylic', 'ethanol')
    """
    check_str(molecule, 'molecule')
    key = molecule.strip().lower().replace('-', '_').replace(' ', '_')
    if key.startswith('rmd17_'):
        key = key[len('rmd17_'):]
    if key == 'salicylic_acid':
        key = 'salicylic'
    if not _NAME.match(key):
        raise ValueError(f"'molecule' must be a molecule name of letters, "
                         f"digits and underscores, as in the file name "
                         f"rmd17_<molecule>.npz (got {molecule!r})")
    return key


def _split_files(root: str, molecule: str, fold: int) -> Dict[str, str]:
    return {part: osp.join(root, f'rmd17_{molecule}_{part}_{fold:02d}.npz')
            for part in ('train', 'test')}


def _official_files(root: str, molecule: str, fold: int) -> Dict[str, str]:
    return {'data': osp.join(root, 'npz_data', f'rmd17_{molecule}.npz'),
            'train': osp.join(root, 'splits', f'index_train_{fold:02d}.csv'),
            'test': osp.join(root, 'splits', f'index_test_{fold:02d}.csv')}


def _folds(root: str, molecule: str) -> Tuple[List[int], List[int]]:
    r"""The folds with both files of the pre-split layout, and those with
    both index files of the official layout."""
    def found(pattern: str, folder: str) -> List[int]:
        out = set()
        if osp.isdir(folder):
            for name in os.listdir(folder):
                m = re.fullmatch(pattern, name)
                if m:
                    out.add((m.group(1), int(m.group(2))))
        return sorted(k for part, k in out
                      if part == 'train' and ('test', k) in out)
    split = found(rf'rmd17_{re.escape(molecule)}_(train|test)_(\d+)\.npz',
                  root)
    official = found(r'index_(train|test)_(\d+)\.csv',
                     osp.join(root, 'splits'))
    return split, official


def _molecules_under(root: str) -> List[str]:
    names = set()
    for folder in (root, osp.join(root, 'npz_data')):
        if osp.isdir(folder):
            for name in os.listdir(folder):
                m = re.fullmatch(r'rmd17_([a-z0-9_]+?)(_(train|test)_\d+)?'
                                 r'\.npz', name)
                if m:
                    names.add(m.group(1))
    return sorted(names)


def find_rmd17_files(root: str, molecule: str, fold: int = 1,
                     layout: str = 'auto') -> Tuple[str, Dict[str, str]]:
    r"""``(layout, files)``: the files :class:`RMD17` reads for
    ``molecule`` and ``fold`` under ``root``. ``layout`` ``"split"``:
    ``files = {'train': root/rmd17_<molecule>_train_0<fold>.npz, 'test':
    root/rmd17_<molecule>_test_0<fold>.npz}``; ``"official"`` (the
    release): ``files = {'data': root/npz_data/rmd17_<molecule>.npz,
    'train': root/splits/index_train_0<fold>.csv, 'test':
    root/splits/index_test_0<fold>.csv}``. With ``"auto"`` the pre-split
    files are used when both exist, else the release layout.

    Args:
        root (str): The data folder.
        molecule (str): The molecule (see :func:`rmd17_molecule`).
        fold (int, optional): The split, from 1. (default: ``1``)
        layout (str, optional): ``"auto"``, ``"split"`` or
            ``"official"``. (default: ``"auto"``)

    Raises:
        FileNotFoundError: Saying which files to put where (and which
            molecules and folds ``root`` holds).

    Example:

        >>> import tempfile
        >>> try:
        ...     find_rmd17_files(tempfile.mkdtemp(), 'aspirin')
        ... except FileNotFoundError as e:
        ...     print(str(e).splitlines()[0][:45])
        No rMD17 files for molecule 'aspirin', fold 1
    """
    molecule = rmd17_molecule(molecule)
    fold = check_int(fold, 'fold', minimum=1)
    layout = check_choice(layout, 'layout', LAYOUTS)
    root = osp.expanduser(str(root))
    split, official = _split_files(root, molecule, fold), \
        _official_files(root, molecule, fold)
    if layout in ('auto', 'split') and all(map(osp.isfile,
                                               split.values())):
        return 'split', split
    if layout in ('auto', 'official') and all(map(osp.isfile,
                                                  official.values())):
        return 'official', official
    split_folds, official_folds = _folds(root, molecule)
    data_file = official['data']
    lines = [f"No rMD17 files for molecule {molecule!r}, fold {fold} under "
             f"{root}. This package downloads nothing; place the files "
             f"yourself (rMD17: {RMD17_URL}), either"]
    if layout in ('auto', 'split'):
        lines.append(f"  * pre-split (keys {list(RMD17_KEYS)}): "
                     f"{split['train']} and {split['test']}")
    if layout in ('auto', 'official'):
        lines.append(f"  * the release layout: {data_file} with "
                     f"{official['train']} and {official['test']} (one "
                     f"row index per line)")
    present = [p for p in list(split.values()) + list(official.values())
               if osp.isfile(p)]
    if present:
        lines.append(f"Present: {', '.join(present)}")
    if split_folds or (official_folds and osp.isfile(data_file)):
        lines.append(f"Folds found for {molecule!r}: pre-split "
                     f"{split_folds or 'none'}, release layout "
                     f"{official_folds if osp.isfile(data_file) else 'none'}")
    else:
        lines.append(f"Molecules found under {root}: "
                     f"{_molecules_under(root) or 'none'}")
    raise FileNotFoundError('\n'.join(lines))


def read_index_file(path: str, num_frames: int) -> np.ndarray:
    r"""The row indices of an rMD17 split file (one non-negative integer
    per line, blank lines ignored), checked to be distinct and below
    ``num_frames``; problems raise :class:`ValueError` naming the file and
    line."""
    try:
        with open(path, encoding='ascii') as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a text file of row indices "
                         f"({e})") from e
    values = []
    for number, line in enumerate(lines, 1):
        text = line.strip().strip(',')
        if not text:
            continue
        if not text.isdigit():
            raise ValueError(f"{path}, line {number}: expected one "
                             f"non-negative integer row index per line "
                             f"(got {line[:40]!r})")
        values.append(int(text))
    index = np.asarray(values, dtype=np.int64)
    if index.size == 0:
        raise ValueError(f"{path}: holds no row index")
    if index.max() >= num_frames:
        raise ValueError(f"{path}: row index {int(index.max())} is out of "
                         f"range for a data file of {num_frames} frames "
                         f"(truncated data file, or split of another "
                         f"release?)")
    if np.unique(index).size != index.size:
        raise ValueError(f"{path}: repeats row indices")
    return index


def sha256_file(path: str) -> str:
    r"""The SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def _user_cache(root: str) -> str:
    base = os.environ.get('XDG_CACHE_HOME') or osp.join(
        osp.expanduser('~'), '.cache')
    key = hashlib.sha1(osp.abspath(root).encode()).hexdigest()[:10]
    return osp.join(base, 'torch_geometric_remul', f'rmd17-{key}')


class RMD17(CachedDataset):
    r"""The revised MD17 dataset (rMD17; Christensen & von Lilienfeld,
    2020): energies and forces of single molecules (PBE/def2-SVP), one
    :class:`~torch_geometric.data.Data` per frame, in the split protocol of
    the release (5 splits of 1000 training and 1000 test frames).

    Reads local files only (nothing is downloaded), in either layout:

    * **pre-split**: ``root/rmd17_<molecule>_train_0<fold>.npz`` and
      ``root/rmd17_<molecule>_test_0<fold>.npz`` (keys ``nuclear_charges,
      coords, energies, forces``: the frames of the split);
    * **the release**: ``root/npz_data/rmd17_<molecule>.npz`` (all 100,000
      frames) with ``root/splits/index_train_0<fold>.csv`` and
      ``index_test_0<fold>.csv`` (one row index per line).

    ``layout="auto"`` uses the pre-split files when both exist. Any
    molecule a file exists for is read (the release has aspirin,
    azobenzene, benzene, ethanol, malonaldehyde, naphthalene, paracetamol,
    salicylic, toluene, uracil); for those ten, the file's atoms are
    checked against the molecule's formula.

    **Splits.** ``"test"``: the split's test frames, in file order.
    ``"val"``: the **last** ``num_val`` (50) of the split's training frames
    in file order; ``"train"``: the training frames before them (the first
    ``num_train`` of them when given). The rMD17 frames are a random
    sample of the trajectory, so the last 50 rows are as random as any 50.

    Attributes of every graph (``N`` atoms):

    * ``pos`` ``[N, 3]`` float32 (point): positions, Å.
    * ``z`` ``[N]`` long (scalar): atomic numbers.
    * ``energy`` ``[1]`` **float64**: the energy, kcal/mol, as stored
      (absolute energies are about 1e5 kcal/mol, where float32 would round
      by up to 0.02 kcal/mol; subtract an offset in a transform, not here).
    * ``force`` ``[N, 3]`` float32 (vector): forces, kcal/mol/Å.
    * ``idx`` ``[1]`` long: the frame's row in the file it was read from
      (``npz_data/rmd17_<molecule>.npz`` or the pre-split file).

    The names are those of PyG's :class:`~torch_geometric.datasets.MD17`.

    **Errors.** A missing molecule or fold raises
    :class:`FileNotFoundError` saying which files to put where (and which
    molecules and folds ``root`` holds). A file that is not an archive, is
    truncated, lacks a key, has arrays of the wrong shape or non-finite
    values, holds another molecule than its name says, a train and test
    file whose atoms differ or whose frames overlap (``old_indices``), or an
    index file with a bad line or an out-of-range row, raises
    :class:`ValueError` naming the file.

    **Cache.** The processed splits go to ``cache_dir``, by default
    ``$XDG_CACHE_HOME/torch_geometric_remul/rmd17-<hash of root>``
    (``~/.cache/...`` without ``XDG_CACHE_HOME``): nothing is ever written
    under ``root``, which may be a shared, read-only data folder.

    Args:
        root (str): The data folder (see the layouts above).
        molecule (str): The molecule (``"aspirin"``, ``"salicylic"`` or
            ``"salicylic acid"``, ...; see :func:`rmd17_molecule`).
        split (str, optional): ``"train"``, ``"val"`` or ``"test"``.
            (default: ``"train"``)
        fold (int, optional): The split of the release, from 1 (the release
            has 5). (default: ``1``)
        num_val (int, optional): Validation frames, taken from the end of
            the training frames. (default: ``50``)
        num_train (int, optional): Use only the first ``num_train`` of the
            remaining training frames. (default: ``None``: all)
        num_test (int, optional): Use only the first ``num_test`` test
            frames. (default: ``None``: all)
        layout (str, optional): ``"auto"``, ``"split"`` or ``"official"``.
            (default: ``"auto"``)
        cache_dir (str, optional): Where the processed splits are written.
            (default: the user cache, see above)
        transform (callable, optional): Applied to every access.
        pre_transform (callable, optional): Applied before caching.
        pre_filter (callable, optional): Filters graphs before caching.
        force_reload (bool, optional): Reprocess even if cached.

    Example:

        >>> import os, tempfile
        >>> root = tempfile.mkdtemp()
        >>> rng = np.random.default_rng(0)
        >>> z = np.array([6, 6, 8, 1, 1, 1, 1, 1, 1], dtype=np.uint8)
        >>> for part in ('train', 'test'):
        ...     np.savez(os.path.join(root, f'rmd17_ethanol_{part}_01.npz'),
        ...              nuclear_charges=z, coords=rng.normal(size=(60, 9, 3)),
        ...              energies=rng.normal(size=60) - 97000,
        ...              forces=rng.normal(size=(60, 9, 3)))
        >>> cache = tempfile.mkdtemp()
        >>> ds = RMD17(root, 'ethanol', split='val', cache_dir=cache)
        >>> len(ds), ds[0].pos.shape, ds[0].energy.dtype, ds.layout
        (50, torch.Size([9, 3]), torch.float64, 'split')
        >>> len(RMD17(root, 'ethanol', split='train', cache_dir=cache))
        10
        >>> RMD17(root, 'ethanol', fold=2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: No rMD17 files for molecule 'ethanol', fold 2 ...
    """
    SPLITS = ('train', 'val', 'test')

    def __init__(
        self,
        root: str,
        molecule: str,
        split: str = 'train',
        fold: int = 1,
        num_val: int = RMD17_NUM_VAL,
        num_train: Optional[int] = None,
        num_test: Optional[int] = None,
        layout: str = 'auto',
        cache_dir: Optional[str] = None,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        pre_filter: Optional[Callable] = None,
        force_reload: bool = False,
    ) -> None:
        self.molecule = rmd17_molecule(molecule)
        self.split = check_choice(split, 'split', self.SPLITS)
        self.fold = check_int(fold, 'fold', minimum=1)
        self.num_val = check_int(num_val, 'num_val', minimum=1)
        self.num_train = None if num_train is None else check_int(
            num_train, 'num_train', minimum=1)
        self.num_test = None if num_test is None else check_int(
            num_test, 'num_test', minimum=1)
        root = osp.expanduser(str(root))
        self.layout, self.files = find_rmd17_files(root, self.molecule,
                                                   self.fold, layout)
        if cache_dir is None:  # never under root: the data stay untouched
            cache_dir = _user_cache(root)
        self._cache_dir = osp.expanduser(str(cache_dir))
        super().__init__(root, transform, pre_transform, pre_filter,
                         force_reload=force_reload)
        self.load_processed()

    @property
    def raw_dir(self) -> str:
        return self.root

    @property
    def processed_dir(self) -> str:
        return self._cache_dir

    @property
    def processed_file_names(self) -> List[str]:
        return [cache_name(f'rmd17_{self.molecule}_{self.split}', {
            'file': file_fingerprint(self.files.values()),
            'layout': self.layout,
            'fold': self.fold,
            'nva': self.num_val,
            'ntr': 'all' if self.num_train is None else self.num_train,
            'nte': 'all' if self.num_test is None else self.num_test,
        })]

    @property
    def data_files(self) -> Dict[str, str]:
        r"""``{name: SHA-256}`` of every file this dataset reads (names
        relative to ``root``), for result provenance."""
        return {osp.relpath(path, self.root): sha256_file(path)
                for path in self.files.values()}

    def _read(self) -> Tuple[np.ndarray, Dict[str, Tuple]]:
        r"""``(z, {part: (pos, energy, force, rows)})`` for the split's
        training and test frames, checked."""
        expected = RMD17_FORMULAS.get(self.molecule)
        parts = {}
        if self.layout == 'split':
            z = old = None
            for part in ('train', 'test'):
                path = self.files[part]
                frames = read_labelled_frames(path)
                if expected is not None:
                    check_composition(path, frames.z, self.molecule,
                                      expected)
                if z is None:
                    z = frames.z
                elif not np.array_equal(z, frames.z):
                    raise ValueError(
                        f"{path}: its atoms ({formula(_counts(frames.z))}, "
                        f"in file order) differ from those of "
                        f"{self.files['train']}; the train and test files "
                        f"of a split must hold the same molecule")
                indices = _old_indices(path)
                if old is not None and indices is not None and \
                        np.intersect1d(old, indices).size:
                    raise ValueError(
                        f"{path} and {self.files['train']} share "
                        f"{np.intersect1d(old, indices).size} frames "
                        f"('old_indices'): the test frames of a split must "
                        f"not be training frames (mislabelled file?)")
                old = indices
                parts[part] = (frames.pos, frames.energy, frames.force,
                               np.arange(frames.pos.shape[0]))
            return z, parts
        path = self.files['data']
        frames = read_labelled_frames(path)
        if expected is not None:
            check_composition(path, frames.z, self.molecule, expected)
        T = frames.pos.shape[0]
        index = {part: read_index_file(self.files[part], T)
                 for part in ('train', 'test')}
        shared = np.intersect1d(index['train'], index['test'])
        if shared.size:
            raise ValueError(f"{self.files['test']} and "
                             f"{self.files['train']} share {shared.size} "
                             f"row indices: a split's test frames must not "
                             f"be training frames")
        for part, rows in index.items():
            parts[part] = (frames.pos[rows], frames.energy[rows],
                           frames.force[rows], rows)
        return frames.z, parts

    def process(self) -> None:
        z, parts = self._read()
        num_fit = parts['train'][0].shape[0]
        if self.num_val >= num_fit:
            raise ValueError(f"{self.files['train']}: {num_fit} training "
                             f"frames leave none for training after "
                             f"num_val={self.num_val} validation frames")
        if self.split == 'test':
            take = np.arange(parts['test'][0].shape[0])
            if self.num_test is not None:
                take = take[:self.num_test]
            source = parts['test']
        else:
            source = parts['train']
            if self.split == 'val':
                take = np.arange(num_fit - self.num_val, num_fit)
            else:
                take = np.arange(num_fit - self.num_val)
                if self.num_train is not None:
                    if self.num_train > take.size:
                        raise ValueError(
                            f"num_train={self.num_train} exceeds the "
                            f"{take.size} training frames left after "
                            f"{self.num_val} validation frames")
                    take = take[:self.num_train]
        pos, energy, force, rows = (a[take] for a in source)
        pos_t, force_t = to_float(pos), to_float(force)
        energy_t = torch.from_numpy(np.ascontiguousarray(energy,
                                                         dtype=np.float64))
        z_t = torch.from_numpy(z)
        data_list = [Data(pos=pos_t[i], z=z_t.clone(),
                          energy=energy_t[i:i + 1].clone(), force=force_t[i],
                          idx=torch.tensor([int(rows[i])]))
                     for i in range(take.size)]
        self.save_processed(data_list)

    def _repr_fields(self) -> str:
        return (f'molecule={self.molecule!r}, split={self.split!r}, '
                f'fold={self.fold}')


def _counts(z: np.ndarray) -> Dict[int, int]:
    values, counts = np.unique(z, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


def _old_indices(path: str) -> Optional[np.ndarray]:
    with open_npz(path) as f:
        if 'old_indices' not in f.files:
            return None
        return read_array(f, 'old_indices', path).reshape(-1)


__all__ = ['RMD17', 'RMD17_FORMULAS', 'RMD17_NUM_VAL', 'find_rmd17_files',
           'rmd17_molecule']
