r"""Training configuration: every option of a run, its defaults (the one
place they are stated: the fields of :class:`TrainConfig` for the defaults
every task shares, :data:`TASK_DEFAULTS` for those that differ between
tasks), its validation, and reading it back from a file."""
import dataclasses
import json
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from torch_geometric_remul._checks import (
    check_bool,
    check_choice,
    check_int,
    check_real,
    check_str,
)
from torch_geometric_remul.nn.loss import MODES
from torch_geometric_remul.nn.weighting import WEIGHTINGS as _WEIGHTINGS

TASKS = ('nbody', 'gravity', 'md17', 'mocap', 'rmd17')
LOSSES = ('plain', 'augment', 'remul')
#: The names of ``weighting``: those of the weighting registry.
WEIGHTINGS = tuple(_WEIGHTINGS)
#: Where the data of a task go when no ``data_root`` is given.
DEFAULT_DATA_ROOT = 'data'
#: The data sources each task accepts, the default first (``None``: the
#: task's data are simulated, it has no source). The gravity task's are
#: protocols of its simulated data: ``'canonical'`` (systems in their
#: canonical frame; the ``'ood'`` split rotated) or ``'gatr'`` (GATr's:
#: systems randomly rotated, shifted and permuted; the ``'ood'`` split
#: shifted by 200 along x), see
#: ``GRAVITY_PROTOCOLS`` in ``torch_geometric_remul.train.tasks``.
SOURCES: Dict[str, Optional[Tuple[str, ...]]] = {
    'nbody': None,
    'gravity': ('canonical', 'gatr'),
    'md17': ('auto', 'md17', 'rmd17', 'standin'),
    'mocap': ('files', 'proxy', 'gmn'),
    # rmd17: the files under DATA_ROOT (or DATA_ROOT/rmd17), either layout
    'rmd17': None,
}
#: The largest seed (``2**63 - 1``): seeds are the integers ``0`` to
#: ``MAX_SEED``, the non-negative range of a signed 64-bit integer, which
#: every consumer of a seed accepts (:meth:`torch.Generator.manual_seed`
#: takes ``-2**63`` to ``2**64 - 1``, NumPy's generators any integer
#: ``>= 0``). The seeds derived from it (one per epoch, split, process)
#: are reduced modulo ``2**64`` by :func:`derive_seed`.
MAX_SEED = 2**63 - 1
#: Fields a resumed run may change (see :func:`resume_config`).
RESUMABLE = ('epochs', 'data_root', 'val_equivariance')

