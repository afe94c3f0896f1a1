r"""The ``remul`` command line (also ``python -m torch_geometric_remul``)."""
import argparse
import sys
from typing import List, Optional

import torch

from torch_geometric_remul import __version__


def _seed(text: str) -> int:
    """The ``--seed`` of every command: an integer from 0 to ``MAX_SEED``
    (checked once, before any work; see
    ``torch_geometric_remul.train.config.check_seed``)."""
    from torch_geometric_remul.train.config import check_seed
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'must be an integer (got {text!r})') from None
    try:
        return check_seed(value, '--seed')
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            str(e).replace("'--seed' must", 'must')) from None


def _table(rows) -> str:
    width = max(len(k) for k, _ in rows)
    return '\n'.join(f'  {k:<{width}}  {v}' for k, v in rows)


def _rank_tag() -> str:
    """`` (rank R)`` in a process launched by torchrun with several
    processes, else empty."""
    import os
    world = os.environ.get('WORLD_SIZE', '1')
    if world.isdigit() and int(world) > 1:
        return f" (rank {os.environ.get('RANK', '?')})"
    return ''


#: The ``remul train`` options that set fields of the configuration:
#: ``(field, type or action, help)``. Their defaults are not written here:
#: the help appends them from ``torch_geometric_remul.train.config``, the
#: one place they are stated (the per-task ones in the epilog's table).
TRAIN_OPTIONS = (
    ('task', str, 'the task'),
    ('model', str, 'the backbone: mlp, gnn, transformer, egnn or segnn'),
    ('loss', str, 'plain: MSE only; augment: MSE on randomly transformed '
     'inputs; remul: task + beta * equivariance'),
    ('alpha', float, 'weight of the task loss, a finite number >= 0'),
    ('beta', float, 'weight of the equivariance loss, a finite number >= 0'),
    ('weighting', str, 'how the weights evolve (remul loss)'),
    ('epsilon', float, "target E' for --weighting target, > 0"),
    ('mode', str, 'target: l(f(gx), g y); consistency: l(f(gx), g f(x))'),
    ('group', str, 'SO3, O3, SE3, E3, SO2 or T3'),
    ('fused', argparse.BooleanOptionalAction,
     'one forward pass on clean + transformed graphs (always on when '
     'training with several processes)'),
    ('num_samples', int, 'group elements per graph and step (augment, '
     'remul); augment with 2 is as many forward passes as remul'),
    ('epochs', int, 'with --resume, the new total (may extend the run)'),
    ('batch_size', int, 'the global batch size: under torchrun each of the '
     'K processes takes batch-size / K graphs per step (must be divisible '
     'by K)'),
    ('lr', float, 'learning rate of Adam'),
    ('weight_decay', float, 'weight decay of Adam'),
    ('clip_grad_norm', float, "clip the gradients' total 2-norm to this "
     'value before every step (default: no clipping)'),
    ('hidden_channels', int, 'width of the model'),
    ('num_layers', int, 'depth of the model'),
    ('num_train', int, 'training graphs'),
    ('num_val', int, 'validation graphs'),
    ('num_test', int, 'test graphs'),
    ('eval_graphs', int, "graphs used for E' each epoch"),
    ('eval_samples', int, "group elements per graph for E'"),
    ('val_every', int, 'validate every N epochs and after the last; the '
     'best-validation model is chosen among those'),
    ('val_equivariance', argparse.BooleanOptionalAction,
     "measure E, E' (and a potential's errors on a rotated copy) at every "
     'validation (default); --no-val-equivariance: only the validation '
     'loss, all that selection reads (the test split always gets every '
     'metric)'),
    ('seed', int, 'seed of the data, the weights and the group elements, '
     '0 to 2**63 - 1'),
    ('data_root', str, 'where the data are cached or simulated (rmd17: the '
     'folder of the rMD17 files, or its parent); may change with --resume'),
    ('molecule', str, 'md17: aspirin, benzene, ethanol, malonaldehyde, '
     'naphthalene, salicylic_acid, toluene or uracil; rmd17: any molecule '
     'with a file (rmd17_<molecule>...)'),
    ('fold', int, 'rmd17: the split of the release, 1 to 5'),
    ('force_weight', float, 'rmd17: weight of the force MSE (the energy '
     "MSE's is 1), on standardised targets"),
    ('source', str, 'md17: auto (MD17, then rMD17 files under '
     'DATA_ROOT/md17), md17, rmd17, or standin (a labelled classical RDKit '
     'stand-in, generated on first use); mocap: files (ASF/AMC or BVH under '
     'DATA_ROOT/mocap/raw), proxy (a labelled synthetic proxy, split by '
     'clip) or gmn (GMN protocol: the skeleton, the clips and '
     'gmn_motion_split.json in DATA_ROOT/mocap/raw; case id k = k-th .amc '
     'in sorted order); gravity: '
     'canonical (systems in their canonical frame, split ood rotated) or '
     'gatr (GATr protocol: systems randomly rotated, shifted and '
     'permuted, split ood shifted by 200 along x); nbody has no source'),
    ('run_dir', str, 'a directory that holds another run is refused (see '
     '--resume and --overwrite)'),
)
TRAIN_FIELDS = tuple(name for name, _, _ in TRAIN_OPTIONS)


