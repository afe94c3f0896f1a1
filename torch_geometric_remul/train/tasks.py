r"""What each task trains on: datasets, declared attributes and roles."""
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Tuple, Union

import torch
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform, Compose

from torch_geometric_remul.transforms import CenterPerGraph
from torch_geometric_remul.train.config import (DEFAULT_DATA_ROOT, SOURCES,
                                                TrainConfig)


@dataclass
class TaskSpec:
    r"""Declared inputs and outputs of a task, shared by the model (what to
    read), the loss (what to move) and the metrics.

    Example:

        >>> spec = task_spec(TrainConfig(task='nbody'))
        >>> spec.points, spec.vectors, spec.output
        (('pos',), ('vel',), 'point')
    """
    name: str
    description: str
    #: model constructor keywords describing the inputs
    model_kwargs: Dict[str, Any]
    points: Tuple[str, ...] = ('pos', )
    vectors: Tuple[str, ...] = ('vel', )
    output: str = 'point'
    target: str = 'y'
    #: rotation axis when the task's group is ``"SO2"``
    axis: Union[int, str] = 2
    #: ``split -> dataset``
    load: Callable[[str], Any] = field(default=None, repr=False)


def _data_root(config: TrainConfig) -> str:
    return config.data_root or DEFAULT_DATA_ROOT


def _nbody(config: TrainConfig) -> TaskSpec:
    from torch_geometric_remul.datasets import ChargedParticles
    root = osp.join(_data_root(config), 'charged')
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
    root = osp.join(_data_root(config), 'gravity')
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


#: Elements of the MD17 molecules (H, C, N, O), in one-hot order.
ELEMENTS = (1, 6, 7, 8)


class AtomOneHot(BaseTransform):
    r"""Adds ``atom`` ``[N, len(ELEMENTS)]``: a one-hot encoding of the
    atomic numbers ``z`` (an invariant scalar input for the models)."""
    def forward(self, data: Data) -> Data:
        table = torch.full((max(ELEMENTS) + 1, ), -1, dtype=torch.long)
        table[list(ELEMENTS)] = torch.arange(len(ELEMENTS))
        z = data.z
        index = table[z.clamp(max=max(ELEMENTS))]
        if bool((z > max(ELEMENTS)).any()) or bool((index < 0).any()):
            found = sorted(set(z.tolist()))
            raise ValueError(f"AtomOneHot: atomic numbers {found} outside "
                             f"the supported elements {ELEMENTS}")
        data.atom = torch.nn.functional.one_hot(index, len(ELEMENTS)).float()
        return data


def _md17(config: TrainConfig) -> TaskSpec:
    from torch_geometric_remul.datasets import (MD17Trajectories,
                                                generate_md17_standin)
    root = osp.join(_data_root(config), 'md17')
    source = config.source or 'auto'
    if source == 'standin':
        # a labelled classical stand-in (RDKit MMFF94), made on first use
        generate_md17_standin(config.molecule, root=root)
    transform = Compose([AtomOneHot(), CenterPerGraph(points=('pos', 'y'))])

    def load(split):
        return MD17Trajectories(root, config.molecule, split=split,
                                num_train=config.num_train,
                                num_val=config.num_val,
                                num_test=config.num_test, seed=config.seed,
                                source=source, transform=transform)

    label = ' (classical RDKit stand-in, not MD17)' if source == \
        'standin' else ''
    return TaskSpec(
        'md17', f'MD17 {config.molecule} trajectories{label}',
        dict(output='point', points='pos', vectors=('vel', ),
             scalars=('atom', ), scalar_dim=len(ELEMENTS)), load=load)


def _mocap(config: TrainConfig) -> TaskSpec:
    from torch_geometric_remul.datasets import (MotionCapture,
                                                generate_mocap_proxy)
    source = config.source or 'files'
    if source == 'proxy':
        root = osp.join(_data_root(config), 'mocap-proxy')
        if not osp.isdir(osp.join(root, 'raw')):
            generate_mocap_proxy(osp.join(root, 'raw'), seed=config.seed)
    elif source == 'files':
        root = osp.join(_data_root(config), 'mocap')
    else:
        raise ValueError(f"'source' for the mocap task must be 'files' or "
                         f"'proxy' (got {source!r})")
    center = CenterPerGraph(points=('pos', 'y'))

    def load(split):
        return MotionCapture(root, split=split, num_train=config.num_train,
                             num_val=config.num_val, num_test=config.num_test,
                             seed=config.seed, transform=center)

    label = ' (synthetic proxy, not motion capture)' if source == \
        'proxy' else ''
    return TaskSpec(
        'mocap', f'motion capture, skeleton graph{label}',
        dict(output='point', points='pos', vectors=('vel', )), load=load,
        axis='y')


_BUILDERS = {'nbody': _nbody, 'gravity': _gravity, 'md17': _md17,
             'mocap': _mocap}


def task_spec(config: TrainConfig) -> TaskSpec:
    r"""The :class:`TaskSpec` of ``config.task``.

    Example:

        >>> task_spec(TrainConfig(task='gravity')).model_kwargs['scalars']
        ('mass',)
    """
    if config.task not in _BUILDERS:
        raise ValueError(
            f"task {config.task!r} is not available from the command line "
            f"yet (available: {', '.join(sorted(_BUILDERS))}); its dataset "
            f"class can be used directly from torch_geometric_remul.datasets")
    if SOURCES.get(config.task) is None and config.source is not None:
        raise ValueError(f"'source' is not an option of the {config.task} "
                         f"task: its data are simulated (got "
                         f"{config.source!r})")
    return _BUILDERS[config.task](config)
