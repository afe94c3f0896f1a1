r"""Evaluating a model on a split: its MSE and its equivariance errors."""
import math
from typing import Dict, Optional

import torch
from torch_geometric.loader import DataLoader

from torch_geometric_remul.metrics import equivariance_error
from torch_geometric_remul.train.config import TrainConfig
from torch_geometric_remul.train.runtime import Runtime
from torch_geometric_remul.train.tasks import TaskSpec

#: The metrics :func:`evaluate_split` returns, in this order.
METRICS = ('mse', 'E', 'E_prime', 'E_prime_rel', 'E_prime_paper')


def _device_of(model: torch.nn.Module) -> Optional[torch.device]:
    param = next(model.parameters(), None)
    return None if param is None else param.device


def _to(batch, device: Optional[torch.device]):
    r"""``batch`` on ``device`` (untouched on the CPU)."""
    if device is None or device.type == 'cpu':
        return batch
    return batch.to(device)


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
            model, (_to(b, device) for b in loader),
            roles=spec.roles, group=config.group,
            num_samples=config.eval_samples, axis=spec.axis,
            generator=generator)
    return total, count, err


@torch.no_grad()
def evaluate_split(model, dataset, spec: TaskSpec, config: TrainConfig,
                   seed: int, runtime: Optional[Runtime] = None,
                   equivariance: bool = True) -> Dict[str, float]:
    r"""MSE over ``dataset`` and equivariance errors on its first
    ``config.eval_graphs`` graphs (group ``config.group``).

    With several processes it must be called on every one: each evaluates
    a contiguous block of the graphs (batches of ``config.batch_size /
    world_size``, its own group elements drawn from ``seed`` and its
    rank), and the sums and counts are all-reduced, so every process
    returns the metrics of the whole split.

    Args:
        model (torch.nn.Module): The model (batches go to its device).
        dataset (Dataset): The split.
        spec (TaskSpec): The task.
        config (TrainConfig): The resolved configuration.
        seed (int): Seed of the group elements.
        runtime (Runtime, optional): Where the run trains. (default:
            :meth:`Runtime.current`)
        equivariance (bool, optional): If ``False``, the equivariance
            errors (and a task's errors on a rotated copy) are not
            measured and are ``nan``: what validation needs for selection
            at a fraction of the cost (``TrainConfig.val_equivariance``).
            (default: ``True``)

    Raises:
        ValueError: For an empty dataset.

    Example:

        ``result`` is the run trained by the example of
        :func:`~torch_geometric_remul.train.train` (shared by the doctests):

        >>> from torch_geometric_remul.train import restore_model
        >>> config, spec, model = restore_model(result.run_dir)
        >>> metrics = evaluate_split(model, spec.load('val'), spec, config,
        ...                          seed=0)
        >>> sorted(metrics)
        ['E', 'E_prime', 'E_prime_paper', 'E_prime_rel', 'mse']
    """
    runtime = Runtime.current() if runtime is None else runtime
    if spec.evaluate is not None:  # the task's own metrics (rmd17)
        # equivariance=False only when asked: older task evaluations
        # without that argument keep working
        lean = {} if equivariance else {'equivariance': False}
        return spec.evaluate(model, dataset, spec, config, seed=seed,
                             runtime=runtime, **lean)
    num_eval = min(config.eval_graphs, len(dataset)) if equivariance else 0
    part, sub, batch_size = runtime.eval_blocks(dataset, num_eval,
                                                config.batch_size)
    generator = torch.Generator().manual_seed(runtime.seed(seed))
    was_training = model.training
    model.eval()
    try:
        total, count, err = _evaluate_part(model, part, sub, batch_size,
                                           spec, config, generator)
    finally:
        model.train(was_training)
    total, count = runtime.all_reduce_sum([total, count])
    keys = METRICS[1:]  # the equivariance errors
    means = [getattr(err, key) for key in keys] if err is not None else \
        [0.0] * len(keys)
    means, graphs = runtime.weighted_mean(
        means, err.num_graphs if err is not None else 0)
    if count == 0:
        raise ValueError('cannot evaluate an empty dataset')
    if not equivariance:
        means = [math.nan] * len(keys)
    return dict({'mse': total / count}, **dict(zip(keys, means)))


__all__ = ['METRICS', 'evaluate_split']
