"""Shared helpers of the accuracy benchmarks: run `train()` for a list of
configurations and seeds, aggregate, and write JSON, markdown and a plot.

Every run reports its test metrics at the epoch of its best validation MSE
(``results.json``: ``"selection": "best_val"``). A finished run found in
the work directory is reused only when its configuration AND its code
version match the current ones: the same committed package sources (git
tree of ``torch_geometric_remul/``, so commits that touch only docs, tests or
benchmarks keep finished runs) and the same uncommitted changes to the
package (every invocation that trained it, see
``torch_geometric_remul.train.code_version`` and ``same_code``), and it
used best-validation selection. ``run_all(..., jobs=2)`` trains the missing
runs in two processes at once (one per core) before aggregating. A run
cut off before it finished (a stopped sitting, a killed process) goes on
from its last checkpoint when its configuration and code version match
(:func:`resumable`); it gives the result an uninterrupted run would. Runs of
other code are trained again, unless the caller asks otherwise:
``run_all(..., reuse_other_code=True)`` or the environment variable
``REMUL_REUSE_OTHER_CODE=1`` accepts finished runs of another code version
(their rows then list every code version they came from, in
``code_versions``). Outside a git checkout no code version is known and
nothing is reused without that opt-in.
"""
import json
import math
import os
import os.path as osp
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from torch_geometric_remul.train import (
    TrainConfig,
    TrainingError,
    code_version,
    restore_model,
    same_code,
    train,
)
from torch_geometric_remul.train.provenance import provenance

#: Set to ``1`` to reuse finished runs of another code version.
REUSE_ENV = 'REMUL_REUSE_OTHER_CODE'

RESULTS = osp.join(osp.dirname(osp.abspath(__file__)), 'results')

#: sizes used by --quick (a smoke run of the whole pipeline)
QUICK = dict(num_train=32, num_val=16, num_test=16, epochs=2,
             hidden_channels=8, num_layers=1, batch_size=16, eval_graphs=16,
             eval_samples=2)

#: metrics every run reports (``evaluate`` hooks may add more)
METRICS = ('mse', 'E', 'E_prime', 'E_prime_rel', 'E_prime_paper',
           'seconds_per_epoch')


def reuse_other_code_requested() -> bool:
    """Whether ``REMUL_REUSE_OTHER_CODE`` asks to reuse runs of another
    code version (``1``, ``true``, ``yes``; anything else: no)."""
    return os.environ.get(REUSE_ENV, '').strip().lower() in ('1', 'true',
                                                              'yes')


def run_all(configs: List[Dict], seeds: Sequence[int], common: Dict,
            work_dir: str, log=print,
            evaluate: Optional[Callable] = None,
            reuse_other_code: Optional[bool] = None,
            jobs: int = 1) -> List[Dict]:
    """Trains every configuration for every seed; returns one row per
    configuration with mean and standard deviation over seeds of the test
    metrics at each run's best-validation epoch (and of ``best_epoch``).

    ``evaluate(config, spec, model)``, if given, is called with every
    trained model (the best-validation model, restored from its run
    directory, also for reused runs) and returns extra metrics (a dict of
    floats) for that run.

    A finished run in ``work_dir`` is reused when its configuration and
    code version match (see the module docstring);
    ``reuse_other_code=True`` (default: ``REMUL_REUSE_OTHER_CODE``)
    accepts runs of another code version too. With ``jobs > 1`` the runs
    still missing are first trained in ``jobs`` processes at once (each
    one single-threaded unless ``OMP_NUM_THREADS`` says otherwise); their
    seconds per epoch then include that sharing of the machine.
    """
    if reuse_other_code is None:
        reuse_other_code = reuse_other_code_requested()
    current = code_version()
    if jobs > 1:
        _train_missing(configs, seeds, common, work_dir, current,
                       reuse_other_code, jobs, log)
    rows = []
    for cfg in configs:
        cfg = dict(cfg)
        label = cfg.pop('label')
        per_seed, versions, best_epochs = [], [], []
        for seed in seeds:
            values = _values(common, cfg, seed, label, work_dir)
            test = _finished(values, current, reuse_other_code)
            if test is None:
                t0 = time.perf_counter()
                resume = resumable(values, current)
                test = _train_run(values, resume).test
                test['wall_seconds'] = time.perf_counter() - t0
                note = f' (resumed from epoch {resume})' if resume else ''
            else:
                note = ' (finished run reused)'
            saved = _results(values['run_dir'])
            if saved['best_epoch'] is not None:
                test['best_epoch'] = saved['best_epoch']
            best_epochs.append(saved['best_epoch'])
            for version in saved['provenance']['code_versions']:
                if version not in versions:
                    versions.append(version)
            config, spec, model = restore_model(
                values['run_dir'], data_root=values['data_root'],
                which='last' if diverged(saved) else 'best')
            test['params'] = sum(p.numel() for p in model.parameters())
            if evaluate is not None:
                test.update(evaluate(config, spec, model))
            per_seed.append(test)
            extra = ''.join(f', {k} {v:.5g}' for k, v in test.items()
                            if k not in METRICS + ('wall_seconds', 'params',
                                                   'best_epoch'))
            log(f'{label:32s} seed {seed}: test MSE {test["mse"]:.5f}, '
                f'E\' {test["E_prime"]:.4f} (best val epoch '
                f'{saved["best_epoch"]}){extra}{note}')
        row = {'label': label, 'config': cfg, 'seeds': list(seeds),
               'runs': per_seed, 'params': per_seed[0]['params'],
               'selection': 'best_val', 'best_epochs': best_epochs,
               'code_versions': versions}
        keys = [k for k in per_seed[0] if k not in ('params', )]
        for key in keys:
            vals = [r[key] for r in per_seed if key in r]
            row[key] = statistics.fmean(vals)
            row[key + '_std'] = statistics.stdev(vals) if len(vals) > 1 \
                else 0.0
        rows.append(row)
    return rows


