r"""Training: the experiment layer behind ``remul train``, one idea per
module:

* ``config``: every option of a run, its defaults (global and per task),
  validation, reading a configuration file, and what a resumed run may
  change;
* ``tasks``: each task's datasets and the roles of its inputs and target;
* ``build``: the model and the loss of a configuration, and a trained model
  restored from its run directory;
* ``step``: one training step and the running sums of an epoch (the
  sync-free per-step path);
* ``evaluate``: MSE and equivariance errors of a model on a split;
* ``checkpoint``: the checkpoint format, random generator states, writing
  and safely loading checkpoints;
* ``rundir``: run directories (reading them back, refusing to overwrite
  one, cleaning up a run that never reached a checkpoint);
* ``report``: metrics files, test results, plots and the progress bar;
* ``runtime``: where the loop runs (one process, or one rank under
  ``torchrun``), the one object that knows the difference;
* ``distributed``: the :mod:`torch.distributed` plumbing under it;
* ``provenance``: the code version, library versions and machine a run
  records;
* ``loop``: the loop itself, :func:`train`.
"""
from .build import (
    build_loss,
    build_optimizer,
    build_task_model,
    last_layer_parameters,
    load_weights,
    restore_model,
)
from .checkpoint import RunDirectoryError
from .config import (
    LOSSES,
    TASK_DEFAULTS,
    TASKS,
    WEIGHTINGS,
    ConfigFileError,
    TrainConfig,
    defaults,
    load_config,
    read_config_file,
    resume_config,
)
from .evaluate import evaluate_split
from .loop import TrainingError, TrainResult, train
from .provenance import code_version, machine, same_code
from .rundir import load_run, read_config
from .runtime import Runtime
from .step import EpochStats, train_step
from .tasks import TaskSpec, load_task, prepared, task_spec

__all__ = [
    'TrainConfig',
    'TASKS',
    'LOSSES',
    'WEIGHTINGS',
    'TASK_DEFAULTS',
    'defaults',
    'load_config',
    'read_config_file',
    'ConfigFileError',
    'resume_config',
    'TaskSpec',
    'task_spec',
    'load_task',
    'prepared',
    'train',
    'train_step',
    'EpochStats',
    'TrainResult',
    'TrainingError',
    'RunDirectoryError',
    'Runtime',
    'build_loss',
    'build_optimizer',
    'build_task_model',
    'evaluate_split',
    'last_layer_parameters',
    'load_run',
    'read_config',
    'restore_model',
    'load_weights',
    'code_version',
    'machine',
    'same_code',
]
