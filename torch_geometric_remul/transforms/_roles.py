"""Locating the declared geometric attributes of a ``Data`` or ``Batch``."""
from typing import Iterable, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from torch_geometric_remul._checks import check_disjoint  # noqa: F401
from torch_geometric_remul._checks import check_keys, check_xyz

#: Attribute names as a tuple: :func:`torch_geometric_remul._checks.
#: check_keys` under the name the transforms and losses import
#: (``check_disjoint`` is re-exported likewise).
as_key_tuple = check_keys


def check_data(data, owner: str) -> None:
    if not isinstance(data, Data):
        raise TypeError(f"{owner} expects a torch_geometric.data.Data or "
                        f"Batch, got {type(data).__name__}")


def get_xyz(data: Data, key: str, role: str, owner: str) -> Tensor:
    """The ``[rows, 3]`` attribute ``key`` or a ValueError naming it."""
    value = getattr(data, key, None) if key in data else None
    if value is None:
        available = ', '.join(sorted(data.keys())) or 'none'
        raise ValueError(f"{owner}: attribute '{key}' (declared as a {role}) "
                         f"is missing from the data (attributes present: "
                         f"{available})")
    return check_xyz(value, f'data.{key}')


def graph_layout(data: Data) -> Tuple[int, Optional[Tensor]]:
    """``(num_graphs, node ptr)`` of a Batch, or ``(1, None)`` of a Data."""
    if isinstance(data, Batch):
        ptr = getattr(data, 'ptr', None)
        if ptr is None:  # pragma: no cover - every PyG Batch has ptr
            from torch_geometric_remul.group.segment import batch_to_ptr
            ptr = batch_to_ptr(data.batch, data.num_graphs)
        return data.num_graphs, ptr
    return 1, None


def rows_ptr(data: Data, key: str, rows: int, num_graphs: int,
             node_ptr: Optional[Tensor], owner: str) -> Optional[Tensor]:
    """CSR offsets assigning the rows of ``data[key]`` to graphs."""
    if node_ptr is None:
        return None
    if rows == int(node_ptr[-1]):
        return node_ptr
    slices = getattr(data, '_slice_dict', None) or {}
    if key in slices and int(slices[key][-1]) == rows:
        return slices[key].to(node_ptr.device)
    if rows == num_graphs:  # one row per graph (graph-level vector)
        return torch.arange(num_graphs + 1, device=node_ptr.device)
    raise ValueError(f"{owner}: cannot tell which rows of 'data.{key}' "
                     f"({rows} rows) belong to which graph; expected one "
                     f"row per node ({int(node_ptr[-1])}) or per graph "
                     f"({num_graphs})")


def iter_roles(points: Iterable[str], vectors: Iterable[str],
               pseudovectors: Iterable[str]):
    for key in points:
        yield key, 'point'
    for key in vectors:
        yield key, 'vector'
    for key in pseudovectors:
        yield key, 'pseudovector'
