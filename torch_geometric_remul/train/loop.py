r"""The training loop behind ``remul train``: REMUL (or a plain/augmented
baseline) on a task, with per-epoch validation, atomic checkpoints, bit-exact
resumption, metrics files and plots."""
import csv
import io
import json
import math
import os
import os.path as osp
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import torch
from torch_geometric.loader import DataLoader

from torch_geometric_remul._io import (atomic_torch_save, atomic_write_json,
                                       atomic_write_text)
from torch_geometric_remul.metrics import equivariance_error
from torch_geometric_remul.nn import (GradNorm, RemulLoss, Schedule,
                                      TargetEquivariance)
from torch_geometric_remul.nn.models import build_model
from torch_geometric_remul.train.config import TrainConfig
from torch_geometric_remul.train.tasks import TaskSpec, task_spec

CHECKPOINT = 'checkpoint.pt'


class TrainingError(RuntimeError):
    r"""Raised when training cannot go on (e.g. a non-finite loss)."""


@dataclass
class TrainResult:
    run_dir: str
    history: List[Dict[str, float]]
    test: Dict[str, float]
    interrupted: bool = False


def last_layer_parameters(model: torch.nn.Module) -> List[torch.Tensor]:
    r"""Parameters of the last module (in registration order) that owns
    parameters: the output layer shared by both REMUL losses, for
    :class:`~torch_geometric_remul.nn.GradNorm`."""
    last = None
    for module in model.modules():
        own = [p for p in module.parameters(recurse=False)
               if p.requires_grad]
        if own:
            last = own
    if last is None:
        raise ValueError('the model has no trainable parameters')
    return last