def _values(common: Dict, cfg: Dict, seed: int, label: str,
            work_dir: str) -> Dict:
    """The ``TrainConfig`` fields of one run (its directory named by
    label and seed)."""
    values = dict(common, **cfg, seed=seed)
    values['run_dir'] = osp.join(work_dir, f'{label}-seed{seed}'
                                 .replace(' ', '_'))
    return values


def finished_configs(configs: List[Dict], seeds: Sequence[int],
                     common: Dict, work_dir: str,
                     reuse_other_code: Optional[bool] = None) -> List[Dict]:
    """The configurations (``label`` plus fields, as for :func:`run_all`)
    whose every seed has a finished run of the current code in
    ``work_dir`` (of any code with ``reuse_other_code``, default:
    ``REMUL_REUSE_OTHER_CODE``): what a ``--report-only`` table may show
    (the rest are reported as missing, never averaged over fewer
    seeds)."""
    if reuse_other_code is None:
        reuse_other_code = reuse_other_code_requested()
    current = code_version()
    out = []
    for cfg in configs:
        rest = {k: v for k, v in cfg.items() if k != 'label'}
        if all(_finished(_values(common, rest, s, cfg['label'], work_dir),
                         current, reuse_other_code) is not None
               for s in seeds):
            out.append(cfg)
    return out


def add_protocol_arguments(parser, epochs: int, val_every: Optional[int]
                           = None, only: bool = True,
                           work: bool = False) -> None:
    """The options every benchmark under the evaluation protocol shares:
    ``--seeds`` (default 0-4), ``--epochs``, ``--val-every`` (when
    ``val_every`` is given), ``--jobs``, ``--only`` (exact row labels),
    ``--work`` (where the runs live), ``--report-only``, ``--data-root``
    and ``--quick``."""
    parser.add_argument('--seeds', type=int, nargs='+',
                        default=[0, 1, 2, 3, 4])
    parser.add_argument('--epochs', type=int, default=epochs)
    if val_every is not None:
        parser.add_argument('--val-every', type=int, default=val_every,
                            help='validate every N epochs (and after the '
                            'last)')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs trained at once (one per core)')
    if only:
        parser.add_argument('--only', nargs='*', default=None,
                            help='labels (exact) of the rows to train or '
                            'report')
    if work:
        parser.add_argument('--work', default='runs',
                            help='where the runs live (default: runs)')
    parser.add_argument('--report-only', action='store_true',
                        help='train nothing; tabulate the rows whose every '
                        'seed finished')
    add_from_json_argument(parser)
    parser.add_argument('--data-root', default='data')
    parser.add_argument('--quick', action='store_true')


def add_from_json_argument(parser) -> None:
    """``--from-json JSON``: train and read no run; recompute the paired
    comparisons of a written results JSON from its per-seed values and
    write its JSON, table and figure again (:func:`rerender`)."""
    parser.add_argument('--from-json', metavar='JSON', default=None,
                        help='train nothing and read no run: recompute the '
                        'paired comparisons of a written results JSON from '
                        'its per-seed values and write its .json, .md and '
                        '.png again, next to it')


def load_results(path: str) -> Dict:
    """A results JSON written by :func:`write_outputs` (a missing or
    damaged file is a ValueError naming it)."""
    try:
        with open(path) as f:
            payload = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f'cannot read the results JSON {path!r}: {e}') \
            from e
    if not isinstance(payload, dict):
        raise ValueError(f'{path!r} is not a results JSON (expected an '
                         f'object at the top)')
    return payload


