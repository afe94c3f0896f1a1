r"""Strategies for the weights of
:class:`~torch_geometric_remul.nn.RemulLoss`."""
from .base import Weighting
from .constant import Constant
from .gradnorm import GradNorm
from .registry import WEIGHTINGS, available_weightings, build_weighting
from .schedule import Schedule
from .target import TargetEquivariance

__all__ = [
    'Weighting',
    'Constant',
    'Schedule',
    'GradNorm',
    'TargetEquivariance',
    'WEIGHTINGS',
    'available_weightings',
    'build_weighting',
]
