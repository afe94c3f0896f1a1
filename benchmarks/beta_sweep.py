"""Accuracy/equivariance trade-off: test MSE and E' against beta, and against
TargetEquivariance targets, for one unconstrained model on charged N-body.

Usage:  python benchmarks/beta_sweep.py [--model gnn] [--epochs 60]
            [--betas 0 0.01 0.1 1 10 100] [--modes target consistency]
            [--epsilons 0.03 0.01] [--seeds 0 1 2 3 4] [--jobs 2]
            [--only LABEL ...] [--report-only] [--quick]
        python benchmarks/beta_sweep.py --replot \\
            benchmarks/results/beta_sweep.json
        python benchmarks/beta_sweep.py --from-json \\
            benchmarks/results/beta_sweep.json

Runs `remul train --beta B` for B in {0, 0.01, 0.1, 1, 10, 100} (beta = 0 is
plain training, one run shared by both modes) in each REMUL mode:
  target       L_equi = l(f(g x), g y), the paper's form;
  consistency  L_equi = l(f(g x), g f(x)), label-free (`--mode consistency`,
               gradient stopped through f(x), the default);
and `remul train --mode consistency --weighting target --epsilon EPS` for the
given targets (EPS is a level of our per-node E'). Data: our charged N-body
simulator (stand-in for the EGNN files), validated after every epoch.

Protocol (as the other accuracy tables): each run's test metrics are those
of the model at its epoch of lowest validation MSE; per row, the mean over
seeds with a 95% Student-t interval; every row against beta = 0 (plain) as
a paired Student-t interval over seeds (t with n - 1 degrees of freedom,
with the exact sign-flip p-value) on test MSE and the paper's E' (Eq. 9),
"tie" (not shown to differ) when it contains 0. Monotonicity, per mode:
whether the mean E' (paper) never rises from one beta to the next, and
whether every rise is a tie (its paired t-interval contains 0). Every row
with beta > 0 runs two forward passes per step, beta = 0 one.

Writes benchmarks/results/beta_sweep.{json,md,png} (``--quick``: a smoke
run into a temporary directory). Finished runs under runs/bench-beta-sweep/
are reused when the package code is the same (``--report-only`` trains
nothing and tabulates the rows whose every seed finished; ``--from-json``
reads no run and recomputes the comparisons, the monotonicity and the
outputs from a written JSON).
"""
import argparse
import os
import sys
import tempfile
from typing import Dict, List, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stats import (  # noqa: E402
    MSE_AND_E_PRIME,
    add_intervals,
    compare,
    comparison_table,
    error_bars,
    far_seed_lines,
    format_interval,
    interval_cells,
    missing_lines,
)

from _runs import (  # noqa: E402
    QUICK,
    add_protocol_arguments,
    code_lines,
    finished_configs,
    interval_payload,
    publish,
    rerender,
    run_all,
    selected_rows,
)
from _timing import machine_description  # noqa: E402

BETAS = (0.0, 0.01, 0.1, 1.0, 10.0, 100.0)
MODES = ('target', 'consistency')
EPSILONS = (0.03, 0.01)
PLAIN = 'beta = 0'

#: metrics given a 95% interval per row (key -> description)
INTERVALS = {'mse': 'test MSE (length^2)',
             'E_prime_paper': "E' as in the paper (Eq. 9, length)",
             'E_prime': "E' per node (our normalised variant, length; the "
                        "unit of the TargetEquivariance targets)"}
#: the error whose monotonicity in beta is reported
MONOTONE_KEY = 'E_prime_paper'


def sweep_configs(betas, modes):
    """``{mode: [config per beta]}``; beta = 0 (plain training) is one run
    shared by every mode."""
    plain = dict(label=PLAIN, loss='plain', beta=1.0)
    out = {}
    for mode in modes:
        suffix = '' if mode == 'target' else f' ({mode})'
        out[mode] = [plain if b == 0 else
                     dict(label=f'beta = {b:g}{suffix}', loss='remul',
                          beta=b, mode=mode) for b in betas]
    return out