def rerender(name: str, path: str, markdown, plot=None, refresh=None
             ) -> List[str]:
    """Writes the outputs of a results JSON again without training or
    reading a run: every stored comparison is recomputed from the rows'
    per-seed values (``_stats.recompute_comparisons``), ``refresh(payload)``
    updates what else depends on them (e.g. the beta sweep's monotonicity),
    the payload records the paired method, and ``markdown(payload)`` and
    ``plot(payload)`` (a ``plot(figures)`` callback) are written next to
    ``path`` as ``<name>.{json,md,png}``. Prints every verdict that
    changed; returns the paths written."""
    from _stats import PAIRED_METHOD, recompute_comparisons
    payload = load_results(path)
    changes = recompute_comparisons(payload)
    if refresh is not None:
        refresh(payload)
    payload.pop('bootstrap_resamples', None)
    payload['paired_method'] = PAIRED_METHOD
    for where, old, new in changes:
        if old['verdict'] != new['verdict']:
            extra = ''.join(f' [{k} {old[k]}]' for k in
                            ('molecule', 'num_train') if k in old)
            print(f'{name} ({where}): {old["a"]} - {old["b"]} '
                  f'({old["key"]}){extra}: {old["verdict"]} -> '
                  f'{new["verdict"]}')
    table = markdown(payload)
    return write_outputs(name, payload, table,
                         plot(payload) if plot is not None else None,
                         directory=osp.dirname(osp.abspath(path)))


def selected_rows(parser, configs: List[Dict],
                  only: Optional[Sequence[str]]) -> List[Dict]:
    """Copies of the ``configs`` whose label is in ``only`` (all without
    it); an ``--only`` that matches no row is a usage error listing the
    rows."""
    out = [dict(c) for c in configs if not only or c['label'] in only]
    if not out:
        parser.error(f'--only matches no row; rows: '
                     f'{", ".join(c["label"] for c in configs)}')
    return out


def interval_payload(seeds: Sequence[int], **fields) -> Dict:
    """The JSON of a table under the evaluation protocol: its provenance
    (:func:`run_provenance`), the seeds, how intervals and differences are
    computed, and ``fields``."""
    from _stats import PAIRED_METHOD
    return dict(run_provenance(), seeds=list(seeds),
                interval='95% Student-t interval of the mean over seeds',
                paired_method=PAIRED_METHOD, **fields)


def resumable(values: Dict, current: Optional[Dict] = None
              ) -> Optional[int]:
    """The epoch of the last checkpoint of an interrupted run of exactly
    this configuration in ``values['run_dir']``, when every invocation of
    it was the code version ``current`` (default: this one), else
    ``None``: a run cut off (a stopped sitting, a killed process) goes on
    from its last epoch, exactly as if never stopped (``train(...,
    resume_from=...)``), instead of starting over; anything else there
    (another configuration or code, no checkpoint, a damaged file) is
    trained anew."""
    from torch_geometric_remul.train import RunDirectoryError, load_run
    run_dir = values['run_dir']
    if not osp.exists(osp.join(run_dir, 'checkpoint.pt')):
        return None
    try:
        saved, checkpoint = load_run(run_dir)
    except (RunDirectoryError, OSError, ValueError):
        return None
    current = code_version() if current is None else current
    versions = checkpoint.get('code_versions') or []
    if not versions or not all(same_code(v, current) for v in versions):
        return None
    if _comparable(saved) != _comparable(TrainConfig(**values)):
        return None
    return int(checkpoint['epoch'])


def _train_run(values: Dict, resume: Optional[int]):
    """Trains one run, resuming it when ``resume`` (an epoch) is given."""
    if resume:
        return train(TrainConfig(**values), resume_from=values['run_dir'],
                     progress=False, log=lambda s: None)
    return train(TrainConfig(**values), progress=False, log=lambda s: None,
                 overwrite=True)


def _train_one(values: Dict, resume: Optional[int] = None) -> float:
    """Trains (or resumes) one run in a worker process; returns its wall
    seconds."""
    import torch
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    t0 = time.perf_counter()
    _train_run(values, resume)
    return time.perf_counter() - t0


def _train_missing(configs, seeds, common, work_dir, current,
                   reuse_other_code, jobs, log) -> None:
    """Trains every run of ``configs`` x ``seeds`` that has no finished
    result yet, ``jobs`` at a time, in the order given (configuration
    after configuration, so that an interrupted sweep has all seeds of
    its first configurations)."""
    _train_pending(_pending(configs, seeds, common, work_dir, current,
                            reuse_other_code), jobs, log)


def _pending(configs, seeds, common, work_dir, current,
             reuse_other_code) -> List[Tuple[str, Dict, Optional[int]]]:
    """``(name, values, resume epoch)`` of every run of ``configs`` x
    ``seeds`` without a finished result, configuration after
    configuration."""
    pending = []
    for cfg in configs:
        cfg = dict(cfg)
        label = cfg.pop('label')
        for seed in seeds:
            values = _values(common, cfg, seed, label, work_dir)
            if _finished(values, current, reuse_other_code) is None:
                resume = resumable(values, current)
                name = f'{label} seed {seed}' + (
                    f' (resumed from epoch {resume})' if resume else '')
                pending.append((name, values, resume))
    return pending


