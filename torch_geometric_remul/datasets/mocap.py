r"""Motion capture (CMU ASF/AMC or BVH) as a future-position prediction task
on the skeleton graph (GMN protocol)."""
import glob
import hashlib
import json
import os.path as osp
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch_geometric.data import Data

from torch_geometric_remul._checks import (
    check_choice,
    check_int,
)
from torch_geometric_remul._io import atomic_write
from torch_geometric_remul.datasets._utils import (
    CachedDataset,
    apply_pre,
    cache_name,
    file_fingerprint,
    save_data_list,
    split_rng,
    split_sizes,
    to_float,
)
from torch_geometric_remul.datasets.mocap_formats import (
    MocapClip,
    asf_amc_positions,
    read_asf,
    read_bvh,
)

CMU_URL = 'http://mocap.cs.cmu.edu/'

Files = Union[None, Sequence[str], Dict[str, Sequence[str]]]


class MotionCapture(CachedDataset):
    r"""Future-position prediction on motion-capture clips, following GMN
    (Huang et al., 2022): from the joint positions and velocities at frame
    :math:`t`, predict the joint positions at :math:`t +` ``delta_frame``
    (30 by default). Joint positions come from forward kinematics of local
    files (nothing is downloaded; see
    :mod:`~torch_geometric_remul.datasets.mocap_formats` for the
    conventions):

    * CMU ASF/AMC: one skeleton ``.asf`` and its ``.amc`` clips in
      ``root/raw`` (e.g. subject 35, walking: ``35.asf``, ``35_01.amc``, ...
      from the CMU Graphics Lab Motion Capture Database,
      http://mocap.cs.cmu.edu/, "subjects/35"); the GMN walking task uses
      200/600/600 samples (the defaults), its running task (subject 9)
      200/240/240;
    * BVH clips (``.bvh``) in ``root/raw``;
    * the labelled **synthetic proxy** of
      :func:`~torch_geometric_remul.datasets.generate_mocap_proxy`, which
      writes ASF/AMC files whose skeleton is named ``synthetic_proxy...``.
      Reading it sets ``is_synthetic_proxy``, puts ``proxy`` into the
      processed file name and warns: it is not motion-capture data.

    A missing file raises :class:`FileNotFoundError` saying what to put
    where; malformed ASF/AMC/BVH content raises :class:`ValueError` naming
    the file and line.

    Sampling: velocities are forward differences :math:`v_t = x_{t+1} -
    x_t` (file units per frame, as GMN). With ``files`` a list (default:
    every ``.amc``, then every ``.bvh`` in ``root/raw``), all
    ``(clip, t)`` pairs with :math:`t + \Delta` inside the clip are pooled
    and one permutation drawn with ``seed`` gives disjoint training,
    validation and test samples. With ``files`` a dict ``{"train": [...],
    "val": [...], "test": [...]}`` every split samples (without
    replacement) from its own clips, i.e. a split by clip.

    **GMN protocol** (``gmn_split``): the samples are those of the GMN/EGNO
    motion-capture benchmark (Huang et al., 2022; ``hanjq17/GMN``,
    ``spatial_graph/motion/dataset.py``), read from its split file, a JSON
    ``{"train"|"val"|"test": {case_id: [start frames]}}`` (the
    ``gmn_motion_split.json`` conversion of GMN's ``split.pkl``). Each split
    takes the first ``max_samples // number of cases`` start frames of each
    of its cases, ``max_samples`` being ``num_train``, ``num_val`` or
    ``num_test``: the defaults 200/600/600 give 18 per training case (198
    samples from 11 cases) and 100 per validation or test case (600 from 6
    cases each). Velocities are :math:`x_{t+1} - x_t` and, as in GMN, the
    last frame of a clip only serves that difference (a start frame needs
    :math:`t + \Delta \le T - 2`). ``seed`` plays no part: the samples are
    fixed by the file. Order: cases by increasing id, start frames in the
    file's order (GMN concatenates its cases in the order of its
    hard-coded lists; the JSON keeps no order). **Assumption, not
    confirmable from the split file:** case id ``k`` is the ``k``-th clip
    of ``files``, by default the ``.amc`` files of ``root/raw`` in sorted
    name order, i.e. for CMU subject 35 walking ``0 = 35_01``, ...,
    ``15 = 35_16``, ``16 = 35_28``, ..., ``22 = 35_34`` (GMN's own
    ``motion.pkl``, which would settle it, is not published with the
    split). GMN's graph adds two-hop edges with edge types; the graph here
    is the skeleton's bones. Positions are in the files' units (ASF units
    for CMU, 1 unit = 0.056444 m), unscaled, as the published split does
    not state GMN's preprocessing.

    Attributes of every :class:`~torch_geometric.data.Data` (``J`` joints:
    the root and every bone end, 31 for CMU skeletons), float32 unless
    stated:

    * ``pos`` ``[J, 3]`` (point): joint positions at frame :math:`t`.
    * ``vel`` ``[J, 3]`` (vector): joint velocities at :math:`t`.
    * ``y`` ``[J, 3]`` (point): joint positions at :math:`t +`
      ``delta_frame``.
    * ``edge_index`` ``[2, 2 (J - 1)]`` (long): the skeleton's bones in
      both directions.
    * ``joint`` ``[J]`` (long, scalar): joint index in the skeleton (the
      names are in ``joint_names``, from the first sampled clip).
    * ``clip`` ``[1]`` and ``frame`` ``[1]`` (long, graph-level): index of
      the clip in ``files`` and the start frame :math:`t`.

    Args:
        root (str): Root directory (``root/raw`` holds the files,
            ``root/processed`` the cache).
        split (str, optional): ``"train"``, ``"val"`` or ``"test"``.
            (default: ``"train"``)
        files (list or dict, optional): Motion files (``.amc`` or ``.bvh``)
            relative to ``root/raw`` or absolute; see above.
        skeleton (str, optional): The ``.asf`` file of the AMC clips
            (default: the only ``.asf`` in ``root/raw``).
        delta_frame (int, optional): Prediction horizon in frames.
            (default: ``30``)
        num_train (int, optional): Training samples. (default: ``200``)
        num_val (int, optional): Validation samples. (default: ``600``)
        num_test (int, optional): Test samples. (default: ``600``)
        seed (int, optional): Seed of the sampling. (default: ``0``)
        gmn_split (str, optional): GMN's split file (JSON, relative to
            ``root/raw`` or absolute); selects the GMN protocol above.
            (default: ``None``)
        transform (callable, optional): Applied to every access.
        pre_transform (callable, optional): Applied before caching.
        pre_filter (callable, optional): Filters graphs before caching.
        force_reload (bool, optional): Reprocess even if cached.

    Example:

        >>> import os, tempfile, warnings
        >>> from torch_geometric_remul.datasets import generate_mocap_proxy
        >>> root = tempfile.mkdtemp()
        >>> _ = generate_mocap_proxy(os.path.join(root, 'raw'), num_clips=1,
        ...                          num_frames=80)
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter('ignore')  # "synthetic proxy" warning
        ...     ds = MotionCapture(root, num_train=8, num_val=4, num_test=4)
        >>> ds.is_synthetic_proxy, len(ds), ds[0].pos.shape
        (True, 8, torch.Size([19, 3]))
    """
    SPLITS = ('train', 'val', 'test')

    def __init__(
        self,
        root: str,
        split: str = 'train',
        files: Files = None,
        skeleton: Optional[str] = None,
        delta_frame: int = 30,
        num_train: int = 200,
        num_val: int = 600,
        num_test: int = 600,
        seed: int = 0,
        gmn_split: Optional[str] = None,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        pre_filter: Optional[Callable] = None,
        force_reload: bool = False,
    ) -> None:
        self.split = check_choice(split, 'split', self.SPLITS)
        self.delta_frame = check_int(delta_frame, 'delta_frame', minimum=1)
        self.sizes = split_sizes(self.split, num_train, num_val, num_test,
                                 'sample')
        self.seed = check_int(seed, 'seed', minimum=0)
        root = osp.expanduser(str(root))
        raw_dir = osp.join(root, 'raw')
        self.gmn_split_path: Optional[str] = None
        self.gmn_cases: Optional[Dict[str, Dict[int, List[int]]]] = None
        if gmn_split is not None:
            if isinstance(files, dict):
                raise ValueError("'files' must be a list (case id k = the "
                                 "k-th clip) or None with 'gmn_split'")
            if files is None:  # the skeleton's clips, in sorted name order
                files = sorted(glob.glob(osp.join(raw_dir, '*.amc')))
                if not files:
                    raise FileNotFoundError(self._missing_message(raw_dir))
            path = str(gmn_split)
            self.gmn_split_path = (path if osp.isabs(path) else
                                   osp.join(raw_dir, path))
            self.gmn_cases = read_gmn_split(self.gmn_split_path)
        self.files, self.split_files = self._resolve_files(raw_dir, files)
        if self.gmn_cases is not None:
            for name, cases in self.gmn_cases.items():
                bad = [c for c in cases if c >= len(self.files)]
                if bad:
                    raise ValueError(
                        f"{self.gmn_split_path}: {name!r} uses case ids "
                        f"{bad}, but only {len(self.files)} clips are given "
                        f"(case id k = the k-th clip in sorted name order; "
                        f"subject 35 walking has 23)")
        self.skeleton_path = None
        self.is_synthetic_proxy = False
        if any(f.lower().endswith('.amc') for f in self.files):
            self.skeleton_path = self._resolve_skeleton(raw_dir, skeleton)
            self.is_synthetic_proxy = read_asf(
                self.skeleton_path).is_synthetic_proxy
        if self.is_synthetic_proxy:
            warnings.warn(
                f"{self.skeleton_path} is a synthetic proxy (generated "
                f"walking-like motion), not motion-capture data: results on "
                f"it must not be compared with CMU motion-capture numbers",
                UserWarning, stacklevel=2)
        super().__init__(root, transform, pre_transform, pre_filter,
                         force_reload=force_reload)
        self.load_processed()
        self.joint_names: List[str] = self.read_processed(
            self.processed_paths[0] + '.joints', lambda v: isinstance(
                v, list) and all(isinstance(n, str) for n in v))

    # File resolution #######################################################

    @staticmethod
    def _missing_message(raw_dir: str) -> str:
        return (f"No motion-capture files found in {raw_dir}. This package "
                f"downloads nothing; put there either a CMU skeleton and "
                f"its clips (e.g. subject 35 walking: 35.asf, 35_01.amc, "
                f"35_02.amc, ... from {CMU_URL}, 'subjects/35' of the "
                f"ASF/AMC archive), or BVH files (.bvh); or write a "
                f"labelled synthetic proxy with torch_geometric_remul."
                f"datasets.generate_mocap_proxy({raw_dir!r}).")

    def _resolve_files(self, raw_dir: str, files: Files):
        def resolve(names: Sequence[str], what: str) -> List[str]:
            if isinstance(names, str):
                raise TypeError(f"{what} must be a list of file names, not "
                                f"a string")
            out = []
            for name in names:
                path = name if osp.isabs(name) else osp.join(raw_dir, name)
                if not osp.isfile(path):
                    raise FileNotFoundError(
                        f"{path}: no such motion file (listed in {what}). "
                        + self._missing_message(raw_dir))
                if not path.lower().endswith(('.amc', '.bvh')):
                    raise ValueError(f"{path}: unsupported motion file "
                                     f"(expected .amc or .bvh)")
                out.append(path)
            if not out:
                raise ValueError(f"{what} is empty")
            return out

        if files is None:
            found = (sorted(glob.glob(osp.join(raw_dir, '*.amc')))
                     + sorted(glob.glob(osp.join(raw_dir, '*.bvh'))))
            if not found:
                raise FileNotFoundError(self._missing_message(raw_dir))
            return found, None
        if isinstance(files, dict):
            bad = set(files) - set(self.SPLITS)
            if bad or self.split not in files:
                raise ValueError(f"'files' as a dict maps each split "
                                 f"{list(self.SPLITS)} to its clips (got "
                                 f"keys {sorted(files)}; the requested split "
                                 f"is {self.split!r})")
            split_files = {k: resolve(v, f"files[{k!r}]")
                           for k, v in files.items()}
            everything = list(dict.fromkeys(
                p for k in self.SPLITS for p in split_files.get(k, [])))
            return everything, split_files
        return resolve(files, "'files'"), None

    def _resolve_skeleton(self, raw_dir: str, skeleton: Optional[str]
                          ) -> str:
        if skeleton is not None:
            path = (skeleton if osp.isabs(skeleton) else
                    osp.join(raw_dir, skeleton))
            if not osp.isfile(path):
                raise FileNotFoundError(f"{path}: no such skeleton file "
                                        f"(given as 'skeleton')")
            return path
        asfs = sorted(glob.glob(osp.join(raw_dir, '*.asf')))
        if not asfs:
            raise FileNotFoundError(
                f"AMC clips need their ASF skeleton, but {raw_dir} holds no "
                f".asf file: put the subject's skeleton there (e.g. 35.asf "
                f"from {CMU_URL}) or pass skeleton='/path/to/file.asf'")
        if len(asfs) > 1:
            raise ValueError(f"{raw_dir} holds several skeletons "
                             f"{[osp.basename(a) for a in asfs]}; choose one "
                             f"with skeleton='...'")
        return asfs[0]

    # PyG interface #########################################################

    @property
    def processed_file_names(self) -> List[str]:
        paths = list(self.files)
        if self.skeleton_path is not None:
            paths.append(self.skeleton_path)
        mode = 'clips' if self.split_files is not None else 'pooled'
        if self.gmn_split_path is not None:
            paths.append(self.gmn_split_path)
            mode = 'gmn'
        elif self.split_files is not None:  # which clip goes where matters
            layout = {k: [self.files.index(p) for p in v]
                      for k, v in sorted(self.split_files.items())}
            mode += '-' + hashlib.sha1(repr(layout).encode()).hexdigest()[:8]
        prefix = 'mocap_proxy' if self.is_synthetic_proxy else 'mocap'
        return [cache_name(f'{prefix}_{self.split}', {
            'files': file_fingerprint(paths),
            'mode': mode,
            'delta': self.delta_frame,
            'ntr': self.sizes['train'],
            'nva': self.sizes['val'],
            'nte': self.sizes['test'],
            # the GMN samples are fixed by the split file
            'seed': 0 if self.gmn_split_path is not None else self.seed,
        })]

    def _load_clip(self, path: str, skeleton) -> MocapClip:
        if path.lower().endswith('.amc'):
            return asf_amc_positions(self.skeleton_path, path, skeleton)
        return read_bvh(path)

    def gmn_samples(self) -> List[Tuple[int, int]]:
        r"""The ``(clip index, start frame)`` pairs of this split under the
        GMN protocol (see the class docstring), in dataset order.

        Raises:
            ValueError: Without ``gmn_split``, or when a split's size asks
                for more start frames per case than the file lists.
        """
        if self.gmn_cases is None:
            raise ValueError("gmn_samples() needs the GMN protocol "
                             "(gmn_split='...json')")
        cases = self.gmn_cases[self.split]
        size = self.sizes[self.split]
        each = size // len(cases)
        if each < 1 or any(each > len(v) for v in cases.values()):
            raise ValueError(
                f"num_{self.split} = {size} asks for {size} // "
                f"{len(cases)} cases = {each} start frames per case, but "
                f"{self.gmn_split_path} lists "
                f"{min(len(v) for v in cases.values())} to "
                f"{max(len(v) for v in cases.values())} per {self.split!r} "
                f"case (need 1 to that many)")
        return [(c, t) for c in sorted(cases) for t in cases[c][:each]]

    def _gmn_pairs(self, clips: Dict[str, MocapClip]) -> np.ndarray:
        pairs = self.gmn_samples()
        for c, t in pairs:
            T = clips[self.files[c]].positions.shape[0]
            # GMN drops the last frame (it only serves the last velocity)
            if t + self.delta_frame > T - 2:
                raise ValueError(
                    f"{self.gmn_split_path}: start frame {t} of case {c} "
                    f"({osp.basename(self.files[c])}, {T} frames) leaves no "
                    f"target {self.delta_frame} frames ahead (needs t + "
                    f"delta_frame <= {T - 2}); is case {c} really this "
                    f"clip?")
        return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)

    def process(self) -> None:
        skeleton = (read_asf(self.skeleton_path)
                    if self.skeleton_path is not None else None)
        if self.gmn_cases is not None:
            used = sorted({c for c, _ in self.gmn_samples()})
            clips = {self.files[c]: self._load_clip(self.files[c], skeleton)
                     for c in used}
            self._save(self._gmn_pairs(clips), clips)
            return
        if self.split_files is None:
            pool_files = self.files
            rng = np.random.default_rng(self.seed)
        else:
            pool_files = self.split_files[self.split]
            rng = split_rng(self.seed, self.split)
        clips = {p: self._load_clip(p, skeleton) for p in pool_files}
        pairs = []
        for p in pool_files:
            T = clips[p].positions.shape[0]
            starts = np.arange(max(T - self.delta_frame, 0))
            pairs.append(np.stack([np.full(starts.size, self.files.index(p)),
                                   starts], axis=1))
        pairs = np.concatenate(pairs) if pairs else np.zeros((0, 2), int)
        if self.split_files is None:
            need = sum(self.sizes.values())
            offset = {'train': 0, 'val': self.sizes['train'],
                      'test': self.sizes['train'] + self.sizes['val']}
            a = offset[self.split]
        else:
            need = self.sizes[self.split]
            a = 0
        if pairs.shape[0] < need:
            raise ValueError(
                f"{len(pool_files)} clip(s) give {pairs.shape[0]} start "
                f"frames for delta_frame={self.delta_frame}, but "
                f"{need} samples are needed ({self.split!r}: "
                f"{self.sizes[self.split]}); lower the sizes or add clips "
                f"({', '.join(osp.basename(p) for p in pool_files)})")
        chosen = pairs[rng.permutation(pairs.shape[0])[a:a + self.sizes[
            self.split]]]
        chosen = chosen[np.lexsort((chosen[:, 1], chosen[:, 0]))]
        self._save(chosen, clips)

    def _save(self, chosen: np.ndarray, clips: Dict[str, MocapClip]
              ) -> None:
        data_list = []
        names = None
        for c, t in chosen:
            clip = clips[self.files[c]]
            X = clip.positions
            if names is None:
                names = clip.joint_names
            edges = torch.from_numpy(clip.edges.T.copy())
            edge_index = torch.cat([edges, edges.flip(0)], dim=1)
            J = X.shape[1]
            data_list.append(Data(
                pos=to_float(X[t]), vel=to_float(X[t + 1] - X[t]),
                y=to_float(X[t + self.delta_frame]), edge_index=edge_index,
                joint=torch.arange(J), clip=torch.tensor([int(c)]),
                frame=torch.tensor([int(t)])))
        data_list = apply_pre(data_list, self.pre_filter, self.pre_transform)
        # the names first: the data file's existence marks a complete cache
        atomic_write(self.processed_paths[0] + '.joints',
                     lambda f: torch.save(list(names), f))
        save_data_list(data_list, self.processed_paths[0])

    def _repr_fields(self) -> str:
        tag = ', synthetic proxy' if self.is_synthetic_proxy else ''
        tag += ', GMN split' if self.gmn_split_path is not None else ''
        return f'split={self.split!r}{tag}'


