"""rMD17 energies and forces: an unconstrained backbone (GNN or Transformer)
trained plain, with data augmentation and with REMUL, against EGNN, an
exactly invariant potential, with the 5 folds of the release as 5 seeds.

Usage:  python benchmarks/rmd17.py --data-root ../shared/data/rmd17
            [--molecules aspirin ethanol ...] [--folds 1 2 3 4 5]
            [--epochs 100] [--backbone auto|gnn|transformer] [--jobs 2]
            [--work runs] [--out-dir benchmarks/results] [--report-only]
            [--quick]

Data: the rMD17 files under --data-root, either layout that
torch_geometric_remul.datasets.RMD17 reads (pre-split
rmd17_<molecule>_{train,test}_0<k>.npz, or npz_data/ + splits/). Nothing is
simulated: a missing file stops the script with the message saying where
to put it. The JSON records the SHA-256 of every file read
("data": {"files": {name: sha256}}).

Task (``remul train --task rmd17``, see docs/training.md): per fold k, the
split's 1000 training frames are 950 for training and the last 50 (in file
order) for validation; the test set is the split's 1000 test frames. The
model predicts one energy per molecule, a sum of atomic energies (its head
on every atom: ``readout='node'``); the forces are -dE/dpos by autograd.
Loss: MSE of the standardised energy + 100 x MSE of the standardised force
components (standardisation: energy minus the training
mean, both divided by the RMS training force component); every run keeps
its epoch of lowest validation loss. Seeds: fold k is trained with seed k
(initialisation and batch order), so a row's 5 runs differ in their data
split AND their seed, and the paired differences pair runs of the same
fold.

Rows: <backbone> plain, <backbone> + augmentation (one rotated copy per
step), <backbone> + augmentation x2 (two rotated copies of every molecule
per step, in one forward pass: as many molecules through the model as
REMUL's, the compute-matched baseline), <backbone> + REMUL (beta = 1,
constant weighting, target mode: clean and rotated copies), EGNN (plain;
its energy is exactly invariant, so its forces are exactly
equivariant). The unconstrained backbones read
each atom's Cartesian coordinates relative to the molecule's centroid and
its element (one-hot H, C, N, O).

Selection, on fold 1's validation set (seed 1; the test split is never
read), every model alike: each candidate backbone (a plain GNN and a plain
Transformer with ``--backbone auto``, the default) and EGNN are trained at
the learning rates of ``LR_GRID`` (5.6e-5, 1.7e-4, 5e-4; the grid grows 3x
past a winning edge, at most twice: ``_runs.tune_lr``); the backbone whose
best rate reaches the lower best validation loss is used for the three
unconstrained rows at that rate, EGNN at its own (every search run is in
the JSON under "selection_search" and tabulated).

Columns (test split, best-validation epoch): energy MAE (kcal/mol), force
MAE (kcal/mol/A, per component), force MAE on a randomly rotated copy of
the test split (every molecule rotated by its own Haar-random rotation,
forces rotated with it), force E' (kcal/mol/A: the mean norm of
F(Rx) - R F(x) per atom over 20 rotations of 200 test molecules). Mean over
the folds with a 95% Student-t interval; paired differences over folds
(REMUL - augmentation, REMUL - augmentation x2, REMUL - plain, REMUL -
EGNN) from benchmarks/_stats.

Published rMD17 results: printed after our rows, apart from them, MACE's
errors at 1000 training frames for the molecules of ``PUBLISHED`` (Batatia
et al., NeurIPS 2022, arXiv 2206.07697, its rMD17 table), as transcribed by
a third party and not confirmed against the paper here. MACE is a
different model (a higher-order equivariant potential) trained far longer
on 950 frames with its own validation split: the numbers say how far this
budget is from the state of the art, not that any row here competes.

--quick: a smoke run of the whole pipeline on small SYNTHETIC files in the
rMD17 layout (a spring potential on a 5-atom molecule, not rMD17), two
rows, two folds, two epochs, written into a temporary directory.
"""
import argparse
import math
import os
import os.path as osp
import sys
import tempfile
from typing import Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stats import (  # noqa: E402
    add_intervals,
    compare_rows,
    comparison_table,
    format_interval,
    missing_lines,
)

