r"""Interatomic potentials in ``remul train``: the rMD17 task's model
wrapper (energy and forces :math:`F = -\partial E / \partial x` by
autograd), its target standardisation and its evaluation (energy and force
MAE, force equivariance error, force MAE on a rotated copy)."""
import contextlib
import copy
import math
from typing import Any, Callable, Dict, Optional

import torch
from torch import Tensor
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from torch_geometric.transforms import BaseTransform

from torch_geometric_remul.metrics import equivariance_error
from torch_geometric_remul.transforms import RandomRigidTransform

#: meV per kcal/mol (1 kcal/mol = 4184 J/mol / 96485.33212 C/mol).
MEV_PER_KCAL_MOL = 4184.0 / 96485.33212 * 1000.0

#: The named outputs of a potential and their roles.
POTENTIAL_OUTPUT = {'energy': 'scalar', 'forces': 'vector'}

#: The standardised targets a potential is trained on (graph attributes
#: written by :class:`StandardizeEnergyForces`).
POTENTIAL_TARGET = {'energy': 'y_energy', 'forces': 'y_force'}

#: The metrics of :func:`evaluate_potential` beyond the shared ones
#: (``mse``, ``E``, ``E_prime``, ``E_prime_rel``, ``E_prime_paper``).
POTENTIAL_METRICS = (
    'energy_mae', 'force_mae', 'energy_mae_meV', 'force_mae_meV',
    'energy_rmse', 'force_rmse', 'rot_energy_mae', 'rot_force_mae',
    'rot_force_mae_meV', 'energy_E_prime')


class Potential(torch.nn.Module):
    r"""An interatomic potential from a backbone with a per-graph scalar
    output: ``model(data) -> {'energy': [B], 'forces': [N, 3]}`` with
    :math:`F = -\partial E / \partial\,\mathrm{pos}` by autograd.

    The forces are differentiated with respect to the ``pos`` the model
    receives (a new leaf sharing its storage when it does not require
    grad: the caller's tensor is never switched to ``requires_grad``, and
    ``data`` is not modified), with ``create_graph=True`` in training mode
    under autograd (so that a force loss reaches the parameters: a double
    backward) and ``False`` otherwise; the forces are available under
    :func:`torch.no_grad` too. With ``create_graph``, attention runs on
    PyTorch's math kernel (the fused ones have no double backward).

    Args:
        backbone (torch.nn.Module): ``backbone(data) -> [B, 1]`` or ``[B]``
            (a model with ``output="scalar"`` and ``pool="sum"``; with
            ``readout="node"`` the energy is a sum of atomic energies, as
            the ``rmd17`` task builds it).

    Example:

        >>> from torch_geometric_remul.nn.models import EGNN
        >>> from torch_geometric_remul.graph import fully_connected_graph
        >>> data = Data(pos=torch.randn(5, 3), atom=torch.randn(5, 2))
        >>> data.edge_index = fully_connected_graph(data)
        >>> model = Potential(EGNN(output='scalar', readout='node',
        ...                        scalars='atom', hidden_channels=8,
        ...                        num_layers=1))
        >>> out = model(data)
        >>> out['energy'].shape, out['forces'].shape, data.pos.requires_grad
        (torch.Size([1]), torch.Size([5, 3]), False)
    """
    def __init__(self, backbone: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, data: Data) -> Dict[str, Tensor]:
        grad_enabled = torch.is_grad_enabled()
        create_graph = self.training and grad_enabled
        # the fused attention kernels have no double backward: training
        # (create_graph) runs attention on the math kernel
        kernel = sdpa_kernel([SDPBackend.MATH]) if create_graph else \
            contextlib.nullcontext()
        with torch.enable_grad(), kernel:
            pos = data.pos if data.pos.requires_grad else \
                data.pos.detach().requires_grad_()
            moved = copy.copy(data)  # shares every tensor; ``data`` intact
            moved.pos = pos
            energy = self.backbone(moved).reshape(-1)
            (grad, ) = torch.autograd.grad(energy.sum(), pos,
                                           create_graph=create_graph)
        return {'energy': energy if grad_enabled else energy.detach(),
                'forces': -grad}


