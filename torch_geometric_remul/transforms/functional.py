r"""Moving the declared attributes of a ``Data``/``Batch`` by a given
:class:`~torch_geometric_remul.group.RigidTransform`."""
from typing import Dict, Optional, Sequence, Tuple

from torch import Tensor
from torch_geometric.data import Data

from torch_geometric_remul._copy import shallow_copy
from torch_geometric_remul.batching.layout import (
    BatchLayout,
    RowLayout,
    batch_layout,
    row_layout,
)
from torch_geometric_remul.group.rigid import RigidTransform
from torch_geometric_remul.roles import Roles
from torch_geometric_remul.transforms._roles import get_xyz
from torch_geometric_remul.typing import Keys


def declared_values(data: Data, roles: Sequence[Tuple[str, str]],
                    owner: str) -> Dict[str, Tensor]:
    r"""Fetches and validates the declared ``[rows, 3]`` attributes, which
    must share one dtype and device."""
    values = {key: get_xyz(data, key, role, owner) for key, role in roles}
    if values:
        first_key = roles[0][0]
        first = values[first_key]
        for key, value in values.items():
            if value.dtype != first.dtype or value.device != first.device:
                raise ValueError(
                    f"{owner}: 'data.{key}' has dtype {value.dtype} on "
                    f"{value.device} but 'data.{first_key}' has "
                    f"{first.dtype} on {first.device}; all declared "
                    f"attributes must share dtype and device")
    return values


def apply_rigid_transform(data: Data, transform: RigidTransform,
                          points: Optional[Keys] = None,
                          vectors: Optional[Keys] = None,
                          pseudovectors: Optional[Keys] = None, *,
                          roles: Optional[Roles] = None) -> Data:
    r"""Returns a shallow copy of ``data`` in which every declared attribute
    is moved by ``transform`` (one group element per graph): points
    :math:`R x + t`, vectors :math:`R v`, pseudovectors
    :math:`\det(R) R w`. Other attributes are shared with ``data``, whose
    tensors are never modified.

    Args:
        data (Data or Batch): The graph(s).
        transform (RigidTransform): One element per graph of ``data``.
        points (str or [str], optional): Point attributes.
            (default: ``"pos"``)
        vectors (str or [str], optional): Vector attributes.
        pseudovectors (str or [str], optional): Pseudovector attributes.
        roles (Roles, optional): The declared attributes, instead of
            ``points``/``vectors``/``pseudovectors``.

    Example:

        >>> from torch_geometric.data import Data
        >>> from torch_geometric_remul.group import RigidTransform
        >>> data = Data(pos=torch.zeros(2, 3), vel=torch.ones(2, 3))
        >>> T = RigidTransform(translation=torch.tensor([1.0, 2.0, 3.0]))
        >>> out = apply_rigid_transform(data, T, vectors='vel')
        >>> out.pos[0], out.vel[0]
        (tensor([1., 2., 3.]), tensor([1., 1., 1.]))
    """
    owner = 'apply_rigid_transform'
    layout = batch_layout(data, owner)
    if not isinstance(transform, RigidTransform):
        raise TypeError(f"'transform' must be a RigidTransform (got "
                        f"{type(transform).__name__})")
    inputs = Roles.resolve(roles, owner, points=points, vectors=vectors,
                           pseudovectors=pseudovectors).inputs
    values = declared_values(data, inputs, owner)
    return moved_copy(data, transform, inputs, values, layout, owner)


def declared_layouts(data: Data, roles: Sequence[Tuple[str, str]],
                     values: Dict[str, Tensor], layout: BatchLayout,
                     owner: str) -> Dict[str, RowLayout]:
    r"""The :class:`~torch_geometric_remul.batching.RowLayout` of every
    declared attribute, from the call's ``layout``."""
    return {key: row_layout(data, key, values[key], owner=owner,
                            layout=layout)
            for key, _ in roles}


def moved_copy(data: Data, transform: RigidTransform, roles,
               values: Dict[str, Tensor], layout: BatchLayout, owner: str,
               layouts: Optional[Dict[str, RowLayout]] = None) -> Data:
    r"""A shallow copy of ``data`` whose declared ``values`` are moved by
    ``transform``, placed by ``layouts`` (from :func:`declared_values` and
    :func:`declared_layouts`, made once for all the copies of a call).
    The copy is :func:`~torch_geometric_remul._copy.shallow_copy`, which
    :func:`torch.compile` traces."""
    return move_declared(shallow_copy(data), transform, roles, values, layout,
                         owner, layouts)


def move_declared(data: Data, transform: RigidTransform, roles,
                  values: Dict[str, Tensor], layout: BatchLayout, owner: str,
                  layouts: Optional[Dict[str, RowLayout]] = None) -> Data:
    r"""Assigns the declared ``values`` of ``data``, moved by
    ``transform`` row by row as ``layouts`` place them (default: placed
    here, from the call's ``layout``); returns ``data``."""
    if transform.num_graphs != layout.num_graphs:
        raise ValueError(f"{owner}: the transform holds "
                         f"{transform.num_graphs} element(s) but the data "
                         f"has {layout.num_graphs} graph(s)")
    if layouts is None:
        layouts = declared_layouts(data, roles, values, layout, owner)
    for key, role in roles:
        row = layouts[key]
        data[key] = transform.apply(values[key], role, batch=row.index,
                                    ptr=row.ptr)
    return data
