"""Motion capture on the real CMU files, GMN protocol: subject 35 walking,
an unconstrained Transformer and GNN trained plain, with data augmentation
and with REMUL (beta chosen on validation), against the exactly
equivariant EGNN; beside them, clearly separated, the REMUL paper's
published numbers.

Usage:  python benchmarks/mocap_cmu.py [--cmu-dir ../shared/data/cmu_mocap]
            [--seeds 0 1 2 3 4] [--epochs 200] [--jobs 2] [--only LABEL ...]
            [--report-only] [--quick] [--work runs]

Data (read-only, referenced by path, never copied): ``<cmu-dir>/subject35``
holds the skeleton ``35.asf`` and the 23 walking trials ``35_01.amc`` ...
``35_34.amc`` of the CMU Graphics Lab Motion Capture Database
(mocap.cs.cmu.edu), ``<cmu-dir>/gmn_motion_split.json`` the split of the
GMN/EGNO benchmark. The benchmark links them (symbolic links) into
``<work>/bench-mocap-cmu/data/mocap/raw`` and trains
``remul train --task mocap --source gmn`` on them:
``MotionCapture(..., gmn_split=...)`` takes the first 18 start frames of
each of the 11 training cases (198 samples), the first 100 of each of the 6
validation and 6 test cases (600 each); input positions and velocities
``x[t+1] - x[t]`` at frame t, target the positions at t + 30; ASF units
(1 unit = 0.056444 m), centred per graph. Case id k is ASSUMED to be the
k-th trial in sorted order (35_01 ... 35_16, 35_28 ... 35_34): the split
file cannot confirm it. The JSON records the SHA-256 of every file and
every sample as ``[trial, start frame]``.

Rows: Transformer and GNN plain / + augmentation / + REMUL, and EGNN; the
group is SO(2) about the vertical axis (gravity breaks the rest of SO(3)),
for the augmentation, the REMUL loss (target mode, constant weights) and
the measured E and E'. beta of each REMUL row is chosen from BETA_GRID on
the validation split: every beta of the grid is trained with seed
SELECTION_SEED, the beta of the lowest best-validation MSE is kept and its
row trained with every seed (the selection run is that row's seed-0 run).

Protocol: every run is validated after every epoch on the 600 validation
samples (their MSE only, ``val_equivariance=False``) and its test metrics
are those of the model at its epoch of lowest validation MSE. E and E' are
measured on 100 test graphs with 10 group elements each. Statistics: mean
over seeds with a 95% Student-t interval; paired differences of the rows in
``comparisons()`` with the intervals of ``benchmarks/_stats.py`` ("tie" when
the interval contains 0).

Writes benchmarks/results/mocap_cmu.{json,md,png} (``--quick``: a smoke run
on 2 seeds and tiny models, written into a temporary directory; when the
files of ``--cmu-dir`` are absent it writes and uses a small labelled
synthetic proxy with a GMN-style split instead). Finished runs under
``<work>/bench-mocap-cmu/`` are reused when the package code is the same;
``--report-only`` trains nothing.
"""
import argparse
import glob
import hashlib
import json
import os
import os.path as osp
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stats import add_intervals, compare_rows  # noqa: E402
from mocap import (  # noqa: E402
    PROXY_LABEL,
    finish_table,
    interval_figure,
    label_rows,
    row_table,
)

from _runs import (  # noqa: E402
    QUICK,
    add_protocol_arguments,
    finished_configs,
    interval_payload,
    publish,
    run_all,
    saved_results,
    selected_rows,
)
from _timing import machine_description  # noqa: E402
from torch_geometric_remul.datasets import (  # noqa: E402
    MotionCapture,
    generate_mocap_proxy,
    read_asf,
)
from torch_geometric_remul.train.tasks import GMN_SPLIT_FILE  # noqa: E402

#: Where the real files are, relative to the project root (``--cmu-dir``).
DEFAULT_CMU_DIR = osp.join('..', 'shared', 'data', 'cmu_mocap')
SUBJECT_DIR = 'subject35'

#: The backbones; each gets plain, + augmentation and + REMUL rows.
BACKBONES = (('Transformer', 'transformer'), ('GNN', 'gnn'))
#: The REMUL weights beta searched on the validation split, and the seed of
#: the search.
BETA_GRID = (0.1, 1.0, 10.0)
SELECTION_SEED = 0

#: Sizes of the benchmark: GMN's 200/600/600 (max samples per split: 198
#: training samples, 18 per case) and the equivariance measurement.
#: (validation measures the MSE only: E and E' are the test split's,
#: ``val_equivariance=False``, which changes no training step, selection
#: or test figure)
PROTOCOL = dict(num_train=200, num_val=600, num_test=600, eval_graphs=100,
                eval_samples=10, val_equivariance=False)