def train_missing(batches: Sequence[Tuple[List[Dict], Sequence[int], Dict,
                                          str]],
                  jobs: int, log=print,
                  reuse_other_code: Optional[bool] = None) -> None:
    """Trains, in one pool of ``jobs`` processes, the runs without a
    finished result of several :func:`run_all` calls (``(configs, seeds,
    common, work_dir)`` each, in the order given), so that a later
    :func:`run_all` on each only reads them. For sweeps whose runs differ
    in ``common`` (e.g. one data fold each), where one :func:`run_all` per
    value would leave cores idle at the end of each. With ``jobs`` 1 it
    does nothing (the :func:`run_all` calls train the runs in turn)."""
    if jobs <= 1:  # one process: the run_all calls train them in turn
        return
    if reuse_other_code is None:
        reuse_other_code = reuse_other_code_requested()
    current = code_version()
    _train_pending([run for configs, seeds, common, work_dir in batches
                    for run in _pending(configs, seeds, common, work_dir,
                                        current, reuse_other_code)],
                   jobs, log)


def _train_pending(pending, jobs, log) -> None:
    """Trains ``(name, values, resume)`` runs ``jobs`` at a time."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    if not pending:
        return
    log(f'training {len(pending)} run(s), {jobs} at a time')
    failed = []
    context = multiprocessing.get_context('spawn')
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [(name, pool.submit(_train_one, values, resume))
                   for name, values, resume in pending]
        for name, future in futures:
            try:
                log(f'{name}: trained in {future.result():.0f} s')
            except Exception as e:  # noqa: BLE001 - reported, then raised
                log(f'{name}: FAILED: {type(e).__name__}: {e}')
                failed.append((name, e))
    if failed:
        raise RuntimeError(f'{len(failed)} run(s) failed, first: '
                           f'{failed[0][0]}') from failed[0][1]


#: the seed every learning-rate search trains on (:func:`tune_lr`)
TUNE_SEED = 0
#: a search's grid grows by this factor past an edge that wins ...
LR_STEP = 3.0
#: ... at most this many times
LR_EXTRA = 2


def lr_label(name: str, lr: float) -> str:
    """The row label of ``name`` trained at learning rate ``lr``."""
    return f'{name} (lr {lr:g})'


def base_label(label: str) -> str:
    """The row name without the learning rate :func:`lr_label` adds."""
    return label.split(' (lr ')[0]


def tune_lr(name: str, config: Dict, rates: Sequence[float], common: Dict,
            work_dir: str, jobs: int = 1, report_only: bool = False,
            seed: int = TUNE_SEED) -> Tuple[Optional[Dict], List[Dict]]:
    """The validation learning-rate search of one row, the same for every model
    searched: ``config`` (fields of the row, without label) is trained on
    ``seed`` (default :data:`TUNE_SEED`) at every rate of ``rates`` (with
    ``report_only``: only read); while the best rate is the largest tried,
    one :data:`LR_STEP` times larger is added, and while it is the
    smallest, one :data:`LR_STEP` times smaller, at most :data:`LR_EXTRA`
    rates more, so that the rate chosen is not the edge of the grid
    unless the grid ran out. The rate with the lowest best validation MSE
    wins (a diverged run, whose validation loss is non-finite or whose
    training stopped on a non-finite loss, counts as worst; the test set
    is never read). Returns the chosen configuration (labelled ``"<name> (lr
    <rate>)"``; its run on ``seed`` is the search's run) and one record
    per rate in the order tried, or ``(None, [])`` when ``report_only``
    finds a run of the search unfinished. Several searches at once:
    :func:`tune_lrs`."""
    return tune_lrs([(name, config, rates)], common, work_dir, jobs=jobs,
                    report_only=report_only, seed=seed)[0]


def tune_lrs(searches: Sequence[Tuple[str, Dict, Sequence[float]]],
             common: Dict, work_dir: str, jobs: int = 1,
             report_only: bool = False, seed: int = TUNE_SEED
             ) -> List[Tuple[Optional[Dict], List[Dict]]]:
    """Several learning-rate searches (``(name, config, rates)`` each, the
    arguments of :func:`tune_lr`; names distinct) in rounds: every search's
    grid, then every search's next extension, each round trained in one
    pool of ``jobs`` processes, so that no core waits while another
    search's runs remain. Each search follows :func:`tune_lr`'s rule and
    returns what it would (in the order of ``searches``); the runs and
    their directories are those of :func:`tune_lr`, so either reuses the
    other's finished runs."""
    names = [name for name, _, _ in searches]
    if len(set(names)) != len(names):
        raise ValueError(f'tune_lrs: search names must be distinct, got '
                         f'{names}')
    records = {name: [] for name in names}
    grids = {name: list(rates) for name, _, rates in searches}
    configs = {name: config for name, config, _ in searches}
    unfinished = set()

    def rank(record):
        v = record['best_val_mse']
        return math.inf if v is None or v != v else v

    def configured(name, lr):
        return dict(configs[name], label=lr_label(name, lr), lr=lr)

    def values_of(cfg):
        return _values(common, {k: v for k, v in cfg.items()
                                if k != 'label'}, seed, cfg['label'],
                       work_dir)

    def next_rate(name) -> Optional[float]:
        """The rate a search tries next, ``None`` when it is done."""
        search = records[name]
        best = min(search, key=rank)['lr']
        low, high = min(r['lr'] for r in search), max(r['lr'] for r in search)
        if len(search) - len(grids[name]) >= LR_EXTRA or low < best < high:
            return None
        return round((high * LR_STEP) if best == high else
                     (low / LR_STEP), 12)

    def trained(todo_by_name: Dict[str, List[float]]) -> None:
        """Trains (or reads) one round; a search of which a run is
        unfinished under ``report_only`` joins ``unfinished``."""
        todo = [(name, configured(name, lr))
                for name, lrs in todo_by_name.items() for lr in lrs]
        # a run that stopped on a non-finite loss before (same
        # configuration and code): recorded, neither read nor trained again
        failed = {cfg['label']: error for _, cfg in todo
                  if not finished_configs([cfg], [seed], common, work_dir)
                  and (error := stopped_run(values_of(cfg))) is not None}
        todo_runs = [cfg for _, cfg in todo if cfg['label'] not in failed]
        if report_only:
            done = finished_configs(todo_runs, [seed], common, work_dir)
            unfinished.update(name for name, cfg in todo
                              if cfg['label'] not in failed
                              and cfg not in done)
        elif todo_runs:
            try:
                run_all(todo_runs, [seed], common, work_dir, jobs=jobs)
            except Exception as e:  # noqa: BLE001 - re-raised below
                if not _blew_up(e):
                    raise
                # a rate blew up: one at a time (finished runs are reused)
                # to record which
                for cfg in todo_runs:
                    try:
                        run_all([cfg], [seed], common, work_dir)
                    except Exception as e:  # noqa: BLE001 - recorded
                        if not _blew_up(e):
                            raise
                        failed[cfg['label']] = str(
                            e if isinstance(e, TrainingError)
                            else e.__cause__)
                        record_stopped_run(values_of(cfg),
                                           failed[cfg['label']])
        for name, cfg in todo:
            if name in unfinished:
                continue
            record = {'label': cfg['label'], 'lr': cfg['lr'],
                      'best_val_mse': None, 'best_epoch': None,
                      'seconds_per_epoch': None}
            if cfg['label'] in failed:
                # training stopped on a non-finite loss: the worst rank
                record['error'] = failed[cfg['label']]
            else:
                saved = saved_results(work_dir, cfg['label'], seed)
                record.update(best_val_mse=saved['best_val_mse'],
                              best_epoch=saved['best_epoch'],
                              seconds_per_epoch=saved['test'][
                                  'seconds_per_epoch'])
            records[name].append(record)

    todo = dict(grids)
    while todo:
        trained(todo)
        todo = {}
        for name in names:
            if name not in unfinished and (
                    rate := next_rate(name)) is not None:
                todo[name] = [rate]
    out = []
    for name in names:
        if name in unfinished:
            out.append((None, []))
        else:
            best = min(records[name], key=rank)['lr']
            out.append((configured(name, best), records[name]))
    return out


