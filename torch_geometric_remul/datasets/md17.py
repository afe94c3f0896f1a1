r"""MD17 molecular-dynamics trajectories as a future-position prediction task
(EGNO protocol), read from local MD17 or rMD17 files."""
import os.path as osp
import warnings
from typing import Callable, List, Optional, Tuple

import numpy as np
import torch
from torch_geometric.data import Data

from torch_geometric_remul._checks import (
    check_choice,
    check_int,
    check_real,
)
from torch_geometric_remul.datasets._md17_files import (
    MOLECULES,
    STANDIN_KEY,
    candidate_paths,
    canonical_molecule,
    missing_file_message,
    read_trajectory,
    standin_flag,
)
from torch_geometric_remul.datasets._utils import (
    CachedDataset,
    cache_name,
    file_fingerprint,
    full_edge_index,
    radius_edge_index,
    split_sizes,
    to_float,
)

#: The eight MD17 molecules (canonical names accepted by
#: :class:`MD17Trajectories`).
MD17_MOLECULES = tuple(MOLECULES)

SOURCES = ('auto', 'md17', 'rmd17', 'standin')
GRAPHS = ('radius', 'full')


class MD17Trajectories(CachedDataset):
    r"""Future-position prediction on MD17 molecular-dynamics trajectories,
    following the protocol of EGNO (Xu et al., 2024): from the positions and
    velocities of a molecule at frame :math:`t`, predict its positions at
    frame :math:`t +` ``delta_frame``.

    Reads local files only (nothing is downloaded):

    * MD17 (sGDML / PyG layout; keys ``z, R, E, F``), e.g.
      ``root/aspirin/raw/md17_aspirin.npz`` (the official names
      ``md17_benzene2017.npz`` and ``md17_salicylic.npz`` are used for
      benzene and salicylic acid; PyG's folder ``root/salicylic acid/raw``
      is searched too);
    * rMD17 (keys ``nuclear_charges, coords, energies, forces``), e.g.
      ``root/aspirin/raw/rmd17_aspirin.npz``. rMD17 rows are a random
      subsample of the MD17 run: when ``old_indices`` is present they are
      put back in time order and a warning says that the time gaps between
      rows are uneven;
    * the classical stand-in of :func:`generate_md17_standin
      <torch_geometric_remul.datasets.generate_md17_standin>` with
      ``source="standin"`` (``root/<molecule>/raw/md17_<molecule>_standin
      .npz``). Any file marked as a stand-in sets ``is_standin``, puts
      ``standin`` into the processed file name and warns: its numbers are
      **not** MD17 results.

    A missing file raises :class:`FileNotFoundError` saying where to put
    which file and where to get it; an unreadable, truncated or
    wrong-layout file, or one whose composition does not match
    ``molecule``, raises :class:`ValueError` naming the file.

    Sampling: velocities are forward differences of consecutive frames,
    :math:`v_t = R_{t+1} - R_t` (Å per frame, as EGNO). Start frames
    :math:`t` are the frames with ``margin <= t < T - margin`` and
    :math:`t + \Delta` and :math:`t + 1` inside the trajectory (EGNO drops
    10,000 frames at either end); one permutation drawn with ``seed`` gives
    disjoint training, validation and test start frames (500/2000/2000 by
    default), each split sorted by frame.

    Attributes of every :class:`~torch_geometric.data.Data` (``N`` atoms:
    the heavy atoms when ``remove_hydrogens``, as EGNO), float32 unless
    stated:

    * ``pos`` ``[N, 3]`` (point): positions (Å) at frame :math:`t`.
    * ``vel`` ``[N, 3]`` (vector): velocities (Å per frame) at :math:`t`.
    * ``z`` ``[N]`` (long, scalar): atomic numbers.
    * ``y`` ``[N, 3]`` (point): positions at :math:`t +` ``delta_frame``.
    * ``edge_index`` ``[2, E]`` (long): with ``graph="radius"`` every
      ordered pair ``i != j`` closer than ``cutoff`` Å at frame :math:`t`
      (dense per-molecule distance matrix; rotation invariant), with
      ``graph="full"`` every ordered pair ``i != j``.
    * ``frame`` ``[1]`` (long, graph-level): the start frame :math:`t` (row
      of the file, after rMD17 re-ordering).

    Args:
        root (str): Root directory (``root/<molecule>/raw`` holds the file,
            ``root/<molecule>/processed`` the cache).
        molecule (str): One of :data:`MD17_MOLECULES` (``"salicylic acid"``
            and other spellings are accepted).
        split (str, optional): ``"train"``, ``"val"`` or ``"test"``.
            (default: ``"train"``)
        delta_frame (int, optional): Prediction horizon in frames.
            (default: ``5000``)
        num_train (int, optional): Training samples. (default: ``500``)
        num_val (int, optional): Validation samples. (default: ``2000``)
        num_test (int, optional): Test samples. (default: ``2000``)
        seed (int, optional): Seed of the split permutation.
            (default: ``0``)
        margin (int, optional): Frames excluded at either end of the
            trajectory. (default: ``10000``)
        remove_hydrogens (bool, optional): Keep heavy atoms only (EGNO).
            (default: ``True``)
        graph (str, optional): ``"radius"`` or ``"full"``.
            (default: ``"radius"``)
        cutoff (float, optional): Radius-graph cutoff in Å.
            (default: ``5.0``)
        source (str, optional): ``"auto"`` (MD17, then rMD17), ``"md17"``,
            ``"rmd17"`` or ``"standin"``. (default: ``"auto"``)
        path (str, optional): Read this file instead of searching ``root``.
        transform (callable, optional): Applied to every access.
        pre_transform (callable, optional): Applied before caching.
        pre_filter (callable, optional): Filters graphs before caching.
        force_reload (bool, optional): Reprocess even if cached.

    Example:

        >>> import os, tempfile
        >>> root = tempfile.mkdtemp()
        >>> os.makedirs(os.path.join(root, 'ethanol', 'raw'))
        >>> rng = np.random.default_rng(0)
        >>> chain = np.outer(np.arange(9), [1.1, 0, 0])  # 1.1 Å apart
        >>> R = chain + np.cumsum(rng.normal(0, 0.01, (60, 9, 3)), 0)
        >>> np.savez(os.path.join(root, 'ethanol', 'raw', 'md17_ethanol.npz'),
        ...          z=np.array([6, 6, 8, 1, 1, 1, 1, 1, 1]), R=R,
        ...          E=np.zeros((60, 1)), F=np.zeros((60, 9, 3)))
        >>> ds = MD17Trajectories(root, 'ethanol', delta_frame=10, margin=0,
        ...                       num_train=5, num_val=5, num_test=5)
        >>> len(ds), ds[0].pos.shape, ds[0].z.tolist()
        (5, torch.Size([3, 3]), [6, 6, 8])
        >>> MD17Trajectories(root, 'uracil')  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: No MD17 or rMD17 trajectory file for molecule ...
    """
    SPLITS = ('train', 'val', 'test')

    def __init__(
        self,
        root: str,
        molecule: str,
        split: str = 'train',
        delta_frame: int = 5000,
        num_train: int = 500,
        num_val: int = 2000,
        num_test: int = 2000,
        seed: int = 0,
        margin: int = 10000,
        remove_hydrogens: bool = True,
        graph: str = 'radius',
        cutoff: float = 5.0,
        source: str = 'auto',
        path: Optional[str] = None,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        pre_filter: Optional[Callable] = None,
        force_reload: bool = False,
    ) -> None:
        self.molecule = canonical_molecule(molecule)
        self.split = check_choice(split, 'split', self.SPLITS)
        self.delta_frame = check_int(delta_frame, 'delta_frame', minimum=1)
        self.sizes = split_sizes(self.split, num_train, num_val, num_test,
                                 'sample')
        self.seed = check_int(seed, 'seed', minimum=0)
        self.margin = check_int(margin, 'margin', minimum=0)
        self.remove_hydrogens = bool(remove_hydrogens)
        self.graph = check_choice(graph, 'graph', GRAPHS)
        self.cutoff = check_real(cutoff, 'cutoff', minimum=0, strict=True)
        self.source = check_choice(source, 'source', SOURCES)
        root = osp.expanduser(str(root))
        if path is not None:
            path = osp.expanduser(str(path))
            if not osp.isfile(path):
                raise FileNotFoundError(
                    f"{path}: no such file (given as 'path'). "
                    + missing_file_message(root, self.molecule, source,
                                           [path]).split('\n', 1)[1])
            self.path = path
        else:
            self.path = find_md17_file(root, self.molecule, source)[1]
        self.is_standin = _peek_standin(self.path)
        if source == 'standin' and not self.is_standin:
            raise ValueError(f"{self.path}: source='standin' but the file "
                             f"has no stand-in marker")
        if self.is_standin:
            warnings.warn(
                f"{self.path} is a classical (MMFF94) stand-in for MD17, not "
                f"DFT data: results on it must not be compared with MD17 "
                f"numbers", UserWarning, stacklevel=2)
        super().__init__(root, transform, pre_transform, pre_filter,
                         force_reload=force_reload)
        self.load_processed()

    @property
    def raw_dir(self) -> str:
        return osp.join(self.root, self.molecule, 'raw')

    @property
    def processed_dir(self) -> str:
        return osp.join(self.root, self.molecule, 'processed')

    @property
    def processed_file_names(self) -> List[str]:
        prefix = 'md17_standin' if self.is_standin else 'md17'
        return [cache_name(f'{prefix}_{self.split}', {
            'file': file_fingerprint([self.path]),
            'delta': self.delta_frame,
            'ntr': self.sizes['train'],
            'nva': self.sizes['val'],
            'nte': self.sizes['test'],
            'seed': self.seed,
            'margin': self.margin,
            'noH': self.remove_hydrogens,
            'graph': self.graph,
            'cut': self.cutoff if self.graph == 'radius' else 'none',
        })]

    def process(self) -> None:
        traj = read_trajectory(self.path, self.molecule)
        z, R = traj.z, traj.pos
        if self.remove_hydrogens:
            keep = z > 1
            z, R = z[keep], R[:, keep]
        T = R.shape[0]
        lo = self.margin
        hi = min(T - self.margin, T - self.delta_frame, T - 1)
        starts = np.arange(lo, max(hi, lo))
        need = sum(self.sizes.values())
        if starts.size < need:
            raise ValueError(
                f"{self.path}: {T} frames give {starts.size} start frames "
                f"for delta_frame={self.delta_frame} and margin="
                f"{self.margin}, but the splits need {need} "
                f"({self.sizes['train']}/{self.sizes['val']}/"
                f"{self.sizes['test']}); lower them or use a longer "
                f"trajectory")
        perm = np.random.default_rng(self.seed).permutation(starts)
        offset = {'train': 0, 'val': self.sizes['train'],
                  'test': self.sizes['train'] + self.sizes['val']}
        a = offset[self.split]
        t = np.sort(perm[a:a + self.sizes[self.split]])

        pos = R[t]
        vel = R[t + 1] - R[t]
        y = R[t + self.delta_frame]
        full = full_edge_index(z.size)
        pos_t, vel_t, y_t = to_float(pos), to_float(vel), to_float(y)
        z_t = torch.from_numpy(z)
        data_list = []
        for i in range(t.size):
            if self.graph == 'radius':  # from float64 positions
                edge_index = radius_edge_index(torch.from_numpy(pos[i]),
                                               self.cutoff)
            else:
                edge_index = full.clone()
            data_list.append(Data(
                pos=pos_t[i], vel=vel_t[i], z=z_t.clone(), y=y_t[i],
                edge_index=edge_index,
                frame=torch.tensor([int(t[i])], dtype=torch.long)))
        self.save_processed(data_list)

    def _repr_fields(self) -> str:
        tag = ', stand-in' if self.is_standin else ''
        return f'molecule={self.molecule!r}, split={self.split!r}{tag}'


