from typing import Optional

import torch
from torch_geometric.data import Data
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from torch_geometric_remul._copy import shallow_copy
from torch_geometric_remul.batching.layout import batch_layout
from torch_geometric_remul.group.rigid import RigidTransform
from torch_geometric_remul.group.rotations import AxisLike
from torch_geometric_remul.group.sampler import RigidSampler
from torch_geometric_remul.roles import DeclaredGeometry, Roles
from torch_geometric_remul.transforms.functional import (
    declared_values,
    move_declared,
)
from torch_geometric_remul.typing import Keys

#: Attribute names written by ``store=True``.
ROTATION_KEY = 'rigid_rotation'
TRANSLATION_KEY = 'rigid_translation'


@functional_transform('random_rigid_transform')
class RandomRigidTransform(DeclaredGeometry, BaseTransform):
    r"""Applies a random rigid transformation to every graph
    (functional name: ``random_rigid_transform``).

    Unlike :class:`torch_geometric.transforms.RandomRotate`, which rotates
    only ``pos`` and, on a ``Batch``, rotates all graphs together, this
    transform

    * moves every declared attribute according to its role: points
      :math:`x \mapsto R x + t`, vectors :math:`v \mapsto R v` (velocities,
      forces), pseudovectors :math:`w \mapsto \det(R) R w`; all other
      attributes are left untouched;
    * samples **one independent group element per graph** of a ``Batch``, in
      one vectorised call (no Python loop over graphs);
    * samples rotations from the Haar measure (not per-axis Euler angles).

    Node-level and graph-level attributes are both supported (a graph-level
    vector has one row per graph). Input tensors are never modified.

    The attributes and their roles can be given as a
    :class:`~torch_geometric_remul.roles.Roles` (``roles=``, shared with the
    loss and the metrics) or with the keywords ``points``/``vectors``/
    ``pseudovectors``; the group and its options as a
    :class:`~torch_geometric_remul.group.RigidSampler` (``sampler=``) or with
    the keywords ``group``/``translation_std``/``axis``/``generator``.

    All arguments but ``group`` are keyword-only.

    Args:
        group (str, optional): ``"SO3"``, ``"O3"``, ``"SE3"``, ``"E3"``,
            ``"SO2"`` or ``"T3"`` (see
            :meth:`~torch_geometric_remul.group.RigidTransform.sample`).
            (default: ``"SO3"``, as everywhere in the package; ``"SE3"``
            adds random translations)
        roles (Roles, optional): The declared attributes, instead of
            ``points``/``vectors``/``pseudovectors``.
        points (str or [str], optional): Attributes that transform as points.
            (default: ``"pos"``)
        vectors (str or [str], optional): Attributes that transform as
            vectors. (default: none)
        pseudovectors (str or [str], optional): Attributes that transform as
            pseudovectors. (default: none)
        sampler (RigidSampler, optional): The group and its options,
            instead of ``group``/``translation_std``/``axis``/``generator``.
        translation_std (float, optional): Standard deviation of each
            translation coordinate for ``"SE3"``/``"E3"``/``"T3"``.
            (default: ``1.0``)
        axis (int, str or sequence, optional): Rotation axis for ``"SO2"``.
            (default: ``2``)
        generator (torch.Generator, optional): Source of randomness, for
            reproducible draws. In :class:`torch.utils.data.DataLoader`
            workers, each worker's copy is re-seeded once per epoch, so
            workers and epochs draw different transforms (see
            :class:`~torch_geometric_remul.group.RigidSampler`).
        store (bool, optional): If ``True``, records the applied transform
            per graph as ``data.rigid_rotation`` (``[B, 3, 3]``) and
            ``data.rigid_translation`` (``[B, 3]``), composed with any
            transform recorded earlier; :func:`stored_transform` reads it
            back. (default: ``False``)

    Example:

        >>> from torch_geometric.data import Batch, Data
        >>> graphs = [Data(pos=torch.randn(n, 3), vel=torch.randn(n, 3))
        ...           for n in (3, 5)]
        >>> batch = Batch.from_data_list(graphs)
        >>> transform = RandomRigidTransform(vectors='vel', store=True)
        >>> out = transform(batch)
        >>> out.rigid_rotation.shape
        torch.Size([2, 3, 3])
    """
    def __init__(
        self,
        group: Optional[str] = None,
        *,
        # what the group moves (as in Roles)
        roles: Optional[Roles] = None,
        points: Optional[Keys] = None,
        vectors: Optional[Keys] = None,
        pseudovectors: Optional[Keys] = None,
        # the group elements (as in RigidSampler; ``group`` above)
        sampler: Optional[RigidSampler] = None,
        translation_std: Optional[float] = None,
        axis: Optional[AxisLike] = None,
        generator: Optional[torch.Generator] = None,
        store: bool = False,
    ) -> None:
        owner = self.__class__.__name__
        self.roles = Roles.resolve(roles, owner, points=points,
                                   vectors=vectors,
                                   pseudovectors=pseudovectors)
        if not self.roles.inputs:
            raise ValueError("RandomRigidTransform needs at least one "
                             "attribute in 'points', 'vectors' or "
                             "'pseudovectors'")
        self.sampler = RigidSampler.resolve(
            sampler, owner, group=group, translation_std=translation_std,
            axis=axis, generator=generator)
        self.store = bool(store)

    def __call__(self, data: Data) -> Data:
        # BaseTransform's copy.copy, in a form torch.compile traces
        return self.forward(shallow_copy(data))

    def forward(self, data: Data) -> Data:
        owner = self.__class__.__name__
        layout = batch_layout(data, owner)
        roles = self.roles.inputs
        values = declared_values(data, roles, owner)
        _, first = self.roles.reference_input(data)
        T = self.sampler.sample(layout.num_graphs, dtype=first.dtype,
                                device=first.device)
        data = move_declared(data, T, roles, values, layout, owner)

        if self.store:
            previous = stored_transform(data, required=False)
            if previous is not None:
                T = T.compose(previous.to(T.rotation.dtype))
            data[ROTATION_KEY] = T.rotation.clone()
            data[TRANSLATION_KEY] = T.translation.clone()
        return data

    def __repr__(self) -> str:
        args = [f'group={self.group!r}', f'points={list(self.points)}']
        if self.vectors:
            args.append(f'vectors={list(self.vectors)}')
        if self.pseudovectors:
            args.append(f'pseudovectors={list(self.pseudovectors)}')
        if self.sampler.translates:
            args.append(f'translation_std={self.translation_std}')
        if self.group == 'SO2':
            args.append(f'axis={self.axis!r}')
        if self.store:
            args.append('store=True')
        return f'{self.__class__.__name__}({", ".join(args)})'


