r"""The training loop behind ``remul train``: REMUL (or a plain/augmented
baseline) on a task, with per-epoch validation, atomic checkpoints,
bit-exact resumption, metrics files and plots.

The loop reads the same with one process or many: what differs is behind
the :class:`~torch_geometric_remul.train.runtime.Runtime` it is given. The
per-step path (:mod:`~torch_geometric_remul.train.step`) makes no
host-device synchronisation; the epoch's sums are read once per epoch. The
first :data:`DEBUG_STEPS` steps of every invocation (a new run or a resumed
one) run in :func:`torch_geometric_remul.debug` mode, so that bad data
fails at once with the field named.
"""
import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import Tensor

from torch_geometric_remul.debug import debug
from torch_geometric_remul.nn import RemulLoss
from torch_geometric_remul.train.build import (
    build_loss,
    build_optimizer,
    build_task_model,
    legacy_readout_weights,
)
from torch_geometric_remul.train.checkpoint import (
    BEST,
    restore_errors,
    restore_rng,
    save_best,
    save_checkpoint,
)
from torch_geometric_remul.train.config import (
    RESUMABLE,
    TrainConfig,
    derive_seed,
    resume_config,
)
from torch_geometric_remul.train.evaluate import METRICS, evaluate_split
from torch_geometric_remul.train.provenance import code_version, provenance
from torch_geometric_remul.train.report import (
    Progress,
    plot_history,
    write_metrics,
    write_results,
)
from torch_geometric_remul.train.rundir import (
    CHECKPOINT,
    RunFiles,
    check_new_run_dir,
    default_run_dir,
    describe_os_error,
    load_run,
)
from torch_geometric_remul.train.runtime import Runtime
from torch_geometric_remul.train.step import EpochStats, train_step
from torch_geometric_remul.train.tasks import TaskSpec, load_task

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
    r"""What :func:`train` returns (on every process of a distributed run;
    ``history`` and ``test`` hold the all-reduced metrics, identical on all
    processes except ``epoch_seconds``).

    ``test`` holds the test metrics of the model selected at the epoch with
    the best validation MSE (``best_epoch``; ties go to the earlier epoch;
    among the validated epochs, every ``val_every`` and the last),
    ``test_last`` those of the last epoch's model; ``model`` is the last
    epoch's model (the best one is in ``best.pt``).

    Example:

        ``result`` is the run trained by the example of
        :func:`train` (shared by the doctests):

        >>> len(result.history), sorted(result.test)[:3]
        (1, ['E', 'E_prime', 'E_prime_paper'])
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
    #: The test metrics of the last epoch's model.
    test_last: Dict[str, float] = dataclasses.field(default_factory=dict)
    #: The (1-based) epoch of the best validation MSE, ``None`` when no
    #: epoch had a finite one.
    best_epoch: Optional[int] = None
    #: How the model behind ``test`` was chosen: ``'best_val'`` (or
    #: ``'last'`` when no epoch had a finite validation MSE).
    selection: str = 'best_val'


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
            ``epochs``, ``data_root`` (when not ``None``) and
            ``val_equivariance`` are read from it: the run continues with
            its saved configuration
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
    runtime = Runtime.start()
    try:
        return _train(config, resume_from, progress,
                      runtime.main_only(log), runtime, overwrite)
    finally:
        runtime.close()


def _train(config: TrainConfig, resume_from: Optional[str], progress: bool,
           log: Callable[[str], Any], runtime: Runtime,
           overwrite: bool) -> TrainResult:
    r"""Settles the configuration and the run directory, then runs."""
    checkpoint = None
    if resume_from is not None:
        if overwrite:
            raise ValueError("'overwrite' cannot be combined with resuming "
                             "a run")
        saved, checkpoint = runtime.on_main(lambda: load_run(resume_from))
        given = {} if config is None else {key: getattr(config, key)
                                           for key in RESUMABLE}
        config, applied = resume_config(saved, given,
                                        done_epochs=checkpoint['epoch'])
        for line in applied:
            log(f'resuming with {line}')
        config.run_dir = resume_from
    config = config.resolved()
    runtime.check_batch_size(config.batch_size)
    if checkpoint is None:
        config.run_dir = config.run_dir or runtime.on_main(
            lambda: default_run_dir(config))
        runtime.on_main(lambda: check_new_run_dir(config.run_dir, overwrite))
    files = RunFiles(config.run_dir, resumed=checkpoint is not None,
                     overwrite=overwrite)
    try:
        if checkpoint is not None:
            # writable, and no other process writes it, before any work
            runtime.on_main(files.lock)
        return _run(config, checkpoint, files, progress, log, runtime)
    except BaseException:
        if runtime.is_main:
            what = files.abandon()
            if what:
                log(f'the run stopped before its first checkpoint: {what}')
        raise
    finally:
        if runtime.is_main:
            files.close()


def _load_data(config: TrainConfig, runtime: Runtime):
    try:
        return runtime.staged(lambda: load_task(config))
    except OSError as e:
        if e.errno is None:  # a message of the dataset (e.g. missing files)
            raise
        raise TrainingError(f'cannot prepare the {config.task} data under '
                            f'{config.data_root}: {describe_os_error(e)}') \
            from e


def _write_failure(error: OSError, files: RunFiles,
                   saved_epoch: int) -> TrainingError:
    message = f'cannot write the run files in {files.run_dir}: ' \
        f'{describe_os_error(error)}'
    if files.checkpointed:
        message += (f'; the checkpoint of epoch {saved_epoch} is intact: '
                    f'make room, then continue with: remul train --resume '
                    f'{files.run_dir}')
    return TrainingError(message)


def _number(value) -> float:
    return float(value) if isinstance(value, Tensor) else value


@dataclass
class _State:
    r"""What training changes: the model, the loss (its weighting and
    generator), the optimiser, the metrics so far, the epochs and steps
    done, and the steps of this invocation run in debug mode."""
    model: torch.nn.Module
    loss: Optional[RemulLoss]
    optimizer: torch.optim.Optimizer
    history: List[Dict[str, float]]
    epoch: int = 0
    step: int = 0
    checked_steps: int = 0
    #: The best-validation state so far: ``{'epoch', 'val_mse', 'model'}``
    #: (the model's state dict, copied), or ``None``.
    best: Optional[Dict[str, Any]] = None
    #: Whether ``best.pt`` holds ``best`` (written by this invocation).
    best_saved: bool = False
    #: The code version of every invocation that trained the run.
    code_versions: List[Dict[str, Any]] = dataclasses.field(
        default_factory=list)


def _build(config: TrainConfig, spec: TaskSpec, train_ds,
           checkpoint: Optional[Dict[str, Any]], files: RunFiles,
           log: Callable[[str], Any], runtime: Runtime) -> _State:
    r"""The model, loss and optimiser of a run, on the runtime's device,
    restored from ``checkpoint`` when resuming."""
    model = build_task_model(config, spec, train_ds[0])
    loss_config = config
    if runtime.one_forward_per_step and config.loss != 'plain' and \
            not config.fused:
        # Two forward passes per step (clean, transformed) are not one DDP
        # forward: run the fused loss, one pass on both copies.
        loss_config = dataclasses.replace(config, fused=True)
        log('distributed: using the fused loss (one forward pass on clean '
            '+ transformed graphs per step, as DDP requires)')
    loss_fn = build_loss(loss_config, spec, model,
                         math.ceil(len(train_ds) / config.batch_size),
                         rank=runtime.rank)
    runtime.to_device(model)
    if loss_fn is not None:
        runtime.to_device(loss_fn)
    optimizer = build_optimizer(config, model)
    state = _State(model, loss_fn, optimizer, history=[])
    if checkpoint is not None:
        with restore_errors(files.path(CHECKPOINT)):
            model.load_state_dict(legacy_readout_weights(
                checkpoint['model'], model, checkpoint.get('code_versions')))
            optimizer.load_state_dict(checkpoint['optimizer'])
            if loss_fn is not None:
                loss_fn.load_state_dict(checkpoint['loss'])
            restore_rng(checkpoint, loss_fn.generator if loss_fn is not None
                        else None, runtime, config.seed, log)
        state.history = checkpoint['history']
        state.epoch, state.step = checkpoint['epoch'], checkpoint['step']
        state.code_versions = list(checkpoint.get('code_versions') or [])
        state.best = checkpoint.get('best')
        if state.best is not None:
            state.best = dict(state.best, model=legacy_readout_weights(
                state.best['model'], model, state.code_versions))
        if state.best is None and 'best' not in checkpoint and \
                state.history:
            # written before best-validation selection: the selection
            # starts from the checkpoint's own (last) epoch
            state.best = {'epoch': state.epoch,
                          'val_mse': state.history[-1]['val_mse'],
                          'model': checkpoint['model']}
            log(f'the checkpoint predates best-validation selection: '
                f'epochs 1-{state.epoch - 1} are not candidates')
        log(f'resuming {config.run_dir} after epoch {state.epoch}')
    current = runtime.on_main(code_version)
    if not state.code_versions or state.code_versions[-1] != current:
        state.code_versions.append(current)
    n_params = sum(p.numel() for p in model.parameters())
    log(f'model: {config.model} ({n_params} parameters), loss: '
        f'{config.loss}' + (f' ({config.weighting}, beta={config.beta})'
                            if config.loss == 'remul' else '') +
        f', group: {config.group}')
    return state


def _epoch(config: TrainConfig, spec: TaskSpec, net: torch.nn.Module,
           state: _State, train_ds, val_ds, runtime: Runtime,
           saved_epoch: int) -> Dict[str, float]:
    r"""Trains one epoch (``state.epoch``) and validates; returns its
    metrics row."""
    t0 = time.perf_counter()
    epoch = state.epoch
    # The order depends on (seed, epoch) only: a resumed run sees exactly
    # the batches of an uninterrupted one.
    order = torch.Generator().manual_seed(
        derive_seed(config.seed, 100003, epoch))
    loader, shares = runtime.epoch_loader(train_ds, config.batch_size, order)
    net.train()
    stats = EpochStats(first_step=state.step + 1)
    alpha = beta = math.nan
    for batch, share in zip(loader, shares):
        batch = runtime.to_device(batch)
        state.optimizer.zero_grad(set_to_none=True)
        checking = state.checked_steps < DEBUG_STEPS
        try:
            with debug() if checking else contextlib.nullcontext():
                loss, task, equi, alpha, beta = train_step(
                    net, state.loss, batch, spec.targets(batch),
                    runtime.step_scale(share), spec.output_weights)
        except FloatingPointError as e:
            raise TrainingError(f'training stopped at epoch {epoch + 1}, '
                                f'step {state.step + 1}: {e}') from e
        state.checked_steps += checking
        if config.clip_grad_norm is not None:
            # no host read: the norm and the scale stay on the device
            torch.nn.utils.clip_grad_norm_(net.parameters(),
                                           config.clip_grad_norm)
        state.optimizer.step()
        state.step += 1
        stats.add(loss, task, equi, share)
    sums = stats.read()  # the epoch's one read of training values
    reduced = runtime.all_reduce_sum([sums['loss'], sums['task'],
                                      sums['equi'], sums['nonfinite']])
    if reduced[3]:
        first = sums['first_nonfinite_step']
        raise TrainingError(
            f'non-finite loss in epoch {epoch + 1}, steps '
            f'{stats.first_step}-{state.step}'
            + (f' (first at step {first})' if first else '') +
            f': training stopped before writing a checkpoint (the last one '
            f'holds epoch {saved_epoch}); check the learning rate and the '
            f'data')
    n = max(len(shares), 1)
    metrics = METRICS + spec.extra_metrics
    if _validates(config, epoch):
        val = evaluate_split(state.model, val_ds, spec, config,
                             seed=derive_seed(config.seed, 7919, epoch),
                             runtime=runtime,
                             equivariance=config.val_equivariance)
    else:  # not validated: no candidate for the best-validation model
        val = dict.fromkeys(metrics, math.nan)
    return {
        'epoch': epoch + 1, 'step': state.step,
        'train_loss': reduced[0] / n,
        'train_task': reduced[1] / n,
        'train_equi': reduced[2] / n,
        'alpha': _number(alpha), 'beta': _number(beta),
        **{f'val_{key}': val[key] for key in metrics},
        'epoch_seconds': time.perf_counter() - t0,
    }


def _validates(config: TrainConfig, epoch: int) -> bool:
    r"""Whether epoch ``epoch`` (0-based) is validated: every
    ``config.val_every`` epochs and the last epoch of the run."""
    return (epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs


def _is_better(val_mse: float, best: Optional[Dict[str, Any]]) -> bool:
    r"""Whether a validation MSE beats the best so far: strictly lower
    (a tie keeps the earlier epoch) and finite."""
    return math.isfinite(val_mse) and (best is None or
                                       val_mse < best['val_mse'])


def _select(state: _State, row: Dict[str, float]) -> None:
    r"""Keeps a copy of the model when the epoch just done (``row``) has
    the best validation MSE so far. ``row['val_mse']`` is all-reduced, so
    every process makes the same choice; the copy stays on the device (no
    synchronisation: the value was read with the epoch's metrics)."""
    if _is_better(row['val_mse'], state.best):
        state.best = {'epoch': state.epoch, 'val_mse': row['val_mse'],
                      'model': {k: v.detach().clone() for k, v in
                                state.model.state_dict().items()}}
        state.best_saved = False


def _checkpoint(config: TrainConfig, state: _State, files: RunFiles,
                runtime: Runtime) -> None:
    r"""Writes ``best.pt`` when the best-validation model changed (or was
    not yet written by this invocation), the checkpoint after
    ``state.epoch``, then the metrics files (on the main process; every
    process must call it)."""
    if state.best is not None and not state.best_saved:
        files.record(BEST)
        if runtime.is_main:
            save_best(files.path(BEST), state.best, config)
        state.best_saved = True
    files.record(CHECKPOINT)
    if save_checkpoint(files.path(CHECKPOINT), runtime, model=state.model,
                       optimizer=state.optimizer, loss=state.loss,
                       epoch=state.epoch, step=state.step,
                       history=state.history, config=config,
                       best=state.best, code_versions=state.code_versions):
        files.checkpointed = True
        write_metrics(files, state.history)


def _run(config: TrainConfig, checkpoint: Optional[Dict[str, Any]],
         files: RunFiles, progress: bool, log: Callable[[str], Any],
         runtime: Runtime) -> TrainResult:
    r"""Builds the run (restored from ``checkpoint`` when resuming),
    trains its remaining epochs, and tests."""
    run_dir = config.run_dir
    spec, (train_ds, val_ds, test_ds) = _load_data(config, runtime)
    log(f'task: {spec.description}')
    if runtime.describe(config.batch_size):
        log(runtime.describe(config.batch_size))
    state = _build(config, spec, train_ds, checkpoint, files, log, runtime)
    net = runtime.wrap_model(state.model)
    try:
        runtime.on_main(lambda: files.start(config))
    except OSError as e:
        raise TrainingError(f'cannot write the run files in {run_dir}: '
                            f'{describe_os_error(e)}') from e

    bar = Progress(progress and runtime.is_main, total=config.epochs,
                   initial=state.epoch)
    interrupted = False
    saved_epoch = state.epoch
    try:
        while state.epoch < config.epochs:
            row = _epoch(config, spec, net, state, train_ds, val_ds,
                         runtime, saved_epoch)
            state.history.append(row)
            state.epoch += 1
            _select(state, row)
            try:
                _checkpoint(config, state, files, runtime)
            except OSError as e:
                raise _write_failure(e, files, saved_epoch) from e
            saved_epoch = state.epoch
            bar.update(row)
    except KeyboardInterrupt:
        interrupted = True
        if files.checkpointed or not runtime.is_main:
            log(f'\ninterrupted: the checkpoint in {run_dir} holds epoch '
                f'{saved_epoch}; continue with: remul train --resume '
                f'{run_dir}')
        else:
            what = files.abandon() or 'nothing was written'
            log(f'\ninterrupted before the first checkpoint: nothing to '
                f'resume ({what})')
    finally:
        bar.close()

    test, test_last = {}, {}
    best_epoch = state.best['epoch'] if state.best is not None else None
    if not interrupted and state.history:
        test, test_last = _test(config, spec, state, test_ds, runtime)
        if runtime.is_main:
            try:
                record = dict(provenance(state.code_versions[-1]),
                              code_versions=state.code_versions)
                if spec.data_files is not None:  # the data files read
                    record['data'] = {'files': spec.data_files()}
                    if spec.energy_force_stats is not None:
                        record['data']['standardization'] = \
                            spec.energy_force_stats.as_dict()
                write_results(files, test, config, test_last=test_last,
                              best=state.best, epochs=state.epoch,
                              provenance=record)
                plots = plot_history(run_dir, state.history)
            except OSError as e:
                raise _write_failure(e, files, saved_epoch) from e
            if not plots:
                log('matplotlib is not installed: no plots written '
                    "(pip install 'torch-geometric-remul[plot]')")
    return TrainResult(run_dir, state.history, test, interrupted,
                       model=state.model, loss=state.loss,
                       rank=runtime.rank, world_size=runtime.world_size,
                       test_last=test_last, best_epoch=best_epoch,
                       selection='best_val' if best_epoch is not None
                       else 'last')


def _test(config: TrainConfig, spec: TaskSpec, state: _State, test_ds,
          runtime: Runtime):
    r"""``(test at the best-validation epoch, test at the last epoch)``;
    the model holds the last epoch's weights again afterwards."""
    seed = derive_seed(config.seed, 7919, 10**6)
    last = evaluate_split(state.model, test_ds, spec, config, seed=seed,
                          runtime=runtime)
    best = dict(last)
    if state.best is not None and state.best['epoch'] != state.epoch:
        weights = {k: v.detach().clone() for k, v in
                   state.model.state_dict().items()}
        state.model.load_state_dict(state.best['model'])
        try:
            best = evaluate_split(state.model, test_ds, spec, config,
                                  seed=seed, runtime=runtime)
        finally:
            state.model.load_state_dict(weights)
    seconds = sum(r['epoch_seconds'] for r in state.history) / \
        len(state.history)
    best['seconds_per_epoch'] = last['seconds_per_epoch'] = seconds
    return best, last


__all__ = ['DEBUG_STEPS', 'TrainResult', 'TrainingError', 'train']