def all_configs(betas: Sequence[float], modes: Sequence[str],
                epsilons: Sequence[float]) -> List[Dict]:
    """Every row of the sweep once: the beta curves of ``modes`` (beta = 0
    shared), then one TargetEquivariance row per target in ``epsilons``."""
    configs = []
    for mode_configs in sweep_configs(sorted(set(betas)), modes).values():
        configs += [c for c in mode_configs if c not in configs]
    configs += [dict(label=f"target E' <= {e:g} (consistency)",
                     loss='remul', mode='consistency', weighting='target',
                     epsilon=e) for e in epsilons]
    return configs


def monotone_report(mode: str, rows: List[Dict], key: str = MONOTONE_KEY):
    """``(strictly monotone, monotone within noise, text, rises)`` for one
    mode's rows in increasing beta: whether the mean of ``key`` never rises
    with beta, and whether every rise is a tie (the paired t-interval of
    the later minus the earlier row contains 0, ``_stats.compare``; with
    one seed no rise is a tie). ``rises``: the comparisons of the
    rises."""
    errors = [r[key] for r in rows]
    monotone = all(a >= b for a, b in zip(errors, errors[1:]))
    text = (f"{mode} mode: E' (paper) x 1e-2 "
            f"{'falls' if monotone else 'does NOT fall'} monotonically "
            f"with beta: {', '.join(f'{e * 1e2:.3f}' for e in errors)}\n")
    rises = [compare(b, a, key) for a, b in zip(rows, rows[1:])
             if b[key] > a[key]]
    noise = all(c['verdict'] == 'tie' for c in rises)
    if rises:
        text += "  E' rises at: " + '; '.join(
            f'{c["b"]} -> {c["a"]} '
            f'({format_interval(c["difference"], 3, 1e2)} x 1e-2, '
            f'{c["verdict"]})' for c in rises) + '\n'
        text += (f"  {'every' if noise else 'NOT every'} rise is a tie "
                 f"(paired t-interval over seeds contains 0: not shown to "
                 f"rise)\n")
    return monotone, noise, text, rises


def monotone_fields(rows: List[Dict]) -> Tuple[Dict, Dict, Dict, Dict]:
    """``monotone``, ``monotone_within_noise``, ``monotone_text`` and
    ``monotone_rises`` of the JSON, per mode (:func:`monotone_report`)."""
    monotone, within_noise, texts, steps = {}, {}, {}, {}
    for mode, curve in _curves(rows).items():
        monotone[mode], within_noise[mode], texts[mode], steps[mode] = \
            monotone_report(mode, curve)
    return monotone, within_noise, texts, steps


def refresh_monotone(payload: Dict) -> None:
    """Recomputes the monotonicity fields of a written ``beta_sweep.json``
    from its rows (``--from-json``), with the current paired method."""
    fields = monotone_fields(payload['rows'])
    for key, value in zip(('monotone', 'monotone_within_noise',
                           'monotone_text', 'monotone_rises'), fields):
        payload[key] = value


def _curves(rows: List[Dict]) -> Dict[str, List[Dict]]:
    """``{mode: rows in increasing beta}`` (the plain run, beta = 0, starts
    every mode) from the rows' configurations."""
    plain = [r for r in rows if r['config']['loss'] == 'plain']
    out = {}
    for mode in MODES:
        sweep = sorted((r for r in rows if r['config']['loss'] == 'remul'
                        and r['config'].get('mode', 'target') == mode
                        and r['config'].get('weighting') is None),
                       key=lambda r: r['config']['beta'])
        if sweep:
            out[mode] = plain + sweep
    return out


def _beta(row: Dict) -> float:
    return 0.0 if row['config']['loss'] == 'plain' else row['config']['beta']


