r"""Training: configuration, tasks and the loop behind ``remul train``
(multi-process and multi-node under ``torchrun``; the distributed plumbing
is in ``torch_geometric_remul.train.distributed``)."""
from .config import LOSSES, TASK_DEFAULTS, TASKS, WEIGHTINGS, TrainConfig
from .tasks import TaskSpec, task_spec
from .loop import (TrainingError, TrainResult, build_loss, evaluate_split,
                   last_layer_parameters, load_run, restore_model, train)

__all__ = [
    'TrainConfig',
    'TASKS',
    'LOSSES',
    'WEIGHTINGS',
    'TASK_DEFAULTS',
    'TaskSpec',
    'task_spec',
    'train',
    'TrainResult',
    'TrainingError',
    'build_loss',
    'evaluate_split',
    'last_layer_parameters',
    'load_run',
    'restore_model',
]
