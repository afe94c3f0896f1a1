"""Data efficiency: test MSE against the number of training systems, for an
unconstrained backbone trained plain, with data augmentation and with REMUL,
against the exactly equivariant EGNN.

Usage:  python benchmarks/data_efficiency.py [--tasks nbody gravity]
            [--sizes 100 300 1000 3000] [--large] [--seeds 0 1 2 3 4]
            [--epochs 60] [--max-epochs 300] [--quick]

Tasks: charged N-body (EGNN's generator, reproduced; backbone GNN) and
gravity (our simulator of the GATr star-and-planets system; backbone
Transformer). Training-set sizes 100, 300, 1,000, 3,000 (``--large`` adds
10,000); validation and test sets keep the task's default sizes, so every
size is scored on the same test set of a given seed (the seed sets both the
data and the initialisation). Every run is ``train(TrainConfig(...))``
through ``_runs.run_all``: finished runs under
``runs/bench-data-efficiency/<task>/n<size>/`` are reused, so an
interrupted sweep continues where it stopped.

Gradient clipping (``CLIP_GRAD_NORM``, every model of a task alike):
charged N-body runs clip their gradients' 2-norm to 1, because unclipped
EGNN runs diverged on one seed in five at 100, 1,000 and 3,000 systems;
gravity runs do not clip (none diverged). ``--clip-grad-norm`` sets one
norm for every task trained.

Epochs: a smaller training set gets more epochs so that the number of
optimiser steps roughly matches the 3,000-system run
(``epochs x 3000 / size``, at most ``--max-epochs``); every run is validated
about ``VALIDATIONS`` times (every ``epochs // 60`` epochs, and after the
last), so that validating the fixed-size validation set does not dominate
the small runs. The epochs and validation interval of every size are
recorded in the JSON. ``--jobs 2`` trains two runs at once.

Statistics: the mean test MSE over seeds with a 95% Student-t interval;
REMUL - augmentation, REMUL - EGNN, REMUL - plain and augmentation - plain
as paired Student-t intervals over seeds (t with n - 1 degrees of freedom,
with the exact sign-flip p-value) with a verdict ("tie", not shown to
differ, when the interval contains 0). Writes
benchmarks/results/data_efficiency.{json,md,png} (``--quick``: tiny sizes,
one or two epochs, into a temporary directory; ``--from-json JSON`` trains
and reads no run: it recomputes the comparisons of a written JSON from its
per-seed values and writes the outputs again).
"""
import argparse
import json
import math
import os
import os.path as osp
import statistics
import sys
import tempfile
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stats import (  # noqa: E402
    add_intervals,
    compare_named,
    comparison_table,
    error_bars,
    far_seed_lines,
    far_seeds,
    format_interval,
    missing_lines,
)

from _runs import (  # noqa: E402
    LR_EXTRA,
    LR_STEP,
    QUICK,
    add_from_json_argument,
    base_label,
    code_lines,
    finished_configs,
    interval_payload,
    load_results,
    publish,
    rerender,
    run_all,
    search_record,
    search_value,
    tune_lr,
    update_note,
)
from _timing import machine_description  # noqa: E402

SIZES = (100, 300, 1000, 3000)
LARGE = 10000
#: the size whose epochs ``--epochs`` gives; smaller sizes match its steps
REFERENCE_SIZE = 3000
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
#: about how many times a run is validated (see :func:`val_every_for`)
VALIDATIONS = 60

#: task -> (title, unconstrained backbone)
TASKS = {
    'nbody': ("Charged N-body (simulated, EGNN's generator)", 'gnn'),
    'gravity': ('Gravity (simulated, GATr setup, canonical frame)',
                'transformer'),
}
BACKBONE_NAMES = {'gnn': 'GNN', 'transformer': 'Transformer', 'mlp': 'MLP'}

#: method -> configuration fields (the backbone is filled in per task)
METHODS = (
    ('plain', dict(loss='plain')),
    ('augmentation', dict(loss='augment')),
    ('REMUL', dict(loss='remul')),
    ('EGNN', dict(model='egnn', loss='plain')),
)
#: EGNN's learning rates searched per task and size on the validation set
#: (``_runs.tune_lr``: seed 0, the grid grows 3x past a winning edge, at
#: most twice): the task default (the rate every other row trains at) and
#: 3x either side. The unconstrained backbones keep the task default.
EGNN_LRS = {'nbody': (1.5e-4, 5e-4, 1.5e-3), 'gravity': (1e-4, 3e-4, 9e-4)}