#: metrics given a 95% interval per row (key -> description)
INTERVALS = {'mse': 'test MSE (ASF units^2)',
             'E_prime_paper': "E' as in the paper (Eq. 9), under SO(2)",
             'E_prime': "E' per node (our normalised variant), under SO(2)"}
COMPARED = ('mse', 'E_prime_paper')

#: Test MSE (x1e-2) on CMU subject 35 walking published in the REMUL
#: paper, as transcribed by a third party (Ahmed-5/PGM_project,
#: PAPER_REFS); not confirmed against the paper's own tables.
PAPER = (('Transformer', 5.21), ('Transformer + REMUL', 4.95),
         ('GATr', 10.06), ('SE(3)-Transformer', 10.85))

#: What may differ between the paper's setting and this benchmark.
PAPER_CAVEATS = (
    "GMN's preprocessed positions (its motion.pkl: joint set, units, any "
    "scaling) are not published with the split; here: forward kinematics "
    "of the ASF/AMC files, 31 joints, ASF units, centred per graph",
    'the case id -> trial mapping is assumed (sorted trial order)',
    "GMN's graph adds two-hop edges with edge types; here the skeleton's "
    'bones (the Transformer reads no edges)',
    'the paper trains far longer (GMN: up to 2000 epochs) with its own '
    'model sizes and beta; epochs and sizes here are in the table header',
)

def remul_label(name: str, beta: float) -> str:
    return f'{name} + REMUL (beta={beta:g})'


def remul_config(name: str, model: str, beta: float) -> Dict:
    return dict(label=remul_label(name, beta), model=model, loss='remul',
                beta=float(beta), weighting='constant')


def fixed_configs() -> List[Dict]:
    """The rows without a searched weight."""
    out = []
    for name, model in BACKBONES:
        out += [dict(label=f'{name} plain', model=model, loss='plain'),
                dict(label=f'{name} + augmentation', model=model,
                     loss='augment')]
    out.append(dict(label='EGNN', model='egnn', loss='plain'))
    return out


def comparisons(chosen: Dict[str, float]) -> List[Tuple[str, str]]:
    """The paired differences reported (label a - label b): each REMUL row
    against its backbone's augmentation and plain rows and against EGNN."""
    out = []
    for name, _ in BACKBONES:
        if name in chosen:
            r = remul_label(name, chosen[name])
            out += [(r, f'{name} + augmentation'), (r, f'{name} plain'),
                    (r, 'EGNN')]
    return out


# Data ######################################################################

def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def cmu_files(cmu_dir: str) -> List[str]:
    """The files the benchmark reads: the skeleton, the trials (sorted) and
    the split; :class:`FileNotFoundError` naming what is missing."""
    sub = osp.join(cmu_dir, SUBJECT_DIR)
    split = osp.join(cmu_dir, GMN_SPLIT_FILE)
    asfs = sorted(glob.glob(osp.join(sub, '*.asf')))
    amcs = sorted(glob.glob(osp.join(sub, '*.amc')))
    if len(asfs) != 1 or not amcs or not osp.isfile(split):
        raise FileNotFoundError(
            f'{cmu_dir} must hold {SUBJECT_DIR}/ with one skeleton (.asf) '
            f'and its trials (.amc), and {GMN_SPLIT_FILE} (found '
            f'{len(asfs)} .asf, {len(amcs)} .amc, split file '
            f'{"present" if osp.isfile(split) else "missing"}); pass '
            f'--cmu-dir')
    return asfs + amcs + [split]


def link_raw(files: Sequence[str], data_root: str) -> str:
    """Symbolic links to ``files`` in ``<data_root>/mocap/raw`` (what the
    task reads); the data stay where they are."""
    raw = osp.join(data_root, 'mocap', 'raw')
    os.makedirs(raw, exist_ok=True)
    for path in files:
        link = osp.join(raw, osp.basename(path))
        target = osp.abspath(path)
        if osp.islink(link) and os.readlink(link) == target:
            continue
        if osp.lexists(link):
            os.remove(link)
        os.symlink(target, link)
    return raw


def write_quick_proxy(directory: str) -> str:
    """A small labelled synthetic proxy laid out like ``--cmu-dir`` (6
    clips of 60 frames, a GMN-style split of 2/2/2 cases): what ``--quick``
    uses when the real files are absent."""
    sub = osp.join(directory, SUBJECT_DIR)
    generate_mocap_proxy(sub, num_clips=6, num_frames=60, seed=0)
    starts = [[(7 * k + 3 * c) % 28 for k in range(20)] for c in range(6)]
    split = {'train': {'4': starts[4], '1': starts[1]},
             'val': {'0': starts[0], '3': starts[3]},
             'test': {'2': starts[2], '5': starts[5]}}
    with open(osp.join(directory, GMN_SPLIT_FILE), 'w') as f:
        json.dump(split, f)
    return directory


