r"""The REMUL loss: task loss plus a learned-equivariance penalty."""
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor
from torch_geometric.data import Data

from torch_geometric_remul._checks import check_int
from torch_geometric_remul.batching.layout import (
    BatchLayout,
    RowLayout,
    act,
    batch_layout,
    check_level,
    nonempty_graphs,
    output_layout,
)
from torch_geometric_remul.debug import is_debug_enabled
from torch_geometric_remul.group import RigidSampler, RigidTransform
from torch_geometric_remul.group.rotations import AxisLike
from torch_geometric_remul.metrics.equivariance import (
    output_norms,
    sample_error,
)
from torch_geometric_remul.nn._fuse import concat_copies
from torch_geometric_remul.nn.weighting import Constant, Weighting
from torch_geometric_remul.nn.weighting.base import WeightLike, check_weight
from torch_geometric_remul.roles import DeclaredGeometry, OutputLike, Roles
from torch_geometric_remul.transforms.functional import (
    declared_layouts,
    declared_values,
    moved_copy,
)
from torch_geometric_remul.typing import Keys

LossFn = Callable[[Tensor, Tensor], Tensor]
LossLike = Union[LossFn, Mapping[str, LossFn]]
OutputValue = Union[Tensor, Dict[str, Tensor]]
TargetLike = Union[Tensor, Mapping[str, Tensor]]
MODES = ('target', 'consistency')


def _per_output(fn: LossLike, names: List[str], what: str,
                multi: bool) -> Dict[str, LossFn]:
    """One loss function per output name (a mapping, or one for all)."""
    if isinstance(fn, Mapping):
        if not multi:
            raise TypeError(f"'{what}' may be a mapping only when 'output' "
                            f"is (one loss per named output)")
        missing = [k for k in names if k not in fn]
        extra = [k for k in fn if k not in names]
        if missing or extra:
            raise ValueError(f"'{what}' must have the keys {sorted(names)} "
                             f"(missing {missing}, unknown {extra})")
        fns = {k: fn[k] for k in names}
    else:
        fns = {k: fn for k in names}
    for k, f in fns.items():
        if not callable(f):
            where = f"'{what}'" if not multi else f"'{what}'[{k!r}]"
            raise TypeError(f"{where} must be callable (input, target) -> "
                            f"loss")
    return fns


def _output_weights(weights, names: List[str], multi: bool
                    ) -> Dict[str, float]:
    if weights is None:
        return {k: 1.0 for k in names}
    if not multi:
        raise ValueError("'output_weights' needs several named outputs "
                         "('output' as a mapping); for one output use "
                         "'alpha'/'beta'")
    if not isinstance(weights, Mapping):
        raise TypeError(f"'output_weights' must be a mapping output name -> "
                        f"weight (got {type(weights).__name__})")
    unknown = [k for k in weights if k not in names]
    if unknown:
        raise ValueError(f"'output_weights' names unknown output(s) "
                         f"{unknown} (declared: {sorted(names)})")
    return {k: check_weight(weights.get(k, 1.0), 'output_weights',
                            label=f"'output_weights[{k!r}]'")
            for k in names}


