import math
from typing import Callable, Optional, Tuple, Union

import torch
from torch import Tensor

from torch_geometric_remul.nn.weighting.base import Weighting

ScheduleFn = Callable[[int], Union[float, Tuple[float, float]]]


class Schedule(Weighting):
    r"""Weights as a function of the training step (the paper's "gradual"
    penalty): :math:`\beta` ramps from ``beta_start`` to ``beta_end`` over
    ``total_steps`` updates, linearly or along a half cosine, and stays at
    ``beta_end`` afterwards. Alternatively ``fn(step)`` returns ``beta`` or
    ``(alpha, beta)`` for any schedule.

    The step counter advances once per training step and is part of the
    state dict.

    Args:
        beta_end (float, optional): Final :math:`\beta`. (default: ``1.0``)
        total_steps (int, optional): Length of the ramp. (default: ``1000``)
        beta_start (float, optional): Initial :math:`\beta`.
            (default: ``0.0``)
        kind (str, optional): ``"linear"`` or ``"cosine"``.
            (default: ``"linear"``)
        alpha (float, optional): Constant :math:`\alpha`. (default: ``1.0``)
        fn (callable, optional): ``step -> beta`` or
            ``step -> (alpha, beta)``; overrides the ramp arguments.

    Example:

        >>> s = Schedule(beta_end=1.0, total_steps=4)
        >>> for _ in range(3):
        ...     s.update(None, torch.tensor(0.0))
        >>> s.weights()
        (1.0, 0.75)
    """
    def __init__(self, beta_end: float = 1.0, total_steps: int = 1000,
                 beta_start: float = 0.0, kind: str = 'linear',
                 alpha: float = 1.0, fn: Optional[ScheduleFn] = None):
        super().__init__()
        if kind not in ('linear', 'cosine'):
            raise ValueError(f"'kind' must be 'linear' or 'cosine' "
                             f"(got {kind!r})")
        if total_steps < 1:
            raise ValueError(f"'total_steps' must be >= 1 "
                             f"(got {total_steps})")
        if fn is not None and not callable(fn):
            raise TypeError("'fn' must be callable (step -> beta or "
                            "(alpha, beta))")
        self.beta_start, self.beta_end = float(beta_start), float(beta_end)
        self.total_steps, self.kind = int(total_steps), kind
        self.alpha, self.fn = float(alpha), fn
        self.register_buffer('step', torch.zeros((), dtype=torch.long))

    def weights(self) -> Tuple[float, float]:
        step = int(self.step)
        if self.fn is not None:
            out = self.fn(step)
            if isinstance(out, tuple):
                return float(out[0]), float(out[1])
            return self.alpha, float(out)
        frac = min(step / self.total_steps, 1.0)
        if self.kind == 'cosine':
            frac = 0.5 * (1 - math.cos(math.pi * frac))
        return self.alpha, self.beta_start + frac * (self.beta_end -
                                                     self.beta_start)

    def update(self, task: Optional[Tensor], equi: Tensor,
               error: Optional[Tensor] = None) -> None:
        self.step += 1