#: Defaults that differ between tasks (EGNN/GATr/EGNO protocols, scaled to
#: finish in minutes on a CPU; see docs). The data source of a task that
#: has several is the first of :data:`SOURCES`.
TASK_DEFAULTS: Dict[str, Dict[str, Any]] = {
    'nbody': dict(epochs=60, batch_size=100, lr=5e-4, num_train=3000,
                  num_val=2000, num_test=2000, group='SO3'),
    'gravity': dict(epochs=60, batch_size=64, lr=3e-4, num_train=3000,
                    num_val=1000, num_test=1000, group='SO3'),
    'md17': dict(epochs=100, batch_size=100, lr=5e-4, num_train=500,
                 num_val=2000, num_test=2000, group='SO3'),
    'mocap': dict(epochs=100, batch_size=12, lr=5e-4, num_train=200,
                  num_val=600, num_test=600, group='SO2'),
    # rMD17 energies + forces: a split's 1000 training frames are 950
    # training + the last 50 (in file order) for validation; its 1000 test
    # frames. Batch 5; lr 1.5e-3, the rate the validation search of
    # benchmarks/rmd17.py chose on ethanol for the GNN and EGNN (the
    # Transformer's was 1.7e-4; the GNN at 4.5e-3 ends at zero forces; see
    # docs/training.md)
    'rmd17': dict(epochs=100, batch_size=5, lr=1.5e-3, num_train=950,
                  num_val=50, num_test=1000, group='SO3'),
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
    #: Group elements per graph and step of the ``'augment'`` and
    #: ``'remul'`` losses: ``loss='augment', num_samples=2`` trains on two
    #: transformed copies of every graph per step, as many forward passes
    #: as REMUL's (a compute-matched augmentation baseline).
    num_samples: int = 1
    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    lr: Optional[float] = None
    weight_decay: float = 1e-12
    #: Clip the gradients' total 2-norm to this value before every
    #: optimiser step (``torch.nn.utils.clip_grad_norm_``; ``None``: no
    #: clipping). Give every model of a comparison the same value.
    clip_grad_norm: Optional[float] = None
    hidden_channels: Optional[int] = None
    num_layers: Optional[int] = None
    num_train: Optional[int] = None
    num_val: Optional[int] = None
    num_test: Optional[int] = None
    eval_graphs: int = 200
    eval_samples: int = 20
    #: Validate every ``val_every`` epochs and after the last one (the
    #: best-validation model is chosen among the validated epochs; EGNN's
    #: N-body protocol validates every 5 epochs).
    val_every: int = 1
    #: Measure the equivariance errors (E, E' and, for potentials, the
    #: errors on a rotated copy) at every validation. ``False``: only the
    #: validation loss and task metrics, all that selection reads (their
    #: columns in ``metrics.csv`` are ``nan``); the test split always gets
    #: every metric. Saves most of the cost of validating where it
    #: dominates (small training sets, force fields).
    val_equivariance: bool = True
    seed: int = 0
    #: ``None``: ``'data'`` (``DEFAULT_DATA_ROOT``).
    data_root: Optional[str] = None
    #: ``None``: ``runs/<task>-<model>-<loss>-<time>``.
    run_dir: Optional[str] = None
    molecule: str = 'aspirin'
    #: The rmd17 task's split of the release (1 to 5).
    fold: int = 1
    #: The rmd17 task's weight of the force MSE against the energy MSE
    #: (weight 1), both on the standardised targets.
    force_weight: float = 100.0
    #: Where the data come from, for the md17 task ``'auto'``, ``'md17'``,
    #: ``'rmd17'`` or ``'standin'``, for mocap ``'files'``, ``'proxy'``
    #: or ``'gmn'`` (the real files with GMN's split),
    #: for gravity the protocol ``'canonical'`` or ``'gatr'`` (``None``:
    #: the first a task accepts, see ``SOURCES``).
    source: Optional[str] = None
    #: Free-form notes saved with the run (not read by the training).
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
        from torch_geometric_remul.group import GROUPS
        from torch_geometric_remul.nn.models import available_models
        values = dataclasses.asdict(self)
        task = check_choice(values['task'], 'task', TASKS)
        for key, choices in (('loss', LOSSES), ('weighting', WEIGHTINGS),
                             ('mode', MODES)):
            check_choice(values[key], key, choices)
        values['model'] = check_choice(values['model'], 'model',
                                       available_models(), ignore_case=True)
        for key, value in TASK_DEFAULTS[task].items():
            if values[key] is None:
                values[key] = value
        if values['data_root'] is None:
            values['data_root'] = DEFAULT_DATA_ROOT
        values['group'] = check_choice(values['group'], 'group', GROUPS,
                                       ignore_case=True)
        values['source'] = _check_source(task, values['source'])
        for key in ('molecule', 'data_root'):
            check_str(values[key], key)
        check_str(values['run_dir'], 'run_dir', optional=True)
        check_bool(values['fused'], 'fused')
        check_bool(values['val_equivariance'], 'val_equivariance')
        check_seed(values['seed'])
        check_int(values['fold'], 'fold', minimum=1)
        check_real(values['force_weight'], 'force_weight', minimum=0,
                   strict=True, why=': the weight of the force loss')
        for key in ('epochs', 'batch_size', 'num_train', 'num_val',
                    'num_test', 'eval_graphs', 'eval_samples',
                    'num_samples', 'val_every', 'hidden_channels',
                    'num_layers'):
            if values[key] is not None or key not in _MODEL_DEFAULT:
                check_int(values[key], key, minimum=1)
        check_real(values['lr'], 'lr', minimum=0, strict=True)
        check_real(values['weight_decay'], 'weight_decay', minimum=0)
        if values['clip_grad_norm'] is not None:
            check_real(values['clip_grad_norm'], 'clip_grad_norm',
                       minimum=0, strict=True,
                       why=': the largest gradient norm of a step')
        for key in ('alpha', 'beta'):
            check_real(values[key], key, minimum=0, why=': a loss weight')
        check_real(values['epsilon'], 'epsilon', minimum=0, strict=True,
                   why=": the target E'")
        if not isinstance(values['extra'], dict):
            raise TypeError(f"'extra' must be a dict (got "
                            f"{type(values['extra']).__name__})")
        if values['loss'] == 'plain' and values['num_samples'] != 1:
            raise ValueError(f"'num_samples' must be 1 with loss 'plain' "
                             f"(no group elements are drawn; got "
                             f"{values['num_samples']})")
        out = TrainConfig(**values)
        if out.loss == 'remul':
            _check_weighting(out)
        return out

    def to_json(self) -> str:
        r"""The configuration as JSON (the content of ``config.json``)."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> 'TrainConfig':
        r"""The configuration of a ``config.json`` dictionary (not
        validated: see :meth:`resolved`).

        Raises:
            ValueError: For unknown fields.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown config field(s): {sorted(unknown)}")
        return cls(**values)


def check_seed(seed: Any, name: str = 'seed') -> int:
    r"""``seed`` as an ``int`` after checking that it lies in ``0`` to
    :data:`MAX_SEED` (the one check of every command's seed).

    Raises:
        TypeError: Naming ``name``, when ``seed`` is not an integer.
        ValueError: Naming ``name`` and the range, when it is out of range.

    Example:

        >>> check_seed(7)
        7
        >>> try:
        ...     check_seed(-1)
        ... except ValueError as e:
        ...     print(str(e).split(' (=')[0])
        'seed' must be an integer from 0 to 2**63 - 1
    """
    seed = check_int(seed, name)
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"'{name}' must be an integer from 0 to 2**63 - 1 "
                         f"(= {MAX_SEED}; got {seed})")
    return seed


