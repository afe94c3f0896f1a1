r"""A shallow copy of a PyG ``Data``/``Batch`` that :func:`torch.compile` can
trace.

``copy.copy(data)`` (PyG's ``Data.__copy__``) copies the attribute store's
dictionary with ``copy.copy``, which dispatches to the builtin
``dict.copy``: Dynamo cannot trace that call and breaks the graph there
(once per transformed copy of a REMUL step). :func:`shallow_copy` makes the
same copy with operations Dynamo follows: a new object of the same class
sharing every attribute value, with its own store (its own key -> value
dictionary, whose parent is the new object), so that assigning an
attribute of the copy never touches the original.
"""
import copy
import weakref
from typing import TypeVar

import torch
from torch_geometric.data import Data
from torch_geometric.data.storage import GlobalStorage

D = TypeVar('D')


def _traceable_copy(data: Data) -> Data:
    """What ``Data.__copy__`` and ``BaseStorage.__copy__`` do, with
    ``dict(...)`` instead of ``copy.copy`` of the store's dictionary."""
    out = data.__class__.__new__(data.__class__)
    for key, value in data.__dict__.items():
        out.__dict__[key] = value
    store = data.__dict__['_store']
    new = store.__class__.__new__(store.__class__)
    for key, value in store.__dict__.items():
        if key != '_cached_attr':
            new.__dict__[key] = value
    new.__dict__['_mapping'] = dict(store.__dict__['_mapping'])
    new.__dict__['_parent'] = weakref.ref(out)
    out.__dict__['_store'] = new
    return out


def _is_plain(data) -> bool:
    """A ``Data``/``Batch`` whose copy is PyG's own (not overridden by a
    subclass), with its attributes in one ``GlobalStorage``."""
    return (isinstance(data, Data)
            and type(data).__copy__ is Data.__copy__
            and isinstance(data.__dict__.get('_store'), GlobalStorage)
            and type(data.__dict__['_store']).__copy__ is
            GlobalStorage.__copy__
            and '_mapping' in data.__dict__['_store'].__dict__)


def shallow_copy(data: D) -> D:
    r"""``copy.copy(data)``: outside :func:`torch.compile` PyG's own copy;
    while Dynamo traces, for a ``Data``/``Batch`` (not a subclass with its
    own ``__copy__``), the same shallow copy built in a way Dynamo can
    trace (no graph break). Anything else goes to ``copy.copy``.

    Example:

        >>> from torch_geometric.data import Data
        >>> data = Data(pos=torch.zeros(2, 3))
        >>> out = shallow_copy(data)
        >>> out.pos = out.pos + 1
        >>> float(data.pos.sum()), float(out.pos.sum())
        (0.0, 6.0)
    """
    if torch.compiler.is_compiling() and _is_plain(data):
        return _traceable_copy(data)
    return copy.copy(data)
