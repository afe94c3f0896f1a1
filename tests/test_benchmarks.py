"""Smoke runs (``--quick``) of the accuracy and speed benchmark scripts
(N-body, beta sweep, MD17, motion capture, speed), and the run
reuse that lets an interrupted benchmark continue. The MD17 and mocap runs
check that their tables are labelled with the data they used (stand-in /
proxy) and never show the paper's numbers next to them; every --quick run
writes its outputs into its temporary directory. The micro-benchmarks
(per-graph transform, REMUL step, backbones) write a JSON with provenance
and the markdown table rendered from it."""
import importlib.util
import json
import os
import os.path as osp
import sys
import tempfile

import pytest

BENCH = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                 'benchmarks')


def _script(name):
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)
    spec = importlib.util.spec_from_file_location(f'bench_{name}',
                                                  osp.join(BENCH,
                                                           f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wrote_paths(out):
    """The paths of the last line ``wrote A, B, ...`` a benchmark printed."""
    line = [x for x in out.splitlines() if x.startswith('wrote')][-1]
    return line[len('wrote '):].split(', ')


def _written(out, name):
    """The files a --quick run says it wrote, checked for content."""
    line = [x for x in out.splitlines() if x.startswith('wrote') and
            f'{name}.json' in x][-1]
    paths = line[len('wrote '):].split(', ')
    assert any(p.endswith(f'{name}.md') for p in paths)
    for path in paths:
        assert osp.getsize(path) > 0
        assert path.startswith(tempfile.gettempdir())  # not results/
    with open(paths[0]) as f:
        return json.load(f), paths


def test_nbody_quick_charged(private_tmp, capsys):
    nbody = _script('nbody')
    assert nbody.main(['--quick', '--jobs', '2']) == 0
    out = capsys.readouterr().out
    payload, paths = _written(out, 'nbody')
    assert all(p.startswith(str(private_tmp)) for p in paths)
    assert [r['label'] for r in payload['rows']] == [
        'GNN plain', 'GNN + augmentation', 'GNN + REMUL', 'EGNN']
    assert payload['seeds'] == [0, 1] and payload['missing'] == []
    assert payload['selection'].startswith('best_val')
    for r in payload['rows']:
        assert r['params'] > 0
        ci = r['mse_ci']
        assert ci['n'] == 2 and ci['low'] <= ci['estimate'] <= ci['high']
    assert payload['rows'][-1]['E_prime_paper'] < 1e-4  # EGNN
    pairs = {(c['a'], c['b']) for c in payload['comparisons']}
    assert pairs == {('GNN + REMUL', 'GNN + augmentation'),
                     ('GNN + REMUL', 'GNN plain'), ('GNN + REMUL', 'EGNN')}
    assert 'Charged N-body (simulated stand-in)' in out
    assert '| GNN + REMUL - EGNN | test MSE x 1e-3 |' in out
    assert 'gravity' not in out.lower()  # benchmarks/gravity.py
    with open(paths[1]) as f:
        assert f.read() == nbody.markdown(payload)


def test_nbody_segnn_row_uses_the_headline_search_rate():
    # the 60-epoch table trains SEGNN at the rate the headline's search
    # chose on the validation set, not at the task's default
    nbody = _script('nbody')
    segnn = [c for c in nbody.CONFIGS if c['model'] == 'segnn']
    assert [c['lr'] for c in segnn] == [nbody.SEGNN_LR]
    with open(osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                       'benchmarks', 'results', 'headline.json')) as f:
        search = _script('headline').searches_of(json.load(f))['SEGNN']
    assert search['chosen_lr'] == pytest.approx(nbody.SEGNN_LR)
    assert search['chosen_lr'] != pytest.approx(5e-4)  # the task default


def test_beta_sweep_quick(private_tmp, capsys):
    assert _script('beta_sweep').main(['--quick', '--jobs', '2']) == 0
    out = capsys.readouterr().out
    assert '| beta = 0 |' in out and '| beta = 10 |' in out
    assert 'monotonically with beta' in out
    payload, _ = _written(out, 'beta_sweep')
    assert payload['seeds'] == [0, 1] and payload['missing'] == []
    assert payload['selection'].startswith('best_val')
    assert set(payload['monotone']) == {'target', 'consistency'}
    assert '| beta = 10 (consistency) |' in out
    assert all(isinstance(v, bool) for v in payload['monotone'].values())
    assert set(payload['monotone_within_noise']) == set(payload['monotone'])
    for r in payload['rows']:
        for key in ('mse', 'E_prime_paper', 'E_prime'):
            ci = r[key + '_ci']
            assert ci['n'] == 2 and ci['low'] <= ci['estimate'] <= ci['high']
    # every row against plain training, on MSE and the paper's E'
    pairs = {(c['a'], c['b'], c['key']) for c in payload['comparisons']}
    others = [r['label'] for r in payload['rows'] if r['label'] != 'beta = 0']
    assert pairs == {(a, 'beta = 0', k) for a in others
                     for k in ('mse', 'E_prime_paper')}
    assert '| beta = 10 - beta = 0 | test MSE x 1e-3 |' in out
    # the figure can be drawn again from the JSON alone
    json_path = [p for p in _written(out, 'beta_sweep')[1]
                 if p.endswith('.json')][0]
    png = json_path[:-len('.json')] + '.png'
    os.remove(png)
    assert _script('beta_sweep').main(['--replot', json_path]) == 0
    assert osp.getsize(png) > 0


def test_beta_sweep_rows_and_usage_errors():
    sweep = _script('beta_sweep')
    labels = [c['label'] for c in sweep.all_configs((0, 1, 10),
                                                    ('target', 'consistency'),
                                                    (0.01,))]
    assert labels == ['beta = 0', 'beta = 1', 'beta = 10',
                      'beta = 1 (consistency)', 'beta = 10 (consistency)',
                      "target E' <= 0.01 (consistency)"]
    for argv in (['--betas', '-1'], ['--epsilons', '0'],
                 ['--only', 'no such row']):
        with pytest.raises(SystemExit):
            sweep.main(argv + ['--report-only'])


def test_beta_sweep_monotone_report():
    sweep = _script('beta_sweep')

    def row(label, values):
        return {'label': label, 'seeds': list(range(len(values))),
                'runs': [{'E_prime_paper': v} for v in values],
                'E_prime_paper': sum(values) / len(values)}

    # a rise of 0.002 on average, but 0.01 up or down from seed to seed: tie
    rows = [row('0', [0.11, 0.10, 0.12, 0.11]),
            row('0.01', [0.124, 0.094, 0.13, 0.1]),
            row('1', [0.07, 0.071, 0.069, 0.07])]
    strict, noise, text, rises = sweep.monotone_report('target', rows)
    assert not strict and noise and '0.01 -> 0' not in text
    assert '0 -> 0.01' in text and 'tie' in text
    assert [(c['a'], c['b']) for c in rises] == [('0.01', '0')]
    # a rise on every seed: not a tie
    rows[1] = row('0.01', [0.12, 0.11, 0.13, 0.12])
    strict, noise, text, rises = sweep.monotone_report('target', rows)
    assert not strict and not noise and 'NOT every rise' in text
    strict, noise, _, rises = sweep.monotone_report(
        'target', [row('0', [0.1, 0.1]), row('1', [0.05, 0.06])])
    assert strict and noise and rises == []


def test_speed_quick(private_tmp, capsys):
    assert _script('speed').main(['--quick']) == 0
    out = capsys.readouterr().out
    payload, _ = _written(out, 'speed')
    segnn = [r for r in payload['rows'] if r['model'] == 'SEGNN']
    assert len(segnn) == 2 and all(r['infer_vs_SEGNN'] == 1.0 and
                                   r['train_vs_SEGNN'] == 1.0 for r in segnn)
    for model in ('MLP', 'GNN', 'Transformer', 'EGNN', 'SEGNN'):
        assert f'| {model} |' in out
    assert 'x SEGNN' in out and 'Goals:' in out
    # the code version and the machine, as in the other results JSONs
    assert set(payload['code']) >= {'commit', 'package_tree'}
    assert payload['machine_description'] in out


@pytest.fixture
def pinned_code(monkeypatch):
    """The code version every run records and ``_runs`` compares with,
    pinned (others edit the package while the tests run); set
    ``pinned_code['commit']`` to change it."""
    import torch_geometric_remul.train.loop as loop
    version = {'commit': 'a' * 40, 'dirty': False, 'package_dirty': False,
               'package_diff_sha256': None}
    current = lambda: dict(version)  # noqa: E731
    monkeypatch.setattr(loop, 'code_version', current)
    monkeypatch.delenv('REMUL_REUSE_OTHER_CODE', raising=False)
    return version, current


def test_run_all_reuses_only_identical_runs(tmp_path, pinned_code,
                                            monkeypatch):
    runs = _script('_runs')
    monkeypatch.setattr(runs, 'code_version', pinned_code[1])
    common = dict(runs.QUICK, task='nbody', epochs=1,
                  data_root=str(tmp_path / 'data'))
    cfg = [dict(label='GNN plain', model='gnn', loss='plain')]
    log = []
    first = runs.run_all(cfg, [0], common, str(tmp_path / 'runs'),
                         log=log.append)
    assert 'reused' not in log[-1]
    # the data moved: the run is still the same run
    moved = dict(common, data_root=str(tmp_path / 'elsewhere'))
    again = runs.run_all(cfg, [0], moved, str(tmp_path / 'runs'),
                         log=log.append)
    assert 'reused' in log[-1]
    assert again[0]['mse'] == first[0]['mse']
    assert again[0]['params'] == first[0]['params'] > 0
    # a setting that changes the result: trained again
    longer = dict(common, epochs=2)
    runs.run_all(cfg, [0], longer, str(tmp_path / 'runs'), log=log.append)
    assert 'reused' not in log[-1]


def test_run_all_resumes_an_interrupted_run(tmp_path, pinned_code,
                                           monkeypatch):
    """A run cut off after its first epoch goes on from its checkpoint
    (same configuration and code) and ends where an uninterrupted run
    ends; a checkpoint of other code is trained anew."""
    from tests.train._helpers import interrupt_in_epoch
    from torch_geometric_remul.train import TrainConfig, train
    runs = _script('_runs')
    version, current = pinned_code
    monkeypatch.setattr(runs, 'code_version', current)
    common = dict(runs.QUICK, task='nbody', epochs=3,
                  data_root=str(tmp_path / 'data'))
    cfg = [dict(label='GNN plain', model='gnn', loss='plain')]
    whole = runs.run_all(cfg, [0], common, str(tmp_path / 'whole'),
                         log=lambda s: None)
    values = runs._values(common, dict(model='gnn', loss='plain'), 0,
                          'GNN plain', str(tmp_path / 'cut'))
    undo = interrupt_in_epoch(monkeypatch, 2)
    assert train(TrainConfig(**values), progress=False,
                 log=lambda s: None).interrupted
    undo()
    assert runs.resumable(values, current()) == 1
    log = []
    cut = runs.run_all(cfg, [0], common, str(tmp_path / 'cut'),
                       log=log.append)
    assert '(resumed from epoch 1)' in log[-1]
    assert cut[0]['mse'] == whole[0]['mse']
    assert cut[0]['best_epochs'] == whole[0]['best_epochs']
    # never for another configuration or other code
    values2 = dict(values, run_dir=str(tmp_path / 'other'))
    undo = interrupt_in_epoch(monkeypatch, 2)
    train(TrainConfig(**values2), progress=False, log=lambda s: None)
    undo()
    assert runs.resumable(values2, current()) == 1
    assert runs.resumable(dict(values2, epochs=4), current()) is None
    version['commit'] = 'b' * 40
    assert runs.resumable(values2, current()) is None


def test_run_all_reuses_a_diverged_run(tmp_path, pinned_code,
                                      monkeypatch):
    """A finished run that never reached a finite validation loss (no
    best-validation model; its test metrics are the last epoch's) is
    reused like any finished run, not trained again on every call, and
    a search ranks it last."""
    import math
    runs = _script('_runs')
    monkeypatch.setattr(runs, 'code_version', pinned_code[1])
    common = dict(runs.QUICK, task='nbody', epochs=1,
                  data_root=str(tmp_path / 'data'))
    cfg = [dict(label='EGNN (lr 0.1)', model='egnn', loss='plain', lr=0.1)]
    work = str(tmp_path / 'runs')
    runs.run_all(cfg, [0], common, work, log=lambda s: None)
    run_dir = osp.join(work, 'EGNN_(lr_0.1)-seed0')
    path = osp.join(run_dir, 'results.json')
    saved = json.load(open(path))
    # what train() writes when every validation was non-finite
    saved.update(selection='last', best_epoch=None, best_val_mse=None)
    saved['test']['mse'] = math.inf
    json.dump(saved, open(path, 'w'))
    os.remove(osp.join(run_dir, 'best.pt'))
    assert runs.diverged(saved)
    log = []
    rows = runs.run_all(cfg, [0], common, work, log=log.append)
    assert 'reused' in log[-1] and rows[0]['mse'] == math.inf
    assert rows[0]['best_epochs'] == [None]


def test_run_all_refuses_runs_of_other_code(tmp_path, pinned_code,
                                            monkeypatch):
    runs = _script('_runs')
    version, current = pinned_code
    monkeypatch.setattr(runs, 'code_version', current)
    common = dict(runs.QUICK, task='nbody', epochs=1,
                  data_root=str(tmp_path / 'data'))
    cfg = [dict(label='GNN plain', model='gnn', loss='plain')]
    work = str(tmp_path / 'runs')
    log = []
    first = runs.run_all(cfg, [0], common, work, log=log.append)
    assert first[0]['selection'] == 'best_val'
    assert first[0]['code_versions'] == [current()]
    assert first[0]['best_epochs'] == [1] and first[0]['best_epoch'] == 1
    runs.run_all(cfg, [0], common, work, log=log.append)
    assert 'reused' in log[-1]
    # the code moved on: the finished run is stale and trained again
    version['commit'] = 'b' * 40
    runs.run_all(cfg, [0], common, work, log=log.append)
    assert 'reused' not in log[-1]
    # ... unless the user asks to accept runs of another commit
    version['commit'] = 'c' * 40
    monkeypatch.setenv('REMUL_REUSE_OTHER_CODE', '1')
    again = runs.run_all(cfg, [0], common, work, log=log.append)
    assert 'reused' in log[-1]
    assert again[0]['code_versions'][0]['commit'] == 'b' * 40
    monkeypatch.delenv('REMUL_REUSE_OTHER_CODE')
    runs.run_all(cfg, [0], common, work, log=log.append,
                 reuse_other_code=True)
    assert 'reused' in log[-1]
    # the same commit with other uncommitted edits is other code too
    version.update(commit='b' * 40, package_dirty=True,
                   package_diff_sha256='1' * 64)
    runs.run_all(cfg, [0], common, work, log=log.append)
    assert 'reused' not in log[-1]
    # a run without provenance (written before it was recorded) is stale
    path = osp.join(work, 'GNN_plain-seed0', 'results.json')
    saved = json.load(open(path))
    del saved['provenance']
    json.dump(saved, open(path, 'w'))
    runs.run_all(cfg, [0], common, work, log=log.append,
                 reuse_other_code=True)
    assert 'reused' not in log[-1]
    payload = runs.run_provenance()
    assert set(payload) >= {'code', 'versions', 'machine', 'selection'}


def test_run_all_evaluate_hook_and_seed_statistics(tmp_path):
    runs = _script('_runs')
    common = dict(runs.QUICK, task='nbody', epochs=1,
                  data_root=str(tmp_path / 'data'))
    seen = []

    def evaluate(config, spec, model):
        seen.append((config.seed, model.training))
        return {'extra': float(config.seed)}

    rows = runs.run_all([dict(label='MLP plain', model='mlp',
                              loss='plain')], [0, 1], common,
                        str(tmp_path / 'runs'), log=lambda s: None,
                        evaluate=evaluate)
    assert seen == [(0, False), (1, False)]
    row = rows[0]
    assert row['extra'] == 0.5 and row['extra_std'] == pytest.approx(
        2 ** -0.5)
    mses = [r['mse'] for r in row['runs']]
    assert row['mse'] == pytest.approx(sum(mses) / 2)


def _table_rows(out):
    return [line for line in out.splitlines() if line.startswith('| ')
            and not line.startswith('| molecule') and not
            line.startswith('| model')]


@pytest.mark.filterwarnings('ignore:.*stand-in for MD17:UserWarning')
def test_md17_quick(private_tmp, capsys):
    assert _script('md17').main(['--quick']) == 0
    out = capsys.readouterr().out
    label = 'RDKit MMFF94 stand-in, not MD17'
    assert 'falling back to the ' + label in out
    assert f'### MD17 molecules, {label}' in out
    rows = [r for r in _table_rows(out) if r.startswith('| ethanol:')]
    assert len(rows) == 2 and all(label in r for r in rows)
    assert rows[0].startswith(f'| ethanol: GNN + REMUL ({label}) |')
    assert rows[1].startswith(f'| ethanol: EGNN ({label}) |')
    # the paper's MD17 numbers are never printed next to stand-in results
    assert 'EGNO' not in out and 'Reference' not in out
    payload, paths = _written(out, 'md17')
    assert payload['sources'] == {'ethanol': 'standin'}
    assert 'paper_reference_x1e-2' not in payload
    assert payload['seeds'] == [0, 1] and payload['missing'] == []
    assert payload['selection'].startswith('best_val')
    assert [r['row'] for r in payload['rows']] == ['GNN + REMUL', 'EGNN']
    assert all(r['params'] > 0 for r in payload['rows'])
    assert payload['rows'][1]['E_prime'] < 1e-4  # EGNN is equivariant
    assert all(r['mse_ci']['n'] == 2 for r in payload['rows'])
    assert [(c['molecule'], c['a'], c['b'])
            for c in payload['comparisons']] == [('ethanol', 'GNN + REMUL',
                                                  'EGNN')]
    assert '| ethanol | GNN + REMUL - EGNN |' in out
    with open(paths[1]) as f:
        assert f.read() == _script('md17').markdown(payload)


@pytest.mark.filterwarnings('ignore:.*synthetic proxy:UserWarning')
def test_mocap_quick(private_tmp, capsys):
    assert _script('mocap').main(['--quick']) == 0
    out = capsys.readouterr().out
    label = 'synthetic proxy, not CMU motion capture'
    assert 'falling back to the ' + label in out
    assert f'### Motion capture, {label}' in out
    assert 'SO(2) about the vertical axis' in out
    assert 'Split by clip' in out
    rows = [r for r in _table_rows(out) if label in r]
    assert len(rows) == 2
    assert rows[0].startswith(f'| GNN + REMUL (beta=1) ({label}) |')
    assert rows[1].startswith(f'| EGNN ({label}) |')
    assert 'GATr' not in out and 'Reference' not in out
    payload, paths = _written(out, 'mocap')
    assert payload['proxy'] is True and payload['seeds'] == [0, 1]
    assert payload['common']['source'] == 'proxy'
    assert payload['selection'].startswith('best_val')
    assert 'paper_reference_x1e-2' not in payload
    egnn = payload['rows'][1]
    assert egnn['E_prime'] < 1e-4  # EGNN is equivariant
    for r in payload['rows']:
        ci = r['mse_ci']
        assert ci['n'] == 2 and ci['low'] <= ci['estimate'] <= ci['high']
    pairs = {(c['a'], c['b'], c['key']) for c in payload['comparisons']}
    assert pairs == {('GNN + REMUL (beta=1)', 'EGNN', key)
                     for key in ('mse', 'E_prime_paper')}
    assert '| GNN + REMUL (beta=1) - EGNN | test MSE x 1e-2 |' in out
    assert out.count('Code of every run: ') == 1
    with open(paths[1]) as f:
        assert f.read() == _script('mocap').markdown(payload)


# The micro-benchmarks (transforms.py, loss.py, models.py): each writes
# <name>.json and a markdown table made from that JSON alone.

#: script -> the name of its output files
MICRO = {'transforms': 'transforms', 'loss': 'step', 'models': 'backbones'}


def _results_state():
    """The micro-benchmarks' files in benchmarks/results (modification
    times), which a --quick run must leave alone."""
    state = {}
    for name in MICRO.values():
        for ext in ('json', 'md'):
            path = osp.join(BENCH, 'results', f'{name}.{ext}')
            state[path] = os.stat(path).st_mtime_ns if osp.exists(path) \
                else None
    return state


def _micro_written(module, out, name, directory):
    """The payload of a micro-benchmark's --quick run, checked: written
    into ``directory``, with its provenance, and its markdown file is
    ``markdown(json)``."""
    payload, paths = _written(out, name)
    assert paths[:2] == [osp.join(str(directory), f'{name}.json'),
                         osp.join(str(directory), f'{name}.md')]
    assert set(payload) >= {'code', 'versions', 'machine', 'command',
                            'machine_description', 'repeats'}
    assert set(payload['code']) >= {'commit', 'dirty'}
    assert set(payload['versions']) == {'torch', 'torch_geometric',
                                        'torch_geometric_remul'}
    assert payload['machine']['cpu_count'] >= 1
    assert payload['benchmark'] == name and payload['quick'] is True
    assert payload['command'].startswith(
        f'python benchmarks/{module.__name__[len("bench_"):]}.py --quick')
    with open(paths[1]) as f:
        table = f.read()
    assert table == module.markdown(payload)
    assert f'on {payload["machine_description"]}' in table
    assert f'`{payload["command"]}`' in table
    assert table in out
    return payload, table


def _timed_ok(entry, repeats):
    samples = entry['samples_ms']
    assert len(samples) == repeats and all(s > 0 for s in samples)
    assert entry['median_ms'] == sorted(samples)[len(samples) // 2]


def test_transforms_quick_writes_json_and_table(private_tmp, capsys):
    before = _results_state()
    script = _script('transforms')
    copy = private_tmp / 'copy.json'
    assert script.main(['--quick', '--json', str(copy)]) == 0
    out = capsys.readouterr().out
    work = [p for p in private_tmp.iterdir() if p.is_dir()]
    assert len(work) == 1  # the fresh temporary directory
    payload, table = _micro_written(script, out, 'transforms', work[0])
    assert json.loads(copy.read_text()) == payload
    assert [r['key'] for r in payload['rigid']] == [
        'floor', 'apply', 'apply1', 'ours', 'native', 'naive', 'pyg']
    for r in payload['rigid'][:-1] + payload['centring'] + \
            payload['varying']['rows']:
        _timed_ok(r, payload['repeats'])
    floor = payload['rigid'][0]['median_ms']
    for r in payload['rigid']:
        assert r['vs_floor'] == pytest.approx(r['median_ms'] / floor)
    ratios = payload['ratios']
    assert ratios['bs_over_a'] == pytest.approx(
        payload['rigid'][3]['median_ms'] / floor)
    assert payload['workload'] == {'graphs': 200, 'nodes': 25,
                                   'total_nodes': 5000}
    assert payload['goals'] is None  # not checked on tiny sizes
    assert '| rigid transform | time (ms) | / floor |' in table
    assert '| (a) clone pos + vel (floor) |' in table
    assert _results_state() == before


@pytest.mark.slow  # Inductor compiles four steps (~30-60 s on 2 cores)
def test_loss_compile_rows(private_tmp, capsys):
    script = _script('loss')
    out_dir = private_tmp / 'out'
    assert script.main(['--quick', '--models', 'gnn', '--compile', 'gnn',
                        '--out', str(out_dir)]) == 0
    out = capsys.readouterr().out
    payload, table = _micro_written(script, out, 'step', out_dir)
    (compiled, ) = payload['compiled']
    rows = {r['key']: r for r in compiled['rows']}
    assert list(rows) == ['plain/eager', 'plain/model', 'plain/step',
                          'plain2x/eager', 'plain2x/step', 'fused/eager',
                          'fused/model', 'fused/step']
    for key, r in rows.items():
        _timed_ok(r, payload['repeats'])
        assert (r['compile_s'] is None) == key.endswith('/eager')
    q = compiled['ratios']
    assert q['fused_step_over_plain_step'] == pytest.approx(
        rows['fused/step']['median_ms'] / rows['plain/step']['median_ms'])
    assert q['fused_step_over_plain2x_step'] == pytest.approx(
        rows['fused/step']['median_ms'] / rows['plain2x/step']['median_ms'])
    assert '| GNN | REMUL fused | compiled step |' in table
    assert '| GNN | plain, 2x graphs | compiled step |' in table
    with pytest.raises(SystemExit):
        script.main(['--quick', '--compile', 'nope'])


@pytest.mark.slow  # traces a whole step twice (~10 s on 2 cores)
def test_compile_status_explains_a_step_of_one_graph(private_tmp, capsys):
    """compile_status.py --explain-only: the fused REMUL step (README
    roles, native paths) is one graph with no break, and fullgraph=True
    traces it; --json writes the same figures."""
    script = _script('compile_status')
    path = private_tmp / 'status.json'
    script.main(['--explain-only', '--graphs', '4', '--native', '--json',
                 str(path)])
    out = capsys.readouterr().out
    assert '1 graph(s), 0 graph breaks' in out
    assert 'torch.compile(step, fullgraph=True): yes' in out
    status = json.loads(path.read_text())
    assert status['graph_break_count'] == 0 and status['fused']
    assert status['break_reasons'] == [] and status['fullgraph'] == 'yes'


def test_loss_quick_writes_step_table(private_tmp, capsys):
    before = _results_state()
    script = _script('loss')
    out_dir = private_tmp / 'out'
    assert script.main(['--quick', '--out', str(out_dir)]) == 0
    out = capsys.readouterr().out
    payload, table = _micro_written(script, out, 'step', out_dir)
    assert sorted(p.name for p in out_dir.iterdir()) == ['step.json',
                                                          'step.md']
    assert [m['model'] for m in payload['models']] == ['gnn', 'transformer']
    assert payload['workload']['graphs'] == 8
    for m in payload['models']:
        cands = {c['key']: c for c in m['candidates']}
        assert list(cands) == ['plain', 'remul', 'fused', 'augment2',
                               'augment1']
        # graph copies through the model: REMUL's and the compute-matched
        # augmentation's are equal
        assert [c['copies'] for c in cands.values()] == [1, 2, 2, 2, 1]
        plain = cands['plain']['median_ms']
        for key, c in cands.items():
            _timed_ok(c, payload['repeats'])
            assert c['vs_plain'] == pytest.approx(c['median_ms'] / plain)
            if key != 'plain':
                assert payload['ratios'][f'{m["model"]}/{key}_over_plain'] \
                    == c['vs_plain']
        assert f'| {m["label"]} | augment x2 (compute-matched) | 2 | 1 |' \
            in table
    assert payload['goal']['met'] is None  # not checked in --quick
    assert '| model | step | graph copies per graph | forward calls | ' \
        'time (ms) | / plain |' in table
    assert _results_state() == before


def test_models_quick_writes_backbones_table(private_tmp, capsys):
    before = _results_state()
    script = _script('models')
    copy = private_tmp / 'copy.json'
    assert script.main(['--quick', '--json', str(copy)]) == 0
    out = capsys.readouterr().out
    work = [p for p in private_tmp.iterdir() if p.is_dir()]
    assert len(work) == 1
    payload, table = _micro_written(script, out, 'backbones', work[0])
    assert json.loads(copy.read_text()) == payload
    workloads = {w['key']: w for w in payload['workloads']}
    assert list(workloads) == ['nbody', 'md17_sized', 'md17_task']
    assert workloads['md17_sized']['label'] == \
        '21 random nodes, radius 2.5 (MD17-sized, not molecules)'
    assert workloads['md17_task']['skipped'] == 'not run in --quick'
    assert 'rows' not in workloads['md17_task']
    models = [label for label, _, _ in script.MODELS]
    for key in ('nbody', 'md17_sized'):
        w = workloads[key]
        assert w['graphs'] == 4 and w['edges'] > 0
        assert [r['model'] for r in w['rows']] == models
        for r in w['rows']:
            assert r['params'] > 0
            _timed_ok(r['forward'], payload['repeats'])
            _timed_ok(r['step'], payload['repeats'])
        segnn = w['rows'][models.index('SEGNN')]
        assert segnn['forward_vs_SEGNN'] == segnn['step_vs_SEGNN'] == 1.0
        gnn = w['rows'][models.index('GNN')]
        assert gnn['step_vs_EGNN'] == pytest.approx(
            gnn['step']['median_ms'] /
            w['rows'][models.index('EGNN')]['step']['median_ms'])
    assert '(MD17-sized, not molecules)**: 4 graphs x 21 nodes' in table
    assert 'MMFF94 stand-in, not MD17)**: skipped (not run in --quick)' in \
        table
    assert _results_state() == before


def test_models_task_graphs_skipped_without_rdkit(tmp_path, monkeypatch):
    script = _script('models')
    # no stand-in under this data root, and RDKit cannot be imported
    monkeypatch.setitem(sys.modules, 'rdkit', None)
    with pytest.raises(script.Skipped, match='RDKit is not installed'):
        script.md17_task(4, str(tmp_path / 'data'))
    assert not (tmp_path / 'data').exists()  # nothing generated


@pytest.mark.parametrize('name', sorted(MICRO))
def test_micro_quick_never_writes_results(name):
    script = _script(name)
    with pytest.raises(SystemExit):
        script.main(['--quick', '--out', osp.join(BENCH, 'results')])


def test_optimizer_quick(private_tmp, capsys):
    """``benchmarks/optimizer.py --quick``: both optimisers timed on every
    N-body step (no rMD17 files given: no rmd17 rows), the table rendered
    from the JSON."""
    script = _script('optimizer')
    assert script.main(['--quick']) == 0
    payload, paths = _written(capsys.readouterr().out, 'optimizer')
    assert all(p.startswith(str(private_tmp)) for p in paths)
    assert [(r['workload'], r['label']) for r in payload['rows']] == [
        ('nbody', 'GNN + REMUL'), ('nbody', 'Transformer + REMUL'),
        ('nbody', 'EGNN plain')]
    for r in payload['rows']:
        assert r['default_ms'] > 0 and r['fused_ms'] > 0 and r['params'] > 0
        assert r['ratio'] == r['default_ms'] / r['fused_ms']
    with open(paths[1]) as f:
        assert f.read() == script.markdown(payload)
