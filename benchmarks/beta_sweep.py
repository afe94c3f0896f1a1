"""Accuracy/equivariance trade-off: test MSE and E' against beta, and against
TargetEquivariance targets, for one unconstrained model on charged N-body.

Usage:  python benchmarks/beta_sweep.py [--model gnn] [--epochs 60]
                                        [--modes target consistency] [--quick]
        python benchmarks/beta_sweep.py --replot \
            benchmarks/results/beta_sweep.json

Runs `remul train --beta B` for B in {0, 0.01, 0.1, 1, 10, 100} (beta = 0 is
plain training) in each REMUL mode:
  target       L_equi = l(f(g x), g y), the paper's form;
  consistency  L_equi = l(f(g x), g f(x)), label-free (`--mode consistency`);
and `remul train --mode consistency --weighting target --epsilon EPS` for the
given targets. Data: our charged N-body simulator (stand-in for the EGNN
files). Writes benchmarks/results/beta_sweep.{json,md,png} and states, per
mode, whether E' falls monotonically with beta. Finished runs under
runs/bench-beta-sweep/ are reused.
"""
import argparse
import os
import sys
import tempfile
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _runs import QUICK, markdown_table, run_all, write_outputs  # noqa
from _timing import machine_description  # noqa: E402

BETAS = (0.0, 0.01, 0.1, 1.0, 10.0, 100.0)
MODES = ('target', 'consistency')


def sweep_configs(betas, modes):
    """``{mode: [config per beta]}``; beta = 0 (plain training) is one run
    shared by every mode."""
    plain = dict(label='beta = 0', loss='plain', beta=1.0)
    out = {}
    for mode in modes:
        suffix = '' if mode == 'target' else f' ({mode})'
        out[mode] = [plain if b == 0 else
                     dict(label=f'beta = {b:g}{suffix}', loss='remul',
                          beta=b, mode=mode) for b in betas]
    return out


def monotone_report(mode, rows):
    """``(strictly monotone, monotone within noise, text)``: whether E'
    never rises with beta, and whether every rise is smaller than the
    larger seed standard deviation of its two points (with one seed, the
    same as strict)."""
    errors = [r['E_prime'] for r in rows]
    monotone = all(a >= b for a, b in zip(errors, errors[1:]))
    text = (f"{mode} mode: E' {'falls' if monotone else 'does NOT fall'} "
            f"monotonically with beta: "
            f"{', '.join(f'{e:.4f}' for e in errors)}\n")
    pairs = [(a, b) for a, b in zip(rows, rows[1:])
             if b['E_prime'] > a['E_prime']]
    noise = all(b['E_prime'] - a['E_prime'] <= max(a['E_prime_std'],
                                                   b['E_prime_std'])
                for a, b in pairs)
    if pairs:
        rises = [f'{a["label"]} -> {b["label"]} '
                 f'(+{b["E_prime"] - a["E_prime"]:.4f}, seed std '
                 f'{max(a["E_prime_std"], b["E_prime_std"]):.4f})'
                 for a, b in pairs]
        text += f"  E' rises at: {'; '.join(rises)}\n"
        text += (f"  {'every' if noise else 'NOT every'} rise is within one "
                 f"seed standard deviation\n")
    return monotone, noise, text


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


