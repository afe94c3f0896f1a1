"""MD17 trajectories (EGNO protocol): an unconstrained GNN trained plain,
with data augmentation and with REMUL, against the exactly equivariant EGNN,
on the eight MD17 molecules.

Usage:  python benchmarks/md17.py [--molecules ...]
            [--source auto|md17|rmd17|standin] [--seeds 0] [--epochs 60]
            [--quick] [--data-root data]

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
options of its row (REMUL: beta = 1, constant weighting); test MSE is
averaged over the seeds, E and E' are measured under SO(3).

Deviations from the protocol, so that the full default run (8 molecules x 4
rows x 1 seed) stays within about 25 minutes on one CPU core:

* 60 training epochs instead of the paper's 500 (``--epochs``), so the
  models are not converged and the numbers are not comparable with
  published ones even on real data;
* 200 validation frames instead of 2000 (the validation MSE is computed
  after every epoch and only logged; no model selection uses it), which
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
under runs/bench-md17/ are reused, so an interrupted benchmark continues
where it stopped.
"""
import argparse
import inspect
import os
import os.path as osp
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _runs import QUICK, markdown_table, run_all, write_outputs  # noqa
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--molecules', nargs='+', default=None,
                        help='default: all eight')
    parser.add_argument('--source', default='auto',
                        choices=('auto', 'md17', 'rmd17', 'standin'))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--epochs', type=int, default=60)
    parser.add_argument('--data-root', default='data')
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args(argv)
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

    rows = []
    for molecule in molecules:
        source = sources[molecule]
        standin = source == 'standin'
        print(f'\n{molecule} ({STANDIN_LABEL if standin else source})')
        part = run_all(configs, args.seeds,
                       dict(common, molecule=molecule, source=source),
                       osp.join(work, 'bench-md17', f'{molecule}-{source}'))
        for row in part:
            row.update(molecule=molecule, source=source, row=row['label'],
                       mse_e2=100 * row['mse'],
                       mse_e2_std=100 * row['mse_std'])
            row['label'] = f'{molecule}: {row["label"]}' + (
                f' ({STANDIN_LABEL})' if standin else '')
        rows += part

    standin_rows = [r for r in rows if r['source'] == 'standin']
    real_rows = [r for r in rows if r['source'] != 'standin']
    tables = []
    if standin_rows:
        tables.append(markdown_table(
            standin_rows, f'MD17 molecules, {STANDIN_LABEL}: '
            f'{common["epochs"]} epochs, seeds {args.seeds}',
            label='molecule: model / loss'))
    if real_rows:
        kinds = sorted({r['source'] for r in real_rows})
        tables.append(markdown_table(
            real_rows, f'MD17 ({"/".join(kinds)} files): '
            f'{common["epochs"]} epochs, seeds {args.seeds}',
            columns=(('test MSE (x1e-2)', 'mse_e2', 3),
                     ("E'", 'E_prime', 4), ('E', 'E', 4)),
            label='molecule: model / loss'))
        tables.append(paper_reference())
    table = '\n'.join(tables)
    print('\n' + table)

    def plot(figures):
        labels = [c['label'] for c in configs]
        fig, ax = figures.subplots(figsize=(max(6, 1.3 * len(molecules)), 4.5))
        width = 0.8 / len(labels)
        x = np.arange(len(molecules))
        for k, label in enumerate(labels):
            sel = [next(r for r in rows if r['molecule'] == m
                        and r['row'] == label) for m in molecules]
            ax.bar(x + (k - (len(labels) - 1) / 2) * width,
                   [r['mse'] for r in sel], width,
                   yerr=[r['mse_std'] for r in sel], label=label)
        ax.set_xticks(x)
        ax.set_xticklabels([m + ('\n(stand-in)' if sources[m] == 'standin'
                                 else '') for m in molecules], fontsize=8)
        ax.set_yscale('log')
        ax.set_ylabel('test MSE')
        if all(s == 'standin' for s in sources.values()):
            title = f'MD17 molecules: {STANDIN_LABEL}'
        elif standin_rows:
            title = f'MD17; molecules marked stand-in: {STANDIN_LABEL}'
        else:
            title = 'MD17'
        ax.set_title(f'{title} ({common["epochs"]} epochs)', fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        return fig

    payload = {'machine': machine_description(), 'common': common,
               'sources': sources, 'standin_label': STANDIN_LABEL,
               'rows': rows}
    if real_rows:
        payload['paper_reference_x1e-2'] = dict(PAPER)
    # --quick writes its outputs into its temporary directory
    paths = write_outputs('md17', payload, table, plot,
                          **({'directory': work} if args.quick else {}))
    print('wrote', ', '.join(paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
