"""Charged N-body: unconstrained models trained plain, with data augmentation
and with REMUL, against the exactly equivariant EGNN and SEGNN.

Usage:  python benchmarks/nbody.py [--seeds 0 1 2] [--epochs 60]
                                   [--val-every 1] [--jobs 2] [--quick]

Our simulator of the EGNN charged-particle system (a stand-in for the EGNN
files, 3000/2000/2000 trajectories, frame 30 -> 40). Rows: MLP, GNN and
Transformer each plain, with augmentation and with REMUL; EGNN; SEGNN.
Writes benchmarks/results/nbody.{json,md,png}. The long-schedule table with
intervals is benchmarks/headline.py; gravity is benchmarks/gravity.py.

Every run is `remul train --task T` with the given options (the task's
defaults otherwise); test MSE is averaged over the seeds (mean +- std), E and
E' are measured under SO(3) on 200 test graphs (20 rotations each). Finished
runs under runs/bench-nbody/ are reused, so an interrupted benchmark
continues where it stopped.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _runs import (QUICK, bar_plot, markdown_table, run_all,  # noqa
                   write_outputs)
from _timing import machine_description  # noqa: E402

CONFIGS = [
    dict(label='MLP plain', model='mlp', loss='plain'),
    dict(label='MLP + augmentation', model='mlp', loss='augment'),
    dict(label='MLP + REMUL', model='mlp', loss='remul'),
    dict(label='GNN plain', model='gnn', loss='plain'),
    dict(label='GNN + augmentation', model='gnn', loss='augment'),
    dict(label='GNN + REMUL', model='gnn', loss='remul'),
    dict(label='Transformer plain', model='transformer', loss='plain'),
    dict(label='Transformer + augmentation', model='transformer',
         loss='augment'),
    dict(label='Transformer + REMUL', model='transformer', loss='remul'),
    dict(label='EGNN', model='egnn', loss='plain'),
    dict(label='SEGNN', model='segnn', loss='plain'),
]

def out_dir(args, work):
    """--quick writes its outputs into its temporary directory."""
    return {'directory': work} if args.quick else {}


def _select(configs, only):
    configs = [dict(c) for c in configs]
    if only:
        configs = [c for c in configs
                   if any(s.lower() in c['label'].lower() for s in only)]
    return configs


def charged(args, common, work):
    configs = _select(CONFIGS, args.only)
    if args.quick:
        configs = [c for c in configs if c['model'] in ('gnn', 'egnn')]
    common = dict(common, task='nbody')
    rows = run_all(configs, args.seeds, common,
                   os.path.join(work, 'bench-nbody'), jobs=args.jobs)
    table = markdown_table(rows, f'Charged N-body (simulated stand-in), '
                           f'{common["epochs"]} epochs, seeds {args.seeds}')
    print('\n' + table)

    plot = bar_plot(rows, 'charged N-body (simulated)')
    paths = write_outputs('nbody', {'machine': machine_description(),
                                    'common': common, 'rows': rows},
                          table, plot, **out_dir(args, work))
    print('wrote', ', '.join(paths))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--epochs', type=int, default=60)
    parser.add_argument('--beta', type=float, default=1.0)
    parser.add_argument('--only', nargs='*', default=None,
                        help='labels (substrings) of the runs to keep')
    parser.add_argument('--data-root', default='data')
    parser.add_argument('--val-every', type=int, default=1,
                        help='validate every N epochs (and after the last)')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs trained at once (one per core)')
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args(argv)
    common = dict(epochs=args.epochs, beta=args.beta,
                  data_root=args.data_root, val_every=args.val_every)
    work = 'runs'
    if args.quick:
        common.update(QUICK)
        work = common['data_root'] = tempfile.mkdtemp()
    print(f'machine: {machine_description()}')
    charged(args, common, work)
    return 0


if __name__ == '__main__':
    sys.exit(main())