def build_loss(config: TrainConfig, spec: TaskSpec, model: torch.nn.Module,
               steps_per_epoch: int) -> Optional[RemulLoss]:
    r"""The loss of ``config.loss``: ``None`` for the plain MSE baseline."""
    if config.loss == 'plain':
        return None
    common = dict(output=spec.output, points=spec.points,
                  vectors=spec.vectors, group=config.group, mode=config.mode,
                  axis=spec.axis,
                  fused=config.fused,
                  generator=torch.Generator().manual_seed(config.seed + 1))
    if config.loss == 'augment':
        return RemulLoss(alpha=0.0, beta=1.0, **common)
    if config.weighting == 'constant':
        return RemulLoss(alpha=config.alpha, beta=config.beta, **common)
    if config.weighting == 'schedule':
        weighting = Schedule(beta_end=config.beta, alpha=config.alpha,
                             total_steps=max(1, config.epochs *
                                             steps_per_epoch // 2))
    elif config.weighting == 'gradnorm':
        weighting = GradNorm(last_layer_parameters(model))
    else:
        weighting = TargetEquivariance(epsilon=config.epsilon,
                                       alpha=config.alpha, beta=config.beta)
    return RemulLoss(weighting=weighting, **common)


def _model(config: TrainConfig, spec: TaskSpec,
           example) -> torch.nn.Module:
    kwargs = dict(spec.model_kwargs)
    if config.hidden is not None:
        kwargs['hidden'] = config.hidden
    if config.layers is not None:
        kwargs['layers'] = config.layers
    if config.model == 'mlp':  # a fixed-size model: the task's graph size
        kwargs['num_nodes'] = example.num_nodes
    torch.manual_seed(config.seed)
    return build_model(config.model, **kwargs)


@torch.no_grad()
def evaluate_split(model, dataset, spec: TaskSpec, config: TrainConfig,
                   seed: int) -> Dict[str, float]:
    r"""MSE over ``dataset`` and equivariance errors on its first
    ``config.eval_graphs`` graphs (group ``config.group``)."""
    was_training = model.training
    model.eval()
    try:
        total, count = 0.0, 0
        for batch in DataLoader(dataset, batch_size=config.batch_size):
            pred = model(batch)
            target = batch[spec.target]
            total += float(((pred - target)**2).sum())
            count += target.numel()
        sub = dataset[:min(config.eval_graphs, len(dataset))]
        err = equivariance_error(
            model, DataLoader(sub, batch_size=config.batch_size),
            output=spec.output, points=spec.points, vectors=spec.vectors,
            group=config.group, num_samples=config.eval_samples,
            axis=spec.axis, generator=torch.Generator().manual_seed(seed))
    finally:
        model.train(was_training)
    return {'mse': total / max(count, 1), 'E': err.E,
            'E_prime': err.E_prime, 'E_prime_rel': err.E_prime_rel}


def _default_run_dir(config: TrainConfig) -> str:
    stamp = time.strftime('%Y%m%d-%H%M%S')
    return osp.join('runs', f'{config.task}-{config.model}-{config.loss}-'
                    f'{stamp}')


def _write_metrics(run_dir: str, history: List[Dict[str, float]]) -> None:
    atomic_write_json(osp.join(run_dir, 'metrics.json'), history)
    if history:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
        atomic_write_text(osp.join(run_dir, 'metrics.csv'),
                          buffer.getvalue())


def plot_history(run_dir: str, history: List[Dict[str, float]]) -> List[str]:
    r"""Writes ``loss.png`` and ``equivariance.png``; returns the paths (an
    empty list when matplotlib is not installed)."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    epochs = [row['epoch'] for row in history]
    figures = {
        'loss.png': ('loss', {'train loss': 'train_loss',
                              'val MSE': 'val_mse'}),
        'equivariance.png': ('equivariance error', {"val E'": 'val_E_prime',
                                                    'val E': 'val_E'}),
    }
    paths = []
    for name, (title, curves) in figures.items():
        fig, ax = plt.subplots(figsize=(6, 4))
        for label, key in curves.items():
            ax.plot(epochs, [row[key] for row in history], label=label)
        ax.set_yscale('log')
        ax.set_xlabel('epoch')
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        paths.append(osp.join(run_dir, name))
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths


def load_run(run_dir: str):
    r"""``(config, checkpoint)`` of a run directory."""
    cfg_path = osp.join(run_dir, 'config.json')
    ckpt_path = osp.join(run_dir, CHECKPOINT)
    for path in (cfg_path, ckpt_path):
        if not osp.exists(path):
            raise FileNotFoundError(f"{path} not found: is {run_dir!r} a run "
                                    f"directory written by 'remul train'?")
    with open(cfg_path) as f:
        config = TrainConfig.from_dict(json.load(f))
    checkpoint = torch.load(ckpt_path, weights_only=False)
    return config, checkpoint


def train(config: TrainConfig, resume_from: Optional[str] = None,
          progress: bool = True,
          log: Callable[[str], Any] = print) -> TrainResult:
    r"""Trains and evaluates one model; see ``remul train --help``.

    Args:
        config (TrainConfig): The run's configuration (ignored, except
            ``epochs``, when resuming).
        resume_from (str, optional): A run directory to continue from its
            last checkpoint; the continuation is bit-identical to an
            uninterrupted run with the same configuration.
        progress (bool, optional): Show a progress bar. (default: ``True``)
        log (callable, optional): Receives status lines.
    """
    checkpoint = None
    if resume_from is not None:
        saved, checkpoint = load_run(resume_from)
        if config.epochs is not None:
            saved.epochs = config.epochs
        config = saved
        config.run_dir = resume_from
    config = config.resolved()
    run_dir = config.run_dir or _default_run_dir(config)
    config.run_dir = run_dir
    os.makedirs(run_dir, exist_ok=True)
    atomic_write_text(osp.join(run_dir, 'config.json'),
                      config.to_json() + '\n')

    spec = task_spec(config)
    log(f'task: {spec.description}')
    train_ds, val_ds, test_ds = (spec.load(s) for s in ('train', 'val',
                                                        'test'))
    model = _model(config, spec, train_ds[0])
    steps_per_epoch = math.ceil(len(train_ds) / config.batch_size)
    loss_fn = build_loss(config, spec, model, steps_per_epoch)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    history: List[Dict[str, float]] = []
    start_epoch, step = 0, 0
    if checkpoint is not None:
        model.load_state_dict(checkpoint['model'])
        optimizer.load_state_dict(checkpoint['optimizer'])
        if loss_fn is not None:
            loss_fn.load_state_dict(checkpoint['loss'])
            loss_fn.generator.set_state(checkpoint['loss_generator'])
        torch.set_rng_state(checkpoint['torch_rng'])
        history = checkpoint['history']
        start_epoch, step = checkpoint['epoch'], checkpoint['step']
        log(f'resuming {run_dir} after epoch {start_epoch}')
    n_params = sum(p.numel() for p in model.parameters())
    log(f'model: {config.model} ({n_params} parameters), loss: '
        f'{config.loss}' + (f' ({config.weighting}, beta={config.beta})'
                            if config.loss == 'remul' else '') +
        f', group: {config.group}')

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=config.epochs, initial=start_epoch, unit='epoch',
                   dynamic_ncols=True)
    interrupted = False
    try:
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            # The shuffling order depends on (seed, epoch) only, so that a
            # resumed run sees exactly the batches of an uninterrupted one.
            order = torch.Generator().manual_seed(config.seed * 100003 +
                                                  epoch)
            loader = DataLoader(train_ds, batch_size=config.batch_size,
                                shuffle=True, generator=order)
            model.train()
            sums = {'loss': 0.0, 'task': 0.0, 'equi': 0.0}
            alpha = beta = float('nan')
            for batch in loader:
                optimizer.zero_grad(set_to_none=True)
                target = batch[spec.target]
                try:
                    if loss_fn is None:
                        loss = torch.nn.functional.mse_loss(model(batch),
                                                            target)
                        if not bool(torch.isfinite(loss)):
                            raise FloatingPointError(
                                f'non-finite loss ({loss.item()})')
                        task, equi = loss, None
                    else:
                        out = loss_fn(model, batch, target)
                        loss, task, equi = out.loss, out.task, out.equi
                        alpha, beta = out.alpha, out.beta
                except FloatingPointError as e:
                    raise TrainingError(
                        f'training stopped at epoch {epoch + 1}, step '
                        f'{step + 1}: {e}') from e
                loss.backward()
                optimizer.step()
                step += 1
                sums['loss'] += float(loss.detach())
                sums['task'] += (float(task.detach()) if task is not None
                                 else math.nan)
                sums['equi'] += (float(equi.detach()) if equi is not None
                                 else math.nan)
            n = max(len(loader), 1)
            val = evaluate_split(model, val_ds, spec, config,
                                 seed=config.seed * 7919 + epoch)
            row = {
                'epoch': epoch + 1, 'step': step,
                'train_loss': sums['loss'] / n,
                'train_task': sums['task'] / n,
                'train_equi': sums['equi'] / n,
                'alpha': alpha, 'beta': beta,
                'val_mse': val['mse'], 'val_E': val['E'],
                'val_E_prime': val['E_prime'],
                'val_E_prime_rel': val['E_prime_rel'],
                'epoch_seconds': time.perf_counter() - t0,
            }
            history.append(row)
            _write_metrics(run_dir, history)
            state = {
                'model': model.state_dict(),
                'optimizer': optimizer.state_dict(),
                'loss': loss_fn.state_dict() if loss_fn is not None else {},
                'loss_generator': (loss_fn.generator.get_state()
                                   if loss_fn is not None else None),
                'torch_rng': torch.get_rng_state(),
                'epoch': epoch + 1, 'step': step, 'history': history,
                'config': json.loads(config.to_json()),
            }
            atomic_torch_save(osp.join(run_dir, CHECKPOINT), state)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f'{row["train_loss"]:.3g}',
                                val_mse=f'{row["val_mse"]:.3g}',
                                E_prime=f'{row["val_E_prime"]:.3g}')
    except KeyboardInterrupt:
        interrupted = True
        done = history[-1]['epoch'] if history else 0
        log(f'\ninterrupted: the checkpoint in {run_dir} holds epoch {done};'
            f' continue with: remul train --resume {run_dir}')
    finally:
        if bar is not None:
            bar.close()

    test = {}
    if not interrupted and history:
        test = evaluate_split(model, test_ds, spec, config,
                              seed=config.seed * 7919 + 10**6)
        test['seconds_per_epoch'] = sum(r['epoch_seconds'] for r in
                                        history) / len(history)
        atomic_write_json(osp.join(run_dir, 'results.json'), {
            'test': test, 'config': json.loads(config.to_json())})
        plots = plot_history(run_dir, history)
        if not plots:
            log('matplotlib is not installed: no plots written '
                "(pip install 'torch-geometric-remul[plot]')")
    return TrainResult(run_dir, history, test, interrupted)


def restore_model(run_dir: str):
    r"""``(config, spec, model)`` of a run, the model holding the weights of
    its last checkpoint, in eval mode."""
    config, checkpoint = load_run(run_dir)
    config = config.resolved()
    spec = task_spec(config)
    model = _model(config, spec, spec.load('test')[0])
    model.load_state_dict(checkpoint['model'])
    model.eval()
    return config, spec, model
