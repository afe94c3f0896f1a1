r"""The ``remul`` command line (also ``python -m torch_geometric_remul``)."""
import argparse
import math
import sys
import time
from typing import List, Optional

import torch

from torch_geometric_remul import __version__


def _demo_batch(num_graphs: int, seed: int, dtype=torch.float64):
    from torch_geometric.data import Batch, Data
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, 26, (num_graphs, ), generator=g).tolist()
    graphs = [Data(pos=torch.randn(n, 3, generator=g, dtype=dtype),
                   vel=torch.randn(n, 3, generator=g, dtype=dtype),
                   charge=torch.randint(0, 2, (n, 1), generator=g) * 2 - 1)
              for n in sizes]
    return Batch.from_data_list(graphs), graphs


def _relative_geometry(pos, vel, batch):
    """Per-node invariants: |x - centroid|, |v|, and (x - centroid) . v."""
    from torch_geometric_remul.group import center
    rel, _ = center(pos, batch)
    return torch.stack([rel.norm(dim=-1), vel.norm(dim=-1),
                        (rel * vel).sum(-1)], -1)


def demo(args: argparse.Namespace) -> int:
    """Per-graph rigid transforms on random graphs, checked and timed."""
    import torch_geometric.transforms as T

    from torch_geometric_remul.group import rotation_angle
    from torch_geometric_remul.transforms import (RandomRigidTransform,
                                                  stored_transform)

    print(f'torch_geometric_remul {__version__} demo: per-graph rigid '
          f'transforms')
    print(f'data: {args.graphs} random graphs (synthetic stand-in, 1-25 '
          f'nodes each) with pos, vel and charge, float64\n')
    batch, _ = _demo_batch(args.graphs, args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    transform = RandomRigidTransform('SE3', vectors='vel', store=True,
                                     generator=gen)
    print(f'transform: {transform}')

    out = transform(batch)
    Tr = stored_transform(out)
    inv = Tr.inverse()
    before = _relative_geometry(batch.pos, batch.vel, batch.batch)
    after = _relative_geometry(out.pos, out.vel, out.batch)
    back_pos = inv.apply_points(out.pos, ptr=out.ptr)
    back_vel = inv.apply_vectors(out.vel, ptr=out.ptr)
    angles = rotation_angle(Tr.rotation)
    haar_mean = math.pi / 2 + 2 / math.pi
    rows = [
        ('distinct rotations', f'{Tr.num_graphs} for {batch.num_graphs} '
         f'graphs'),
        ('mean rotation angle', f'{angles.mean():.4f} rad (Haar: '
         f'{haar_mean:.4f})'),
        ('invariants changed by (max)', f'{(after - before).abs().max():.2e}'),
        ('inverse round trip error', f'{max((back_pos - batch.pos).abs().max(), (back_vel - batch.vel).abs().max()):.2e}'),  # noqa: E501
        ('charges untouched', str(out.charge is batch.charge)),
    ]

    # PyG's RandomRotate: per-axis angles, pos only, one rotation per batch.
    pyg = T.Compose([T.RandomRotate(180, axis=i) for i in range(3)])
    torch.manual_seed(args.seed)
    pyg_out = pyg(batch)
    pyg_after = _relative_geometry(pyg_out.pos, pyg_out.vel, pyg_out.batch)
    rows.append(('PyG RandomRotate invariants changed by',
                 f'{(pyg_after - before).abs().max():.2e} (vel not rotated)'))
    print(_table(rows))

    # Timing: one vectorised call vs PyG per Data in a Python loop.
    batch32, graphs32 = _demo_batch(args.graphs, args.seed, torch.float32)
    fast = RandomRigidTransform('SE3', vectors='vel')
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        fast(batch32)
    t_ours = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for g in graphs32:
        pyg(g)
    t_pyg = time.perf_counter() - t0
    print(f'\ntime for {args.graphs} graphs (float32): ours {t_ours * 1e3:.2f}'
          f' ms in one call; PyG RandomRotate per Data {t_pyg * 1e3:.1f} ms '
          f'({t_pyg / t_ours:.0f}x)')
    ok = (after - before).abs().max() < 1e-10 and \
        (back_pos - batch.pos).abs().max() < 1e-10
    print('\nresult:', 'OK, geometry preserved per graph' if ok else 'FAILED')
    return 0 if ok else 1


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


#: The ``remul train`` options that are fields of the configuration.
TRAIN_FIELDS = ('task', 'model', 'loss', 'alpha', 'beta', 'weighting',
                'epsilon', 'mode', 'group', 'fused', 'epochs', 'batch_size',
                'lr', 'hidden_channels', 'num_layers', 'num_train', 'num_val',
                'num_test',
                'eval_graphs', 'eval_samples', 'seed', 'data_root', 'run_dir',
                'molecule', 'source')


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
    from torch_geometric_remul.train import (TrainConfig, TrainingError,
                                             read_config, resume_config,
                                             train)
    from torch_geometric_remul.train.distributed import PeerFailure

    # The options given on the command line (the others are None): a new
    # run fills the rest from the defaults, a resumed run from its config.
    given = {k: getattr(args, k) for k in TRAIN_FIELDS
             if getattr(args, k) is not None}
    try:
        if args.resume is None:
            # every option is checked before any data is read or simulated
            config = TrainConfig(**given).resolved()
        else:
            if args.overwrite:
                raise ValueError('--overwrite cannot be combined with '
                                 '--resume (a resumed run continues in its '
                                 'own directory)')
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
    except (ValueError, OSError, TrainingError, PeerFailure) as e:
        print(f'remul train: error{_rank_tag()}: {_error_text(e)}',
              file=sys.stderr)
        return 1
    if result.interrupted:
        return 130
    if result.rank != 0:  # under torchrun, rank 0 alone reports
        return 0
    test = result.test
    print('\nresult (test split)')
    print(_table([
        ('test MSE', f'{test["mse"]:.6g}'),
        ("E' (equivariance error)", f'{test["E_prime"]:.4g} (relative '
         f'{test["E_prime_rel"]:.3g})'),
        ('time per epoch', f'{test["seconds_per_epoch"]:.2f} s'),
        ('epochs', str(len(result.history))),
        ('run directory', result.run_dir),
    ]))
    return 0


def _restore(args: argparse.Namespace, command: str):
    """``(config, spec, model, dataset)`` of ``args.run`` or ``None`` after
    printing the error."""
    from torch_geometric_remul.train import TrainingError, restore_model
    try:
        config, spec, model = restore_model(args.run,
                                            data_root=args.data_root)
        if args.split == 'ood' and config.task != 'gravity':
            raise ValueError(f"--split ood exists for the gravity task only "
                             f"(this run's task is {config.task!r})")
        return config, spec, model, spec.load(args.split)
    except (ValueError, OSError, TrainingError) as e:
        print(f'remul {command}: error: {_error_text(e)}', file=sys.stderr)
        return None


def evaluate_command(args: argparse.Namespace) -> int:
    """Test-split MSE and equivariance of a trained run."""
    from torch_geometric_remul.train import evaluate_split
    restored = _restore(args, 'evaluate')
    if restored is None:
        return 1
    config, spec, model, dataset = restored
    res = evaluate_split(model, dataset, spec, config, seed=args.seed)
    print(f'{args.run}: {config.task} / {config.model} / {config.loss}, '
          f'{args.split} split ({len(dataset)} graphs)')
    print(_table([('MSE', f'{res["mse"]:.6g}'),
                  ("E'", f'{res["E_prime"]:.4g}'),
                  ('E', f'{res["E"]:.4g}')]))
    return 0


def check_command(args: argparse.Namespace) -> int:
    """Equivariance metrics (E, E', relative) of a trained run."""
    from torch_geometric.loader import DataLoader

    from torch_geometric_remul.group import GROUPS
    from torch_geometric_remul.metrics import equivariance_error
    problem = None
    if args.samples < 1:
        problem = f'--samples must be >= 1 (got {args.samples})'
    elif args.graphs < 1:
        problem = f'--graphs must be >= 1 (got {args.graphs})'
    elif args.group is not None and args.group.upper() not in GROUPS:
        problem = (f"--group must be one of {', '.join(GROUPS)} (got "
                   f"{args.group!r})")
    if problem is not None:  # before the run or any data is read
        print(f'remul check: error: {problem}', file=sys.stderr)
        return 1
    restored = _restore(args, 'check')
    if restored is None:
        return 1
    config, spec, model, dataset = restored
    dataset = dataset[:min(args.graphs, len(dataset))]
    group = (args.group or config.group).upper()
    err = equivariance_error(
        model, DataLoader(dataset, batch_size=config.batch_size),
        output=spec.output, points=spec.points, vectors=spec.vectors,
        group=group, num_samples=args.samples, axis=spec.axis,
        generator=torch.Generator().manual_seed(args.seed))
    print(f'{args.run}: equivariance under {group} on {err.num_graphs} '
          f'{args.split} graphs, {args.samples} samples each')
    print(_table([('E', f'{err.E:.4g}'), ("E'", f'{err.E_prime:.4g}'),
                  ('E relative', f'{err.E_rel:.4g}'),
                  ("E' relative", f'{err.E_prime_rel:.4g}')]))
    return 0


def build_kernels_command(args: argparse.Namespace) -> int:
    """Builds the kernels of :mod:`torch_geometric_remul._kernels` ahead of
    time; exits 1 when the CPU kernel is enabled but cannot be built."""
    from torch_geometric_remul._kernels import _cpu, build_kernels
    status = build_kernels(timeout=args.timeout)
    print(f'CPU kernel (C, cache {_cpu.cache_dir()}): {status["cpu"]}')
    print(f'CUDA kernel (Triton): {status["triton"]}')
    ok = status['cpu'] == 'ready' or status['cpu'].startswith('disabled')
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    from torch_geometric_remul.train.config import (LOSSES, MODES, TASKS,
                                                    WEIGHTINGS)
    parser = argparse.ArgumentParser(
        prog='remul', description='Relaxed equivariance via multitask '
        'learning (REMUL) for PyTorch Geometric.')
    parser.add_argument('--version', action='version',
                        version=f'%(prog)s {__version__}')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')

    p = sub.add_parser(
        'train', help='train a model (default: REMUL on the simulated '
        'charged N-body task)', epilog='Launched by torchrun (e.g. torchrun '
        '--nproc_per_node=2 -m torch_geometric_remul train ...), it trains '
        'with DistributedDataParallel: gloo on CPU, NCCL on GPU; see '
        'docs/distributed.md.')
    # Every option of the configuration defaults to None here, so that the
    # options given explicitly are known (a resumed run refuses those that
    # differ from its configuration); None means the default of
    # TrainConfig, stated in the help.
    p.add_argument('--task', default=None, choices=TASKS,
                   help='default: nbody')
    p.add_argument('--model', default=None,
                   help='mlp, gnn, transformer, egnn or segnn (default: gnn)')
    p.add_argument('--loss', default=None, choices=LOSSES,
                   help='plain: MSE only; augment: MSE on randomly '
                   'transformed inputs; remul: task + beta * equivariance '
                   '(default: remul)')
    p.add_argument('--alpha', type=float, default=None,
                   help='weight of the task loss, a finite number >= 0 '
                   '(default: 1)')
    p.add_argument('--beta', type=float, default=None,
                   help='weight of the equivariance loss, a finite number '
                   '>= 0 (default: 1)')
    p.add_argument('--weighting', default=None, choices=WEIGHTINGS,
                   help='default: constant')
    p.add_argument('--epsilon', type=float, default=None,
                   help="target E' for --weighting target, > 0 (default: "
                   "0.01)")
    p.add_argument('--mode', default=None, choices=MODES,
                   help='default: target')
    p.add_argument('--group', default=None,
                   help='SO3, O3, SE3, E3, SO2 or T3 (default: per task)')
    p.add_argument('--fused', action='store_true', default=None,
                   help='one forward pass on clean + transformed graphs '
                   '(always on when training with several processes)')
    for name, kind in (('epochs', int), ('batch-size', int), ('lr', float),
                       ('hidden-channels', int), ('num-layers', int),
                       ('num-train', int), ('num-val', int),
                       ('num-test', int)):
        help_ = 'default: per task'
        if name == 'batch-size':
            help_ = ('the global batch size: under torchrun each of the K '
                     'processes takes batch-size / K graphs per step (must '
                     'be divisible by K); default: per task')
        if name == 'epochs':
            help_ = ('default: per task; with --resume, the new total (may '
                     'extend the run)')
        p.add_argument(f'--{name}', type=kind, default=None, help=help_)
    p.add_argument('--eval-graphs', type=int, default=None,
                   help="graphs used for E' each epoch (default: 200)")
    p.add_argument('--eval-samples', type=int, default=None,
                   help='default: 20')
    p.add_argument('--seed', type=int, default=None, help='default: 0')
    p.add_argument('--data-root', default=None,
                   help='where the data are cached or simulated (default: '
                   'data); may change with --resume')
    p.add_argument('--molecule', default=None,
                   help='md17: aspirin, benzene, ethanol, malonaldehyde, '
                   'naphthalene, salicylic_acid, toluene or uracil '
                   '(default: aspirin)')
    p.add_argument('--source', default=None,
                   help="md17: auto (MD17, then rMD17 files under "
                   "DATA_ROOT/md17), md17, rmd17, or standin (a labelled "
                   "classical RDKit stand-in, generated on first use); "
                   "mocap: files (ASF/AMC or BVH under DATA_ROOT/mocap/raw) "
                   "or proxy (a labelled synthetic proxy); the simulated "
                   "tasks have no source")
    p.add_argument('--run-dir', default=None,
                   help='default: runs/<task>-<model>-<loss>-<time>; a '
                   'directory that holds another run is refused (see '
                   '--resume and --overwrite)')
    p.add_argument('--overwrite', action='store_true',
                   help='replace the run found in --run-dir')
    p.add_argument('--resume', metavar='RUN', default=None,
                   help='continue a run from its last checkpoint, with its '
                   'own configuration (only --epochs and --data-root may '
                   'change)')
    p.add_argument('--no-progress', action='store_true')
    p.set_defaults(func=train_command)

    for name, func, help_ in (
            ('evaluate', evaluate_command, 'test MSE of a trained run'),
            ('check', check_command, 'equivariance metrics of a trained run')):
        p = sub.add_parser(name, help=help_)
        p.add_argument('run', help='run directory written by remul train')
        p.add_argument('--split', default='test',
                       choices=('val', 'test', 'ood'),
                       help="ood: the gravity task's test split with every "
                       "system rotated (default: test)")
        p.add_argument('--data-root', default=None,
                       help="where the task's data are now (default: where "
                       "the run read them)")
        p.add_argument('--seed', type=int, default=0)
        if name == 'check':
            p.add_argument('--samples', type=int, default=20)
            p.add_argument('--graphs', type=int, default=500)
            p.add_argument('--group', default=None)
        p.set_defaults(func=func)

    p = sub.add_parser('demo', help='per-graph rigid transforms, checked and '
                       'timed on random graphs')
    p.add_argument('--graphs', type=int, default=2000,
                   help='number of graphs (default: 2000)')
    p.add_argument('--seed', type=int, default=0, help='random seed')
    p.set_defaults(func=demo)

    p = sub.add_parser('build-kernels', help='compile the optional fused '
                       'kernels now (C for CPU tensors, Triton for CUDA) so '
                       'that no training step waits for a compiler')
    p.add_argument('--timeout', type=float, default=130.0,
                   help='seconds to wait for the C compiler (default: 130)')
    p.set_defaults(func=build_kernels_command)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, 'func', None) is None:
        parser.print_help()
        return 2
    if args.command == 'demo' and args.graphs < 1:
        parser.error('--graphs must be >= 1')
    # The command owns the process: flush subnormal floats to zero. SiLU of
    # large negative pre-activations yields float32 subnormals, which run
    # 10-100x slower on x86 CPUs (measured 12x on the mocap task).
    torch.set_flush_denormal(True)
    return args.func(args)


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
