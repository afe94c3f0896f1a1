r"""Label-free measures of how equivariant a model is."""
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Union

import torch
from torch import Tensor
from torch_geometric.data import Data

from torch_geometric_remul.group import RigidTransform
from torch_geometric_remul.group.rotations import AxisLike
from torch_geometric_remul.metrics.roles import (act, check_role,
                                                 per_graph_mean, row_norms,
                                                 rows_layout)
from torch_geometric_remul.transforms._roles import graph_layout
from torch_geometric_remul.transforms.functional import apply_rigid_transform

Keys = Union[str, Sequence[str]]


@dataclass
class EquivarianceError:
    r"""Equivariance errors averaged over graphs (see
    :func:`equivariance_error`).

    Example:

        >>> from torch_geometric.data import Data
        >>> class Biased(torch.nn.Module):  # not equivariant: a fixed offset
        ...     def forward(self, data):
        ...         return data.pos + data.pos.new_tensor([1.0, 0.0, 0.0])
        >>> data = Data(pos=torch.randn(6, 3, dtype=torch.float64))
        >>> g = torch.Generator().manual_seed(0)
        >>> err = equivariance_error(Biased(), data, num_samples=10,
        ...                          generator=g)
        >>> err.num_graphs, err.E_prime > 0.1
        (1, True)
        >>> sorted(err.as_dict())
        ['E', 'E_prime', 'E_prime_rel', 'E_rel', 'num_graphs']
    """
    #: :math:`E`: distance between the averaged transformed outputs.
    E: float
    #: :math:`E'`: mean distance between :math:`f(gx)` and :math:`g f(x)`.
    E_prime: float
    #: :math:`E` divided by the mean output norm (per graph, then averaged).
    E_rel: float
    #: :math:`E'` divided by the mean output norm.
    E_prime_rel: float
    #: Number of graphs averaged over.
    num_graphs: int

    def as_dict(self) -> dict:
        r"""The five fields as a plain ``dict`` (e.g. to write as JSON)."""
        return dict(E=self.E, E_prime=self.E_prime, E_rel=self.E_rel,
                    E_prime_rel=self.E_prime_rel, num_graphs=self.num_graphs)


def _batch_errors(model, data: Data, output: str, points, vectors,
                  pseudovectors, group: str, num_samples: int, generator,
                  translation_std: float, axis):
    """Per-graph sums for one batch: (E, E', norm) each ``[B]``."""
    num_graphs, node_ptr = graph_layout(data)
    y = model(data)
    if not isinstance(y, Tensor):
        raise TypeError(f"the model must return a Tensor (got "
                        f"{type(y).__name__})")
    ptr = rows_layout(y.size(0), data.num_nodes, num_graphs, node_ptr,
                      'the model output', y.device)
    mean_transformed_ref = torch.zeros_like(y)
    mean_out = torch.zeros_like(y)
    e_prime = y.new_zeros(num_graphs)
    for _ in range(num_samples):
        T = RigidTransform.sample(num_graphs, group,
                                  translation_std=translation_std, axis=axis,
                                  generator=generator, dtype=y.dtype,
                                  device=y.device)
        moved = apply_rigid_transform(data, T, points, vectors, pseudovectors)
        y_g = model(moved)
        if y_g.shape != y.shape:
            raise ValueError(f"the model output changed shape under the "
                             f"transform: {list(y.shape)} -> "
                             f"{list(y_g.shape)}")
        ref = act(T, y, output, ptr)
        e_prime += per_graph_mean(row_norms(y_g - ref), ptr)
        mean_transformed_ref += ref
        mean_out += y_g
    M = float(num_samples)
    e = per_graph_mean(row_norms((mean_transformed_ref - mean_out) / M), ptr)
    norm = per_graph_mean(row_norms(y), ptr)
    return e, e_prime / M, norm


