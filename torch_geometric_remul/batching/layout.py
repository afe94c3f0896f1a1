r"""Which rows of a tensor belong to which graph of a ``Batch``.

A transform, a loss, a metric or a model that moves or pools a tensor graph
by graph must know the graph of every row. Each public entry point resolves
the graph layout of its ``Data``/``Batch`` once, with :func:`batch_layout`
(a :class:`BatchLayout`: the number of graphs and the node offsets), and
passes it down. :func:`row_layout` places the rows of one tensor from it and
from the ``Batch``'s own collation metadata (read through
:mod:`~torch_geometric_remul.batching._collation`): PyG records, for every
attribute it concatenated, the row offsets of each graph (node-, edge- and
graph-level attributes alike), so the answer never depends on a guess from
row counts. Only a tensor that
PyG did not collate (an attribute assigned after batching, a model output)
is placed by its shape, and only when exactly one reading fits: a tensor
whose row count matches both the number of nodes and the number of graphs
is refused with an error rather than assigned to the wrong graphs.

Everything here reads shapes and host-side metadata only: no tensor value is
read on the device (no host-device synchronisation). Inside
:func:`torch.compile` the metadata's values are not read either (that would
break the graph): every tensor is then placed by its shape. Metadata that no
longer describes its attribute (replaced after collation) is ignored and the
tensor placed as an uncollated one. The check that needs device values (``ptr``
against ``batch``, e.g. a ``ptr`` left stale by ``Batch.subgraph``) runs under
:func:`torch_geometric_remul.debug`.

Example:

    >>> from torch_geometric.data import Batch, Data
    >>> batch = Batch.from_data_list([
    ...     Data(pos=torch.randn(2, 3), u=torch.randn(1, 3)),
    ...     Data(pos=torch.randn(0, 3), u=torch.randn(1, 3)),
    ...     Data(pos=torch.randn(1, 3), u=torch.randn(1, 3))])
    >>> row_layout(batch, 'pos').ptr
    tensor([0, 2, 2, 3])
    >>> row_layout(batch, 'u').ptr  # graph-level: one row per graph
    tensor([0, 1, 2, 3])
"""
from typing import NamedTuple, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data, HeteroData

from torch_geometric_remul._checks import check_index
from torch_geometric_remul.batching import _collation as collation
from torch_geometric_remul.batching.segment import (
    batch_to_ptr,
    ptr_to_batch,
    segment_mean,
)
from torch_geometric_remul.debug import is_debug_enabled

#: The row levels a tensor may declare (a target, a model output or an
#: attribute that PyG did not collate).
LEVELS = ('node', 'edge', 'graph')


def check_level(level: Optional[str], name: str = 'level',
                owner: Optional[str] = None) -> Optional[str]:
    r"""``level`` if it is ``None`` or one of :data:`LEVELS`, else a
    :class:`ValueError` naming ``name`` (and ``owner``).

    Example:

        >>> check_level('graph')
        'graph'
    """
    if level is not None and level not in LEVELS:
        prefix = f'{owner}: ' if owner else ''
        raise ValueError(f"{prefix}'{name}' must be one of "
                         f"{', '.join(LEVELS)} or None (got {level!r})")
    return level


class RowLayout(NamedTuple):
    r"""How the rows of a tensor map to graphs: CSR offsets ``ptr``
    (``[B + 1]``, rows sorted by graph) or a graph index per row
    (``index``), or neither for a single graph.

    Example:

        >>> from torch_geometric.data import Data
        >>> row_layout(Data(pos=torch.zeros(2, 3)), 'pos')
        RowLayout(level='single', ptr=None, index=None)
    """
    #: ``"node"``, ``"edge"``, ``"graph"``, ``"collated"`` (from the
    #: metadata, whatever its level) or ``"single"`` (one graph).
    level: str
    ptr: Optional[Tensor] = None
    index: Optional[Tensor] = None


class BatchLayout(NamedTuple):
    r"""Which nodes of a ``Data``/``Batch`` belong to which graph: the
    number of graphs and the node offsets ``ptr`` (``[B + 1]``, on the
    data's device; ``None`` for a single ``Data``). Computed once per call
    by :func:`batch_layout` and handed to :func:`row_layout`,
    :func:`output_layout` and the helpers that need it, so that a call
    resolves (and, in debug mode, checks) it once.

    Example:

        >>> from torch_geometric.data import Batch, Data
        >>> batch = Batch.from_data_list([Data(num_nodes=2),
        ...                               Data(num_nodes=3)])
        >>> batch_layout(batch)
        BatchLayout(num_graphs=2, ptr=tensor([0, 2, 5]))
    """
    num_graphs: int
    ptr: Optional[Tensor] = None


