r"""Building a run's model and loss from its configuration and task, and
restoring a trained model from its run directory."""
import dataclasses
import os.path as osp
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from torch_geometric_remul.nn import RemulLoss
from torch_geometric_remul.nn.models import build_model
from torch_geometric_remul.nn.models.base import READOUT_MARK
from torch_geometric_remul.nn.weighting import build_weighting
from torch_geometric_remul.train import distributed
from torch_geometric_remul.train.checkpoint import (
    BEST,
    RunDirectoryError,
    load_best,
    restore_errors,
)
from torch_geometric_remul.train.config import TrainConfig
from torch_geometric_remul.train.rundir import CHECKPOINT, load_run
from torch_geometric_remul.train.tasks import TaskSpec, task_spec

#: The models of a run that can be restored: ``'best'`` (the epoch of the
#: best validation MSE, ``best.pt``) and ``'last'`` (``checkpoint.pt``).
WHICH = ('best', 'last')


def last_layer_parameters(model: torch.nn.Module) -> List[torch.Tensor]:
    r"""Parameters of the last module (in registration order) that owns
    parameters: the output layer shared by both REMUL losses, for
    :class:`~torch_geometric_remul.nn.GradNorm`.

    Example:

        >>> model = torch.nn.Sequential(torch.nn.Linear(2, 4),
        ...                             torch.nn.Linear(4, 1))
        >>> [p.shape for p in last_layer_parameters(model)]
        [torch.Size([1, 4]), torch.Size([1])]
    """
    last = None
    for module in model.modules():
        own = [p for p in module.parameters(recurse=False)
               if p.requires_grad]
        if own:
            last = own
    if last is None:
        raise ValueError('the model has no trainable parameters')
    return last


def build_task_model(config: TrainConfig, spec: TaskSpec,
                     example) -> torch.nn.Module:
    r"""The model of ``config.model`` for the task ``spec``, its weights
    drawn from ``config.seed``.

    Args:
        config (TrainConfig): The resolved configuration.
        spec (TaskSpec): The task (its roles and invariant inputs).
        example (Data): One graph of the task (a fixed-size model such as
            ``"mlp"`` takes its number of nodes).

    Example:

        >>> config = TrainConfig(model='egnn', hidden_channels=8,
        ...                      num_layers=1).resolved()
        >>> spec = task_spec(config)
        >>> model = build_task_model(config, spec, example=None)
        >>> model.vectors, model.output
        (('vel',), 'point')
    """
    kwargs = spec.model_kwargs
    if config.hidden_channels is not None:
        kwargs['hidden_channels'] = config.hidden_channels
    if config.num_layers is not None:
        kwargs['num_layers'] = config.num_layers
    if config.model == 'mlp':  # a fixed-size model: the task's graph size
        kwargs['num_nodes'] = example.num_nodes
    torch.manual_seed(config.seed)
    model = build_model(config.model, **kwargs)
    if spec.potential:  # energy, and forces = -dE/dpos by autograd
        from torch_geometric_remul.train.mlip import Potential
        model = Potential(model)
    return model


