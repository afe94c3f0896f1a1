"""The headline comparison on charged N-body: REMUL against data
augmentation (one and two transformed copies per step), the exactly
equivariant EGNN and SEGNN, and plain training, on a long schedule with
several seeds.

Usage:  python benchmarks/headline.py [--seeds 0 1 2 3 4] [--epochs 300]
            [--val-every 5] [--segnn-epochs 100] [--jobs 2] [--only LABEL ...]
            [--work runs] [--report-only] [--quick] [--from-json JSON]
            [--update JSON --only LABEL ...]

Data: our simulator of the EGNN charged-particle system (a stand-in for the
EGNN files: 3,000 / 2,000 / 2,000 trajectories, frame 30 -> 40, see
docs/results.md for how it differs). Every run is ``remul train --task
nbody`` with the options of its row, ``--epochs 300 --val-every 5`` (EGNN's
protocol validates every 5 epochs) and the task's defaults otherwise.

Rows, in the order they are trained:

* ``GNN + REMUL``: target mode, beta = 1, fused (one forward pass on the
  clean and the transformed graphs: two graphs' worth of compute per graph);
* ``GNN + augmentation``: one transformed copy per graph and step (one
  graph's worth of compute);
* ``GNN + augmentation x2``: two transformed copies per graph and step,
  fused (``num_samples=2``): as many forward passes as REMUL;
* ``EGNN``, ``GNN plain``, then the Transformer rows;
* ``SEGNN`` (plain; equivariant by construction), with its own schedule:
  ``--segnn-epochs`` (default 100, about the training time of the other
  rows' 300 epochs).

Learning rates: EGNN and SEGNN, the two rows whose rate is not the one
the unconstrained backbones share (the task default, 5e-4, EGNN's own),
get the same validation search (``LR_SEARCHES``, ``_runs.tune_lr``):
every rate of a grid trained on seed 0 (EGNN 1.5e-4, 5e-4, 1.5e-3; SEGNN
5e-4, 1.5e-3, 4.5e-3), the grid grown 3x past an edge that wins, at most
twice; the rate with the lowest best validation MSE is the row's for
every seed (its seed-0 run is the search's run). The searches are trained
first and tabulated; the row's label names the rate chosen.

Selection: each run's test metrics are those of the model at its epoch of
lowest validation MSE (validated every ``--val-every`` epochs and at the
last). Statistics: mean over seeds with a 95% Student-t interval; paired
Student-t intervals over seeds (``_stats.PAIRED_METHOD``) of the
differences in ``COMPARISONS``, "tie" (not shown to differ) when the
interval contains 0. Only rows with every requested seed finished are
tabulated; the others are listed as missing (``--jobs 2`` trains two runs at
once; an interrupted run goes on from its last epoch, and finished runs are
reused, when the package code is the same).

Writes benchmarks/results/headline.{json,md,png}: the test-MSE panel, the
E' panel (the paper's Eq. 9; the table also gives our per-node variant),
validation MSE against the epoch, and the paired differences of test MSE
with their t-intervals. Training time is not plotted: the runs shared a
loaded 2-core machine (two at a time, some resumed), so a run's wall time
measures the load as much as the method; the per-step cost of each loss is
measured side by side by benchmarks/loss.py (step.json). ``--from-json
JSON`` trains and reads no run: it recomputes the comparisons of a written
JSON from its per-seed values and writes its outputs again. ``--update
JSON --only LABEL ...`` trains (or reads) only those rows, with their
searches, and writes the stored JSON again with them in place of the rows
of the same name, the other rows as stored, every comparison recomputed
and an ``updates`` record of the code that trained them: how a row is
re-run on the code, hence the data, of the rest of the table (run the
script with that package version first on ``PYTHONPATH``; see
docs/results.md).
"""
import argparse
import json
import os
import os.path as osp
import sys
import tempfile
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stats import (  # noqa: E402
    MSE_AND_E_PRIME,
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
    base_label,
    code_lines,
    finished_configs,
    interval_panel,
    interval_payload,
    load_results,
    paired_panel,
    publish,
    rerender,
    run_all,
    search_lines,
    search_record,
    selected_rows,
    tune_lr,
    update_note,
)

