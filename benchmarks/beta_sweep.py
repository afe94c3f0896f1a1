"""Accuracy/equivariance trade-off: test MSE and E' against beta, and against
TargetEquivariance targets, for one unconstrained model on charged N-body.

Usage:  python benchmarks/beta_sweep.py [--model gnn] [--epochs 60]
                                        [--modes target consistency] [--quick]

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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='gnn')
    parser.add_argument('--epochs', type=int, default=60)
    parser.add_argument('--betas', type=float, nargs='+', default=BETAS)
    parser.add_argument('--modes', nargs='+', choices=MODES, default=MODES)
    parser.add_argument('--epsilons', type=float, nargs='*',
                        default=[0.03, 0.01])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--data-root', default='data')
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args(argv)
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
    rows = run_all(configs, args.seeds, common, work)
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

    def plot(figures):
        fig, (left, right) = figures.subplots(1, 2, figsize=(11, 4.2))
        # beta = 0 has no place on a log axis: draw it one decade below the
        # smallest positive beta
        betas = sorted(set(args.betas))
        positive = [b for b in betas if b > 0]
        zero_at = min(positive) / 10 if positive else 1e-3
        xs = [b if b > 0 else zero_at for b in betas]
        twin = left.twinx()
        for k, (mode, curve) in enumerate(curves.items()):
            left.errorbar(xs, [r['E_prime'] for r in curve],
                          yerr=[r['E_prime_std'] for r in curve],
                          marker='o', c=f'C{k}', label=f"E', {mode}")
            twin.errorbar(xs, [r['mse'] for r in curve],
                          yerr=[r['mse_std'] for r in curve], marker='s',
                          ls='--', c=f'C{k}', alpha=0.6,
                          label=f'test MSE, {mode}')
        left.set_xscale('log')
        left.set_yscale('log')
        left.set_xlabel('beta (leftmost point: beta = 0, plain training)')
        left.set_ylabel("E' (test, solid)")
        twin.set_ylabel('test MSE (dashed)')
        left.legend(fontsize=7, loc='lower left')
        left.set_title('against beta')
        for r in rows:
            right.scatter(r['E_prime'], r['mse'],
                          marker='^' if 'target E' in r['label'] else 'o')
            right.annotate(r['label'], (r['E_prime'], r['mse']), fontsize=6)
        right.set_xscale('log')
        right.set_xlabel("E' (test)")
        right.set_ylabel('test MSE')
        right.set_title('accuracy / equivariance trade-off')
        fig.tight_layout()
        return fig

    paths = write_outputs('beta_sweep', {'machine': machine_description(),
                                         'common': common, 'rows': rows,
                                         'monotone': monotone,
                                         'monotone_within_noise':
                                         within_noise}, table, plot,
                          **({'directory': work} if args.quick else {}))
    print('wrote', ', '.join(paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
