import math
from typing import Callable, Optional, Tuple, Union

import torch
from torch import Tensor

from torch_geometric_remul._checks import check_int
from torch_geometric_remul.nn.weighting.base import (
    Weighting,
    WeightLike,
    check_weight,
    check_weight_value,
)

ScheduleFn = Callable[[int], Union[WeightLike, Tuple[WeightLike,
                                                     WeightLike]]]


class Schedule(Weighting):
    r"""Weights as a function of the training step (the paper's "gradual"
    penalty): :math:`\beta` ramps from ``beta_start`` to ``beta_end`` over
    ``total_steps`` updates, linearly or along a half cosine, and stays at
    ``beta_end`` afterwards. Alternatively ``fn(step)`` returns ``beta`` or
    ``(alpha, beta)`` for any schedule.

    The step counter advances once per training step. It is kept on the
    host as a Python ``int`` (so the weights are Python floats and no step
    reads the device) and mirrored in the ``step`` buffer of the state
    dict, from which ``load_state_dict`` restores it.

    Weights must be finite and non-negative: the arguments are checked at
    construction, and what ``fn`` returns at every step (a Python number at
    once; a tensor only in debug mode, see
    :func:`torch_geometric_remul.debug`, since reading it would stall the
    device).

    Args:
        beta_end (float, optional): Final :math:`\beta`. (default: ``1.0``)
        total_steps (int, optional): Length of the ramp. (default: ``1000``)
        beta_start (float, optional): Initial :math:`\beta`.
            (default: ``0.0``)
        kind (str, optional): ``"linear"`` or ``"cosine"``.
            (default: ``"linear"``)
        alpha (float, optional): Constant :math:`\alpha`. (default: ``1.0``)
        fn (callable, optional): ``step -> beta`` or
            ``step -> (alpha, beta)`` (``step`` an ``int``); overrides the
            ramp arguments.

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
        total_steps = check_int(total_steps, 'total_steps', minimum=1)
        if fn is not None and not callable(fn):
            raise TypeError("'fn' must be callable (step -> beta or "
                            "(alpha, beta))")
        self.beta_start = check_weight(beta_start, 'beta_start')
        self.beta_end = check_weight(beta_end, 'beta_end')
        self.alpha = check_weight(alpha, 'alpha')
        self.total_steps, self.kind = int(total_steps), kind
        self.fn = fn
        self._step = 0
        self.register_buffer('step', torch.zeros((), dtype=torch.long))

    def weights(self) -> Tuple[WeightLike, WeightLike]:
        step = self._step
        if self.fn is not None:
            out = self.fn(step)
            if isinstance(out, tuple):
                if len(out) != 2:
                    raise ValueError(f"Schedule: 'fn' must return beta or "
                                     f"(alpha, beta), got a tuple of "
                                     f"{len(out)}")
                return (check_weight_value(out[0], f"the alpha that 'fn' "
                                           f"returned at step {step}"),
                        check_weight_value(out[1], f"the beta that 'fn' "
                                           f"returned at step {step}"))
            return self.alpha, check_weight_value(
                out, f"the beta that 'fn' returned at step {step}")
        frac = min(step / self.total_steps, 1.0)
        if self.kind == 'cosine':
            frac = 0.5 * (1 - math.cos(math.pi * frac))
        return self.alpha, self.beta_start + frac * (self.beta_end -
                                                     self.beta_start)

    def update(self, task: Optional[Tensor], equi: Tensor,
               error: Optional[Tensor] = None) -> None:
        self._step += 1
        self.step.fill_(self._step)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        # restoring a checkpoint (not a training step) may read the buffer
        if self.step.device.type != 'meta':
            self._step = int(self.step)
