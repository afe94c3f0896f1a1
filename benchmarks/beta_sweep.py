"""Accuracy/equivariance trade-off: test MSE and E' against beta, and against
TargetEquivariance targets, for one unconstrained model on charged N-body.

Usage:  python benchmarks/beta_sweep.py [--model gnn] [--epochs 60] [--quick]

Runs `remul train --beta B` for B in {0, 0.01, 0.1, 1, 10, 100} and
`remul train --mode consistency --weighting target --epsilon EPS` for the
given targets; data: our charged N-body simulator (stand-in for the EGNN
files). Writes benchmarks/results/beta_sweep.{json,md,png} and checks whether
E' falls monotonically with beta.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _runs import QUICK, markdown_table, run_all, write_outputs  # noqa
from _timing import machine_description  # noqa: E402

BETAS = (0.0, 0.01, 0.1, 1.0, 10.0, 100.0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='gnn')
    parser.add_argument('--epochs', type=int, default=60)
    parser.add_argument('--betas', type=float, nargs='+', default=BETAS)
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
    configs = [dict(label=f'beta = {b:g}', loss='plain' if b == 0 else
                    'remul', beta=b if b > 0 else 1.0) for b in args.betas]
    configs += [dict(label=f"target E' <= {e:g} (consistency)",
                     loss='remul', mode='consistency', weighting='target',
                     epsilon=e) for e in args.epsilons]
    print(f'machine: {machine_description()}')
    rows = run_all(configs, args.seeds, common, work)
    table = markdown_table(rows, f'{args.model} on charged N-body (simulated '
                           f'stand-in), {common["epochs"]} epochs')
    sweep = rows[:len(args.betas)]
    errors = [r['E_prime'] for r in sweep]
    monotone = all(a >= b for a, b in zip(errors, errors[1:]))
    table += (f"\nE' {'falls' if monotone else 'does NOT fall'} "
              f"monotonically with beta: "
              f"{', '.join(f'{e:.4f}' for e in errors)}\n")
    print('\n' + table)
    if args.quick:
        return 0

    def plot(plt):
        fig, ax = plt.subplots(figsize=(6, 4))
        for r in rows:
            ax.scatter(r['E_prime'], r['mse'])
            ax.annotate(r['label'], (r['E_prime'], r['mse']), fontsize=7)
        ax.set_xscale('log')
        ax.set_xlabel("E' (test)")
        ax.set_ylabel('test MSE')
        ax.set_title('accuracy / equivariance trade-off')
        fig.tight_layout()
        return fig

    paths = write_outputs('beta_sweep', {'machine': machine_description(),
                                         'common': common, 'rows': rows,
                                         'monotone': monotone}, table, plot)
    print('wrote', ', '.join(paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
