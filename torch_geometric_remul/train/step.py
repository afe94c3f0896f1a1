r"""One training step and the running sums of an epoch: the per-step path
of the loop, which makes no host-device synchronisation (the sums and a
non-finite-loss flag stay on the device and are read once per epoch)."""
import math
from typing import Any, Dict, Mapping, Optional

import torch
from torch import Tensor

from torch_geometric_remul.debug import is_debug_enabled
from torch_geometric_remul.nn import RemulLoss


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
               target: Tensor, scale: float = 1.0,
               output_weights: Optional[Mapping[str, float]] = None):
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
        output_weights (dict, optional): With several named outputs
            (``target`` a mapping), the weight of each output's MSE in the
            plain loss. (default: ``None``)

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
    if loss_fn is None and isinstance(target, Mapping):
        pred = net(batch)
        weights = output_weights or {}
        loss = sum(weights.get(k, 1.0) *
                   torch.nn.functional.mse_loss(pred[k], target[k])
                   for k in target)
        task, equi, alpha, beta = loss, None, math.nan, math.nan
    elif loss_fn is None:
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


__all__ = ['EpochStats', 'train_step']