CONFIGS = [
    dict(label='GNN + REMUL', model='gnn', loss='remul', fused=True),
    dict(label='GNN + augmentation', model='gnn', loss='augment'),
    dict(label='GNN + augmentation x2', model='gnn', loss='augment',
         num_samples=2, fused=True),
    dict(label='EGNN', model='egnn', loss='plain'),
    dict(label='GNN plain', model='gnn', loss='plain'),
    dict(label='Transformer + REMUL', model='transformer', loss='remul',
         fused=True),
    dict(label='Transformer + augmentation', model='transformer',
         loss='augment'),
    dict(label='Transformer plain', model='transformer', loss='plain'),
    dict(label='SEGNN', model='segnn', loss='plain'),
]

#: the rows whose learning rate is searched on the validation set, alike
#: (``_runs.tune_lr``: seed 0, the grid grows 3x past a winning edge, at
#: most twice): SEGNN from the task default up (5e-4, 1.5e-3, 4.5e-3),
#: EGNN around the task default (EGNN's own rate, 5e-4); each row uses
#: the rate with the lowest best validation MSE for every seed
LR_SEARCHES = {'SEGNN': (5e-4, 1.5e-3, 4.5e-3),
               'EGNN': (1.5e-4, 5e-4, 1.5e-3)}
#: SEGNN's epochs: a SEGNN epoch costs about 2.5 GNN + REMUL epochs on
#: this machine, so 100 SEGNN epochs take about the training time of the
#: other rows' 300 (the table's core-hours column says how close)
SEGNN_EPOCHS = 100

#: the paired differences reported (label a - label b)
COMPARISONS = (('GNN + REMUL', 'GNN + augmentation'),
               ('GNN + REMUL', 'GNN + augmentation x2'),
               ('GNN + REMUL', 'EGNN'),
               ('GNN + REMUL', 'GNN plain'),
               ('GNN + augmentation x2', 'GNN + augmentation'),
               ('GNN + augmentation x2', 'EGNN'),
               ('GNN + augmentation', 'GNN plain'),
               ('Transformer + REMUL', 'Transformer + augmentation'),
               ('Transformer + REMUL', 'EGNN'),
               ('Transformer + REMUL', 'Transformer plain'),
               ('GNN + REMUL', 'SEGNN'),
               ('EGNN', 'SEGNN'))

#: pairs of two exactly equivariant models: their E' are both 0 up to
#: float rounding, so only the test MSE is compared
MSE_ONLY = (('EGNN', 'SEGNN'),)

#: metrics given a 95% interval per row (key -> description)
INTERVALS = {'mse': 'test MSE (length^2)',
             'E_prime_paper': "E' as in the paper (Eq. 9, length)",
             'E_prime': "E' per node (our normalised variant, length)"}


def passes(config: Dict) -> int:
    """Forward passes per training graph and step of a row: one per
    transformed copy (``num_samples``), plus the untransformed graph for
    plain training and REMUL."""
    copies = config.get('num_samples', 1) if config['loss'] != 'plain' else 0
    return copies + (config['loss'] != 'augment')


def _curve(run_dir: str) -> Dict[str, List[float]]:
    """Validation MSE against cumulative training seconds of one run."""
    with open(osp.join(run_dir, 'metrics.json')) as f:
        history = json.load(f)
    seconds, mse, total = [], [], 0.0
    for row in history:
        total += row['epoch_seconds']
        if row['val_mse'] == row['val_mse']:  # validated epochs only
            seconds.append(total)
            mse.append(row['val_mse'])
    return {'seconds': seconds, 'val_mse': mse, 'total_seconds': total}


