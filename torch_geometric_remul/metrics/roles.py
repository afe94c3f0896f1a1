"""Shared helpers: how an output of a given role moves, and per-graph
distances between outputs."""
from typing import Optional

import torch
from torch import Tensor

from torch_geometric_remul.group import RigidTransform, segment_mean

OUTPUT_ROLES = ('point', 'vector', 'pseudovector', 'scalar')


def check_role(output: str) -> str:
    if output not in OUTPUT_ROLES:
        raise ValueError(f"'output' must be one of {', '.join(OUTPUT_ROLES)} "
                         f"(got {output!r})")
    return output


def rows_layout(rows: int, num_nodes: int, num_graphs: int,
                node_ptr: Optional[Tensor], name: str,
                device) -> Tensor:
    """CSR offsets of a node-level (``rows == num_nodes``) or graph-level
    (``rows == num_graphs``) tensor."""
    if rows == num_nodes:
        if node_ptr is None:
            return torch.tensor([0, num_nodes], device=device)
        return node_ptr
    if rows == num_graphs:
        return torch.arange(num_graphs + 1, device=device)
    raise ValueError(f"{name} has {rows} rows but the batch has {num_nodes} "
                     f"nodes and {num_graphs} graph(s); expected a node-level "
                     f"[{num_nodes}, ...] or graph-level [{num_graphs}, ...] "
                     f"tensor")


def act(T: RigidTransform, y: Tensor, role: str, ptr: Tensor) -> Tensor:
    r""":math:`\rho(g) y` for an output of the given role."""
    if role == 'scalar':
        return y
    return T.apply(y, role, ptr=ptr)


def row_norms(diff: Tensor) -> Tensor:
    """Euclidean norm of each row (all trailing dims flattened)."""
    return diff.reshape(diff.size(0), -1).norm(dim=-1)


def per_graph_mean(values: Tensor, ptr: Tensor) -> Tensor:
    """Mean of per-row ``values`` ``[rows]`` within each graph: ``[B]``."""
    return segment_mean(values.unsqueeze(-1), ptr=ptr).squeeze(-1)