def read_gmn_split(path: str) -> Dict[str, Dict[int, List[int]]]:
    r"""Reads the GMN motion split file: a JSON object
    ``{"train"|"val"|"test": {case_id: [start frames]}}`` (case ids as
    strings of integers >= 0, start frames integers >= 0, no case in two
    splits).

    Args:
        path (str): The JSON file (e.g. ``gmn_motion_split.json``).

    Returns:
        dict: ``split -> {case id: [start frames]}`` (ints).

    Raises:
        FileNotFoundError: When the file is missing.
        ValueError: When it is not such a JSON object (the message names
            the file and the offending entry).

    Example:

        >>> import json, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), 'split.json')
        >>> with open(path, 'w') as f:
        ...     json.dump({'train': {'1': [4, 0]}, 'val': {'0': [2]},
        ...                'test': {'2': [7]}}, f)
        >>> read_gmn_split(path)['train']
        {1: [4, 0]}
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f"{path}: no such GMN split file (gmn_motion_split.json: "
            f'{{"train"|"val"|"test": {{case_id: [start frames]}}}}, the '
            f"JSON conversion of GMN's motion split.pkl)")
    try:
        with open(path, encoding='utf-8') as f:
            raw = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a JSON file ({e})") from None
    splits = MotionCapture.SPLITS
    if not isinstance(raw, dict) or set(raw) != set(splits):
        got = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(f"{path}: expected a JSON object with the keys "
                         f"{list(splits)}, got {got}")
    out: Dict[str, Dict[int, List[int]]] = {}
    owner: Dict[int, str] = {}
    for split in splits:
        cases = raw[split]
        if not isinstance(cases, dict) or not cases:
            raise ValueError(f"{path}: {split!r} must map case ids to lists "
                             f"of start frames (got {cases!r:.60})")
        out[split] = {}
        for key, starts in cases.items():
            if not (isinstance(key, str) and key.isdigit()):
                raise ValueError(f"{path}: {split!r} case id {key!r} is not "
                                 f"an integer >= 0")
            if (not isinstance(starts, list) or not starts or not all(
                    isinstance(t, int) and not isinstance(t, bool)
                    and t >= 0 for t in starts)):
                raise ValueError(f"{path}: {split!r} case {key} must list "
                                 f"start frames (integers >= 0), got "
                                 f"{starts!r:.60}")
            case = int(key)
            if case in owner:
                raise ValueError(f"{path}: case {case} is in both "
                                 f"{owner[case]!r} and {split!r}")
            owner[case] = split
            out[split][case] = list(starts)
    return out


__all__ = ['MotionCapture', 'read_gmn_split']
