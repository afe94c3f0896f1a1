"""The statistics of the benchmark tables (``benchmarks/_stats.py``: t
intervals over seeds, paired t-intervals with the exact sign-flip p-value,
verdicts, formatting, the recomputation of stored comparisons), every
committed results JSON against the paired t-interval recomputed from its
per-seed values, and a ``--quick`` run of
``benchmarks/data_efficiency.py``."""
import builtins
import glob
import itertools
import json
import os.path as osp
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tests.test_benchmarks import BENCH, _script, wrote_paths

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


def test_paired_t_known_values_and_scipy():
    from scipy import stats
    a = [1.3, 2.0, 3.1, 4.0, 5.6]
    b = [0.0, 0.5, 0.2, 0.9, 1.0]
    d = np.subtract(a, b)
    diff = _stats.paired_t(a, b)
    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / np.sqrt(5)
    assert diff.estimate == pytest.approx(d.mean(), abs=1e-12)
    assert (diff.low, diff.high) == pytest.approx(
        (d.mean() - half, d.mean() + half), rel=1e-12)
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (diff.low, diff.high) == pytest.approx((ci.low, ci.high),
                                                  rel=1e-9)
    assert diff.n == 5 and diff.method == 'paired t'


def test_paired_t_constant_difference_zero_width():
    a = [1.0, 2.5, -3.0, 0.7, 4.0]
    b = [x - 0.25 for x in a]
    diff = _stats.paired_t(a, b)
    assert diff.estimate == pytest.approx(0.25, abs=1e-12)
    assert diff.high - diff.low == pytest.approx(0.0, abs=1e-12)
    assert _stats.verdict(diff, 'REMUL', 'aug') == 'aug lower'
    assert _stats.verdict(_stats.paired_t(b, a), 'REMUL',
                          'aug') == 'REMUL lower'
    # pairing matters: the methods' spread across seeds cancels, so the
    # unpaired intervals overlap while the paired one excludes 0
    ia, ib = _stats.mean_interval(a), _stats.mean_interval(b)
    assert ia.low < ib.high


def test_five_same_sign_differences_can_still_be_a_tie():
    # every seed lower, but the differences vary a lot: the percentile
    # bootstrap called this a win; the paired t-interval contains 0 and
    # the sign-flip p-value is its floor for 5 pairs, 2 / 32
    a = [1.0, 1.0, 1.0, 1.0, 1.0]
    b = [1.01, 1.02, 1.01, 1.3, 1.02]
    diff = _stats.paired_t(a, b)
    assert diff.low < 0 < diff.high and _stats.verdict(diff) == 'tie'
    assert _stats.sign_flip_p(a, b) == 0.0625
    out = _stats.compare(_row('x', list(range(5)), a),
                         _row('y', list(range(5)), b))
    assert out['verdict'] == 'tie' and out['a_lower_on'] == 5
    assert out['method'] == _stats.PAIRED_METHOD
    assert out['p_sign_flip'] == 0.0625


def _sign_flip_brute(d):
    d = np.asarray(d, dtype=float)
    observed = abs(d.sum())
    hits = sum(abs(np.dot(signs, d)) >= observed - 1e-12
               for signs in itertools.product((1.0, -1.0), repeat=d.size))
    return hits / 2 ** d.size


def test_sign_flip_p_exact():
    rng = np.random.default_rng(4)
    for n in (1, 2, 3, 5, 7):
        for _ in range(5):
            a, b = rng.normal(size=n), rng.normal(size=n)
            assert _stats.sign_flip_p(a, b) == pytest.approx(
                _sign_flip_brute(a - b), abs=1e-15)
    assert _stats.sign_flip_p([1.0] * 5, [0.0] * 5) == 2 / 32
    assert _stats.sign_flip_p([1.0] * 5, [1.0] * 5) == 1.0
    # 3 of 4 positive, equal size: 10 of 16 assignments reach |sum| >= 2
    assert _stats.sign_flip_p([1, 1, 1, -1], [0, 0, 0, 0]) == 10 / 16
    with pytest.raises(ValueError, match='at most 20 pairs'):
        _stats.sign_flip_p(np.ones(21), np.zeros(21))
    with pytest.raises(ValueError, match='paired'):
        _stats.sign_flip_p([1.0, 2.0], [1.0])