from _runs import (  # noqa: E402
    RESULTS,
    code_lines,
    finished_configs,
    interval_panel,
    interval_payload,
    run_all,
    search_lines,
    search_record,
    train_missing,
    tune_lrs,
    write_outputs,
)
from _timing import machine_description  # noqa: E402
from torch_geometric_remul.datasets import (  # noqa: E402
    find_rmd17_files,
    rmd17_molecule,
)
from torch_geometric_remul.datasets.rmd17 import sha256_file  # noqa: E402
from torch_geometric_remul.train.mlip import MEV_PER_KCAL_MOL  # noqa: E402

#: The eight molecules of the shared data (the release also has
#: azobenzene and paracetamol; any molecule with files can be named).
MOLECULES = ('aspirin', 'ethanol', 'benzene', 'malonaldehyde',
             'naphthalene', 'salicylic', 'toluene', 'uracil')

#: The headline molecules (the others if the budget allows).
HEADLINE = ('aspirin', 'ethanol')

NAMES = {'gnn': 'GNN', 'transformer': 'Transformer', 'egnn': 'EGNN'}

#: learning rates searched on fold 1's validation set (seed 1) for every
#: model alike (``_runs.tune_lr``: the grid grows 3x past a winning edge,
#: at most twice, so up to 4.5e-3): 5e-4 and two steps of 3x below it. The
#: grid was set after a first search around the task default (1.5e-3, 5e-3,
#: 1.5e-2), made while the potentials put their head on the pooled atom
#: features: every model then ended at zero forces within a few epochs at
#: 1.5e-3 and above, and the lowest rate reached was the best. With atomic
#: energies (``readout='node'``) the searches move up again through the
#: grid's growth (docs/results.md, rMD17).
LR_GRID = tuple(round(5e-4 / 3 ** k, 12) for k in (2, 1, 0))
#: Published rMD17 errors at 1000 training frames: energy MAE (meV) and
#: force MAE (meV/A, per component) of MACE (Batatia et al., "MACE: Higher
#: Order Equivariant Message Passing Neural Networks for Fast and Accurate
#: Force Fields", NeurIPS 2022, arXiv 2206.07697, rMD17 table), as
#: transcribed by a third party (a MACE rMD17 reproduction README); not
#: confirmed against the paper here. Only the molecules that transcription
#: lists.
PUBLISHED = {
    'model': 'MACE', 'train_frames': 1000,
    'source': 'Batatia et al., NeurIPS 2022 (arXiv 2206.07697), rMD17 '
              'table; third-party transcription, not confirmed against '
              'the paper',
    'energy_mae_meV': {'aspirin': 2.2, 'ethanol': 0.4, 'benzene': 0.4,
                       'toluene': 0.5},
    'force_mae_meV': {'aspirin': 6.6, 'ethanol': 2.1, 'benzene': 0.3,
                      'toluene': 1.5},
}

#: the fold (trained with the seed of its number) of the search
SELECT_FOLD = 1


def configs_for(backbone: str, lrs: Optional[Dict[str, float]] = None
                ) -> List[Dict]:
    """The rows of a molecule; ``lrs`` (model -> learning rate, from
    :func:`select_models`) sets each model's rate (default: the task's)."""
    name = NAMES[backbone]
    rows = [
        dict(label=f'{name} plain', model=backbone, loss='plain'),
        dict(label=f'{name} + augmentation', model=backbone,
             loss='augment'),
        dict(label=f'{name} + augmentation x2', model=backbone,
             loss='augment', num_samples=2, fused=True),
        dict(label=f'{name} + REMUL', model=backbone, loss='remul',
             beta=1.0, weighting='constant'),
        dict(label='EGNN', model='egnn', loss='plain'),
    ]
    for row in rows:
        if lrs and row['model'] in lrs:
            row['lr'] = lrs[row['model']]
    return rows


def comparisons_for(backbone: str):
    name = NAMES[backbone]
    remul = f'{name} + REMUL'
    return ((remul, f'{name} + augmentation'),
            (remul, f'{name} + augmentation x2'), (remul, f'{name} plain'),
            (remul, 'EGNN'))