#: the file a search writes into the directory of a run that stopped on
#: a non-finite loss (its configuration, code version and error), so that
#: ``--report-only`` can tabulate the search and a later search does not
#: train it again
STOPPED = 'stopped.json'


def record_stopped_run(values: Dict, error: str) -> None:
    """Writes :data:`STOPPED` (atomically) into the directory of the run of
    ``values`` (``TrainConfig`` fields with ``run_dir``), which stopped on
    a non-finite loss with ``error``."""
    from torch_geometric_remul._io import atomic_write
    record = {'error': error, 'config': _comparable(TrainConfig(**values)),
              'code': code_version()}
    atomic_write(osp.join(values['run_dir'], STOPPED),
                 lambda f: f.write(json.dumps(record, indent=1).encode()))


def stopped_run(values: Dict) -> Optional[str]:
    """The error of the run of ``values`` when its directory records
    (:func:`record_stopped_run`) that this configuration, trained by this
    code version (any, with ``REMUL_REUSE_OTHER_CODE=1``), stopped on a
    non-finite loss; else ``None`` (no record, another configuration or
    code, or a damaged file)."""
    path = osp.join(values['run_dir'], STOPPED)
    try:
        with open(path) as f:
            record = json.load(f)
        config, error, code = record['config'], record['error'], \
            record['code']
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if config != _comparable(TrainConfig(**values)):
        return None
    if not reuse_other_code_requested() and not same_code(code,
                                                          code_version()):
        return None
    return str(error)