def test_symmetric_noise_is_tie():
    noise = np.random.default_rng(1).normal(0.0, 0.01, size=8)
    a = 1.0 + np.concatenate([noise, -noise])  # symmetric around 0
    b = np.ones(16)
    diff = _stats.paired_t(a, b)
    assert abs(diff.estimate) < 1e-12
    assert diff.low < 0 < diff.high
    assert _stats.verdict(diff) == 'tie'
    assert _stats.sign_flip_p(a, b) == 1.0


def test_paired_t_covers_the_true_difference_with_five_seeds():
    # n = 5 as in the tables: the paired t-interval keeps its 95% (the
    # percentile bootstrap it replaces covered about 85%)
    rng = np.random.default_rng(0)
    trials, n, mu = 600, 5, 0.3
    t_hits = paired_hits = 0
    for _ in range(trials):
        x = rng.normal(mu, 1.0, size=n)
        t_hits += _stats.mean_interval(x).contains(mu)
        paired_hits += _stats.paired_t(x + 2.0, np.full(n, 2.0)).contains(mu)
    assert 0.92 <= t_hits / trials <= 0.98
    assert 0.92 <= paired_hits / trials <= 0.98


def test_bad_inputs():
    with pytest.raises(ValueError, match="'values'"):
        _stats.mean_interval([])
    with pytest.raises(ValueError, match="'values' must hold finite"):
        _stats.mean_interval([1.0, float('nan')])
    with pytest.raises(ValueError, match='paired'):
        _stats.paired_t([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="'confidence'"):
        _stats.mean_interval([1.0, 2.0], confidence=1.5)
    with pytest.raises(ValueError, match="'confidence'"):
        _stats.paired_t([1.0, 2.0], [1.0, 2.0], confidence=0.0)
    one = _stats.paired_t([1.0], [0.0])
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
                        '[95% t-interval] | half-width | p (sign-flip) | '
                        'verdict | a lower on |')
    d = comps[0]['difference']
    half = (d['high'] - d['low']) / 2 / 2.5  # the larger mean: aug's 2.5
    assert comps[0]['relative_half_width'] == pytest.approx(half)
    assert lines[5] == (f'| 1,000 | REMUL - aug | MSE x 1e-3 | '
                        f'{_stats.format_interval(d, 3, 1e3)} | '
                        f'±{100 * half:.0f}% | 0.5 | '
                        f'{comps[0]["verdict"]} | 2/3 |')
    assert _stats.comparison_table([], {}) == []
    assert _stats.missing_lines([]) == []
    assert _stats.missing_lines(['EGNN', 'SEGNN'])[1].endswith(
        'EGNN, SEGNN.')


def test_recompute_comparisons_from_nested_rows():
    def row(method, size, values):
        return dict(_row(f'GNN {method}', [0, 1, 2], values), method=method,
                    num_train=size)
    rows = [row('REMUL', 100, [1.0, 2.0, 3.0]),
            row('aug', 100, [2.0, 2.5, 3.9]),
            row('REMUL', 300, [1.0, 1.0, 1.0]),
            row('aug', 300, [0.0, 0.5, 0.1])]
    stale = {'a': 'REMUL', 'b': 'aug', 'key': 'mse', 'seeds': [0, 1, 2],
             'difference': {'estimate': 0.0, 'low': 0.0, 'high': 0.0},
             'verdict': 'old', 'num_resamples': 10, 'num_train': 300}
    payload = {'tasks': {'t': {'rows': rows, 'comparisons': [stale]}}}
    changes = _stats.recompute_comparisons(payload)
    (where, old, new), = changes
    assert where == 'tasks/t/comparisons' and old is stale
    assert payload['tasks']['t']['comparisons'] == [new]
    # the rows at 300 systems, named by their method; extra fields kept,
    # the old method's dropped
    x, y = [1.0, 1.0, 1.0], [0.0, 0.5, 0.1]
    assert new['difference'] == _stats.paired_t(x, y).as_dict()
    assert new['num_train'] == 300 and 'num_resamples' not in new
    assert new['verdict'] == 'aug lower' and new['a_lower_on'] == 0
    assert new == dict(_stats.compare(rows[2], rows[3], names=('REMUL',
                                                               'aug')),
                       num_train=300)
    # compare_named: the same comparisons, restricted by num_train
    assert _stats.compare_named(rows, [('REMUL', 'aug'), ('REMUL', 'x')],
                                ['mse'], num_train=300) == [new]
    with pytest.raises(ValueError, match="2 rows match 'REMUL'"):
        _stats.row_of(rows, 'REMUL', {'a': 'REMUL', 'b': 'aug'})
    with pytest.raises(ValueError, match='no rows'):
        _stats.recompute_comparisons({'comparisons': [stale]})


