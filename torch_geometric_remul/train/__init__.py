r"""Training: configuration, tasks and the loop behind ``remul train``
(multi-process and multi-node under ``torchrun``; the distributed plumbing
is in ``torch_geometric_remul.train.distributed``, run directories and
checkpoints in ``torch_geometric_remul.train.rundir`` and
``torch_geometric_remul.train.checkpoint``)."""
from .config import (LOSSES, TASK_DEFAULTS, TASKS, WEIGHTINGS, TrainConfig,
                     resume_config)
from .tasks import TaskSpec, task_spec
from .checkpoint import RunDirectoryError
from .rundir import load_run, read_config
from .loop import (EpochStats, TrainingError, TrainResult, build_loss,
                   evaluate_split, last_layer_parameters, restore_model,
                   train, train_step)

__all__ = [
    'TrainConfig',
    'TASKS',
    'LOSSES',
    'WEIGHTINGS',
    'TASK_DEFAULTS',
    'resume_config',
    'TaskSpec',
    'task_spec',
    'train',
    'train_step',
    'EpochStats',
    'TrainResult',
    'TrainingError',
    'RunDirectoryError',
    'build_loss',
    'evaluate_split',
    'last_layer_parameters',
    'load_run',
    'read_config',
    'restore_model',
]
