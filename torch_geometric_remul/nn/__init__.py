r"""Neural-network components: the REMUL loss, weightings and models."""
from . import models, weighting
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