RESULTS = osp.join(osp.dirname(BENCH), 'benchmarks', 'results')


def _stored_comparisons(node, rows=None, where=''):
    """(where, rows, comparison) of every comparison of a results JSON,
    found independently of ``_stats.recompute_comparisons``."""
    if isinstance(node, dict):
        rows = node['rows'] if isinstance(node.get('rows'), list) else rows
        for key, value in node.items():
            yield from _stored_comparisons(value, rows, f'{where}/{key}')
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict) and 'difference' in item:
                yield where, rows, item
            else:
                yield from _stored_comparisons(item, rows, where)


def _per_seed(rows, name, comparison):
    found = [r for r in rows
             if name in (r['label'], r.get('row'), r.get('method'))
             and all(r.get(k) == comparison[k]
                     for k in ('num_train', 'molecule') if k in comparison)]
    assert len(found) == 1, (name, comparison)
    r = found[0]
    return {s: run[comparison['key']] for s, run in zip(r['seeds'],
                                                        r['runs'])}


JSONS = sorted(glob.glob(osp.join(RESULTS, '*.json')))


@pytest.mark.parametrize('path', JSONS, ids=osp.basename)
def test_committed_comparisons_are_paired_t_intervals(path):
    """Every stored comparison's interval is the paired Student-t interval
    (t with n - 1 df) recomputed from the per-seed values of its rows, its
    verdict "tie" exactly when that interval contains 0, and its p-value
    the exact sign-flip p-value."""
    from scipy import stats
    with open(path) as f:
        payload = json.load(f)
    found = list(_stored_comparisons(payload))
    if not found:
        assert 'bootstrap' not in json.dumps(payload)
        return
    assert payload['paired_method'] == _stats.PAIRED_METHOD
    assert 'bootstrap_resamples' not in payload
    for where, rows, c in found:
        a = _per_seed(rows, c['a'], c)
        b = _per_seed(rows, c['b'], c)
        seeds = [s for s in a if s in b]
        assert c['seeds'] == seeds and len(seeds) >= 2, (where, c)
        x, y = np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])
        d = x - y
        half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / \
            np.sqrt(d.size)
        diff = c['difference']
        assert diff['method'] == 'paired t' and diff['n'] == d.size
        assert (diff['estimate'], diff['low'], diff['high']) == \
            pytest.approx((d.mean(), d.mean() - half, d.mean() + half),
                          rel=1e-9, abs=1e-15), (where, c)
        tie = diff['low'] <= 0 <= diff['high']
        assert (c['verdict'] == 'tie') == tie, (where, c)
        if not tie:
            lower = c['a'] if diff['high'] < 0 else c['b']
            assert c['verdict'] == f'{lower} lower'
        assert c['method'] == _stats.PAIRED_METHOD
        assert c['p_sign_flip'] == pytest.approx(_sign_flip_brute(d),
                                                 abs=1e-12)
        assert c['a_lower_on'] == int(np.sum(x < y))
        scale = max(abs(x.mean()), abs(y.mean()))
        assert c['relative_half_width'] == pytest.approx(half / scale)