@dataclass
class RemulOutput:
    r"""What :class:`RemulLoss` returns.

    Example:

        >>> from torch_geometric.data import Data
        >>> data = Data(pos=torch.randn(5, 3))
        >>> def model(data):  # rotation-equivariant, but a poor fit of y
        ...     return 2 * data.pos
        >>> out = RemulLoss(group='SO3')(model, data, data.pos)
        >>> out.alpha, out.beta
        (1.0, 1.0)
        >>> # equivariant model: the moved output fits the moved target as
        >>> # well as the output fits the target, and E' is 0
        >>> torch.allclose(out.task, out.equi)
        True
        >>> float(out.error['absolute']) < 1e-5
        True
    """
    #: :math:`\alpha L_\mathrm{task} + \beta L_\mathrm{equi}`, to
    #: backpropagate.
    loss: Tensor
    #: Task loss on the clean input (``None`` when not computed: ``alpha`` is
    #: 0 in ``"target"`` mode, i.e. plain data augmentation).
    task: Optional[Tensor]
    #: Equivariance loss, averaged over the ``num_samples`` group elements.
    equi: Tensor
    #: Weight of the task loss used for this step; a Python float for
    #: :class:`~torch_geometric_remul.nn.weighting.Constant` and
    #: :class:`~torch_geometric_remul.nn.weighting.Schedule`, a 0-dim tensor
    #: for weightings that learn on the device (``GradNorm``). Reading a
    #: tensor (``float(out.alpha)``) waits for the device: do it only where
    #: you log.
    alpha: WeightLike
    #: Weight of the equivariance loss used for this step (a float or a
    #: 0-dim tensor, as :attr:`alpha`; a tensor for ``GradNorm`` and
    #: ``TargetEquivariance``).
    beta: WeightLike
    #: This batch's :math:`E'` (``{'absolute', 'relative'}``, detached
    #: 0-dim tensors, averaged over the graphs that have nodes), when the
    #: clean prediction was computed. For a multi-output model the two
    #: figures are averaged over the outputs, and each output's are under
    #: ``"absolute/<name>"`` and ``"relative/<name>"``.
    error: Optional[Dict[str, Tensor]] = None
    #: The model's output on the clean batch (``None`` when not computed;
    #: a dict for a multi-output model).
    prediction: Optional[OutputValue] = None
    #: For a multi-output model, each output's detached losses, keyed
    #: ``"task/<name>"`` and ``"equi/<name>"`` (before ``output_weights``).
    parts: Optional[Dict[str, Tensor]] = None


def _term(fn: LossFn, input: Tensor, target: Tensor) -> Tensor:
    """``fn(input, target)``, or ``0`` with a zero gradient when ``input``
    has no rows (e.g. node-level outputs of a batch whose graphs all have
    no nodes), where a mean over nothing would give NaN. Decided from the
    shape: nothing is read on the host."""
    if input.numel() == 0:
        return input.sum()
    return fn(input, target)


def _weighted(weight: WeightLike, loss: Tensor) -> Tensor:
    """``weight * loss``; a tensor weight is cast to the loss's dtype (a
    0-dim host tensor multiplies a device tensor without a copy)."""
    if isinstance(weight, Tensor):
        weight = weight.to(dtype=loss.dtype)
        if weight.device != loss.device and weight.device.type != 'cpu':
            weight = weight.to(loss.device)
    return weight * loss