#: metrics given a 95% interval per row (key -> column text, scale)
COLUMNS = {
    'energy_mae': ('energy MAE (kcal/mol)', 1.0),
    'force_mae': ('force MAE (kcal/mol/A)', 1.0),
    'rot_force_mae': ('force MAE, rotated test (kcal/mol/A)', 1.0),
    'E_prime': ("force E' (kcal/mol/A)", 1.0),
}

#: Sizes of the benchmark: all 950 + 50 training frames, all 1000 test
#: frames; E' on 200 test molecules x 20 rotations.
#: (validation measures the loss and plain errors only: the rotated copy
#: and E' are the test split's, ``val_equivariance=False``, which changes
#: no training step, selection or test figure)
PROTOCOL = dict(num_train=950, num_val=50, num_test=1000, eval_graphs=200,
                eval_samples=20, val_equivariance=False)

#: --quick: tiny sizes (a smoke run, not a result)
QUICK = dict(num_train=12, num_val=6, num_test=8, epochs=2,
             hidden_channels=8, num_layers=1, batch_size=6, eval_graphs=4,
             eval_samples=2)

QUICK_LABEL = ('SYNTHETIC spring-potential frames in the rMD17 layout '
               '(smoke test), not rMD17')


def spring_energy_forces(pos: np.ndarray, d0: np.ndarray):
    """``(E [T], F [T, n, 3])`` of the ``--quick`` files' spring potential
    E = sum_(i<j) (|x_i - x_j| - d0_ij)^2 (kcal/mol), F = -dE/dx, for
    positions ``pos [T, n, 3]`` (A)."""
    n = pos.shape[1]
    off = 1 - np.eye(n)
    diff = pos[:, :, None] - pos[:, None]
    dist = np.linalg.norm(diff, axis=-1) + np.eye(n)  # no 0/0 on the diagonal
    stretch = (dist - d0 - np.eye(n)) * off
    energy = 0.5 * (stretch ** 2).sum((1, 2))
    force = -2 * (stretch[..., None] * diff / dist[..., None]).sum(2)
    return energy, force


def quick_molecule():
    """``(z, reference positions, reference distances)`` of the 5-atom
    'molecule' (C, H, H, O, N) of the ``--quick`` files."""
    base = np.random.default_rng(0).normal(0.0, 1.0, (5, 3))
    d0 = np.linalg.norm(base[:, None] - base[None], axis=-1)
    return np.array([6, 1, 1, 8, 7], dtype=np.uint8), base, d0


def write_quick_files(root: str, folds=(1, 2), frames: int = 20) -> None:
    """Small files in the pre-split rMD17 layout for the ``--quick`` smoke
    run: frames of :func:`quick_molecule` displaced at random, labelled by
    :func:`spring_energy_forces`."""
    z, base, d0 = quick_molecule()
    rng = np.random.default_rng(1)
    for fold in folds:
        for part in ('train', 'test'):
            pos = base + rng.normal(0.0, 0.1, (frames, 5, 3))
            energy, force = spring_energy_forces(pos, d0)
            np.savez(osp.join(root, f'rmd17_quick_{part}_{fold:02d}.npz'),
                     nuclear_charges=z, coords=pos, energies=energy,
                     forces=force)