def _blew_up(error: BaseException) -> bool:
    """Whether ``error`` is a run stopped on a non-finite loss
    (``TrainingError``; from a worker of ``jobs > 1``, as the cause of the
    ``RuntimeError`` that :func:`run_all` raises)."""
    return isinstance(error, TrainingError) or isinstance(
        error.__cause__, TrainingError)


def search_record(config: Dict, search: List[Dict], epochs: int,
                  rates: Sequence[float], seed: int = TUNE_SEED) -> Dict:
    """What a results JSON stores of one :func:`tune_lr` search."""
    return {'seed': seed, 'epochs': epochs, 'grid': list(rates),
            'runs': search, 'chosen_lr': config['lr'],
            'rule': f'lowest best validation loss on seed {seed}; the '
                    f'grid grows {LR_STEP:g}x past a winning edge, at most '
                    f'{LR_EXTRA} rates more'}


def search_value(value: Optional[float], scale: float = 1e3) -> str:
    """A search run's best validation loss as a table cell (``None`` or
    NaN: ``diverged``)."""
    return 'diverged' if value is None or value != value \
        else f'{value * scale:.2f}'


def update_note(update: Dict) -> str:
    """One sentence on what a ``--update`` of a stored table replaced
    (``rows``), with the package tree that trained it and the
    learning-rate searches it ran (``searches``, when recorded)."""
    trees = [t[:7] for t in update.get('trained_by') or []] or \
        [((update.get('code') or {}).get('package_tree') or '?')[:7]]
    searches = update.get('searches')
    return (f'Rows replaced later by ``--update`` (trained by package tree'
            f'{"s" if len(trees) > 1 else ""} {", ".join(trees)}): '
            f'{"; ".join(update["rows"]) or "none"}' +
            ('' if searches is None else
             f'; learning-rate searches run: {", ".join(searches) or "none"}')
            + '.')


def search_lines(name: str, record: Optional[Dict], scale: float = 1e3,
                 unit: str = 'x 1e-3') -> List[str]:
    """A learning-rate search (:func:`search_record`) as a markdown
    table (none without one)."""
    if not record:
        return []
    start = ', '.join(f'{lr:g}' for lr in record['grid'])
    lines = ['', f'{name}\'s learning rate: each rate trained on seed '
             f'{record["seed"]} for {record["epochs"]} epochs ({start}, '
             f'then {LR_STEP:g}x further while the largest or smallest '
             f'rate tried was the best, at most {LR_EXTRA} more); the rate '
             f'with the lowest best validation MSE is used for every seed '
             f'(chosen: {record["chosen_lr"]:g}). The test set is not '
             f'used.', '',
             f'| learning rate | best validation MSE {unit} | best epoch | '
             f's / epoch |', '|---|---|---|---|']
    for r in sorted(record['runs'], key=lambda r: r['lr']):
        v = r['best_val_mse']
        val = search_value(v, scale)
        seconds = r['seconds_per_epoch']
        lines.append(f'| {r["lr"]:g} | {val} | {r["best_epoch"]} | '
                     f'{"-" if seconds is None else f"{seconds:.2f}"} |')
    return lines


def saved_results(work_dir: str, label: str, seed: int) -> Dict:
    """The saved ``results.json`` of the run of ``label`` and ``seed`` in
    ``work_dir`` (as :func:`run_all` names its directory)."""
    return _results(_values({}, {}, seed, label, work_dir)['run_dir'])


def _results(run_dir: str) -> Dict:
    with open(osp.join(run_dir, 'results.json')) as f:
        return json.load(f)


def _finished(values: Dict, current: Optional[Dict] = None,
              reuse_other_code: bool = False):
    """The test results of a run directory that already holds a finished
    run of exactly this configuration, selected at its best validation
    epoch, trained by the code version ``current`` (every invocation of
    it; any code version with ``reuse_other_code``), else ``None`` (so that
    an interrupted benchmark continues where it stopped, and a stale run
    is trained again)."""
    path = osp.join(values['run_dir'], 'results.json')
    if not osp.exists(path):
        return None
    try:
        saved = _results(values['run_dir'])
        # fields added since the run was saved take their defaults
        have = _comparable(TrainConfig.from_dict(saved['config']))
        versions = saved['provenance']['code_versions']
        selection = saved['selection']
    except (KeyError, TypeError, ValueError, OSError):
        return None  # damaged, or written before provenance was recorded
    if not (selection == 'best_val' and osp.exists(
            osp.join(values['run_dir'], 'best.pt')) or diverged(saved)):
        return None
    if not reuse_other_code:
        current = code_version() if current is None else current
        if not versions or not all(same_code(v, current)
                                   for v in versions):
            return None
    return saved['test'] if have == _comparable(TrainConfig(**values)) \
        else None


def diverged(saved: Dict) -> bool:
    """Whether a finished run's ``results.json`` says it never reached a
    finite validation loss (a diverged run: no best-validation model
    exists, its test metrics are the last epoch's, ``selection: last``).
    Such a run is finished all the same: a learning-rate search ranks it
    last, a table shows its non-finite error."""
    return saved.get('selection') == 'last' and \
        saved.get('best_val_mse') is None and \
        saved.get('best_epoch') is None


