r"""Label-free measures of how equivariant a model is."""
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.data.data import BaseData

from torch_geometric_remul._checks import check_int
from torch_geometric_remul.batching.layout import (
    BatchLayout,
    RowLayout,
    act,
    batch_layout,
    check_level,
    nonempty_graphs,
    output_layout,
    per_graph_mean,
)
from torch_geometric_remul.batching.segment import segment_sum
from torch_geometric_remul.group import RigidSampler, RigidTransform
from torch_geometric_remul.group.rotations import AxisLike
from torch_geometric_remul.roles import OutputLike, Roles
from torch_geometric_remul.transforms.functional import (
    declared_layouts,
    declared_values,
    moved_copy,
)
from torch_geometric_remul.typing import Keys


@dataclass
class EquivarianceError:
    r"""Equivariance errors averaged over graphs (see
    :func:`equivariance_error`).

    Two figures of :math:`E'` are given. :attr:`E_prime_paper` is the
    paper's (REMUL, Eq. 9): the Euclidean norm of the *whole* output of a
    graph (all nodes x 3 for a node-level output). :attr:`E_prime` is a
    normalised variant: the per-node norms averaged over the graph's nodes.
    For node-level outputs the paper's figure is larger by about
    :math:`\sqrt{N}` (exactly :math:`\sqrt{N}` when every node of an
    :math:`N`-node graph has the same error norm); for graph-level outputs
    the two coincide. :attr:`E`, :attr:`E_rel` and :attr:`E_prime_rel` use
    the per-node average, like :attr:`E_prime`.

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
        >>> err.E_prime_paper > err.E_prime  # sqrt(6) x for equal norms
        True
        >>> sorted(err.as_dict())  # doctest: +NORMALIZE_WHITESPACE
        ['E', 'E_prime', 'E_prime_paper', 'E_prime_rel', 'E_rel',
         'num_empty', 'num_graphs']
    """
    #: :math:`E`: distance between the averaged transformed outputs.
    E: float
    #: :math:`E'` (normalised variant): mean distance between :math:`f(gx)`
    #: and :math:`g f(x)`, each graph's distance being the per-node norm
    #: averaged over its nodes.
    E_prime: float
    #: :math:`E` divided by the mean output norm (per graph, then averaged).
    E_rel: float
    #: :math:`E'` divided by the mean output norm.
    E_prime_rel: float
    #: :math:`E'` as defined in the REMUL paper (Eq. 9): each graph's
    #: distance is the Euclidean norm of its whole output difference (all
    #: rows together), averaged over the :math:`M` samples and the graphs.
    E_prime_paper: float
    #: Number of graphs averaged over (those with at least one node).
    num_graphs: int
    #: Number of graphs without nodes, excluded from the averages (an empty
    #: graph has no output to compare, so it would count as a zero error).
    num_empty: int = 0

    def as_dict(self) -> dict:
        r"""The fields as a plain ``dict`` (e.g. to write as JSON)."""
        return dict(E=self.E, E_prime=self.E_prime, E_rel=self.E_rel,
                    E_prime_rel=self.E_prime_rel,
                    E_prime_paper=self.E_prime_paper,
                    num_graphs=self.num_graphs, num_empty=self.num_empty)


def row_norms(diff: Tensor) -> Tensor:
    """Euclidean norm of each row (all trailing dims flattened)."""
    return diff.flatten(1).norm(dim=-1) if diff.dim() > 1 else diff.abs()


def output_norms(y: Tensor, layout: RowLayout, num_graphs: int) -> Tensor:
    r"""Each graph's mean row norm of an output ``y``: ``[B]``, the
    denominator of the relative errors."""
    return per_graph_mean(row_norms(y), layout, num_graphs)


def sample_error(y: Tensor, y_g: Tensor, T: RigidTransform, role: str,
                 layout: RowLayout, num_graphs: int
                 ) -> Tuple[Tensor, Tensor, Tensor]:
    r"""One group element's contribution to :math:`E'`, the one place it is
    computed (for :func:`equivariance_error` and for the batch figure of
    :class:`~torch_geometric_remul.nn.RemulLoss`): each graph's mean over
    its rows of :math:`\|f(\phi(g) x) - \rho(g) f(x)\|`, ``[B]``, with the
    difference rows and :math:`\rho(g) f(x)`.

    Args:
        y (torch.Tensor): The output on the clean input, :math:`f(x)`.
        y_g (torch.Tensor): The output on the moved input,
            :math:`f(\phi(g) x)`.
        T (RigidTransform): The group elements :math:`g`, one per graph.
        role (str): The output's role (how :math:`\rho(g)` acts).
        layout (RowLayout): Which rows of ``y`` belong to which graph.
        num_graphs (int): ``B``.
    """
    moved = act(T, y, role, layout)
    diff = y_g - moved
    return per_graph_mean(row_norms(diff), layout, num_graphs), diff, moved


