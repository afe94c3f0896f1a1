r"""Which rows of a tensor belong to which graph of a ``Batch``: the names
of :mod:`torch_geometric_remul.batching` under their earlier module path
(kept for code that imports them from here).

Example:

    >>> from torch_geometric.data import Data
    >>> graph_layout(Data(num_nodes=2))
    (1, None)
"""
from torch_geometric_remul.batching.layout import (
    LEVELS,
    RowLayout,
    check_data,
    graph_layout,
    num_nodes,
    row_layout,
)

__all__ = ['LEVELS', 'RowLayout', 'check_data', 'graph_layout', 'num_nodes',
           'row_layout']
