r"""The :mod:`torch.distributed` plumbing under
:class:`~torch_geometric_remul.train.runtime.Runtime` (the one object the
training loop talks to): multi-process and multi-node training with
DistributedDataParallel, launched by ``torchrun``.

Everything here is a no-op (or the identity) in a single process:

* :func:`setup` / :func:`teardown`: detect ``torchrun`` (the ``RANK``,
  ``WORLD_SIZE`` and ``LOCAL_RANK`` environment variables) and join its
  process group with ``init_method='env://'``: gloo on CPU, NCCL on GPU.
* :func:`epoch_batches` and :func:`shard`: every rank draws the *same*
  per-epoch permutation, the one a single-process run draws for this
  ``(seed, epoch)``, cuts it into the same global batches, and takes its own
  contiguous piece of each. The global batch of every step is therefore the
  batch a single process would see, and the order depends only on
  ``(seed, epoch)`` (resumption stays exact).
* :func:`all_reduce_sum`, :func:`broadcast_from_main`, :func:`gather_objects`
  and :func:`staged`: the few collectives the loop needs (metric sums,
  run directory and checkpoint, per-rank generator states, dataset
  preparation one node-local process at a time).
"""
import datetime
import os
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
)

import torch
import torch.distributed as dist

T = TypeVar('T')

#: The environment variables ``torchrun`` sets for every worker.
TORCHRUN_VARIABLES = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK')


class PeerFailure(RuntimeError):
    r"""Raised on the ranks that did not fail when another rank failed in a
    step every rank takes together (e.g. loading the datasets)."""


@dataclass(frozen=True)
class DistEnv:
    r"""Where this process stands in the process group.

    Args:
        rank (int): Global rank (``0`` in a single process).
        world_size (int): Number of processes (``1`` in a single process).
        local_rank (int): Rank on this node (selects the GPU under NCCL).
        backend (str, optional): ``"gloo"`` or ``"nccl"`` (``None`` without a
            process group).
        device (torch.device): Where the model and the batches live.
        owns_group (bool): Whether :func:`setup` created the process group
            (then :func:`teardown` destroys it).
    """
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: Optional[str] = None
    device: torch.device = field(default_factory=lambda: torch.device('cpu'))
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        r"""Whether this is rank 0, the process that writes and prints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        r"""Whether more than one process trains (DDP is used)."""
        return self.world_size > 1


def _env_int(environ: Mapping[str, str], name: str) -> int:
    value = environ[name]
    try:
        out = int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer "
                         f"(got {value!r})") from None
    if out < 0:
        raise ValueError(f"environment variable {name} must be >= 0 "
                         f"(got {out})")
    return out


def torchrun_env(
        environ: Optional[Mapping[str, str]] = None
) -> Optional[Tuple[int, int, int]]:
    r"""``(rank, world_size, local_rank)`` from the environment variables
    ``torchrun`` sets, or ``None`` when they are absent (not launched by
    ``torchrun``).

    Args:
        environ (dict, optional): The environment. (default: ``os.environ``)
    """
    environ = os.environ if environ is None else environ
    present = [name for name in TORCHRUN_VARIABLES if name in environ]
    if not present:
        return None
    if len(present) != len(TORCHRUN_VARIABLES):
        missing = sorted(set(TORCHRUN_VARIABLES) - set(present))
        raise ValueError(f"incomplete torchrun environment: "
                         f"{', '.join(present)} set but "
                         f"{', '.join(missing)} missing (launch with "
                         f"torchrun, or unset them)")
    rank, world, local = (_env_int(environ, name)
                          for name in TORCHRUN_VARIABLES)
    if world < 1 or rank >= world:
        raise ValueError(f"inconsistent torchrun environment: RANK={rank}, "
                         f"WORLD_SIZE={world}")
    return rank, world, local


def default_backend() -> str:
    r"""``"nccl"`` when CUDA and NCCL are available, else ``"gloo"``."""
    if torch.cuda.is_available() and dist.is_nccl_available():
        return 'nccl'
    return 'gloo'


def _device(backend: Optional[str], local_rank: int) -> torch.device:
    if backend == 'nccl':
        return torch.device('cuda', local_rank % torch.cuda.device_count())
    return torch.device('cpu')


def setup(environ: Optional[Mapping[str, str]] = None,
          backend: Optional[str] = None,
          timeout: Optional[datetime.timedelta] = None) -> DistEnv:
    r"""Joins the process group of a ``torchrun`` launch.

    * A process group that already exists (created by the caller) is used
      as it is.
    * Under ``torchrun`` with ``WORLD_SIZE > 1``, the group is created with
      ``init_method='env://'`` (``MASTER_ADDR``/``MASTER_PORT`` come from
      ``torchrun``'s rendezvous), NCCL when CUDA is available (each process
      on GPU ``LOCAL_RANK``), gloo otherwise.
    * Otherwise (a plain process, or ``torchrun`` with one process) this is
      a single-process run and nothing is initialised.

    Args:
        environ (dict, optional): The environment. (default: ``os.environ``)
        backend (str, optional): Force ``"gloo"`` or ``"nccl"``.
            (default: :func:`default_backend`)
        timeout (datetime.timedelta, optional): Timeout of collectives.
    """
    environ = os.environ if environ is None else environ
    if backend is not None and backend not in ('gloo', 'nccl'):
        raise ValueError(f"'backend' must be 'gloo' or 'nccl' "
                         f"(got {backend!r})")
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(environ.get('LOCAL_RANK', rank))
        used = dist.get_backend()
        if used == 'nccl':
            torch.cuda.set_device(_device(used, local))
        return DistEnv(rank, world, local, used, _device(used, local),
                       owns_group=False)
    found = torchrun_env(environ)
    if found is None or found[1] == 1:
        return DistEnv()
    rank, world, local = found
    if not dist.is_available():
        raise RuntimeError('launched with WORLD_SIZE > 1 but this PyTorch '
                           'build has no torch.distributed')
    backend = backend or default_backend()
    device = _device(backend, local)
    if backend == 'nccl':
        torch.cuda.set_device(device)
    kwargs = {} if timeout is None else {'timeout': timeout}
    dist.init_process_group(backend, init_method='env://', rank=rank,
                            world_size=world, **kwargs)
    return DistEnv(rank, world, local, backend, device, owns_group=True)


def teardown(env: DistEnv) -> None:
    r"""Destroys the process group if :func:`setup` created it."""
    if env.owns_group and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def get_rank() -> int:
    r"""This process's rank (``0`` without a process group)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return 0


