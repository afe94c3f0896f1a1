"""The statistics of the benchmark tables (``benchmarks/_stats.py``: t
intervals over seeds, paired bootstrap intervals, verdicts, formatting) and
a ``--quick`` run of ``benchmarks/data_efficiency.py``."""
import builtins
import json
import os.path as osp
import sys
import tempfile

import numpy as np
import pytest

from tests.test_benchmarks import BENCH, _script

if BENCH not in sys.path:
    sys.path.insert(0, BENCH)
import _stats  # noqa: E402


def test_mean_interval_known_values():
    # mean 2, sample std 1, n = 4: half width t_{0.975,3} * 1 / 2
    iv = _stats.mean_interval([1.0, 2.0, 3.0, 2.0])
    x = np.array([1.0, 2.0, 3.0, 2.0])
    half = 3.182446305284263 * x.std(ddof=1) / 2
    assert iv.estimate == pytest.approx(2.0, abs=1e-12)
    assert (iv.low, iv.high) == pytest.approx((2 - half, 2 + half),
                                              rel=1e-9)
    assert iv.n == 4 and iv.contains(2.0) and not iv.contains(10.0)
    # constant values: a zero-width interval
    flat = _stats.mean_interval([0.5] * 5)
    assert flat.low == flat.high == flat.estimate == 0.5
    # one seed: no interval, said so in the table
    one = _stats.mean_interval([0.0113])
    assert not one.defined and one.format(4) == '0.0113 (n=1)'
    assert not one.contains(0.0113)


def test_format_and_as_dict():
    iv = _stats.Interval(0.01134, 0.01012, 0.01249, 5)
    assert iv.format(4) == '0.0113 [0.0101, 0.0125]'
    assert iv.format(2, scale=1e3) == '11.34 [10.12, 12.49]'
    d = iv.as_dict()
    assert d == dict(estimate=0.01134, low=0.01012, high=0.01249, n=5,
                     confidence=0.95, method='t')
    assert json.loads(json.dumps(d)) == d


def test_t_table_without_scipy(monkeypatch):
    from scipy import stats
    expected = [stats.t.ppf(0.975, df) for df in (1, 4, 29, 30)]
    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name == 'scipy' or name.startswith('scipy.'):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', no_scipy)
    got = [_stats.t_quantile(df) for df in (1, 4, 29, 30)]
    assert got == pytest.approx(expected, abs=1e-4)
    # beyond the table: conservative (never narrower than the true one)
    for df in (31, 45, 100, 1000):
        assert stats.t.ppf(0.975, df) - 1e-4 <= _stats.t_quantile(df) \
            <= stats.t.ppf(0.975, df) + 0.025
    with pytest.raises(ValueError, match='confidence=0.95'):
        _stats.t_quantile(5, 0.9)


def test_paired_bootstrap_constant_difference_zero_width():
    a = [1.0, 2.5, -3.0, 0.7, 4.0]
    b = [x - 0.25 for x in a]
    diff = _stats.paired_bootstrap(a, b)
    assert diff.estimate == pytest.approx(0.25, abs=1e-12)
    assert diff.high - diff.low == pytest.approx(0.0, abs=1e-12)
    assert diff.low == pytest.approx(0.25, abs=1e-12)
    assert _stats.verdict(diff, 'REMUL', 'aug') == 'aug lower'
    assert _stats.verdict(_stats.paired_bootstrap(b, a), 'REMUL',
                          'aug') == 'REMUL lower'
    # pairing matters: the methods' spread across seeds cancels, so the
    # unpaired intervals overlap while the paired one excludes 0
    ia, ib = _stats.mean_interval(a), _stats.mean_interval(b)
    assert ia.low < ib.high


def test_paired_bootstrap_symmetric_noise_is_tie_and_reproducible():
    noise = np.random.default_rng(1).normal(0.0, 0.01, size=8)
    a = 1.0 + np.concatenate([noise, -noise])  # symmetric around 0
    b = np.ones(16)
    diff = _stats.paired_bootstrap(a, b, seed=3)
    assert abs(diff.estimate) < 1e-12
    assert diff.low < 0 < diff.high
    assert _stats.verdict(diff) == 'tie'
    assert _stats.paired_bootstrap(a, b, seed=3) == diff
    assert _stats.paired_bootstrap(a, b, seed=4) != diff