#: the script of each results JSON that has paired comparisons
SCRIPTS = {'headline': 'headline', 'nbody': 'nbody', 'gravity': 'gravity',
           'mocap': 'mocap', 'md17': 'md17', 'beta_sweep': 'beta_sweep',
           'data_efficiency': 'data_efficiency'}


@pytest.mark.parametrize('name', sorted(SCRIPTS))
def test_committed_tables_are_rendered_from_their_json(name):
    """Each table with paired comparisons is its script's markdown of the
    committed JSON (so it shows the recomputed intervals and verdicts),
    and the beta sweep's monotonicity follows the paired t-intervals of
    its rises."""
    script = _script(SCRIPTS[name])
    with open(osp.join(RESULTS, f'{name}.json')) as f:
        payload = json.load(f)
    with open(osp.join(RESULTS, f'{name}.md')) as f:
        assert f.read() == script.markdown(payload)
    if name == 'beta_sweep':
        for mode, rises in payload['monotone_rises'].items():
            assert payload['monotone_within_noise'][mode] == all(
                c['verdict'] == 'tie' for c in rises)


def test_from_json_rerenders_and_reports_changed_verdicts(tmp_path,
                                                          capsys):
    """``--from-json`` recomputes a stale comparison, writes the outputs
    next to the JSON and prints the verdict that changed."""
    mocap = _script('mocap')
    with open(osp.join(RESULTS, 'mocap.json')) as f:
        payload = json.load(f)
    payload['comparisons'][0]['verdict'] = 'stale'
    payload['bootstrap_resamples'] = 10_000
    path = tmp_path / 'mocap.json'
    path.write_text(json.dumps(payload))
    assert mocap.main(['--from-json', str(path)]) == 0
    out = capsys.readouterr().out
    assert 'stale -> ' in out
    fresh = json.loads(path.read_text())
    with open(osp.join(RESULTS, 'mocap.json')) as f:
        assert fresh == json.load(f)
    assert (tmp_path / 'mocap.md').read_text() == mocap.markdown(fresh)
    (tmp_path / 'bad.json').write_text('{not json')
    with pytest.raises(ValueError, match='bad.json'):
        mocap.main(['--from-json', str(tmp_path / 'bad.json')])


def test_epochs_match_steps():
    de = _script('data_efficiency')
    assert de.epochs_for(3000, 60, 300) == 60
    assert de.epochs_for(10000, 60, 300) == 60
    assert de.epochs_for(1000, 60, 300) == 180
    assert de.epochs_for(100, 60, 300) == 300
    labels = [c['label'] for c in de.configs_for('gnn')]
    assert labels == ['GNN plain', 'GNN + augmentation', 'GNN + REMUL',
                      'EGNN']


@pytest.mark.parametrize('tasks', [
    ['nbody'], pytest.param(['nbody', 'gravity'], marks=pytest.mark.slow)])
