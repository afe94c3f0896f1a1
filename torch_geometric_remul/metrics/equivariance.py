r"""Label-free measures of how equivariant a model is."""
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence, Union

import torch
from torch import Tensor
from torch_geometric.data import Data

from torch_geometric_remul.group import RigidTransform
from torch_geometric_remul.group.rotations import AxisLike
from torch_geometric_remul.layout import check_data, graph_layout
from torch_geometric_remul.metrics.roles import (act, check_level,
                                                 check_role, nonempty_graphs,
                                                 output_layout,
                                                 per_graph_mean, row_norms)
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
        ['E', 'E_prime', 'E_prime_rel', 'E_rel', 'num_empty', 'num_graphs']
    """
    #: :math:`E`: distance between the averaged transformed outputs.
    E: float
    #: :math:`E'`: mean distance between :math:`f(gx)` and :math:`g f(x)`.
    E_prime: float
    #: :math:`E` divided by the mean output norm (per graph, then averaged).
    E_rel: float
    #: :math:`E'` divided by the mean output norm.
    E_prime_rel: float
    #: Number of graphs averaged over (those with at least one node).
    num_graphs: int
    #: Number of graphs without nodes, excluded from the averages (an empty
    #: graph has no output to compare, so it would count as a zero error).
    num_empty: int = 0

    def as_dict(self) -> dict:
        r"""The fields as a plain ``dict`` (e.g. to write as JSON)."""
        return dict(E=self.E, E_prime=self.E_prime, E_rel=self.E_rel,
                    E_prime_rel=self.E_prime_rel, num_graphs=self.num_graphs,
                    num_empty=self.num_empty)


def _batch_errors(model, data: Data, output: str, points, vectors,
                  pseudovectors, group: str, num_samples: int, generator,
                  translation_std: float, axis, level):
    """Per-graph values for one batch, on the device: (E, E', norm) each
    ``[B]``, and which graphs have nodes (``[B]`` bool)."""
    check_data(data, 'equivariance_error')
    num_graphs, _ = graph_layout(data)
    y = model(data)
    if not isinstance(y, Tensor):
        raise TypeError(f"the model must return a Tensor (got "
                        f"{type(y).__name__})")
    if not y.is_floating_point():
        raise TypeError(f"the model output must be floating point (got "
                        f"{y.dtype})")
    layout = output_layout(data, y, 'the model output', level,
                           'equivariance_error')
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
        if not isinstance(y_g, Tensor) or y_g.shape != y.shape:
            raise ValueError(f"the model output changed shape under the "
                             f"transform: {list(y.shape)} -> "
                             f"{list(getattr(y_g, 'shape', []))}")
        ref = act(T, y, output, layout)
        e_prime += per_graph_mean(row_norms(y_g - ref), layout, num_graphs)
        mean_transformed_ref += ref
        mean_out += y_g
    M = float(num_samples)
    e = per_graph_mean(row_norms((mean_transformed_ref - mean_out) / M),
                       layout, num_graphs)
    norm = per_graph_mean(row_norms(y), layout, num_graphs)
    return e, e_prime / M, norm, nonempty_graphs(data, y.device)


@torch.no_grad()
def equivariance_error(
    model: Callable[[Data], Tensor],
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
    level: Optional[str] = None,
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
    over graphs. Graphs without nodes have nothing to compare and are
    excluded from the averages (:attr:`EquivarianceError.num_empty` counts
    them). The relative versions divide each graph's error by its
    mean output norm :math:`\|f(x)\|` (for point outputs this norm depends
    on the frame: centre the data for comparable figures). For
    ``output="scalar"`` both measure invariance, :math:`\rho(g) = 1`.
    An exactly equivariant model gives zeros up to rounding. A
    :class:`torch.nn.Module` is evaluated in ``eval()`` mode (its mode is
    restored afterwards); any other callable is called as it is. No
    gradients are recorded.

    The sums stay on the device; the figures are read on the host once per
    call, at the end (one host-device synchronisation, whatever the number
    of batches, graphs and samples).

    Args:
        model (callable): ``model(data) -> Tensor``, e.g. a
            :class:`torch.nn.Module`.
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
        level (str, optional): Row level of the model output, ``"node"`` or
            ``"graph"``, when its row count alone is ambiguous (a batch with
            as many nodes as graphs). (default: ``None``: from the shape)

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
    check_level(level)
    if not callable(model):
        raise TypeError(f"'model' must be callable: model(data) -> Tensor "
                        f"(got {type(model).__name__})")
    if isinstance(num_samples, bool) or not isinstance(
            num_samples, int) or num_samples < 1:
        raise ValueError(f"'num_samples' must be a positive int (got "
                         f"{num_samples!r})")
    batches = [data_or_loader] if isinstance(data_or_loader,
                                             Data) else data_or_loader
    # a Module is switched to eval mode and restored; a plain callable has
    # no mode
    is_module = isinstance(model, torch.nn.Module)
    was_training = model.training if is_module else None
    if is_module:
        model.eval()
    # [E, E', E_rel, E'_rel, graphs with nodes, empty graphs], kept on the
    # device of the outputs until the single read at the end
    sums = None
    seen = False
    try:
        for data in batches:
            e, ep, norm, keep = _batch_errors(
                model, data, output, points, vectors, pseudovectors, group,
                num_samples, generator, translation_std, axis, level)
            seen = True
            norm = norm.clamp(min=torch.finfo(norm.dtype).tiny)
            w = keep.to(torch.float64)
            e, ep, norm = e.double(), ep.double(), norm.double()
            part = torch.stack([(e * w).sum(), (ep * w).sum(),
                                (e / norm * w).sum(), (ep / norm * w).sum(),
                                w.sum(), (1 - w).sum()])
            sums = part if sums is None else sums + part.to(sums.device)
    finally:
        if is_module:
            model.train(was_training)
    if not seen:
        raise ValueError("'data_or_loader' holds no graph")
    E, Ep, Er, Epr, count, empty = sums.tolist()  # the one host read
    count, empty = int(round(count)), int(round(empty))
    if count == 0:
        raise ValueError(f"'data_or_loader' holds no graph with nodes "
                         f"({empty} empty graph(s)): there is no output to "
                         f"measure")
    return EquivarianceError(E / count, Ep / count, Er / count, Epr / count,
                             count, empty)
