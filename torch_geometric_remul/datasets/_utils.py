r"""Helpers shared by the datasets: graphs, split sizes, seeds, cache file
names and collated files (argument checks live in
``torch_geometric_remul._checks``). Private: the public names live in the
dataset modules."""
import hashlib
import os
import os.path as osp
import pickle
import sys
import warnings
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
)

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset

from torch_geometric_remul._checks import check_int
from torch_geometric_remul._io import atomic_write

#: Bumped whenever the layout of a processed file changes, so that caches
#: written by an older version are regenerated rather than misread.
CACHE_VERSION = 1

#: Stable integer tags used to derive one independent seed per split.
SPLIT_TAGS = {'train': 0, 'val': 1, 'test': 2}


# Graphs #####################################################################

def full_edge_index(num_nodes: int) -> Tensor:
    r"""All ordered pairs ``(i, j)`` with ``i != j``, row-major, as a
    ``[2, num_nodes * (num_nodes - 1)]`` long tensor."""
    idx = torch.arange(num_nodes)
    row = idx.repeat_interleave(num_nodes)
    col = idx.repeat(num_nodes)
    keep = row != col
    return torch.stack([row[keep], col[keep]], dim=0)


def radius_edge_index(pos: Tensor, cutoff: float) -> Tensor:
    r"""Ordered pairs ``(i, j)``, ``i != j``, with ``|pos_i - pos_j| <
    cutoff``, computed from the dense distance matrix of one small graph."""
    dist = torch.cdist(pos.double(), pos.double())
    mask = dist < cutoff
    mask.fill_diagonal_(False)
    return mask.nonzero().t().contiguous()


# Arguments ##################################################################

def split_sizes(split: str, num_train: Any, num_val: Any, num_test: Any,
                unit: str = 'sample') -> Dict[str, int]:
    r"""Validated ``{'train', 'val', 'test'}`` sizes; the size of ``split``
    (``'ood'`` reads the test size) must be at least one."""
    sizes = {
        'train': check_int(num_train, 'num_train', minimum=0),
        'val': check_int(num_val, 'num_val', minimum=0),
        'test': check_int(num_test, 'num_test', minimum=0),
    }
    base = 'test' if split == 'ood' else split
    if sizes[base] < 1:
        raise ValueError(f"the {split!r} split needs at least one {unit} "
                         f"(got num_{base}={sizes[base]})")
    return sizes


# Seeds ######################################################################

def split_rng(seed: int, split: str, *extra: int) -> np.random.Generator:
    r"""An independent numpy generator per ``(seed, split)``: splits drawn
    from disjoint derived seeds never share random numbers, and one split's
    content does not depend on the sizes of the others."""
    return np.random.default_rng(
        np.random.SeedSequence([int(seed), SPLIT_TAGS[split], *extra]))


def derived_torch_generator(rng: np.random.Generator) -> torch.Generator:
    r"""A :class:`torch.Generator` seeded from a numpy generator."""
    seed = int(rng.integers(0, 2**63 - 1))
    return torch.Generator().manual_seed(seed)


# Cache file names ###########################################################

def fmt(value: Any) -> str:
    r"""A short, exact, file-name-safe rendering of a parameter value."""
    if isinstance(value, bool):
        return 'T' if value else 'F'
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, (tuple, list)):
        return '-'.join(fmt(v) for v in value)
    else:
        text = str(value)
    return text.replace('/', '_').replace(' ', '').replace('+', '')


def cache_name(prefix: str, params: Dict[str, Any]) -> str:
    r"""``<prefix>_<k1><v1>_<k2><v2>..._v<CACHE_VERSION>.pt``."""
    parts = [prefix] + [f'{k}{fmt(v)}' for k, v in params.items()]
    return '_'.join(parts) + f'_v{CACHE_VERSION}.pt'


