"""Training throughput with 1 and 2 processes (DistributedDataParallel).

Usage:  python benchmarks/scaling.py [--num-train 1000] [--epochs 4]
                                     [--repeats 2] [--quick]

Every measurement is the real command, launched by torchrun on this machine
(the loopback interface only):

    python -m torch.distributed.run --nnodes=1 --rdzv-backend=static \\
        --master-addr=127.0.0.1 --master-port=PORT --nproc_per_node=K \\
        -m torch_geometric_remul train --task nbody --num-train N ...

on the default N-body task (the default GNN, REMUL with constant beta, the
task's global batch of 100 graphs) at a small size. Throughput is
NUM_TRAIN / (median seconds per epoch), the first epoch left out (warm-up);
an epoch's time includes a small validation (8 graphs) and the checkpoint
write. Configurations:

  1 process, 1 thread      (OMP_NUM_THREADS=1)
  1 process, all threads   (OMP_NUM_THREADS = CPU cores)
  2 processes, 1 thread each (torchrun's default)

The configurations are run in turn REPEATS times (1, 1, 2, 1, 1, 2, ...) so
that load from other processes on a shared machine affects all alike; the
median over repeats is reported, with the ratios against both 1-process
figures.
"""
import argparse
import json
import os
import os.path as osp
import socket
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import machine_description  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run(nproc: int, threads: int, args, data_root: str, run_dir: str,
        num_train: int, epochs: int) -> float:
    """Graphs per second of one `remul train` launch."""
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nnodes=1',
           '--rdzv-backend=static', '--master-addr=127.0.0.1',
           f'--master-port={free_port()}', f'--nproc_per_node={nproc}',
           '-m', 'torch_geometric_remul',
           'train', '--task', 'nbody', '--num-train', str(num_train),
           '--num-val', '8', '--num-test', '8', '--eval-graphs', '8',
           '--eval-samples', '1', '--epochs', str(epochs), '--data-root',
           data_root, '--run-dir', run_dir, '--no-progress']
    if args.batch_size is not None:
        cmd += ['--batch-size', str(args.batch_size)]
    if args.hidden is not None:
        cmd += ['--hidden-channels', str(args.hidden)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if 'lo' in {name for _, name in socket.if_nameindex()}:
        env['GLOO_SOCKET_IFNAME'] = 'lo'  # loopback only
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                 'MASTER_PORT'):
        env.pop(name, None)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} failed:\n{proc.stdout}\n'
                           f'{proc.stderr}')
    with open(osp.join(run_dir, 'metrics.json')) as f:
        history = json.load(f)
    seconds = [row['epoch_seconds'] for row in history]
    timed = seconds[1:] if len(seconds) > 1 else seconds
    return num_train / statistics.median(timed)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--num-train', type=int, default=1000)
    parser.add_argument('--epochs', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--batch-size', type=int, default=None,
                        help='global batch size (default: the task\'s, 100)')
    parser.add_argument('--hidden', type=int, default=None)
    parser.add_argument('--data-root', default=None,
                        help='default: a temporary directory')
    parser.add_argument('--quick', action='store_true',
                        help='a smoke run: 64 graphs, 2 epochs, 1 repeat')
    args = parser.parse_args(argv)
    num_train, epochs, repeats = args.num_train, args.epochs, args.repeats
    if args.quick:
        num_train, epochs, repeats = 64, 2, 1
        args.batch_size = args.batch_size or 16
        args.hidden = args.hidden or 16
    cores = os.cpu_count() or 1
    configs = [('1 process, 1 thread', 1, 1),
               (f'1 process, {cores} threads', 1, cores),
               ('2 processes, 1 thread each', 2, 1)]
    print(f'machine: {machine_description()}')
    print(f'task: nbody, {num_train} training graphs, global batch '
          f'{args.batch_size or 100}, {epochs} epochs (first one not timed),'
          f' {repeats} repeat(s)\n')
    with tempfile.TemporaryDirectory() as tmp:
        data_root = args.data_root or osp.join(tmp, 'data')
        results = {label: [] for label, _, _ in configs}
        for rep in range(repeats):
            for i, (label, nproc, threads) in enumerate(configs):
                run_dir = osp.join(tmp, f'run-{rep}-{i}')
                results[label].append(run(nproc, threads, args, data_root,
                                          run_dir, num_train, epochs))
    medians = {label: statistics.median(v) for label, v in results.items()}
    width = max(len(label) for label in medians)
    for label, value in medians.items():
        runs = ', '.join(f'{v:.0f}' for v in results[label])
        print(f'  {label:<{width}}  {value:8.1f} graphs/s   (runs: {runs})')
    two = medians['2 processes, 1 thread each']
    one = medians['1 process, 1 thread']
    one_all = medians[f'1 process, {cores} threads']
    print(f'\nratio 2 processes / 1 process (1 thread):   {two / one:.2f}x')
    print(f'ratio 2 processes / 1 process ({cores} threads):  '
          f'{two / one_all:.2f}x')


if __name__ == '__main__':
    main()
