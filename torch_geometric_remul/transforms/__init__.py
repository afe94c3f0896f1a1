r"""PyG transforms that move points and vectors per graph."""
from .center_per_graph import CenterPerGraph
from .functional import apply_rigid_transform
from .random_rigid_transform import (
                                     ROTATION_KEY,
                                     TRANSLATION_KEY,
                                     RandomRigidTransform,
                                     stored_transform,
)

__all__ = [
    'RandomRigidTransform',
    'CenterPerGraph',
    'stored_transform',
    'apply_rigid_transform',
    'ROTATION_KEY',
    'TRANSLATION_KEY',
]
