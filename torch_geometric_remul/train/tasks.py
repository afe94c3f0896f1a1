r"""What each task of ``remul train`` trains on: its datasets, its inputs
and the geometric roles of its inputs and target, stated once in a
:class:`~torch_geometric_remul.roles.Roles` from which the model, the
loss, the centring transform and the metrics take their declarations."""
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform, Compose

from torch_geometric_remul._checks import check_choice
from torch_geometric_remul.roles import Roles
from torch_geometric_remul.train.config import TrainConfig
from torch_geometric_remul.transforms import CenterPerGraph

#: The roles of every task: positions are points, velocities vectors, and
#: the target (future positions) a point.
POSITIONS_AND_VELOCITIES = Roles(points='pos', vectors='vel', output='point')


@dataclass
class TaskSpec:
    r"""A task: its roles (shared by the model, the loss, the centring and
    the metrics), its invariant inputs, its target and its datasets.

    Example:

        >>> spec = task_spec(TrainConfig(task='nbody'))
        >>> spec.roles
        Roles(points=['pos'], vectors=['vel'], output='point')
        >>> sorted(spec.model_kwargs)
        ['edge_scalar_dim', 'edge_scalars', 'roles', 'scalar_dim', 'scalars']
    """
    name: str
    description: str
    #: Geometric roles of the inputs and of the target.
    roles: Roles
    #: Model constructor keywords of the invariant inputs (``scalars``,
    #: ``scalar_dim``, ``edge_scalars``, ``edge_scalar_dim``).
    invariants: Dict[str, Any] = field(default_factory=dict)
    target: Union[str, Dict[str, str]] = 'y'
    #: Rotation axis when the task's group is ``"SO2"``.
    axis: Union[int, str] = 2
    #: The splits :attr:`load` accepts (the gravity task adds ``'ood'``,
    #: its test systems each rotated, and ``'planets'``, test systems with
    #: more planets, for models that accept variable graph sizes).
    splits: Tuple[str, ...] = ('train', 'val', 'test')
    #: ``split -> dataset``
    load: Callable[[str], Any] = field(default=None, repr=False)
    # Interatomic potentials (the rmd17 task) #################################
    #: Whether the model is a
    #: ``torch_geometric_remul.train.mlip.Potential`` around a
    #: backbone with a per-graph scalar output (``roles.output`` is then
    #: ``{'energy': 'scalar', 'forces': 'vector'}`` and ``target`` maps
    #: each output to its attribute).
    potential: bool = False
    #: Weight of each named output in the loss (``None``: one output).
    output_weights: Optional[Dict[str, float]] = None
    #: Metrics the task's evaluation adds to the shared ones.
    extra_metrics: Tuple[str, ...] = ()
    #: ``(model, dataset, spec, config, seed, runtime) -> metrics``: the
    #: task's own evaluation (``None``: the shared MSE and equivariance).
    #: Validation with ``val_equivariance=False`` also passes
    #: ``equivariance=False``: leave the equivariance metrics ``nan``.
    evaluate: Optional[Callable[..., Dict[str, float]]] = field(
        default=None, repr=False)
    #: ``() -> {file name: SHA-256}`` of the data files read, recorded in
    #: ``results.json``.
    data_files: Optional[Callable[[], Dict[str, str]]] = field(
        default=None, repr=False)
    #: The target standardisation of a potential
    #: (``torch_geometric_remul.train.mlip.EnergyForceStats``).
    energy_force_stats: Any = field(default=None, repr=False)

    @property
    def model_kwargs(self) -> Dict[str, Any]:
        r"""The keywords of
        :func:`~torch_geometric_remul.nn.models.build_model` that describe
        the inputs and the output: ``roles`` and :attr:`invariants` (for a
        potential, the backbone's per-graph scalar output: the head on
        every atom, summed, i.e. a sum of atomic energies)."""
        if self.potential:
            return dict(roles=self.roles.replace(output='scalar'),
                        pool='sum', readout='node', **self.invariants)
        return dict(roles=self.roles, **self.invariants)

    def targets(self, batch) -> Any:
        r"""The target of ``batch``: ``batch[target]``, or a mapping
        output name -> tensor when ``target`` is a mapping."""
        if isinstance(self.target, dict):
            return {k: batch[v] for k, v in self.target.items()}
        return batch[self.target]

    def centering(self, weight: Union[str, None] = None) -> CenterPerGraph:
        r"""The transform that centres every graph: the points of
        :attr:`roles`, and the target when it is a point (it moves with the
        same shift, so the task is unchanged)."""
        target = (self.target, ) if self.roles.output == 'point' else ()
        return CenterPerGraph(points=self.roles.points + target,
                              weight=weight)


