r"""The checkpoint of ``remul train``: its format, writing it (with every
process's random generator states), restoring training state from it, and
its safe loading.

A checkpoint is a :func:`torch.save` of a dictionary that holds only
tensors, numbers, strings, ``None`` and lists/tuples/dicts of them, so that
it loads with ``torch.load(..., weights_only=True)``: unpickling never
constructs arbitrary objects, and a hostile file cannot run code (it is
refused with a :class:`~torch_geometric_remul.train.RunDirectoryError`
naming the file).

Random generator states are stored in that form too (:func:`rng_state` and
:func:`set_rng_state`): PyTorch's CPU and CUDA generators as byte tensors,
Python's :mod:`random` and NumPy's global generator as integer tensors plus
plain numbers, and the loss's generator as a byte tensor.
"""
import contextlib
import json
import pickle
import random
import zipfile
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch

from torch_geometric_remul._io import atomic_torch_save
from torch_geometric_remul.train.config import derive_seed

#: Version of the checkpoint layout (absent in the first layout, which
#: stored the loss and CPU generator states at the top level only; 3 adds
#: the best-validation state ``best`` and the ``code_versions`` of the
#: invocations that trained the run).
FORMAT = 3

#: The file next to ``checkpoint.pt`` holding the model of the epoch with
#: the best validation MSE.
BEST = 'best.pt'


class RunDirectoryError(ValueError):
    r"""A run directory, or a file in it, is missing, damaged, unsafe, or
    in the way of a new run. The message names the file and says what to
    do.

    Example:

        >>> try:
        ...     raise RunDirectoryError('runs/a/checkpoint.pt is damaged')
        ... except ValueError as e:
        ...     print(e)
        runs/a/checkpoint.pt is damaged
    """


def _python_state() -> Dict[str, Any]:
    version, internal, gauss = random.getstate()
    return {'version': int(version),
            'internal': torch.tensor(internal, dtype=torch.int64),
            'gauss_next': gauss}


def _set_python_state(state: Dict[str, Any]) -> None:
    internal = tuple(int(v) for v in state['internal'].tolist())
    random.setstate((int(state['version']), internal, state['gauss_next']))


def _numpy_state() -> Optional[Dict[str, Any]]:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with torch_geometric
        return None
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {'name': str(name),
            'keys': torch.from_numpy(keys.astype(np.int64)),
            'pos': int(pos), 'has_gauss': int(has_gauss),
            'cached_gaussian': float(cached)}


def _set_numpy_state(state: Optional[Dict[str, Any]]) -> None:
    if state is None:
        return
    import numpy as np
    keys = state['keys'].numpy().astype(np.uint32)
    np.random.set_state((state['name'], keys, state['pos'],
                         state['has_gauss'], state['cached_gaussian']))


def rng_state(loss_generator: Optional[torch.Generator] = None,
              device: Optional[torch.device] = None) -> Dict[str, Any]:
    r"""This process's random generator states, in a form that loads with
    ``weights_only=True``.

    Args:
        loss_generator (torch.Generator, optional): The loss's generator.
        device (torch.device, optional): A CUDA device whose default
            generator is saved too.

    Example:

        >>> state = rng_state()
        >>> a = torch.rand(3)
        >>> set_rng_state(state)
        >>> torch.equal(torch.rand(3), a)
        True
    """
    state = {
        'torch': torch.get_rng_state(),
        'python': _python_state(),
        'numpy': _numpy_state(),
        'loss_generator': (loss_generator.get_state()
                           if loss_generator is not None else None),
        'cuda': None,
    }
    if device is not None and device.type == 'cuda':
        state['cuda'] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: Dict[str, Any],
                  loss_generator: Optional[torch.Generator] = None,
                  device: Optional[torch.device] = None) -> None:
    r"""Restores the generator states saved by :func:`rng_state` (those
    present in ``state``; the first checkpoint layout held the CPU and loss
    generators only).

    Args:
        state (dict): From :func:`rng_state`.
        loss_generator (torch.Generator, optional): Receives the saved state
            of the loss's generator.
        device (torch.device, optional): A CUDA device whose default
            generator receives the saved CUDA state.
    """
    torch.set_rng_state(state['torch'])
    if state.get('python') is not None:
        _set_python_state(state['python'])
    _set_numpy_state(state.get('numpy'))
    if loss_generator is not None and state.get('loss_generator') is not None:
        loss_generator.set_state(state['loss_generator'])
    if (device is not None and device.type == 'cuda'
            and state.get('cuda') is not None):
        torch.cuda.set_rng_state(state['cuda'], device)


