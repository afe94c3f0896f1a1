r"""torch_geometric_remul: relaxed equivariance via multitask learning (REMUL)
for PyTorch Geometric."""
__version__ = '0.1.0'

from torch_geometric_remul import typing  # noqa: E402,F401
from torch_geometric_remul.debug import (  # noqa: E402
    debug, is_debug_enabled, set_debug)
from torch_geometric_remul.roles import Roles  # noqa: E402
from torch_geometric_remul import group  # noqa: E402
from torch_geometric_remul import transforms  # noqa: E402
from torch_geometric_remul import metrics  # noqa: E402
from torch_geometric_remul import graph  # noqa: E402
from torch_geometric_remul import datasets  # noqa: E402
from torch_geometric_remul import nn  # noqa: E402
from torch_geometric_remul.group import (  # noqa: E402
    RigidSampler, RigidTransform)
from torch_geometric_remul.transforms import (  # noqa: E402
    CenterPerGraph, RandomRigidTransform)
from torch_geometric_remul.nn import RemulLoss  # noqa: E402
from torch_geometric_remul.metrics import equivariance_error  # noqa: E402
from torch_geometric_remul import testing  # noqa: E402

__all__ = [
    '__version__',
    'debug',
    'is_debug_enabled',
    'set_debug',
    'testing',
    'group',
    'transforms',
    'graph',
    'datasets',
    'nn',
    'metrics',
    'RemulLoss',
    'equivariance_error',
    'RigidTransform',
    'RigidSampler',
    'Roles',
    'RandomRigidTransform',
    'CenterPerGraph',
]