#: The nbody task's data are EGNN's "nbody_small" files: one stream with
#: this seed (its ``generate_dataset.py --seed 43``), the same for every
#: run seed (the run's seed draws the initialisation and the batches).
NBODY_DATA_SEED = 43


def _nbody(config: TrainConfig) -> TaskSpec:
    from torch_geometric_remul.datasets import ChargedParticles
    root = osp.join(config.data_root, 'charged')
    spec = TaskSpec('nbody', "charged particles N-body (EGNN's generator "
                    'and nbody_small data)', POSITIONS_AND_VELOCITIES,
                    dict(scalars=('charge', ), scalar_dim=1,
                         edge_scalars=('edge_attr', ), edge_scalar_dim=1))
    # Centre every graph: the paper removes translations by centring.
    center = spec.centering()

    def load(split):
        return ChargedParticles(root, split=split, num_train=config.num_train,
                                num_val=config.num_val,
                                num_test=config.num_test,
                                seed=NBODY_DATA_SEED, transform=center)

    spec.load = load
    return spec


#: The in-distribution options of the gravity dataset
#: (:class:`~torch_geometric_remul.datasets.Gravity`) and the ``ood_shift``
#: of its ``'ood'`` split, per data source of the gravity task:
#: ``'canonical'`` (our canonical frame: rotation is the distribution
#: shift) and ``'gatr'`` (GATr's protocol: systems randomly rotated,
#: shifted with standard deviation 20 and permuted; the ``'ood'`` split
#: moved by 200 along x). The task centres every graph on its centre of
#: mass, which undoes the translations of both.
GRAVITY_PROTOCOLS: Dict[str, Dict[str, Any]] = {
    'canonical': dict(data=dict(), ood_shift=0.0),
    'gatr': dict(data=dict(rotate=True, permute=True, shift_std=20.0),
                 ood_shift=200.0),
}
#: Planets per system of the gravity task's ``'planets'`` split (training
#: uses the dataset's default, 3).
GRAVITY_TEST_PLANETS = 5


def _gravity(config: TrainConfig) -> TaskSpec:
    from torch_geometric_remul.datasets import Gravity
    root = osp.join(config.data_root, 'gravity')
    protocol = GRAVITY_PROTOCOLS[config.source]
    label = '; GATr protocol: rotated, shifted, permuted' if \
        config.source == 'gatr' else ''
    spec = TaskSpec('gravity', f'star and planets gravity (GATr setup, '
                    f'simulated{label})', POSITIONS_AND_VELOCITIES,
                    dict(scalars=('mass', ), scalar_dim=1,
                         edge_scalars=('edge_attr', ), edge_scalar_dim=1),
                    splits=('train', 'val', 'test', 'ood', 'planets'))
    # The centre of mass: this also undoes every translation of the GATr
    # protocol (shift_std 20, ood_shift 200) before any model sees a graph.
    center = spec.centering(weight='mass')

    def load(split):
        split = check_choice(split, 'split', spec.splits)
        kwargs = dict(protocol['data'])
        if split == 'ood':
            kwargs['ood_shift'] = protocol['ood_shift']
        elif split == 'planets':  # the test systems, with more planets
            split, kwargs['num_planets'] = 'test', GRAVITY_TEST_PLANETS
        return Gravity(root, split=split, num_train=config.num_train,
                       num_val=config.num_val, num_test=config.num_test,
                       seed=config.seed, transform=center, **kwargs)

    spec.load = load
    return spec


#: Elements of the MD17 molecules (H, C, N, O), in one-hot order.
ELEMENTS = (1, 6, 7, 8)


class AtomOneHot(BaseTransform):
    r"""Adds ``atom`` ``[N, len(ELEMENTS)]``: a one-hot encoding of the
    atomic numbers ``z`` (an invariant scalar input for the models).

    Example:

        >>> AtomOneHot()(Data(z=torch.tensor([1, 8]))).atom
        tensor([[1., 0., 0., 0.],
                [0., 0., 0., 1.]])
    """
    def forward(self, data: Data) -> Data:
        table = torch.full((max(ELEMENTS) + 1, ), -1, dtype=torch.long)
        table[list(ELEMENTS)] = torch.arange(len(ELEMENTS))
        z = data.z
        index = table[z.clamp(max=max(ELEMENTS))]
        # data preparation on the CPU, not the training step: reading the
        # values here costs no device synchronisation
        if bool((z > max(ELEMENTS)).any()) or bool((index < 0).any()):
            found = sorted(set(z.tolist()))
            raise ValueError(f"AtomOneHot: atomic numbers {found} outside "
                             f"the supported elements {ELEMENTS}")
        data.atom = torch.nn.functional.one_hot(index, len(ELEMENTS)).float()
        return data