def tune_rows(configs: List[Dict], common: Dict, work_dir: str,
              segnn_epochs: int, jobs: int = 1, report_only: bool = False
              ) -> Tuple[List[Dict], Dict[str, Dict], List[str]]:
    """Runs (or, with ``report_only``, reads) the learning-rate search of
    every row of ``configs`` named in :data:`LR_SEARCHES`
    (``_runs.tune_lr``; SEGNN on its own schedule of ``segnn_epochs``) and
    puts the chosen configuration in place of the row. Returns the
    configurations, the searches (name -> ``_runs.search_record``) and the
    searches not finished (listed as missing)."""
    out, searches, missing = [], {}, []
    for cfg in configs:
        rates = LR_SEARCHES.get(cfg['label'])
        if rates is None:
            out.append(cfg)
            continue
        fields = {k: v for k, v in cfg.items() if k != 'label'}
        epochs = common['epochs']
        if cfg['label'] == 'SEGNN':
            epochs = fields['epochs'] = segnn_epochs
        chosen, runs = tune_lr(cfg['label'], fields, rates, common,
                               work_dir, jobs=jobs, report_only=report_only)
        if chosen is None:
            missing.append(f'{cfg["label"]} (learning-rate search)')
            continue
        searches[cfg['label']] = search_record(chosen, runs, epochs, rates)
        out.append(chosen)
    return out, searches, missing


def searches_of(payload: Dict) -> Dict[str, Dict]:
    """The learning-rate searches of a headline JSON (name -> record);
    JSONs written before EGNN was searched stored SEGNN's alone, as
    ``segnn_search`` over the grid of :data:`LR_SEARCHES`."""
    if 'lr_search' in payload:
        return payload['lr_search'] or {}
    old = payload.get('segnn_search')
    return {'SEGNN': dict(old, grid=list(LR_SEARCHES['SEGNN']))} if old \
        else {}


def add_run_records(rows: List[Dict], configs: List[Dict],
                    work_dir: str) -> None:
    """Intervals, passes per graph, validation curves and compute of the
    rows just trained (read from their runs in ``work_dir``)."""
    add_intervals(rows, INTERVALS)
    for cfg, row in zip(configs, rows):
        row['passes_per_graph'] = passes(cfg)
        curves = [_curve(osp.join(work_dir, f'{row["label"]}-seed{s}'
                                  .replace(' ', '_'))) for s in row['seeds']]
        row['curves'] = curves
        row['train_core_seconds'] = sum(c['total_seconds'] for c in curves)
        run_seconds = [c['total_seconds'] for c in curves]
        row['train_seconds_ci'] = mean_interval(run_seconds).as_dict()


def comparisons(rows: List[Dict]) -> List[Dict]:
    """The paired differences of :data:`COMPARISONS` among ``rows`` (a
    name in it stands for the row of that name at whatever learning rate
    its search chose)."""
    label = {base_label(r['label']): r['label'] for r in rows}

    def named(pairs):
        return [tuple(label.get(x, x) for x in pair) for pair in pairs]
    both = [p for p in COMPARISONS if p not in MSE_ONLY]
    return compare_rows(rows, named(both), ('mse', 'E_prime_paper')) + \
        compare_rows(rows, named(MSE_ONLY), ('mse',))


def updated(stored: Dict, new: Dict) -> Dict:
    """``stored`` (a written headline JSON) with the rows of ``new``
    (trained by this invocation) in place of its rows of the same name,
    their learning-rate searches, the comparisons recomputed over all
    rows, and an ``updates`` record of what was replaced by which code."""
    fresh = {base_label(r['label']): r for r in new['rows']}
    rows = [fresh.pop(base_label(r['label']), r) for r in stored['rows']]
    rows += list(fresh.values())
    out = dict(stored, rows=rows, comparisons=comparisons(rows),
               lr_search=dict(searches_of(stored), **new['lr_search']),
               missing=sorted(set(stored.get('missing', []))
                              - {base_label(r['label']) for r in rows}
                              | set(new['missing'])))
    out.pop('segnn_search', None)
    out['updates'] = list(stored.get('updates', [])) + [{
        'rows': [r['label'] for r in new['rows']],
        'searches': sorted(new['lr_search']),
        'code': new['code'], 'versions': new['versions'],
        'machine': new['machine']}]
    return out