def check_data(data, owner: str) -> Data:
    r"""Raises :class:`TypeError` unless ``data`` is a PyG ``Data`` or
    ``Batch``.

    Example:

        >>> check_data(torch.zeros(3), 'MyTransform')
        Traceback (most recent call last):
        ...
        TypeError: MyTransform expects a torch_geometric.data.Data or ...
    """
    if not isinstance(data, Data):
        hint = (' (heterogeneous graphs are not supported: give each node '
                'type its own Data, or convert with data.to_homogeneous())'
                if isinstance(data, HeteroData) else '')
        raise TypeError(f"{owner} expects a torch_geometric.data.Data or "
                        f"Batch, got {type(data).__name__}{hint}")
    return data


def batch_layout(data: Data, owner: Optional[str] = None) -> BatchLayout:
    r"""The :class:`BatchLayout` of ``data``, checked: with ``owner``
    given, ``data`` must be a ``Data`` or ``Batch`` (:func:`check_data`).
    The one place that works out which node belongs to which graph; see
    :func:`graph_layout` for the rules.

    Example:

        >>> from torch_geometric.data import Data
        >>> batch_layout(Data(num_nodes=3), 'MyTransform')
        BatchLayout(num_graphs=1, ptr=None)
    """
    if owner is not None:
        check_data(data, owner)
    return _resolve(data)


def graph_layout(data: Data) -> Tuple[int, Optional[Tensor]]:
    r"""``(num_graphs, node ptr)`` of a ``Batch`` (``ptr`` on the data's
    device), or ``(1, None)`` for a single ``Data``: the fields of
    :func:`batch_layout`. A ``Batch`` without
    ``ptr`` gets offsets counted from ``batch``: right in their counts, but
    they place rows by position, so they describe the rows only when
    ``batch`` is sorted; :func:`row_layout` places the rows of such a
    ``Batch`` by ``batch`` itself.

    Under debug mode, checks that ``ptr`` and ``batch`` agree (a stale
    ``ptr``, e.g. after ``Batch.subgraph``, is reported, not used). A
    ``Batch`` of no graphs is refused (:class:`ValueError`).

    Example:

        >>> from torch_geometric.data import Batch, Data
        >>> batch = Batch.from_data_list([Data(num_nodes=2),
        ...                               Data(num_nodes=3)])
        >>> graph_layout(batch)
        (2, tensor([0, 2, 5]))
    """
    num_graphs, ptr = _resolve(data)
    return num_graphs, ptr


def _resolve(data: Data) -> BatchLayout:
    if not isinstance(data, Batch):
        return BatchLayout(1, None)
    B = data.num_graphs
    if B == 0:
        raise ValueError("the Batch holds no graphs (num_graphs is 0): there "
                         "is nothing to transform, evaluate or train on; "
                         "leave empty batches out (is the dataset or the "
                         "split empty?)")
    ptr = data.ptr if 'ptr' in data else None
    batch = data.batch if 'batch' in data else None
    if ptr is None:
        if batch is None:
            raise ValueError("the Batch has neither 'ptr' nor 'batch': "
                             "cannot tell which nodes belong to which graph")
        ptr = batch_to_ptr(batch, B)
    if ptr.dim() != 1 or ptr.numel() != B + 1:
        raise ValueError(f"'batch.ptr' must have shape [{B + 1}] for {B} "
                         f"graph(s), got {list(ptr.shape)}")
    if is_debug_enabled():
        _debug_check_ptr_batch(data, ptr, batch, B)
    return BatchLayout(B, ptr)


def _debug_check_ptr_batch(data: Data, ptr: Tensor, batch: Optional[Tensor],
                           B: int) -> None:
    N = data.num_nodes
    if int(ptr[0]) != 0 or int(ptr[-1]) != N or (
            ptr.numel() > 1 and bool((ptr.diff() < 0).any())):
        raise ValueError(f"'batch.ptr' ({ptr.tolist()}) does not describe "
                         f"{N} nodes sorted by graph: it must be "
                         f"non-decreasing from 0 to {N}. Was the Batch "
                         f"modified after collation (e.g. Batch.subgraph)? "
                         f"Rebuild it with Batch.from_data_list")
    if batch is not None:
        counts = torch.bincount(batch.long(), minlength=B)
        if counts.numel() != B or not torch.equal(counts.cpu(),
                                                  ptr.diff().cpu()):
            raise ValueError("'batch.ptr' and 'batch.batch' disagree on "
                             "which nodes belong to which graph (a stale or "
                             "hand-made ptr, e.g. after Batch.subgraph?); "
                             "rebuild the Batch with Batch.from_data_list")


