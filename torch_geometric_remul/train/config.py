r"""Training configuration with per-task defaults."""
import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

TASKS = ('nbody', 'gravity', 'md17', 'mocap')
LOSSES = ('plain', 'augment', 'remul')
WEIGHTINGS = ('constant', 'schedule', 'gradnorm', 'target')
MODES = ('target', 'consistency')
#: Where the data of a task go when no ``data_root`` is given.
DEFAULT_DATA_ROOT = 'data'
#: The data sources each task accepts (``None``: the task has one source).
SOURCES: Dict[str, Optional[Tuple[str, ...]]] = {
    'nbody': None,
    'gravity': None,
    'md17': ('auto', 'md17', 'rmd17', 'standin'),
    'mocap': ('files', 'proxy'),
}
#: Fields a resumed run may change (see :func:`resume_config`).
RESUMABLE = ('epochs', 'data_root')

#: Defaults that differ between tasks (EGNN/GATr/EGNO protocols, scaled to
#: finish in minutes on a CPU; see docs).
TASK_DEFAULTS: Dict[str, Dict[str, Any]] = {
    'nbody': dict(epochs=60, batch_size=100, lr=5e-4, num_train=3000,
                  num_val=2000, num_test=2000, group='SO3'),
    'gravity': dict(epochs=60, batch_size=64, lr=3e-4, num_train=3000,
                    num_val=1000, num_test=1000, group='SO3'),
    'md17': dict(epochs=100, batch_size=100, lr=5e-4, num_train=500,
                 num_val=2000, num_test=2000, group='SO3'),
    'mocap': dict(epochs=100, batch_size=12, lr=5e-4, num_train=200,
                  num_val=600, num_test=600, group='SO2'),
}