def find_md17_file(root: str, molecule: str, source: str = 'auto',
                   standin: bool = True) -> Tuple[str, str]:
    r"""``(kind, path)`` of the trajectory file that
    :class:`MD17Trajectories` reads for ``molecule`` under ``root``: the
    first that exists of the places searched for ``source`` (``kind`` is
    ``"md17"``, ``"rmd17"`` or ``"standin"``, after where it was found).

    Args:
        root (str): The data root.
        molecule (str): One of :data:`MD17_MOLECULES` (any spelling
            :func:`canonical_molecule` accepts).
        source (str, optional): ``"auto"``, ``"md17"``, ``"rmd17"`` or
            ``"standin"``. (default: ``"auto"``)
        standin (bool, optional): Accept a file marked as a classical
            stand-in where a real one is searched. (default: ``True``)

    Raises:
        FileNotFoundError: Saying where to put the file.

    Example:

        >>> import tempfile
        >>> try:
        ...     find_md17_file(tempfile.mkdtemp(), 'Ethanol', 'rmd17')
        ... except FileNotFoundError as e:
        ...     print(str(e).splitlines()[0][:37])
        No rmd17 trajectory file for molecule
    """
    molecule = canonical_molecule(molecule)
    check_choice(source, 'source', SOURCES)
    root = osp.expanduser(str(root))
    candidates = candidate_paths(root, molecule, source)
    for kind, path in candidates:
        if osp.isfile(path) and (standin or kind == 'standin'
                                 or not _peek_standin(path)):
            return kind, path
    raise FileNotFoundError(missing_file_message(
        root, molecule, source, [p for _, p in candidates]))


def _peek_standin(path: str) -> bool:
    r"""Whether ``path`` carries the stand-in marker (a cheap look at the
    archive's key list; read errors surface later in :meth:`process`, a
    marker that is not a single boolean raises here, naming the file)."""
    try:
        with open(path, 'rb') as handle, \
                np.load(handle, allow_pickle=False) as f:
            if STANDIN_KEY not in f.files:
                return False
            value = f[STANDIN_KEY]
    except Exception:
        return False
    return standin_flag(value, path)


__all__ = ['MD17_MOLECULES', 'MD17Trajectories', 'canonical_molecule',
           'find_md17_file']
