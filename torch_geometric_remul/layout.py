r"""Which rows of a tensor belong to which graph of a ``Batch``.

A transform, a loss or a metric that moves a tensor graph by graph must know
the graph of every row. :func:`row_layout` answers from the ``Batch``'s own
collation metadata: PyG records, for every attribute it concatenated, the
row offsets of each graph (node-, edge- and graph-level attributes alike),
so the answer never depends on a guess from row counts. Only a tensor that
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

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data, HeteroData

from torch_geometric_remul._checks import host_values
from torch_geometric_remul.debug import is_debug_enabled

LEVELS = ('node', 'edge', 'graph')


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


def graph_layout(data: Data) -> Tuple[int, Optional[Tensor]]:
    r"""``(num_graphs, node ptr)`` of a ``Batch`` (``ptr`` on the data's
    device), or ``(1, None)`` for a single ``Data``. A ``Batch`` without
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
    if not isinstance(data, Batch):
        return 1, None
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
        from torch_geometric_remul.group.segment import batch_to_ptr
        ptr = batch_to_ptr(batch, B)
    if ptr.dim() != 1 or ptr.numel() != B + 1:
        raise ValueError(f"'batch.ptr' must have shape [{B + 1}] for {B} "
                         f"graph(s), got {list(ptr.shape)}")
    if is_debug_enabled():
        _debug_check_ptr_batch(data, ptr, batch, B)
    return B, ptr


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
               owner: Optional[str] = None) -> RowLayout:
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
    if level is not None and level not in LEVELS:
        raise ValueError(f"{prefix}'level' must be one of {', '.join(LEVELS)} "
                         f"(got {level!r})")
    if not isinstance(data, Batch):
        return RowLayout('single')

    B, node_ptr = graph_layout(data)
    device = value.device
    slices = getattr(data, '_slice_dict', None) or {}
    if level is None and key is not None and data[key] is value and \
            _describes(slices.get(key), B, _rows(value, 0)):
        return _collated(data, key, value, slices[key], B, prefix + name,
                         device)

    rows = value.size(0) if value.dim() > 0 else 1
    N = num_nodes(data)
    ei = _edge_index(data)
    if level is None:
        # a free tensor (target, model output) is node- or graph-level; a
        # stored attribute may also be edge-level
        num_edges = None if ei is None or key is None else ei.size(1)
        fits = [lvl for lvl, n in (('node', N), ('graph', B),
                                   ('edge', num_edges)) if n == rows]
        if len(fits) != 1:
            counts = f"{N} node(s), {B} graph(s)" + (
                f", {ei.size(1)} edge(s)" if ei is not None else '')
            what = (f"fits several layouts ({' and '.join(fits)})"
                    if fits else "matches none of them")
            raise ValueError(
                f"{prefix}cannot tell which rows of {name} ({rows} rows) "
                f"belong to "
                f"which graph: the Batch has {counts} and the row count "
                f"{what}. Collate the tensor with the graphs (set it on each "
                f"Data before Batch.from_data_list, so that the Batch records "
                f"its layout) or state its level ('node', 'edge' or "
                f"'graph')")
        level = fits[0]
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
    if _describes(slices.get('edge_index'), B, ei.size(1)):
        return _collated(data, 'edge_index', value, slices['edge_index'], B,
                         prefix + name, device, cat_dim=0)
    # edges added after collation: the graph of an edge is its source's
    return RowLayout('edge', index=data.batch.index_select(0, ei[0]).to(
        device))


def _describes(slices, B: int, rows: int) -> bool:
    """Whether PyG's collation metadata ``slices`` (host memory) still
    describes a tensor of ``rows`` rows in ``B`` graphs. Metadata goes stale
    when an attribute is replaced after collation (or by
    ``Batch.subgraph``): the tensor is then placed as an uncollated one."""
    if not isinstance(slices, Tensor) or slices.dim() != 1 or \
            slices.numel() != B + 1 or slices.device.type != 'cpu':
        return False
    # host memory: reading it makes no device wait. Inside torch.compile
    # its values cannot be read without a graph break (they are graph
    # inputs): the tensor is then placed by its shape, as an uncollated one
    host = host_values(slices)
    return host is not None and int(host[-1]) == rows


def _collated(data: Data, key: str, value: Tensor, slices: Tensor, B: int,
              name: str, device, cat_dim: Optional[int] = None) -> RowLayout:
    if cat_dim is None:
        cat_dim = data.__cat_dim__(key, value)
    if cat_dim is None or cat_dim != 0:
        raise ValueError(f"{name} is concatenated along dimension "
                         f"{cat_dim}, not rows; only row-wise attributes "
                         f"([rows, ...]) can be moved per graph")
    return RowLayout('collated', ptr=_device_slices(data, slices, B, device))


def _device_slices(data: Data, slices: Tensor, B: int, device) -> Tensor:
    """The collation offsets ``slices`` (host memory) on ``device``, taken
    from what is already there when they are the graph-level offsets
    (``0..B``, made on the device) or the node offsets (``data.ptr``), so
    that no host-to-device copy is made per step for them; other offsets
    (e.g. edge-level ones) are copied."""
    device = torch.device(device)
    if slices.device == device:
        return slices
    host = host_values(slices)
    if host is not None:
        if bool((host == np.arange(B + 1)).all()):
            return torch.arange(B + 1, device=device)
        ptr = data.ptr if 'ptr' in data else None
        nodes = _host_node_ptr(data)
        if isinstance(ptr, Tensor) and ptr.device == device and \
                nodes is not None and nodes.shape == host.shape and \
                bool((nodes == host).all()):
            return ptr
    return slices.to(device, non_blocking=True)


def _host_node_ptr(data: Data):
    """The node offsets of a ``Batch`` from host memory, when PyG recorded
    them: the increments it added to ``edge_index`` are the first ``B``
    of them, unless a ``Data`` subclass changed ``__inc__`` (``None``
    otherwise)."""
    if type(data).__inc__ is not Data.__inc__:
        return None
    inc = getattr(data, '_inc_dict', None) or {}
    inc = inc.get('edge_index')
    host = host_values(inc) if isinstance(inc, Tensor) else None
    if host is None or host.ndim != 1:
        return None
    return np.append(host, data.num_nodes)


__all__ = ['LEVELS', 'RowLayout', 'check_data', 'graph_layout', 'num_nodes',
           'row_layout']
