import math
from typing import Optional, Tuple

import torch
from torch import Tensor

from torch_geometric_remul._dist import all_reduce_mean
from torch_geometric_remul.nn.weighting.base import (
    Weighting,
    check_weight,
    format_weight,
)


class TargetEquivariance(Weighting):
    r"""Chooses :math:`\beta` to reach a stated level of equivariance.

    REMUL by itself offers no handle on the final degree of equivariance
    (the criticism of ACE, arXiv 2505.13631). Here the user states the
    equivariance error :math:`\epsilon` they want, measured as :math:`E'`
    (the mean distance between :math:`f(gx)` and :math:`g f(x)`, see
    :func:`~torch_geometric_remul.metrics.equivariance_error`), and
    :math:`\beta` plays the role of a Lagrange multiplier of the constraint
    :math:`E' \le \epsilon`: dual ascent in log space,

    .. math::
        \log\beta \leftarrow \log\beta + \eta\,
        \mathrm{clip}\big((\bar E' - \epsilon)/\epsilon, -1, 1\big),

    raises :math:`\beta` while the running error :math:`\bar E'` (an
    exponential moving average of the per-batch :math:`E'` that
    :class:`~torch_geometric_remul.nn.RemulLoss` measures for free) is above
    :math:`\epsilon` and lowers it below. Under :mod:`torch.distributed` the
    per-batch error is averaged over ranks first.

    Which :math:`\epsilon` is reachable depends on the mode of
    :class:`~torch_geometric_remul.nn.RemulLoss`: in ``"target"`` mode the
    equivariance term is a fit to transformed targets, so :math:`E'` cannot
    fall much below the model's prediction error however large
    :math:`\beta` grows; ``"consistency"`` mode penalises :math:`E'`
    directly and reaches small targets (see ``docs/remul_loss.md`` for a
    measurement on N-body).

    The multiplier and the running error stay on the device: ``weights()``
    returns ``alpha`` as a Python float and ``beta`` as a 0-dim ``float64``
    tensor (read it, e.g. with ``float()``, only where you log).

    Args:
        epsilon (float): Target :math:`E'` (absolute, or relative to the
            output norm when ``relative=True``).
        lr (float, optional): Step size :math:`\eta`. (default: ``0.05``)
        beta (float, optional): Initial :math:`\beta`. (default: ``1.0``)
        alpha (float, optional): Constant :math:`\alpha`. (default: ``1.0``)
        momentum (float, optional): Smoothing of the running error.
            (default: ``0.9``)
        beta_min (float, optional): Lower bound of :math:`\beta`.
            (default: ``1e-4``)
        beta_max (float, optional): Upper bound of :math:`\beta`.
            (default: ``1e4``)
        relative (bool, optional): Use the relative error :math:`E'_{rel}`.
            (default: ``False``)

    Example:

        >>> w = TargetEquivariance(epsilon=0.01, lr=0.5)
        >>> w.update(None, torch.tensor(0.0), error=torch.tensor(0.1))
        >>> float(w.weights()[1]) > 1.0
        True
    """
    needs_clean = True

    def __init__(self, epsilon: float, lr: float = 0.05, beta: float = 1.0,
                 alpha: float = 1.0, momentum: float = 0.9,
                 beta_min: float = 1e-4, beta_max: float = 1e4,
                 relative: bool = False):
        super().__init__()
        epsilon = check_weight(epsilon, 'epsilon', positive=True)
        lr = check_weight(lr, 'lr', positive=True)
        alpha = check_weight(alpha, 'alpha')
        beta = check_weight(beta, 'beta', positive=True)
        beta_min = check_weight(beta_min, 'beta_min', positive=True)
        beta_max = check_weight(beta_max, 'beta_max', positive=True)
        momentum = check_weight(momentum, 'momentum')
        if not momentum < 1:
            raise ValueError(f"'momentum' must be in [0, 1) (got "
                             f"{momentum})")
        if not beta_min <= beta <= beta_max:
            raise ValueError(f"expected beta_min <= beta <= beta_max (got "
                             f"{beta_min}, {beta}, {beta_max})")
        self.epsilon, self.lr, self.alpha = epsilon, lr, alpha
        self.momentum, self.relative = float(momentum), bool(relative)
        self.log_beta_min, self.log_beta_max = math.log(beta_min), math.log(
            beta_max)
        self.register_buffer('log_beta', torch.tensor(math.log(beta),
                                                      dtype=torch.float64))
        self.register_buffer('running_error', torch.tensor(
            float('nan'), dtype=torch.float64))

    def weights(self) -> Tuple[float, Tensor]:
        return self.alpha, self.log_beta.exp()

    def update(self, task: Optional[Tensor], equi: Tensor,
               error: Optional[Tensor] = None) -> None:
        if error is None:
            raise ValueError(
                "TargetEquivariance needs the per-batch equivariance error; "
                "RemulLoss measures it when the clean prediction f(x) is "
                "computed (alpha > 0 or mode='consistency')")
        if isinstance(error, dict):
            error = error['relative' if self.relative else 'absolute']
        if isinstance(error, Tensor):
            # the state follows the device of the losses (once)
            self._follow(error.device)
        err = all_reduce_mean(torch.as_tensor(
            error, dtype=torch.float64, device=self.log_beta.device))
        # the first update starts the average (chosen on the device: no
        # read of the state)
        smoothed = self.momentum * self.running_error + (
            1 - self.momentum) * err
        self.running_error.copy_(torch.where(
            torch.isnan(self.running_error), err, smoothed))
        # relative violation, clipped so that beta changes by at most a
        # factor exp(lr) per step however far the error is from epsilon
        violation = ((self.running_error - self.epsilon) /
                     self.epsilon).clamp(-1.0, 1.0)
        step = self.lr * violation
        self.log_beta.copy_((self.log_beta + step).clamp(
            self.log_beta_min, self.log_beta_max))

    def extra_repr(self) -> str:
        return (f'epsilon={self.epsilon:g}, '
                f'beta={format_weight(self.weights()[1])}, '
                f'running_error={format_weight(self.running_error)}')