def _md17(config: TrainConfig) -> TaskSpec:
    from torch_geometric_remul.datasets import (
        MD17Trajectories,
        generate_md17_standin,
    )
    root = osp.join(config.data_root, 'md17')
    if config.source == 'standin':
        # a labelled classical stand-in (RDKit MMFF94), made on first use
        generate_md17_standin(config.molecule, root=root)
    label = ' (classical RDKit stand-in, not MD17)' if config.source == \
        'standin' else ''
    spec = TaskSpec('md17', f'MD17 {config.molecule} trajectories{label}',
                    POSITIONS_AND_VELOCITIES,
                    dict(scalars=('atom', ), scalar_dim=len(ELEMENTS)))
    transform = Compose([AtomOneHot(), spec.centering()])

    def load(split):
        return MD17Trajectories(root, config.molecule, split=split,
                                num_train=config.num_train,
                                num_val=config.num_val,
                                num_test=config.num_test, seed=config.seed,
                                source=config.source, transform=transform)

    spec.load = load
    return spec


#: The synthetic proxy of the mocap task is split by clip, so that no test
#: frame comes from a clip (a walk, a heading, a cadence) seen in training:
#: clips per split, in file order. Generated once with data seed
#: :data:`PROXY_DATA_SEED` (the run's seed draws the samples within each
#: split's clips and the initialisation).
PROXY_CLIPS = (('train', 4), ('val', 2), ('test', 2))
PROXY_DATA_SEED = 0


def proxy_clip_files() -> Dict[str, List[str]]:
    r"""The clip files of each split of the mocap task's synthetic proxy
    (names in its ``raw`` folder), as
    :class:`~torch_geometric_remul.datasets.MotionCapture`'s ``files``.

    Example:

        >>> proxy_clip_files()['test']
        ['synthetic_proxy_walk_07.amc', 'synthetic_proxy_walk_08.amc']
    """
    from torch_geometric_remul.datasets.mocap_proxy import PROXY_BASENAME
    out, k = {}, 0
    for split, count in PROXY_CLIPS:
        out[split] = [f'{PROXY_BASENAME}_{k + i + 1:02d}.amc'
                      for i in range(count)]
        k += count
    return out


#: The split file the mocap task's ``'gmn'`` source reads from
#: ``<data_root>/mocap/raw`` (beside the skeleton and its 23 clips), see
#: :class:`~torch_geometric_remul.datasets.MotionCapture`'s ``gmn_split``.
GMN_SPLIT_FILE = 'gmn_motion_split.json'


def _mocap(config: TrainConfig) -> TaskSpec:
    from torch_geometric_remul.datasets import (
        MotionCapture,
        generate_mocap_proxy,
    )
    from torch_geometric_remul.datasets.mocap_proxy import PROXY_BASENAME
    files = None
    if config.source == 'proxy':
        root = osp.join(config.data_root, 'mocap-proxy-by-clip')
        raw = osp.join(root, 'raw')
        files = proxy_clip_files()
        wanted = [f'{PROXY_BASENAME}.asf'] + [
            f for split in files.values() for f in split]
        if not all(osp.isfile(osp.join(raw, f)) for f in wanted):
            # deterministic: rewriting a present clip gives the same bytes
            generate_mocap_proxy(raw, num_clips=len(wanted) - 1,
                                 seed=PROXY_DATA_SEED)
    else:
        root = osp.join(config.data_root, 'mocap')
    gmn_split = GMN_SPLIT_FILE if config.source == 'gmn' else None
    label = {'proxy': ' (synthetic proxy split by clip, not motion capture)',
             'gmn': ' (GMN split)'}.get(config.source, '')
    # gravity picks the vertical axis: the task's group is SO2 about y
    spec = TaskSpec('mocap', f'motion capture, skeleton graph{label}',
                    POSITIONS_AND_VELOCITIES, axis='y')
    center = spec.centering()

    def load(split):
        return MotionCapture(root, split=split, files=files,
                             num_train=config.num_train,
                             num_val=config.num_val, num_test=config.num_test,
                             seed=config.seed, gmn_split=gmn_split,
                             transform=center)

    spec.load = load
    return spec


# rMD17 energies + forces ###################################################

class FullyConnectedEdges(BaseTransform):
    r"""Adds ``edge_index``: every ordered pair of distinct atoms.

    Example:

        >>> FullyConnectedEdges()(Data(z=torch.tensor([1, 6, 8]))).edge_index
        tensor([[0, 0, 1, 1, 2, 2],
                [1, 2, 0, 2, 0, 1]])
    """
    def forward(self, data: Data) -> Data:
        from torch_geometric_remul.datasets._utils import full_edge_index
        data.edge_index = full_edge_index(data.z.numel())
        return data


def rmd17_root(data_root: str) -> str:
    r"""The folder of the rmd17 task's files: ``data_root/rmd17`` when it
    exists, else ``data_root`` itself."""
    sub = osp.join(data_root, 'rmd17')
    return sub if osp.isdir(sub) else data_root