def _default_text(name: str) -> str:
    """The default of a ``remul train`` option, for its help."""
    from torch_geometric_remul.train.config import (
        DEFAULT_DATA_ROOT,
        TASK_DEFAULTS,
        defaults,
    )
    per_task = {key for values in TASK_DEFAULTS.values() for key in values}
    if name in per_task or name == 'source':
        return 'per task, see below'
    special = {'hidden_channels': "the model's own",
               'num_layers': "the model's own",
               'data_root': DEFAULT_DATA_ROOT,
               'run_dir': 'runs/<task>-<model>-<loss>-<time>'}
    if name in special:
        return special[name]
    value = defaults()[name]
    if isinstance(value, bool):
        return 'on' if value else 'off'
    if isinstance(value, float):
        return f'{value:g}'
    return str(value)


def _task_defaults_table() -> str:
    """The per-task defaults, as a table for the epilog of ``--help``."""
    from torch_geometric_remul.train.config import TASKS, defaults
    keys = ['epochs', 'batch_size', 'lr', 'num_train', 'num_val',
            'num_test', 'group', 'source']
    rows = [['task'] + [k.replace('_', '-') for k in keys]]
    for task in TASKS:
        values = defaults(task)
        rows.append([task] + [('-' if values[k] is None else f'{values[k]:g}'
                               if isinstance(values[k], float) else
                               str(values[k])) for k in keys])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return '\n'.join('  ' + '  '.join(cell.ljust(w) for cell, w in
                                       zip(row, widths)).rstrip()
                      for row in rows)


def _error_text(error: BaseException) -> str:
    """One line for an error: an OS error's reason and path, else its
    message."""
    if isinstance(error, OSError) and error.strerror:
        from torch_geometric_remul.train.rundir import describe_os_error
        return describe_os_error(error)
    return str(error)


def _same_path(a: str, b: str) -> bool:
    import os.path as osp
    return osp.realpath(a) == osp.realpath(b)


