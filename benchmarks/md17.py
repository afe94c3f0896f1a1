"""MD17 trajectories (EGNO protocol): an unconstrained GNN trained plain,
with data augmentation and with REMUL, against the exactly equivariant EGNN,
on the eight MD17 molecules.

Usage:  python benchmarks/md17.py [--molecules ...]
            [--source auto|md17|rmd17|standin] [--seeds 0 1 2 3 4]
            [--epochs 60] [--jobs 2] [--report-only] [--quick]
            [--data-root data]

Data: the real MD17 or rMD17 files where the user has put them
(<data-root>/md17/<molecule>/raw/, the names MD17Trajectories searches), else
(``--source auto``, the default) the labelled classical stand-in: Langevin
dynamics under the MMFF94 force field of RDKit, generated on first use. The
stand-in is NOT MD17 (not DFT data): every table, row and plot made on it
says "RDKit MMFF94 stand-in, not MD17", and the paper's MD17 numbers are
printed only next to results on real files.

Task (EGNO protocol as `remul train --task md17`): heavy atoms, radius graph
(5 A), predict the positions 5000 frames ahead from positions and velocities;
500 training and 2000 test start frames. Every run is `remul train` with the
options of its row (REMUL: beta = 1, constant weighting, two forward passes
per step; augmentation: one), validated after every epoch; its test
metrics are those of the model at its epoch of lowest validation MSE.
Statistics per molecule: mean over seeds with a 95% Student-t interval;
paired Student-t intervals over seeds (``_stats.PAIRED_METHOD``) of REMUL -
augmentation, REMUL - plain and REMUL - EGNN, "tie" (not shown to differ) when
the interval contains 0. E and E' are measured under SO(3).

Deviations from the protocol, so that the full default run (8 molecules x 4
rows x 5 seeds) stays within about 40 minutes on two CPU cores:

* 60 training epochs instead of the paper's 500 (``--epochs``), so the
  models are not converged and the numbers are not comparable with
  published ones even on real data;
* 200 validation frames instead of 2000 (validated after every epoch), which
  also moves the test frames: they are the next 2000 frames of the same
  seeded permutation;
* E and E' are measured on 100 graphs with 10 group elements each (instead
  of 200 x 20), after every epoch and on the test split.

The stand-in differs from MD17 in its level of theory (a classical force
field at 500 K, Langevin thermostat) and in its dynamics; its generator
removes the centre-of-mass and rigid rotational motion that a per-atom
thermostat would otherwise add (see simulate_md17_standin), so the target
holds internal motion, as in MD17, but its MSEs are still not MD17 MSEs.
Compare its rows with each other only.

Writes benchmarks/results/md17.{json,md,png} (``--quick``: a smoke run on a
short ethanol stand-in, written into a temporary directory). Finished runs
under runs/bench-md17/ are reused when the package code is the same, so an
interrupted benchmark continues where it stopped (``--report-only`` trains
nothing and tabulates the rows whose every seed finished).
"""
import argparse
import inspect
import os
import os.path as osp
import sys
import tempfile
from typing import Dict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stats import (  # noqa: E402
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
    publish,
    rerender,
    run_all,
)
from _timing import machine_description  # noqa: E402
from torch_geometric_remul.datasets import (  # noqa: E402
    MD17_MOLECULES,
    MD17Trajectories,
    canonical_molecule,
    find_md17_file,
    generate_md17_standin,
)

CONFIGS = [
    dict(label='GNN plain', model='gnn', loss='plain'),
    dict(label='GNN + augmentation', model='gnn', loss='augment'),
    dict(label='GNN + REMUL', model='gnn', loss='remul', beta=1.0,
         weighting='constant'),
    dict(label='EGNN', model='egnn', loss='plain'),
]

#: the paired differences reported per molecule (label a - label b)
COMPARISONS = (('GNN + REMUL', 'GNN + augmentation'),
               ('GNN + REMUL', 'GNN plain'), ('GNN + REMUL', 'EGNN'))

#: metrics given a 95% interval per row (key -> description)
INTERVALS = {'mse': 'test MSE (Angstrom^2)',
             'E_prime_paper': "E' as in the paper (Eq. 9, Angstrom)",
             'E_prime': "E' per node (our normalised variant, Angstrom)"}

#: Sizes of the benchmark (see the module docstring for the deviations).
PROTOCOL = dict(num_train=500, num_val=200, num_test=2000, eval_graphs=100,
                eval_samples=10)

