r"""Where the training loop runs: one process, or one rank of a ``torchrun``
process group. The loop talks to a :class:`Runtime` only, so it reads the
same with one process or many; every difference between the two lives in
this class (the :mod:`torch.distributed` plumbing under it is in
``torch_geometric_remul.train.distributed``)."""
import datetime
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

import torch
from torch_geometric.loader import DataLoader

from torch_geometric_remul.train import distributed
from torch_geometric_remul.train.distributed import DistEnv


def _quiet(line: str) -> None:
    pass


class Runtime:
    r"""This process's place in the run: its rank among ``world_size``
    processes, its device, and the few collective operations the training
    loop needs. With one process every collective is the identity and no
    process group exists.

    Args:
        env (DistEnv, optional): From
            ``torch_geometric_remul.train.distributed.setup`` (default: a
            single process on the CPU).

    Example:

        >>> runtime = Runtime()
        >>> runtime.rank, runtime.world_size, runtime.is_main
        (0, 1, True)
        >>> runtime.all_reduce_sum([1.5, 2])
        [1.5, 2.0]
        >>> loader, shares = runtime.epoch_loader(
        ...     list(range(5)), batch_size=2,
        ...     generator=torch.Generator().manual_seed(0))
        >>> len(loader), shares
        (3, [1.0, 1.0, 1.0])
    """
    def __init__(self, env=None) -> None:
        self.env = DistEnv() if env is None else env

    # Starting and stopping ################################################

    @classmethod
    def start(cls, environ: Optional[Mapping[str, str]] = None,
              backend: Optional[str] = None,
              timeout: Optional[float] = None) -> 'Runtime':
        r"""Joins the process group of a ``torchrun`` launch (or the group
        the caller created), else a single process.

        Args:
            environ (dict, optional): The environment. (default:
                ``os.environ``)
            backend (str, optional): ``"gloo"`` or ``"nccl"``. (default:
                NCCL when CUDA is available, else gloo)
            timeout (float, optional): Seconds a collective may wait.
        """
        if timeout is not None:
            timeout = datetime.timedelta(seconds=timeout)
        return cls(distributed.setup(environ, backend, timeout))

    @classmethod
    def current(cls) -> 'Runtime':
        r"""The process group this process already belongs to (a single
        process when there is none), without creating one: for evaluating
        outside :func:`~torch_geometric_remul.train.train`."""
        world = distributed.get_world_size()
        if world == 1:
            return cls()
        return cls(DistEnv(rank=distributed.get_rank(), world_size=world))

    def close(self) -> None:
        r"""Leaves the process group if :meth:`start` created it."""
        distributed.teardown(self.env)

    # Who this process is ##################################################

    @property
    def rank(self) -> int:
        r"""This process's rank (``0`` in a single process)."""
        return self.env.rank

    @property
    def world_size(self) -> int:
        r"""The number of processes that train together."""
        return self.env.world_size

    @property
    def device(self) -> torch.device:
        r"""Where the model and the batches live."""
        return self.env.device

    @property
    def is_main(self) -> bool:
        r"""Whether this process writes the run files and prints."""
        return self.env.is_main

    @property
    def distributed(self) -> bool:
        r"""Whether several processes train together (with
        :class:`~torch.nn.parallel.DistributedDataParallel`)."""
        return self.env.enabled

    @property
    def one_forward_per_step(self) -> bool:
        r"""Whether a training step may run the model only once
        (DistributedDataParallel synchronises the gradients of one forward
        pass per backward pass)."""
        return self.env.enabled

    def describe(self, batch_size: int) -> Optional[str]:
        r"""A status line about the processes (``None`` for one)."""
        if not self.env.enabled:
            return None
        return (f'distributed: {self.world_size} processes '
                f'({self.env.backend}), global batch {batch_size} = '
                f'{self.world_size} x {batch_size // self.world_size}')

    def main_only(self, log: Callable[[str], Any]) -> Callable[[str], Any]:
        r"""``log`` on the main process, a function that drops its lines on
        the others."""
        return log if self.is_main else _quiet

    def seed(self, seed: int) -> int:
        r"""This process's seed of a run seeded with ``seed`` (``seed``
        itself on rank 0)."""
        return distributed.rank_seed(seed, self.rank)

    # Collectives ##########################################################

    def all_reduce_sum(self, values: Sequence[float]) -> List[float]:
        r"""Element-wise sums over the processes, as Python floats."""
        return distributed.all_reduce_sum(values)

    def weighted_mean(self, values: Sequence[float],
                      weight: float) -> Tuple[List[float], float]:
        r"""``(means, total weight)``: the mean over the processes of each
        of ``values`` (this process's means over ``weight`` items). With
        one process ``values`` come back unchanged (exactly, not
        ``values * weight / weight``)."""
        values = [float(v) for v in values]
        if not self.env.enabled:
            return values, float(weight)
        sums = self.all_reduce_sum([v * weight for v in values] + [weight])
        total = sums[-1]
        return [s / max(total, 1) for s in sums[:-1]], total

    def on_main(self, fn: Callable[[], Any]) -> Any:
        r"""``fn()`` computed on the main process, returned on every one
        (an exception of ``fn`` is raised on every one)."""
        return distributed.broadcast_from_main(fn)

    def gather(self, obj: Any) -> Optional[List[Any]]:
        r"""Every process's ``obj`` by rank, on the main process (``None``
        on the others)."""
        return distributed.gather_objects(obj)

    def staged(self, fn: Callable[[], Any]) -> Any:
        r"""``fn()`` on every process, one node-local process at a time
        (datasets made on first use are written once)."""
        return distributed.staged(fn, self.env.local_rank)

    def barrier(self) -> None:
        r"""Waits for every process."""
        distributed.barrier()

    # Data #################################################################

    def check_batch_size(self, batch_size: int) -> int:
        r"""This process's share of the global ``batch_size`` (a
        ValueError when it does not split evenly)."""
        return distributed.per_rank_batch_size(batch_size, self.world_size)

    def epoch_loader(self, dataset, batch_size: int,
                     generator: torch.Generator) -> Tuple[DataLoader,
                                                          List[float]]:
        r"""This process's batches of one epoch and each one's share of its
        global batch.

        The global batches are those a shuffling
        :class:`~torch_geometric.loader.DataLoader` with ``generator`` yields
        (the order depends on the generator only, so a resumed run sees the
        batches of an uninterrupted one); every process takes its piece of
        each (the whole batch, share 1, with one process).
        """
        pieces = [distributed.shard(batch, self.rank, self.world_size)
                  for batch in distributed.epoch_batches(
                      len(dataset), batch_size, generator)]
        loader = DataLoader(dataset, batch_sampler=[p for p, _ in pieces])
        return loader, [share for _, share in pieces]

    def eval_blocks(self, dataset, num_eval: int,
                    batch_size: int) -> Tuple[Any, Any, int]:
        r"""``(part, sub, batch_size)`` for evaluating ``dataset``: this
        process's contiguous block of it, its block of the first
        ``num_eval`` graphs, and its per-process batch size (the whole
        dataset, its first ``num_eval`` graphs and ``batch_size`` with one
        process)."""
        rank, world = self.rank, self.world_size
        return (dataset[distributed.shard_range(len(dataset), rank, world)],
                dataset[distributed.shard_range(num_eval, rank, world)],
                max(1, batch_size // world))

    def step_scale(self, share: float) -> float:
        r"""The factor of a step's loss before the backward pass: gradients
        are averaged over the processes, so weighting each one's mean loss
        by ``world_size * share`` gives the gradient of the global batch's
        mean loss (``1`` with one process)."""
        return share * self.world_size

    # Model ################################################################

    def to_device(self, obj):
        r"""A batch (moved) or a module (moved in place) on :attr:`device`;
        untouched on the CPU."""
        if self.device.type == 'cpu':
            return obj
        return obj.to(self.device)

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        r"""``model`` wrapped in
        :class:`~torch.nn.parallel.DistributedDataParallel` when several
        processes train, else ``model`` itself."""
        return distributed.wrap_model(model, self.env)

    def __repr__(self) -> str:
        return (f'Runtime(rank={self.rank}, world_size={self.world_size}, '
                f'device={self.device})')


__all__ = ['Runtime']
