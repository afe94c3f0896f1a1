r"""The REMUL loss: task loss plus a learned-equivariance penalty."""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor
from torch_geometric.data import Data

from torch_geometric_remul.debug import is_debug_enabled
from torch_geometric_remul.group import GROUPS, RigidTransform
from torch_geometric_remul.group.rotations import AxisLike, normalize_group
from torch_geometric_remul.layout import RowLayout, check_data, graph_layout
from torch_geometric_remul.metrics.roles import (act, check_level,
                                                 check_role, nonempty_graphs,
                                                 output_layout,
                                                 per_graph_mean, row_norms)
from torch_geometric_remul.nn._fuse import concat_copies
from torch_geometric_remul.nn.weighting import Constant, Weighting
from torch_geometric_remul.nn.weighting.base import WeightLike
from torch_geometric_remul.transforms._roles import (as_key_tuple,
                                                     check_disjoint)
from torch_geometric_remul.transforms.functional import apply_rigid_transform

Keys = Union[str, Sequence[str]]
LossFn = Callable[[Tensor, Tensor], Tensor]
MODES = ('target', 'consistency')


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
    #: :math:`\alpha L_\mathrm{task} + \beta L_\mathrm{equi}`, to backpropagate.
    loss: Tensor
    #: Task loss on the clean input (``None`` when not computed: ``alpha`` is
    #: 0 in ``"target"`` mode, i.e. plain data augmentation).
    task: Optional[Tensor]
    #: Equivariance loss, averaged over the ``num_samples`` group elements.
    equi: Tensor
    #: Weight of the task loss used for this step: a Python float for
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
    #: clean prediction was computed.
    error: Optional[Dict[str, Tensor]] = None
    #: The model's output on the clean batch (``None`` when not computed).
    prediction: Optional[Tensor] = None


def _weighted(weight: WeightLike, loss: Tensor) -> Tensor:
    """``weight * loss``; a tensor weight is cast to the loss's dtype (a
    0-dim host tensor multiplies a device tensor without a copy)."""
    if isinstance(weight, Tensor):
        weight = weight.to(dtype=loss.dtype)
        if weight.device != loss.device and weight.device.type != 'cpu':
            weight = weight.to(loss.device)
    return weight * loss