def num_nodes(data: Data) -> int:
    r"""``data.num_nodes``; inside :func:`torch.compile`, the length of a
    ``Batch``'s ``batch`` vector (the same number for a collated ``Batch``),
    because Dynamo cannot trace PyG's ``num_nodes`` property (a graph break
    at every call).

    Example:

        >>> from torch_geometric.data import Batch, Data
        >>> num_nodes(Batch.from_data_list([Data(num_nodes=2),
        ...                                 Data(num_nodes=3)]))
        5
    """
    if torch.compiler.is_compiling() and isinstance(data, Batch) and \
            'batch' in data and isinstance(data.batch, Tensor):
        return data.batch.size(0)
    return data.num_nodes


def _rows(value: Tensor, cat_dim: int) -> int:
    return value.size(cat_dim) if value.dim() > 0 else 1


def _find_key(data: Data, value: Tensor) -> Optional[str]:
    for key in data.keys():
        if data[key] is value:
            return key
    return None


def _edge_index(data: Data) -> Optional[Tensor]:
    ei = data.edge_index if 'edge_index' in data else None
    return ei if isinstance(ei, Tensor) and ei.dim() == 2 else None


def row_layout(data: Data, key: Optional[str] = None,
               value: Optional[Tensor] = None, name: Optional[str] = None,
               level: Optional[str] = None,
               owner: Optional[str] = None, *,
               layout: Optional[BatchLayout] = None) -> RowLayout:
    r"""Tells which rows of an attribute (or of a tensor that goes with
    ``data``, such as a target or a model output) belong to which graph.

    Resolution order: an explicit ``level``; PyG's collation metadata of the
    attribute (found by ``key``, or by identity of ``value`` with a stored
    attribute); otherwise the tensor's shape, when exactly one of "one row
    per node", "one row per graph" or "one row per edge" fits.

    Args:
        data (Data or Batch): The graph(s).
        key (str, optional): Name of the attribute.
        value (torch.Tensor, optional): The tensor (default: ``data[key]``).
        name (str, optional): How to call the tensor in errors.
        level (str, optional): ``"node"``, ``"edge"`` or ``"graph"``, to
            state the layout of a tensor that PyG did not collate.
        owner (str, optional): The caller, named at the start of errors.
        layout (BatchLayout, optional): The layout of ``data``, when the
            caller has it from :func:`batch_layout` (default: resolved
            here).

    Returns:
        RowLayout: ``ptr`` (CSR offsets) or ``index`` (graph per row) on the
        tensor's device; neither for a single ``Data``. Node-level rows of a
        ``Batch`` that has ``batch`` but no ``ptr`` (e.g. built as
        ``Batch(pos=..., batch=...)``, rows in any order) get
        ``index=batch``, never offsets that assume sorted rows.

    Example:

        >>> from torch_geometric.data import Batch, Data
        >>> batch = Batch.from_data_list([Data(pos=torch.zeros(1, 3)),
        ...                               Data(pos=torch.zeros(2, 3))])
        >>> row_layout(batch, value=torch.zeros(2, 1)).level  # 2 graphs
        'graph'
    """
    if value is None:
        if key is None or key not in data:
            raise ValueError(f"attribute '{key}' is missing from the data")
        value = data[key]
    elif key is None:
        key = _find_key(data, value)
    name = name or (f"'data.{key}'" if key else 'the tensor')
    prefix = f'{owner}: ' if owner else ''
    check_level(level, owner=owner)
    if not isinstance(data, Batch):
        return RowLayout('single')

    B, node_ptr = layout if layout is not None else _resolve(data)
    device = value.device
    if level is None and key is not None and data[key] is value:
        offsets = collation.slices(data, key)
        if collation.describes(offsets, B, _rows(value, 0)):
            return _collated(data, key, value, offsets, B, prefix + name,
                             device)

    rows = value.size(0) if value.dim() > 0 else 1
    N = num_nodes(data)
    ei = _edge_index(data)
    if level is None:
        level = _level_from_rows(rows, N, B, ei, key, name, prefix)
    expected = {'node': N, 'graph': B,
                'edge': None if ei is None else ei.size(1)}[level]
    if expected is None:
        raise ValueError(f"{prefix}{name} is declared edge-level but the "
                         f"Batch has no "
                         f"'edge_index'")
    if rows != expected:
        raise ValueError(f"{prefix}{name} has {rows} rows but a "
                         f"{level}-level tensor "
                         f"of this Batch has {expected}")
    if level == 'node':
        if 'ptr' not in data and 'batch' in data:
            # no offsets recorded: the rows need not be sorted by graph,
            # so each row is placed by its own graph index
            return RowLayout('node', index=data.batch.to(device))
        return RowLayout('node', ptr=node_ptr.to(device))
    if level == 'graph':
        return RowLayout('graph', ptr=torch.arange(B + 1, device=device))
    offsets = collation.slices(data, 'edge_index')
    if collation.describes(offsets, B, ei.size(1)):
        return _collated(data, 'edge_index', value, offsets, B,
                         prefix + name, device, cat_dim=0)
    # edges added after collation: the graph of an edge is its source's
    return RowLayout('edge', index=data.batch.index_select(0, ei[0]).to(
        device))


