from typing import Dict, Optional, Tuple

import torch
from torch import Tensor


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

    Example:

        A strategy of one's own: no penalty for the first 100 steps.

        >>> class Warmup(Weighting):
        ...     def __init__(self, beta: float = 1.0):
        ...         super().__init__()
        ...         self.beta = beta
        ...         step = torch.zeros((), dtype=torch.long)
        ...         self.register_buffer('step', step)
        ...     def weights(self):
        ...         return 1.0, (0.0 if int(self.step) < 100 else self.beta)
        ...     def update(self, task, equi, error=None):
        ...         self.step += 1
        >>> w = Warmup()
        >>> w.weights()
        (1.0, 0.0)
        >>> for _ in range(100):
        ...     w.update(None, torch.tensor(0.0))
        >>> w.weights()
        (1.0, 1.0)
    """
    #: Whether :meth:`update` needs the losses with their autograd graph.
    needs_graph: bool = False
    #: Whether :meth:`update` needs the task loss / the clean prediction
    #: (then RemulLoss computes it even when ``alpha`` is 0).
    needs_clean: bool = False

    def weights(self) -> Tuple[float, float]:
        r"""``(alpha, beta)`` for the current step."""
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

    def extra_repr(self) -> str:
        alpha, beta = self.weights()
        return f'alpha={alpha:.4g}, beta={beta:.4g}'
