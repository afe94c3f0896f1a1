"""Locating the declared geometric attributes of a ``Data`` or ``Batch``."""
from typing import Iterable

from torch import Tensor
from torch_geometric.data import Data

from torch_geometric_remul._checks import (
    check_disjoint,  # noqa: F401
    check_keys,
    check_xyz,
)
from torch_geometric_remul.layout import check_data, graph_layout  # noqa: F401

#: Attribute names as a tuple: :func:`torch_geometric_remul._checks.
#: check_keys` under the name the transforms and losses import
#: (``check_disjoint`` is re-exported likewise).
as_key_tuple = check_keys


def get_xyz(data: Data, key: str, role: str, owner: str) -> Tensor:
    """The ``[rows, 3]`` attribute ``key`` or a ValueError naming it."""
    value = getattr(data, key, None) if key in data else None
    if value is None:
        available = ', '.join(sorted(data.keys())) or 'none'
        raise ValueError(f"{owner}: attribute '{key}' (declared as a {role}) "
                         f"is missing from the data (attributes present: "
                         f"{available})")
    return check_xyz(value, f'data.{key}')


def iter_roles(points: Iterable[str], vectors: Iterable[str],
               pseudovectors: Iterable[str]):
    for key in points:
        yield key, 'point'
    for key in vectors:
        yield key, 'vector'
    for key in pseudovectors:
        yield key, 'pseudovector'