class EnergyForceStats:
    r"""The standardisation of a potential's targets, from its training
    split: ``shift`` the mean training energy (kcal/mol) and ``scale`` the
    root mean square of the training force components (kcal/mol/Å).
    Computed on first use (reading the split through ``load``).

    Args:
        load (callable): Returns the raw training split (graphs with
            ``energy`` and ``force``).
    """
    def __init__(self, load: Callable[[], Any]) -> None:
        self._load = load
        self._values: Optional[Dict[str, float]] = None

    def _compute(self) -> Dict[str, float]:
        if self._values is None:
            ds = self._load()
            energy = torch.cat([ds[i].energy.double().reshape(-1)
                                for i in range(len(ds))])
            force = torch.cat([ds[i].force.double().reshape(-1)
                               for i in range(len(ds))])
            scale = float(force.pow(2).mean().sqrt())
            self._values = {'shift': float(energy.mean()),
                            'scale': scale if scale > 0 else 1.0}
        return self._values

    @property
    def shift(self) -> float:
        return self._compute()['shift']

    @property
    def scale(self) -> float:
        return self._compute()['scale']

    def as_dict(self) -> Dict[str, float]:
        return dict(self._compute())


class StandardizeEnergyForces(BaseTransform):
    r"""Adds the standardised targets of a potential: ``y_energy`` ``[1]``
    :math:`= (E - \mathrm{shift}) / \mathrm{scale}` and ``y_force``
    ``[N, 3]`` :math:`= F / \mathrm{scale}` (float32; ``energy`` and
    ``force`` stay as stored). One scale for both keeps
    :math:`F = -\partial E / \partial x` between the standardised
    targets.

    Args:
        stats (EnergyForceStats): ``shift`` (kcal/mol) and ``scale``
            (kcal/mol/Å).

    Example:

        >>> stats = EnergyForceStats(lambda: [Data(
        ...     energy=torch.tensor([10.0], dtype=torch.float64),
        ...     force=torch.full((2, 3), 2.0))])
        >>> out = StandardizeEnergyForces(stats)(Data(
        ...     energy=torch.tensor([14.0], dtype=torch.float64),
        ...     force=torch.ones(2, 3)))
        >>> out.y_energy, out.y_force[0]
        (tensor([2.]), tensor([0.5000, 0.5000, 0.5000]))
    """
    def __init__(self, stats: EnergyForceStats) -> None:
        self.stats = stats

    def forward(self, data: Data) -> Data:
        shift, scale = self.stats.shift, self.stats.scale
        data.y_energy = ((data.energy.double() - shift) / scale).float()
        data.y_force = (data.force.double() / scale).float()
        return data


def _device_of(model: torch.nn.Module) -> Optional[torch.device]:
    param = next(model.parameters(), None)
    return None if param is None else param.device


def _to(batch, device):
    if device is None or device.type == 'cpu':
        return batch
    return batch.to(device)


def potential_loss(pred: Dict[str, Tensor], target: Dict[str, Tensor],
                   weights: Dict[str, float]) -> Tensor:
    r"""The plain loss of a potential: :math:`\sum_k w_k\,
    \mathrm{MSE}_k` over its named outputs.

    Example:

        >>> pred = {'energy': torch.zeros(2), 'forces': torch.zeros(3, 3)}
        >>> target = {'energy': torch.ones(2), 'forces': torch.ones(3, 3)}
        >>> potential_loss(pred, target, {'energy': 1.0, 'forces': 100.0})
        tensor(101.)
    """
    return sum(weights[k] * torch.nn.functional.mse_loss(pred[k], target[k])
               for k in target)


