r"""torch_geometric_remul: relaxed equivariance via multitask learning (REMUL)
for PyTorch Geometric."""
__version__ = '0.1.0'

from torch_geometric_remul import (
    datasets,  # noqa: E402
    graph,  # noqa: E402
    group,  # noqa: E402
    metrics,  # noqa: E402
    nn,  # noqa: E402
    testing,  # noqa: E402
    transforms,  # noqa: E402
    typing,  # noqa: E402,F401
)
from torch_geometric_remul.debug import debug, is_debug_enabled, set_debug  # noqa: E402
from torch_geometric_remul.group import RigidSampler, RigidTransform  # noqa: E402
from torch_geometric_remul.metrics import equivariance_error  # noqa: E402
from torch_geometric_remul.nn import RemulLoss  # noqa: E402
from torch_geometric_remul.roles import Roles  # noqa: E402
from torch_geometric_remul.transforms import (  # noqa: E402
    CenterPerGraph,
    RandomRigidTransform,
)

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