def markdown(payload: Dict) -> str:
    """The table (mean [95% interval]) and the paired differences."""
    seeds = payload['seeds']
    lines = [
        f'### Charged N-body (simulated stand-in), {payload["epochs"]} '
        f'epochs, validated every {payload["val_every"]}; {len(seeds)} '
        f'seeds {seeds}', '',
        'Test MSE x 1e-3 (length^2) and E\' x 1e-2 (length): mean '
        '[95% t-interval] over seeds, at each run\'s best-validation epoch. '
        'Passes: forward passes per training graph and step. Core-hours: '
        'the wall time of all seeds of the row on a shared, loaded 2-core '
        'machine (two runs at a time, some resumed): a record of the '
        'budget, not a cost of the method (the per-step cost of each loss, '
        'measured side by side, is in step.json).', '',
        '| model / loss | passes | epochs | test MSE | E\' (paper, Eq. 9) | '
        'E\' (per node) | best epochs | core-hours |',
        '|---|---|---|---|---|---|---|---|']
    for r in payload['rows']:
        epochs = r['config'].get('epochs', payload['epochs'])
        lines.append(
            f'| {r["label"]} | {r["passes_per_graph"]} | {epochs} | '
            f'{format_interval(r["mse_ci"], 2, 1e3)} | '
            f'{format_interval(r["E_prime_paper_ci"], 3, 1e2)} | '
            f'{format_interval(r["E_prime_ci"], 3, 1e2)} | '
            f'{", ".join(str(e) for e in r["best_epochs"])} | '
            f'{r["train_core_seconds"] / 3600:.2f} |')
    lines += far_seed_lines(payload['rows'], 1e3, 'x 1e-3')
    for name, record in searches_of(payload).items():
        lines += search_lines(name, record)
    for update in payload.get('updates', []):
        lines += ['', update_note(update)]
    lines += comparison_table(payload['comparisons'], MSE_AND_E_PRIME)
    lines += missing_lines(payload['missing'])
    lines += code_lines(payload['rows'])
    return '\n'.join(lines) + '\n'


def validated_epochs(count: int, val_every: int, epochs: int) -> List[int]:
    """The epochs of a run's ``count`` validations: every ``val_every``
    epochs and after the last (``epochs``)."""
    out = list(range(val_every, epochs + 1, val_every))
    if not out or out[-1] != epochs:
        out.append(epochs)
    return out[:count]


