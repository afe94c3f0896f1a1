"""Gravity (our simulator of the GATr star-and-planets system) under two
protocols, side by side: unconstrained Transformer and GNN trained plain,
with data augmentation and with REMUL, against the exactly equivariant EGNN.

Usage:  python benchmarks/gravity.py [--protocols canonical gatr]
            [--seeds 0 1 2 3 4] [--epochs 60] [--val-every 1] [--jobs 2]
            [--only LABEL ...] [--report-only] [--quick]

Data: 1 star and 3 planets, 100 Euler steps over 0.1; 3,000 / 1,000 /
1,000 systems (GATr: 100,000 / 5,000 / 5,000). Every run is ``remul train
--task gravity --source <protocol>`` with the options of its row and the
task's defaults otherwise:

* ``canonical`` (ours): training data lie in their canonical frame (orbits
  in the x-y plane, the star at node 0); the out-of-distribution split is
  the test split with every system rotated by its own random rotation.
  Runs under ``runs/bench-gravity/``.
* ``gatr`` (GATr's protocol): every system randomly rotated, shifted
  (standard deviation 20) and its bodies randomly ordered; the
  out-of-distribution split is the test split shifted by 200 along x (and
  rotated once more). Runs under ``runs/bench-gravity-gatr/``.

Both centre every system on its centre of mass, so the shifts change
nothing for any model here. Besides the test and out-of-distribution MSE
every row reports the MSE on test systems with 5 planets (the ``planets``
split; every model here accepts variable graph sizes).

Selection: each run's metrics are those of the model at its epoch of lowest
validation MSE (validated every ``--val-every`` epochs and at the last).
Statistics: mean over seeds with a 95% Student-t interval; paired
Student-t intervals over seeds (``_stats.PAIRED_METHOD``) of REMUL -
augmentation, REMUL - EGNN and REMUL - plain per backbone, on the test
and the out-of-distribution MSE and on E' (the paper's Eq. 9), "tie" (not
shown to differ) when the interval contains 0. Rows without
every requested seed finished are listed as missing (``--report-only``
tabulates only finished rows and trains nothing). Finished runs are reused
when the package code is the same, so an interrupted benchmark continues.

Writes benchmarks/results/gravity.{json,md,png}; the paper's numbers are a
separate table that says what differs.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stats import (  # noqa: E402
    add_intervals,
    compare_rows,
    comparison_table,
    far_seed_lines,
    format_interval,
    mean_interval,
    missing_lines,
)

from _runs import (  # noqa: E402
    QUICK,
    add_protocol_arguments,
    code_lines,
    finished_configs,
    interval_panel,
    interval_payload,
    paired_panel,
    publish,
    rerender,
    run_all,
    selected_rows,
)

CONFIGS = [
    dict(label='Transformer plain', model='transformer', loss='plain'),
    dict(label='Transformer + augmentation', model='transformer',
         loss='augment'),
    dict(label='Transformer + REMUL', model='transformer', loss='remul'),
    dict(label='GNN plain', model='gnn', loss='plain'),
    dict(label='GNN + augmentation', model='gnn', loss='augment'),
    dict(label='GNN + REMUL', model='gnn', loss='remul'),
    dict(label='EGNN', model='egnn', loss='plain'),
]

#: the paired differences reported (label a - label b), on each metric of
#: COMPARED
COMPARISONS = tuple(
    (f'{b} + REMUL', other)
    for b in ('Transformer', 'GNN')
    for other in (f'{b} + augmentation', 'EGNN', f'{b} plain'))
COMPARED = ('mse', 'ood_mse', 'E_prime_paper')

#: metrics given a 95% interval per row (key -> description)
INTERVALS = {'mse': 'test MSE (length^2)',
             'ood_mse': 'out-of-distribution MSE (length^2)',
             'planets_mse': 'MSE on test systems with 5 planets (length^2)',
             'E_prime_paper': "E' as in the paper (Eq. 9, length)"}

#: Per protocol: where its runs go (under the work directory), its title
#: and the names of its splits.
PROTOCOLS = {
    'canonical': dict(
        work='bench-gravity',
        title='ours: trained in the canonical frame',
        test='test (canonical frame)',
        ood='rotated test (OOD)'),
    'gatr': dict(
        work='bench-gravity-gatr',
        title="GATr's protocol: systems rotated, shifted and permuted",
        test='test (rotated, shifted, permuted)',
        ood='test rotated again, +200 along x (OOD)'),
}

#: REMUL paper, gravity (GATr data and protocol), test MSE x 1e-3, in
#: distribution / out of distribution (third-party transcription, see
#: docs/results.md)
PAPER = {
    'Transformer plain': (8.99, 27.06),
    'Transformer + augmentation': (4.20, 4.21),
    'Transformer + REMUL': (1.94, 1.83),
}
PAPER_NOTE = ('REMUL paper (GATr data and protocol: 100,000 training '
              'systems, 50,000 steps; ours: 3,000 systems, about 2,800 '
              'steps at 60 epochs, every system centred on its centre of '
              'mass, no learning-rate decay or gradient clipping, our '
              'Transformer 128 wide with an m_i m_j attention bias). Not '
              'comparable to the tables above; MSE x 1e-3:')

#: a value this many times the median of its panel is drawn at the
#: panel's edge with its value written next to it (so that one far-off
#: row does not squash the others)
OUTLIER = 4.0


def _ood(config, spec, model):
    """MSE on the gravity task's out-of-distribution split ('ood': rotated
    test systems, or with the GATr protocol shifted by 200 along x) and on
    its test systems with 5 planets ('planets')."""
    from torch_geometric_remul.train import evaluate_split
    out = evaluate_split(model, spec.load('ood'), spec, config,
                         seed=config.seed * 7919 + 2 * 10**6)
    extra = {'ood_mse': out['mse']}
    out = evaluate_split(model, spec.load('planets'), spec, config,
                         seed=config.seed * 7919 + 3 * 10**6)
    extra['planets_mse'] = out['mse']
    return extra


def aggregate(rows: List[Dict]) -> Dict:
    """Intervals per row (and the out-of-distribution / test ratio per
    seed) and the paired comparisons of one protocol."""
    add_intervals(rows, INTERVALS)
    for row in rows:
        row['ood_ratio_ci'] = mean_interval(
            [r['ood_mse'] / r['mse'] for r in row['runs']]).as_dict()
    return {'rows': rows,
            'comparisons': compare_rows(rows, COMPARISONS, COMPARED)}


def run_protocol(protocol: str, configs: List[Dict], seeds: List[int],
                 common: Dict, work: str, report_only: bool,
                 jobs: int) -> Dict:
    """Trains (unless ``report_only``) and aggregates one protocol."""
    spec = PROTOCOLS[protocol]
    common = dict(common, source=protocol)
    work_dir = osp.join(work, spec['work'])
    done = configs if not report_only else \
        finished_configs(configs, seeds, common, work_dir)
    rows = run_all(done, seeds, common, work_dir, evaluate=_ood,
                   jobs=jobs) if done else []
    part = dict(spec, common=common,
                missing=[c['label'] for c in configs if c not in done])
    part.update(aggregate(rows))
    return part


def markdown(payload: Dict) -> str:
    """Per protocol: the table (mean [95% interval]) and the paired
    differences; then the paper's numbers, apart."""
    seeds = payload['seeds']
    parts = [
        f'### Gravity (simulated, GATr setup), {payload["epochs"]} epochs, '
        f'validated every {payload["val_every"]}; {len(seeds)} seeds '
        f'{seeds}', '',
        'MSE x 1e-3 (length^2) and E\' x 1e-2 (length): mean [95% '
        't-interval] over seeds, at each run\'s best-validation epoch. '
        'OOD / test: the ratio per seed, averaged. Differences: paired '
        'Student-t 95% interval over seeds; "tie" (not shown to differ) '
        'when the interval contains 0.']
    for name, part in payload['protocols'].items():
        lines = ['', f'#### {part["title"]} (`--source {name}`)', '',
                 f'| model / loss | {part["test"]} | {part["ood"]} | '
                 f'OOD / test | 5 planets | E\' (paper, Eq. 9) x 1e-2 | '
                 f'best epochs |', '|---|---|---|---|---|---|---|']
        for r in part['rows']:
            lines.append(
                f'| {r["label"]} | {format_interval(r["mse_ci"], 3, 1e3)} | '
                f'{format_interval(r["ood_mse_ci"], 3, 1e3)} | '
                f'{format_interval(r["ood_ratio_ci"], 2)} | '
                f'{format_interval(r["planets_mse_ci"], 2, 1e3)} | '
                f'{format_interval(r["E_prime_paper_ci"], 3, 1e2)} | '
                f'{", ".join(str(e) for e in r["best_epochs"])} |')
        lines += far_seed_lines(part['rows'], 1e3, 'x 1e-3')
        lines += comparison_table(part['comparisons'],
                                  {'mse': ('test MSE x 1e-3', 1e3),
                                   'ood_mse': ('OOD MSE x 1e-3', 1e3),
                                   'E_prime_paper': ("E' (paper) x 1e-2",
                                                     1e2)})
        lines += missing_lines(part['missing'])
        lines += code_lines(part['rows'])
        parts.append('\n'.join(lines))
    paper = [f'| {label} | {a:.2f} | {b:.2f} |'
             for label, (a, b) in PAPER.items()]
    parts.append(f'\n{PAPER_NOTE}\n\n| model / loss | test | OOD |\n'
                 f'|---|---|---|\n' + '\n'.join(paper))
    return '\n'.join(parts) + '\n'