def _level_from_rows(rows: int, N: int, B: int, ei: Optional[Tensor],
                     key: Optional[str], name: str, prefix: str) -> str:
    """The one level whose row count is ``rows``: a free tensor (target,
    model output) is node- or graph-level; a stored attribute may also be
    edge-level."""
    num_edges = None if ei is None or key is None else ei.size(1)
    fits = [lvl for lvl, n in (('node', N), ('graph', B),
                               ('edge', num_edges)) if n == rows]
    if len(fits) == 1:
        return fits[0]
    counts = f"{N} node(s), {B} graph(s)" + (
        f", {ei.size(1)} edge(s)" if ei is not None else '')
    what = (f"fits several layouts ({' and '.join(fits)})"
            if fits else "matches none of them")
    raise ValueError(
        f"{prefix}cannot tell which rows of {name} ({rows} rows) belong to "
        f"which graph: the Batch has {counts} and the row count {what}. "
        f"Collate the tensor with the graphs (set it on each Data before "
        f"Batch.from_data_list, so that the Batch records its layout) or "
        f"state its level ('node', 'edge' or 'graph')")


def _collated(data: Data, key: str, value: Tensor, offsets: Tensor, B: int,
              name: str, device, cat_dim: Optional[int] = None) -> RowLayout:
    if cat_dim is None:
        cat_dim = data.__cat_dim__(key, value)
    if cat_dim is None or cat_dim != 0:
        raise ValueError(f"{name} is concatenated along dimension "
                         f"{cat_dim}, not rows; only row-wise attributes "
                         f"([rows, ...]) can be moved per graph")
    return RowLayout('collated', ptr=collation.device_offsets(data, offsets,
                                                              B, device))


def output_layout(data: Data, value: Tensor, name: str,
                  level: Optional[str] = None,
                  owner: Optional[str] = None, *,
                  layout: Optional[BatchLayout] = None) -> RowLayout:
    r"""Which rows of a target or model output belong to which graph: from
    the Batch's collation metadata when ``value`` is a collated attribute
    (e.g. ``batch.y``), else from ``level``, else from its row count when
    only one layout fits (an ambiguous count is an error naming
    ``name``). A 0-dim tensor is refused.

    Example:

        >>> from torch_geometric.data import Batch, Data
        >>> batch = Batch.from_data_list([Data(num_nodes=2),
        ...                               Data(num_nodes=3)])
        >>> output_layout(batch, torch.zeros(5, 3), 'the output').ptr
        tensor([0, 2, 5])
    """
    if value.dim() == 0:
        raise ValueError(f"{name} must have one row per node or per graph "
                         f"(got a 0-dim tensor)")
    return row_layout(data, value=value, name=name, level=level, owner=owner,
                      layout=layout)


def check_batch_vector(data: Data, num_nodes: int,
                       owner: str) -> Optional[Tensor]:
    r"""``data.batch`` checked as the graph index of ``num_nodes`` nodes
    (an integer ``[num_nodes]`` tensor; in debug mode, its values within
    the ``Batch``'s graphs), or ``None`` when there is none.

    Example:

        >>> from torch_geometric.data import Data
        >>> check_batch_vector(Data(num_nodes=2), 2, 'Model') is None
        True
    """
    batch = data.batch if 'batch' in data else None
    if batch is None:
        return None
    try:
        return check_index(batch, 'data.batch', num_nodes,
                           data.num_graphs if isinstance(data, Batch)
                           else None)
    except (TypeError, ValueError) as e:
        raise type(e)(f'{owner}: {e}') from None