def select_models(common: Dict, work: str, backbones: Sequence[str],
                  jobs: int = 1, report_only: bool = False,
                  log=print) -> Optional[Dict]:
    """The validation search of a molecule, on fold :data:`SELECT_FOLD`
    (seed 1; the test split is never read): every candidate backbone
    (``backbones``: both for ``--backbone auto``), trained plain, and EGNN
    at every rate of :data:`LR_GRID` (``_runs.tune_lrs``: the searches in
    the same rounds). The backbone
    whose best rate reaches the lower best validation loss is used for the
    three unconstrained rows, at that rate; EGNN trains at its own. Returns
    ``{'backbone', 'lr': {model: rate}, 'searches': {name: record},
    'fold', 'seed', 'train_seconds'}``, or ``None`` when ``report_only``
    finds a run of the search unfinished."""
    values = dict(common, fold=SELECT_FOLD)
    where = osp.join(work, 'select')
    searches, best = {}, {}
    models = list(backbones) + ['egnn']
    names = {model: NAMES[model] + ('' if model == 'egnn' else ' plain')
             for model in models}
    # every model's search in the same rounds (one pool of ``jobs``)
    results = tune_lrs([(names[model], dict(model=model, loss='plain'),
                         LR_GRID) for model in models], values, where,
                       jobs=jobs, report_only=report_only, seed=SELECT_FOLD)
    for model, (chosen, runs) in zip(models, results):
        name = names[model]
        if chosen is None:
            return None
        searches[name] = search_record(chosen, runs, common['epochs'],
                                       LR_GRID, seed=SELECT_FOLD)
        value = next(r['best_val_mse'] for r in runs
                     if r['lr'] == chosen['lr'])
        best[model] = (math.inf if value is None or value != value
                       else value, chosen['lr'])
    backbone = min(backbones, key=lambda m: best[m][0])
    log(f'fold {SELECT_FOLD} validation: ' + ', '.join(
        f'{NAMES[m]} {v:.4g} at lr {lr:g}' for m, (v, lr) in best.items())
        + f' -> {NAMES[backbone]}')
    seconds = sum((r['seconds_per_epoch'] or 0.0) * common['epochs']
                  for s in searches.values() for r in s['runs'])
    return {'backbone': backbone,
            'lr': {backbone: best[backbone][1], 'egnn': best['egnn'][1]},
            'searches': searches, 'fold': SELECT_FOLD, 'seed': SELECT_FOLD,
            'train_seconds': seconds}


def run_folds(configs: List[Dict], folds: List[int], common: Dict,
              work_dir: str, jobs: int, report_only: bool, log=print):
    """``(rows, missing)``: one row per configuration over the folds (fold
    k trained with seed k), in the layout of ``_runs.run_all`` (``seeds``
    are the folds)."""
    per_fold = {}
    complete = []
    for cfg in configs:
        ok = True
        for fold in folds:
            values = dict(common, fold=fold)
            if report_only and not finished_configs(
                    [cfg], [fold], values, osp.join(work_dir,
                                                    f'fold{fold}')):
                ok = False
        if ok:
            complete.append(cfg)
    missing = [c['label'] for c in configs if c not in complete]
    if complete and not report_only:
        # every fold's runs in one pool, fold after fold
        train_missing([(complete, [fold], dict(common, fold=fold),
                        osp.join(work_dir, f'fold{fold}'))
                       for fold in folds], jobs, log=log)
    for fold in folds:
        values = dict(common, fold=fold)
        per_fold[fold] = run_all(complete, [fold], values,
                                 osp.join(work_dir, f'fold{fold}'),
                                 log=log, jobs=jobs) if complete else []
    rows = []
    for k, cfg in enumerate(complete):
        parts = [per_fold[f][k] for f in folds]
        runs = [p['runs'][0] for p in parts]
        row = dict(parts[0], seeds=list(folds), runs=runs,
                   best_epochs=[p['best_epochs'][0] for p in parts],
                   code_versions=[v for p in parts
                                  for v in p['code_versions']])
        for key in runs[0]:
            vals = [r[key] for r in runs if key in r]
            if vals and all(isinstance(v, (int, float)) for v in vals):
                row[key] = float(np.mean(vals))
                row[key + '_std'] = float(np.std(vals, ddof=1)) \
                    if len(vals) > 1 else 0.0
        rows.append(row)
    return rows, missing


def data_files(root: str, molecule: str, folds: List[int]) -> Dict:
    """``{file name: sha256}`` of every file the runs of ``molecule``
    read (names relative to ``root``, as ``RMD17.data_files``)."""
    out = {}
    for fold in folds:
        for path in find_rmd17_files(root, molecule, fold)[1].values():
            out[osp.relpath(path, root)] = sha256_file(path)
    return out


def train_seconds(row: Dict, epochs: int) -> float:
    """Training time of a row's runs: seconds per epoch (validation
    included) x epochs, summed over runs (also for reused runs)."""
    return sum(r['seconds_per_epoch'] * epochs for r in row['runs'])


