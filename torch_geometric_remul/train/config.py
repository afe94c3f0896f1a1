r"""Training configuration with per-task defaults."""
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

TASKS = ('nbody', 'gravity', 'md17', 'mocap')
LOSSES = ('plain', 'augment', 'remul')
WEIGHTINGS = ('constant', 'schedule', 'gradnorm', 'target')

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
    hidden: Optional[int] = None
    layers: Optional[int] = None
    num_train: Optional[int] = None
    num_val: Optional[int] = None
    num_test: Optional[int] = None
    eval_graphs: int = 200
    eval_samples: int = 20
    seed: int = 0
    data_root: str = 'data'
    run_dir: Optional[str] = None
    molecule: str = 'aspirin'
    #: Where the data comes from, for the md17 task ``'auto'``, ``'md17'``,
    #: ``'rmd17'`` or ``'standin'``, for mocap ``'files'`` or ``'proxy'``.
    source: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    def resolved(self) -> 'TrainConfig':
        r"""A validated copy with every ``None`` field filled from
        :data:`TASK_DEFAULTS` (``self`` is not modified).

        Raises:
            ValueError: Naming the field, for an unknown task, loss,
                weighting or model, or a size or learning rate out of range.
        """
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
        from torch_geometric_remul.nn.models import available_models
        if self.model.lower() not in available_models():
            raise ValueError(f"'model' must be one of "
                             f"{', '.join(available_models())} (got "
                             f"{self.model!r})")
        values = dataclasses.asdict(self)
        for key, value in TASK_DEFAULTS[self.task].items():
            if values.get(key) is None:
                values[key] = value
        out = TrainConfig(**values)
        for key in ('epochs', 'batch_size', 'num_train', 'num_val',
                    'num_test', 'eval_graphs', 'eval_samples'):
            if getattr(out, key) < 1:
                raise ValueError(f"'{key}' must be >= 1 (got "
                                 f"{getattr(out, key)})")
        if out.lr <= 0:
            raise ValueError(f"'lr' must be > 0 (got {out.lr})")
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