def node_batch(layout: BatchLayout, batch: Optional[Tensor], num_nodes: int,
               owner: str, device: torch.device) -> Tuple[Tensor, Tensor]:
    r"""``(batch, ptr)`` of ``num_nodes`` nodes: the graph of each node
    and the node offsets, from the call's ``layout`` and the checked
    ``batch`` vector (:func:`check_batch_vector`; ``None`` when the data
    has none). A plain ``Data`` is one graph: its ``batch`` is zeros
    (debug mode refuses one that names several graphs).

    Example:

        >>> from torch_geometric.data import Data
        >>> data = Data(pos=torch.zeros(3, 3))
        >>> node_batch(batch_layout(data), None, 3, 'Model', data.pos.device)
        (tensor([0, 0, 0]), tensor([0, 3]))
    """
    N = num_nodes
    # ptr (or batch) of a Batch, checked against each other in debug
    # mode by batch_layout; a plain Data is one graph
    if layout.ptr is not None:
        if batch is None:
            batch = ptr_to_batch(layout.ptr, N)
        return batch, layout.ptr
    if batch is not None and is_debug_enabled() and N > 0 and \
            batch.device.type != 'meta' and bool((batch != 0).any()):
        raise ValueError(f"{owner}: a plain Data is one graph, but its "
                         f"'batch' vector names several graphs; collate "
                         f"graphs with Batch.from_data_list")
    batch = torch.zeros(N, dtype=torch.long, device=device)
    ptr = torch.arange(2, device=device) * N
    return batch, ptr


def act(T, y: Tensor, role: str, layout: RowLayout) -> Tensor:
    r""":math:`\rho(g) y` for an output ``y`` of the given role, each row
    moved by the element ``T`` (a
    :class:`~torch_geometric_remul.group.RigidTransform`) holds for its
    graph; a scalar is returned as it is.

    Example:

        >>> from torch_geometric.data import Data
        >>> from torch_geometric_remul.group import RigidTransform
        >>> T = RigidTransform(translation=torch.tensor([1.0, 0.0, 0.0]))
        >>> y = torch.zeros(2, 3)
        >>> act(T, y, 'point', row_layout(Data(y=y), 'y'))[0]
        tensor([1., 0., 0.])
    """
    if role == 'scalar':
        return y
    return T.apply(y, role, batch=layout.index, ptr=layout.ptr)


def per_graph_mean(values: Tensor, layout: RowLayout,
                   num_graphs: int) -> Tensor:
    r"""Mean of per-row ``values`` ``[rows]`` within each graph: ``[B]``
    (0 for a graph without rows).

    Example:

        >>> per_graph_mean(torch.tensor([1.0, 3.0, 5.0]),
        ...                RowLayout('node', ptr=torch.tensor([0, 2, 3])), 2)
        tensor([2., 5.])
    """
    if layout.ptr is not None:
        return segment_mean(values.unsqueeze(-1), ptr=layout.ptr,
                            num_graphs=num_graphs).squeeze(-1)
    if layout.index is not None:
        return segment_mean(values.unsqueeze(-1), batch=layout.index,
                            num_graphs=num_graphs).squeeze(-1)
    # one graph
    return values.sum(0, keepdim=True) / max(values.size(0), 1)


def nonempty_graphs(data: Data, layout: BatchLayout, device=None) -> Tensor:
    r"""``[B]`` bool: which graphs have at least one node (read from
    ``layout.ptr``/``num_nodes`` on the device, without a host read).

    Example:

        >>> from torch_geometric.data import Batch, Data
        >>> batch = Batch.from_data_list([Data(num_nodes=2),
        ...                               Data(num_nodes=0)])
        >>> nonempty_graphs(batch, batch_layout(batch))
        tensor([ True, False])
    """
    if layout.ptr is None:
        return torch.full((1, ), data.num_nodes > 0, dtype=torch.bool,
                          device=device)
    return layout.ptr.diff().to(device) > 0


__all__ = ['LEVELS', 'RowLayout', 'BatchLayout', 'batch_layout',
           'check_data', 'check_level', 'graph_layout', 'num_nodes',
           'row_layout', 'output_layout', 'check_batch_vector',
           'node_batch', 'act',
           'per_graph_mean', 'nonempty_graphs']
