"""``benchmarks/mocap_cmu.py``: a ``--quick`` run on small ASF/AMC files and
a GMN-style split written by the benchmark (a labelled synthetic proxy, as
the real files are not part of the test suite) searches beta on the
validation split, trains the rows, records the data (SHA-256 of every file,
every sample) and tabulates without the paper's numbers."""
import hashlib
import json
import os.path as osp

from tests.test_benchmarks import _script, wrote_paths


def _payload(out):
    paths = wrote_paths(out)
    with open(paths[0]) as f:
        return json.load(f), paths


def test_mocap_cmu_quick(private_tmp, capsys):
    bench = _script('mocap_cmu')
    missing = str(private_tmp / 'no_cmu')
    assert bench.main(['--quick', '--cmu-dir', missing]) == 0
    out = capsys.readouterr().out
    label = 'synthetic proxy, not CMU motion capture'
    assert f'no gmn_motion_split.json in {missing}' in out
    payload, paths = _payload(out)
    assert all(p.startswith(str(private_tmp)) for p in paths)  # not results/
    assert payload['proxy'] is True and payload['seeds'] == [0, 1]
    assert payload['common']['source'] == 'gmn'
    # the beta search: every grid value trained with the selection seed,
    # the lowest best-validation MSE chosen
    search = payload['beta_search']['GNN']
    assert set(search['val_mse']) == {'0.1', '1'}
    best = min(search['val_mse'], key=search['val_mse'].get)
    assert f"{search['chosen']:g}" == best
    chosen = bench.remul_label('GNN', search['chosen'])
    assert [r['row'] for r in payload['rows']] == [chosen, 'EGNN']
    assert all(r['label'].endswith(f'({label})') for r in payload['rows'])
    assert payload['rows'][1]['E_prime'] < 1e-4  # EGNN is equivariant
    for r in payload['rows']:
        assert r['mse_ci']['n'] == 2
    pairs = {(c['a'], c['b']) for c in payload['comparisons']}
    assert pairs == {(chosen, 'EGNN')}
    # the data record: every file with its SHA-256, every sample
    data = payload['data']
    cmu = private_tmp / osp.basename(osp.dirname(paths[0])) / 'cmu'
    files = sorted(p.name for p in (cmu / 'subject35').iterdir()) + [
        'gmn_motion_split.json']
    assert sorted(data['files']) == sorted(files)
    sub = cmu / 'subject35'
    for name, digest in data['files'].items():
        path = sub / name if (sub / name).exists() else cmu / name
        assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    with open(cmu / 'gmn_motion_split.json') as f:
        split = json.load(f)
    trials = sorted(n[:-4] for n in files if n.endswith('.amc'))
    for name in ('train', 'val', 'test'):
        each = payload['common'][f'num_{name}'] // len(split[name])
        expected = [[trials[int(c)], t]
                    for c in sorted(split[name], key=int)
                    for t in split[name][c][:each]]
        assert data['samples'][name] == expected
    assert data['case_ids'] == {str(k): t for k, t in enumerate(trials)}
    # the paper's numbers only beside real files
    assert 'GATr' not in out and 'published_x1e-2' not in payload
    with open(paths[1]) as f:
        assert f.read() == bench.markdown(payload)


def test_mocap_cmu_missing_files(tmp_path, capsys):
    bench = _script('mocap_cmu')
    assert bench.main(['--cmu-dir', str(tmp_path), '--work',
                       str(tmp_path / 'runs')]) == 1
    assert 'gmn_motion_split.json' in capsys.readouterr().err


def test_mocap_cmu_paper_reference_is_separate():
    bench = _script('mocap_cmu')
    text = bench.paper_reference()
    assert text.startswith('#### Published (not run here)')
    for name, value in bench.PAPER:
        assert f'| {name} | {value:.2f} |' in text
    assert 'third-party' in text and 'What may differ' in text