def markdown(payload: Dict) -> str:
    """The table (mean [95% interval] per row), the monotonicity verdict per
    mode and the paired differences of every row against beta = 0."""
    common, seeds = payload['common'], payload['seeds']
    lines = [f'### {common.get("model", "gnn")} on charged N-body (simulated '
             f'stand-in), {common["epochs"]} epochs, {len(seeds)} seeds '
             f'{seeds}', '',
             "Test MSE x 1e-3 (length^2), E' x 1e-2 (length): mean [95% "
             "t-interval] over seeds, at each run's best-validation epoch. "
             "Consistency rows stop the gradient through f(x); the "
             "TargetEquivariance targets are levels of the per-node E'.", '',
             "| row | test MSE | E' (paper, Eq. 9) | E' (per node) | "
             "best epochs |", '|---|---|---|---|---|']
    for r in payload['rows']:
        lines.append('| ' + ' | '.join([r['label'],
                                        *interval_cells(r, 1e3)]) + ' |')
    lines += far_seed_lines(payload['rows'], 1e3, 'x 1e-3')
    lines.append('')
    for mode in payload['monotone']:
        lines.append(payload['monotone_text'][mode].rstrip('\n'))
    lines += comparison_table(payload['comparisons'], MSE_AND_E_PRIME)
    lines += missing_lines(payload['missing'])
    lines += code_lines(payload['rows'])
    return '\n'.join(lines) + '\n'


def plot(payload: Dict):
    """``plot(figures) -> figure``: E' (paper) and test MSE against beta
    (error bars: 95% intervals over seeds), and the accuracy/equivariance
    trade-off with beta as colour (no text labels on the points)."""
    rows = payload['rows']
    curves = _curves(rows)
    targets = [r for r in rows if r['config'].get('weighting') == 'target']
    markers = {'target': 'o', 'consistency': 's'}
    shapes = {'o': 'circles', 's': 'squares'}
    scales = {'E_prime_paper': 1e2, 'mse': 1e3}

    def draw(figures):
        from matplotlib import cm, colors
        fig, (e_ax, m_ax, t_ax) = figures.subplots(1, 3, figsize=(16, 4.4))
        betas = sorted({_beta(r) for c in curves.values() for r in c})
        positive = [b for b in betas if b > 0]
        # beta = 0 has no place on a log axis: one decade below the
        # smallest positive beta, marked on the axis
        zero_at = min(positive) / 10 if positive else 1e-3

        def x(row):
            return _beta(row) if _beta(row) > 0 else zero_at
        for k, (mode, curve) in enumerate(curves.items()):
            for ax, key in ((e_ax, 'E_prime_paper'), (m_ax, 'mse')):
                est, err = error_bars([r[key + '_ci'] for r in curve],
                                      scales[key])
                ax.errorbar([x(r) for r in curve], est, yerr=err,
                            marker=markers[mode], c=f'C{k}', capsize=3,
                            label=f'{mode} mode (mean, 95% interval)')
        for ax in (e_ax, m_ax):
            ax.set_xscale('log')
            ax.set_xticks([zero_at] + positive,
                          ['0\n(plain)'] + [f'{b:g}' for b in positive])
            ax.minorticks_off()
            ax.set_xlabel('beta')
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
            ax.set_ylim(bottom=0)
        e_ax.set_ylabel("E' (paper, Eq. 9) x 1e-2 (test, length)")
        e_ax.set_title("E' against beta", fontsize=9)
        m_ax.set_ylabel('test MSE x 1e-3 (length$^2$)')
        m_ax.set_title('test MSE against beta', fontsize=9)
        norm = colors.LogNorm(vmin=zero_at, vmax=max(positive or [1.0]))
        cmap = cm.viridis

        def point(r):
            return (r['E_prime_paper'] * scales['E_prime_paper'],
                    r['mse'] * scales['mse'])
        for k, (mode, curve) in enumerate(curves.items()):
            xs, ys = zip(*map(point, curve))
            t_ax.plot(xs, ys, '-', c=f'C{k}', alpha=0.5,
                      label=f'{mode} mode ({shapes[markers[mode]]}; beta '
                      f'grows along the line)')
            t_ax.scatter(xs, ys, c=[x(r) for r in curve], cmap=cmap,
                         norm=norm, marker=markers[mode], edgecolors='k',
                         zorder=3)
        for k, r in enumerate(targets):
            t_ax.scatter(*point(r), marker='^', s=70, c=f'C{k + 2}',
                         edgecolors='k', zorder=3, label=r['label'])
        t_ax.set_xlabel("E' (paper) x 1e-2 (test, length)")
        t_ax.set_ylabel('test MSE x 1e-3 (length$^2$)')
        t_ax.set_title('accuracy / equivariance trade-off (means)',
                       fontsize=9)
        shown = [point(r) for c in curves.values() for r in c] + [
            point(r) for r in targets]
        t_ax.set_xlim(0, 1.1 * max(p[0] for p in shown))
        t_ax.set_ylim(0, 1.1 * max(p[1] for p in shown))
        t_ax.grid(alpha=0.3)
        t_ax.legend(fontsize=7)
        bar = fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=t_ax)
        bar.set_label('beta (lowest colour: beta = 0, plain)')
        seeds = payload.get('seeds') or rows[0]['seeds']
        fig.suptitle(f'{payload["common"].get("model", "gnn")} on charged '
                     f'N-body (simulated stand-in), '
                     f'{payload["common"]["epochs"]} epochs, '
                     f'{len(seeds)} seeds, best-validation epoch; error '
                     f'bars: 95% t-intervals of the mean', fontsize=9)
        fig.tight_layout()
        return fig
    return draw


