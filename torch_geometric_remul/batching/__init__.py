r"""Which row belongs to which graph: the one module that reads PyG's
collation record, resolves the layout of a ``Data``/``Batch`` once per call
(:func:`batch_layout`), places the rows of a tensor (:func:`row_layout`)
and reduces rows per graph (:func:`segment_sum`, :func:`segment_mean`,
...)."""
from .layout import (
    LEVELS,
    BatchLayout,
    RowLayout,
    act,
    batch_layout,
    check_batch_vector,
    check_data,
    check_level,
    graph_layout,
    node_batch,
    nonempty_graphs,
    num_nodes,
    output_layout,
    per_graph_mean,
    row_layout,
)
from .segment import (
    batch_to_ptr,
    broadcast_to_rows,
    center,
    ptr_to_batch,
    segment_counts,
    segment_mean,
    segment_sum,
)

__all__ = [
    'LEVELS',
    'BatchLayout',
    'RowLayout',
    'batch_layout',
    'graph_layout',
    'check_data',
    'check_level',
    'num_nodes',
    'row_layout',
    'output_layout',
    'check_batch_vector',
    'node_batch',
    'act',
    'per_graph_mean',
    'nonempty_graphs',
    'segment_sum',
    'segment_mean',
    'segment_counts',
    'center',
    'broadcast_to_rows',
    'ptr_to_batch',
    'batch_to_ptr',
]