def test_data_efficiency_quick(private_tmp, capsys, tasks):
    assert _script('data_efficiency').main(['--quick', '--tasks',
                                            *tasks]) == 0
    out = capsys.readouterr().out
    paths = wrote_paths(out)
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
        assert part['clip_grad_norm'] == {'nbody': 1.0}.get(task)
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
                                                ('REMUL', 'plain'),
                                                ('augmentation', 'plain'),
                                                ('EGNN', 'augmentation'))
                         for n in (16, 32)}
        for c in part['comparisons']:
            assert c['seeds'] == [0, 1]
            assert c['method'] == _stats.PAIRED_METHOD
            assert c['verdict'] in ('tie', f'{c["a"]} lower',
                                    f'{c["b"]} lower')
    assert '## Charged N-body' in out
    assert '| training systems | epochs | GNN plain | GNN + augmentation ' \
        '| GNN + REMUL | EGNN |' in out
    assert '| 16 | REMUL - augmentation | ' in out
    # EGNN's learning rate searched at each size on seed 0's validation
    for part in payload['tasks'].values():
        assert sorted(part['lr_search']) == ['16', '32']
        for size, record in part['lr_search'].items():
            egnn = [r for r in part['rows'] if r['method'] == 'EGNN'
                    and r['num_train'] == int(size)]
            assert egnn[0]['config']['lr'] == record['chosen_lr']
            assert egnn[0]['label'] == f'EGNN (lr {record["chosen_lr"]:g})'
    assert "EGNN's learning rate, searched at every size" in out
    if tasks != ['nbody']:
        return
    # --update: EGNN alone trained again, the other rows kept as stored
    assert _script('data_efficiency').main(
        ['--quick', '--tasks', 'nbody', '--methods', 'EGNN', '--update',
         paths[0]]) == 0
    out = capsys.readouterr().out
    assert wrote_paths(out)[0] == paths[0]
    with open(paths[0]) as f:
        new = json.load(f)
    old_rows, new_rows = (p['tasks']['nbody']['rows'] for p in (payload,
                                                               new))
    assert [(r['num_train'], r['method']) for r in new_rows] == \
        [(r['num_train'], r['method']) for r in old_rows]
    assert [r for r in new_rows if r['method'] != 'EGNN'] == \
        [r for r in old_rows if r['method'] != 'EGNN']
    assert new['code'] == payload['code']
    [update] = new['updates']
    assert len(update['rows']) == 2 and 'package tree' in out
    assert {k for k in update} >= {'code', 'versions', 'machine'}
    de = _script('data_efficiency')
    fresh = json.loads(json.dumps(new))
    de.refresh_comparisons(fresh)
    assert fresh['tasks']['nbody']['comparisons'] == \
        new['tasks']['nbody']['comparisons']
    with open(paths[1]) as f:
        assert f.read() == de.markdown(new)
    assert "clips its gradients' 2-norm to 1 (" in de.markdown(new)
    # clipping: no mix of rows clipped otherwise with the stored rows
    with pytest.raises(ValueError, match='clip_grad_norm=0.001 would mix '
                       'its rows with stored rows trained with '
                       'clip_grad_norm=1.0'):
        de.main(['--quick', '--tasks', 'nbody', '--methods', 'EGNN',
                 '--clip-grad-norm', '1e-3', '--update', paths[0]])
    # every method again, clipped (a norm that binds in these tiny runs):
    # the task's part is the new one
    assert de.main(['--quick', '--tasks', 'nbody', '--clip-grad-norm', '1e-3',
                    '--methods', 'plain', 'augmentation', 'REMUL', 'EGNN',
                    '--update', paths[0]]) == 0
    out = capsys.readouterr().out
    with open(paths[0]) as f:
        clipped = json.load(f)
    part = clipped['tasks']['nbody']
    assert part['clip_grad_norm'] == 1e-3 and len(part['rows']) == 8
    assert all(r['run_records'][0]['code'] for r in part['rows'])
    # the earlier update (EGNN's rows) is history: the task is replaced
    [update] = clipped['updates']
    assert len(update['rows']) == 8
    assert update['trained_by'] == sorted({
        v['package_tree'] for r in part['rows'] for v in r['code_versions']})
    assert "clips its gradients' 2-norm to 0.001 (`--clip-grad-norm`)" in out
    for r in part['rows']:  # trained clipped: other runs than the stored
        old = [o for o in new_rows if (o['num_train'], o['method']) ==
               (r['num_train'], r['method'])]
        assert [x['mse'] for x in r['runs']] != [x['mse'] for x in
                                                  old[0]['runs']]


def test_data_efficiency_clip_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        _script('data_efficiency').main(['--clip-grad-norm', '0'])
    assert '--clip-grad-norm must be positive' in capsys.readouterr().err


def test_data_efficiency_update_needs_methods(capsys):
    with pytest.raises(SystemExit):
        _script('data_efficiency').main(['--update', 'x.json'])
    assert '--update needs --methods' in capsys.readouterr().err