def replot(path: str) -> str:
    """Draws the figure of a written ``beta_sweep.json`` again (next to it,
    as ``.png``) without training anything; returns the figure's path."""
    import json

    from matplotlib.figure import Figure

    from _runs import Figures
    with open(path) as f:
        payload = json.load(f)
    out = os.path.splitext(path)[0] + '.png'
    plot(payload)(Figures(Figure)).savefig(out, dpi=100)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='gnn')
    parser.add_argument('--betas', type=float, nargs='+', default=BETAS)
    parser.add_argument('--modes', nargs='+', choices=MODES, default=MODES)
    parser.add_argument('--epsilons', type=float, nargs='*',
                        default=list(EPSILONS))
    add_protocol_arguments(parser, epochs=60)
    parser.add_argument('--replot', metavar='JSON', default=None,
                        help='only draw the figure of a written '
                        'beta_sweep.json again (trains nothing)')
    args = parser.parse_args(argv)
    if args.replot:
        print('wrote', replot(args.replot))
        return 0
    if args.from_json:
        print('wrote', ', '.join(rerender('beta_sweep', args.from_json,
                                          markdown, plot,
                                          refresh=refresh_monotone)))
        return 0
    if any(b < 0 for b in args.betas):
        parser.error('--betas must be >= 0')
    if any(e <= 0 for e in args.epsilons):
        parser.error('--epsilons must be > 0')
    common = dict(task='nbody', model=args.model, epochs=args.epochs,
                  data_root=args.data_root)
    seeds, directory = list(args.seeds), {}
    betas, epsilons = args.betas, args.epsilons
    if args.quick:
        common.update(QUICK)
        betas, epsilons, seeds = (0.0, 10.0), [0.05], [0, 1]
        work = common['data_root'] = tempfile.mkdtemp()
        directory = {'directory': work}
    else:
        work = 'runs'
    work_dir = os.path.join(work, 'bench-beta-sweep')
    configs = selected_rows(parser, all_configs(betas, args.modes, epsilons),
                            args.only)
    print(f'machine: {machine_description()}')
    done = configs if not args.report_only else \
        finished_configs(configs, seeds, common, work_dir)
    rows = run_all(done, seeds, common, work_dir, jobs=args.jobs) \
        if done else []
    add_intervals(rows, INTERVALS)
    by_label = {r['label']: r for r in rows}
    monotone, within_noise, texts, steps = monotone_fields(rows)
    comparisons = [compare(r, by_label[PLAIN], key) for r in rows
                   if PLAIN in by_label and r['label'] != PLAIN
                   for key in MSE_AND_E_PRIME]
    payload = interval_payload(
        seeds, epochs=common['epochs'], common=common, metrics=INTERVALS,
        rows=rows, comparisons=comparisons, monotone=monotone,
        monotone_within_noise=within_noise, monotone_text=texts,
        monotone_rises=steps,
        missing=[c['label'] for c in configs if c not in done])
    publish('beta_sweep', payload, markdown, plot, bool(rows), **directory)
    return 0


if __name__ == '__main__':
    sys.exit(main())