#: ``config.weighting`` -> the constructor arguments of that weighting
#: (besides ``alpha``) from the configuration, the model and the number of
#: steps per epoch; the weighting is built by name with
#: :func:`~torch_geometric_remul.nn.weighting.build_weighting`, as models are
#: with :func:`~torch_geometric_remul.nn.models.build_model`.
WEIGHTING_OPTIONS: Dict[str, Callable[[TrainConfig, torch.nn.Module, int],
                                      Dict[str, Any]]] = {
    'constant': lambda config, model, steps: dict(beta=config.beta),
    # beta rises over the first half of the run
    'schedule': lambda config, model, steps: dict(
        beta_end=config.beta,
        total_steps=max(1, config.epochs * steps // 2)),
    'gradnorm': lambda config, model, steps: dict(
        shared_parameters=last_layer_parameters(model), beta=config.beta),
    'target': lambda config, model, steps: dict(epsilon=config.epsilon,
                                                beta=config.beta),
}


def build_loss(config: TrainConfig, spec: TaskSpec, model: torch.nn.Module,
               steps_per_epoch: int, rank: int = 0) -> Optional[RemulLoss]:
    r"""The loss of ``config.loss``: ``None`` for the plain MSE baseline.

    Args:
        config (TrainConfig): The resolved configuration.
        spec (TaskSpec): The task (its roles say what the group moves).
        model (torch.nn.Module): The (unwrapped) model.
        steps_per_epoch (int): Optimiser steps per epoch.
        rank (int, optional): The process's rank: its group elements are
            drawn from a generator seeded from ``config.seed`` and ``rank``.
            (default: ``0``)

    Example:

        >>> config = TrainConfig(loss='remul', beta=10.0).resolved()
        >>> spec = task_spec(config)
        >>> model = torch.nn.Linear(3, 3)
        >>> build_loss(config, spec, model, steps_per_epoch=30).weighting
        Constant(alpha=1, beta=10)
    """
    if config.loss == 'plain':
        return None
    seed = distributed.rank_seed(config.seed + 1, rank)
    common = dict(roles=spec.roles, group=config.group, mode=config.mode,
                  axis=spec.axis, fused=config.fused,
                  num_samples=config.num_samples,
                  generator=torch.Generator().manual_seed(seed))
    if spec.output_weights is not None:  # several named outputs
        common['output_weights'] = spec.output_weights
    if config.loss == 'augment':
        return RemulLoss(alpha=0.0, beta=1.0, **common)
    options = WEIGHTING_OPTIONS[config.weighting](config, model,
                                                  steps_per_epoch)
    weighting = build_weighting(config.weighting, alpha=config.alpha,
                                **options)
    return RemulLoss(weighting=weighting, **common)


def _fused_devices() -> Tuple[str, ...]:
    """The device types with a fused Adam kernel in this PyTorch."""
    try:
        from torch.optim.optimizer import _get_fused_kernels_supported_devices
        return tuple(_get_fused_kernels_supported_devices())
    except ImportError:  # pragma: no cover - older or newer PyTorch
        return ('cpu', 'cuda')


def build_optimizer(config: TrainConfig,
                    model: torch.nn.Module) -> torch.optim.Adam:
    r"""The optimiser of a run: Adam with ``config.lr`` and
    ``config.weight_decay``, on its fused kernel (``fused=True``: one
    kernel updates every parameter, instead of about ten tensor operations
    per parameter, without reading the step counter on the host) when
    every parameter is a floating-point tensor on a device that has one
    (CPU, CUDA and others, :func:`torch.optim.Adam`), else the default
    implementation. The update is Adam's either way, equal up to float
    rounding (``tests/train/test_build.py``). On CPU the fused optimiser
    step is 3.3-4.4x faster than the default one, which makes a whole training
    step of the N-body and rMD17 tasks 1.03-1.12x faster
    (``python benchmarks/optimizer.py``, docs/performance.md).

    Args:
        config (TrainConfig): The resolved configuration.
        model (torch.nn.Module): The model (its parameters built).

    Example:

        >>> config = TrainConfig(lr=1e-3).resolved()
        >>> optimizer = build_optimizer(config, torch.nn.Linear(3, 3))
        >>> optimizer.defaults['fused'], optimizer.defaults['lr']
        (True, 0.001)
    """
    params = list(model.parameters())
    devices = _fused_devices()
    fused = bool(params) and all(
        p.is_floating_point() and p.device.type in devices
        and not isinstance(p, torch.nn.parameter.UninitializedParameter)
        for p in params)
    return torch.optim.Adam(params, lr=config.lr,
                            weight_decay=config.weight_decay,
                            fused=fused or None)


def load_weights(run_dir: str, which: str = 'best'):
    r"""``(config, state_dict, epoch)`` of a run's model: ``which='best'``
    the model of the epoch with the best validation MSE (``best.pt``),
    ``'last'`` the last checkpoint's; both loaded with
    ``weights_only=True``.

    Raises:
        ValueError: For another ``which``.
        RunDirectoryError: When the run directory or the file is missing,
            damaged or unsafe (a run written before best-validation
            selection has no ``best.pt``: the message says to pass
            ``--which last``).

    Example:

        ``result`` is the run trained by the example of
        :func:`~torch_geometric_remul.train.train` (shared by the doctests):

        >>> config, weights, epoch = load_weights(result.run_dir, 'last')
        >>> epoch, config.task
        (1, 'nbody')
        >>> load_weights(result.run_dir)[2]  # the best-validation epoch
        1
    """
    if which not in WHICH:
        raise ValueError(f"'which' must be one of {', '.join(WHICH)} "
                         f"(got {which!r})")
    config, checkpoint = load_run(run_dir)
    if which == 'last':
        return config, checkpoint['model'], checkpoint['epoch']
    path = osp.join(run_dir, BEST)
    if not osp.lexists(path):
        raise RunDirectoryError(
            f'{path} not found: the run has no best-validation model '
            f'(written before it was kept); evaluate its last epoch with '
            f'--which last')
    best = load_best(path)
    return config, best['model'], best['epoch']


#: The package trees (``code_version()['package_tree']``) whose models with
#: ``readout="node"`` (the rmd17 task's potentials, atomic energies summed)
#: wrote weights before those were marked (``node_readout``, see
#: :class:`~torch_geometric_remul.nn.models.BaseModel`). Weights of a run
#: trained only by these clean trees are restored as they were trained; any
#: other unmarked potential had its head on the pooled features (another
#: function) and is refused.
UNMARKED_NODE_READOUT_TREES = frozenset({
    'f8867c751e42198a832d6d5902c3597c5d5dcb94',
    '4a7ce22d7910b0e168dfeb7e3ff4a9ff9c198e4e',
})


def legacy_readout_weights(weights: Dict[str, Any], model: torch.nn.Module,
                           code_versions: Optional[List[Dict[str, Any]]]
                           ) -> Dict[str, Any]:
    r"""``weights`` (a state dict for ``model``) with the ``node_readout``
    marks ``model`` expects added, when they lack them and every code
    version that trained them (``code_versions``, as a checkpoint records
    them) is a clean package tree of :data:`UNMARKED_NODE_READOUT_TREES`;
    else ``weights`` unchanged (so that loading unmarked weights of another
    origin fails, naming the readout). Never modifies ``weights``."""
    expected = {k: v for k, v in model.state_dict().items()
                if k.rsplit('.', 1)[-1] == READOUT_MARK}
    versions = list(code_versions or [])
    if not expected or any(k in weights for k in expected) or not versions:
        return weights
    if not all(v.get('package_tree') in UNMARKED_NODE_READOUT_TREES
               and not v.get('package_dirty') for v in versions):
        return weights
    return dict(weights, **expected)


def restore_model(run_dir: str, data_root: Optional[str] = None,
                  which: str = 'best'
                  ) -> Tuple[TrainConfig, TaskSpec, torch.nn.Module]:
    r"""``(config, spec, model)`` of a run, the model holding the weights of
    the epoch with the best validation MSE (``which='best'``, from
    ``best.pt``) or of its last checkpoint (``which='last'``), in eval
    mode.

    Args:
        run_dir (str): The run directory.
        data_root (str, optional): Where the task's data are (or are to be
            made) now, if not where the run read them (``config.data_root``
            is replaced in the returned configuration).
        which (str, optional): ``'best'`` or ``'last'``.
            (default: ``'best'``)

    Example:

        ``result`` is the run trained by the example of
        :func:`~torch_geometric_remul.train.train` (shared by the doctests):

        >>> config, spec, model = restore_model(result.run_dir)
        >>> spec.name, model.training
        ('nbody', False)
    """
    config, weights, _ = load_weights(run_dir, which)
    if data_root is not None:
        config = dataclasses.replace(config, data_root=str(data_root))
    config = config.resolved()
    spec = task_spec(config)
    model = build_task_model(config, spec, spec.load('test')[0])
    if any(k.rsplit('.', 1)[-1] == READOUT_MARK and k not in weights
           for k in model.state_dict()):
        # unmarked weights of a potential may come from a tree that summed
        # atomic energies before the mark (its checkpoint says which)
        weights = legacy_readout_weights(
            weights, model, load_run(run_dir)[1].get('code_versions'))
    with restore_errors(osp.join(run_dir, BEST if which == 'best'
                                 else CHECKPOINT)):
        model.load_state_dict(weights)
    model.eval()
    return config, spec, model


__all__ = ['UNMARKED_NODE_READOUT_TREES', 'WHICH', 'build_loss',
           'build_optimizer',
           'build_task_model', 'last_layer_parameters',
           'legacy_readout_weights', 'load_weights', 'restore_model']