def _graph_norms(diff: Tensor, layout: RowLayout, num_graphs: int) -> Tensor:
    """Euclidean norm of each graph's whole block of rows of ``diff``
    (all rows and trailing dims together): ``[B]`` (0 for a graph without
    rows)."""
    sq = diff.flatten(1).pow(2).sum(-1) if diff.dim() > 1 else diff.pow(2)
    if layout.ptr is not None or layout.index is not None:
        sq = segment_sum(sq.unsqueeze(-1), batch=layout.index,
                         ptr=layout.ptr, num_graphs=num_graphs).squeeze(-1)
    else:  # one graph
        sq = sq.sum(0, keepdim=True)
    return sq.sqrt()


def _outputs(y, roles: Roles, which: str) -> Dict[str, Tensor]:
    """The model's output(s) as ``{name: detached tensor}``."""
    y = roles.named(y, f'the model output on the {which} input')
    out = {}
    for k, v in y.items():
        name = 'the model output' + ('' if not roles.multi_output else
                                     f' {k!r}')
        if not v.is_floating_point():
            raise TypeError(f"{name} must be floating point (got "
                            f"{v.dtype})")
        out[k] = v.detach()
    return out


def _batch_errors(model, data: Data, roles: Roles, sampler: RigidSampler,
                  num_samples: int, level):
    """Per output, per-graph values for one batch, on the device:
    ``{name: (E, E', E'_paper, norm)}`` each ``[B]``, and which graphs
    have nodes (``[B]`` bool). The batch's layout is resolved once."""
    owner = 'equivariance_error'
    layout = batch_layout(data, owner)
    num_graphs = layout.num_graphs
    y = _outputs(model(data), roles, 'clean')
    layouts = {k: output_layout(
        data, v, 'the model output' + ('' if not roles.multi_output else
                                       f' {k!r}'), level,
        owner, layout=layout) for k, v in y.items()}
    first = next(iter(y.values()))
    found = roles.reference_input(data)
    ref = found[1] if found is not None else first
    move = _mover(data, roles, layout)
    mean_ref = {k: torch.zeros_like(v) for k, v in y.items()}
    mean_out = {k: torch.zeros_like(v) for k, v in y.items()}
    e_prime = {k: v.new_zeros(num_graphs) for k, v in y.items()}
    e_paper = {k: v.new_zeros(num_graphs) for k, v in y.items()}
    for _ in range(num_samples):
        T = sampler.sample(num_graphs, dtype=ref.dtype, device=ref.device)
        y_g = _outputs(model(move(T)), roles, 'transformed')
        for k, role in roles.outputs.items():
            if y_g[k].shape != y[k].shape:
                raise ValueError(f"the model output {k!r} changed shape "
                                 f"under the transform: {list(y[k].shape)} "
                                 f"-> {list(y_g[k].shape)}")
            e, diff, moved_ref = sample_error(
                y[k], y_g[k], T.to(dtype=y[k].dtype), role, layouts[k],
                num_graphs)
            e_prime[k] += e
            e_paper[k] += _graph_norms(diff, layouts[k], num_graphs)
            mean_ref[k] += moved_ref
            mean_out[k] += y_g[k]
    M = float(num_samples)
    out = {}
    for k in roles.outputs:
        e = per_graph_mean(row_norms((mean_ref[k] - mean_out[k]) / M),
                           layouts[k], num_graphs)
        norm = output_norms(y[k], layouts[k], num_graphs)
        out[k] = (e, e_prime[k] / M, e_paper[k] / M, norm)
    return out, nonempty_graphs(data, layout, first.device)


def _mover(data: Data, roles: Roles, layout: BatchLayout
           ) -> Callable[[RigidTransform], Data]:
    """``T -> a copy of data with its declared inputs moved by T``, the
    inputs validated and placed once for all samples."""
    owner = 'apply_rigid_transform'
    values = declared_values(data, roles.inputs, owner)
    layouts = declared_layouts(data, roles.inputs, values, layout, owner)
    return lambda T: moved_copy(data, T, roles.inputs, values, layout,
                                owner, layouts)