def train_command(args: argparse.Namespace) -> int:
    """Trains a model (REMUL by default) and prints a short result table."""
    from torch_geometric_remul.train import (
        TrainConfig,
        TrainingError,
        load_config,
        read_config,
        resume_config,
        train,
    )
    from torch_geometric_remul.train.distributed import PeerFailure

    # The options given on the command line (the others are None): a new
    # run fills the rest from --config, then from the defaults; a resumed
    # run from its own configuration.
    given = {k: getattr(args, k) for k in TRAIN_FIELDS
             if getattr(args, k) is not None}
    try:
        if args.resume is None:
            # every option is checked before any data is read or simulated
            if args.config is not None:
                config = load_config(args.config, given)
            else:
                config = TrainConfig(**given).resolved()
        else:
            if args.overwrite:
                raise ValueError('--overwrite cannot be combined with '
                                 '--resume (a resumed run continues in its '
                                 'own directory)')
            if args.config is not None:
                raise ValueError('--config cannot be combined with --resume '
                                 '(a resumed run continues with its own '
                                 'configuration)')
            run_dir = given.pop('run_dir', None)
            if run_dir is not None and not _same_path(run_dir, args.resume):
                raise ValueError(f'--run-dir cannot be combined with '
                                 f'--resume: the run continues in '
                                 f'{args.resume}')
            # refuses the options that differ from the run's configuration
            resume_config(read_config(args.resume), given)[0].resolved()
            config = TrainConfig(epochs=given.get('epochs'),
                                 data_root=given.get('data_root'))
        result = train(config, resume_from=args.resume,
                       progress=not args.no_progress,
                       overwrite=args.overwrite)
    except KeyboardInterrupt:
        print(f'remul train: interrupted{_rank_tag()} before training '
              f'started', file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, TrainingError,
            PeerFailure) as e:
        print(f'remul train: error{_rank_tag()}: {_error_text(e)}',
              file=sys.stderr)
        return 1
    if result.interrupted:
        return 130
    if result.rank == 0:  # under torchrun, rank 0 alone reports
        _print_result(result)
    return 0


def _print_result(result) -> None:
    """The short result table of a finished run (test split)."""
    test = result.test
    if 'force_mae' in test:  # an interatomic potential (task rmd17)
        print('\nresult (test split, best-validation epoch)')
        print(_table([
            ('energy MAE', f'{test["energy_mae"]:.4g} kcal/mol '
             f'({test["energy_mae_meV"]:.4g} meV)'),
            ('force MAE', f'{test["force_mae"]:.4g} kcal/mol/A '
             f'({test["force_mae_meV"]:.4g} meV/A)'),
            ('force MAE, rotated test', f'{test["rot_force_mae"]:.4g} '
             f'kcal/mol/A'),
            ("force E'", f'{test["E_prime"]:.4g} kcal/mol/A'),
            ('time per epoch', f'{test["seconds_per_epoch"]:.2f} s'),
            ('run directory', result.run_dir),
        ]))
        return
    print('\nresult (test split)')
    print(_table([
        ('test MSE', f'{test["mse"]:.6g}'),
        ("E' (equivariance error)", f'{test["E_prime"]:.4g} (relative '
         f'{test["E_prime_rel"]:.3g})'),
        ('time per epoch', f'{test["seconds_per_epoch"]:.2f} s'),
        ('epochs', str(len(result.history))),
        ('run directory', result.run_dir),
    ]))


def _restore(args: argparse.Namespace, command: str):
    """``(config, spec, model, dataset, epoch)`` of ``args.run`` (the model
    of ``args.which``: best validation epoch or last) or ``None`` after
    printing the error."""
    from torch_geometric_remul.train import (
        TrainingError,
        load_weights,
        restore_model,
    )
    try:
        _, _, epoch = load_weights(args.run, args.which)
        config, spec, model = restore_model(args.run,
                                            data_root=args.data_root,
                                            which=args.which)
        if args.split not in spec.splits:
            raise ValueError(f"--split {args.split} exists for the gravity "
                             f"task only (this run's task is "
                             f"{config.task!r})")
        dataset = spec.load(args.split)
        fixed = getattr(model, 'num_nodes', None)  # a fixed-size model
        if fixed is not None and dataset[0].num_nodes != fixed:
            raise ValueError(
                f"--split {args.split} holds graphs of "
                f"{dataset[0].num_nodes} nodes, but this run's "
                f"{config.model} model takes graphs of exactly {fixed} "
                f"(it needs a fixed graph size)")
        return config, spec, model, dataset, epoch
    except (ValueError, OSError, TrainingError) as e:
        print(f'remul {command}: error: {_error_text(e)}', file=sys.stderr)
        return None