def data_record(files: Sequence[str], data_root: str, common: Dict
                ) -> Dict:
    """``{"files": {name: sha256}, "samples": {split: [[trial, start]]},
    "case_ids": {id: trial}}`` of the data the runs read."""
    samples, cases = {}, {}
    for split in ('train', 'val', 'test'):
        ds = MotionCapture(osp.join(data_root, 'mocap'), split=split,
                           gmn_split=GMN_SPLIT_FILE,
                           num_train=common['num_train'],
                           num_val=common['num_val'],
                           num_test=common['num_test'])
        trial = [osp.splitext(osp.basename(p))[0] for p in ds.files]
        cases = {str(k): t for k, t in enumerate(trial)}
        samples[split] = [[trial[c], t] for c, t in ds.gmn_samples()]
    return {'files': {osp.basename(p): sha256(p) for p in files},
            'samples': samples, 'case_ids': cases,
            'case_id_assumption': 'case id k = the k-th trial in sorted '
            'file-name order (not confirmable from the split file)'}


# Tables and plot ###########################################################

def paper_reference(caveats: bool = True) -> str:
    lines = ['#### Published (not run here): REMUL paper, CMU subject 35 '
             'walking', '',
             'Test MSE x 1e-2 as published, from a third-party '
             'transcription (Ahmed-5/PGM_project, not checked against the '
             "paper's tables). Different models, training budgets and "
             'possibly preprocessing: not a claim of parity with the rows '
             'above.', '', '| model | test MSE x 1e-2 |', '|---|---|']
    lines += [f'| {name} | {value:.2f} |' for name, value in PAPER]
    if caveats:
        lines += ['', 'What may differ: ' + '; '.join(PAPER_CAVEATS) + '.']
    return '\n'.join(lines) + '\n'


def markdown(payload: Dict) -> str:
    """The table (mean [95% interval] over seeds), the beta search, the
    paired differences and, separately, the paper's numbers (real files
    only)."""
    common, seeds = payload['common'], payload['seeds']
    data = f'Motion capture, {PROXY_LABEL}' if payload['proxy'] else \
        'Motion capture, CMU subject 35 walking (real files)'
    n = {k: len(v) for k, v in payload['data']['samples'].items()}
    units = ("the proxy's length unit squared" if payload['proxy'] else
             'ASF units^2, 1 unit = 0.056444 m')
    lines = [
        f'### {data}, GMN split: {common["epochs"]} epochs, {len(seeds)} '
        f'seeds {seeds}, group SO(2) about the vertical axis', '',
        f'{n["train"]} training, {n["val"]} validation and {n["test"]} test '
        f'samples (GMN split; case id k = the k-th trial in sorted order, '
        f'an assumption), horizon 30 frames. Test MSE x 1e-2 ({units}) '
        f'and E\' under SO(2) x 1e-2: mean [95% t-interval] over seeds, at '
        f'each run\'s best-validation epoch.', '']
    lines += row_table(payload['rows'])
    search = payload.get('beta_search', {})
    if search:
        lines += ['', f'beta of each REMUL row: the lowest best-validation '
                  f'MSE (x 1e-2) of seed {payload["selection_seed"]} over '
                  f'the grid {list(payload["beta_grid"])}:', '',
                  '| backbone | ' + ' | '.join(
                      f'beta={b:g}' for b in payload['beta_grid'])
                  + ' | chosen |', '|---|' + '---|' * (
                      len(payload['beta_grid']) + 1)]
        for name, s in search.items():
            cells = [f'{s["val_mse"][f"{b:g}"] * 1e2:.3f}'
                     if s['val_mse'].get(f'{b:g}') is not None else '-'
                     for b in payload['beta_grid']]
            lines.append(f'| {name} | ' + ' | '.join(cells)
                         + f' | {s["chosen"]:g} |')
    return finish_table(lines, payload, paper_reference())


def plot(payload: Dict):
    """``plot(figures) -> figure``: test MSE and E' (paper) per row, means
    with 95% intervals and single seeds."""
    data = PROXY_LABEL if payload['proxy'] else 'CMU subject 35 walking'
    return interval_figure(
        payload, 'test MSE x 1e-2 (ASF units$^2$)',
        "E' (paper, Eq. 9) x 1e-2 (ASF units), SO(2)",
        f'Motion capture ({data}), GMN split')


# Main ######################################################################