class RemulLoss(torch.nn.Module):
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
    points :math:`R y + t`, vectors :math:`R y`, scalars unchanged. All group
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

    Args:
        task_loss (callable, optional): :math:`\ell(\text{input}, \text{target})`.
            (default: :class:`torch.nn.MSELoss`)
        output (str, optional): Role of the model output and target:
            ``"point"``, ``"vector"``, ``"pseudovector"`` or ``"scalar"``.
            (default: ``"point"``)
        points (str or [str], optional): Input point attributes.
            (default: ``"pos"``)
        vectors (str or [str], optional): Input vector attributes (e.g.
            ``"vel"``).
        pseudovectors (str or [str], optional): Input pseudovectors.
        group (str, optional): ``"SO3"``, ``"O3"``, ``"SE3"``, ``"E3"``,
            ``"SO2"`` or ``"T3"``. (default: ``"SO3"``)
        alpha (float, optional): Constant task weight. (default: ``1.0``)
        beta (float, optional): Constant equivariance weight.
            (default: ``1.0``)
        mode (str, optional): ``"target"`` or ``"consistency"``.
            (default: ``"target"``)
        num_samples (int, optional): Group elements per graph and step.
            (default: ``1``)
        weighting (Weighting, optional): Adaptive weights; replaces
            ``alpha``/``beta``.
        fused (bool, optional): One forward pass for all copies.
            (default: ``False``)
        translation_std (float, optional): Translation scale for groups with
            translations. (default: ``1.0``)
        axis (int, str or sequence, optional): Axis for ``"SO2"``.
        generator (torch.Generator, optional): Source of randomness.
        equi_loss (callable, optional): :math:`\ell` of the equivariance term
            (default: ``task_loss``).
        detach_reference (bool, optional): In ``"consistency"`` mode, stop
            gradients through :math:`f(x)`. (default: ``True``)
        check_finite (bool, optional): In debug mode
            (:func:`torch_geometric_remul.debug`), raise
            :class:`FloatingPointError` on a non-finite loss. The check reads
            the loss on the host, so it is skipped outside debug mode; a
            training loop should keep its own device-side non-finite flag
            and read it where it logs. (default: ``True``)
        level (str, optional): Row level of the target and the model
            output, ``"node"``, ``"graph"`` (or ``"edge"``), for tensors
            that are not collated attributes of the batch; needed only when
            the row count is ambiguous (as many nodes as graphs).
            (default: ``None``: from the collation metadata or the shape)

    Example:

        >>> from torch_geometric.data import Batch, Data
        >>> class Model(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.lin = torch.nn.Linear(6, 3)
        ...     def forward(self, data):
        ...         return data.pos + self.lin(torch.cat([data.pos, data.vel], -1))
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
        task_loss: Optional[LossFn] = None,
        output: str = 'point',
        points: Keys = ('pos', ),
        vectors: Keys = (),
        pseudovectors: Keys = (),
        group: str = 'SO3',
        alpha: float = 1.0,
        beta: float = 1.0,
        mode: str = 'target',
        num_samples: int = 1,
        weighting: Optional[Weighting] = None,
        fused: bool = False,
        translation_std: float = 1.0,
        axis: AxisLike = 2,
        generator: Optional[torch.Generator] = None,
        equi_loss: Optional[LossFn] = None,
        detach_reference: bool = True,
        check_finite: bool = True,
        level: Optional[str] = None,
    ):
        super().__init__()
        self.task_loss = task_loss if task_loss is not None else \
            torch.nn.MSELoss()
        self.equi_loss = equi_loss if equi_loss is not None else \
            self.task_loss
        for name, fn in (('task_loss', self.task_loss),
                         ('equi_loss', self.equi_loss)):
            if not callable(fn):
                raise TypeError(f"'{name}' must be callable (input, target) "
                                f"-> loss")
        self.output = check_role(output)
        self.points = as_key_tuple(points, 'points')
        self.vectors = as_key_tuple(vectors, 'vectors')
        self.pseudovectors = as_key_tuple(pseudovectors, 'pseudovectors')
        check_disjoint(points=self.points, vectors=self.vectors,
                       pseudovectors=self.pseudovectors)
        self.group = normalize_group(group, tuple(GROUPS))
        if mode not in MODES:
            raise ValueError(f"'mode' must be one of {', '.join(MODES)} "
                             f"(got {mode!r})")
        self.mode = mode
        if isinstance(num_samples, bool) or not isinstance(
                num_samples, int) or num_samples < 1:
            raise ValueError(f"'num_samples' must be a positive int (got "
                             f"{num_samples!r})")
        self.num_samples = num_samples
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
        if translation_std < 0:
            raise ValueError(f"'translation_std' must be >= 0 "
                             f"(got {translation_std})")
        self.translation_std = float(translation_std)
        self.axis = axis
        self.generator = generator
        self.fused = bool(fused)
        self.detach_reference = bool(detach_reference)
        self.check_finite = bool(check_finite)
        self.level = check_level(level)

    # Helpers ###############################################################

    def _transforms(self, transforms, num_graphs: int, dtype,
                    device) -> List[RigidTransform]:
        if transforms is None:
            return [
                RigidTransform.sample(num_graphs, self.group,
                                      translation_std=self.translation_std,
                                      axis=self.axis,
                                      generator=self.generator, dtype=dtype,
                                      device=device)
                for _ in range(self.num_samples)
            ]
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

    def _check_target(self, target, batch: Data, dtype, device,
                      source: str) -> RowLayout:
        if not isinstance(target, Tensor):
            raise TypeError(f"'target' must be a torch.Tensor (got "
                            f"{type(target).__name__})")
        if self.output != 'scalar':
            if target.dim() != 2 or target.size(-1) != 3:
                raise ValueError(f"'target' must have shape [rows, 3] for "
                                 f"output='{self.output}' (got "
                                 f"{list(target.shape)})")
            # the target moves with the batch: same dtype and device
            if target.dtype != dtype:
                raise TypeError(
                    f"'target' has dtype {target.dtype} but must be {dtype}, "
                    f"the dtype of {source}: an output='{self.output}' "
                    f"target is moved by the same group elements (convert "
                    f"it, e.g. target.to({dtype}))")
            if device is not None and target.device != device:
                raise ValueError(f"'target' is on {target.device} but "
                                 f"{source} is on {device}")
        return output_layout(batch, target, "'target'", self.level,
                             self.__class__.__name__)

    def _check_output(self, y, reference_shape, name: str, dtype,
                      source: str) -> Tensor:
        if not isinstance(y, Tensor):
            raise TypeError(f"the model must return a Tensor (got "
                            f"{type(y).__name__})")
        if reference_shape is not None and y.shape != reference_shape:
            raise ValueError(f"the model output on the {name} batch has "
                             f"shape {list(y.shape)} but {list(reference_shape)} "
                             f"was expected (the target's shape)")
        if self.output != 'scalar' and y.dtype != dtype:
            raise TypeError(f"the model output on the {name} batch has dtype "
                            f"{y.dtype} but must be {dtype}, the dtype of "
                            f"{source} (an output='{self.output}' output is "
                            f"moved by the same group elements)")
        return y

    def _forward_model(self, model, batch: Data, moved: List[Data],
                       need_clean: bool):
        if not self.fused:
            clean = model(batch) if need_clean else None
            return clean, [model(m) for m in moved]
        copies = ([batch] if need_clean else []) + moved
        out = model(concat_copies(copies))
        if not isinstance(out, Tensor):
            raise TypeError(f"the model must return a Tensor (got "
                            f"{type(out).__name__})")
        if out.size(0) % len(copies) != 0:
            raise ValueError(f"the model output on the fused batch has "
                             f"{out.size(0)} rows, not a multiple of the "
                             f"{len(copies)} stacked copies")
        parts = list(out.chunk(len(copies), dim=0))
        clean = parts.pop(0) if need_clean else None
        return clean, parts

    # Forward ###############################################################

    def forward(self, model: Callable[[Data], Tensor], batch: Data,
                target: Optional[Tensor] = None,
                transforms: Optional[Sequence[RigidTransform]] = None
                ) -> RemulOutput:
        r"""Computes the loss for one batch.

        Args:
            model (callable): ``model(data) -> Tensor``.
            batch (Data or Batch): The clean input.
            target (torch.Tensor, optional): Node- or graph-level target
                (required in ``"target"`` mode and whenever the task loss is
                computed).
            transforms (RigidTransform or [RigidTransform], optional): Use
                these group elements (one per graph, ``num_samples`` of them)
                instead of sampling.
        """
        owner = self.__class__.__name__
        check_data(batch, owner)
        if not callable(model):
            raise TypeError("'model' must be callable: model(data) -> Tensor")
        B, _ = graph_layout(batch)
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

        ref_key = self.points[0] if self.points else None
        if ref_key is None and (self.vectors or self.pseudovectors):
            ref_key = (self.vectors + self.pseudovectors)[0]
        ref = batch[ref_key] if ref_key is not None and ref_key in batch \
            else None
        if isinstance(ref, Tensor):
            dtype, device = ref.dtype, ref.device
            source = f"the batch ('data.{ref_key}')"
        else:
            dtype = target.dtype if isinstance(target, Tensor) and \
                target.is_floating_point() else torch.get_default_dtype()
            device = None
            source = 'the group elements'
        target_layout = None
        if target is not None:
            target_layout = self._check_target(target, batch, dtype, device,
                                               source)

        Ts = self._transforms(transforms, B, dtype, device)
        moved = [apply_rigid_transform(batch, T, self.points, self.vectors,
                                       self.pseudovectors) for T in Ts]

        clean, transformed = self._forward_model(model, batch, moved,
                                                 need_clean)
        shape = target.shape if target is not None else None
        if clean is not None:
            self._check_output(clean, shape, 'clean', dtype, source)
            shape = clean.shape
        for y_g in transformed:
            self._check_output(y_g, shape, 'transformed', dtype, source)
        layout = target_layout if target_layout is not None else \
            output_layout(batch, transformed[0], 'the model output',
                          self.level, owner)

        task = self.task_loss(clean, target) if need_task else None
        if self.mode == 'target':
            refs = [act(T, target, self.output, layout) for T in Ts]
        else:
            base = clean.detach() if self.detach_reference else clean
            refs = [act(T, base, self.output, layout) for T in Ts]
        equi = torch.stack([self.equi_loss(y_g, r)
                            for y_g, r in zip(transformed, refs)]).mean()

        error = None
        if clean is not None:
            error = self._batch_error(batch, clean.detach(), transformed, Ts,
                                      layout, B)
        loss = _weighted(beta, equi)
        if task is not None:
            loss = _weighted(alpha, task) + loss
        if self.check_finite and is_debug_enabled():
            self._debug_check_finite(loss, task, equi, alpha, beta)
        if self.training and torch.is_grad_enabled():
            self.weighting.update(task, equi, error)
        return RemulOutput(loss=loss, task=task, equi=equi, alpha=alpha,
                           beta=beta, error=error, prediction=clean)

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
    def _batch_error(self, batch: Data, clean: Tensor,
                     transformed: List[Tensor], Ts: List[RigidTransform],
                     layout: RowLayout, B: int):
        # E' over the graphs that have nodes (an empty graph has no error to
        # measure); the count stays on the device
        keep = nonempty_graphs(batch, clean.device).to(clean.dtype)
        count = keep.sum().clamp(min=1)
        norm = per_graph_mean(row_norms(clean), layout, B).clamp(
            min=torch.finfo(clean.dtype).tiny)
        e = clean.new_zeros(B)
        for y_g, T in zip(transformed, Ts):
            e = e + per_graph_mean(
                row_norms(y_g.detach() - act(T, clean, self.output, layout)),
                layout, B)
        e = e * keep / len(Ts)
        return {'absolute': e.sum() / count,
                'relative': (e / norm).sum() / count}

    def extra_repr(self) -> str:
        args = [f'output={self.output!r}', f'points={list(self.points)}']
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