@dataclass
class TrainConfig:
    r"""Everything that determines a training run; saved as
    ``config.json`` in the run directory (``None`` fields are filled from
    :data:`TASK_DEFAULTS` by :meth:`resolved`).

    Example:

        >>> config = TrainConfig(task='nbody', model='egnn').resolved()
        >>> config.epochs, config.batch_size, config.group
        (60, 100, 'SO3')
    """
    task: str = 'nbody'
    model: str = 'gnn'
    loss: str = 'remul'
    alpha: float = 1.0
    beta: float = 1.0
    weighting: str = 'constant'
    epsilon: float = 0.01
    mode: str = 'target'
    group: Optional[str] = None
    fused: bool = False
    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    lr: Optional[float] = None
    weight_decay: float = 1e-12
    hidden_channels: Optional[int] = None
    num_layers: Optional[int] = None
    num_train: Optional[int] = None
    num_val: Optional[int] = None
    num_test: Optional[int] = None
    eval_graphs: int = 200
    eval_samples: int = 20
    seed: int = 0
    #: ``None``: :data:`DEFAULT_DATA_ROOT`.
    data_root: Optional[str] = None
    run_dir: Optional[str] = None
    molecule: str = 'aspirin'
    #: Where the data comes from, for the md17 task ``'auto'``, ``'md17'``,
    #: ``'rmd17'`` or ``'standin'``, for mocap ``'files'`` or ``'proxy'``.
    source: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    def resolved(self) -> 'TrainConfig':
        r"""A validated copy with every ``None`` field filled from
        :data:`TASK_DEFAULTS` (``self`` is not modified). It reads no data
        and touches no file: the command line calls it before any work.

        Raises:
            TypeError: Naming the field, for a value of the wrong type.
            ValueError: Naming the field, for an unknown task, loss,
                weighting, mode, model, group or data source, a size out of
                range, a learning rate that is not a finite positive
                number, or a weight (``alpha``, ``beta``, ``epsilon``) that
                is negative or not finite.
        """
        _check_types(self)
        if self.task not in TASKS:
            raise ValueError(f"'task' must be one of {', '.join(TASKS)} "
                             f"(got {self.task!r})")
        if self.loss not in LOSSES:
            raise ValueError(f"'loss' must be one of {', '.join(LOSSES)} "
                             f"(got {self.loss!r})")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"'weighting' must be one of "
                             f"{', '.join(WEIGHTINGS)} (got "
                             f"{self.weighting!r})")
        if self.mode not in MODES:
            raise ValueError(f"'mode' must be one of {', '.join(MODES)} "
                             f"(got {self.mode!r})")
        from torch_geometric_remul.nn.models import available_models
        if self.model.lower() not in available_models():
            raise ValueError(f"'model' must be one of "
                             f"{', '.join(available_models())} (got "
                             f"{self.model!r})")
        values = dataclasses.asdict(self)
        for key, value in TASK_DEFAULTS[self.task].items():
            if values.get(key) is None:
                values[key] = value
        if values['data_root'] is None:
            values['data_root'] = DEFAULT_DATA_ROOT
        from torch_geometric_remul.group import GROUPS
        if values['group'].upper() not in GROUPS:
            raise ValueError(f"'group' must be one of {', '.join(GROUPS)} "
                             f"(got {values['group']!r})")
        values['group'] = values['group'].upper()
        out = TrainConfig(**values)
        for key in ('epochs', 'batch_size', 'num_train', 'num_val',
                    'num_test', 'eval_graphs', 'eval_samples',
                    'hidden_channels', 'num_layers'):
            value = getattr(out, key)
            if value is not None and value < 1:
                raise ValueError(f"'{key}' must be >= 1 (got {value})")
        if not (math.isfinite(out.lr) and out.lr > 0):
            raise ValueError(f"'lr' must be a finite number > 0 (got "
                             f"{out.lr})")
        if not (math.isfinite(out.weight_decay) and out.weight_decay >= 0):
            raise ValueError(f"'weight_decay' must be a finite number >= 0 "
                             f"(got {out.weight_decay})")
        for key in ('alpha', 'beta'):
            value = getattr(out, key)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"'{key}' must be a finite number >= 0 "
                                 f"(got {value}): a loss weight")
        if not (math.isfinite(out.epsilon) and out.epsilon > 0):
            raise ValueError(f"'epsilon' must be a finite number > 0 (got "
                             f"{out.epsilon}): the target E'")
        if out.loss == 'remul':
            _check_weighting(out)
        sources = SOURCES[out.task]
        if sources is None and out.source is not None:
            raise ValueError(f"'source' is not an option of the {out.task} "
                             f"task: its data are simulated (got "
                             f"{out.source!r})")
        if sources is not None and out.source is not None and \
                out.source not in sources:
            raise ValueError(f"'source' for the {out.task} task must be one "
                             f"of {', '.join(sources)} (got {out.source!r})")
        return out

    def to_json(self) -> str:
        r"""The configuration as JSON (the content of ``config.json``)."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> 'TrainConfig':
        r"""The configuration of a ``config.json`` dictionary.

        Raises:
            ValueError: For unknown fields.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown config field(s): {sorted(unknown)}")
        return cls(**values)


_STR = ('task', 'model', 'loss', 'weighting', 'mode', 'molecule')
_OPTIONAL_STR = ('group', 'source', 'data_root', 'run_dir')
_INT = ('seed', )
_OPTIONAL_INT = ('epochs', 'batch_size', 'hidden_channels', 'num_layers',
                 'num_train', 'num_val', 'num_test')
_POSITIVE_INT = ('eval_graphs', 'eval_samples')
_FLOAT = ('alpha', 'beta', 'epsilon', 'weight_decay')
_OPTIONAL_FLOAT = ('lr', )


def _check_types(config: TrainConfig) -> None:
    def fail(key, expected):
        value = getattr(config, key)
        raise TypeError(f"'{key}' must be {expected} (got "
                        f"{type(value).__name__} {value!r})")

    for key in _STR:
        if not isinstance(getattr(config, key), str):
            fail(key, 'a string')
    for key in _OPTIONAL_STR:
        if not isinstance(getattr(config, key), (str, type(None))):
            fail(key, 'a string or None')
    for key in _INT + _OPTIONAL_INT + _POSITIVE_INT:
        value = getattr(config, key)
        if value is None and key in _OPTIONAL_INT:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            fail(key, 'an integer')
    for key in _FLOAT + _OPTIONAL_FLOAT:
        value = getattr(config, key)
        if value is None and key in _OPTIONAL_FLOAT:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(key, 'a number')
    if not isinstance(config.fused, bool):
        fail('fused', 'a bool')
    if not isinstance(config.extra, dict):
        fail('extra', 'a dict')