def markdown(payload: Dict) -> str:
    """Per molecule: mean [95% interval] over the folds of every column,
    then the paired differences, compute and code notes."""
    folds, epochs = payload['seeds'], payload['common']['epochs']
    lines = []
    if payload.get('quick'):
        lines += [f'**{QUICK_LABEL}**', '']
    data = 'synthetic smoke-test files' if payload.get('quick') else 'rMD17'
    lines += [f'### {data}, {epochs} epochs, folds {folds} (fold k trained '
              f'with seed k)', '',
              'Test split at each run\'s best-validation epoch: mean [95% '
              't-interval] over folds. Force errors per component.', '',
              '| molecule: model / loss | ' + ' | '.join(
                  text for text, _ in COLUMNS.values()) +
              ' | best epochs | s/epoch |',
              '|---|' + '---|' * (len(COLUMNS) + 2)]
    for r in payload['rows']:
        cells = [format_interval(r[f'{k}_ci'], 3, scale)
                 if f'{k}_ci' in r else '-'
                 for k, (_, scale) in COLUMNS.items()]
        lines.append('| ' + ' | '.join(
            [r['label'], *cells, ', '.join(str(e) for e in r['best_epochs']),
             f'{r["seconds_per_epoch"]:.1f}']) + ' |')
    lines += comparison_table(payload['comparisons'],
                              {k: v for k, v in COLUMNS.items()},
                              first=('molecule', 'molecule'))
    for m, choice in payload.get('selection_search', {}).items():
        lines += ['', f'{m}: backbone {NAMES[choice["backbone"]]} and the '
                  f'learning rates (' + ', '.join(
                      f'{NAMES[k]} {v:g}' for k, v in choice['lr'].items())
                  + f') chosen on fold {choice["fold"]}\'s validation set '
                  f'(seed {choice["seed"]}), every model searched alike:']
        for name, record in choice['searches'].items():
            lines += search_lines(name, record, scale=1.0, unit=
                                  '(standardised loss)')
    lines += missing_lines(payload['missing'])
    lines += ['', 'Compute: ' + '; '.join(
        f'{m}: {h:.2f} core-hours' for m, h in
        payload['core_hours'].items()) + f' ({payload["machine"]}).']
    lines += code_lines(payload['rows'])
    lines += published_lines(payload)
    return '\n'.join(lines) + '\n'


def published_lines(payload: Dict) -> List[str]:
    """The published errors of ``payload['published_reference']`` for the
    molecules of the table, apart from its rows (none for the smoke run)."""
    ref = payload.get('published_reference')
    molecules = [m for m in payload['molecules']
                 if ref and m in ref['force_mae_meV']]
    if not molecules:
        return []
    lines = ['', f'#### Published (not run here): {ref["model"]}, '
             f'{ref["train_frames"]} training frames', '',
             f'Source: {ref["source"]}. A different model, trained far '
             'longer: how far this budget is from the state of the art, not '
             'a comparison with the rows above.', '',
             '| molecule | energy MAE, meV (kcal/mol) | force MAE, meV/A '
             '(kcal/mol/A) |', '|---|---|---|']
    for m in molecules:
        e, f = ref['energy_mae_meV'][m], ref['force_mae_meV'][m]
        lines.append(f'| {m} | {e:g} ({e / MEV_PER_KCAL_MOL:.3f}) | {f:g} '
                     f'({f / MEV_PER_KCAL_MOL:.3f}) |')
    return lines


