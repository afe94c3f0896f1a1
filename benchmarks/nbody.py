"""Charged N-body: unconstrained models trained plain, with data augmentation
and with REMUL, against the exactly equivariant EGNN and SEGNN.

Usage:  python benchmarks/nbody.py [--seeds 0 1 2] [--epochs 60] [--quick]

Data: our simulator of the EGNN charged-particle system (a stand-in for the
EGNN files, 3000/2000/2000 trajectories, frame 30 -> 40). Every run is
`remul train` with the given options; test MSE is averaged over the seeds
(mean +- std), E and E' are measured under SO(3) on 200 test graphs. Writes
benchmarks/results/nbody.{json,md,png}.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _runs import QUICK, markdown_table, run_all, write_outputs  # noqa
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--epochs', type=int, default=60)
    parser.add_argument('--beta', type=float, default=1.0)
    parser.add_argument('--only', nargs='*', default=None,
                        help='labels (substrings) of the runs to keep')
    parser.add_argument('--data-root', default='data')
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args(argv)
    common = dict(task='nbody', epochs=args.epochs, beta=args.beta,
                  data_root=args.data_root)
    configs = [dict(c) for c in CONFIGS]
    if args.only:
        configs = [c for c in configs
                   if any(s.lower() in c['label'].lower() for s in args.only)]
    if args.quick:
        common.update(QUICK)
        configs = [c for c in configs if c['model'] in ('gnn', 'egnn')]
        work = tempfile.mkdtemp()
        common['data_root'] = work
    else:
        work = os.path.join('runs', 'bench-nbody')
    print(f'machine: {machine_description()}')
    rows = run_all(configs, args.seeds, common, work)
    table = markdown_table(rows, f'Charged N-body (simulated stand-in), '
                           f'{common["epochs"]} epochs, seeds {args.seeds}')
    print('\n' + table)
    if args.quick:
        return 0

    def plot(plt):
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.barh([r['label'] for r in rows], [r['mse'] for r in rows],
                xerr=[r['mse_std'] for r in rows])
        ax.set_xlabel('test MSE')
        ax.invert_yaxis()
        fig.tight_layout()
        return fig

    paths = write_outputs('nbody', {'machine': machine_description(),
                                    'common': common, 'rows': rows},
                          table, plot)
    print('wrote', ', '.join(paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