def test_intervals_cover_the_true_mean_in_simulation():
    rng = np.random.default_rng(0)
    trials, n, mu = 400, 8, 0.3
    t_hits = boot_hits = 0
    for i in range(trials):
        x = rng.normal(mu, 1.0, size=n)
        t_hits += _stats.mean_interval(x).contains(mu)
        boot_hits += _stats.paired_bootstrap(x, np.zeros(n),
                                             num_resamples=1000,
                                             seed=i).contains(mu)
    # nominal 95%; the percentile bootstrap under-covers somewhat for n = 8
    assert 0.92 <= t_hits / trials <= 0.98
    assert 0.84 <= boot_hits / trials <= 0.97


def test_bad_inputs():
    with pytest.raises(ValueError, match="'values'"):
        _stats.mean_interval([])
    with pytest.raises(ValueError, match="'values' must hold finite"):
        _stats.mean_interval([1.0, float('nan')])
    with pytest.raises(ValueError, match='paired'):
        _stats.paired_bootstrap([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="'num_resamples'"):
        _stats.paired_bootstrap([1.0, 2.0], [1.0, 2.0], num_resamples=0)
    with pytest.raises(ValueError, match="'confidence'"):
        _stats.mean_interval([1.0, 2.0], confidence=1.5)
    one = _stats.paired_bootstrap([1.0], [0.0])
    assert not one.defined and _stats.verdict(one) == 'undetermined'


def test_compare_pairs_rows_by_seed():
    def row(label, seeds, values):
        return {'label': label, 'seeds': seeds,
                'runs': [{'mse': v} for v in values]}

    a = row('REMUL', [0, 1, 2, 3], [1.0, 2.0, 3.0, 4.0])
    b = row('aug', [3, 2, 1], [4.5, 3.5, 2.5])  # other order, one missing
    x, y, seeds = _stats.paired_by_seed(a, b)
    assert seeds == [1, 2, 3] and x == [2.0, 3.0, 4.0] and \
        y == [2.5, 3.5, 4.5]
    out = _stats.compare(a, b)
    assert out['seeds'] == [1, 2, 3]
    assert out['difference']['estimate'] == pytest.approx(-0.5)
    assert out['verdict'] == 'REMUL lower'
    assert _stats.compare(a, b, names=('R', 'A'))['verdict'] == 'R lower'
    with pytest.raises(ValueError, match='share no seed'):
        _stats.compare(a, row('x', [9], [1.0]))


def _row(label, seeds, values):
    return {'label': label, 'seeds': seeds,
            'runs': [{'mse': v} for v in values]}


def test_one_diverged_run_is_a_tie_in_the_mean_but_not_in_the_count():
    remul = _row('REMUL', [0, 1, 2, 3, 4], [14.0, 13.5, 13.8, 14.2, 13.9])
    egnn = _row('EGNN', [0, 1, 2, 3, 4], [11.8, 10.3, 803.5, 11.5, 10.5])
    out = _stats.compare(remul, egnn)
    assert out['verdict'] == 'tie'  # the diverged seed widens the interval
    assert out['a_lower_on'] == 1  # ... but REMUL is lower on one seed
    assert _stats.far_seeds(egnn) == [(2, 803.5)]
    assert _stats.far_seeds(remul) == []
    assert _stats.far_seeds(_row('two', [0, 1], [1.0, 100.0])) == []
    note = _stats.far_seed_lines([remul, egnn], 1.0, 'units')
    assert len(note) == 2 and 'EGNN: seed(s) 2 far above' in note[1]
    assert 'median 11.5 units' in note[1] and 'REMUL' not in note[1]
    assert _stats.far_seed_lines([remul], 1.0, 'units') == []


def test_comparison_table_and_missing_lines():
    a = _row('REMUL', [0, 1, 2], [1.0, 2.0, 3.0])
    b = _row('aug', [0, 1, 2], [2.0, 3.0, 2.5])
    comps = [dict(_stats.compare(a, b), num_train=1000)]
    lines = _stats.comparison_table(comps, {'mse': ('MSE x 1e-3', 1e3)},
                                    first=('systems', 'num_train'))
    assert lines[1] == _stats.PAIRED_NOTE
    assert lines[3] == ('| systems | difference | metric | estimate '
                        '[interval] | verdict | a lower on |')
    d = comps[0]['difference']
    assert lines[5] == (f'| 1,000 | REMUL - aug | MSE x 1e-3 | '
                        f'{_stats.format_interval(d, 3, 1e3)} | '
                        f'{comps[0]["verdict"]} | 2/3 |')
    assert _stats.comparison_table([], {}) == []
    assert _stats.missing_lines([]) == []
    assert _stats.missing_lines(['EGNN', 'SEGNN'])[1].endswith(
        'EGNN, SEGNN.')


def test_epochs_match_steps():
    de = _script('data_efficiency')
    assert de.epochs_for(3000, 60, 300) == 60
    assert de.epochs_for(10000, 60, 300) == 60
    assert de.epochs_for(1000, 60, 300) == 180
    assert de.epochs_for(100, 60, 300) == 300
    labels = [c['label'] for c in de.configs_for('gnn')]
    assert labels == ['GNN plain', 'GNN + augmentation', 'GNN + REMUL',
                      'EGNN']


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    return tmp_path


@pytest.mark.parametrize('tasks', [
    ['nbody'], pytest.param(['nbody', 'gravity'], marks=pytest.mark.slow)])
def test_data_efficiency_quick(private_tmp, capsys, tasks):
    assert _script('data_efficiency').main(['--quick', '--tasks',
                                            *tasks]) == 0
    out = capsys.readouterr().out
    line = [x for x in out.splitlines() if x.startswith('wrote')][-1]
    paths = line[len('wrote '):].split(', ')
    assert [osp.basename(p) for p in paths][:2] == [
        'data_efficiency.json', 'data_efficiency.md']
    for path in paths:
        assert path.startswith(str(private_tmp)) and osp.getsize(path) > 0
    with open(paths[0]) as f:
        payload = json.load(f)
    assert payload['seeds'] == [0, 1] and payload['sizes'] == [16, 32]
    assert 'validation' in payload['selection_rule']
    assert payload['selections_recorded'] == ['best_val']
    assert {'code', 'versions', 'machine', 'selection'} <= set(payload)
    assert set(payload['tasks']) == set(tasks)
    for task, part in payload['tasks'].items():
        assert {r['method'] for r in part['rows']} == {
            'plain', 'augmentation', 'REMUL', 'EGNN'}
        assert sorted({r['num_train'] for r in part['rows']}) == [16, 32]
        for r in part['rows']:
            ci = r['mse_ci']
            assert ci['n'] == 2 and ci['low'] <= ci['estimate'] <= ci['high']
            assert len(r['runs']) == 2 and len(r['run_records']) == 2
            for rec in r['run_records']:
                assert rec['selection'] == 'best_val'
                assert 1 <= rec['best_epoch'] <= r['epochs']
                assert rec['code'] is not None
        pairs = {(c['a'], c['b'], c['num_train'])
                 for c in part['comparisons']}
        assert pairs == {(a, b, n) for a, b in (('REMUL', 'augmentation'),
                                                ('REMUL', 'EGNN'),
                                                ('REMUL', 'plain'))
                         for n in (16, 32)}
        for c in part['comparisons']:
            assert c['seeds'] == [0, 1]
            assert c['verdict'] in ('tie', 'REMUL lower', f'{c["b"]} lower')
    assert '## Charged N-body' in out
    assert '| training systems | epochs | GNN plain | GNN + augmentation ' \
        '| GNN + REMUL | EGNN |' in out
    assert '| 16 | REMUL - augmentation | ' in out


def test_data_efficiency_report_only(private_tmp, capsys, monkeypatch):
    de = _script('data_efficiency')
    # nothing trained: every method of every size is missing
    assert de.main(['--quick', '--tasks', 'nbody', '--report-only']) == 0
    out = capsys.readouterr().out
    assert 'run(s),' not in out and 'trained in' not in out
    line = [x for x in out.splitlines() if x.startswith('wrote')][-1]
    paths = line[len('wrote '):].split(', ')
    assert not any(p.endswith('.png') for p in paths)  # nothing to draw
    with open(paths[0]) as f:
        part = json.load(f)['tasks']['nbody']
    assert part['rows'] == [] and part['comparisons'] == []
    assert len(part['missing']) == 8  # 4 methods x 2 sizes
    assert 'Not yet finished for every seed' in out
    # one size trained: --report-only on the same runs tabulates it alone
    work = tempfile.mkdtemp()
    monkeypatch.setattr(tempfile, 'mkdtemp', lambda *a, **k: work)
    common = {k: v for k, v in de.QUICK.items()
              if k not in ('num_train', 'epochs')}
    de.run_task('nbody', [16], [0, 1], dict(common, beta=1.0,
                                             data_root=work),
                work, 1, 2, log=lambda s: None)  # as main() --quick does
    assert de.main(['--quick', '--tasks', 'nbody', '--report-only']) == 0
    out = capsys.readouterr().out
    assert 'run(s),' not in out
    line = [x for x in out.splitlines() if x.startswith('wrote')][-1]
    with open(line[len('wrote '):].split(', ')[0]) as f:
        part = json.load(f)['tasks']['nbody']
    assert {r['num_train'] for r in part['rows']} == {16}
    assert {m['num_train'] for m in part['missing']} == {32}
    assert 'GNN + REMUL at 32' in out


def test_interval_panel_with_zeros_and_an_outlier():
    from matplotlib.figure import Figure

    import _runs
    rows = [_row(name, [0, 1, 2], vals) for name, vals in (
        ('EGNN', [0.0, 0.0, 0.0]), ('SEGNN', [0.0, 0.0, 0.0]),
        ('GNN', [0.1, 0.2, 0.15]))]
    _stats.add_intervals(rows, ['mse'])
    ax = Figure().subplots()
    _runs.interval_panel(ax, rows, 'mse', outlier=3.0)
    assert ax.get_xlim() == (0.0, 1.0)  # the median is 0: GNN off scale
    assert [t.get_text() for t in ax.texts] == ['0.15 (off scale)']


def test_code_lines_name_every_code_version():
    import _runs
    old = {'commit': 'e61a88b' + '0' * 33,
           'package_tree': '0d37504' + '1' * 33, 'package_dirty': False}
    new = {'commit': 'a4dd74b' + '0' * 33,
           'package_tree': 'd6d2328' + '2' * 33, 'package_dirty': True}
    rows = [{'label': 'GNN plain', 'code_versions': [old]},
            {'label': 'MLP plain', 'code_versions': [new]},
            {'label': 'EGNN', 'code_versions': [old, new]}]
    text = ''.join(_runs.code_lines(rows))
    assert 'more than one version' in text
    assert ('package tree 0d37504 (commit e61a88b): GNN plain, EGNN'
            in text)
    assert ('package tree d6d2328 (commit a4dd74b, with uncommitted '
            'package changes): MLP plain, EGNN' in text)
    assert _runs.code_lines(rows[:1]) == [
        '', 'Code of every run: package tree 0d37504 (commit e61a88b).']
    assert _runs.code_lines([{'label': 'x', 'code_versions': []}]) == []
    assert 'unknown code version' in ''.join(_runs.code_lines(
        [{'label': 'x', 'code_versions': [{'package_tree': None}]}]))
    # one package tree trained at two commits is one code version: the
    # runs are matched on the tree, so the note lists both commits
    again = dict(old, commit='8ae0272' + '0' * 33)
    assert _runs.code_lines([{'label': 'GNN plain', 'code_versions': [old]},
                             {'label': 'MLP plain',
                              'code_versions': [again]}]) == [
        '', 'Code of every run: package tree 0d37504 (commits e61a88b, '
        '8ae0272).']
