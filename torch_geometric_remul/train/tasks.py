r"""What each task trains on: datasets, declared attributes and roles."""
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Tuple

from torch_geometric_remul.transforms import CenterPerGraph
from torch_geometric_remul.train.config import TrainConfig


@dataclass
class TaskSpec:
    r"""Declared inputs and outputs of a task, shared by the model (what to
    read), the loss (what to move) and the metrics."""
    name: str
    description: str
    #: model constructor keywords describing the inputs
    model_kwargs: Dict[str, Any]
    points: Tuple[str, ...] = ('pos', )
    vectors: Tuple[str, ...] = ('vel', )
    output: str = 'point'
    target: str = 'y'
    #: ``split -> dataset``
    load: Callable[[str], Any] = field(default=None, repr=False)


def _nbody(config: TrainConfig) -> TaskSpec:
    from torch_geometric_remul.datasets import ChargedParticles
    root = osp.join(config.data_root, 'charged')
    # Centre every graph (the paper removes translations by centring); the
    # target moves with the same shift so the task is unchanged.
    center = CenterPerGraph(points=('pos', 'y'))

    def load(split):
        return ChargedParticles(root, split=split, num_train=config.num_train,
                                num_val=config.num_val,
                                num_test=config.num_test, seed=config.seed,
                                transform=center)

    return TaskSpec(
        'nbody', 'charged particles N-body (EGNN setup, simulated)',
        dict(output='point', points='pos', vectors=('vel', ),
             scalars=('charge', ), scalar_dim=1,
             edge_scalars=('edge_attr', ), edge_scalar_dim=1), load=load)


def _gravity(config: TrainConfig) -> TaskSpec:
    from torch_geometric_remul.datasets import Gravity
    root = osp.join(config.data_root, 'gravity')
    center = CenterPerGraph(points=('pos', 'y'), weight='mass')

    def load(split):
        return Gravity(root, split=split, num_train=config.num_train,
                       num_val=config.num_val, num_test=config.num_test,
                       seed=config.seed, transform=center)

    return TaskSpec(
        'gravity', 'star and planets gravity (GATr setup, simulated)',
        dict(output='point', points='pos', vectors=('vel', ),
             scalars=('mass', ), scalar_dim=1, edge_scalars=('edge_attr', ),
             edge_scalar_dim=1), load=load)


_BUILDERS = {'nbody': _nbody, 'gravity': _gravity}


def task_spec(config: TrainConfig) -> TaskSpec:
    r"""The :class:`TaskSpec` of ``config.task``."""
    if config.task not in _BUILDERS:
        raise ValueError(
            f"task {config.task!r} is not available from the command line "
            f"yet (available: {', '.join(sorted(_BUILDERS))}); its dataset "
            f"class can be used directly from torch_geometric_remul.datasets")
    return _BUILDERS[config.task](config)
