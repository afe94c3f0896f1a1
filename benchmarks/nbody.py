"""N-body systems: unconstrained models trained plain, with data augmentation
and with REMUL, against the exactly equivariant EGNN and SEGNN.

Usage:  python benchmarks/nbody.py [--system charged|gravity|both]
                                   [--gravity-source canonical|gatr]
                                   [--seeds 0 1 2] [--epochs 60] [--quick]

charged: our simulator of the EGNN charged-particle system (a stand-in for
  the EGNN files, 3000/2000/2000 trajectories, frame 30 -> 40). Rows: MLP,
  GNN and Transformer each plain, with augmentation and with REMUL; EGNN;
  SEGNN. Writes benchmarks/results/nbody.{json,md,png}.
gravity: our simulator of the GATr star-and-planets system (1 star, 3
  planets, 100 Euler steps over 0.1; 3000/1000/1000 systems), in one of two
  protocols (`remul train --task gravity --source ...`):
  canonical (default): training data lie in their canonical frame (orbits
    in the x-y plane, the star at node 0); the out-of-distribution split is
    the test split with every system rotated by its own random rotation.
    Runs under runs/bench-gravity/, writes
    benchmarks/results/gravity.{json,md,png}.
  gatr: GATr's protocol: every system randomly rotated, shifted (standard
    deviation 20) and its bodies randomly ordered; the out-of-distribution
    split is the test split shifted by 200 along x (and rotated once more).
    Runs under runs/bench-gravity-gatr/, writes
    benchmarks/results/gravity_gatr.{json,md,png}.
  Both centre every system on its centre of mass, so the shifts change
  nothing for any model here. Rows: Transformer and GNN plain, with
  augmentation and with REMUL; EGNN. Besides the test and
  out-of-distribution MSE each row reports the MSE on test systems with 5
  planets (the 'planets' split; models that accept variable graph sizes).

Every run is `remul train --task T` with the given options (the task's
defaults otherwise); test MSE is averaged over the seeds (mean +- std), E and
E' are measured under SO(3) on 200 test graphs (20 rotations each). Finished
runs under runs/bench-<system>/ are reused, so an interrupted benchmark
continues where it stopped.
"""
import argparse
import os
import statistics
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

GRAVITY_CONFIGS = [
    dict(label='Transformer plain', model='transformer', loss='plain'),
    dict(label='Transformer + augmentation', model='transformer',
         loss='augment'),
    dict(label='Transformer + REMUL', model='transformer', loss='remul'),
    dict(label='GNN plain', model='gnn', loss='plain'),
    dict(label='GNN + augmentation', model='gnn', loss='augment'),
    dict(label='GNN + REMUL', model='gnn', loss='remul'),
    dict(label='EGNN', model='egnn', loss='plain'),
]

#: REMUL paper, gravity (GATr setup), test MSE x 1e-3, in distribution /
#: out of distribution (third-party transcription, see docs/results.md)
GRAVITY_PAPER = {
    'Transformer plain': (8.99, 27.06),
    'Transformer + augmentation': (4.20, 4.21),
    'Transformer + REMUL': (1.94, 1.83),
}


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


#: Models that take graphs of one fixed size only (no 'planets' split).
FIXED_SIZE_MODELS = ('mlp', )

#: Per --gravity-source: where its runs go (under runs/), the name of its
#: outputs, the title of its table and the names of its splits.
GRAVITY_SOURCES = {
    'canonical': dict(
        work='bench-gravity', name='gravity',
        title='Gravity (simulated, GATr setup)',
        test='test (canonical frame)',
        ood='rotated (OOD) MSE', ood_legend='rotated (out of distribution)',
        paper='REMUL paper (GATr data: randomly rotated and shifted in '
        'distribution, shifted out of distribution; 50k steps), MSE x '
        '1e-3:'),
    'gatr': dict(
        work='bench-gravity-gatr', name='gravity_gatr',
        title='Gravity (simulated, GATr protocol: systems rotated, shifted '
        'and permuted)',
        test='test (rotated, shifted, permuted)',
        ood='+200 x shifted (OOD) MSE',
        ood_legend='rotated again, +200 along x (out of distribution)',
        paper='REMUL paper (GATr data and protocol, 100k training systems, '
        '50k steps; ours: 3,000 systems, about 2,800 steps, every system '
        'centred on its centre of mass), MSE x 1e-3:'),
}


