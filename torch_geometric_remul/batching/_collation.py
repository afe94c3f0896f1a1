r"""PyG's collation record of a ``Batch``, read and written in one place.

``Batch.from_data_list`` records, for every attribute it concatenated, the
row offsets of each graph (``Batch._slice_dict``) and the increment it
added to index attributes such as ``edge_index`` (``Batch._inc_dict``).
Both are private attributes of PyG and live in host memory: reading their
values makes no device wait. This module is the only one that touches
them; the rest of the package asks it for an attribute's offsets.

Inside :func:`torch.compile` the record's values are not read (they would
be graph inputs, and reading them breaks the graph): :func:`describes` then
answers ``False`` and the caller places the tensor by its shape.

Example:

    >>> from torch_geometric.data import Batch, Data
    >>> batch = Batch.from_data_list([Data(pos=torch.zeros(2, 3)),
    ...                               Data(pos=torch.zeros(1, 3))])
    >>> slices(batch, 'pos')
    tensor([0, 2, 3])
    >>> host_offsets(batch, 'pos', num_graphs=2, rows=3)
    array([0, 2, 3])
"""
from typing import Dict, Optional

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from torch_geometric_remul._checks import host_values


def slice_record(data: Data) -> Dict[str, Tensor]:
    r"""The row offsets PyG recorded per collated attribute (an empty dict
    for a plain ``Data`` or a ``Batch`` built by hand)."""
    return getattr(data, '_slice_dict', None) or {}


def inc_record(data: Data) -> Dict[str, Tensor]:
    r"""The increments PyG added per collated index attribute (an empty
    dict when none were recorded)."""
    return getattr(data, '_inc_dict', None) or {}


def write_record(batch: Data, slices: Dict[str, Tensor],
                 incs: Dict[str, Tensor]) -> None:
    r"""Sets the collation record of a ``Batch`` built by arithmetic (as
    ``Batch.from_data_list`` would have written it), so that
    ``to_data_list()`` and :func:`slices` work on it."""
    batch._slice_dict = slices
    batch._inc_dict = incs


def slices(data: Data, key: str) -> Optional[Tensor]:
    r"""The recorded row offsets of attribute ``key``, or ``None``."""
    s = slice_record(data).get(key)
    return s if isinstance(s, Tensor) else None


def describes(offsets: Optional[Tensor], num_graphs: int, rows: int) -> bool:
    r"""Whether recorded ``offsets`` (host memory) still describe a tensor
    of ``rows`` rows in ``num_graphs`` graphs. A record goes stale when an
    attribute is replaced after collation (or by ``Batch.subgraph``): the
    tensor is then placed as an uncollated one. Always ``False`` inside
    :func:`torch.compile`."""
    if not isinstance(offsets, Tensor) or offsets.dim() != 1 or \
            offsets.numel() != num_graphs + 1 or \
            offsets.device.type != 'cpu':
        return False
    # host memory: reading it makes no device wait. Inside torch.compile
    # its values cannot be read without a graph break (they are graph
    # inputs): the tensor is then placed by its shape, as an uncollated one
    host = host_values(offsets)
    return host is not None and int(host[-1]) == rows


def host_offsets(data: Data, key: str, num_graphs: int,
                 rows: int) -> Optional[np.ndarray]:
    r"""The recorded offsets of ``key`` as a NumPy array read from host
    memory (no device wait), when they describe ``rows`` rows in
    ``num_graphs`` graphs; ``None`` otherwise (none recorded, stale, or
    inside :func:`torch.compile`)."""
    s = slices(data, key)
    if not describes(s, num_graphs, rows):
        return None
    return host_values(s)


def device_offsets(data: Data, offsets: Tensor, num_graphs: int,
                   device) -> Tensor:
    r"""The recorded ``offsets`` (host memory) on ``device``, taken from
    what is already there when they are the graph-level offsets (``0..B``,
    made on the device) or the node offsets (``data.ptr``), so that no
    host-to-device copy is made per step for them; other offsets (e.g.
    edge-level ones) are copied."""
    device = torch.device(device)
    if offsets.device == device:
        return offsets
    host = host_values(offsets)
    if host is not None:
        if bool((host == np.arange(num_graphs + 1)).all()):
            return torch.arange(num_graphs + 1, device=device)
        ptr = data.ptr if 'ptr' in data else None
        nodes = _host_node_ptr(data)
        if isinstance(ptr, Tensor) and ptr.device == device and \
                nodes is not None and nodes.shape == host.shape and \
                bool((nodes == host).all()):
            return ptr
    return offsets.to(device, non_blocking=True)


def _host_node_ptr(data: Data):
    """The node offsets of a ``Batch`` from host memory, when PyG recorded
    them: the increments it added to ``edge_index`` are the first ``B``
    of them, unless a ``Data`` subclass changed ``__inc__`` (``None``
    otherwise)."""
    if type(data).__inc__ is not Data.__inc__:
        return None
    inc = inc_record(data).get('edge_index')
    host = host_values(inc) if isinstance(inc, Tensor) else None
    if host is None or host.ndim != 1:
        return None
    return np.append(host, data.num_nodes)


__all__ = ['slice_record', 'inc_record', 'write_record', 'slices',
           'describes', 'host_offsets', 'device_offsets']
