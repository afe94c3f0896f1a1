r"""The group layer: the one place that samples, composes, inverts or applies
rotations and translations. The per-graph segment reductions live in
:mod:`torch_geometric_remul.batching` and are re-exported here."""
from torch_geometric_remul.batching.segment import (
    batch_to_ptr,
    broadcast_to_rows,
    center,
    ptr_to_batch,
    segment_mean,
    segment_sum,
)

from .rigid import GROUPS, RigidTransform
from .rotations import (
                        ROTATION_GROUPS,
                        axis_angle_to_matrix,
                        euler_to_matrix,
                        quaternion_to_matrix,
                        random_rotations,
                        rotation_angle,
)
from .sampler import DEFAULT_GROUP, RigidSampler

__all__ = [
    'GROUPS',
    'ROTATION_GROUPS',
    'RigidTransform',
    'RigidSampler',
    'DEFAULT_GROUP',
    'random_rotations',
    'quaternion_to_matrix',
    'axis_angle_to_matrix',
    'euler_to_matrix',
    'rotation_angle',
    'segment_sum',
    'segment_mean',
    'center',
    'broadcast_to_rows',
    'ptr_to_batch',
    'batch_to_ptr',
]