def plot(payload: Dict):
    """One row of panels per molecule: force MAE, rotated force MAE and
    force E' per row with 95% intervals and single folds."""
    molecules = [m for m in payload['molecules']
                 if any(r['molecule'] == m for r in payload['rows'])]
    keys = ('force_mae', 'rot_force_mae', 'E_prime')

    def draw(figures):
        fig, axes = figures.subplots(len(molecules), len(keys),
                                     squeeze=False,
                                     figsize=(4.2 * len(keys),
                                              2.4 * len(molecules)))
        for i, m in enumerate(molecules):
            rows = [dict(r, label=r['row']) for r in payload['rows']
                    if r['molecule'] == m]
            for j, key in enumerate(keys):
                interval_panel(axes[i][j], rows, key, 1.0,
                               COLUMNS[key][0], labels=j == 0)
                axes[i][j].set_title(m, fontsize=9)
        title = QUICK_LABEL if payload.get('quick') else 'rMD17'
        fig.suptitle(f'{title}: 95% t-intervals over folds '
                     f'{payload["seeds"]}; grey dots: single folds',
                     fontsize=9)
        fig.tight_layout()
        return fig
    return draw


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-root', default=None,
                        help='the folder of the rMD17 files (required '
                        'without --quick)')
    parser.add_argument('--molecules', nargs='+', default=None,
                        help=f'default: {" ".join(HEADLINE)}')
    parser.add_argument('--folds', type=int, nargs='+',
                        default=[1, 2, 3, 4, 5])
    parser.add_argument('--epochs', type=int, default=100)
    parser.add_argument('--backbone', default='auto',
                        choices=('auto', 'gnn', 'transformer'))
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs trained at once (one per core)')
    parser.add_argument('--work', default='runs',
                        help='where the runs live (default: runs)')
    parser.add_argument('--out-dir', default=RESULTS,
                        help='where rmd17.{json,md,png} go')
    parser.add_argument('--report-only', action='store_true',
                        help='train nothing; tabulate the rows whose every '
                        'fold finished')
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args(argv)
    folds = list(args.folds)
    common = dict(task='rmd17', epochs=args.epochs, **PROTOCOL)
    out_dir, work, backbone = args.out_dir, args.work, args.backbone
    if args.quick:
        work = tempfile.mkdtemp()
        out_dir = work
        root = osp.join(work, 'data')
        os.makedirs(root)
        folds = [1, 2]
        write_quick_files(root, folds)
        molecules = ['quick']
        common.update(QUICK)
        backbone = 'gnn' if backbone == 'auto' else backbone
        os.environ['XDG_CACHE_HOME'] = osp.join(work, 'cache')
    else:
        if args.data_root is None:
            parser.error('--data-root is required (the folder of the rMD17 '
                         'files), except with --quick')
        root = args.data_root
        molecules = [rmd17_molecule(m) for m in
                     (args.molecules or HEADLINE)]
    common['data_root'] = root
    try:
        files = {m: data_files(root, m, folds) for m in molecules}
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 1
    machine = machine_description()
    print(f'machine: {machine}')

    rows, comparisons, missing, choices, core_hours = [], [], [], {}, {}
    for molecule in molecules:
        values = dict(common, molecule=molecule)
        work_dir = osp.join(work, 'bench-rmd17', molecule)
        candidates = ('gnn', 'transformer') if backbone == 'auto' \
            else (backbone, )
        choice = select_models(values, work_dir, candidates, args.jobs,
                               args.report_only)
        if choice is None:
            missing.append(f'{molecule}: the validation search')
            continue
        choices[molecule] = choice
        chosen = choice['backbone']
        configs = configs_for(chosen, choice['lr'])
        if args.quick:
            configs = [c for c in configs if c['loss'] == 'remul' or
                       c['model'] == 'egnn']
        print(f'\n{molecule} ({QUICK_LABEL if args.quick else "rMD17"})')
        part, absent = run_folds(configs, folds, values, work_dir,
                                 args.jobs, args.report_only)
        missing += [f'{molecule}: {label}' for label in absent]
        add_intervals(part, list(COLUMNS))
        for c in compare_rows(part, comparisons_for(chosen), list(COLUMNS)):
            comparisons.append(dict(c, molecule=molecule))
        for row in part:
            row.update(molecule=molecule, row=row['label'])
            row['label'] = f'{molecule}: {row["label"]}'
        rows += part
        # training time of every run (one thread each), selection included
        seconds = sum(train_seconds(r, common['epochs']) for r in part)
        if molecule in choices:
            seconds += choices[molecule]['train_seconds']
        core_hours[molecule] = seconds / 3600

    payload = interval_payload(
        # the data are identified by their files' SHA-256 (``data``), not by
        # where this machine keeps them
        folds, common={k: v for k, v in common.items() if k != 'data_root'},
        molecules=molecules, rows=rows,
        comparisons=comparisons, missing=missing, machine=machine,
        core_hours=core_hours, selection_search=choices,
        metrics={k: text for k, (text, _) in COLUMNS.items()},
        data={'files': {name: digest for m in molecules
                        for name, digest in files[m].items()}},
        folds_as_seeds='fold k is trained with seed k',
        published_reference=None if args.quick else PUBLISHED,
        quick=bool(args.quick))
    table = markdown(payload)
    print('\n' + table)
    paths = write_outputs('rmd17', payload, table,
                          plot(payload) if rows else None,
                          directory=out_dir)
    print('wrote', ', '.join(paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