def plot(payload: Dict):
    """``plot(figures) -> figure``: E' and test MSE against beta (error bars:
    standard deviation over seeds), and the accuracy/equivariance trade-off
    with beta as colour (no text labels on the points)."""
    rows = payload['rows']
    curves = _curves(rows)
    targets = [r for r in rows if r['config'].get('weighting') == 'target']
    markers = {'target': 'o', 'consistency': 's'}
    shapes = {'o': 'circles', 's': 'squares'}

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
            for ax, key in ((e_ax, 'E_prime'), (m_ax, 'mse')):
                ax.errorbar([x(r) for r in curve], [r[key] for r in curve],
                            yerr=[r.get(key + '_std', 0.0) for r in curve],
                            marker=markers[mode], c=f'C{k}', capsize=3,
                            label=f'{mode} mode')
        for ax in (e_ax, m_ax):
            ax.set_xscale('log')
            ax.set_xticks([zero_at] + positive,
                          ['0\n(plain)'] + [f'{b:g}' for b in positive])
            ax.minorticks_off()
            ax.set_xlabel('beta')
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        e_ax.set_yscale('log')
        e_ax.set_ylabel("E' per node (test, length)")
        e_ax.set_title("E' against beta", fontsize=9)
        m_ax.set_ylabel('test MSE (length$^2$)')
        m_ax.set_title('test MSE against beta', fontsize=9)
        norm = colors.LogNorm(vmin=zero_at, vmax=max(positive or [1.0]))
        cmap = cm.viridis
        for k, (mode, curve) in enumerate(curves.items()):
            t_ax.plot([r['E_prime'] for r in curve], [r['mse'] for r in curve],
                      '-', c=f'C{k}', alpha=0.5, label=f'{mode} mode '
                      f'({shapes[markers[mode]]}; beta grows along the '
                      f'line)')
            t_ax.scatter([r['E_prime'] for r in curve],
                         [r['mse'] for r in curve], c=[x(r) for r in curve],
                         cmap=cmap, norm=norm, marker=markers[mode],
                         edgecolors='k', zorder=3)
        for k, r in enumerate(targets):
            t_ax.scatter(r['E_prime'], r['mse'], marker='^', s=70,
                         c=f'C{k + 2}', edgecolors='k', zorder=3,
                         label=r['label'])
        t_ax.set_xscale('log')
        t_ax.set_xlabel("E' per node (test, length)")
        t_ax.set_ylabel('test MSE (length$^2$)')
        t_ax.set_title('accuracy / equivariance trade-off', fontsize=9)
        t_ax.grid(alpha=0.3)
        t_ax.legend(fontsize=7)
        bar = fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=t_ax)
        bar.set_label('beta (lowest colour: beta = 0, plain)')
        seeds = payload.get('seeds') or rows[0]['seeds']
        fig.suptitle(f'{payload["common"].get("model", "gnn")} on charged '
                     f'N-body (simulated stand-in), '
                     f'{payload["common"]["epochs"]} epochs; error bars: '
                     f'standard deviation over {len(seeds)} seed(s)',
                     fontsize=9)
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
    parser.add_argument('--epochs', type=int, default=60)
    parser.add_argument('--betas', type=float, nargs='+', default=BETAS)
    parser.add_argument('--modes', nargs='+', choices=MODES, default=MODES)
    parser.add_argument('--epsilons', type=float, nargs='*',
                        default=[0.03, 0.01])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs trained at once (one per core)')
    parser.add_argument('--data-root', default='data')
    parser.add_argument('--replot', metavar='JSON', default=None,
                        help='only draw the figure of a written '
                        'beta_sweep.json again (trains nothing)')
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args(argv)
    if args.replot:
        print('wrote', replot(args.replot))
        return 0
    common = dict(task='nbody', model=args.model, epochs=args.epochs,
                  data_root=args.data_root)
    if args.quick:
        common.update(QUICK)
        args.betas, args.epsilons = (0.0, 10.0), [0.05]
        work = common['data_root'] = tempfile.mkdtemp()
    else:
        work = os.path.join('runs', 'bench-beta-sweep')
    sweeps = sweep_configs(sorted(set(args.betas)), args.modes)
    configs = []
    for mode_configs in sweeps.values():
        configs += [c for c in mode_configs if c not in configs]
    configs += [dict(label=f"target E' <= {e:g} (consistency)",
                     loss='remul', mode='consistency', weighting='target',
                     epsilon=e) for e in args.epsilons]
    print(f'machine: {machine_description()}')
    rows = run_all(configs, args.seeds, common, work, jobs=args.jobs)
    by_label = {r['label']: r for r in rows}
    table = markdown_table(rows, f'{args.model} on charged N-body (simulated '
                           f'stand-in), {common["epochs"]} epochs, seeds '
                           f'{args.seeds}')
    table += '\n'
    curves, monotone, within_noise = {}, {}, {}
    for mode, mode_configs in sweeps.items():
        curves[mode] = [by_label[c['label']] for c in mode_configs]
        monotone[mode], within_noise[mode], text = monotone_report(
            mode, curves[mode])
        table += text
    print('\n' + table)

    payload = {'machine': machine_description(), 'common': common,
               'seeds': args.seeds, 'rows': rows, 'monotone': monotone,
               'monotone_within_noise': within_noise}
    paths = write_outputs('beta_sweep', payload, table, plot(payload),
                          **({'directory': work} if args.quick else {}))
    print('wrote', ', '.join(paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
