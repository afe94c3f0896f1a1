r"""Per-graph rigid transformations :math:`x \mapsto R x + t`."""
from typing import Optional

import torch
from torch import Tensor

from torch_geometric_remul._checks import (
    check_float,
    check_index,
    check_ptr,
    check_same_device_dtype,
    check_translation_std,
    check_xyz,
)
from torch_geometric_remul._kernels import kernel_usable, rigid_apply
from torch_geometric_remul.batching.segment import (
    broadcast_to_rows,
    ptr_to_batch,
)
from torch_geometric_remul.group.rotations import (
    AxisLike,
    normalize_group,
    random_rotations,
)
from torch_geometric_remul.typing import Device

#: group name -> (rotation group or None, with random translation)
GROUPS = {
    'SO3': ('SO3', False),
    'O3': ('O3', False),
    'SE3': ('SO3', True),
    'E3': ('O3', True),
    'SO2': ('SO2', False),
    'T3': (None, True),
}


class RigidTransform:
    r"""A batch of ``B`` rigid transformations, one per graph:
    points map to :math:`R_b x + t_b`, vectors to :math:`R_b v` and
    pseudovectors to :math:`\det(R_b) R_b w`, where ``b`` is the graph of
    the row.

    This class (with :mod:`~torch_geometric_remul.group.rotations`) is the
    only place in the package that samples, composes, inverts or applies a
    rotation. All operations are differentiable with respect to the inputs
    and to :attr:`rotation` / :attr:`translation`.

    Rows are assigned to graphs by ``batch`` (graph index per row) or, faster,
    by ``ptr`` (CSR offsets of a PyG ``Batch``, whose rows are sorted by
    graph). When every graph has the same number of nodes and ``ptr`` is
    given, the transform runs as a single batched multiply-add with no
    per-row gather.

    Args:
        rotation (torch.Tensor, optional): Orthogonal matrices
            ``[B, 3, 3]`` (a single ``[3, 3]`` is read as ``B = 1``).
            Orthogonality is assumed, not checked: :meth:`inverse` uses the
            transpose. (default: identity)
        translation (torch.Tensor, optional): Translations ``[B, 3]``
            (a single ``[3]`` is read as ``B = 1``). (default: zero)

    Example:

        >>> g = torch.Generator().manual_seed(0)
        >>> T = RigidTransform.sample(2, group='SE3', generator=g)
        >>> pos = torch.randn(5, 3)
        >>> batch = torch.tensor([0, 0, 0, 1, 1])
        >>> out = T.apply_points(pos, batch)
        >>> torch.allclose(T.inverse().apply_points(out, batch), pos,
        ...                atol=1e-5)
        True
    """
    def __init__(self, rotation: Optional[Tensor] = None,
                 translation: Optional[Tensor] = None):
        if rotation is None and translation is None:
            raise ValueError("RigidTransform needs a 'rotation' [B, 3, 3], a "
                             "'translation' [B, 3], or both; use "
                             "RigidTransform.identity(B) for the identity")
        if rotation is not None:
            check_float(rotation, 'rotation')
            if rotation.dim() == 2:
                rotation = rotation.unsqueeze(0)
            if rotation.dim() != 3 or rotation.shape[1:] != (3, 3):
                raise ValueError(f"'rotation' must have shape [B, 3, 3] "
                                 f"(got {list(rotation.shape)})")
        if translation is not None:
            check_float(translation, 'translation')
            if translation.dim() == 1:
                translation = translation.unsqueeze(0)
            if translation.dim() != 2 or translation.size(1) != 3:
                raise ValueError(f"'translation' must have shape [B, 3] "
                                 f"(got {list(translation.shape)})")
        if rotation is not None and translation is not None:
            if rotation.size(0) != translation.size(0):
                raise ValueError(
                    f"'rotation' holds {rotation.size(0)} graph(s) but "
                    f"'translation' holds {translation.size(0)}; expected "
                    f"shapes [B, 3, 3] and [B, 3] with the same B")
            check_same_device_dtype(translation, 'translation', rotation,
                                    "'rotation'")
        self._R = rotation
        self._t = translation

    # Construction ##########################################################

    @classmethod
    def sample(
        cls,
        num_graphs: int,
        group: str = 'SE3',
        translation_std: float = 1.0,
        axis: AxisLike = 2,
        generator: Optional[torch.Generator] = None,
        dtype: Optional[torch.dtype] = None,
        device: Device = None,
    ) -> 'RigidTransform':
        r"""Samples one random group element per graph.

        Args:
            num_graphs (int): Number of transforms ``B``.
            group (str, optional): ``"SO3"`` (Haar rotations), ``"O3"``
                (rotations and reflections), ``"SE3"`` (``"SO3"`` plus
                Gaussian translations), ``"E3"`` (``"O3"`` plus translations),
                ``"SO2"`` (rotations about ``axis``) or ``"T3"`` (translations
                only). (default: ``"SE3"``)
            translation_std (float, optional): Standard deviation of each
                translation coordinate. (default: ``1.0``)
            axis (int, str or sequence, optional): Axis for ``"SO2"``.
                (default: ``2``)
            generator (torch.Generator, optional): Source of randomness.
                Without one, the numbers are drawn on ``device`` from its
                default generator (no host-to-device copy); a generator on
                another device than ``device`` costs a copy per call.
            dtype (torch.dtype, optional): dtype of the parameters.
            device (torch.device, optional): Device of the parameters.
        """
        group = normalize_group(group, tuple(GROUPS))
        rot_group, translate = GROUPS[group]
        translation_std = check_translation_std(translation_std)
        dtype = dtype or torch.get_default_dtype()
        R = t = None
        if rot_group is not None:
            R = random_rotations(num_graphs, rot_group, axis=axis,
                                 generator=generator, dtype=dtype,
                                 device=device)
        if translate:
            # drawn in float32 and cast, like the rotations
            gen_device = generator.device if generator is not None else \
                device
            opts = {} if generator is None else {'generator': generator}
            t = torch.randn(num_graphs, 3, dtype=torch.float32,
                            device=gen_device, **opts)
            t = t.to(dtype=dtype, device=device) * translation_std
        if R is None and t is None:  # pragma: no cover - every group moves
            raise AssertionError(group)
        return cls(R, t)

    @classmethod
    def identity(cls, num_graphs: int = 1,
                 dtype: Optional[torch.dtype] = None,
                 device: Device = None) -> 'RigidTransform':
        r"""``num_graphs`` identity transforms."""
        dtype = dtype or torch.get_default_dtype()
        R = torch.eye(3, dtype=dtype, device=device).expand(
            num_graphs, 3, 3).contiguous()
        return cls(R, torch.zeros(num_graphs, 3, dtype=dtype, device=device))

    # Properties ############################################################

    @property
    def num_graphs(self) -> int:
        ref = self._R if self._R is not None else self._t
        return ref.size(0)

    @property
    def dtype(self) -> torch.dtype:
        return (self._R if self._R is not None else self._t).dtype

    @property
    def device(self) -> torch.device:
        return (self._R if self._R is not None else self._t).device

    @property
    def rotation(self) -> Tensor:
        r"""The rotations ``[B, 3, 3]`` (identity where none was given)."""
        if self._R is not None:
            return self._R
        return torch.eye(3, dtype=self.dtype, device=self.device).expand(
            self.num_graphs, 3, 3)

    @property
    def translation(self) -> Tensor:
        r"""The translations ``[B, 3]`` (zero where none was given)."""
        if self._t is not None:
            return self._t
        return torch.zeros(self.num_graphs, 3, dtype=self.dtype,
                           device=self.device)

    def determinant(self) -> Tensor:
        r"""``det(R)`` per graph, ``[B]`` (:math:`\pm 1`)."""
        if self._R is None:
            return torch.ones(self.num_graphs, dtype=self.dtype,
                              device=self.device)
        return torch.linalg.det(self._R)

    def as_matrix(self) -> Tensor:
        r"""Homogeneous matrices ``[B, 4, 4]``."""
        out = torch.zeros(self.num_graphs, 4, 4, dtype=self.dtype,
                          device=self.device)
        out[:, :3, :3] = self.rotation
        out[:, :3, 3] = self.translation
        out[:, 3, 3] = 1
        return out

    # Group operations ######################################################

    def inverse(self) -> 'RigidTransform':
        r"""The inverse transforms :math:`x \mapsto R^\top (x - t)`."""
        if self._R is None:
            return RigidTransform(None, -self._t)
        Rt = self._R.transpose(1, 2)
        t = None
        if self._t is not None:
            t = -torch.bmm(Rt, self._t.unsqueeze(-1)).squeeze(-1)
        return RigidTransform(Rt, t)

    def compose(self, other: 'RigidTransform') -> 'RigidTransform':
        r"""``self.compose(other)`` applies ``other`` first, then ``self``:
        :math:`x \mapsto R_1 (R_2 x + t_2) + t_1`. Either side may hold a
        single transform (``B = 1``), which is broadcast to the other's
        ``B``."""
        if not isinstance(other, RigidTransform):
            raise TypeError(f"'other' must be a RigidTransform "
                            f"(got {type(other).__name__})")
        B1, B2 = self.num_graphs, other.num_graphs
        if B1 != B2 and 1 not in (B1, B2):
            raise ValueError(f"cannot compose transforms of {B1} and {B2} "
                             f"graphs (expected equal sizes or one of 1)")
        check_same_device_dtype(other.rotation, "'other'", self.rotation,
                                'this transform')
        B = max(B1, B2)
        R1, R2 = self.rotation.expand(B, 3, 3), other.rotation.expand(B, 3, 3)
        R = None if self._R is None and other._R is None else torch.bmm(
            R1, R2)
        t = None
        if other._t is not None:
            t = torch.bmm(R1, other._t.expand(B, 3).unsqueeze(-1)).squeeze(-1)
        if self._t is not None:
            t = self._t.expand(B, 3) if t is None else t + self._t
        if R is None and t is None:
            t = torch.zeros(B, 3, dtype=self.dtype, device=self.device)
        return RigidTransform(R, t)

    def __matmul__(self, other: 'RigidTransform') -> 'RigidTransform':
        return self.compose(other)

    def index_select(self, index: Tensor) -> 'RigidTransform':
        r"""The transforms of the graphs in ``index``."""
        return RigidTransform(
            None if self._R is None else self._R.index_select(0, index),
            None if self._t is None else self._t.index_select(0, index))

    def to(self, *args, **kwargs) -> 'RigidTransform':
        r"""Moves/casts the parameters like :meth:`torch.Tensor.to`."""
        return RigidTransform(
            None if self._R is None else self._R.to(*args, **kwargs),
            None if self._t is None else self._t.to(*args, **kwargs))

    def detach(self) -> 'RigidTransform':
        return RigidTransform(
            None if self._R is None else self._R.detach(),
            None if self._t is None else self._t.detach())

    # Application ###########################################################

    def apply_points(self, x: Tensor, batch: Optional[Tensor] = None,
                     ptr: Optional[Tensor] = None) -> Tensor:
        r"""Maps points ``x`` (``[N, 3]``) to :math:`R_b x + t_b`.

        Args:
            x (torch.Tensor): Points, one row per node.
            batch (torch.Tensor, optional): Graph index of each row. May be
                omitted when the transform holds one graph.
            ptr (torch.Tensor, optional): CSR offsets ``[B + 1]`` of rows
                sorted by graph (faster than ``batch``).
        """
        return self._apply(x, batch, ptr, 'x', translate=True)

    def apply_vectors(self, v: Tensor, batch: Optional[Tensor] = None,
                      ptr: Optional[Tensor] = None) -> Tensor:
        r"""Maps vectors ``v`` (``[N, 3]``) to :math:`R_b v` (translations
        do not act on vectors). Arguments as in :meth:`apply_points`."""
        return self._apply(v, batch, ptr, 'v', translate=False)

    def apply_pseudovectors(self, w: Tensor, batch: Optional[Tensor] = None,
                            ptr: Optional[Tensor] = None) -> Tensor:
        r"""Maps pseudovectors ``w`` (``[N, 3]``; angular velocities,
        magnetic fields) to :math:`\det(R_b) R_b w`. Arguments as in
        :meth:`apply_points`."""
        if self._R is None:
            return self._apply(w, batch, ptr, 'w', translate=False)
        signed = self._R * self.determinant().view(-1, 1, 1)
        return RigidTransform(signed)._apply(w, batch, ptr, 'w',
                                             translate=False)

    def apply(self, x: Tensor, role: str, batch: Optional[Tensor] = None,
              ptr: Optional[Tensor] = None) -> Tensor:
        r"""Applies the transform according to a geometric ``role``:
        ``"point"``, ``"vector"``, ``"pseudovector"`` or ``"scalar"``
        (returned unchanged)."""
        if role == 'point':
            return self.apply_points(x, batch, ptr)
        if role == 'vector':
            return self.apply_vectors(x, batch, ptr)
        if role == 'pseudovector':
            return self.apply_pseudovectors(x, batch, ptr)
        if role == 'scalar':
            return x
        raise ValueError(f"'role' must be one of 'point', 'vector', "
                         f"'pseudovector', 'scalar' (got {role!r})")

    def _apply(self, x: Tensor, batch: Optional[Tensor],
               ptr: Optional[Tensor], name: str, translate: bool) -> Tensor:
        check_xyz(x, name)
        ref = self._R if self._R is not None else self._t
        check_same_device_dtype(x, name, ref, 'the transform')
        R, t = self._R, (self._t if translate else None)
        B, N = self.num_graphs, x.size(0)
        # Shapes are always checked. The values of ptr/batch are checked in
        # debug mode; the compiled CPU kernel also checks them while reading
        # (at no cost), and every path reads no value on the host otherwise.
        kernel = kernel_usable(x, R, t)
        if ptr is not None:
            check_ptr(ptr, 'ptr', N, B, check_order=not kernel)
        elif batch is not None:
            check_index(batch, 'batch', N, None if kernel else B)
        elif B != 1:
            raise ValueError(
                f"this transform holds {B} graphs: pass 'batch' "
                f"([{N}], graph index per row) or 'ptr' ([{B + 1}])")

        if R is None and t is None:  # a translation acting on a vector
            return x.clone()
        if kernel:
            out = rigid_apply(x, R, t, ptr=ptr, index=batch)
            if out is not None:
                return out
        if ptr is None and batch is None:
            return _apply_single(x, R, t)
        if R is None and ptr is not None:  # a pure translation: one gather
            return x + broadcast_to_rows(t, ptr=ptr, num_rows=N)
        if ptr is not None:
            batch = ptr_to_batch(ptr, N)
        return _apply_gather(x, R, t, batch)

    def __repr__(self) -> str:
        parts = []
        if self._R is not None:
            parts.append('rotation')
        if self._t is not None:
            parts.append('translation')
        return (f'{self.__class__.__name__}(num_graphs={self.num_graphs}, '
                f'{"+".join(parts)}, dtype={self.dtype}, '
                f'device={self.device})')


# Kernels ###################################################################
# x is [N, 3] with row convention, so R x becomes x @ R^T.

def _apply_single(x: Tensor, R: Optional[Tensor],
                  t: Optional[Tensor]) -> Tensor:
    if R is None:
        return x + t[0]
    if t is None:
        return x @ R[0].t()
    return torch.addmm(t[0], x, R[0].t())


def _apply_gather(x: Tensor, R: Optional[Tensor], t: Optional[Tensor],
                  index: Tensor) -> Tensor:
    index = index.long()
    if R is None:
        return x + t.index_select(0, index)
    # contiguous first: index_select from a transposed view is ~10x slower
    Rn = R.transpose(1, 2).contiguous().index_select(0, index)
    if t is None:
        return torch.bmm(x.unsqueeze(1), Rn).squeeze(1)
    tn = t.index_select(0, index).unsqueeze(1)
    return torch.baddbmm(tn, x.unsqueeze(1), Rn).squeeze(1)


__all__ = ['GROUPS', 'RigidTransform']