def _comparable(config: TrainConfig) -> Dict:
    """The fields of a configuration that can change its results (where
    the data are cached, where the run is written and whether validation
    measures equivariance cannot)."""
    values = json.loads(config.resolved().to_json())
    # val_equivariance only adds validation columns: same training, same
    # selection, same test figures
    for key in ('data_root', 'run_dir', 'val_equivariance'):
        values.pop(key)
    return values


def run_provenance() -> Dict:
    """The provenance of a benchmark's JSON: the code version, the library
    versions and the machine (``torch_geometric_remul.train.provenance``),
    and the selection rule of its runs."""
    return dict(provenance(), selection='best_val: test metrics of the '
                'model at the epoch with the lowest validation MSE (ties: '
                'the earlier epoch)')


def code_lines(rows: Sequence[Dict], name=lambda r: r['label']
               ) -> List[str]:
    """The markdown note on the code that trained a table's runs: every
    code version the rows' runs recorded (``code_versions`` of
    :func:`run_all`), as the git tree of ``torch_geometric_remul/`` (the
    version runs are matched on) with the commits it was trained at; with
    more than one package tree (runs reused from another code version),
    which rows each trained (``name(row)``, default the label). Empty when
    no row records a code version."""
    # (package tree, uncommitted changes) or None -> row names, commits
    groups: Dict[Optional[Tuple[str, bool]], List[str]] = {}
    commits: Dict[Optional[Tuple[str, bool]], List[str]] = {}
    for r in rows:
        for v in r.get('code_versions') or []:
            tree, commit = v.get('package_tree'), v.get('commit')
            key = (tree[:7], bool(v.get('package_dirty'))) if tree else None
            if name(r) not in groups.setdefault(key, []):
                groups[key].append(name(r))
            found = commits.setdefault(key, [])
            if key and commit and str(commit)[:7] not in found:
                found.append(str(commit)[:7])

    def described(key) -> str:
        if key is None:
            return 'unknown code version'
        found, notes = commits[key], []
        if found:
            notes.append(('commit ' if len(found) == 1 else 'commits ')
                         + ', '.join(found))
        if key[1]:
            notes.append('with uncommitted package changes')
        return f'package tree {key[0]}' + (
            f' ({", ".join(notes)})' if notes else '')
    if not groups:
        return []
    if len(groups) == 1:
        return ['', f'Code of every run: {described(next(iter(groups)))}.']
    parts = [f'{described(key)}: {", ".join(labels)}'
             for key, labels in groups.items()]
    return ['', 'Code of the runs (more than one version): '
            + '; '.join(parts) + '.']


def write_outputs(name: str, payload: Dict, table: str,
                  plot=None, directory: str = RESULTS) -> List[str]:
    """Writes ``<directory>/<name>.json`` and ``.md``, and ``.png`` when
    ``plot(figures) -> figure`` is given and matplotlib is installed
    (``directory`` defaults to ``benchmarks/results``; ``--quick`` runs
    write to their temporary directory instead)."""
    os.makedirs(directory, exist_ok=True)
    paths = [osp.join(directory, f'{name}.json'),
             osp.join(directory, f'{name}.md')]
    _write_atomic(paths[0], json.dumps(payload, indent=2))
    _write_atomic(paths[1], table)
    if plot is not None:
        try:
            from matplotlib.figure import Figure
        except ImportError:
            return paths
        fig = plot(Figures(Figure))
        paths.append(osp.join(directory, f'{name}.png'))
        tmp = paths[-1] + '.tmp.png'
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, paths[-1])
    return paths


def publish(name: str, payload: Dict, markdown: Callable[[Dict], str],
            plot, drawn: bool, directory: str = RESULTS) -> List[str]:
    """Prints ``markdown(payload)`` and writes it with ``payload`` and, when
    ``drawn``, the figure ``plot(payload)`` (:func:`write_outputs`); prints
    and returns the paths written."""
    table = markdown(payload)
    print('\n' + table)
    paths = write_outputs(name, payload, table,
                          plot(payload) if drawn else None,
                          directory=directory)
    print('wrote', ', '.join(paths))
    return paths