def equivariance_error(
    model: Callable[[Data], Any],
    data_or_loader: Union[Data, Iterable[Data]],
    *,
    # what the group moves (as in Roles)
    roles: Optional[Roles] = None,
    output: Optional[OutputLike] = None,
    points: Optional[Keys] = None,
    vectors: Optional[Keys] = None,
    pseudovectors: Optional[Keys] = None,
    level: Optional[str] = None,
    # the group elements (as in RigidSampler)
    sampler: Optional[RigidSampler] = None,
    group: Optional[str] = None,
    translation_std: Optional[float] = None,
    axis: Optional[AxisLike] = None,
    generator: Optional[torch.Generator] = None,
    num_samples: int = 20,
) -> Union[EquivarianceError, Dict[str, EquivarianceError]]:
    r"""Measures the learned equivariance of ``model`` without labels.

    With :math:`M` group elements :math:`g_1, \dots, g_M` sampled per graph
    (the input moved by :math:`\phi(g)`, the output by :math:`\rho(g)`
    according to ``output``):

    .. math::
        E &= \mathrm{mean}_x \Big\| \frac{1}{M}\sum_i \rho(g_i) f(x)
             - \frac{1}{M}\sum_i f(\phi(g_i) x) \Big\| \\
        E' &= \mathrm{mean}_x \frac{1}{M}\sum_i
             \big\| f(\phi(g_i) x) - \rho(g_i) f(x) \big\|

    Two figures of :math:`E'` differ in the norm of a graph's output.
    :attr:`~EquivarianceError.E_prime_paper` is the paper's (Eq. 9): the
    Euclidean norm of the graph's whole output (all nodes x 3 for a
    node-level output). :attr:`~EquivarianceError.E_prime` (and :math:`E`
    and the relative figures) use a normalised norm instead: each node's
    Euclidean norm, averaged over the graph's nodes, smaller by about
    :math:`\sqrt{N}` for :math:`N`-node graphs. For graph-level outputs the
    two coincide. Values are then averaged over graphs. Graphs without
    nodes have nothing to compare and are excluded from the averages
    (:attr:`EquivarianceError.num_empty` counts them). The relative
    versions divide each graph's error by its mean output norm
    :math:`\|f(x)\|` (for point outputs this norm depends on the frame:
    centre the data for comparable figures). For
    ``output="scalar"`` both measure invariance, :math:`\rho(g) = 1`.
    An exactly equivariant model gives zeros up to rounding.

    Any callable works. A :class:`torch.nn.Module` is evaluated in
    ``eval()`` mode with its parameters' ``requires_grad`` switched off
    (both restored afterwards), and gradients are *enabled*, so that a model
    which differentiates with respect to its inputs (forces
    :math:`-\partial E / \partial x` by autograd) works while no parameter
    gradient is recorded. A model with several named outputs (``output`` a
    mapping, e.g. ``{"energy": "scalar", "forces": "vector"}``) gets one
    :class:`EquivarianceError` per output, in a dict.

    The declarations can be given as ``roles=`` (a
    :class:`~torch_geometric_remul.roles.Roles`) and ``sampler=`` (a
    :class:`~torch_geometric_remul.group.RigidSampler`), shared with the
    loss and the transforms, or with the keywords below. Without any, a
    model that declares its roles (``model.roles``, as every backbone of
    :mod:`torch_geometric_remul.nn.models` does) is measured with them.

    The sums stay on the device; the figures are read on the host once per
    call, at the end (one host-device synchronisation, whatever the number
    of batches, graphs and samples).

    All arguments but ``model`` and ``data_or_loader`` are keyword-only.

    Args:
        model (callable): ``model(data) -> Tensor``, e.g. a
            :class:`torch.nn.Module`.
        data_or_loader (Data, Batch or iterable of them): What to measure on,
            e.g. a :class:`torch_geometric.loader.DataLoader`.
        roles (Roles, optional): Instead of ``output``/``points``/
            ``vectors``/``pseudovectors``. (default: ``model.roles`` when
            the model has them and none of these is given)
        output (str or dict, optional): Role of the output: ``"point"``,
            ``"vector"``, ``"pseudovector"`` or ``"scalar"``, or a mapping
            output name -> role. (default: ``"point"``)
        points (str or [str], optional): Input point attributes.
            (default: ``"pos"``)
        vectors (str or [str], optional): Input vector attributes.
        pseudovectors (str or [str], optional): Input pseudovectors.
        level (str, optional): Row level of the model output, ``"node"`` or
            ``"graph"``, when its row count alone is ambiguous (a batch with
            as many nodes as graphs). (default: ``None``: from the shape)
        sampler (RigidSampler, optional): Instead of ``group``/
            ``translation_std``/``axis``/``generator``.
        group (str, optional): Group to sample from (see
            :meth:`~torch_geometric_remul.group.RigidTransform.sample`).
            (default: ``"SO3"``)
        translation_std (float, optional): Translation scale for groups with
            translations. (default: ``1.0``)
        axis (int, str or sequence, optional): Rotation axis for ``"SO2"``.
            (default: ``2``)
        generator (torch.Generator, optional): For reproducible draws.
        num_samples (int, optional): :math:`M`. (default: ``20``)

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
        >>> def energy_forces(data):  # any callable, forces by autograd
        ...     pos = data.pos.detach().requires_grad_()
        ...     energy = (pos - pos.mean(0)).pow(2).sum().view(1, 1)
        ...     forces = -torch.autograd.grad(energy.sum(), pos)[0]
        ...     return {'energy': energy, 'forces': forces}
        >>> errs = equivariance_error(
        ...     energy_forces, data,
        ...     output={'energy': 'scalar', 'forces': 'vector'})
        >>> errs['energy'].E_prime < 1e-12, errs['forces'].E_prime < 1e-12
        (True, True)
    """
    declared = {'points': points, 'vectors': vectors,
                'pseudovectors': pseudovectors, 'output': output}
    if roles is None and all(v is None for v in declared.values()) and \
            isinstance(getattr(model, 'roles', None), Roles):
        roles = model.roles  # the model's own declaration
    roles = Roles.resolve(roles, 'equivariance_error', **declared)
    sampler = RigidSampler.resolve(sampler, 'equivariance_error',
                                   group=group,
                                   translation_std=translation_std,
                                   axis=axis, generator=generator)
    check_level(level)
    if not callable(model):
        raise TypeError(f"'model' must be callable: model(data) -> Tensor "
                        f"(got {type(model).__name__})")
    num_samples = check_int(num_samples, 'num_samples', minimum=1)
    # one Data/Batch, or an iterable of them (a HeteroData is refused by
    # check_data, not iterated over its stores)
    batches = [data_or_loader] if isinstance(data_or_loader,
                                             BaseData) else data_or_loader
    # a Module is evaluated in eval mode with its parameters frozen (so that
    # a model differentiating w.r.t. its inputs, e.g. forces = -dE/dpos,
    # works, and no parameter gradient is recorded); both are restored
    is_module = isinstance(model, torch.nn.Module)
    was_training = model.training if is_module else None
    frozen = [p for p in model.parameters() if p.requires_grad] \
        if is_module else []
    if is_module:
        model.eval()
    # per output: [E, E', E_rel, E'_rel, E'_paper, graphs with nodes,
    # empty graphs],
    # kept on the device until the single read at the end
    sums = None
    try:
        for p in frozen:
            p.requires_grad_(False)
        with torch.enable_grad():
            for data in batches:
                per_output, keep = _batch_errors(model, data, roles, sampler,
                                                 num_samples, level)
                w = keep.to(torch.float64)
                rows = []
                for e, ep, paper, norm in per_output.values():
                    norm = norm.clamp(min=torch.finfo(norm.dtype).tiny)
                    e, ep, norm = e.double(), ep.double(), norm.double()
                    rows.append(torch.stack([
                        (e * w).sum(), (ep * w).sum(), (e / norm * w).sum(),
                        (ep / norm * w).sum(), (paper.double() * w).sum(),
                        w.sum(), (1 - w).sum()]))
                part = torch.stack(rows)
                sums = part if sums is None else sums + part.to(sums.device)
    finally:
        for p in frozen:
            p.requires_grad_(True)
        if is_module:
            model.train(was_training)
    if sums is None:
        raise ValueError("'data_or_loader' holds no graph")
    results = {}
    for k, row in zip(roles.outputs, sums.tolist()):  # the one host read
        E, Ep, Er, Epr, Epp, count, empty = row
        count, empty = int(round(count)), int(round(empty))
        if count == 0:
            raise ValueError(f"'data_or_loader' holds no graph with nodes "
                             f"({empty} empty graph(s)): there is no output "
                             f"to measure")
        results[k] = EquivarianceError(
            E=E / count, E_prime=Ep / count, E_rel=Er / count,
            E_prime_rel=Epr / count, E_prime_paper=Epp / count,
            num_graphs=count, num_empty=empty)
    return results if roles.multi_output else results['output']
