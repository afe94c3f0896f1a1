r"""The training loop behind ``remul train``: REMUL (or a plain/augmented
baseline) on a task, with per-epoch validation, atomic checkpoints, bit-exact
resumption, metrics files and plots.

The per-step path makes no host-device synchronisation: running sums and a
non-finite-loss flag stay on the device and are read once per epoch (see
:class:`EpochStats`). The first :data:`DEBUG_STEPS` steps of every
invocation (a new run or a resumed one) run in
:func:`torch_geometric_remul.debug` mode, so that bad data fails at once
with the field named.
"""
import contextlib
import csv
import dataclasses
import io
import json
import math
import os.path as osp
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.loader import DataLoader

from torch_geometric_remul._io import (atomic_torch_save, atomic_write_json,
                                       atomic_write_text)
from torch_geometric_remul.debug import debug, is_debug_enabled
from torch_geometric_remul.metrics import equivariance_error
from torch_geometric_remul.nn import (GradNorm, RemulLoss, Schedule,
                                      TargetEquivariance)
from torch_geometric_remul.nn.models import build_model
from torch_geometric_remul.train import distributed
from torch_geometric_remul.train.checkpoint import (FORMAT, RunDirectoryError,
                                                    rng_state, set_rng_state)
from torch_geometric_remul.train.config import TrainConfig, resume_config
from torch_geometric_remul.train.distributed import DistEnv
from torch_geometric_remul.train.rundir import (CHECKPOINT, RunFiles,
                                                check_new_run_dir,
                                                describe_os_error, load_run)
from torch_geometric_remul.train.tasks import TaskSpec, task_spec

#: Steps at the start of every invocation (new run or resume) that run with
#: the library's value-reading checks on (:func:`torch_geometric_remul.debug`)
#: and check the loss at once.
DEBUG_STEPS = 2


class TrainingError(RuntimeError):
    r"""Raised when training cannot go on (e.g. a non-finite loss).

    Example:

        >>> try:
        ...     raise TrainingError('training stopped at epoch 1, step 1')
        ... except RuntimeError as e:
        ...     print(e)
        training stopped at epoch 1, step 1
    """


@dataclass
class TrainResult:
    r"""What :func:`train` returns (on every rank of a distributed run;
    ``history`` and ``test`` hold the all-reduced metrics, identical on all
    ranks except ``epoch_seconds``).

    Example:

        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> config = TrainConfig(num_train=8, num_val=4, num_test=4, epochs=1,
        ...                      hidden_channels=8, num_layers=1, batch_size=4,
        ...                      eval_graphs=4, eval_samples=2,
        ...                      data_root=root, run_dir=root + '/run')
        >>> result = train(config, progress=False, log=lambda line: None)
        >>> len(result.history), sorted(result.test)[:3]
        (1, ['E', 'E_prime', 'E_prime_rel'])
    """
    run_dir: str
    history: List[Dict[str, float]]
    test: Dict[str, float]
    interrupted: bool = False
    #: The trained model (unwrapped from DistributedDataParallel).
    model: Optional[torch.nn.Module] = None
    #: The loss (``None`` for the plain baseline), holding the learned
    #: weighting state.
    loss: Optional[RemulLoss] = None
    #: This process's rank and the number of processes that trained.
    rank: int = 0
    world_size: int = 1


def last_layer_parameters(model: torch.nn.Module) -> List[torch.Tensor]:
    r"""Parameters of the last module (in registration order) that owns
    parameters: the output layer shared by both REMUL losses, for
    :class:`~torch_geometric_remul.nn.GradNorm`.

    Example:

        >>> model = torch.nn.Sequential(torch.nn.Linear(2, 4),
        ...                             torch.nn.Linear(4, 1))
        >>> [p.shape for p in last_layer_parameters(model)]
        [torch.Size([1, 4]), torch.Size([1])]
    """
    last = None
    for module in model.modules():
        own = [p for p in module.parameters(recurse=False)
               if p.requires_grad]
        if own:
            last = own
    if last is None:
        raise ValueError('the model has no trainable parameters')
    return last


