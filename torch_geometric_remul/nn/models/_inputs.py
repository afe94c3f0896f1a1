r"""Reading and validating the declared inputs of a backbone.

:meth:`~torch_geometric_remul.nn.models.BaseModel.read_inputs` assembles one
:class:`ModelInputs` record from a ``Data``/``Batch`` with the functions
here: the positions, the declared node vectors and scalars, the edges and
edge scalars, and which node belongs to which graph (from the call's
:class:`~torch_geometric_remul.batching.BatchLayout`). Shapes, dtypes and
devices are always checked; checks that read index values run only in
debug mode (:func:`torch_geometric_remul.debug`).
"""
from typing import NamedTuple, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data

from torch_geometric_remul.debug import is_debug_enabled


class ModelInputs(NamedTuple):
    r"""The validated, assembled inputs of one forward pass.

    Attributes:
        pos: Input positions ``[N, 3]``.
        vectors: Declared node vectors stacked as ``[N, V, 3]`` (``V`` may
            be ``0``).
        scalars: Declared node scalars concatenated as ``[N, scalar_dim]``
            (width ``0`` if none).
        edge_index: ``[2, E]`` (``None`` for models that need no edges).
        edge_scalars: Declared edge scalars ``[E, edge_scalar_dim]``
            (``None`` without edges).
        batch: Graph index of each node ``[N]``.
        ptr: CSR offsets ``[B + 1]``.
        num_graphs: ``B``.

    Example:

        >>> from torch_geometric.data import Data
        >>> from torch_geometric_remul.nn.models import GNN
        >>> from torch_geometric_remul.graph import fully_connected_graph
        >>> data = Data(pos=torch.randn(4, 3), vel=torch.randn(4, 3),
        ...             charge=torch.ones(4, 1))
        >>> data.edge_index = fully_connected_graph(data)
        >>> model = GNN(vectors='vel', scalars='charge')
        >>> inputs = model.read_inputs(data)
        >>> inputs.vectors.shape, inputs.scalars.shape, inputs.num_graphs
        (torch.Size([4, 1, 3]), torch.Size([4, 1]), 1)
    """
    pos: Tensor
    vectors: Tensor
    scalars: Tensor
    edge_index: Optional[Tensor]
    edge_scalars: Optional[Tensor]
    batch: Tensor
    ptr: Tensor
    num_graphs: int


def read_attr(data: Data, key: str, role: str, owner: str,
              like: Optional[Tensor] = None) -> Tensor:
    r"""The floating-point tensor ``data[key]`` declared in ``role``, of
    the dtype and device of ``like`` when given; errors name ``owner``."""
    value = data[key] if key in data else None
    if value is None:
        present = ', '.join(sorted(data.keys())) or 'none'
        raise ValueError(f"{owner}: attribute '{key}' (declared in "
                         f"'{role}') is missing from the data "
                         f"(attributes present: {present})")
    if not isinstance(value, Tensor):
        raise TypeError(f"{owner}: 'data.{key}' must be a tensor (got "
                        f"{type(value).__name__})")
    if not value.is_floating_point():
        raise TypeError(f"{owner}: 'data.{key}' ({role}) must have a "
                        f"floating-point dtype (got {value.dtype}); "
                        f"encode categories e.g. as one-hot floats")
    if like is not None:
        if value.dtype != like.dtype:
            raise TypeError(f"{owner}: 'data.{key}' has dtype "
                            f"{value.dtype} but the positions have "
                            f"{like.dtype}")
        if value.device != like.device:
            raise ValueError(f"{owner}: 'data.{key}' is on "
                             f"{value.device} but the positions are on "
                             f"{like.device}")
    return value


def read_positions(data: Data, key: str, owner: str) -> Tensor:
    r"""The ``[num_nodes, 3]`` positions ``data[key]``."""
    pos = read_attr(data, key, 'points', owner)
    if pos.dim() != 2 or pos.size(1) != 3:
        raise ValueError(f"{owner}: 'data.{key}' (points) must have "
                         f"shape [num_nodes, 3] (got "
                         f"{list(pos.shape)})")
    return pos


