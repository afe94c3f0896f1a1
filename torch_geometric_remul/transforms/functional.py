r"""Moving the declared attributes of a ``Data``/``Batch`` by a given
:class:`~torch_geometric_remul.group.RigidTransform`."""
from typing import Dict, Optional, Sequence, Tuple

from torch import Tensor
from torch_geometric.data import Data

from torch_geometric_remul._copy import shallow_copy
from torch_geometric_remul.group.rigid import RigidTransform
from torch_geometric_remul.layout import check_data, graph_layout, row_layout
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
    check_data(data, owner)
    if not isinstance(transform, RigidTransform):
        raise TypeError(f"'transform' must be a RigidTransform (got "
                        f"{type(transform).__name__})")
    inputs = Roles.resolve(roles, owner, points=points, vectors=vectors,
                           pseudovectors=pseudovectors).inputs
    values = declared_values(data, inputs, owner)
    return _move(shallow_copy(data), transform, inputs, values, owner)


def _move(data: Data, transform: RigidTransform, roles, values,
          owner: str) -> Data:
    num_graphs, _ = graph_layout(data)
    if transform.num_graphs != num_graphs:
        raise ValueError(f"{owner}: the transform holds "
                         f"{transform.num_graphs} element(s) but the data "
                         f"has {num_graphs} graph(s)")
    # resolve every layout before assigning: row_layout identifies a
    # collated attribute by the tensor stored under its key
    layouts = {key: row_layout(data, key, values[key],
                               owner=owner)
               for key, _ in roles}
    for key, role in roles:
        layout = layouts[key]
        data[key] = transform.apply(values[key], role, batch=layout.index,
                                    ptr=layout.ptr)
    return data