def build_loss(config: TrainConfig, spec: TaskSpec, model: torch.nn.Module,
               steps_per_epoch: int, rank: int = 0) -> Optional[RemulLoss]:
    r"""The loss of ``config.loss``: ``None`` for the plain MSE baseline.

    Args:
        config (TrainConfig): The resolved configuration.
        spec (TaskSpec): The task.
        model (torch.nn.Module): The (unwrapped) model.
        steps_per_epoch (int): Optimiser steps per epoch.
        rank (int, optional): The process's rank: its group elements are
            drawn from a generator seeded from ``config.seed`` and ``rank``.
            (default: ``0``)

    Example:

        >>> config = TrainConfig(loss='remul', beta=10.0).resolved()
        >>> spec = task_spec(config)
        >>> model = torch.nn.Linear(3, 3)
        >>> build_loss(config, spec, model, steps_per_epoch=30).weighting
        Constant(alpha=1, beta=10)
    """
    if config.loss == 'plain':
        return None
    seed = distributed.rank_seed(config.seed + 1, rank)
    common = dict(output=spec.output, points=spec.points,
                  vectors=spec.vectors, group=config.group, mode=config.mode,
                  axis=spec.axis,
                  fused=config.fused,
                  generator=torch.Generator().manual_seed(seed))
    if config.loss == 'augment':
        return RemulLoss(alpha=0.0, beta=1.0, **common)
    if config.weighting == 'constant':
        return RemulLoss(alpha=config.alpha, beta=config.beta, **common)
    if config.weighting == 'schedule':
        weighting = Schedule(beta_end=config.beta, alpha=config.alpha,
                             total_steps=max(1, config.epochs *
                                             steps_per_epoch // 2))
    elif config.weighting == 'gradnorm':
        weighting = GradNorm(last_layer_parameters(model),
                             alpha=config.alpha, beta=config.beta)
    else:
        weighting = TargetEquivariance(epsilon=config.epsilon,
                                       alpha=config.alpha, beta=config.beta)
    return RemulLoss(weighting=weighting, **common)


def _model(config: TrainConfig, spec: TaskSpec,
           example) -> torch.nn.Module:
    kwargs = dict(spec.model_kwargs)
    if config.hidden_channels is not None:
        kwargs['hidden_channels'] = config.hidden_channels
    if config.num_layers is not None:
        kwargs['num_layers'] = config.num_layers
    if config.model == 'mlp':  # a fixed-size model: the task's graph size
        kwargs['num_nodes'] = example.num_nodes
    torch.manual_seed(config.seed)
    return build_model(config.model, **kwargs)


def _to(batch, device: Optional[torch.device]):
    r"""``batch`` on ``device`` (untouched on the CPU)."""
    if device is None or device.type == 'cpu':
        return batch
    return batch.to(device)


def _device_of(model: torch.nn.Module) -> Optional[torch.device]:
    param = next(model.parameters(), None)
    return None if param is None else param.device


def _evaluate_part(model, part, sub, batch_size: int, spec: TaskSpec,
                   config: TrainConfig, generator: torch.Generator):
    r"""``(squared error sum, target entries, EquivarianceError or None)``
    of ``model`` on ``part`` (MSE) and ``sub`` (equivariance)."""
    device = _device_of(model)
    total, count = None, 0
    for batch in DataLoader(part, batch_size=batch_size):
        batch = _to(batch, device)
        pred = model(batch)
        target = batch[spec.target]
        # summed on the device, in float64: read once per split
        sq = ((pred - target)**2).sum().double()
        total = sq if total is None else total + sq
        count += target.numel()
    total = 0.0 if total is None else float(total)
    err = None
    if len(sub) > 0:
        loader = DataLoader(sub, batch_size=batch_size)
        err = equivariance_error(
            model, (_to(b, device) for b in loader), output=spec.output,
            points=spec.points, vectors=spec.vectors, group=config.group,
            num_samples=config.eval_samples, axis=spec.axis,
            generator=generator)
    return total, count, err


@torch.no_grad()
def evaluate_split(model, dataset, spec: TaskSpec, config: TrainConfig,
                   seed: int) -> Dict[str, float]:
    r"""MSE over ``dataset`` and equivariance errors on its first
    ``config.eval_graphs`` graphs (group ``config.group``).

    Under :mod:`torch.distributed` (more than one process) it must be called
    on every rank: each rank evaluates a contiguous block of the graphs
    (batches of ``config.batch_size / world_size``, its own group elements
    drawn from ``seed`` and its rank), and the sums and counts are
    all-reduced, so every rank returns the metrics of the whole split.

    Example:

        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> config = TrainConfig(num_train=8, num_val=4, num_test=4, epochs=1,
        ...                      hidden_channels=8, num_layers=1, batch_size=4,
        ...                      eval_graphs=4, eval_samples=2,
        ...                      data_root=root, run_dir=root + '/run')
        >>> result = train(config, progress=False, log=lambda line: None)
        >>> config, spec, model = restore_model(result.run_dir)
        >>> metrics = evaluate_split(model, spec.load('val'), spec, config,
        ...                          seed=0)
        >>> sorted(metrics)
        ['E', 'E_prime', 'E_prime_rel', 'mse']
    """
    world, rank = distributed.get_world_size(), distributed.get_rank()
    num_eval = min(config.eval_graphs, len(dataset))
    generator = torch.Generator().manual_seed(distributed.rank_seed(seed,
                                                                    rank))
    was_training = model.training
    model.eval()
    try:
        if world == 1:
            total, count, err = _evaluate_part(
                model, dataset, dataset[:num_eval], config.batch_size, spec,
                config, generator)
        else:  # this rank's blocks, in per-rank batches
            total, count, err = _evaluate_part(
                model, dataset[distributed.shard_range(len(dataset), rank,
                                                       world)],
                dataset[distributed.shard_range(num_eval, rank, world)],
                max(1, config.batch_size // world), spec, config, generator)
    finally:
        model.train(was_training)
    if world == 1:
        if err is None:
            raise ValueError('cannot evaluate an empty dataset')
        return {'mse': total / max(count, 1), 'E': err.E,
                'E_prime': err.E_prime, 'E_prime_rel': err.E_prime_rel}
    n = err.num_graphs if err is not None else 0
    sums = [total, count, n] + ([err.E * n, err.E_prime * n,
                                 err.E_prime_rel * n] if n else [0.0] * 3)
    total, count, n, E, Ep, Epr = distributed.all_reduce_sum(sums)
    n = max(n, 1)
    return {'mse': total / max(count, 1), 'E': E / n, 'E_prime': Ep / n,
            'E_prime_rel': Epr / n}


def _default_run_dir(config: TrainConfig) -> str:
    stamp = time.strftime('%Y%m%d-%H%M%S')
    return osp.join('runs', f'{config.task}-{config.model}-{config.loss}-'
                    f'{stamp}')


def _write_metrics(run_dir: str, history: List[Dict[str, float]]) -> None:
    atomic_write_json(osp.join(run_dir, 'metrics.json'), history)
    if history:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
        atomic_write_text(osp.join(run_dir, 'metrics.csv'),
                          buffer.getvalue())


def plot_history(run_dir: str, history: List[Dict[str, float]]) -> List[str]:
    r"""Writes ``loss.png`` and ``equivariance.png``; returns the paths (an
    empty list when matplotlib is not installed)."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    epochs = [row['epoch'] for row in history]
    figures = {
        'loss.png': ('loss', {'train loss': 'train_loss',
                              'val MSE': 'val_mse'}),
        'equivariance.png': ('equivariance error', {"val E'": 'val_E_prime',
                                                    'val E': 'val_E'}),
    }
    paths = []
    for name, (title, curves) in figures.items():
        fig, ax = plt.subplots(figsize=(6, 4))
        for label, key in curves.items():
            ax.plot(epochs, [row[key] for row in history], label=label)
        ax.set_yscale('log')
        ax.set_xlabel('epoch')
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        paths.append(osp.join(run_dir, name))
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths


def _quiet(line: str) -> None:
    pass


def _load_task(config: TrainConfig):
    spec = task_spec(config)
    return spec, tuple(spec.load(s) for s in ('train', 'val', 'test'))


def _epoch_loader(train_ds, config: TrainConfig, epoch: int,
                  env: DistEnv) -> Tuple[Any, List[float]]:
    r"""This rank's batches of one epoch and each one's share of its global
    batch (all 1.0 in a single process)."""
    # The shuffling order depends on (seed, epoch) only, so that a resumed
    # run sees exactly the batches of an uninterrupted one; in a distributed
    # run every rank draws the same permutation and takes its piece of each
    # global batch.
    order = torch.Generator().manual_seed(config.seed * 100003 + epoch)
    if not env.enabled:
        loader = DataLoader(train_ds, batch_size=config.batch_size,
                            shuffle=True, generator=order)
        return loader, [1.0] * len(loader)
    pieces = [distributed.shard(batch, env.rank, env.world_size) for batch in
              distributed.epoch_batches(len(train_ds), config.batch_size,
                                        order)]
    loader = DataLoader(train_ds, batch_sampler=[p for p, _ in pieces])
    return loader, [share for _, share in pieces]


def _save_checkpoint(files: RunFiles, config: TrainConfig, env: DistEnv,
                     model: torch.nn.Module, optimizer, loss_fn, epoch: int,
                     step: int, history: List[Dict[str, float]]) -> None:
    r"""Writes the checkpoint, then the metrics files (rank 0; every rank
    must call it, since every rank's generator states are gathered)."""
    rng = rng_state(loss_fn.generator if loss_fn is not None else None,
                    env.device)
    rank_states = distributed.gather_objects(rng)
    if not env.is_main:
        return
    state = {
        'format': FORMAT,
        'model': model.state_dict(),  # the unwrapped module: no DDP prefix
        'optimizer': optimizer.state_dict(),
        'loss': loss_fn.state_dict() if loss_fn is not None else {},
        # rank 0's generators, and every rank's when there are several
        'rng': rng,
        'world_size': env.world_size,
        'epoch': epoch, 'step': step, 'history': history,
        'config': json.loads(config.to_json()),
    }
    if env.enabled:
        state['rank_rng'] = rank_states
    files.record(CHECKPOINT)
    atomic_torch_save(osp.join(files.run_dir, CHECKPOINT), state)
    files.checkpointed = True
    files.record('metrics.json')
    files.record('metrics.csv')
    _write_metrics(files.run_dir, history)


def _restore_rng(checkpoint: Dict[str, Any], loss_fn: Optional[RemulLoss],
                 config: TrainConfig, env: DistEnv,
                 log: Callable[[str], Any]) -> None:
    r"""Restores this rank's random generators from a checkpoint: exactly
    when it was written by as many processes, else re-seeded from
    ``(seed, rank, epoch)``."""
    generator = loss_fn.generator if loss_fn is not None else None
    saved_world = checkpoint.get('world_size', 1)
    if saved_world == env.world_size:
        state = (checkpoint['rank_rng'][env.rank] if saved_world > 1
                 else checkpoint['rng'])
        set_rng_state(state, generator, env.device)
        return
    # Per-rank generator states cannot be mapped onto another number of
    # ranks: everything else is restored exactly, the group elements REMUL
    # samples from here on are drawn from fresh per-rank generators.
    if generator is not None:
        seed = (config.seed + 1) * 1000003 + checkpoint['epoch']
        generator.manual_seed(distributed.rank_seed(seed, env.rank))
    shared = {k: v for k, v in checkpoint['rng'].items()
              if k not in ('loss_generator', 'cuda')}
    set_rng_state(shared)
    log(f'the checkpoint was written by {saved_world} process(es), this run '
        f'has {env.world_size}: resuming exactly except for the group '
        f'elements sampled from now on (per-process generators re-seeded)')


class EpochStats:
    r"""Running sums of one epoch's training losses and a non-finite-loss
    flag, kept on the device: adding a step makes no host-device
    synchronisation; :meth:`read` reads everything at once.

    Args:
        first_step (int): The global number of the epoch's first step.

    Example:

        >>> stats = EpochStats(first_step=11)
        >>> for value in (1.0, float('nan'), 3.0):
        ...     stats.add(torch.tensor(value), None, None, share=1.0)
        >>> sums = stats.read()
        >>> sums['nonfinite'], sums['first_nonfinite_step'], sums['steps']
        (1, 12, 3)
    """
    def __init__(self, first_step: int = 1) -> None:
        self.first_step = first_step
        self.steps = 0
        self.has_task = self.has_equi = True
        self._sums: Optional[Tensor] = None
        self._bad: Optional[Tensor] = None
        self._first_bad: Optional[Tensor] = None

    def add(self, loss: Tensor, task: Optional[Tensor],
            equi: Optional[Tensor], share: float = 1.0) -> None:
        r"""Adds one step's (detached) losses, weighted by ``share``."""
        loss = loss.detach()
        self.has_task &= task is not None
        self.has_equi &= equi is not None
        parts = torch.stack([loss, (task if task is not None else
                                    loss).detach(),
                             (equi if equi is not None else loss).detach()])
        values = parts.double() * share
        bad = torch.isfinite(loss).logical_not()
        if self._sums is None:
            self._sums = values
            self._bad = bad.long()
            self._first_bad = torch.where(
                bad, torch.zeros((), dtype=torch.long, device=loss.device),
                torch.full((), -1, dtype=torch.long, device=loss.device))
        else:
            self._sums = self._sums + values
            self._first_bad = torch.where(
                bad & (self._first_bad < 0),
                torch.full((), self.steps, dtype=torch.long,
                           device=loss.device), self._first_bad)
            self._bad = self._bad + bad
        self.steps += 1

    def read(self) -> Dict[str, Any]:
        r"""The epoch's sums (``loss``, ``task``, ``equi``; NaN for a part
        that was not computed at every step), the number of steps with a
        non-finite loss and the first such step (``None`` if none), in one
        synchronisation."""
        if self._sums is None:
            return {'loss': 0.0, 'task': 0.0, 'equi': 0.0, 'nonfinite': 0,
                    'first_nonfinite_step': None, 'steps': 0}
        packed = torch.cat([self._sums, self._bad.double().reshape(1),
                            self._first_bad.double().reshape(1)]).tolist()
        loss, task, equi, bad, first = packed
        return {'loss': loss, 'task': task if self.has_task else math.nan,
                'equi': equi if self.has_equi else math.nan,
                'nonfinite': int(bad),
                'first_nonfinite_step': (self.first_step + int(first)
                                         if bad else None),
                'steps': self.steps}


def train_step(net: torch.nn.Module, loss_fn: Optional[RemulLoss], batch,
               target: Tensor, scale: float = 1.0):
    r"""Forward pass, loss and backward pass of one training step (the
    optimiser step is the caller's). No host-device synchronisation unless
    :func:`~torch_geometric_remul.debug.is_debug_enabled`: then a non-finite
    loss raises :class:`FloatingPointError` at once.

    Args:
        net (torch.nn.Module): The model (possibly wrapped in DDP).
        loss_fn (RemulLoss, optional): ``None`` for the plain MSE.
        batch (Batch): The batch.
        target (torch.Tensor): Its target.
        scale (float, optional): Factor of the loss before the backward
            pass. (default: ``1.0``)

    Returns:
        ``(loss, task, equi, alpha, beta)``: the loss (detached), its task
        and equivariance parts (``None`` when not computed) and the weights.

    Example:

        >>> from torch_geometric.data import Batch, Data
        >>> from torch_geometric_remul.testing import count_syncs
        >>> batch = Batch.from_data_list([Data(pos=torch.randn(4, 3))])
        >>> net = torch.nn.Linear(3, 3)
        >>> model = lambda data: net(data.pos)
        >>> stats = EpochStats()
        >>> with count_syncs() as syncs:
        ...     loss, task, equi, alpha, beta = train_step(model, None, batch,
        ...                                                batch.pos)
        ...     stats.add(loss, task, equi)
        >>> syncs.count, net.weight.grad is not None
        (0, True)
    """
    if loss_fn is None:
        loss = torch.nn.functional.mse_loss(net(batch), target)
        task, equi, alpha, beta = loss, None, math.nan, math.nan
    else:
        out = loss_fn(net, batch, target)
        loss, task, equi = out.loss, out.task, out.equi
        alpha, beta = out.alpha, out.beta
    if is_debug_enabled() and not bool(torch.isfinite(loss.detach())):
        raise FloatingPointError(f'non-finite loss ({float(loss)})')
    # DDP averages gradients over ranks; weighting each rank's mean loss by
    # world_size * share makes that average the gradient of the global
    # batch's mean loss also when the last batch does not split evenly
    # (scale 1 otherwise).
    (loss if scale == 1.0 else loss * scale).backward()
    return (loss.detach(), None if task is None else task.detach(),
            None if equi is None else equi.detach(), alpha, beta)


@contextlib.contextmanager
def _checkpoint_errors(path: str):
    r"""Turns the errors of restoring state from a checkpoint whose content
    does not fit the model (or is damaged) into a
    :class:`RunDirectoryError` naming the file."""
    try:
        yield
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError,
            AttributeError) as e:
        if isinstance(e, RunDirectoryError):
            raise
        text = str(e).strip()
        first = text.splitlines()[0][:300] if text else ''
        raise RunDirectoryError(
            f"{path} does not match the run's config.json or is damaged "
            f"({type(e).__name__}: {first})") from None


def _number(value) -> float:
    return float(value) if isinstance(value, Tensor) else value


def _write_failure(error: OSError, run_dir: str, files: RunFiles,
                   saved_epoch: int) -> TrainingError:
    message = f'cannot write the run files in {run_dir}: ' \
        f'{describe_os_error(error)}'
    if files.checkpointed:
        message += (f'; the checkpoint of epoch {saved_epoch} is intact: '
                    f'make room, then continue with: remul train --resume '
                    f'{run_dir}')
    return TrainingError(message)


def train(config: TrainConfig, resume_from: Optional[str] = None,
          progress: bool = True, log: Callable[[str], Any] = print,
          overwrite: bool = False) -> TrainResult:
    r"""Trains and evaluates one model; see ``remul train --help``.

    Launched by ``torchrun`` with more than one process (or called on every
    rank of an existing process group), it trains with
    :class:`~torch.nn.parallel.DistributedDataParallel`:
    ``config.batch_size`` is the global batch size, split evenly over the
    processes; rank 0 alone writes the run directory and logs (see
    ``docs/distributed.md``).

    Every option is validated, and the run directory checked, before any
    data is read or simulated. The run directory is created, and
    ``config.json`` written, when training starts; a run that fails or is
    interrupted before its first checkpoint removes what it created.

    Args:
        config (TrainConfig): The run's configuration. When resuming, only
            ``epochs`` and ``data_root`` are read from it (when not
            ``None``): the run continues with its saved configuration
            (``remul train --resume`` refuses other options that differ,
            see :func:`~torch_geometric_remul.train.resume_config`).
        resume_from (str, optional): A run directory to continue from its
            last checkpoint; the continuation is bit-identical to an
            uninterrupted run with the same configuration and number of
            processes.
        progress (bool, optional): Show a progress bar. (default: ``True``)
        log (callable, optional): Receives status lines (on rank 0 only).
        overwrite (bool, optional): Replace the run found in
            ``config.run_dir`` instead of refusing to. (default: ``False``)

    Raises:
        RunDirectoryError: When ``config.run_dir`` holds another run (and
            ``overwrite`` is not set), is a file or cannot be written, or
            the run to resume is missing, damaged or never reached a
            checkpoint.
        TrainingError: On a non-finite loss (naming the epoch and steps) or
            when the data or the run files cannot be written.

    Example:

        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> config = TrainConfig(num_train=8, num_val=4, num_test=4, epochs=1,
        ...                      hidden_channels=8, num_layers=1, batch_size=4,
        ...                      eval_graphs=4, eval_samples=2,
        ...                      data_root=root, run_dir=root + '/run')
        >>> result = train(config, progress=False, log=lambda line: None)
        >>> result.history[0]['epoch'], result.test['mse'] > 0
        (1, True)
    """
    env = distributed.setup()
    try:
        return _train(config, resume_from, progress,
                      log if env.is_main else _quiet, env, overwrite)
    finally:
        distributed.teardown(env)


def _train(config: TrainConfig, resume_from: Optional[str], progress: bool,
           log: Callable[[str], Any], env: DistEnv,
           overwrite: bool) -> TrainResult:
    checkpoint = None
    if resume_from is not None:
        if overwrite:
            raise ValueError("'overwrite' cannot be combined with resuming "
                             "a run")
        saved, checkpoint = distributed.broadcast_from_main(
            lambda: load_run(resume_from))
        given = {} if config is None else {'epochs': config.epochs,
                                           'data_root': config.data_root}
        config, applied = resume_config(saved, given,
                                        done_epochs=checkpoint['epoch'])
        for line in applied:
            log(f'resuming with {line}')
        config.run_dir = resume_from
    config = config.resolved()
    distributed.per_rank_batch_size(config.batch_size, env.world_size)
    if checkpoint is None:
        config.run_dir = config.run_dir or distributed.broadcast_from_main(
            lambda: _default_run_dir(config))
        distributed.broadcast_from_main(
            lambda: check_new_run_dir(config.run_dir, overwrite))
    files = RunFiles(config.run_dir, resumed=checkpoint is not None,
                     overwrite=overwrite)
    try:
        return _run(config, checkpoint, files, progress, log, env)
    except BaseException:
        if env.is_main:
            what = files.abandon()
            if what:
                log(f'the run stopped before its first checkpoint: {what}')
        raise


def _load_data(config: TrainConfig, env: DistEnv):
    try:
        return distributed.staged(lambda: _load_task(config),
                                  env.local_rank)
    except OSError as e:
        if e.errno is None:  # a message of the dataset (e.g. missing files)
            raise
        raise TrainingError(f'cannot prepare the {config.task} data under '
                            f'{config.data_root}: {describe_os_error(e)}') \
            from e


def _run(config: TrainConfig, checkpoint: Optional[Dict[str, Any]],
         files: RunFiles, progress: bool, log: Callable[[str], Any],
         env: DistEnv) -> TrainResult:
    run_dir = config.run_dir
    spec, (train_ds, val_ds, test_ds) = _load_data(config, env)
    log(f'task: {spec.description}')
    if env.enabled:
        log(f'distributed: {env.world_size} processes ({env.backend}), '
            f'global batch {config.batch_size} = {env.world_size} x '
            f'{config.batch_size // env.world_size}')
    model = _model(config, spec, train_ds[0])
    steps_per_epoch = math.ceil(len(train_ds) / config.batch_size)
    loss_config = config
    if env.enabled and config.loss != 'plain' and not config.fused:
        # Two forward passes per step (clean, transformed) are not one DDP
        # forward: run the fused loss, one pass on both copies.
        loss_config = dataclasses.replace(config, fused=True)
        log('distributed: using the fused loss (one forward pass on clean '
            '+ transformed graphs per step, as DDP requires)')
    loss_fn = build_loss(loss_config, spec, model, steps_per_epoch,
                         rank=env.rank)
    if env.device.type != 'cpu':
        model.to(env.device)
        if loss_fn is not None:
            loss_fn.to(env.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    history: List[Dict[str, float]] = []
    start_epoch, step = 0, 0
    if checkpoint is not None:
        with _checkpoint_errors(osp.join(run_dir, CHECKPOINT)):
            model.load_state_dict(checkpoint['model'])
            optimizer.load_state_dict(checkpoint['optimizer'])
            if loss_fn is not None:
                loss_fn.load_state_dict(checkpoint['loss'])
            _restore_rng(checkpoint, loss_fn, config, env, log)
        history = checkpoint['history']
        start_epoch, step = checkpoint['epoch'], checkpoint['step']
        log(f'resuming {run_dir} after epoch {start_epoch}')
    n_params = sum(p.numel() for p in model.parameters())
    log(f'model: {config.model} ({n_params} parameters), loss: '
        f'{config.loss}' + (f' ({config.weighting}, beta={config.beta})'
                            if config.loss == 'remul' else '') +
        f', group: {config.group}')
    net = distributed.wrap_model(model, env)
    try:
        distributed.broadcast_from_main(lambda: files.start(config))
    except OSError as e:
        raise TrainingError(f'cannot write the run files in {run_dir}: '
                            f'{describe_os_error(e)}') from e

    bar = None
    if progress and env.is_main:
        from tqdm.auto import tqdm
        bar = tqdm(total=config.epochs, initial=start_epoch, unit='epoch',
                   dynamic_ncols=True)
    interrupted = False
    saved_epoch = start_epoch
    checked_steps = 0  # steps of this invocation run in debug mode
    try:
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            loader, shares = _epoch_loader(train_ds, config, epoch, env)
            net.train()
            stats = EpochStats(first_step=step + 1)
            alpha = beta = math.nan
            for batch, share in zip(loader, shares):
                batch = _to(batch, env.device)
                optimizer.zero_grad(set_to_none=True)
                checking = checked_steps < DEBUG_STEPS
                try:
                    with debug() if checking else contextlib.nullcontext():
                        loss, task, equi, alpha, beta = train_step(
                            net, loss_fn, batch, batch[spec.target],
                            share * env.world_size)
                except FloatingPointError as e:
                    raise TrainingError(
                        f'training stopped at epoch {epoch + 1}, step '
                        f'{step + 1}: {e}') from e
                checked_steps += checking
                optimizer.step()
                step += 1
                stats.add(loss, task, equi, share)
            sums = stats.read()  # the epoch's one read of training values
            reduced = distributed.all_reduce_sum(
                [sums['loss'], sums['task'], sums['equi'],
                 sums['nonfinite']])
            if reduced[3]:
                first = sums['first_nonfinite_step']
                raise TrainingError(
                    f'non-finite loss in epoch {epoch + 1}, steps '
                    f'{stats.first_step}-{step}'
                    + (f' (first at step {first})' if first else '') +
                    f': training stopped before writing a checkpoint (the '
                    f'last one holds epoch {saved_epoch}); check the '
                    f'learning rate and the data')
            n = max(len(shares), 1)
            val = evaluate_split(model, val_ds, spec, config,
                                 seed=config.seed * 7919 + epoch)
            row = {
                'epoch': epoch + 1, 'step': step,
                'train_loss': reduced[0] / n,
                'train_task': reduced[1] / n,
                'train_equi': reduced[2] / n,
                'alpha': _number(alpha), 'beta': _number(beta),
                'val_mse': val['mse'], 'val_E': val['E'],
                'val_E_prime': val['E_prime'],
                'val_E_prime_rel': val['E_prime_rel'],
                'epoch_seconds': time.perf_counter() - t0,
            }
            history.append(row)
            try:
                _save_checkpoint(files, config, env, model, optimizer,
                                 loss_fn, epoch + 1, step, history)
            except OSError as e:
                raise _write_failure(e, run_dir, files, saved_epoch) from e
            saved_epoch = epoch + 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f'{row["train_loss"]:.3g}',
                                val_mse=f'{row["val_mse"]:.3g}',
                                E_prime=f'{row["val_E_prime"]:.3g}')
    except KeyboardInterrupt:
        interrupted = True
        if files.checkpointed or not env.is_main:
            log(f'\ninterrupted: the checkpoint in {run_dir} holds epoch '
                f'{saved_epoch}; continue with: remul train --resume '
                f'{run_dir}')
        else:
            what = files.abandon() or 'nothing was written'
            log(f'\ninterrupted before the first checkpoint: nothing to '
                f'resume ({what})')
    finally:
        if bar is not None:
            bar.close()

    test = {}
    if not interrupted and history:
        test = evaluate_split(model, test_ds, spec, config,
                              seed=config.seed * 7919 + 10**6)
        test['seconds_per_epoch'] = sum(r['epoch_seconds'] for r in
                                        history) / len(history)
        if env.is_main:
            try:
                files.record('results.json')
                atomic_write_json(osp.join(run_dir, 'results.json'), {
                    'test': test, 'config': json.loads(config.to_json())})
                plots = plot_history(run_dir, history)
            except OSError as e:
                raise _write_failure(e, run_dir, files, saved_epoch) from e
            if not plots:
                log('matplotlib is not installed: no plots written '
                    "(pip install 'torch-geometric-remul[plot]')")
    return TrainResult(run_dir, history, test, interrupted, model=model,
                       loss=loss_fn, rank=env.rank,
                       world_size=env.world_size)


def restore_model(run_dir: str, data_root: Optional[str] = None):
    r"""``(config, spec, model)`` of a run, the model holding the weights of
    its last checkpoint, in eval mode.

    Args:
        run_dir (str): The run directory.
        data_root (str, optional): Where the task's data are (or are to be
            made) now, if not where the run read them (``config.data_root``
            is replaced in the returned configuration).

    Example:

        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> config = TrainConfig(num_train=8, num_val=4, num_test=4, epochs=1,
        ...                      hidden_channels=8, num_layers=1, batch_size=4,
        ...                      eval_graphs=4, eval_samples=2,
        ...                      data_root=root, run_dir=root + '/run')
        >>> result = train(config, progress=False, log=lambda line: None)
        >>> config, spec, model = restore_model(result.run_dir)
        >>> spec.name, model.training
        ('nbody', False)
    """
    config, checkpoint = load_run(run_dir)
    if data_root is not None:
        config = dataclasses.replace(config, data_root=str(data_root))
    config = config.resolved()
    spec = task_spec(config)
    model = _model(config, spec, spec.load('test')[0])
    with _checkpoint_errors(osp.join(run_dir, CHECKPOINT)):
        model.load_state_dict(checkpoint['model'])
    model.eval()
    return config, spec, model