def test_data_efficiency_report_only(private_tmp, capsys, monkeypatch):
    de = _script('data_efficiency')
    # nothing trained: every method of every size is missing
    assert de.main(['--quick', '--tasks', 'nbody', '--report-only']) == 0
    out = capsys.readouterr().out
    assert 'run(s),' not in out and 'trained in' not in out
    paths = wrote_paths(out)
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
    de.run_task('nbody', [16], [0, 1], dict(
        common, beta=1.0, data_root=work,
        clip_grad_norm=de.CLIP_GRAD_NORM['nbody']),
        work, 1, 2, log=lambda s: None)  # as main() --quick does
    assert de.main(['--quick', '--tasks', 'nbody', '--report-only']) == 0
    out = capsys.readouterr().out
    assert 'run(s),' not in out
    with open(wrote_paths(out)[0]) as f:
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


def test_speed_from_json_redraws_the_committed_table(tmp_path):
    speed = _script('speed')
    path = tmp_path / 'speed.json'
    path.write_text(Path(RESULTS, 'speed.json').read_text())
    assert speed.main(['--from-json', str(path)]) == 0
    with open(osp.join(RESULTS, 'speed.md')) as f:
        assert (tmp_path / 'speed.md').read_text() == f.read()
    assert (tmp_path / 'speed.png').stat().st_size > 0
    # the figure's training bar: the faster of the unfused and fused step
    row = {'train_vs_SEGNN': 3.3, 'fused_vs_SEGNN': 3.9}
    assert speed.train_vs_segnn(row) == 3.9
    assert speed.train_vs_segnn(dict(row, fused_vs_SEGNN=None)) == 3.3
    assert speed.workload_name({'workload': 'MD17', 'graphs': 100}) == \
        '21-node random\ngraphs x 100'


def test_headline_validated_epochs():
    headline = _script('headline')
    assert headline.validated_epochs(3, 5, 300) == [5, 10, 15]
    assert headline.validated_epochs(60, 5, 300)[-1] == 300
    assert headline.validated_epochs(3, 5, 12) == [5, 10, 12]


def test_paired_figure_from_the_results(tmp_path, capsys):
    paired = _script('paired')
    found = paired.collect(RESULTS)
    benchmarks = {w.split(':')[0].split(' ')[0] for w, _ in found}
    assert {'N-body', 'gravity', 'data', 'mocap', 'MD17'} <= benchmarks
    assert all(c['key'] == 'mse' for _, c in found)
    for (_, test), panel in zip(paired.PANELS, ('REMUL - augmentation',
                                                'REMUL - EGNN')):
        assert any(test(c['a'], c['b']) for _, c in found), panel
    for name in ('headline', 'gravity'):
        (tmp_path / f'{name}.json').write_text(
            Path(RESULTS, f'{name}.json').read_text())
    assert paired.main(['--results', str(tmp_path)]) == 0
    assert (tmp_path / 'paired.png').stat().st_size > 0
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(SystemExit):
        paired.main(['--results', str(empty)])


def test_paired_panel_cuts_an_interval_wholly_beyond_the_axis():
    # REMUL - EGNN at 100 N-body systems: +141% [124%, 159%] of EGNN's mean
    _script('paired')
    import matplotlib

    import _runs
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    far = {'a': 'REMUL', 'b': 'EGNN', 'b_mean': 1.0, 'seeds': [0, 1, 2],
           'verdict': 'EGNN lower', 'p_sign_flip': 0.25, 'a_lower_on': 0,
           'difference': {'estimate': 1.41, 'low': 1.24, 'high': 1.59}}
    near = dict(far, verdict='tie', difference={
        'estimate': 0.1, 'low': -0.2, 'high': 0.4})
    fig, ax = plt.subplots()
    _runs.paired_panel(ax, [far, near], relative=True, limit=100)
    texts = [t.get_text() for t in ax.texts]
    assert texts[0].startswith('[124, 159] cut; ') and 'cut' not in texts[1]
    plt.close(fig)