def read_vectors(data: Data, keys: Tuple[str, ...], owner: str,
                 pos: Tensor) -> Tensor:
    r"""The declared node vectors stacked as ``[N, V, 3]``."""
    N = pos.size(0)
    vectors = []
    for name in keys:
        v = read_attr(data, name, 'vectors', owner, like=pos)
        if v.dim() != 2 or tuple(v.shape) != (N, 3):
            raise ValueError(f"{owner}: 'data.{name}' (vectors) must "
                             f"have shape [{N}, 3] (got "
                             f"{list(v.shape)})")
        vectors.append(v)
    return (torch.stack(vectors, dim=1) if vectors else
            pos.new_zeros(N, 0, 3))


def concat_attrs(data: Data, keys: Tuple[str, ...], name: str, rows: int,
                 rows_name: str, owner: str, pos: Tensor,
                 width: Optional[int], inferred: bool = False) -> Tensor:
    r"""The attributes ``keys`` (each ``[rows]`` or ``[rows, k]``)
    concatenated to ``[rows, width]``; ``width`` ``None`` is not checked
    (it is being inferred). ``inferred`` says, in the error, that the
    expected width was read from earlier data."""
    role = f'{name}s'
    parts = []
    total = 0
    for key in keys:
        value = read_attr(data, key, role, owner, like=pos)
        if value.dim() == 1:
            value = value.unsqueeze(-1)
        if value.dim() != 2 or value.size(0) != rows:
            raise ValueError(f"{owner}: 'data.{key}' ({role}) must have "
                             f"shape [{rows}] or [{rows}, k] "
                             f"({rows_name}), got {list(value.shape)}")
        total += value.size(1)
        parts.append(value)
    if width is not None and total != width:
        widths = ', '.join(f"'{k}': {p.size(1)}"
                           for k, p in zip(keys, parts))
        how = ' (inferred from the data at the first call)' if inferred \
            else ''
        raise ValueError(f"{owner}: the concatenated {role} ({widths}) "
                         f"have total width {total}, expected "
                         f"{name}_dim={width}{how}")
    if not parts:
        return pos.new_zeros(rows, 0)
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)


def edge_rows(data: Data, first_key: str, owner: str, pos: Tensor) -> int:
    r"""The number of edges: from ``edge_index`` when there is one, else
    the rows of the first edge attribute ``first_key``."""
    edge_index = data.edge_index if 'edge_index' in data else None
    if isinstance(edge_index, Tensor) and edge_index.dim() == 2:
        return edge_index.size(1)
    return read_attr(data, first_key, 'edge_scalars', owner,
                     like=pos).size(0)


def read_edge_index(data: Data, N: int, batch: Tensor, owner: str) -> Tensor:
    r"""``data.edge_index`` as ``[2, E]`` ``torch.long``, checked against
    the ``N`` nodes and (in debug mode) their graphs ``batch``."""
    edge_index = data.edge_index if 'edge_index' in data else None
    if edge_index is None:
        raise ValueError(
            f"{owner}: 'data.edge_index' is missing; build edges with "
            f"torch_geometric_remul.graph (fully_connected_graph, "
            f"radius_graph or knn_graph), e.g. data.edge_index = "
            f"fully_connected_graph(data)")
    if not isinstance(edge_index, Tensor) or edge_index.dtype not in (
            torch.long, torch.int32):
        raise TypeError(f"{owner}: 'data.edge_index' must be an integer "
                        f"tensor (torch.long)")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"{owner}: 'data.edge_index' must have shape "
                         f"[2, num_edges] (got {list(edge_index.shape)})")
    if edge_index.device != batch.device:
        raise ValueError(f"{owner}: 'data.edge_index' is on "
                         f"{edge_index.device} but the positions are on "
                         f"{batch.device}")
    if N == 0 and edge_index.size(1) > 0:  # a shape: always checked
        raise ValueError(f"{owner}: 'data.edge_index' holds "
                         f"{edge_index.size(1)} edge(s) but there are no "
                         f"nodes")
    edge_index = edge_index.long()
    if is_debug_enabled() and edge_index.numel() > 0 and \
            edge_index.device.type != 'meta':
        lo, hi = int(edge_index.min()), int(edge_index.max())
        if lo < 0 or hi >= N:
            raise ValueError(f"{owner}: 'data.edge_index' holds node "
                             f"indices in [{lo}, {hi}] but there are "
                             f"{N} nodes")
        if bool((batch[edge_index[0]] != batch[edge_index[1]]).any()):
            raise ValueError(f"{owner}: 'data.edge_index' connects nodes "
                             f"of different graphs")
    return edge_index
