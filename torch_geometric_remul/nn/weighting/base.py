import math
import numbers
from typing import Dict, Optional, Tuple, Union

import torch
from torch import Tensor

from torch_geometric_remul.debug import is_debug_enabled

#: A weight: a Python number (known on the host, e.g. a constant) or a
#: 0-dim tensor (state learned on the device).
WeightLike = Union[float, Tensor]


def check_weight(value, name: str, positive: bool = False,
                 label: Optional[str] = None) -> float:
    r"""A finite, non-negative (``positive=True``: strictly positive)
    Python number, returned as a ``float``; otherwise a
    :class:`ValueError` naming the argument ``name`` (or stating
    ``label``)."""
    label = label or f"'{name}'"
    bound = '> 0' if positive else '>= 0'
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{label} must be a finite number {bound} (got "
                         f"{value!r})")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{label} must be a finite number {bound} (got "
                         f"{value!r})")
    return value


def check_weight_value(value, name: str) -> WeightLike:
    r"""Validates a weight produced while training (e.g. by a user's
    schedule): a Python number is checked at once (no device read); a
    tensor must be a floating-point scalar, and its value is checked only
    in debug mode (reading it is a host-device synchronisation)."""
    if isinstance(value, Tensor):
        if value.numel() != 1 or not value.is_floating_point():
            raise ValueError(f"{name} must be a number or a floating-point "
                             f"scalar tensor (got a {value.dtype} tensor of "
                             f"shape {list(value.shape)})")
        value = value.reshape(())
        if is_debug_enabled() and value.device.type != 'meta':
            number = float(value)
            if not math.isfinite(number) or number < 0:
                raise ValueError(f"{name} must be a finite number >= 0 (got "
                                 f"{number!r})")
        return value
    return check_weight(value, name, label=name)


def format_weight(value: WeightLike) -> str:
    r"""``value`` for ``repr`` (reads a tensor: never call it per step)."""
    if isinstance(value, Tensor):
        if value.device.type == 'meta':
            return '<meta>'
        value = float(value)
    return f'{value:.4g}'


class Weighting(torch.nn.Module):
    r"""Base class of the strategies that set the weights
    :math:`\alpha` (task loss) and :math:`\beta` (equivariance loss) of
    :class:`~torch_geometric_remul.nn.RemulLoss`:
    :math:`L = \alpha L_\mathrm{task} + \beta L_\mathrm{equi}`.

    A strategy has one job: :meth:`weights` returns the weights to use for the
    current step and :meth:`update` learns from the step's losses (it is
    called by :class:`~torch_geometric_remul.nn.RemulLoss` in training mode
    only, after the weights were used). Strategies are modules, so their
    state (step counters, learned weights) is saved in
    ``RemulLoss.state_dict()`` and restored by ``load_state_dict`` for
    bit-exact resumption. Under
    :mod:`torch.distributed`, everything a strategy learns from is averaged
    over ranks first, so the weights stay identical on every rank.

    **No host-device synchronisation.** A training step must never wait for
    the device, so neither :meth:`weights` nor :meth:`update` may read a
    tensor value on the host (no ``float(t)``, ``.item()``, ``if t:``).
    A weight is therefore either a Python number that the host knows without
    reading the device (a constant, a function of a step counter kept on
    the host) or a 0-dim tensor computed on the device from learned state.
    :class:`~torch_geometric_remul.nn.RemulLoss` skips the task loss only
    when ``alpha`` is the Python number ``0`` (a tensor weight is never
    read to decide). Learned state lives in buffers; at the first update it
    follows the device of the losses (move the loss module with
    ``loss_fn.to(device)`` to avoid even that one copy).

    Example:

        A strategy of one's own: no penalty for the first 100 steps. The
        step counter is a buffer (saved in the state dict) and the weight
        is computed from it on its device, without reading it.

        >>> class Warmup(Weighting):
        ...     def __init__(self, beta: float = 1.0):
        ...         super().__init__()
        ...         self.beta = beta
        ...         step = torch.zeros((), dtype=torch.long)
        ...         self.register_buffer('step', step)
        ...     def weights(self):
        ...         return 1.0, (self.step >= 100).float() * self.beta
        ...     def update(self, task, equi, error=None):
        ...         self.step += 1
        >>> w = Warmup()
        >>> w.weights()
        (1.0, tensor(0.))
        >>> for _ in range(100):
        ...     w.update(None, torch.tensor(0.0))
        >>> w.weights()
        (1.0, tensor(1.))
    """
    #: Whether :meth:`update` needs the losses with their autograd graph.
    needs_graph: bool = False
    #: Whether :meth:`update` needs the task loss / the clean prediction
    #: (then RemulLoss computes it even when ``alpha`` is 0).
    needs_clean: bool = False

    def weights(self) -> Tuple[WeightLike, WeightLike]:
        r"""``(alpha, beta)`` for the current step: each a Python number or
        a 0-dim tensor (never a view of state that :meth:`update` modifies
        in place)."""
        raise NotImplementedError

    def update(self, task: Optional[Tensor], equi: Tensor,
               error: Optional[Dict[str, Tensor]] = None) -> None:
        r"""Learns from one training step.

        Args:
            task (torch.Tensor, optional): The task loss (``None`` when it was
                not computed).
            equi (torch.Tensor): The equivariance loss.
            error (dict, optional): This batch's equivariance error
                :math:`E'` as ``{'absolute': ..., 'relative': ...}`` (see
                :func:`torch_geometric_remul.metrics.equivariance_error`),
                when the clean prediction was computed.
        """

    def _follow(self, device: torch.device) -> None:
        r"""Moves this strategy's own buffers to ``device`` (a no-op when
        they are already there)."""
        for name, buf in list(self._buffers.items()):
            if buf is not None and buf.device != device:
                self._buffers[name] = buf.to(device)

    def extra_repr(self) -> str:
        alpha, beta = self.weights()
        return f'alpha={format_weight(alpha)}, beta={format_weight(beta)}'


__all__ = ['Weighting', 'WeightLike', 'check_weight']