def _rmd17(config: TrainConfig) -> TaskSpec:
    from torch_geometric_remul.datasets import RMD17
    from torch_geometric_remul.train.mlip import (
        POTENTIAL_METRICS,
        POTENTIAL_OUTPUT,
        POTENTIAL_TARGET,
        EnergyForceStats,
        StandardizeEnergyForces,
        evaluate_potential,
    )
    root = rmd17_root(config.data_root)

    def dataset(split, transform=None):
        return RMD17(root, config.molecule, split=split, fold=config.fold,
                     num_val=config.num_val, num_train=config.num_train,
                     num_test=config.num_test, transform=transform)

    # standardised targets: (E - mean training E) / s and F / s, s the RMS
    # of the training force components (a transform: stored values intact)
    stats = EnergyForceStats(lambda: dataset('train'))
    spec = TaskSpec(
        'rmd17', f'rMD17 {config.molecule} energies and forces, split '
        f'{config.fold}', Roles(points='pos', output=POTENTIAL_OUTPUT),
        dict(scalars=('atom', ), scalar_dim=len(ELEMENTS)),
        target=dict(POTENTIAL_TARGET), potential=True,
        output_weights={'energy': 1.0, 'forces': config.force_weight},
        extra_metrics=POTENTIAL_METRICS, evaluate=evaluate_potential,
        data_files=lambda: dataset('test').data_files,
        energy_force_stats=stats)
    # Centre every molecule: the unconstrained backbones read Cartesian
    # coordinates relative to the centroid.
    transform = Compose([AtomOneHot(), StandardizeEnergyForces(stats),
                         spec.centering(), FullyConnectedEdges()])

    def load(split):
        return dataset(split, transform)

    spec.load = load
    return spec


_BUILDERS = {'nbody': _nbody, 'gravity': _gravity, 'md17': _md17,
             'mocap': _mocap, 'rmd17': _rmd17}


def task_spec(config: TrainConfig) -> TaskSpec:
    r"""The :class:`TaskSpec` of ``config.task`` (``config`` is resolved
    first: missing options take their defaults).

    Example:

        >>> spec = task_spec(TrainConfig(task='gravity'))
        >>> spec.invariants['scalars'], spec.roles.vectors
        (('mass',), ('vel',))
    """
    config = config.resolved()
    return _BUILDERS[config.task](config)


def load_task(config: TrainConfig) -> Tuple[TaskSpec, Tuple[Any, Any, Any]]:
    r"""``(spec, (train, val, test))``: the task of ``config`` and its three
    splits (simulated, generated or processed on first use), each a list of
    graphs prepared once (see :func:`prepared`).

    Example:

        >>> import tempfile
        >>> config = TrainConfig(task='gravity', num_train=4, num_val=2,
        ...                      num_test=2, data_root=tempfile.mkdtemp())
        >>> spec, splits = load_task(config)
        >>> spec.name, [len(split) for split in splits]
        ('gravity', [4, 2, 2])
    """
    spec = task_spec(config)
    return spec, tuple(prepared(spec.load(s))
                       for s in ('train', 'val', 'test'))


def prepared(dataset) -> List[Data]:
    r"""The graphs of ``dataset`` as a list, its ``transform`` applied once
    to each (instead of at every access, every epoch).

    The tasks' transforms (centring, one-hot atom types) are deterministic,
    so the graphs are exactly those a data loader would see on each access;
    reading and transforming them once saves most of the data-loading time
    of a training epoch (about 1 ms per small graph on a CPU core, more
    than the model's own step on the N-body tasks). A list is what
    :class:`~torch_geometric.loader.DataLoader` accepts, and it is sliced
    like the dataset.

    Args:
        dataset (Dataset): A PyG dataset (any sequence of graphs).

    Example:

        >>> import tempfile
        >>> from torch_geometric_remul.datasets import Gravity
        >>> ds = Gravity(tempfile.mkdtemp(), num_train=2,
        ...              transform=CenterPerGraph())
        >>> graphs = prepared(ds)
        >>> len(graphs), torch.equal(graphs[1].pos, ds[1].pos)
        (2, True)
        >>> float(graphs[1].pos.mean(0).abs().max()) < 1e-6  # centred
        True
    """
    return [dataset[i] for i in range(len(dataset))]


__all__ = ['TaskSpec', 'task_spec', 'load_task', 'prepared', 'AtomOneHot',
           'PROXY_CLIPS', 'PROXY_DATA_SEED', 'proxy_clip_files',
           'GMN_SPLIT_FILE', 'NBODY_DATA_SEED',
           'ELEMENTS', 'GRAVITY_PROTOCOLS', 'GRAVITY_TEST_PLANETS',
           'FullyConnectedEdges', 'rmd17_root']
