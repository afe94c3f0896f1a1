r"""Per-graph (segment) reductions, now in
:mod:`torch_geometric_remul.batching.segment`; kept under this module path
for code that imports them from here.

Example:

    >>> segment_sum(torch.ones(3, 1), ptr=torch.tensor([0, 1, 3]))
    tensor([[1.],
            [2.]])
"""
from torch_geometric_remul.batching.segment import (
    batch_to_ptr,
    broadcast_to_rows,
    center,
    ptr_to_batch,
    segment_counts,
    segment_mean,
    segment_sum,
)

__all__ = [
    'ptr_to_batch',
    'batch_to_ptr',
    'segment_counts',
    'segment_sum',
    'segment_mean',
    'broadcast_to_rows',
    'center',
]