def evaluate_command(args: argparse.Namespace) -> int:
    """Test-split MSE and equivariance of a trained run."""
    from torch_geometric_remul.train import evaluate_split
    restored = _restore(args, 'evaluate')
    if restored is None:
        return 1
    config, spec, model, dataset, epoch = restored
    res = evaluate_split(model, dataset, spec, config, seed=args.seed)
    print(f'{args.run}: {config.task} / {config.model} / {config.loss}, '
          f'{args.split} split ({len(dataset)} graphs)')
    print(f'model: {_which_text(args.which, epoch)}')
    print(_table([('MSE', f'{res["mse"]:.6g}'),
                  ("E'", f'{res["E_prime"]:.4g}'),
                  ('E', f'{res["E"]:.4g}')]))
    return 0


def check_command(args: argparse.Namespace) -> int:
    """Equivariance metrics (E, E', relative) of a trained run."""
    from torch_geometric.loader import DataLoader

    from torch_geometric_remul._checks import check_choice, check_int
    from torch_geometric_remul.group import GROUPS
    from torch_geometric_remul.metrics import equivariance_error
    try:  # before the run or any data is read
        check_int(args.samples, '--samples', minimum=1)
        check_int(args.graphs, '--graphs', minimum=1)
        group = None if args.group is None else check_choice(
            args.group, '--group', GROUPS, ignore_case=True)
    except ValueError as e:
        print(f'remul check: error: {e}', file=sys.stderr)
        return 1
    restored = _restore(args, 'check')
    if restored is None:
        return 1
    config, spec, model, dataset, epoch = restored
    dataset = dataset[:min(args.graphs, len(dataset))]
    group = group or config.group
    err = equivariance_error(
        model, DataLoader(dataset, batch_size=config.batch_size),
        roles=spec.roles, group=group, num_samples=args.samples,
        axis=spec.axis, generator=torch.Generator().manual_seed(args.seed))
    print(f'{args.run}: equivariance under {group} on {err.num_graphs} '
          f'{args.split} graphs, {args.samples} samples each')
    print(f'model: {_which_text(args.which, epoch)}')
    print(_table([('E', f'{err.E:.4g}'), ("E'", f'{err.E_prime:.4g}'),
                  ('E relative', f'{err.E_rel:.4g}'),
                  ("E' relative", f'{err.E_prime_rel:.4g}')]))
    return 0


def _which_text(which: str, epoch: int) -> str:
    """Which model of a run was evaluated, for the output."""
    if which == 'best':
        return f'epoch {epoch}, the best validation epoch (best.pt)'
    return f'epoch {epoch}, the last epoch (checkpoint.pt)'


def build_kernels_command(args: argparse.Namespace) -> int:
    """Builds the kernels of :mod:`torch_geometric_remul._kernels` ahead of
    time; exits 1 when the CPU kernel is enabled but cannot be built."""
    from torch_geometric_remul._kernels import build_kernels, kernel_cache_dir
    status = build_kernels(timeout=args.timeout)
    print(f'CPU kernel (C, cache {kernel_cache_dir()}): {status["cpu"]}')
    print(f'CUDA kernel (Triton): {status["triton"]}')
    ok = status['cpu'] == 'ready' or status['cpu'].startswith('disabled')
    return 0 if ok else 1


def _train_epilog() -> str:
    return ('per-task defaults (--task):\n' + _task_defaults_table() +
            '\n\nLaunched by torchrun (e.g. torchrun --nproc_per_node=2 -m '
            'torch_geometric_remul\ntrain ...), it trains with '
            'DistributedDataParallel: gloo on CPU, NCCL on GPU;\nsee '
            'docs/distributed.md.')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='remul', description='Relaxed equivariance via multitask '
        'learning (REMUL) for PyTorch Geometric.')
    parser.add_argument('--version', action='version',
                        version=f'%(prog)s {__version__}')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    _add_train_parser(sub)
    for name, func, help_ in (
            ('evaluate', evaluate_command, 'test MSE of a trained run'),
            ('check', check_command, 'equivariance metrics of a trained run')):
        _add_run_parser(sub, name, func, help_)
    p = sub.add_parser('build-kernels', help='compile the optional fused '
                       'kernels now (C for CPU tensors, Triton for CUDA) so '
                       'that no training step waits for a compiler')
    p.add_argument('--timeout', type=float, default=130.0,
                   help='seconds to wait for the C compiler (default: 130)')
    p.set_defaults(func=build_kernels_command)
    return parser