def derive_seed(seed: int, multiplier: int, offset: int = 0) -> int:
    r"""``(seed * multiplier + offset) mod 2**64``: a seed derived from a
    run's seed (per epoch, split, ...), always in the range of
    :meth:`torch.Generator.manual_seed`. Without the reduction,
    ``seed * 100003`` exceeded ``2**64 - 1`` for seeds above about
    ``1.84e14`` ("Overflow when unpacking long long"); for every smaller
    seed the value is the product itself (runs are unchanged).

    Example:

        >>> derive_seed(3, 100003, 2)
        300011
        >>> derive_seed(MAX_SEED, 100003) < 2**64
        True
    """
    return (seed * multiplier + offset) % 2**64


#: Fields whose ``None`` means the default of the model's constructor.
_MODEL_DEFAULT = ('hidden_channels', 'num_layers')


def _check_source(task: str, source: Optional[str]) -> Optional[str]:
    sources = SOURCES[task]
    if sources is None:
        if source is not None:
            raise ValueError(f"'source' is not an option of the {task} "
                             f"task: its data are simulated (got "
                             f"{source!r})")
        return None
    if source is None:
        return sources[0]
    if check_str(source, 'source') not in sources:
        raise ValueError(f"'source' for the {task} task must be one of "
                         f"{', '.join(sources)} (got {source!r})")
    return source


