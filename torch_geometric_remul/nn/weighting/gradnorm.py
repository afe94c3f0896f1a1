from typing import Iterable, Optional, Tuple

import torch
from torch import Tensor

from torch_geometric_remul._dist import all_reduce_mean
from torch_geometric_remul.nn.weighting.base import Weighting, check_weight


class GradNorm(Weighting):
    r"""GradNorm (Chen et al., 2018) on the two losses of REMUL.

    Each step it measures :math:`g_i = \|\nabla_W L_i\|` for the task and the
    equivariance loss with respect to the ``shared_parameters`` :math:`W`
    (typically the last layer shared by both, i.e. the model's output
    layer), and moves the weights :math:`w = (\alpha, \beta)` by one
    gradient step on :math:`\sum_i |w_i g_i - \bar G\, r_i^{a}|`, where
    :math:`\bar G` is the mean weighted gradient norm and
    :math:`r_i = (L_i / L_i(0)) / \mathrm{mean}_j (L_j / L_j(0))` the
    relative inverse training rate. The step on :math:`w_i` is
    :math:`\mathrm{lr}\cdot\mathrm{sign}(w_i g_i - \bar G r_i^a)\,
    g_i / \bar g`
    (the gradient of that objective divided by the mean gradient norm
    :math:`\bar g`, so that ``lr`` does not depend on the scale of the
    losses). Weights are then renormalised to sum to 2. Under
    :mod:`torch.distributed`, :math:`g_i` and :math:`L_i` are
    averaged over ranks first, so every rank computes the same weights.

    This costs two extra backward passes restricted to :math:`W` per step.
    Everything stays on the device: the norms, the loss ratios and the
    weights are tensors, and ``weights()`` returns 0-dim ``float64``
    tensors (read them, e.g. with ``float()``, only where you log: each
    read waits for the device).

    Args:
        shared_parameters (iterable of torch.nn.Parameter): The parameters
            :math:`W`.
        asymmetry (float, optional): The exponent :math:`a`.
            (default: ``1.5``)
        lr (float, optional): Step size of the weight update.
            (default: ``0.025``)
        alpha (float, optional): Initial :math:`\alpha`, finite and
            :math:`> 0`. (default: ``1.0``)
        beta (float, optional): Initial :math:`\beta`, finite and
            :math:`> 0`. (default: ``1.0``)

    Example:

        >>> layer = torch.nn.Linear(3, 3)
        >>> weighting = GradNorm(layer.parameters())
        >>> [float(w) for w in weighting.weights()]
        [1.0, 1.0]
    """
    needs_graph = True
    needs_clean = True

    def __init__(self, shared_parameters: Iterable[torch.nn.Parameter],
                 asymmetry: float = 1.5, lr: float = 0.025,
                 alpha: float = 1.0, beta: float = 1.0):
        super().__init__()
        params = [p for p in shared_parameters]
        if not params or not all(isinstance(p, Tensor) for p in params):
            raise ValueError("'shared_parameters' must hold at least one "
                             "parameter tensor (e.g. "
                             "model.last_layer.parameters())")
        if not any(p.requires_grad for p in params):
            raise ValueError("'shared_parameters' must require gradients")
        lr = check_weight(lr, 'lr', positive=True)
        asymmetry = check_weight(asymmetry, 'asymmetry')
        alpha = check_weight(alpha, 'alpha', positive=True)
        beta = check_weight(beta, 'beta', positive=True)
        # A plain list: these parameters belong to the model, not to us.
        self._shared = [p for p in params if p.requires_grad]
        self.asymmetry, self.lr = float(asymmetry), float(lr)
        w = torch.tensor([alpha, beta], dtype=torch.float64)
        self.register_buffer('w', w * 2 / w.sum())
        self.register_buffer('initial_losses',
                             torch.full((2, ), float('nan'),
                                        dtype=torch.float64))
        #: The last measured unweighted gradient norms (task, equi).
        self.register_buffer('grad_norms', torch.full(
            (2, ), float('nan'), dtype=torch.float64))

    def weights(self) -> Tuple[Tensor, Tensor]:
        # a copy: update() changes self.w in place after the step used it
        w = self.w.detach().clone()
        return w[0], w[1]

    def _norm(self, loss: Tensor) -> Tensor:
        grads = torch.autograd.grad(loss, self._shared, retain_graph=True,
                                    allow_unused=True)
        sq = [g.detach().double().pow(2).sum() for g in grads
              if g is not None]
        if not sq:
            raise ValueError("GradNorm: the loss does not depend on "
                             "'shared_parameters'; pass a layer that both "
                             "losses flow through (e.g. the output layer)")
        return torch.stack(sq).sum().sqrt()

    def update(self, task: Optional[Tensor], equi: Tensor,
               error: Optional[Tensor] = None) -> None:
        if task is None:
            raise ValueError("GradNorm needs the task loss; use alpha > 0 or "
                             "a target (it balances two losses)")
        if not (task.requires_grad and equi.requires_grad):
            raise ValueError("GradNorm needs losses with an autograd graph "
                             "(call RemulLoss in training mode with "
                             "gradients enabled)")
        g = torch.stack([self._norm(task), self._norm(equi)])
        losses = torch.stack([task.detach().double(),
                              equi.detach().double()])
        # the state follows the losses' device (once), so that no step
        # copies between devices
        self._follow(losses.device)
        g = all_reduce_mean(g).to(torch.float64)
        losses = all_reduce_mean(losses).to(torch.float64)
        self.grad_norms.copy_(g)
        # the first update records the initial losses (selected on the
        # device: no read of the state)
        self.initial_losses.copy_(torch.where(
            torch.isnan(self.initial_losses), losses.clamp(min=1e-30),
            self.initial_losses))
        ratio = losses / self.initial_losses
        ratio = ratio / ratio.mean().clamp(min=1e-30)
        G = self.w * g
        target = G.mean() * ratio.pow(self.asymmetry)
        # d/dw_i sum_j |G_j - target_j| (targets held constant), divided by
        # the mean gradient norm so that `lr` does not depend on the scale
        # of the losses.
        grad_w = torch.sign(G - target) * g / g.mean().clamp(min=1e-30)
        w = (self.w - self.lr * grad_w).clamp(min=1e-6)
        self.w.copy_(w * 2 / w.sum())