def plot(payload: Dict):
    """``plot(figures) -> figure``: test MSE and E' (paper) per row with
    their 95% intervals; validation MSE against the epoch (not against
    seconds: the runs shared a loaded machine, so their wall time says
    more about the load than about the method; per-step cost is measured
    side by side in ``step.json``); the paired differences of test MSE
    with their paired t-intervals, on which the verdicts rest."""
    from matplotlib.ticker import FuncFormatter, LogLocator
    rows = payload['rows']

    def draw(figures):
        fig, grid = figures.subplots(2, 2, figsize=(14, 10))
        axes = grid.ravel()
        for ax, key, scale, xlabel in (
                (axes[0], 'mse', 1e3, 'test MSE x 1e-3 (length$^2$)'),
                (axes[1], 'E_prime_paper', 1e2,
                 "E' (paper, Eq. 9) x 1e-2 (length)")):
            interval_panel(ax, rows, key, scale, xlabel,
                           labels=ax is axes[0])
            ax.legend(fontsize=7, loc='best')
        ax = axes[2]
        for r in rows:
            curves = r['curves']
            n = min(len(c['val_mse']) for c in curves)
            epochs = validated_epochs(
                n, payload['val_every'],
                r['config'].get('epochs', payload['epochs']))
            ys_ = [sum(c['val_mse'][i] for c in curves) / len(curves) * 1e3
                   for i in range(len(epochs))]
            ax.plot(epochs, ys_, label=r['label'])
        ax.set_xlabel('epoch')
        ax.set_ylabel('validation MSE x 1e-3 (length$^2$), mean over '
                      'seeds (log scale)')
        ax.set_yscale('log')
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
        ax.yaxis.set_minor_locator(LogLocator(base=10, subs=()))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f'{v:g}'))
        ax.set_title('validation MSE during training (SEGNN: 100 epochs)',
                     fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        ax = axes[3]
        paired_panel(ax, [c for c in payload['comparisons']
                          if c['key'] == 'mse'], 1e3,
                     'paired difference of test MSE x 1e-3 (a - b)')
        ax.set_title('paired a - b: 95% t-interval (open: tie; green: a '
                     'lower, red: b lower); sign-flip p, seeds a lower',
                     fontsize=8)
        fig.suptitle(f'Charged N-body (simulated stand-in): error bars are '
                     f'95% t-intervals over {len(payload["seeds"])} seeds; '
                     f'the verdicts rest on the paired differences '
                     f'(bottom right), not on overlap of the rows\' '
                     f'intervals', fontsize=9)
        fig.tight_layout()
        return fig
    return draw


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_protocol_arguments(parser, epochs=300, val_every=5, work=True)
    parser.add_argument('--segnn-epochs', type=int, default=SEGNN_EPOCHS,
                        help='epochs of the SEGNN row and of its '
                        'learning-rate search (default %(default)s)')
    parser.add_argument('--update', metavar='JSON', default=None,
                        help='train (or read) only the rows of --only and '
                        'put them, with their learning-rate searches, in '
                        'place of the rows of the same name in a written '
                        'headline JSON; the other rows are kept as stored '
                        'and every comparison is recomputed')
    args = parser.parse_args(argv)
    if args.update and not args.only:
        parser.error('--update needs --only: the rows to train again')
    stored = load_results(args.update) if args.update else None
    if args.from_json:
        print('wrote', ', '.join(rerender('headline', args.from_json,
                                          markdown, plot)))
        return 0
    configs = selected_rows(parser, CONFIGS, args.only)
    common = dict(task='nbody', epochs=args.epochs, val_every=args.val_every,
                  data_root=args.data_root)
    work, seeds, directory = args.work, list(args.seeds), {}
    if args.quick:
        common.update(QUICK, val_every=2, epochs=3)
        configs = configs[:4]
        seeds = [0, 1]
        work = common['data_root'] = tempfile.mkdtemp()
        directory = {'directory': work}
    work_dir = osp.join(work, 'bench-headline')
    configs, searches, missing = tune_rows(
        configs, common, work_dir,
        common['epochs'] if args.quick else args.segnn_epochs, args.jobs,
        args.report_only)
    done = configs if not args.report_only else \
        finished_configs(configs, seeds, common, work_dir)
    missing += [c['label'] for c in configs if c not in done]
    rows = run_all(done, seeds, common, work_dir, jobs=args.jobs) \
        if done else []
    add_run_records(rows, done, work_dir)
    payload = interval_payload(seeds, epochs=common['epochs'],
                               val_every=common['val_every'], common=common,
                               missing=missing, metrics=INTERVALS,
                               lr_search=searches, rows=rows,
                               comparisons=comparisons(rows))
    if args.update:
        payload = updated(stored, payload)
        directory = {'directory': osp.dirname(osp.abspath(args.update))}
    publish('headline', payload, markdown, plot, bool(payload['rows']),
            **directory)
    return 0


if __name__ == '__main__':
    sys.exit(main())