@torch.no_grad()
def equivariance_error(
    model: torch.nn.Module,
    data_or_loader: Union[Data, Iterable[Data]],
    output: str = 'point',
    points: Keys = ('pos', ),
    vectors: Keys = (),
    pseudovectors: Keys = (),
    group: str = 'SO3',
    num_samples: int = 20,
    generator: Optional[torch.Generator] = None,
    translation_std: float = 1.0,
    axis: AxisLike = 2,
) -> EquivarianceError:
    r"""Measures the learned equivariance of ``model`` without labels.

    With :math:`M` group elements :math:`g_1, \dots, g_M` sampled per graph
    (the input moved by :math:`\phi(g)`, the output by :math:`\rho(g)`
    according to ``output``):

    .. math::
        E &= \mathrm{mean}_x \Big\| \frac{1}{M}\sum_i \rho(g_i) f(x)
             - \frac{1}{M}\sum_i f(\phi(g_i) x) \Big\| \\
        E' &= \mathrm{mean}_x \frac{1}{M}\sum_i
             \big\| f(\phi(g_i) x) - \rho(g_i) f(x) \big\|

    For node-level outputs :math:`\|\cdot\|` is the Euclidean norm of each
    node's output averaged over the graph's nodes; values are then averaged
    over graphs. The relative versions divide each graph's error by its
    mean output norm :math:`\|f(x)\|` (for point outputs this norm depends
    on the frame: centre the data for comparable figures). For
    ``output="scalar"`` both measure invariance, :math:`\rho(g) = 1`.
    An exactly equivariant model gives zeros up to rounding. The model is
    evaluated in ``eval()`` mode (restored afterwards) without gradients.

    Args:
        model (torch.nn.Module): ``model(data) -> Tensor``.
        data_or_loader (Data, Batch or iterable of them): What to measure on,
            e.g. a :class:`torch_geometric.loader.DataLoader`.
        output (str, optional): Role of the output: ``"point"``,
            ``"vector"``, ``"pseudovector"`` or ``"scalar"``.
            (default: ``"point"``)
        points (str or [str], optional): Input point attributes.
            (default: ``"pos"``)
        vectors (str or [str], optional): Input vector attributes.
        pseudovectors (str or [str], optional): Input pseudovectors.
        group (str, optional): Group to sample from (see
            :meth:`~torch_geometric_remul.group.RigidTransform.sample`).
            (default: ``"SO3"``)
        num_samples (int, optional): :math:`M`. (default: ``20``)
        generator (torch.Generator, optional): For reproducible draws.
        translation_std (float, optional): Translation scale for groups with
            translations. (default: ``1.0``)
        axis (int, str or sequence, optional): Rotation axis for ``"SO2"``.
            (default: ``2``)

    Example:

        >>> from torch_geometric.data import Data
        >>> class Shift(torch.nn.Module):  # exactly equivariant
        ...     def forward(self, data):
        ...         return data.pos + data.vel
        >>> data = Data(pos=torch.randn(4, 3, dtype=torch.float64),
        ...             vel=torch.randn(4, 3, dtype=torch.float64))
        >>> err = equivariance_error(Shift(), data, vectors='vel', group='SE3')
        >>> err.E_prime < 1e-12
        True
    """
    check_role(output)
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"'num_samples' must be a positive int (got "
                         f"{num_samples!r})")
    batches = [data_or_loader] if isinstance(data_or_loader,
                                             Data) else data_or_loader
    was_training = model.training
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64)
    count = 0
    try:
        for data in batches:
            e, ep, norm = _batch_errors(model, data, output, points, vectors,
                                        pseudovectors, group, num_samples,
                                        generator, translation_std, axis)
            norm = norm.clamp(min=torch.finfo(norm.dtype).tiny)
            sums += torch.stack([e.sum(), ep.sum(), (e / norm).sum(),
                                 (ep / norm).sum()]).double().cpu()
            count += e.numel()
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("'data_or_loader' holds no graph")
    E, Ep, Er, Epr = (sums / count).tolist()
    return EquivarianceError(E, Ep, Er, Epr, count)