@torch.no_grad()
def evaluate_potential(model: torch.nn.Module, dataset, spec, config,
                       seed: int, runtime=None,
                       equivariance: bool = True) -> Dict[str, float]:
    r"""The metrics of a potential on a split, in physical units.

    * ``mse``: the plain training loss :math:`\mathrm{MSE}_E + w_F
      \mathrm{MSE}_F` on the standardised targets (the best-validation
      criterion).
    * ``energy_mae``/``energy_rmse`` (kcal/mol), ``force_mae``/
      ``force_rmse`` (kcal/mol/Å, per component), ``energy_mae_meV`` and
      ``force_mae_meV`` (meV, meV/Å).
    * ``rot_energy_mae``, ``rot_force_mae`` (and ``rot_force_mae_meV``):
      the same on a copy of the split with every molecule rotated by its
      own random rotation (the forces rotated with it), drawn from
      ``seed``.
    * ``E``, ``E_prime``, ``E_prime_paper`` (kcal/mol/Å) and
      ``E_prime_rel``: the forces' equivariance errors of
      :func:`~torch_geometric_remul.metrics.equivariance_error` on the
      first ``config.eval_graphs`` graphs (``config.eval_samples``
      rotations each); ``energy_E_prime`` (kcal/mol): the energy's
      invariance error.

    With several processes each evaluates a block and the sums are
    all-reduced, as in
    :func:`~torch_geometric_remul.train.evaluate.evaluate_split`. With
    ``equivariance=False`` neither the rotated copy nor the equivariance
    errors are computed: their metrics are ``nan``.
    """
    from torch_geometric_remul.train.runtime import Runtime
    runtime = Runtime.current() if runtime is None else runtime
    scale = spec.energy_force_stats.scale
    weights = spec.output_weights
    num_eval = min(config.eval_graphs, len(dataset)) if equivariance else 0
    part, sub, batch_size = runtime.eval_blocks(dataset, num_eval,
                                                config.batch_size)
    generator = torch.Generator().manual_seed(runtime.seed(seed))
    rotate = RandomRigidTransform(group='SO3', vectors='y_force',
                                  generator=torch.Generator().manual_seed(
                                      runtime.seed(seed) + 1))
    device = _device_of(model)
    was_training = model.training
    model.eval()
    try:
        sums: Optional[Tensor] = None
        graphs = components = 0
        for batch in DataLoader(part, batch_size=batch_size):
            batch = _to(batch, device)
            rows = []
            for data in (batch, rotate(batch) if equivariance else None):
                if data is None:  # no rotated copy: its sums are nan
                    rows += [rows[0].new_tensor(math.nan)] * 4
                    continue
                pred = model(data)
                de = (pred['energy'].double() - data.y_energy.double())
                df = (pred['forces'].double() - data.y_force.double())
                rows += [de.abs().sum(), de.pow(2).sum(), df.abs().sum(),
                         df.pow(2).sum()]
            step = torch.stack(rows)
            sums = step if sums is None else sums + step
            graphs += batch.num_graphs
            components += batch.y_force.numel()
        values = ([0.0] * 8 if sums is None else sums.tolist()) + \
            [graphs, components]
        err = None
        if len(sub) > 0:
            loader = DataLoader(sub, batch_size=batch_size)
            err = equivariance_error(
                model, (_to(b, device) for b in loader), roles=spec.roles,
                group=config.group, num_samples=config.eval_samples,
                axis=spec.axis, generator=generator)
    finally:
        model.train(was_training)
    values = runtime.all_reduce_sum(values)
    (e_abs, e_sq, f_abs, f_sq, re_abs, _, rf_abs, _, graphs,
     components) = values
    if graphs == 0:
        raise ValueError('cannot evaluate an empty dataset')
    keys = ('E', 'E_prime', 'E_prime_rel', 'E_prime_paper')
    means = [getattr(err['forces'], k) for k in keys] + \
        [err['energy'].E_prime] if err is not None else [0.0] * 5
    means, _ = runtime.weighted_mean(
        means, err['forces'].num_graphs if err is not None else 0)
    if not equivariance:
        means = [math.nan] * 5
    e_mae, f_mae = scale * e_abs / graphs, scale * f_abs / components
    out = {
        'mse': (weights['energy'] * e_sq / graphs +
                weights['forces'] * f_sq / components),
        'E': scale * means[0], 'E_prime': scale * means[1],
        'E_prime_rel': means[2], 'E_prime_paper': scale * means[3],
        'energy_mae': e_mae, 'force_mae': f_mae,
        'energy_mae_meV': e_mae * MEV_PER_KCAL_MOL,
        'force_mae_meV': f_mae * MEV_PER_KCAL_MOL,
        'energy_rmse': scale * math.sqrt(e_sq / graphs),
        'force_rmse': scale * math.sqrt(f_sq / components),
        'rot_energy_mae': scale * re_abs / graphs,
        'rot_force_mae': scale * rf_abs / components,
        'rot_force_mae_meV': scale * rf_abs / components * MEV_PER_KCAL_MOL,
        'energy_E_prime': scale * means[4],
    }
    return out


__all__ = ['MEV_PER_KCAL_MOL', 'POTENTIAL_OUTPUT', 'POTENTIAL_TARGET',
           'POTENTIAL_METRICS', 'Potential', 'EnergyForceStats',
           'StandardizeEnergyForces', 'potential_loss', 'evaluate_potential']
