"""Smoke runs (``--quick``) of the accuracy and speed benchmark scripts
(N-body and gravity, beta sweep, MD17, motion capture, speed), and the run
reuse that lets an interrupted benchmark continue. The MD17 and mocap runs
check that their tables are labelled with the data they used (stand-in /
proxy) and never show the paper's numbers next to them; every --quick run
writes its outputs into its temporary directory."""
import importlib.util
import json
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


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    # --quick works in tempfile.mkdtemp(): keep it inside tmp_path
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    return tmp_path


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


def test_nbody_quick_runs_both_systems(private_tmp, capsys):
    assert _script('nbody').main(['--quick']) == 0
    out = capsys.readouterr().out
    for name in ('nbody', 'gravity'):
        payload, paths = _written(out, name)
        assert [r['label'] for r in payload['rows']] and \
            all(r['params'] > 0 for r in payload['rows'])
        assert all(p.startswith(str(private_tmp)) for p in paths)
    assert 'Charged N-body (simulated stand-in)' in out
    assert '| GNN + REMUL |' in out and '| EGNN |' in out
    assert 'Gravity (simulated, GATr setup)' in out
    assert 'rotated (OOD) MSE' in out
    # EGNN is equivariant: its rotated-split error equals its test error
    egnn = [line for line in out.splitlines() if line.startswith('| EGNN')]
    cells = [c.strip() for c in egnn[-1].split('|')]
    assert cells[2] == cells[3] and cells[4] == '1.00'


def test_beta_sweep_quick(private_tmp, capsys):
    assert _script('beta_sweep').main(['--quick']) == 0
    out = capsys.readouterr().out
    assert '| beta = 0 |' in out and '| beta = 10 |' in out
    assert 'monotonically with beta' in out
    payload, _ = _written(out, 'beta_sweep')
    assert set(payload['monotone']) == {'target', 'consistency'}
    assert '| beta = 10 (consistency) |' in out
    assert all(isinstance(v, bool) for v in payload['monotone'].values())
    assert set(payload['monotone_within_noise']) == set(payload['monotone'])


def test_beta_sweep_monotone_report():
    sweep = _script('beta_sweep')

    def row(label, e, std):
        return {'label': label, 'E_prime': e, 'E_prime_std': std}

    rows = [row('0', 0.11, 0.004), row('0.01', 0.112, 0.004),
            row('1', 0.07, 0.003)]
    strict, noise, text = sweep.monotone_report('target', rows)
    assert not strict and noise and '0 -> 0.01' in text
    rows[1] = row('0.01', 0.12, 0.004)  # a rise of 0.01 > 0.004
    strict, noise, text = sweep.monotone_report('target', rows)
    assert not strict and not noise and 'NOT every rise' in text
    strict, noise, _ = sweep.monotone_report(
        'target', [row('0', 0.1, 0.0), row('1', 0.05, 0.0)])
    assert strict and noise


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
    table = runs.markdown_table(rows, 'title')
    assert '+-' in table and '| MLP plain |' in table


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
    rows = _table_rows(out)
    assert len(rows) == 2 and all(label in r for r in rows)
    assert rows[0].startswith(f'| ethanol: GNN + REMUL ({label}) |')
    assert rows[1].startswith(f'| ethanol: EGNN ({label}) |')
    # the paper's MD17 numbers are never printed next to stand-in results
    assert 'EGNO' not in out and 'Reference' not in out
    payload, _ = _written(out, 'md17')
    assert payload['sources'] == {'ethanol': 'standin'}
    assert 'paper_reference_x1e-2' not in payload
    assert [r['row'] for r in payload['rows']] == ['GNN + REMUL', 'EGNN']
    assert all(r['params'] > 0 for r in payload['rows'])
    assert payload['rows'][1]['E_prime'] < 1e-4  # EGNN is equivariant


@pytest.mark.filterwarnings('ignore:.*synthetic proxy:UserWarning')
def test_mocap_quick(private_tmp, capsys):
    assert _script('mocap').main(['--quick']) == 0
    out = capsys.readouterr().out
    label = 'synthetic proxy, not CMU motion capture'
    assert 'falling back to the ' + label in out
    assert f'### Motion capture, {label}' in out
    assert 'SO(2) about the vertical axis' in out
    rows = _table_rows(out)
    assert len(rows) == 2 and all(label in r for r in rows)
    assert rows[0].startswith(f'| GNN + REMUL (beta=1) ({label}) |')
    assert rows[1].startswith(f'| EGNN ({label}) |')
    assert 'GATr' not in out and 'Reference' not in out
    payload, _ = _written(out, 'mocap')
    assert payload['proxy'] is True
    assert payload['common']['source'] == 'proxy'
    assert 'paper_reference_x1e-2' not in payload
    assert payload['rows'][1]['E_prime'] < 1e-4  # EGNN is equivariant