def defaults(task: Optional[str] = None) -> Dict[str, Any]:
    r"""The default of every field: those every task shares (the fields of
    :class:`TrainConfig`), with those of ``task`` filled in when given
    (``None`` values are per task, or mean the model's own default).

    Example:

        >>> defaults()['beta'], defaults()['epochs']
        (1.0, None)
        >>> defaults('mocap')['epochs'], defaults('mocap')['source']
        (100, 'files')
    """
    out = {f.name: (f.default_factory() if f.default is dataclasses.MISSING
                    else f.default) for f in dataclasses.fields(TrainConfig)}
    if task is not None:
        out['task'] = check_choice(task, 'task', TASKS)
        out.update(TASK_DEFAULTS[task])
        out['source'] = _check_source(task, None)
        out['data_root'] = DEFAULT_DATA_ROOT
    return out


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
    (``RESUMABLE``: ``epochs``, ``data_root``, ``val_equivariance``)
    applied.

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


class ConfigFileError(ValueError):
    r"""A configuration file is not valid JSON/YAML or does not hold a
    mapping of options; its ``reason`` attribute says why (e.g.
    ``'empty'``).

    Example:

        >>> str(ConfigFileError('run.json', 'empty'))
        'run.json is not a valid configuration file (empty)'
    """
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f'{path} is not a valid configuration file '
                         f'({reason})')
        self.path, self.reason = path, reason


#: File name endings read as YAML (with PyYAML); any other is read as JSON.
YAML_SUFFIXES = ('.yaml', '.yml')
#: The largest configuration file read (1 MiB; a run's ``config.json`` is
#: about 1 KiB): a larger file, or a device such as ``/dev/zero``, is
#: refused after reading this many bytes.
MAX_CONFIG_BYTES = 2**20