def upgrade(checkpoint: Dict[str, Any]) -> Dict[str, Any]:
    r"""A checkpoint of the first layout in the current one (``rng`` for
    rank 0, ``rank_rng`` for every rank of a multi-process run)."""
    if 'rng' in checkpoint:
        return checkpoint
    out = dict(checkpoint)

    def convert(old):
        return {'torch': old['torch_rng'],
                'loss_generator': old.get('loss_generator')}

    out['rng'] = convert(checkpoint)
    if 'rank_states' in checkpoint:
        out['rank_rng'] = [convert(s) for s in checkpoint['rank_states']]
    return out


def _safe_load(path: str) -> Any:
    r"""``torch.load(path, weights_only=True)`` on the CPU, its errors
    turned into a :class:`RunDirectoryError` naming ``path``."""
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        raise RunDirectoryError(f'{path} not found') from None
    except pickle.UnpicklingError as e:
        if 'Weights only load failed' in str(e):
            raise RunDirectoryError(
                f'{path} was refused: it holds objects other than tensors '
                f'and plain values, which a checkpoint written by remul '
                f'train never does (it may have been tampered with); '
                f'nothing in it was run') from None
        raise RunDirectoryError(f'{path} is damaged (not a checkpoint: '
                                f'{e})') from None
    except IsADirectoryError:
        raise RunDirectoryError(f'{path} is a directory, not a checkpoint '
                                f'file') from None
    except PermissionError as e:
        raise RunDirectoryError(f'cannot read {path}: {e.strerror}') \
            from None
    except EOFError:
        raise RunDirectoryError(f'{path} is damaged (empty or cut '
                                f'short)') from None
    except (RuntimeError, OSError, KeyError, ValueError, TypeError,
            AttributeError, IndexError, zipfile.BadZipFile,
            UnicodeDecodeError) as e:
        # truncated zip archives (RuntimeError from the stream reader),
        # garbage (KeyError/ValueError from the legacy unpickler), ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else ''
        raise RunDirectoryError(
            f'{path} is damaged ({type(e).__name__}'
            + (f': {first[:200]}' if first else '') + ')') from None
    return checkpoint


#: Keys every checkpoint holds, and their types.
REQUIRED = {'model': dict, 'optimizer': dict, 'loss': dict, 'epoch': int,
            'step': int, 'history': list}


def load_checkpoint(path: str) -> Dict[str, Any]:
    r"""Loads a checkpoint written by ``remul train`` with
    ``torch.load(..., weights_only=True)``.

    Raises:
        RunDirectoryError: Naming ``path``, when it is missing, unreadable,
            damaged (empty, truncated, not a checkpoint), or holds objects
            other than tensors and plain values (it was not written by
            ``remul train``, or was tampered with: nothing in it is run).
    """
    checkpoint = _safe_load(path)
    if not isinstance(checkpoint, dict):
        raise RunDirectoryError(f'{path} is damaged (holds a '
                                f'{type(checkpoint).__name__}, not a '
                                f'checkpoint dictionary)')
    for key, kind in REQUIRED.items():
        if not isinstance(checkpoint.get(key), kind):
            raise RunDirectoryError(
                f'{path} is damaged or not a remul checkpoint (no valid '
                f'{key!r} entry)')
    if 'rng' not in checkpoint and 'torch_rng' not in checkpoint:
        raise RunDirectoryError(f'{path} is damaged or not a remul '
                                f'checkpoint (no random generator states)')
    return upgrade(checkpoint)


def save_checkpoint(path: str, runtime, *, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, loss, epoch: int,
                    step: int, history: List[Dict[str, float]],
                    config, best: Optional[Dict[str, Any]] = None,
                    code_versions: Optional[List[Dict[str, Any]]] = None
                    ) -> bool:
    r"""Writes the checkpoint of a run after ``epoch`` to ``path``
    atomically, on the main process; every process must call it (each
    one's generator states are gathered). Returns whether this process
    wrote it.

    Args:
        path (str): The checkpoint file.
        runtime (Runtime): Where the run trains.
        model (torch.nn.Module): The unwrapped model (no DDP prefix).
        optimizer (torch.optim.Optimizer): The optimiser.
        loss (RemulLoss, optional): The loss (``None`` for the plain MSE).
        epoch (int): Completed epochs.
        step (int): Completed optimiser steps.
        history (list): The metrics rows so far.
        config (TrainConfig): The run's configuration.
        best (dict, optional): The best-validation state so far,
            ``{'epoch', 'val_mse', 'model'}`` (see :func:`save_best`), so
            that a resumed run selects exactly as an uninterrupted one.
        code_versions (list, optional): The code version of every
            invocation that trained the run (see
            :func:`~torch_geometric_remul.train.provenance.code_version`).
    """
    generator = loss.generator if loss is not None else None
    rng = rng_state(generator, runtime.device)
    rank_states = runtime.gather(rng)
    if not runtime.is_main:
        return False
    state = {
        'format': FORMAT,
        'model': model.state_dict(),
        'optimizer': optimizer.state_dict(),
        'loss': loss.state_dict() if loss is not None else {},
        # rank 0's generators, and every rank's when there are several
        'rng': rng,
        'world_size': runtime.world_size,
        'epoch': epoch, 'step': step, 'history': history,
        'config': json.loads(config.to_json()),
        'best': best,
        'code_versions': list(code_versions or []),
    }
    if runtime.world_size > 1:
        state['rank_rng'] = rank_states
    atomic_torch_save(path, state)
    return True