class RemulLoss(DeclaredGeometry, torch.nn.Module):
    r"""REMUL (Elhag et al., arXiv 2410.17878): trains any model to be
    approximately equivariant with the loss

    .. math::
        L = \alpha\, \ell(f(x), y) + \beta\, L_\mathrm{equi},

    where one group element :math:`g` per graph (per sample) moves the
    declared input attributes, :math:`\phi(g) x`, and

    * ``mode="target"`` (the paper):
      :math:`L_\mathrm{equi} = \ell(f(\phi(g) x), \rho(g) y)`;
    * ``mode="consistency"`` (label-free):
      :math:`L_\mathrm{equi} = \ell(f(\phi(g) x), \rho(g) f(x))`, with
      gradients through :math:`f(x)` stopped by default.

    :math:`\rho(g)` acts on the target/output according to ``output``:
    points :math:`R y + t`, vectors :math:`R y`, scalars unchanged. A model
    may return several named outputs: declare ``output`` as a mapping name
    -> role (e.g. ``{"energy": "scalar", "forces": "vector"}``), pass the
    target as a mapping with the same keys, and optionally one task loss per
    output (``task_loss`` a mapping) and per-output weights
    (``output_weights``, e.g. energy 1 and forces 100); the task and
    equivariance losses are then the weighted sums over the outputs, and
    :attr:`RemulOutput.parts` holds each output's terms. Models that compute
    forces as :math:`-\partial E/\partial x` by autograd (with
    ``create_graph=True`` while training) work on the clean and the moved
    copies, fused or not. All group
    actions go through :class:`~torch_geometric_remul.group.RigidTransform`.
    Targets and outputs may be node-level (``[N, ...]``) or graph-level
    (``[B, ...]``); graphs of a batch may differ in size. The batch is never
    modified.

    ``fused=True`` runs the model once on the clean and transformed graphs
    concatenated into one batch (faster for small graphs; the only option
    under :class:`~torch.nn.parallel.DistributedDataParallel`, which expects
    one forward per backward). Without stochastic layers (dropout) or batch
    statistics (BatchNorm in training mode) it gives the same numbers as the
    unfused path.

    Weights come from ``weighting`` (a
    :class:`~torch_geometric_remul.nn.weighting.Weighting`), or are the
    constants ``alpha`` and ``beta``. Adaptive weightings learn only in
    training mode (``loss_fn.train()``, the default) with gradients enabled;
    their state is part of ``state_dict()``.

    A batch whose graphs all have no nodes (every graph empty) gives a
    loss of ``0`` with a zero gradient, not NaN: a task or equivariance term
    whose output has no rows is ``0`` (decided from its shape, with no
    host read), as there is nothing to fit; its :attr:`RemulOutput.error`
    is ``0`` too. A batch of no graphs at all is refused
    (:class:`ValueError`).

    A step makes no host-device synchronisation (it never reads a tensor
    value on the host): whether the task loss is computed is decided from
    the configuration (it is skipped only when ``alpha`` is the Python
    number ``0``, e.g. ``Constant(0.0, beta)``), adaptive weights stay on
    the device (:attr:`RemulOutput.alpha`/``beta`` may be 0-dim tensors),
    and checks that read values run only in debug mode
    (:func:`torch_geometric_remul.debug`).

    Which rows of the target and of the model output belong to which graph
    is read from the Batch's collation metadata when the target is a
    collated attribute (``target=batch.y``), otherwise from ``level``, or
    from the row count when only one layout fits (a count that matches
    both the number of nodes and of graphs is an error that asks for
    ``level``).

    All arguments but ``task_loss`` are keyword-only.

    Args:
        task_loss (callable or dict, optional): :math:`\ell(\text{input},
            \text{target})`, or one per named output.
            (default: :class:`torch.nn.MSELoss`)
        roles (Roles, optional): The declarations (inputs and outputs) as
            one :class:`~torch_geometric_remul.roles.Roles`, shared with the
            transforms and the metrics, instead of ``output``/``points``/
            ``vectors``/``pseudovectors``. (default: when none of these is
            given, the roles of the model the loss is called with if it
            declares them as ``model.roles``, as every backbone of
            :mod:`torch_geometric_remul.nn.models` does; else ``Roles()``)
        output (str or dict, optional): Role of the model output and
            target: ``"point"``, ``"vector"``, ``"pseudovector"`` or
            ``"scalar"``, or a mapping output name -> role.
            (default: ``"point"``)
        points (str or [str], optional): Input point attributes.
            (default: ``"pos"``)
        vectors (str or [str], optional): Input vector attributes (e.g.
            ``"vel"``).
        pseudovectors (str or [str], optional): Input pseudovectors.
        level (str, optional): Row level of the target and the model
            output, ``"node"``, ``"graph"`` (or ``"edge"``), for tensors
            that are not collated attributes of the batch; needed only when
            the row count is ambiguous (as many nodes as graphs).
            (default: ``None``: from the collation metadata or the shape)
        sampler (RigidSampler, optional): The group as one
            :class:`~torch_geometric_remul.group.RigidSampler`, instead of
            ``group``/``translation_std``/``axis``/``generator``.
        group (str, optional): ``"SO3"``, ``"O3"``, ``"SE3"``, ``"E3"``,
            ``"SO2"`` or ``"T3"``. (default: ``"SO3"``, the package's one
            default, :data:`~torch_geometric_remul.group.DEFAULT_GROUP`)
        translation_std (float, optional): Translation scale for groups with
            translations. (default: ``1.0``)
        axis (int, str or sequence, optional): Axis for ``"SO2"``.
        generator (torch.Generator, optional): Source of randomness.
        num_samples (int, optional): Group elements per graph and step.
            (default: ``1``)
        mode (str, optional): ``"target"`` or ``"consistency"``.
            (default: ``"target"``)
        alpha (float, optional): Constant task weight. (default: ``1.0``)
        beta (float, optional): Constant equivariance weight.
            (default: ``1.0``)
        weighting (Weighting, optional): Adaptive weights; replaces
            ``alpha``/``beta``.
        equi_loss (callable, optional): :math:`\ell` of the equivariance term
            (default: ``task_loss``).
        output_weights (dict, optional): Weight of each named output in the
            task and equivariance losses. (default: ``1`` each)
        fused (bool, optional): One forward pass for all copies.
            (default: ``False``)
        detach_reference (bool, optional): In ``"consistency"`` mode, stop
            gradients through :math:`f(x)`. (default: ``True``)
        check_finite (bool, optional): In debug mode
            (:func:`torch_geometric_remul.debug`), raise
            :class:`FloatingPointError` on a non-finite loss. The check reads
            the loss on the host, so it is skipped outside debug mode; a
            training loop should keep its own device-side non-finite flag
            and read it where it logs. (default: ``True``)

    Example:

        >>> from torch_geometric.data import Batch, Data
        >>> class Model(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.lin = torch.nn.Linear(6, 3)
        ...     def forward(self, data):
        ...         x = torch.cat([data.pos, data.vel], -1)
        ...         return data.pos + self.lin(x)
        >>> batch = Batch.from_data_list([
        ...     Data(pos=torch.randn(n, 3), vel=torch.randn(n, 3),
        ...          y=torch.randn(n, 3)) for n in (4, 6)])
        >>> loss_fn = RemulLoss(vectors='vel', group='SE3', beta=1.0)
        >>> out = loss_fn(Model(), batch, batch.y)
        >>> out.loss.backward()
        >>> bool(out.equi > 0)
        True
    """
    def __init__(
        self,
        task_loss: Optional[LossLike] = None,
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
        num_samples: int = 1,
        # the objective
        mode: str = 'target',
        alpha: float = 1.0,
        beta: float = 1.0,
        weighting: Optional[Weighting] = None,
        equi_loss: Optional[LossLike] = None,
        output_weights: Optional[Mapping[str, float]] = None,
        # how it runs
        fused: bool = False,
        detach_reference: bool = True,
        check_finite: bool = True,
    ):
        super().__init__()
        owner = self.__class__.__name__
        declared = dict(points=points, vectors=vectors,
                        pseudovectors=pseudovectors, output=output)
        # nothing declared: the model's own roles, if it has them, at the
        # first call (see _adopt_model_roles)
        self._roles_from_model = roles is None and all(
            v is None for v in declared.values())
        self._loss_args = (task_loss, equi_loss, output_weights)
        self._set_roles(Roles.resolve(roles, owner, **declared))
        self.sampler = RigidSampler.resolve(
            sampler, owner, group=group, translation_std=translation_std,
            axis=axis, generator=generator)
        if mode not in MODES:
            raise ValueError(f"'mode' must be one of {', '.join(MODES)} "
                             f"(got {mode!r})")
        self.mode = mode
        self.num_samples = check_int(num_samples, 'num_samples', minimum=1)
        if weighting is None:
            weighting = Constant(alpha, beta)
        elif not isinstance(weighting, Weighting):
            raise TypeError(f"'weighting' must be a Weighting (Constant, "
                            f"Schedule, GradNorm, TargetEquivariance), got "
                            f"{type(weighting).__name__}")
        elif (alpha, beta) != (1.0, 1.0):
            raise ValueError("pass 'alpha'/'beta' either as constants or to "
                             "the weighting, not both")
        self.weighting = weighting
        self.fused = bool(fused)
        self.detach_reference = bool(detach_reference)
        self.check_finite = bool(check_finite)
        self.level = check_level(level)

    # the declarations, readable as attributes (with DeclaredGeometry's)
    output = property(lambda self: self.roles.output)
    #: the task loss of a single-output set-up
    task_loss = property(lambda self: next(iter(self.task_losses.values())))
    equi_loss = property(lambda self: next(iter(self.equi_losses.values())))

    # Helpers ###############################################################

    def _set_roles(self, roles: Roles) -> None:
        task_loss, equi_loss, output_weights = self._loss_args
        names, multi = list(roles.outputs), roles.multi_output
        self.task_losses = _per_output(
            task_loss if task_loss is not None else torch.nn.MSELoss(),
            names, 'task_loss', multi)
        self.equi_losses = (self.task_losses if equi_loss is None else
                            _per_output(equi_loss, names, 'equi_loss',
                                        multi))
        self.output_weights = _output_weights(output_weights, names, multi)
        self.roles = roles

    def _adopt_model_roles(self, model) -> None:
        # a loss built without a declaration takes the model's (unwrapped
        # from DistributedDataParallel), as the metrics do
        declared = getattr(getattr(model, 'module', model), 'roles', None)
        if isinstance(declared, Roles) and declared is not self.roles:
            self._set_roles(declared)

    def _transforms(self, transforms, num_graphs: int, dtype,
                    device) -> List[RigidTransform]:
        if transforms is None:
            return [self.sampler.sample(num_graphs, dtype=dtype,
                                        device=device)
                    for _ in range(self.num_samples)]
        if isinstance(transforms, RigidTransform):
            transforms = [transforms]
        transforms = list(transforms)
        if len(transforms) != self.num_samples or not all(
                isinstance(T, RigidTransform) for T in transforms):
            raise ValueError(f"'transforms' must be {self.num_samples} "
                             f"RigidTransform(s), one per sample")
        for T in transforms:
            if T.num_graphs != num_graphs:
                raise ValueError(f"'transforms' must hold one element per "
                                 f"graph ({num_graphs}), got "
                                 f"{T.num_graphs}")
        return [T.to(dtype=dtype, device=device) for T in transforms]

    def _target_dict(self, target) -> Optional[Dict[str, Tensor]]:
        return None if target is None else self.roles.named(target,
                                                             "'target'")

    def _name(self, what: str, key: str) -> str:
        return what if not self.roles.multi_output else f"{what}[{key!r}]"

    def _check_target(self, key: str, target: Tensor, role: str,
                      batch: Data, layout: BatchLayout, dtype, device,
                      source: str) -> RowLayout:
        name = self._name("'target'", key)
        if role != 'scalar':
            if target.dim() != 2 or target.size(-1) != 3:
                raise ValueError(f"{name} must have shape [rows, 3] for "
                                 f"role '{role}' (got {list(target.shape)})")
            # the target moves with the batch: same dtype and device
            if target.dtype != dtype:
                raise TypeError(
                    f"{name} has dtype {target.dtype} but must be {dtype}, "
                    f"the dtype of {source}: a '{role}' target is moved by "
                    f"the same group elements (convert it, e.g. "
                    f"target.to({dtype}))")
            if device is not None and target.device != device:
                raise ValueError(f"{name} is on {target.device} but "
                                 f"{source} is on {device}")
        return output_layout(batch, target, name, self.level,
                             self.__class__.__name__, layout=layout)

    def _output_dict(self, y, which: str) -> Dict[str, Tensor]:
        return self.roles.named(y, f'the model output on the {which} batch')

    def _check_outputs(self, y: Dict[str, Tensor], shapes, which: str,
                       dtype, source: str) -> None:
        for key, role in self.roles.outputs.items():
            name = ('the model output' if not self.roles.multi_output else
                    f'the model output {key!r}')
            v = y[key]
            if shapes is not None and v.shape != shapes[key]:
                raise ValueError(f"{name} on the {which} batch has shape "
                                 f"{list(v.shape)} but "
                                 f"{list(shapes[key])} was expected (the "
                                 f"target's shape)")
            if role != 'scalar' and v.dtype != dtype:
                raise TypeError(f"{name} on the {which} batch has dtype "
                                f"{v.dtype} but must be {dtype}, the dtype "
                                f"of {source} (a '{role}' output is moved "
                                f"by the same group elements)")

    def _forward_model(self, model, batch: Data, moved: List[Data],
                       need_clean: bool):
        if not self.fused:
            clean = (self._output_dict(model(batch), 'clean')
                     if need_clean else None)
            return clean, [self._output_dict(model(m), 'transformed')
                           for m in moved]
        copies = ([batch] if need_clean else []) + moved
        K = len(copies)
        out = self._output_dict(model(concat_copies(copies)), 'fused')
        chunks = {}
        for key, value in out.items():
            if value.dim() == 0 or value.size(0) % K != 0:
                raise ValueError(
                    f"the model output {key!r} on the fused batch has "
                    f"shape {list(value.shape)}, whose rows are not a "
                    f"multiple of the {K} stacked copies")
            chunks[key] = value.chunk(K, dim=0)
        parts = [{k: chunks[k][i] for k in out} for i in range(K)]
        clean = parts.pop(0) if need_clean else None
        return clean, parts

    # Forward ###############################################################

    def forward(self, model: Callable[[Data], OutputValue], batch: Data,
                target: Optional[TargetLike] = None,
                transforms: Optional[Sequence[RigidTransform]] = None
                ) -> RemulOutput:
        r"""Computes the loss for one batch.

        Args:
            model (callable): ``model(data) -> Tensor``, or a mapping of
                named tensors when ``output`` is a mapping.
            batch (Data or Batch): The clean input.
            target (torch.Tensor or dict, optional): Node- or graph-level
                target (a mapping with the declared output names for a
                multi-output model). Required in ``"target"`` mode and
                whenever the task loss is computed.
            transforms (RigidTransform or [RigidTransform], optional): Use
                these group elements (one per graph, ``num_samples`` of them)
                instead of sampling.
        """
        owner = self.__class__.__name__
        # which node belongs to which graph: resolved once for the call
        layout = batch_layout(batch, owner)
        B = layout.num_graphs
        if not callable(model):
            raise TypeError("'model' must be callable: model(data) -> Tensor")
        if self._roles_from_model:
            self._adopt_model_roles(model)
        alpha, beta = self.weighting.weights()
        # decided from the configuration, never by reading a tensor: only a
        # Python-number alpha of 0 (e.g. Constant(0, beta)) skips the task
        alpha_is_zero = not isinstance(alpha, Tensor) and alpha == 0
        need_task = not alpha_is_zero or self.weighting.needs_clean
        need_clean = need_task or self.mode == 'consistency'
        if target is None and (self.mode == 'target' or need_task):
            raise ValueError(
                "'target' is required (mode='target', or alpha > 0); for "
                "label-free training use mode='consistency' with alpha=0")
        targets = self._target_dict(target)
        dtype, device, source = self._reference(batch, targets)
        roles = self.roles.outputs
        layouts = {}
        if targets is not None:
            layouts = {k: self._check_target(k, targets[k], roles[k], batch,
                                             layout, dtype, device, source)
                       for k in roles}

        Ts = self._transforms(transforms, B, dtype, device)
        # the declared inputs, validated and placed once for all samples
        inputs, mover = self.roles.inputs, 'apply_rigid_transform'
        values = declared_values(batch, inputs, mover)
        in_layouts = declared_layouts(batch, inputs, values, layout, mover)
        moved = [moved_copy(batch, T, inputs, values, layout, mover,
                            in_layouts) for T in Ts]

        clean, transformed = self._forward_model(model, batch, moved,
                                                 need_clean)
        shapes = ({k: t.shape for k, t in targets.items()}
                  if targets is not None else None)
        if clean is not None:
            self._check_outputs(clean, shapes, 'clean', dtype, source)
            shapes = {k: v.shape for k, v in clean.items()}
        for y_g in transformed:
            self._check_outputs(y_g, shapes, 'transformed', dtype, source)
        for k in roles:
            if k not in layouts:
                layouts[k] = output_layout(
                    batch, transformed[0][k],
                    self._name('the model output', k), self.level, owner,
                    layout=layout)

        parts, task, equi = self._terms(targets, clean, transformed, Ts,
                                        layouts, need_task)
        error = None
        if clean is not None:
            error = self._batch_error(batch, clean, transformed, Ts,
                                      layouts, layout)
        loss = _weighted(beta, equi)
        if task is not None:
            loss = _weighted(alpha, task) + loss
        if self.check_finite and is_debug_enabled():
            self._debug_check_finite(loss, task, equi, alpha, beta)
        if self.training and torch.is_grad_enabled():
            self.weighting.update(task, equi, error)
        prediction = clean
        if clean is not None and not self.roles.multi_output:
            prediction = clean['output']
        return RemulOutput(
            loss=loss, task=task, equi=equi, alpha=alpha, beta=beta,
            error=error, prediction=prediction,
            parts=({k: v.detach() for k, v in parts.items()}
                   if self.roles.multi_output else None))

    def _reference(self, batch: Data, targets: Optional[Dict[str, Tensor]]):
        r"""``(dtype, device, source)`` that the outputs, targets and group
        elements must match: those of the first declared input in the
        batch, else of the targets (device unknown)."""
        found = self.roles.reference_input(batch)
        if found is not None:
            ref_key, ref = found
            return ref.dtype, ref.device, f"the batch ('data.{ref_key}')"
        floats = [t for t in (targets or {}).values()
                  if t.is_floating_point()]
        dtype = floats[0].dtype if floats else torch.get_default_dtype()
        return dtype, None, 'the group elements'

    def _terms(self, targets, clean, transformed, Ts, layouts,
               need_task: bool):
        r"""``(parts, task, equi)``: the per-output task and equivariance
        terms and their (weighted) sums."""
        parts: Dict[str, Tensor] = {}
        task = None
        roles = self.roles.outputs
        if need_task:
            for k in roles:
                parts[f'task/{k}'] = _term(self.task_losses[k], clean[k],
                                           targets[k])
            task = self._combine(parts, 'task')
        base = targets if self.mode == 'target' else {
            k: (v.detach() if self.detach_reference else v)
            for k, v in clean.items()}
        for k, role in roles.items():
            refs = [act(T, base[k], role, layouts[k]) for T in Ts]
            parts[f'equi/{k}'] = torch.stack([
                _term(self.equi_losses[k], y_g[k], r)
                for y_g, r in zip(transformed, refs)]).mean()
        return parts, task, self._combine(parts, 'equi')

    def _combine(self, parts: Dict[str, Tensor], kind: str) -> Tensor:
        """The (weighted) sum over outputs of one kind of loss."""
        total = None
        for k in self.roles.outputs:
            term = parts[f'{kind}/{k}']
            w = self.output_weights[k]
            term = term if w == 1.0 else w * term
            total = term if total is None else total + term
        return total

    @staticmethod
    def _debug_check_finite(loss: Tensor, task: Optional[Tensor],
                            equi: Tensor, alpha, beta) -> None:
        if loss.device.type == 'meta' or bool(torch.isfinite(
                loss.detach()).all()):
            return
        parts = {'task': task, 'equi': equi}
        bad = [k for k, v in parts.items()
               if v is not None and not bool(torch.isfinite(v.detach()).all())]
        raise FloatingPointError(
            f"RemulLoss: non-finite loss ({loss.detach().tolist()}); "
            f"non-finite parts: {', '.join(bad) or 'weights'} "
            f"(alpha={float(alpha)}, beta={float(beta)}). Check the learning "
            f"rate and the inputs.")

    @torch.no_grad()
    def _batch_error(self, batch: Data, clean: Dict[str, Tensor],
                     transformed: List[Dict[str, Tensor]],
                     Ts: List[RigidTransform],
                     layouts: Dict[str, RowLayout], layout: BatchLayout):
        # E' over the graphs that have nodes (an empty graph has no error to
        # measure); the count stays on the device. Several outputs: the
        # figures are averaged over them, and given per output too.
        per_output = {}
        B = layout.num_graphs
        for k, role in self.roles.outputs.items():
            y = clean[k].detach()
            keep = nonempty_graphs(batch, layout, y.device).to(y.dtype)
            count = keep.sum().clamp(min=1)
            norm = output_norms(y, layouts[k], B).clamp(
                min=torch.finfo(y.dtype).tiny)
            e = y.new_zeros(B)
            for y_g, T in zip(transformed, Ts):
                e = e + sample_error(y, y_g[k].detach(), T, role,
                                     layouts[k], B)[0]
            e = e * keep / len(Ts)
            per_output[k] = {'absolute': e.sum() / count,
                             'relative': (e / norm).sum() / count}
        if not self.roles.multi_output:
            return per_output['output']
        n = len(per_output)
        error = {key: sum(v[key] for v in per_output.values()) / n
                 for key in ('absolute', 'relative')}
        for k, v in per_output.items():
            error[f'absolute/{k}'] = v['absolute']
            error[f'relative/{k}'] = v['relative']
        return error

    def extra_repr(self) -> str:
        args = [f'output={self.output!r}', f'points={list(self.points)}']
        if self.roles.multi_output and any(
                w != 1.0 for w in self.output_weights.values()):
            args.append(f'output_weights={self.output_weights}')
        if self.level is not None:
            args.append(f'level={self.level!r}')
        if self.vectors:
            args.append(f'vectors={list(self.vectors)}')
        if self.pseudovectors:
            args.append(f'pseudovectors={list(self.pseudovectors)}')
        args += [f'group={self.group!r}', f'mode={self.mode!r}']
        if self.num_samples != 1:
            args.append(f'num_samples={self.num_samples}')
        if self.fused:
            args.append('fused=True')
        return ', '.join(args)