def plot(payload: Dict):
    """``plot(figures) -> figure``: one row of panels per protocol (test,
    out of distribution, 5 planets), means with 95% intervals and single
    seeds on a linear scale; a row far above the others is drawn at the
    panel's edge with its value written out."""
    protocols = [(n, p) for n, p in payload['protocols'].items()
                 if p['rows']]
    panels = ('mse', 'ood_mse', 'planets_mse')

    def draw(figures):
        fig, axes = figures.subplots(
            len(protocols), 4, squeeze=False,
            figsize=(21, 3.8 * len(protocols)),
            gridspec_kw={'width_ratios': (1, 1, 1, 1.15)})
        for axrow, (name, part) in zip(axes, protocols):
            for ax, key in zip(axrow, panels):
                interval_panel(ax, part['rows'], key, 1e3,
                               'MSE x 1e-3 (length$^2$)', outlier=OUTLIER,
                               labels=ax is axrow[0])
                title = part['test'] if key == 'mse' else \
                    part['ood'] if key == 'ood_mse' else 'test, 5 planets'
                ax.set_title(f'{name}: {title}', fontsize=8)
            ax = axrow[3]
            paired_panel(ax, [c for c in part['comparisons']
                              if c['key'] == 'mse'], 1e3,
                         'paired difference of test MSE x 1e-3')
            ax.yaxis.tick_right()
            ax.set_title(f'{name}: paired differences a - b over seeds '
                         f'(95% t-interval; open: tie)', fontsize=8)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, fontsize=8, loc='upper right')
        fig.suptitle(f'Gravity (simulated, GATr setup): error bars are 95% '
                     f't-intervals of the mean over '
                     f'{len(payload["seeds"])} seeds (rows) and of the '
                     f'paired seed-wise differences (right)', fontsize=9)
        fig.tight_layout(rect=(0, 0, 1, 0.95))
        return fig
    return draw


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--protocols', nargs='+', choices=tuple(PROTOCOLS),
                        default=list(PROTOCOLS))
    parser.add_argument('--beta', type=float, default=1.0)
    add_protocol_arguments(parser, epochs=60, val_every=1, work=True)
    args = parser.parse_args(argv)
    if args.from_json:
        print('wrote', ', '.join(rerender('gravity', args.from_json,
                                          markdown, plot)))
        return 0
    configs = selected_rows(parser, CONFIGS, args.only)
    common = dict(task='gravity', epochs=args.epochs, beta=args.beta,
                  val_every=args.val_every, data_root=args.data_root)
    work, seeds, directory = args.work, list(args.seeds), {}
    if args.quick:
        common.update(QUICK)
        configs = [c for c in configs
                   if c['label'] in ('Transformer + REMUL', 'EGNN')]
        seeds = [0, 1]
        work = common['data_root'] = tempfile.mkdtemp()
        directory = {'directory': work}
    protocols = {name: run_protocol(name, configs, seeds, common, work,
                                    args.report_only, args.jobs)
                 for name in args.protocols}
    payload = interval_payload(seeds, epochs=common['epochs'],
                               val_every=common['val_every'],
                               metrics=INTERVALS, protocols=protocols,
                               paper={'note': PAPER_NOTE, 'mse_1e3': PAPER})
    drawn = any(p['rows'] for p in protocols.values())
    publish('gravity', payload, markdown, plot, drawn, **directory)
    return 0


if __name__ == '__main__':
    sys.exit(main())
