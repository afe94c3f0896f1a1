"""Charged N-body: unconstrained models trained plain, with data augmentation
and with REMUL, against the exactly equivariant EGNN and SEGNN.

Usage:  python benchmarks/nbody.py [--seeds 0 1 2 3 4] [--epochs 60]
            [--val-every 1] [--jobs 2] [--only LABEL ...] [--report-only]
            [--quick]

Our simulator of the EGNN charged-particle system (a stand-in for the EGNN
files, 3000/2000/2000 trajectories, frame 30 -> 40). Rows: MLP, GNN and
Transformer each plain, with augmentation and with REMUL; EGNN; SEGNN (at
the learning rate headline.py's search chose, SEGNN_LR), on a short
schedule (60 epochs). The long-schedule table (300 epochs) of the
GNN, EGNN and Transformer rows, with compute-matched augmentation, is
benchmarks/headline.py; gravity is benchmarks/gravity.py.

Every run is `remul train --task nbody` with the options of its row and the
task's defaults otherwise (REMUL: beta = 1, target mode, two forward passes
per step; augmentation: one). Selection: each run's test metrics are those
of the model at its epoch of lowest validation MSE. Statistics: mean over
seeds with a 95% Student-t interval; paired Student-t intervals over
seeds (``_stats.PAIRED_METHOD``) of REMUL - augmentation and REMUL - plain per
backbone and REMUL - EGNN, "tie" when the interval contains 0. E and E'
are measured under SO(3) on 200 test graphs (20 rotations each). Finished
runs under runs/bench-nbody/ are reused when the package code is the same,
so an interrupted benchmark continues where it stopped (``--report-only``
trains nothing and tabulates the rows whose every seed finished).

Writes benchmarks/results/nbody.{json,md,png}.
"""
import argparse
import os
import sys
import tempfile
from typing import Dict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stats import (  # noqa: E402
    MSE_AND_E_PRIME,
    add_intervals,
    compare_rows,
    comparison_table,
    far_seed_lines,
    interval_cells,
    missing_lines,
)

from _runs import (  # noqa: E402
    QUICK,
    add_protocol_arguments,
    code_lines,
    finished_configs,
    interval_panel,
    interval_payload,
    rerender,
    run_all,
    selected_rows,
    write_outputs,
)
from _timing import machine_description  # noqa: E402

#: SEGNN's learning rate: the one benchmarks/headline.py's search chose on
#: the validation set (``segnn_search.chosen_lr`` of
#: results/headline.json; a test keeps the two equal). At the task's
#: default, 5e-4, SEGNN's best validation MSE was 3.6 times as high.
SEGNN_LR = 1.35e-2

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
    dict(label='SEGNN', model='segnn', loss='plain', lr=SEGNN_LR),
]

#: the paired differences reported (label a - label b), on test MSE and E'
COMPARISONS = tuple(
    (f'{b} + REMUL', other)
    for b in ('MLP', 'GNN', 'Transformer')
    for other in (f'{b} + augmentation', f'{b} plain')) + (
    ('GNN + REMUL', 'EGNN'), ('Transformer + REMUL', 'EGNN'))
COMPARED = ('mse', 'E_prime_paper')

#: metrics given a 95% interval per row (key -> description)
INTERVALS = {'mse': 'test MSE (length^2)',
             'E_prime_paper': "E' as in the paper (Eq. 9, length)",
             'E_prime': "E' per node (our normalised variant, length)"}

#: a row whose mean is this many times the median of its panel is written
#: at the panel's edge instead of drawn to scale
OUTLIER = 3.0


def markdown(payload: Dict) -> str:
    """The table (mean [95% interval] over seeds) and the paired
    differences."""
    seeds = payload['seeds']
    lines = [
        f'### Charged N-body (simulated stand-in), {payload["epochs"]} '
        f'epochs; {len(seeds)} seeds {seeds}', '',
        'Test MSE x 1e-3 (length^2) and E\' x 1e-2 (length): mean [95% '
        't-interval] over seeds, at each run\'s best-validation epoch.', '',
        '| model / loss | test MSE | E\' (paper, Eq. 9) | E\' (per node) | '
        'best epochs | params | s / epoch |', '|---|---|---|---|---|---|---|']
    for r in payload['rows']:
        cells = [r['label'], *interval_cells(r, 1e3, 2), f'{r["params"]:,}',
                 f'{r["seconds_per_epoch"]:.2f}']
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines += far_seed_lines(payload['rows'], 1e3, 'x 1e-3')
    lines += comparison_table(payload['comparisons'], MSE_AND_E_PRIME)
    lines += missing_lines(payload['missing'])
    lines += code_lines(payload['rows'])
    return '\n'.join(lines) + '\n'


def plot(payload: Dict):
    """``plot(figures) -> figure``: test MSE and E' (paper) per row, means
    with 95% intervals and single seeds on linear axes (a far-off row is
    written at the panel's edge)."""
    rows = payload['rows']

    def draw(figures):
        fig, axes = figures.subplots(1, 2, figsize=(12, 4.6))
        for ax, key, scale, xlabel in (
                (axes[0], 'mse', 1e3, 'test MSE x 1e-3 (length$^2$)'),
                (axes[1], 'E_prime_paper', 1e2,
                 "E' (paper, Eq. 9) x 1e-2 (length)")):
            interval_panel(ax, rows, key, scale, xlabel, outlier=OUTLIER,
                           labels=ax is axes[0])
        axes[0].legend(fontsize=7, loc='lower right')
        fig.suptitle(f'Charged N-body (simulated stand-in), '
                     f'{payload["epochs"]} epochs: error bars are 95% '
                     f't-intervals of the mean over '
                     f'{len(payload["seeds"])} seeds', fontsize=9)
        fig.tight_layout()
        return fig
    return draw


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--beta', type=float, default=1.0)
    add_protocol_arguments(parser, epochs=60, val_every=1)
    args = parser.parse_args(argv)
    if args.from_json:
        print('wrote', ', '.join(rerender('nbody', args.from_json,
                                          markdown, plot)))
        return 0
    configs = selected_rows(parser, CONFIGS, args.only)
    common = dict(task='nbody', epochs=args.epochs, beta=args.beta,
                  data_root=args.data_root, val_every=args.val_every)
    work, seeds, directory = 'runs', list(args.seeds), {}
    if args.quick:
        common.update(QUICK)
        configs = [c for c in configs if c['model'] in ('gnn', 'egnn')]
        seeds = [0, 1]
        work = common['data_root'] = tempfile.mkdtemp()
        directory = {'directory': work}
    print(f'machine: {machine_description()}')
    work_dir = os.path.join(work, 'bench-nbody')
    done = configs if not args.report_only else \
        finished_configs(configs, seeds, common, work_dir)
    rows = run_all(done, seeds, common, work_dir, jobs=args.jobs) \
        if done else []
    add_intervals(rows, INTERVALS)
    missing = [c['label'] for c in configs if c not in done]
    payload = interval_payload(
        seeds, epochs=common['epochs'], common=common, metrics=INTERVALS,
        rows=rows, comparisons=compare_rows(rows, COMPARISONS, COMPARED),
        missing=missing)
    table = markdown(payload)
    print('\n' + table)
    paths = write_outputs('nbody', payload, table,
                          plot(payload) if rows else None, **directory)
    print('wrote', ', '.join(paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