def file_fingerprint(paths: Iterable[str]) -> str:
    r"""A short SHA-256 hash of the contents of files (in the given order),
    so that a cache built from other (or changed) raw files is never
    reused: a file replaced by one with the same size and modification time
    (``cp -p``, ``tar``, ``touch -r``) changes it too, and a file moved
    elsewhere unchanged keeps it. Hashing reads each file once, which is
    cheap next to processing it."""
    h = hashlib.sha256()
    for path in paths:
        digest = hashlib.sha256()
        with open(path, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                digest.update(chunk)
        h.update(digest.digest())
    return h.hexdigest()[:16]


# Atomic writes ##############################################################

def save_data_list(data_list: List[Data], path: str) -> None:
    r"""Collates ``data_list`` and writes it in the layout read by
    :meth:`torch_geometric.data.InMemoryDataset.load`, atomically."""
    data, slices = InMemoryDataset.collate(data_list)
    payload = (data.to_dict(), slices, data.__class__)
    atomic_write(path, lambda f: torch.save(payload, f))


def _pre_repr(fn: Optional[Callable]) -> str:
    """How PyG records a ``pre_transform``/``pre_filter`` beside a cache (its
    own helper, so that caches written by PyG and by us compare equal)."""
    from torch_geometric.data.dataset import _repr
    return _repr(fn)


def _read_pre_repr(path: str) -> Optional[str]:
    """The recorded ``pre_transform``/``pre_filter`` of a cache, read
    without unpickling code (``weights_only=True``); ``None`` when the file
    is unreadable (half-written by another process, damaged, or holding
    anything but a string)."""
    try:
        value = torch.load(path, weights_only=True)
    except (EOFError, OSError, RuntimeError, pickle.UnpicklingError):
        return None
    return value if isinstance(value, str) else None


class DamagedProcessedFile(ValueError):
    r"""A processed (cache) file that cannot be read back: empty, truncated,
    not a :func:`torch.save` file, holding objects that a weights-only load
    refuses (pickled code), or not in the layout this package writes."""


def _describe(error: BaseException) -> str:
    if (isinstance(error, pickle.UnpicklingError)
            and 'weights only' in str(error).lower()):
        # torch's message suggests turning weights_only off: never repeat that;
        # keep its reason (e.g. "Unsupported global: GLOBAL posix.system")
        advice = ('weights_only', 'weights only', 'documentation',
                  'file an issue', 'safe_globals')
        lines = [ln.replace('WeightsUnpickler error:', '').strip()
                 for ln in str(error).splitlines()]
        reason = next((ln for ln in lines if ln and not any(
            a in ln.lower() for a in advice)), '')[:160]
        return ('a weights-only load refuses it, as it would any pickled '
                'code' + (f': {reason}' if reason else ''))
    if isinstance(error, EOFError):
        return 'EOFError: the file is empty or truncated'
    text = (str(error).strip().splitlines() or [''])[0][:160]
    return f'{type(error).__name__}: {text}' if text else \
        type(error).__name__


def read_processed(path: str,
                   check: Optional[Callable[[Any], bool]] = None) -> Any:
    r"""Reads a processed file with ``torch.load(..., weights_only=True)``
    and nothing else (PyG's own loader retries
    with ``weights_only`` off, which runs the code a crafted file carries).

    Args:
        path (str): The file.
        check (callable, optional): Whether the loaded object has the
            expected layout.

    Raises:
        FileNotFoundError: If the file does not exist.
        DamagedProcessedFile: (a :class:`ValueError`) naming the file, for a
            file that cannot be read or has another layout.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f"{path}: no such processed file")
    try:
        with open(path, 'rb') as f:
            value = torch.load(f, map_location='cpu', weights_only=True)
    except Exception as e:  # any failure of a weights-only load: damaged
        raise DamagedProcessedFile(
            f"{path}: damaged processed file ({_describe(e)})") from None
    if check is not None and not check(value):
        raise DamagedProcessedFile(
            f"{path}: damaged processed file (not the layout this package "
            f"writes: got a {type(value).__name__})")
    return value


def _is_collated(value: Any) -> bool:
    r"""The layout :func:`save_data_list` writes: ``(dict of tensors, dict
    of slices, Data subclass)``."""
    return (isinstance(value, tuple) and len(value) == 3
            and isinstance(value[0], dict) and isinstance(value[1], dict)
            and isinstance(value[2], type) and issubclass(value[2], Data))


class CachedDataset(InMemoryDataset):
    r"""The base of the package's datasets: an
    :class:`~torch_geometric.data.InMemoryDataset` whose cache bookkeeping
    is safe when several processes share one data root (two benchmark runs
    at once, the ranks of a distributed run) and never unpickles a file.

    PyG's ``Dataset._process`` compares the ``pre_transform`` and
    ``pre_filter`` recorded beside the cache (``pre_transform.pt``,
    ``pre_filter.pt``, shared by every cache in ``processed_dir``) by
    unpickling them (a full ``torch.load``), and rewrites them in place
    after processing, so a process reading while another writes fails with
    ``EOFError``. Here they are read with ``weights_only=True`` (an
    unreadable record is skipped, not fatal), compared as PyG does (a
    mismatch warns) and written atomically; processed files are written
    atomically by :func:`save_data_list`.

    Processed files are read by :meth:`load` and :meth:`read_processed`
    with ``torch.load(..., weights_only=True)`` only (PyG's
    :meth:`~torch_geometric.data.InMemoryDataset.load` retries with
    ``weights_only`` off). A file that fails (empty, truncated, holding
    pickled code or another layout) is damaged: it is rebuilt from the raw
    data once, with a warning naming it; if it still fails, a
    :class:`DamagedProcessedFile` (:class:`ValueError`) names it.
    """

    @property
    def raw_file_names(self) -> List[str]:
        r"""None: each dataset finds (or generates) its raw files itself;
        PyG downloads nothing."""
        return []

    def save_processed(self, data_list: List[Data]) -> None:
        r"""Applies ``pre_filter`` and ``pre_transform`` to ``data_list``
        and writes it to the dataset's processed file (what
        :meth:`process` ends with)."""
        data_list = apply_pre(data_list, self.pre_filter, self.pre_transform)
        save_data_list(data_list, self.processed_paths[0])

    def _repr_fields(self) -> str:
        r"""What :meth:`__repr__` shows after the length: the split, and
        what subclasses add."""
        return f'split={self.split!r}'

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({len(self)}, {self._repr_fields()})'

    @property
    def processed_paths(self) -> List[str]:
        r"""The processed files, computed once per dataset (their names
        hash the raw files' contents, see :func:`file_fingerprint`)."""
        paths = self.__dict__.get('_remul_processed_paths')
        if paths is None:
            paths = list(super().processed_paths)
            self._remul_processed_paths = paths
        return list(paths)

    def load_processed(self) -> None:
        r"""Loads the dataset's processed file (what the constructor ends
        with), through this class's own :meth:`load`, which never
        unpickles."""
        path = self.processed_paths[0]
        self.load(path)

    def load(self, path: str, data_cls: Any = Data) -> None:
        r"""Loads the collated dataset written by :func:`save_data_list` to
        ``path`` (see the class description for damaged files)."""
        data, slices, data_cls = self.read_processed(path, _is_collated)
        self.slices = slices
        self.data = data_cls.from_dict(data)

    def read_processed(self, path: str,
                       check: Optional[Callable[[Any], bool]] = None
                       ) -> Any:
        r""":func:`read_processed` of a file of this dataset's cache; a
        damaged file is rebuilt once (see the class description).

        Args:
            path (str): The file, in :attr:`processed_dir`.
            check (callable, optional): Whether the loaded object has the
                expected layout.
        """
        try:
            return read_processed(path, check)
        except DamagedProcessedFile as e:
            inside = (osp.dirname(osp.abspath(path))
                      == osp.abspath(self.processed_dir))
            if not inside or getattr(self, '_remul_rebuilt', False):
                raise DamagedProcessedFile(
                    f"{e}; delete it (or pass force_reload=True) to rebuild "
                    f"it from the raw data") from None
            warnings.warn(f"{e}; rebuilding it from the raw data",
                          UserWarning, stacklevel=3)
        self._remul_rebuilt = True
        self._build()
        try:
            return read_processed(path, check)
        except DamagedProcessedFile as e:
            raise DamagedProcessedFile(
                f"{e}, although it was just rebuilt from the raw data; "
                f"check the disk, then delete it (or pass force_reload=True) "
                f"to rebuild it again") from None

    def _process(self) -> None:
        records = (('pre_transform', self.pre_transform),
                   ('pre_filter', self.pre_filter))
        for name, fn in records:
            path = osp.join(self.processed_dir, f'{name}.pt')
            if self.force_reload or not osp.exists(path):
                continue
            saved = _read_pre_repr(path)
            if saved is not None and saved != _pre_repr(fn):
                warnings.warn(
                    f"The `{name}` argument differs from the one used to "
                    f"create the cache in {self.processed_dir} ({saved}); "
                    f"pass `force_reload=True` or delete the cache to "
                    f"rebuild it with the new one", stacklevel=2)
        if not self.force_reload and all(osp.exists(p)
                                         for p in self.processed_paths):
            return
        self._build()

    def _build(self) -> None:
        r"""Runs :meth:`process` and records the ``pre_transform`` and
        ``pre_filter`` beside the cache."""
        records = (('pre_transform', self.pre_transform),
                   ('pre_filter', self.pre_filter))
        verbose = self.log and 'PYTEST_CURRENT_TEST' not in os.environ
        if verbose:
            print('Processing...', file=sys.stderr)
        os.makedirs(self.processed_dir, exist_ok=True)
        self.process()
        for name, fn in records:
            text = _pre_repr(fn)
            atomic_write(osp.join(self.processed_dir, f'{name}.pt'),
                         lambda f, t=text: torch.save(t, f))
        if verbose:
            print('Done!', file=sys.stderr)


def apply_pre(data_list: List[Data], pre_filter: Optional[Callable],
              pre_transform: Optional[Callable]) -> List[Data]:
    if pre_filter is not None:
        data_list = [d for d in data_list if pre_filter(d)]
    if not data_list:
        raise ValueError("'pre_filter' rejected every graph of the split; "
                         "nothing to store")
    if pre_transform is not None:
        data_list = [pre_transform(d) for d in data_list]
    return data_list


def to_float(array: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