def search_beta(name: str, model: str, grid: Sequence[float], common: Dict,
                work_dir: str, jobs: int, report_only: bool
                ) -> Optional[Dict]:
    """Trains (or, with ``report_only``, only reads) the REMUL runs of the
    grid with :data:`SELECTION_SEED`; ``{'val_mse': {beta: best val MSE},
    'chosen': beta}``, or ``None`` when a run is missing."""
    configs = [remul_config(name, model, b) for b in grid]
    if report_only:
        if len(finished_configs(configs, [SELECTION_SEED], common,
                                work_dir)) < len(configs):
            return None
    else:
        run_all(configs, [SELECTION_SEED], common, work_dir, jobs=jobs,
                log=lambda s: print('  beta search: ' + s))
    val = {f'{b:g}': saved_results(work_dir, c['label'], SELECTION_SEED)
           ['best_val_mse'] for b, c in zip(grid, configs)}
    finite = {b: v for b, v in zip(grid, val.values()) if v is not None}
    if not finite:
        return None
    return {'val_mse': val, 'chosen': min(finite, key=finite.get)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cmu-dir', default=DEFAULT_CMU_DIR,
                        help='folder with subject35/ and '
                        f'{GMN_SPLIT_FILE} (default: {DEFAULT_CMU_DIR})')
    add_protocol_arguments(parser, epochs=200, work=True)
    args = parser.parse_args(argv)
    common = dict(task='mocap', source='gmn', epochs=args.epochs,
                  **PROTOCOL)
    seeds = list(args.seeds)
    grid = BETA_GRID
    backbones = BACKBONES
    fixed = fixed_configs()
    cmu_dir = args.cmu_dir
    if args.quick:
        seeds = [0, 1]
        common.update(QUICK)
        work = tempfile.mkdtemp()
        grid = (0.1, 1.0)
        backbones = (('GNN', 'gnn'), )
        fixed = [c for c in fixed if c['label'] == 'EGNN']
        if not osp.isfile(osp.join(cmu_dir, GMN_SPLIT_FILE)):
            cmu_dir = write_quick_proxy(osp.join(work, 'cmu'))
            print(f'data: no {GMN_SPLIT_FILE} in {args.cmu_dir}: quick run '
                  f'on the {PROXY_LABEL}')
    else:
        work = args.work
    try:
        files = cmu_files(cmu_dir)
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 1
    proxy = read_asf(files[0]).is_synthetic_proxy
    work_dir = osp.join(work, 'bench-mocap-cmu')
    common['data_root'] = osp.join(work_dir, 'data')
    raw = link_raw(files, common['data_root'])
    print(f'data: {len(files) - 2} trials, skeleton and split of {cmu_dir} '
          f'(linked in {raw})' + (f' ({PROXY_LABEL})' if proxy else ''))
    print(f'machine: {machine_description()}')
    import warnings
    with warnings.catch_warnings():
        if proxy:  # labelled in every output instead
            warnings.simplefilter('ignore')
        data = data_record(files, common['data_root'], common)

        search, chosen = {}, {}
        for name, model in backbones:
            s = search_beta(name, model, grid, common, work_dir, args.jobs,
                            args.report_only)
            if s is not None:
                search[name] = s
                chosen[name] = s['chosen']
        configs = []  # per backbone plain, augmentation, REMUL; then EGNN
        for name, model in BACKBONES:
            configs += [c for c in fixed if c['label'].startswith(name + ' ')]
            if name in chosen:
                configs.append(remul_config(name, model, chosen[name]))
        configs += [c for c in fixed if c['label'] == 'EGNN']
        configs = selected_rows(parser, configs, args.only)
        done = configs if not args.report_only else \
            finished_configs(configs, seeds, common, work_dir)
        missing = [c['label'] for c in configs if c not in done]
        missing += [f'{n} + REMUL (beta search)' for n, _ in backbones
                    if n not in chosen]
        rows = run_all(done, seeds, common, work_dir, jobs=args.jobs) \
            if done else []
    add_intervals(rows, INTERVALS)
    compared = compare_rows(rows, comparisons(chosen), COMPARED)
    label_rows(rows, proxy)
    payload = interval_payload(
        seeds, common={k: v for k, v in common.items() if k != 'data_root'},
        proxy=proxy, data=data, beta_grid=list(grid),
        selection_seed=SELECTION_SEED, beta_search=search, metrics=INTERVALS,
        rows=rows, comparisons=compared, missing=missing)
    if proxy:
        payload['data_label'] = PROXY_LABEL
    else:
        payload['published_x1e-2'] = {
            'source': 'REMUL paper, third-party transcription '
                      '(Ahmed-5/PGM_project PAPER_REFS)',
            'task': 'CMU subject 35 walking, GMN protocol',
            'mse': dict(PAPER), 'may_differ': list(PAPER_CAVEATS)}
    publish('mocap_cmu', payload, markdown, plot, bool(rows),
            **({'directory': work} if args.quick else {}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