def _check_weighting(config: TrainConfig) -> None:
    r"""Checks the weights of ``loss='remul'`` for the chosen weighting,
    the way the weighting itself will (before any work)."""
    if config.weighting in ('constant', 'schedule') and \
            config.alpha == 0 and config.beta == 0:
        raise ValueError("'alpha' and 'beta' are both 0: the loss would be "
                         "0 and nothing would be trained")
    if config.weighting == 'gradnorm':
        for key in ('alpha', 'beta'):
            if getattr(config, key) <= 0:
                raise ValueError(f"'{key}' must be > 0 with weighting "
                                 f"'gradnorm' (the initial weights it "
                                 f"adapts; got {getattr(config, key)})")
    if config.weighting == 'target':
        from torch_geometric_remul.nn import TargetEquivariance
        try:
            TargetEquivariance(epsilon=config.epsilon, alpha=config.alpha,
                               beta=config.beta)
        except ValueError as e:
            raise ValueError(f"weighting 'target': {e} (beta is the initial "
                             f"weight)") from None


def _option(key: str) -> str:
    return '--' + key.replace('_', '-')


def _same(key: str, given: Any, saved: Any) -> bool:
    if isinstance(given, str) and isinstance(saved, str) and \
            key in ('group', 'model'):
        return given.lower() == saved.lower()
    if isinstance(given, (int, float)) and isinstance(saved, (int, float)) \
            and not isinstance(given, bool) and not isinstance(saved, bool):
        return float(given) == float(saved)
    return given == saved


def resume_config(saved: TrainConfig, given: Mapping[str, Any],
                  done_epochs: Optional[int] = None
                  ) -> Tuple[TrainConfig, List[str]]:
    r"""The configuration a resumed run continues with: ``saved`` (the
    run's ``config.json``) with the options in ``given`` that may change
    (``RESUMABLE``: ``epochs``, ``data_root``) applied.

    Args:
        saved (TrainConfig): The run's configuration.
        given (dict): The options the user gave explicitly (field -> value).
        done_epochs (int, optional): Epochs the run has completed (then
            ``epochs`` may not be fewer).

    Returns:
        ``(config, applied)``: the configuration and a description of each
        option that changed it (e.g. ``'--epochs 10 (was 5)'``).

    Raises:
        ValueError: Naming every option whose value differs from the run's
            and cannot change when resuming (they would be ignored
            otherwise, or would make the continuation another run).

    Example:

        >>> saved = TrainConfig(epochs=5, lr=1e-3).resolved()
        >>> config, applied = resume_config(saved, {'epochs': 10,
        ...                                         'lr': 1e-3})
        >>> config.epochs, applied
        (10, ['--epochs 10 (was 5)'])
        >>> try:
        ...     resume_config(saved, {'lr': 5.0, 'model': 'transformer'})
        ... except ValueError as e:
        ...     print(str(e).split(', --model')[0])
        cannot change --lr 5.0 (the run has 0.001)
    """
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"unknown option(s): {unknown}")
    conflicts, applied, values = [], [], dataclasses.asdict(saved)
    for key, value in given.items():
        if value is None:
            continue
        old = values.get(key)
        if key in RESUMABLE:
            if not _same(key, value, old):
                applied.append(f'{_option(key)} {value} (was {old})')
                values[key] = value
        elif key == 'run_dir':
            continue  # the caller knows where the run is
        elif not _same(key, value, old):
            conflicts.append(f'{_option(key)} {value} (the run has '
                             f'{old!r})')
    if conflicts:
        raise ValueError(
            f"cannot change {', '.join(conflicts)} when resuming: a resumed "
            f"run continues with its own configuration (only "
            f"{', '.join(_option(k) for k in RESUMABLE)} may change); to "
            f"train with other options start a new run with another "
            f"--run-dir")
    out = TrainConfig(**values)
    if done_epochs is not None and out.epochs is not None and \
            out.epochs < done_epochs:
        raise ValueError(f"--epochs {out.epochs} is fewer than the "
                         f"{done_epochs} epoch{'s' * (done_epochs != 1)} "
                         f"the run has already done")
    return out, applied
