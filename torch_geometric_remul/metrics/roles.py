"""Shared helpers: how an output of a given role moves, and per-graph
distances between outputs. Which rows belong to which graph comes from
:func:`torch_geometric_remul.layout.row_layout` (a
:class:`~torch_geometric_remul.layout.RowLayout`); nothing here reads a
tensor value on the host."""
from typing import Optional

import torch
from torch import Tensor
from torch_geometric.data import Data

from torch_geometric_remul.group import RigidTransform, segment_mean
from torch_geometric_remul.layout import RowLayout, graph_layout, row_layout

#: Row levels a target or model output may declare.
OUTPUT_LEVELS = ('node', 'edge', 'graph')


def check_level(level: Optional[str], name: str = 'level') -> Optional[str]:
    if level is not None and level not in OUTPUT_LEVELS:
        raise ValueError(f"'{name}' must be None or one of "
                         f"{', '.join(OUTPUT_LEVELS)} (got {level!r})")
    return level


def output_layout(data: Data, value: Tensor, name: str,
                  level: Optional[str] = None,
                  owner: Optional[str] = None) -> RowLayout:
    """Which rows of a target or model output belong to which graph: from
    the Batch's collation metadata when ``value`` is a collated attribute
    (e.g. ``batch.y``), else from ``level``, else from its row count when
    only one layout fits (an ambiguous count is an error naming
    ``name``)."""
    if value.dim() == 0:
        raise ValueError(f"{name} must have one row per node or per graph "
                         f"(got a 0-dim tensor)")
    return row_layout(data, value=value, name=name, level=level, owner=owner)


def act(T: RigidTransform, y: Tensor, role: str,
        layout: RowLayout) -> Tensor:
    r""":math:`\rho(g) y` for an output of the given role."""
    if role == 'scalar':
        return y
    return T.apply(y, role, batch=layout.index, ptr=layout.ptr)


def row_norms(diff: Tensor) -> Tensor:
    """Euclidean norm of each row (all trailing dims flattened)."""
    return diff.flatten(1).norm(dim=-1) if diff.dim() > 1 else diff.abs()


def per_graph_mean(values: Tensor, layout: RowLayout,
                   num_graphs: int) -> Tensor:
    """Mean of per-row ``values`` ``[rows]`` within each graph: ``[B]``
    (0 for a graph without rows)."""
    if layout.ptr is not None:
        return segment_mean(values.unsqueeze(-1), ptr=layout.ptr,
                            num_graphs=num_graphs).squeeze(-1)
    if layout.index is not None:
        return segment_mean(values.unsqueeze(-1), batch=layout.index,
                            num_graphs=num_graphs).squeeze(-1)
    # one graph
    return values.sum(0, keepdim=True) / max(values.size(0), 1)


def nonempty_graphs(data: Data, device=None) -> Tensor:
    """``[B]`` bool: which graphs have at least one node (read from
    ``ptr``/``num_nodes`` on the device, without a host read)."""
    num_graphs, node_ptr = graph_layout(data)
    if node_ptr is None:
        return torch.full((1, ), data.num_nodes > 0, dtype=torch.bool,
                          device=device)
    return node_ptr.diff().to(device) > 0


__all__ = ['OUTPUT_LEVELS', 'check_level',
           'output_layout', 'act', 'row_norms', 'per_graph_mean',
           'nonempty_graphs']
