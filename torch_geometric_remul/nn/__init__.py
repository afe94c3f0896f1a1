r"""Neural-network components: the REMUL loss, weightings and models."""
from . import models, weighting
from ._fuse import concat_copies
from .loss import RemulLoss, RemulOutput
from .models import available_models, build_model
from .weighting import (
                        Constant,
                        GradNorm,
                        Schedule,
                        TargetEquivariance,
                        Weighting,
)

__all__ = [
    'RemulLoss',
    'RemulOutput',
    'concat_copies',
    'models',
    'build_model',
    'available_models',
    'weighting',
    'Weighting',
    'Constant',
    'Schedule',
    'GradNorm',
    'TargetEquivariance',
]
