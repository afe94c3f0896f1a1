"""Fetching the declared geometric attributes of a ``Data`` or ``Batch``."""
from torch import Tensor
from torch_geometric.data import Data

from torch_geometric_remul._checks import check_xyz


def get_xyz(data: Data, key: str, role: str, owner: str) -> Tensor:
    """The ``[rows, 3]`` attribute ``key`` or a ValueError naming it."""
    value = getattr(data, key, None) if key in data else None
    if value is None:
        available = ', '.join(sorted(data.keys())) or 'none'
        raise ValueError(f"{owner}: attribute '{key}' (declared as a {role}) "
                         f"is missing from the data (attributes present: "
                         f"{available})")
    return check_xyz(value, f'data.{key}')