STANDIN_LABEL = 'RDKit MMFF94 stand-in, not MD17'

#: Test MSE (x1e-2) reported in the REMUL paper for one MD17 molecule, as
#: transcribed by a third party; which molecule is not confirmed.
PAPER = [('EGNO', 0.37), ('HEGNN', 0.37), ('GMN', 0.40), ('EGNN', 0.47),
         ('GNN', 0.54), ('GNN + REMUL', 0.54), ('GNN + DA', 0.69)]


def paper_reference() -> str:
    lines = ['Reference, real MD17 only: test MSE (x1e-2) of the REMUL paper '
             'for ONE MD17 molecule, taken from a third-party transcription '
             '(which molecule is not confirmed; 500 epochs, not this '
             'protocol):', '',
             '| model | test MSE (x1e-2) |', '|---|---|']
    lines += [f'| {name} | {value:.2f} |' for name, value in PAPER]
    return '\n'.join(lines) + '\n'


def resolve_source(root: str, molecule: str, source: str):
    """``(source for the task, note)``: the kind of the real file found for
    ``molecule`` (``'md17'`` or ``'rmd17'``), or ``'standin'``."""
    if source == 'standin':
        return 'standin', 'stand-in requested'
    try:
        kind, path = find_md17_file(root, molecule, source, standin=False)
    except FileNotFoundError:
        if source != 'auto':
            raise
        return 'standin', (f'no MD17/rMD17 file under '
                           f'{osp.join(root, molecule, "raw")}: falling back '
                           f'to the {STANDIN_LABEL}')
    return kind, f'{kind} file {path}'


def standin_frames(common) -> int:
    """The fewest stand-in frames that hold the task's splits (the task
    uses the dataset's default ``margin`` and ``delta_frame``)."""
    defaults = inspect.signature(MD17Trajectories.__init__).parameters
    margin = defaults['margin'].default
    delta = defaults['delta_frame'].default
    need = common['num_train'] + common['num_val'] + common['num_test']
    return margin + max(margin, delta, 1) + need + 1


def markdown(payload: Dict) -> str:
    """The stand-in table and the real-file table (each: mean [95%
    interval] over seeds per molecule and row), the paired differences and,
    for real files only, the paper's numbers."""
    seeds, epochs = payload['seeds'], payload['common']['epochs']
    head = ['', 'Test MSE x 1e-2 (Angstrom^2) and E\' x 1e-2 (Angstrom): mean '
            '[95% t-interval] over seeds, at each run\'s best-validation '
            'epoch.', '',
            '| molecule: model / loss | test MSE | E\' (paper, Eq. 9) | '
            'E\' (per node) | best epochs |', '|---|---|---|---|---|']

    def line(r):
        return '| ' + ' | '.join([r['label'], *interval_cells(r, 1e2)]) + \
            ' |'
    tables = []
    standin = [r for r in payload['rows'] if r['source'] == 'standin']
    real = [r for r in payload['rows'] if r['source'] != 'standin']
    if standin:
        tables += [f'### MD17 molecules, {STANDIN_LABEL}: {epochs} epochs, '
                   f'{len(seeds)} seeds {seeds}'] + head + \
            [line(r) for r in standin]
    if real:
        kinds = '/'.join(sorted({r['source'] for r in real}))
        tables += ['', f'### MD17 ({kinds} files): {epochs} epochs, '
                   f'{len(seeds)} seeds {seeds}'] + head + \
            [line(r) for r in real]
    tables += far_seed_lines(payload['rows'], 1e2, 'x 1e-2')
    tables += comparison_table(payload['comparisons'],
                               {'mse': ('test MSE x 1e-2', 1e2)},
                               first=('molecule', 'molecule'))
    tables += missing_lines(payload['missing'])
    tables += code_lines(payload['rows'])
    table = '\n'.join(tables) + '\n'
    if real:
        table += '\n' + paper_reference()
    return table