#: task -> gradient clipping of every run (``--clip-grad-norm``), every
#: model alike: charged N-body clips to norm 1, because unclipped EGNN runs
#: diverged on one seed in five at 100, 1,000 and 3,000 systems (the
#: searched rate did not help); no gravity run diverged
CLIP_GRAD_NORM = {'nbody': 1.0}

#: the paired differences reported (method a - method b)
COMPARISONS = (('REMUL', 'augmentation'), ('REMUL', 'EGNN'),
               ('REMUL', 'plain'), ('augmentation', 'plain'),
               ('EGNN', 'augmentation'))

SELECTION_NOTE = ('test MSE of the model at the epoch of the lowest '
                  'validation MSE (ties to the earlier epoch), as recorded '
                  'by each run (`selection` per run)')


def configs_for(backbone: str) -> List[Dict]:
    """One ``run_all`` configuration per method, labelled by method."""
    name = BACKBONE_NAMES.get(backbone, backbone)
    out = []
    for method, fields in METHODS:
        cfg = dict(fields, method=method)
        cfg.setdefault('model', backbone)
        cfg['label'] = method if method == 'EGNN' else \
            f'{name} {method}' if method == 'plain' else f'{name} + {method}'
        out.append(cfg)
    return out


def epochs_for(size: int, epochs: int, max_epochs: int,
               reference: int = REFERENCE_SIZE) -> int:
    """Epochs for ``size`` training systems: ``epochs`` at ``reference``
    and above, else about as many optimiser steps (at most
    ``max_epochs``)."""
    if size >= reference:
        return epochs
    return max(epochs, min(max_epochs, math.ceil(epochs * reference / size)))