def _ood(config, spec, model):
    """MSE on the gravity task's out-of-distribution split ('ood': rotated
    test systems, or with --gravity-source gatr shifted by 200 along x)
    and, for models that accept variable graph sizes, on its test systems
    with more planets ('planets')."""
    from torch_geometric_remul.train import evaluate_split
    out = evaluate_split(model, spec.load('ood'), spec, config,
                         seed=config.seed * 7919 + 2 * 10**6)
    extra = {'ood_mse': out['mse']}
    if config.model not in FIXED_SIZE_MODELS:
        out = evaluate_split(model, spec.load('planets'), spec, config,
                             seed=config.seed * 7919 + 3 * 10**6)
        extra['planets_mse'] = out['mse']
    return extra


def gravity(args, common, work):
    source = GRAVITY_SOURCES[args.gravity_source]
    configs = _select(GRAVITY_CONFIGS, args.only)
    if args.quick:
        configs = [c for c in configs if c['label'] in
                   ('Transformer + REMUL', 'EGNN')]
    common = dict(common, task='gravity', source=args.gravity_source)
    rows = run_all(configs, args.seeds, common,
                   os.path.join(work, source['work']), evaluate=_ood,
                   jobs=args.jobs)
    planets = all('planets_mse' in r for r in rows)
    for r in rows:
        for key in ('mse', 'ood_mse') + (('planets_mse', ) if planets
                                         else ()):
            r[key + '_1e3'] = r[key] * 1e3
            r[key + '_1e3_std'] = r[key + '_std'] * 1e3
        ratios = [run['ood_mse'] / run['mse'] for run in r['runs']]
        r['ood_ratio'] = statistics.fmean(ratios)
        r['ood_ratio_std'] = statistics.stdev(ratios) if len(ratios) > 1 \
            else 0.0
        r['paper_1e3'] = GRAVITY_PAPER.get(r['label'])
    columns = (('test MSE', 'mse_1e3', 3),
               (source['ood'], 'ood_mse_1e3', 3),
               ('OOD / test', 'ood_ratio', 2))
    if planets:
        columns += (('5-planet MSE', 'planets_mse_1e3', 3), )
    table = markdown_table(
        rows, f'{source["title"]}, {common["epochs"]} epochs, '
        f'seeds {args.seeds}; MSE x 1e-3',
        columns=columns + (("E'", 'E_prime', 4), ))
    paper = [f'| {label} | {a:.2f} | {b:.2f} |'
             for label, (a, b) in GRAVITY_PAPER.items()]
    table += (f'\n{source["paper"]}\n\n| model / loss | test | OOD |\n'
              f'|---|---|---|\n' + '\n'.join(paper) + '\n')
    print('\n' + table)

    series = (('mse_1e3', source['test']),
              ('ood_mse_1e3', source['ood_legend']))
    if planets:
        series += (('planets_mse_1e3', 'test, 5 planets'), )
    plot = bar_plot(rows, source['title'], series=series,
                    xlabel='MSE x 1e-3', log=True)
    paths = write_outputs(source['name'],
                          {'machine': machine_description(),
                           'gravity_source': args.gravity_source,
                           'common': common, 'rows': rows},
                          table, plot, **out_dir(args, work))
    print('wrote', ', '.join(paths))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--system', choices=('charged', 'gravity', 'both'),
                        default='both')
    parser.add_argument('--gravity-source', choices=tuple(GRAVITY_SOURCES),
                        default='canonical',
                        help='protocol of the gravity data: canonical '
                        '(canonical frame, OOD rotated) or gatr (rotated, '
                        'shifted, permuted; OOD +200 along x)')
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
    if args.system in ('charged', 'both'):
        charged(args, common, work)
    if args.system in ('gravity', 'both'):
        gravity(args, common, work)
    return 0


if __name__ == '__main__':
    sys.exit(main())