def plot(payload: Dict):
    """``plot(figures) -> figure``: one panel per molecule (the molecules'
    errors differ by orders of magnitude), test MSE per row with its 95%
    interval and single seeds, on linear axes."""
    molecules = [m for m in payload['molecules']
                 if any(r['molecule'] == m for r in payload['rows'])]
    sources = payload['sources']

    def draw(figures):
        cols = min(4, len(molecules))
        nrows = -(-len(molecules) // cols)
        fig, axes = figures.subplots(nrows, cols, squeeze=False,
                                     figsize=(4.2 * cols, 2.6 * nrows))
        for k, ax in enumerate(axes.flat):
            if k >= len(molecules):
                ax.set_visible(False)
                continue
            m = molecules[k]
            rows = [dict(r, label=r['row']) for r in payload['rows']
                    if r['molecule'] == m]
            interval_panel(ax, rows, 'mse', 1e2,
                           'test MSE x 1e-2 ($\\AA^2$)',
                           labels=k % cols == 0)
            ax.set_title(m + (' (stand-in)' if sources[m] == 'standin'
                              else f' ({sources[m]})'), fontsize=9)
        if all(sources[m] == 'standin' for m in molecules):
            title = f'MD17 molecules: {STANDIN_LABEL}'
        elif any(sources[m] == 'standin' for m in molecules):
            title = f'MD17; molecules marked stand-in: {STANDIN_LABEL}'
        else:
            title = 'MD17'
        fig.suptitle(f'{title} ({payload["common"]["epochs"]} epochs): '
                     f'error bars are 95% t-intervals of the mean over '
                     f'{len(payload["seeds"])} seeds; grey dots: single '
                     f'seeds', fontsize=9)
        fig.tight_layout()
        return fig
    return draw


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--molecules', nargs='+', default=None,
                        help='default: all eight')
    parser.add_argument('--source', default='auto',
                        choices=('auto', 'md17', 'rmd17', 'standin'))
    add_protocol_arguments(parser, epochs=60, only=False)
    args = parser.parse_args(argv)
    if args.from_json:
        print('wrote', ', '.join(rerender('md17', args.from_json,
                                          markdown, plot)))
        return 0
    seeds = list(args.seeds)
    molecules = [canonical_molecule(m) for m in
                 (args.molecules or MD17_MOLECULES)]
    common = dict(task='md17', epochs=args.epochs, data_root=args.data_root,
                  **PROTOCOL)
    configs = [dict(c) for c in CONFIGS]
    if args.quick:
        common.update(QUICK)
        molecules = ['ethanol']
        configs = [c for c in configs if c['label'] in ('GNN + REMUL',
                                                        'EGNN')]
        seeds = [0, 1]
        work = tempfile.mkdtemp()
        common['data_root'] = work
        # a short stand-in (the task would simulate 30000 frames)
        generate_md17_standin('ethanol', root=osp.join(work, 'md17'),
                              num_frames=standin_frames(common),
                              equilibration_steps=200)
    else:
        work = 'runs'
    root = osp.join(common['data_root'], 'md17')
    sources = {}
    for molecule in molecules:
        try:
            sources[molecule], note = resolve_source(root, molecule,
                                                     args.source)
        except FileNotFoundError as e:
            print(e, file=sys.stderr)
            return 1
        print(f'{molecule}: {note}')
    print(f'machine: {machine_description()}')

    rows, comparisons, missing = [], [], []
    for molecule in molecules:
        source = sources[molecule]
        standin = source == 'standin'
        print(f'\n{molecule} ({STANDIN_LABEL if standin else source})')
        values = dict(common, molecule=molecule, source=source)
        work_dir = osp.join(work, 'bench-md17', f'{molecule}-{source}')
        done = configs if not args.report_only else \
            finished_configs(configs, seeds, values, work_dir)
        missing += [f'{molecule}: {c["label"]}' for c in configs
                    if c not in done]
        part = run_all(done, seeds, values, work_dir, jobs=args.jobs) \
            if done else []
        add_intervals(part, INTERVALS)
        for c in compare_rows(part, COMPARISONS, ('mse', )):
            comparisons.append(dict(c, molecule=molecule))
        for row in part:
            row.update(molecule=molecule, source=source, row=row['label'])
            row['label'] = f'{molecule}: {row["label"]}' + (
                f' ({STANDIN_LABEL})' if standin else '')
        rows += part

    payload = interval_payload(seeds, common=common, sources=sources,
                               standin_label=STANDIN_LABEL, metrics=INTERVALS,
                               molecules=molecules, rows=rows,
                               comparisons=comparisons, missing=missing)
    if any(r['source'] != 'standin' for r in rows):
        payload['paper_reference_x1e-2'] = dict(PAPER)
    # --quick writes its outputs into its temporary directory
    publish('md17', payload, markdown, plot, bool(rows),
            **({'directory': work} if args.quick else {}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