def _write_atomic(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file in the same
    directory, so that an interrupted write leaves the old file."""
    tmp = f'{path}.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def interval_panel(ax, rows: List[Dict], key: str, scale: float = 1.0,
                   xlabel: str = '', outlier: Optional[float] = None,
                   labels: bool = True) -> None:
    """Draws one panel of a results figure: per row, the mean of ``key``
    over seeds with its 95% interval (``<key>_ci``, see
    ``_stats.add_intervals``) and every single seed, on a linear axis
    starting at 0 (values multiplied by ``scale``). With ``outlier``, a
    row whose mean is more than ``outlier`` times the median of the panel
    is not drawn to scale: its value is written at the panel's edge, so
    that one far-off row does not squash the others."""
    from _stats import error_bars
    est, err = error_bars([r[key + '_ci'] for r in rows], scale)
    seeds = [[run[key] * scale for run in r['runs']] for r in rows]
    ys = list(range(len(rows)))
    typical = sorted(est)[len(est) // 2]
    keep = [i for i, e in enumerate(est)
            if outlier is None or e <= outlier * typical]
    right = 1.15 * max(max(est[i] + err[1][i], *seeds[i]) for i in keep)
    right = right or 1.0  # every value on the scale is 0 (e.g. EGNN's E')
    for i in ys:
        if i not in keep:
            ax.annotate(f'{est[i]:.3g} (off scale)', (right, ys[i]),
                        xytext=(-4, 0), textcoords='offset points',
                        ha='right', va='center', fontsize=7, color='C3')
    ax.errorbar([est[i] for i in keep], [ys[i] for i in keep],
                xerr=[[err[0][i] for i in keep], [err[1][i] for i in keep]],
                fmt='o', capsize=4, label='mean, 95% interval')
    ax.plot([v for i in keep for v in seeds[i]],
            [ys[i] + 0.15 for i in keep for _ in seeds[i]], '.',
            color='gray', markersize=4, label='single seeds')
    ax.set_xlim(0, right)
    ax.set_yticks(ys, [r['label'] for r in rows] if labels else [])
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first row on top
    ax.grid(axis='x', alpha=0.3)
    ax.set_xlabel(xlabel)


def paired_panel(ax, comparisons: List[Dict], scale: float = 1.0,
                 xlabel: str = '', relative: bool = False,
                 label=lambda c: f'{c["a"]} - {c["b"]}',
                 limit: Optional[float] = None) -> None:
    """Draws the paired differences ``a - b`` of ``comparisons``
    (``_stats.compare``) as a forest plot: per comparison, the mean
    difference with its paired 95% t-interval (the verdicts' basis, unlike
    the rows' own intervals), filled when the interval excludes 0, open
    for a tie, with the sign-flip p-value and the seeds on which ``a`` is
    lower written next to it; a vertical line at 0. Values are multiplied
    by ``scale``, or with ``relative`` given in percent of ``b``'s mean
    (``b_mean``). ``label(c)`` names each line. With ``limit``, the axis
    ends at +-``limit``: an interval reaching beyond is cut there (an
    arrow head) and written out in full."""
    ys = list(range(len(comparisons)))
    for y, c in zip(ys, comparisons):
        d = c['difference']
        unit = 100 / abs(c['b_mean']) if relative else scale
        est = d['estimate'] * unit
        low = d['low'] * unit if d['low'] is not None else est
        high = d['high'] * unit if d['high'] is not None else est
        tie = c['verdict'] == 'tie'
        colour = 'gray' if tie else ('C2' if est < 0 else 'C3')
        p = c.get('p_sign_flip')
        note = (f'p={p:.3g}, ' if p is not None else '') + \
            f'{c.get("a_lower_on", "?")}/{len(c["seeds"])}'
        if limit is not None and (low < -limit or high > limit):
            note = f'[{low:.3g}, {high:.3g}] cut; ' + note
            for end, marker in ((low, '<'), (high, '>')):
                if abs(end) > limit:
                    ax.plot([limit if end > 0 else -limit], [y], marker,
                            color=colour)
            # an interval wholly beyond one end shrinks to that end
            low, high, est = (min(max(v, -limit), limit)
                              for v in (low, high, est))
        ax.errorbar([est], [y], xerr=[[est - low], [high - est]], fmt='o',
                    capsize=3, color=colour,
                    mfc='white' if tie else colour)
        ax.annotate(note, (high, y), xytext=(4, 0),
                    textcoords='offset points', va='center', fontsize=6,
                    color=colour)
    ax.axvline(0.0, color='black', lw=0.8)
    ax.set_yticks(ys, [label(c) for c in comparisons], fontsize=7)
    ax.set_ylim(len(comparisons) - 0.5, -0.5)
    ax.grid(axis='x', alpha=0.3)
    if limit is not None:
        ax.set_xlim(-limit * 1.05, limit * 1.6)
    else:
        ax.margins(x=0.25)
    ax.set_xlabel(xlabel or ('a - b, % of b' if relative else 'a - b'))


class Figures:
    """What the ``plot`` callbacks of :func:`write_outputs` draw with:
    ``subplots`` as in :mod:`matplotlib.pyplot`, but on a
    :class:`matplotlib.figure.Figure` of its own (no backend is selected and
    no pyplot state is touched, also when a test imports this module)."""

    def __init__(self, figure_class):
        self._figure_class = figure_class

    def subplots(self, *args, figsize=None, **kwargs):
        fig = self._figure_class(figsize=figsize)
        return fig, fig.subplots(*args, **kwargs)