def read_config_file(path: str) -> Dict[str, Any]:
    r"""The options in a configuration file: the ``config.json`` of a run,
    or a hand-written JSON file (YAML for names ending in ``.yaml`` or
    ``.yml``, when PyYAML is installed) holding a mapping of
    :class:`TrainConfig` fields to values.

    At most ``MAX_CONFIG_BYTES`` (1 MiB) are read. A key given twice in one
    mapping is refused (JSON and YAML parsers would silently keep the last
    value), and so are YAML anchors and aliases (``&name``, ``*name``: a
    few lines of aliases expand to gigabytes; a configuration has no use
    for them); YAML is read with PyYAML's safe loader (no Python objects).

    Raises:
        FileNotFoundError: When ``path`` does not exist.
        OSError: When it cannot be read.
        ConfigFileError: When it is empty, larger than
            ``MAX_CONFIG_BYTES`` (1 MiB), is not valid JSON/YAML, repeats a
            key, uses a YAML anchor or alias, or does not hold a mapping.

    Example:

        >>> import json, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), 'small.json')
        >>> with open(path, 'w') as f:
        ...     json.dump({'task': 'gravity', 'epochs': 3}, f)
        >>> read_config_file(path)
        {'task': 'gravity', 'epochs': 3}
        >>> with open(path, 'w') as f:
        ...     _ = f.write('{"beta": 1, "beta": 2}')
        >>> try:
        ...     read_config_file(path)
        ... except ConfigFileError as e:
        ...     print(e.reason)
        key 'beta' given twice
    """
    path = str(path)
    if not osp.exists(path):
        raise FileNotFoundError(f'{path} not found: no such configuration '
                                f'file')
    with open(path, 'rb') as f:
        raw = f.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigFileError(path, f'larger than {MAX_CONFIG_BYTES} bytes '
                              f'(1 MiB), the most a configuration file may '
                              f'hold')
    if not raw.strip():
        raise ConfigFileError(path, 'empty')
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError:
        raise ConfigFileError(path, 'not UTF-8 text') from None
    if path.lower().endswith(YAML_SUFFIXES):
        values = _parse_yaml(path, text)
    else:
        try:
            values = json.loads(text, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as e:
            raise ConfigFileError(path, f'not valid JSON: {e.msg} at line '
                                  f'{e.lineno}, column {e.colno}') from None
        except _Refused as e:
            raise ConfigFileError(path, str(e)) from None
    if not isinstance(values, dict):
        kind = 'JSON' if not path.lower().endswith(YAML_SUFFIXES) else 'YAML'
        raise ConfigFileError(path, f'holds a {kind} '
                              f'{type(values).__name__}, not an object')
    return values


class _Refused(Exception):
    r"""A configuration file construct that is refused (the reason)."""


def _unique_keys(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    r"""A JSON object's dictionary, refusing a key given twice."""
    out: Dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f'key {key!r} given twice')
        out[key] = value
    return out


def _parse_yaml(path: str, text: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise ConfigFileError(path, 'reading YAML needs PyYAML (pip install '
                              'pyyaml); or write it as JSON') from None

    class Loader(yaml.SafeLoader):
        r"""PyYAML's safe loader without anchors, aliases or repeated
        keys."""
        def compose_node(self, parent, index):
            event = self.peek_event()
            if getattr(event, 'anchor', None) is not None:
                kind = '*' if isinstance(event, yaml.AliasEvent) else '&'
                raise _Refused(f'YAML {"alias" if kind == "*" else "anchor"}'
                               f' {kind}{event.anchor} at line '
                               f'{event.start_mark.line + 1}: anchors and '
                               f'aliases are not accepted, write the values '
                               f'out')
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue  # refused by the constructor (unhashable)
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise _Refused(f'key {key_node.value!r} given twice '
                                   f'(line {key_node.start_mark.line + 1})')
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 (a SafeLoader)
    except _Refused as e:
        raise ConfigFileError(path, str(e)) from None
    except yaml.YAMLError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ''
        raise ConfigFileError(path, f'not valid YAML: {first}') from None


def load_config(path: str,
                overrides: Optional[Mapping[str, Any]] = None
                ) -> TrainConfig:
    r"""The validated configuration of a file (see
    :func:`read_config_file`) with ``overrides`` (field -> value; ``None``
    values are ignored) applied, e.g. the options given on the command
    line of ``remul train --config PATH``.

    The file must hold a valid configuration on its own (errors name the
    file); fields it leaves out take their defaults. The ``run_dir`` of a
    run's own ``config.json`` (the directory holding the file) is dropped:
    that run is never overwritten, the new run goes to ``overrides``'
    ``run_dir`` or a new directory.

    Raises:
        OSError, ConfigFileError: See :func:`read_config_file`.
        TypeError, ValueError: Naming the field (and the file when the
            field comes from it).

    Example:

        >>> import json, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), 'small.json')
        >>> with open(path, 'w') as f:
        ...     json.dump({'task': 'gravity', 'epochs': 3}, f)
        >>> config = load_config(path, {'epochs': 5, 'lr': None})
        >>> config.task, config.epochs, config.lr
        ('gravity', 5, 0.0003)
    """
    values = read_config_file(path)
    run_dir = values.get('run_dir')
    if isinstance(run_dir, str) and osp.isdir(run_dir) and \
            osp.samefile(run_dir, osp.dirname(osp.abspath(path))):
        values = {k: v for k, v in values.items() if k != 'run_dir'}
    try:
        TrainConfig.from_dict(values).resolved()
    except (TypeError, ValueError) as e:
        raise type(e)(f'{path}: {e}') from None
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    return TrainConfig.from_dict({**values, **given}).resolved()


__all__ = ['TASKS', 'LOSSES', 'WEIGHTINGS', 'MODES', 'SOURCES',
           'TASK_DEFAULTS', 'DEFAULT_DATA_ROOT', 'RESUMABLE', 'MAX_SEED',
           'MAX_CONFIG_BYTES',
           'TrainConfig', 'check_seed', 'derive_seed',
           'ConfigFileError', 'defaults', 'read_config_file', 'load_config',
           'resume_config']