def stored_transform(data: Data,
                     required: bool = True) -> Optional[RigidTransform]:
    r"""Reads back the transform recorded by
    ``RandomRigidTransform(store=True)`` as a
    :class:`~torch_geometric_remul.group.RigidTransform` with one element
    per graph. Its :meth:`~torch_geometric_remul.group.RigidTransform.inverse`
    undoes the augmentation, e.g. to map predictions back to the input
    frame.

    Args:
        data (Data or Batch): Data transformed with ``store=True``.
        required (bool, optional): If ``False``, return ``None`` instead of
            raising when nothing was recorded. (default: ``True``)

    Example:

        >>> from torch_geometric.data import Data
        >>> data = Data(pos=torch.randn(4, 3))
        >>> pos = data.pos
        >>> out = RandomRigidTransform(store=True)(data)
        >>> T = stored_transform(out)  # one element: a single graph
        >>> torch.allclose(T.inverse().apply_points(out.pos), pos, atol=1e-5)
        True
        >>> stored_transform(Data(pos=pos), required=False) is None
        True
    """
    R = getattr(data, ROTATION_KEY, None) if ROTATION_KEY in data else None
    t = (getattr(data, TRANSLATION_KEY, None)
         if TRANSLATION_KEY in data else None)
    if R is None or t is None:
        if required:
            raise ValueError(f"no stored transform: 'data.{ROTATION_KEY}' "
                             f"and 'data.{TRANSLATION_KEY}' are set by "
                             f"RandomRigidTransform(store=True)")
        return None
    return RigidTransform(R, t)