def get_world_size() -> int:
    r"""Number of processes (``1`` without a process group)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def _collective_device() -> torch.device:
    if dist.get_backend() == 'nccl':
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


def barrier() -> None:
    r"""Waits for every rank (no-op in a single process)."""
    if get_world_size() > 1:
        dist.barrier()


def all_reduce_sum(values: Sequence[float]) -> List[float]:
    r"""Element-wise sums of ``values`` over all ranks, in float64 (the
    values themselves in a single process).

    Args:
        values (sequence of float): This rank's values (same length on every
            rank).
    """
    values = [float(v) for v in values]
    if get_world_size() == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().tolist()


def broadcast_from_main(fn: Callable[[], T]) -> T:
    r"""Runs ``fn()`` on rank 0 only and returns its result on every rank;
    an exception raised by ``fn`` is raised on every rank (so that no rank
    is left waiting).

    Args:
        fn (callable): What rank 0 computes (its result must be picklable).
    """
    if get_world_size() == 1:
        return fn()
    payload: List[Any] = [None]
    if get_rank() == 0:
        try:
            payload[0] = (True, fn())
        except Exception as e:  # re-raised on every rank below
            payload[0] = (False, e)
    dist.broadcast_object_list(payload, src=0)
    ok, value = payload[0]
    if not ok:
        raise value
    return value


def gather_objects(obj: Any) -> Optional[List[Any]]:
    r"""Every rank's ``obj`` as a list indexed by rank, on rank 0 (``None``
    on the other ranks; ``[obj]`` in a single process).

    Args:
        obj (Any): A picklable object.
    """
    if get_world_size() == 1:
        return [obj]
    out = [None] * get_world_size() if get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def staged(fn: Callable[[], T], local_rank: int = 0) -> T:
    r"""Calls ``fn`` on every rank, but first on rank 0, then on the first
    process of every other node, then on the rest, waiting for each stage to
    finish: datasets that are simulated or processed on first use are
    written once per file system, never by two processes at once.

    If ``fn`` raises on any rank, every rank raises (the failing ranks their
    own exception, the others a :class:`PeerFailure` naming the failed
    ranks) instead of waiting forever.

    Args:
        fn (callable): What every rank runs (e.g. loading the datasets).
        local_rank (int, optional): This process's rank on its node.
            (default: ``0``)
    """
    if get_world_size() == 1:
        return fn()
    rank = get_rank()
    stage = 0 if rank == 0 else 1 if local_rank == 0 else 2
    out, error = None, None
    for current in range(3):
        if stage == current:
            try:
                out = fn()
            except Exception as e:  # re-raised below, on every rank
                error = e
        # an all-reduce of the failure flags doubles as the barrier
        flags = [0.0] * get_world_size()
        flags[rank] = 1.0 if error is not None else 0.0
        failed = [r for r, f in enumerate(all_reduce_sum(flags)) if f]
        if failed:
            if error is not None:
                raise error
            raise PeerFailure(f"rank(s) {failed} failed (see their "
                              f"error messages)")
    return out


def per_rank_batch_size(batch_size: int, world_size: int) -> int:
    r"""The per-rank batch size for a global ``batch_size`` split over
    ``world_size`` processes.

    Raises:
        ValueError: If ``batch_size`` is not divisible by ``world_size``.
    """
    if batch_size % world_size != 0:
        raise ValueError(
            f"'batch_size' is the global batch size and must be divisible by "
            f"the number of processes: {batch_size} graphs cannot be split "
            f"evenly over {world_size} processes (use e.g. "
            f"{max(world_size, batch_size // world_size * world_size)})")
    return batch_size // world_size


def epoch_batches(num_items: int, batch_size: int,
                  generator: torch.Generator) -> List[List[int]]:
    r"""The global batches (lists of dataset indices) of one epoch: exactly
    those a shuffling :class:`torch_geometric.loader.DataLoader` with
    ``batch_size`` and ``generator`` yields in a single process (same
    random draws, same order).

    Args:
        num_items (int): Length of the dataset.
        batch_size (int): The global batch size.
        generator (torch.Generator): The epoch's generator (consumed as the
            data loader would consume it).
    """
    loader = torch.utils.data.DataLoader(range(num_items),
                                         batch_size=batch_size, shuffle=True,
                                         generator=generator,
                                         collate_fn=list)
    return [list(batch) for batch in loader]


def shard(indices: Sequence[int], rank: int,
          world_size: int) -> Tuple[List[int], float]:
    r"""This rank's piece of a global batch and its share of it.

    A batch of ``m >= world_size`` graphs is cut into ``world_size``
    contiguous pieces whose sizes differ by at most one (equal pieces of
    ``batch_size / world_size`` for every full batch). When the last batch
    of an epoch holds fewer graphs than there are ranks, ranks
    ``m, m + 1, ...`` repeat a graph with share 0, so that every rank takes
    the same number of steps (DDP requires it).

    The share (``len(piece) / m``, 0 for a repeated graph) is what the rank's
    mean loss is weighted by: ``sum(share_r * loss_r)`` over ranks is the
    mean loss over the global batch (exactly, when all graphs have the same
    number of target rows).

    Args:
        indices (sequence of int): The global batch.
        rank (int): This rank.
        world_size (int): Number of ranks.

    Example:

        >>> shard([10, 11, 12, 13, 14, 15, 16, 17], rank=1, world_size=2)
        ([14, 15, 16, 17], 0.5)
        >>> [shard([10, 11, 12], r, 2) for r in range(2)]
        [([10, 11], 0.6666666666666666), ([12], 0.3333333333333333)]
        >>> [shard([10], r, 2) for r in range(2)]
        [([10], 1.0), ([10], 0.0)]
    """
    m = len(indices)
    if m == 0:
        raise ValueError('cannot shard an empty batch')
    if not 0 <= rank < world_size:
        raise ValueError(f"'rank' must be in [0, {world_size}) (got {rank})")
    if m >= world_size:
        lo, hi = _bounds(m, rank, world_size)
        return list(indices[lo:hi]), (hi - lo) / m
    if rank < m:
        return [indices[rank]], 1.0 / m
    return [indices[rank % m]], 0.0


def _bounds(n: int, rank: int, world_size: int) -> Tuple[int, int]:
    base, extra = divmod(n, world_size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def shard_range(num_items: int, rank: int, world_size: int) -> slice:
    r"""This rank's contiguous block of ``range(num_items)`` (block sizes
    differ by at most one; empty when ``num_items < world_size`` and
    ``rank >= num_items``), for evaluation.

    Args:
        num_items (int): Number of items.
        rank (int): This rank.
        world_size (int): Number of ranks.
    """
    lo, hi = _bounds(num_items, rank, world_size)
    return slice(lo, hi)


def rank_seed(seed: int, rank: int) -> int:
    r"""The seed of rank ``rank``'s random generators for a run seeded with
    ``seed``: ``seed`` itself on rank 0 (a single process and rank 0 draw
    alike), distinct seeds on the other ranks.

    PyTorch's CPU generator keeps only the low 32 bits of a seed, so the
    rank is mixed into those (an odd multiplier: distinct ranks never
    collide for the same ``seed``).
    """
    if rank == 0:
        return seed
    return (seed + rank * 0x9E3779B9) & 0xFFFFFFFFFFFFFFFF


def wrap_model(model: torch.nn.Module, env: DistEnv) -> torch.nn.Module:
    r"""``model`` wrapped in
    :class:`~torch.nn.parallel.DistributedDataParallel` when more than one
    process trains (``find_unused_parameters=False``: every step is exactly
    one forward pass), else ``model`` itself.

    Args:
        model (torch.nn.Module): The model, already on ``env.device``.
        env (DistEnv): From :func:`setup`.
    """
    if not env.enabled:
        return model
    device_ids = [env.device] if env.device.type == 'cuda' else None
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=device_ids, find_unused_parameters=False)