def save_best(path: str, best: Dict[str, Any], config) -> None:
    r"""Writes ``best.pt`` atomically: the model of the epoch with the best
    validation MSE, in the checkpoint's safe format (loadable with
    ``torch.load(..., weights_only=True)``).

    Args:
        path (str): The file.
        best (dict): ``{'epoch': int, 'val_mse': float, 'model':
            state_dict}``.
        config (TrainConfig): The run's configuration.

    Example:

        >>> import os, tempfile
        >>> from torch_geometric_remul.train import TrainConfig
        >>> path = os.path.join(tempfile.mkdtemp(), 'best.pt')
        >>> model = torch.nn.Linear(2, 2)
        >>> save_best(path, {'epoch': 3, 'val_mse': 0.5,
        ...                  'model': model.state_dict()}, TrainConfig())
        >>> load_best(path)['epoch']
        3
    """
    atomic_torch_save(path, {
        'format': FORMAT, 'selection': 'best_val',
        'epoch': int(best['epoch']), 'val_mse': float(best['val_mse']),
        'model': best['model'], 'config': json.loads(config.to_json())})


def load_best(path: str) -> Dict[str, Any]:
    r"""Loads ``best.pt`` (written by :func:`save_best`) with
    ``torch.load(..., weights_only=True)``.

    Raises:
        RunDirectoryError: Naming ``path``, when it is missing, damaged or
            unsafe (as :func:`load_checkpoint`).
    """
    best = _safe_load(path)
    if not isinstance(best, dict) or not isinstance(best.get('model'),
                                                      dict) \
            or not isinstance(best.get('epoch'), int):
        raise RunDirectoryError(f'{path} is damaged or not a remul '
                                f'best-validation model (no valid '
                                f"'model' and 'epoch' entries)")
    return best


def restore_rng(checkpoint: Dict[str, Any],
                generator: Optional[torch.Generator], runtime, seed: int,
                log: Callable[[str], Any]) -> None:
    r"""Restores this process's random generators from a checkpoint:
    exactly when it was written by as many processes, else re-seeded from
    ``(seed, rank, epoch)``.

    Args:
        checkpoint (dict): From :func:`load_checkpoint`.
        generator (torch.Generator, optional): The loss's generator.
        runtime (Runtime): Where the run trains.
        seed (int): The run's seed.
        log (callable): Receives a line when the generators are re-seeded.
    """
    saved_world = checkpoint.get('world_size', 1)
    if saved_world == runtime.world_size:
        state = (checkpoint['rank_rng'][runtime.rank] if saved_world > 1
                 else checkpoint['rng'])
        set_rng_state(state, generator, runtime.device)
        return
    # Per-rank generator states cannot be mapped onto another number of
    # ranks: everything else is restored exactly, the group elements REMUL
    # samples from here on are drawn from fresh per-rank generators.
    if generator is not None:
        generator.manual_seed(runtime.seed(derive_seed(
            seed + 1, 1000003, checkpoint['epoch'])))
    shared = {k: v for k, v in checkpoint['rng'].items()
              if k not in ('loss_generator', 'cuda')}
    set_rng_state(shared)
    log(f'the checkpoint was written by {saved_world} process(es), this run '
        f'has {runtime.world_size}: resuming exactly except for the group '
        f'elements sampled from now on (per-process generators re-seeded)')


@contextlib.contextmanager
def restore_errors(path: str) -> Iterator[None]:
    r"""Turns the errors of restoring state from a checkpoint whose content
    does not fit the model (or is damaged) into a
    :class:`RunDirectoryError` naming the file.

    Example:

        >>> model = torch.nn.Linear(2, 2)
        >>> try:
        ...     with restore_errors('run/checkpoint.pt'):
        ...         model.load_state_dict({'weight': torch.zeros(3, 3)})
        ... except RunDirectoryError as e:
        ...     print(str(e).split(' (')[0])
        run/checkpoint.pt does not match the run's config.json or is damaged
    """
    try:
        yield
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError,
            AttributeError) as e:
        if isinstance(e, RunDirectoryError):
            raise
        text = str(e).strip()
        first = text.splitlines()[0][:300] if text else ''
        raise RunDirectoryError(
            f"{path} does not match the run's config.json or is damaged "
            f"({type(e).__name__}: {first})") from None


__all__ = ['BEST', 'FORMAT', 'RunDirectoryError', 'load_best',
           'load_checkpoint', 'restore_errors', 'restore_rng', 'rng_state',
           'save_best', 'save_checkpoint', 'set_rng_state', 'upgrade']