def _add_train_parser(sub) -> None:
    """``remul train``: every option of the configuration, plus the run's
    own (--config, --overwrite, --resume, --no-progress)."""
    from torch_geometric_remul.train.config import (
        LOSSES,
        MODES,
        TASKS,
        WEIGHTINGS,
    )
    p = sub.add_parser(
        'train', help='train a model (default: REMUL on the simulated '
        'charged N-body task)',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_train_epilog())
    # Every option of the configuration defaults to None here, so that the
    # options given explicitly are known: they override --config, and a
    # resumed run refuses those that differ from its configuration.
    choices = dict(task=TASKS, loss=LOSSES, weighting=WEIGHTINGS,
                   mode=MODES)
    for name, kind, help_ in TRAIN_OPTIONS:
        flag = '--' + name.replace('_', '-')
        help_ = f'{help_} (default: {_default_text(name)})'
        if kind is argparse.BooleanOptionalAction:
            p.add_argument(flag, action=kind, default=None, help=help_)
        elif name == 'seed':
            p.add_argument(flag, type=_seed, default=None, help=help_)
        else:
            p.add_argument(flag, type=kind, default=None, help=help_,
                           choices=choices.get(name))
    p.add_argument('--config', metavar='PATH', default=None,
                   help='start from the options in PATH: the config.json of '
                   'an earlier run or a hand-written JSON file (YAML with '
                   'PyYAML) of the same keys; the options given here '
                   'override it. A run\'s own config.json starts a new run '
                   '(see --run-dir), it never continues or replaces that '
                   'one')
    p.add_argument('--overwrite', action='store_true',
                   help='replace the run found in --run-dir')
    p.add_argument('--resume', metavar='RUN', default=None,
                   help='continue a run from its last checkpoint, with its '
                   'own configuration (only --epochs and --data-root may '
                   'change)')
    p.add_argument('--no-progress', action='store_true',
                   help='do not show the progress bar')
    p.set_defaults(func=train_command)


def _add_run_parser(sub, name: str, func, help_: str) -> None:
    """``remul evaluate`` / ``remul check``: a command on a trained run."""
    p = sub.add_parser(name, help=help_)
    p.add_argument('run', help='run directory written by remul train')
    p.add_argument('--split', default='test',
                   choices=('val', 'test', 'ood', 'planets'),
                   help="the gravity task also has ood (the test "
                   "systems each rotated; source gatr: and shifted by "
                   "200 along x) and planets (test systems with 5 "
                   "planets, for models that accept variable graph "
                   "sizes, not mlp) (default: test)")
    p.add_argument('--data-root', default=None,
                   help="where the task's data are now (default: where "
                   "the run read them)")
    p.add_argument('--seed', type=_seed, default=0,
                   help='seed of the group elements, 0 to 2**63 - 1 '
                   '(default: 0)')
    p.add_argument('--which', default='best', choices=('best', 'last'),
                   help='best: the model of the epoch with the best '
                   'validation MSE (best.pt); last: the last epoch\'s '
                   '(checkpoint.pt) (default: best)')
    if name == 'check':
        p.add_argument('--samples', type=int, default=20)
        p.add_argument('--graphs', type=int, default=500)
        p.add_argument('--group', default=None)
    p.set_defaults(func=func)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, 'func', None) is None:
        parser.print_help()
        return 2
    # The command owns the process: flush subnormal floats to zero. SiLU of
    # large negative pre-activations yields float32 subnormals, which run
    # 10-100x slower on x86 CPUs (measured 12x on the mocap task).
    torch.set_flush_denormal(True)
    return args.func(args)


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