def val_every_for(epochs: int) -> int:
    """Validation interval of a run of ``epochs`` epochs: about
    :data:`VALIDATIONS` validations (every epoch up to that many)."""
    return max(1, epochs // VALIDATIONS)


def _run_record(run_dir: str) -> Dict:
    """Selection rule, best epoch and code version(s) a run recorded in its
    ``results.json`` (``None`` for what it does not record)."""
    path = osp.join(run_dir, 'results.json')
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        saved = {}
    prov = saved.get('provenance') or {}
    return {'selection': saved.get('selection'),
            'best_epoch': saved.get('best_epoch'),
            'code': prov.get('code'),
            'code_versions': prov.get('code_versions')}


def run_task(task: str, sizes: Sequence[int], seeds: Sequence[int],
             common: Dict, work: str, epochs: int, max_epochs: int,
             backbone: str = None, log=print, jobs: int = 1,
             report_only: bool = False,
             methods: Optional[Sequence[str]] = None) -> Dict:
    """Trains every method at every size (with ``report_only``: nothing,
    keeping the methods whose every seed finished); returns the task's JSON
    part: ``rows`` (one per size and method, with intervals),
    ``comparisons`` (paired differences per size) and ``missing`` (size
    and label of the methods not tabulated)."""
    title, default_backbone = TASKS[task]
    backbone = backbone or default_backbone
    configs = [c for c in configs_for(backbone)
               if not methods or c['method'] in methods]
    rows, comparisons, epochs_by_size, val_every = [], [], {}, {}
    missing, searches = [], {}
    for size in sizes:
        n_epochs = epochs_for(size, epochs, max_epochs)
        epochs_by_size[str(size)] = n_epochs
        val_every[str(size)] = val_every_for(n_epochs)
        values = dict(common, task=task, num_train=size, epochs=n_epochs,
                      val_every=val_every[str(size)])
        work_dir = osp.join(work, 'bench-data-efficiency', task, f'n{size}')
        run_cfgs = [{k: v for k, v in c.items() if k != 'method'}
                    for c in configs]
        run_cfgs, search, unsearched = tune_egnn(
            task, run_cfgs, values, work_dir, jobs, report_only)
        if search is not None:
            searches[str(size)] = search
        missing += [{'num_train': size, 'label': m} for m in unsearched]
        done = run_cfgs if not report_only else \
            finished_configs(run_cfgs, seeds, values, work_dir)
        missing += [{'num_train': size, 'label': c['label']}
                    for c in run_cfgs if c not in done]
        size_rows = run_all(done, seeds, values, work_dir, log=log,
                            jobs=jobs) if done else []
        add_intervals(size_rows, ('mse', 'E_prime', 'E_prime_paper'))
        for row in size_rows:
            row['method'] = method_of(row['label'])
            row['num_train'] = size
            row['epochs'] = n_epochs
            row['run_records'] = [
                _run_record(osp.join(work_dir, f'{row["label"]}-seed{s}'
                                     .replace(' ', '_'))) for s in seeds]
            rows.append(row)
        comparisons += size_comparisons(size_rows, size)
    return {'title': title, 'backbone': backbone,
            'clip_grad_norm': common.get('clip_grad_norm'),
            'epochs_by_size': epochs_by_size,
            'val_every_by_size': val_every, 'rows': rows,
            'comparisons': comparisons, 'missing': missing,
            'lr_search': searches}


def method_of(label: str) -> str:
    """The method of a row label (``"GNN + REMUL"`` -> ``"REMUL"``,
    ``"EGNN (lr 0.0005)"`` -> ``"EGNN"``)."""
    label = base_label(label)
    for method, _ in METHODS:
        if label == method or label.endswith(f' {method}'):
            return method
    raise ValueError(f'no method in the row label {label!r}')


def tune_egnn(task: str, configs: List[Dict], values: Dict, work_dir: str,
              jobs: int = 1, report_only: bool = False):
    """Runs (or, with ``report_only``, reads) EGNN's learning-rate search
    at one size (:data:`EGNN_LRS`) when ``configs`` has the EGNN row, and
    puts the chosen configuration in its place. Returns the configurations,
    the search record (``None`` without one) and the labels of rows left
    out because their search is unfinished."""
    out, record, missing = [], None, []
    for cfg in configs:
        if cfg['label'] != 'EGNN':
            out.append(cfg)
            continue
        fields = {k: v for k, v in cfg.items() if k != 'label'}
        chosen, runs = tune_lr('EGNN', fields, EGNN_LRS[task], values,
                               work_dir, jobs=jobs, report_only=report_only)
        if chosen is None:
            missing.append('EGNN (learning-rate search)')
            continue
        record = search_record(chosen, runs, values['epochs'],
                               EGNN_LRS[task])
        out.append(chosen)
    return out, record, missing


def updated(stored: Dict, new: Dict) -> Dict:
    """``stored`` (a written data-efficiency JSON) with the rows of ``new``
    (trained by this invocation) in place of the stored rows of the same
    task, size and method, their searches, every comparison recomputed,
    and an ``updates`` record of what was replaced by which code."""
    out = json.loads(json.dumps(stored))
    replaced, trees = [], set()
    for task, part in new['tasks'].items():
        old = out['tasks'][task]
        fresh = {(r['num_train'], r['method']): r for r in part['rows']}
        replaced += [f'{task}: {r["label"]} at {r["num_train"]:,}'
                     for r in part['rows']]
        trees |= {v.get('package_tree') for r in part['rows']
                  for v in r.get('code_versions') or []}
        if {(r['num_train'], r['method']) for r in old['rows']} <= \
                set(fresh):
            # every stored row trained again: the task's part is the new
            # one, and earlier updates of its rows are history
            out['tasks'][task] = json.loads(json.dumps(part))
            out['updates'] = [
                dict(u, rows=[r for r in u['rows']
                              if not r.startswith(f'{task}: ')])
                for u in out.get('updates', [])]
            out['updates'] = [u for u in out['updates'] if u['rows']]
            continue
        if part.get('clip_grad_norm') != old.get('clip_grad_norm'):
            raise ValueError(
                f'--update of {task!r} with clip_grad_norm='
                f'{part.get("clip_grad_norm")} would mix its rows with '
                f'stored rows trained with clip_grad_norm='
                f'{old.get("clip_grad_norm")}: train every method and size '
                f'of the task again (--methods with all of them)')
        old['rows'] = [fresh.pop((r['num_train'], r['method']), r)
                       for r in old['rows']] + list(fresh.values())
        old['lr_search'] = dict(old.get('lr_search', {}), **part['lr_search'])
        done = {(r['num_train'], base_label(r['label']))
                for r in part['rows']}
        old['missing'] = [m for m in old.get('missing', []) if
                          (m['num_train'], base_label(m['label']))
                          not in done] + part['missing']
    refresh_comparisons(out)
    out['updates'] = list(out.get('updates', [])) + [{
        'rows': replaced, 'code': new['code'], 'versions': new['versions'],
        'machine': new['machine'], 'trained_by': sorted(
            t for t in trees if t)}]
    return out


def size_comparisons(rows: List[Dict], size: int) -> List[Dict]:
    """The paired differences of ``COMPARISONS`` (test MSE) among the rows
    of one training-set size (rows named by their ``method``)."""
    return compare_named([r for r in rows if r['num_train'] == size],
                         COMPARISONS, ('mse',), num_train=size)


def refresh_comparisons(payload: Dict) -> None:
    """Rebuilds every task's comparisons of a written JSON from its rows
    (``--from-json``)."""
    for part in payload['tasks'].values():
        sizes = sorted({r['num_train'] for r in part['rows']})
        part['comparisons'] = [c for size in sizes for c in
                               size_comparisons(part['rows'], size)]


def markdown(payload: Dict) -> str:
    """The tables: per task, test MSE (mean [95% interval]) per size and
    method, then the paired differences with their verdicts."""
    seeds = payload['seeds']
    parts = [f'# Data efficiency\n\nTest MSE (length^2) x 1e-3: mean over '
             f'{len(seeds)} seeds {seeds} [95% t-interval]. Model selection: '
             f'{payload["selection_rule"]}. Differences: paired Student-t '
             f'95% interval over seeds; "tie" (not shown to differ) when '
             f'it contains 0.\n']
    for task, part in payload['tasks'].items():
        methods = [m for m, _ in METHODS]
        labels = {r['method']: base_label(r['label'])
                  for r in part['rows']}
        head = ['training systems', 'epochs'] + [labels.get(m, m)
                                                 for m in methods]
        clip = part.get('clip_grad_norm')
        lines = [f'## {part["title"]}', '',
                 f'Every run clips its gradients\' 2-norm to {clip:g} '
                 '(`--clip-grad-norm`), every model alike.' if clip else
                 'No gradient clipping.', '',
                 '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
        for size in payload['sizes']:
            cells = [f'{size:,}', str(part['epochs_by_size'][str(size)])]
            for m in methods:
                row = [r for r in part['rows']
                       if r['num_train'] == size and r['method'] == m]
                cells.append(format_interval(row[0]['mse_ci'], 3, 1e3) if row
                             else '-')
            lines.append('| ' + ' | '.join(cells) + ' |')
        lines += far_seed_lines(
            part['rows'], 1e3, 'x 1e-3',
            name=lambda r: f'{r["label"]} at {r["num_train"]:,}')
        lines += comparison_table(part['comparisons'],
                                  {'mse': ('test MSE x 1e-3', 1e3)},
                                  first=('training systems', 'num_train'))
        lines += search_table(part.get('lr_search'))
        lines += missing_lines([f'{m["label"]} at {m["num_train"]:,}'
                                for m in part.get('missing', [])])
        lines += code_lines(part['rows'], name=lambda r: f'{r["label"]} at '
                            f'{r["num_train"]:,}')
        parts.append('\n'.join(lines) + '\n')
    for update in payload.get('updates', []):
        parts.append(update_note(update) + '\n')
    return '\n'.join(parts)


def search_table(searches: Optional[Dict[str, Dict]]) -> List[str]:
    """EGNN's learning-rate search of every size, one table (none without
    a search)."""
    if not searches:
        return []
    first = next(iter(searches.values()))
    lines = ['', f'EGNN\'s learning rate, searched at every size: each rate '
             f'of the grid ({", ".join(f"{lr:g}" for lr in first["grid"])}; '
             f'then {LR_STEP:g}x further while the largest or smallest rate '
             f'tried was the best, at most {LR_EXTRA} more) trained on seed '
             f'{first["seed"]} with that size\'s epochs; the rate with the '
             f'lowest best validation MSE is used for every seed. The test '
             f'set is not used. The other rows train at the task default.',
             '', '| training systems | learning rate: best validation MSE '
             'x 1e-3 (best epoch) | chosen |', '|---|---|---|']
    for size, record in sorted(searches.items(), key=lambda kv: int(kv[0])):
        cells = []
        for r in sorted(record['runs'], key=lambda r: r['lr']):
            v = r['best_val_mse']
            epoch = r['best_epoch']
            cells.append(f'{r["lr"]:g}: {search_value(v)}' +
                         (f' ({epoch})' if epoch is not None else ''))
        lines.append(f'| {int(size):,} | {"; ".join(cells)} | '
                     f'{record["chosen_lr"]:g} |')
    return lines


def _top(rows: List[Dict]) -> float:
    """The top of a panel's MSE axis: above every single seed and every
    interval, except the runs far above their row's median
    (``_stats.far_seeds``) and the means and intervals they drag up."""
    values = []
    for r in rows:
        far = {s for s, _ in far_seeds(r)}
        values += [run['mse'] for s, run in zip(r['seeds'], r['runs'])
                   if s not in far]
        if not far:
            ci = r['mse_ci']
            values.append(ci['high'] if ci['high'] is not None
                          else ci['estimate'])
    return 1.1 * max(values) if values else 1.0


def plot(payload: Dict):
    """``plot(figures) -> figure``: one panel per task, test MSE against the
    training-set size (log x), error bars the 95% t-intervals, dots the
    single seeds; a diverged run (and the mean it drags up) is drawn as a
    triangle at the top edge with its value."""
    tasks = list(payload['tasks'].items())

    def draw(figures):
        fig, axes = figures.subplots(1, len(tasks),
                                     figsize=(5.5 * len(tasks), 4.2),
                                     squeeze=False)
        for ax, (task, part) in zip(axes[0], tasks):
            top = _top(part['rows'])
            for k, (method, _) in enumerate(METHODS):
                rows = sorted((r for r in part['rows']
                               if r['method'] == method),
                              key=lambda r: r['num_train'])
                if not rows:
                    continue
                # methods side by side (a small multiplicative dodge)
                dodge = 1 + 0.04 * (k - (len(METHODS) - 1) / 2)
                xs = [r['num_train'] * dodge for r in rows]
                ys, err = error_bars([r['mse_ci'] for r in rows])
                # a size with a diverged run: no mean on the line (its mean
                # and interval say nothing about the other seeds), an open
                # marker at the median instead
                far = [bool(far_seeds(r)) for r in rows]
                line = ax.errorbar(
                    xs, [math.nan if f else y for f, y in zip(far, ys)],
                    yerr=[[0.0 if f else e for f, e in zip(far, side)]
                          for side in err],
                    marker='o', capsize=3, label=rows[0]['label'])
                color = line[0].get_color()
                medians = [(x, statistics.median(run['mse']
                                                 for run in r['runs']))
                           for x, r, f in zip(xs, rows, far) if f]
                if medians:
                    ax.plot(*zip(*medians), 'o', mfc='none', color=color,
                            markersize=8)
                # every seed, so that one failed run is seen as such
                seeds = [(x, run['mse']) for x, r in zip(xs, rows)
                         for run in r['runs']]
                ax.plot([x for x, v in seeds if v <= top],
                        [v for x, v in seeds if v <= top], '.',
                        color=color, alpha=0.5, markersize=5)
                # off the scale: a triangle at the top edge with the value
                for x, v in seeds:
                    if v > top:
                        ax.plot([x], [top * 0.97], '^', color=color,
                                markersize=6)
                        ax.annotate(f'seed {v:.3g}', (x, top * 0.97),
                                    xytext=(4, -3), fontsize=6,
                                    textcoords='offset points', color=color)
            ax.set_ylim(0, top)  # an MSE is >= 0 (a t-interval is not)
            ax.set_xscale('log')
            ax.set_xticks(payload['sizes'], [f'{n:,}' for n in
                                             payload['sizes']])
            ax.minorticks_off()
            ax.set_xlabel('training systems (log scale)')
            ax.set_ylabel('test MSE (length$^2$)')
            ax.set_title(part['title'], fontsize=9)
            ax.legend(fontsize=7, loc='center right')
        n = len(payload['seeds'])
        fig.suptitle(f'filled markers and error bars: mean and 95% '
                     f't-interval over {n} seed(s); dots: single seeds\n'
                     f'open markers: median where a run diverged (more than '
                     f'3x the median); triangles: off scale', fontsize=8)
        fig.tight_layout()
        return fig
    return draw


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--tasks', nargs='+', choices=sorted(TASKS),
                        default=list(TASKS))
    parser.add_argument('--sizes', type=int, nargs='+', default=list(SIZES))
    parser.add_argument('--large', action='store_true',
                        help=f'also {LARGE:,} training systems')
    parser.add_argument('--seeds', type=int, nargs='+',
                        default=list(DEFAULT_SEEDS))
    parser.add_argument('--epochs', type=int, default=60,
                        help=f'epochs at {REFERENCE_SIZE:,} systems')
    parser.add_argument('--max-epochs', type=int, default=300)
    parser.add_argument('--beta', type=float, default=1.0)
    parser.add_argument('--clip-grad-norm', type=float, default=None,
                        help="clip every run's gradient 2-norm to this "
                        'value (every model of --tasks alike; default: '
                        'each task\'s CLIP_GRAD_NORM, '
                        + ', '.join(f'{t} {CLIP_GRAD_NORM.get(t, "none")}'
                                    for t in TASKS) + ')')
    parser.add_argument('--data-root', default='data')
    parser.add_argument('--work', default='runs',
                        help='where the runs live (default: runs)')
    parser.add_argument('--methods', nargs='+', default=None,
                        choices=[m for m, _ in METHODS],
                        help='train (or report) only these methods')
    parser.add_argument('--update', metavar='JSON', default=None,
                        help='train (or read) only the --methods of --tasks '
                        'and --sizes and put them, with their searches, in '
                        'place of the same rows of a written JSON; the '
                        'other rows are kept as stored and every '
                        'comparison is recomputed')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs trained at once (one per core)')
    parser.add_argument('--report-only', action='store_true',
                        help='train nothing; tabulate the methods whose '
                        'every seed finished')
    add_from_json_argument(parser)
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args(argv)
    if args.update and not args.methods:
        parser.error('--update needs --methods: the rows to train again')
    stored = load_results(args.update) if args.update else None
    if args.from_json:
        print('wrote', ', '.join(rerender(
            'data_efficiency', args.from_json, markdown, plot,
            refresh=refresh_comparisons)))
        return 0
    sizes = sorted(set(args.sizes + ([LARGE] if args.large else [])))
    if any(s < 1 for s in sizes):
        parser.error('--sizes must be positive')
    if args.clip_grad_norm is not None and not args.clip_grad_norm > 0:
        parser.error('--clip-grad-norm must be positive')
    common = dict(beta=args.beta, data_root=args.data_root)
    work, seeds = args.work, list(args.seeds)
    epochs, max_epochs = args.epochs, args.max_epochs
    directory = {}
    if args.quick:
        common.update({k: v for k, v in QUICK.items()
                       if k not in ('num_train', 'epochs')})
        sizes, seeds, epochs, max_epochs = [16, 32], [0, 1], 1, 2
        work = common['data_root'] = tempfile.mkdtemp()
        directory = {'directory': work}
    print(f'machine: {machine_description()}')
    payload = interval_payload(
        seeds, sizes=sizes,
        epoch_rule=f'epochs x {REFERENCE_SIZE} / size (at least epochs, '
                   f'at most max_epochs) below {REFERENCE_SIZE} systems',
        epochs=epochs, max_epochs=max_epochs, selection_rule=SELECTION_NOTE,
        common=common, tasks={})
    for task in args.tasks:
        clip = CLIP_GRAD_NORM.get(task) if args.clip_grad_norm is None \
            else args.clip_grad_norm
        task_common = common if clip is None else \
            dict(common, clip_grad_norm=clip)
        payload['tasks'][task] = run_task(
            task, sizes, seeds, task_common, work, epochs, max_epochs,
            jobs=args.jobs, report_only=args.report_only,
            methods=args.methods)
    if stored is not None:
        payload = updated(stored, payload)
        directory = {'directory': osp.dirname(osp.abspath(args.update))}
    payload['selections_recorded'] = sorted({
        str(rec['selection']) for part in payload['tasks'].values()
        for r in part['rows'] for rec in r['run_records']})
    drawn = any(part['rows'] for part in payload['tasks'].values())
    publish('data_efficiency', payload, markdown, plot, drawn, **directory)
    return 0


if __name__ == '__main__':
    sys.exit(main())
