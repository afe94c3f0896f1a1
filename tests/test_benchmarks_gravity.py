"""``benchmarks/gravity.py``: a ``--quick`` run trains both protocols into
their own run directories, tabulates intervals and paired differences per
protocol with the paper's numbers apart, and ``--report-only`` trains
nothing."""
import json
import os.path as osp

import pytest

from tests.test_benchmarks import _script, wrote_paths


def _payload(out):
    paths = wrote_paths(out)
    assert [osp.basename(p) for p in paths][:2] == ['gravity.json',
                                                    'gravity.md']
    for path in paths:
        assert osp.getsize(path) > 0
    with open(paths[0]) as f:
        return json.load(f), paths


def _cells(out, label, nth):
    lines = [x for x in out.splitlines() if x.startswith(f'| {label} |')]
    return [c.strip() for c in lines[nth].split('|')[1:-1]]


def test_gravity_quick_both_protocols(private_tmp, capsys, monkeypatch):
    gravity = _script('gravity')
    assert gravity.main(['--quick', '--jobs', '2']) == 0
    out = capsys.readouterr().out
    payload, paths = _payload(out)
    assert all(p.startswith(str(private_tmp)) for p in paths)
    assert payload['seeds'] == [0, 1]
    assert payload['selection'].startswith('best_val')
    assert set(payload['protocols']) == {'canonical', 'gatr'}
    work = [p for p in private_tmp.iterdir() if p.is_dir()]
    assert len(work) == 1  # each protocol has its own run directory
    assert (work[0] / 'bench-gravity').is_dir()
    assert (work[0] / 'bench-gravity-gatr').is_dir()
    for name, part in payload['protocols'].items():
        assert part['common']['source'] == name
        assert part['missing'] == []
        labels = [r['label'] for r in part['rows']]
        assert labels == ['Transformer + REMUL', 'EGNN']
        for r in part['rows']:
            for key in ('mse', 'ood_mse', 'planets_mse', 'E_prime_paper'):
                ci = r[key + '_ci']
                assert ci['n'] == 2 and ci['low'] <= ci['estimate'] <= \
                    ci['high']
            assert all(run['ood_mse'] > 0 and run['planets_mse'] > 0
                       for run in r['runs'])
        egnn = part['rows'][1]
        # EGNN is equivariant and every graph is centred: rotated and
        # shifted test systems give its test error, seed by seed
        for run in egnn['runs']:
            assert run['ood_mse'] == pytest.approx(run['mse'], rel=1e-4)
        assert egnn['E_prime_paper'] < 1e-4
        pairs = {(c['a'], c['b'], c['key']) for c in part['comparisons']}
        assert pairs == {('Transformer + REMUL', 'EGNN', key)
                         for key in ('mse', 'ood_mse', 'E_prime_paper')}
        for c in part['comparisons']:
            assert c['seeds'] == [0, 1]
            assert c['verdict'] in ('tie', 'Transformer + REMUL lower',
                                    'EGNN lower')
    # one table per protocol, EGNN's OOD / test ratio is 1
    for nth in (0, 1):
        assert _cells(out, 'EGNN', nth)[3].startswith('1.00')
    assert "GATr's protocol" in out and 'rotated test (OOD)' in out
    # each protocol's table names the code that trained its runs
    assert out.count('Code of every run: ') == 2
    # the paper's numbers are a separate table that says what differs
    assert 'Not comparable to the tables above' in out
    assert payload['paper']['mse_1e3']['Transformer + REMUL'] == [1.94,
                                                                   1.83]

    # --report-only on the same work directory trains nothing and
    # tabulates the same runs
    import tempfile
    monkeypatch.setattr(tempfile, 'mkdtemp', lambda *a, **k: str(work[0]))
    assert gravity.main(['--quick', '--report-only', '--protocols',
                         'gatr']) == 0
    out2 = capsys.readouterr().out
    assert 'run(s),' not in out2 and '(finished run reused)' in out2
    again, _ = _payload(out2)
    assert list(again['protocols']) == ['gatr']
    assert again['protocols']['gatr']['rows'][0]['runs'] == \
        payload['protocols']['gatr']['rows'][0]['runs']


def test_gravity_report_only_lists_missing_rows(private_tmp, capsys):
    gravity = _script('gravity')
    assert gravity.main(['--quick', '--report-only']) == 0
    out = capsys.readouterr().out
    payload, paths = _payload(out)
    for part in payload['protocols'].values():
        assert part['rows'] == [] and part['comparisons'] == []
        assert part['missing'] == ['Transformer + REMUL', 'EGNN']
    assert 'Not yet finished for every seed' in out
    assert not any(p.endswith('.png') for p in paths)  # nothing to draw


def test_gravity_only_rejects_unknown_rows():
    with pytest.raises(SystemExit):
        _script('gravity').main(['--only', 'SEGNN'])
