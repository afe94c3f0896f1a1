"""``benchmarks/headline.py``: a ``--quick`` run trains its rows in two
processes, tabulates intervals and paired differences from the runs' own
files, and ``--report-only`` tabulates only rows whose every seed
finished."""
import json
import os.path as osp

import pytest

from tests.test_benchmarks import _script, wrote_paths


def test_headline_quick_in_two_processes(private_tmp, capsys):
    headline = _script('headline')
    assert headline.main(['--quick', '--jobs', '2']) == 0
    out = capsys.readouterr().out
    assert 'training 8 run(s), 2 at a time' in out
    paths = wrote_paths(out)
    assert [osp.basename(p) for p in paths][:2] == ['headline.json',
                                                    'headline.md']
    for path in paths:
        assert path.startswith(str(private_tmp)) and osp.getsize(path) > 0
    with open(paths[0]) as f:
        payload = json.load(f)
    labels = [r['label'] for r in payload['rows']]
    assert labels == ['GNN + REMUL', 'GNN + augmentation',
                      'GNN + augmentation x2', 'EGNN']
    assert payload['missing'] == [] and payload['seeds'] == [0, 1]
    assert payload['code']['commit'] is None or \
        len(payload['code']['commit']) == 40
    assert payload['selection'].startswith('best_val')
    by = {r['label']: r for r in payload['rows']}
    # compute: REMUL and two-copy augmentation make two passes per graph
    assert [by[k]['passes_per_graph'] for k in labels] == [2, 1, 2, 1]
    assert by['GNN + augmentation x2']['config']['num_samples'] == 2
    for row in payload['rows']:
        ci = row['mse_ci']
        assert ci['low'] <= ci['estimate'] <= ci['high'] and ci['n'] == 2
        assert row['E_prime_paper_ci']['estimate'] >= \
            row['E_prime_ci']['estimate']
        # validated every 2 epochs and after the last of 3: epochs 2, 3
        assert all(len(c['seconds']) == 2 for c in row['curves'])
        assert set(row['best_epochs']) <= {2, 3}
    assert by['EGNN']['E_prime_paper'] < 1e-4  # equivariant by design
    pairs = {(c['a'], c['b'], c['key']) for c in payload['comparisons']}
    assert ('GNN + REMUL', 'GNN + augmentation x2', 'mse') in pairs
    assert ('GNN + REMUL', 'EGNN', 'E_prime_paper') in pairs
    for c in payload['comparisons']:
        d = c['difference']
        assert c['verdict'] == 'tie' if d['low'] <= 0 <= d['high'] else \
            c['verdict'].endswith('lower')
    with open(paths[1]) as f:
        assert f.read() == headline.markdown(payload)


def test_report_only_lists_unfinished_rows(private_tmp, capsys):
    headline = _script('headline')
    # nothing trained: every row is missing, nothing is trained
    assert headline.main(['--quick', '--report-only']) == 0
    out = capsys.readouterr().out
    assert 'run(s),' not in out and 'trained in' not in out
    with open(wrote_paths(out)[0]) as f:
        payload = json.load(f)
    assert payload['rows'] == [] and len(payload['missing']) == 4
    assert 'Not yet finished for every seed' in headline.markdown(payload)


def test_only_refuses_an_unknown_row(capsys):
    with pytest.raises(SystemExit):
        _script('headline').main(['--quick', '--only', 'GNN + magic'])
    assert '--only matches no row' in capsys.readouterr().err


def test_segnn_row_takes_the_learning_rate_of_its_search(private_tmp,
                                                         capsys):
    headline = _script('headline')
    assert headline.main(['--quick', '--only', 'SEGNN', 'EGNN',
                          '--jobs', '2']) == 0
    out = capsys.readouterr().out
    with open(wrote_paths(out)[0]) as f:
        payload = json.load(f)
    # --quick writes its outputs next to its runs
    work_dir = osp.join(osp.dirname(wrote_paths(out)[0]), 'bench-headline')
    search = payload['segnn_search']
    tried = [r['lr'] for r in search['runs']]
    assert tried[:3] == list(headline.SEGNN_LRS)
    assert search['seed'] == headline.TUNE_SEED == 0
    best = min(search['runs'], key=lambda r: r['best_val_mse'])
    assert search['chosen_lr'] == best['lr']
    by = {r['label']: r for r in payload['rows']}
    segnn = by[best['label']]
    assert segnn['config']['lr'] == best['lr'] and 'SEGNN' not in by
    # the row's seed-0 run is the search's run of that rate
    assert segnn['runs'][0]['mse'] == pytest.approx(
        headline.saved_results(work_dir, best['label'], 0)['test']['mse'])
    assert segnn['E_prime_paper'] < 1e-4  # equivariant by design
    # SEGNN is compared with EGNN on test MSE only (both E' are ~0)
    keys = {(c['a'], c['b'], c['key']) for c in payload['comparisons']}
    assert ('EGNN', best['label'], 'mse') in keys
    assert ('EGNN', best['label'], 'E_prime_paper') not in keys
    assert f'(chosen: {best["lr"]:g})' in headline.markdown(payload)
    assert segnn['train_seconds_ci']['estimate'] > 0


def test_report_only_without_the_segnn_search_lists_it(private_tmp,
                                                       capsys):
    headline = _script('headline')
    assert headline.main(['--quick', '--report-only', '--only',
                          'SEGNN']) == 0
    with open(wrote_paths(capsys.readouterr().out)[0]) as f:
        payload = json.load(f)
    assert payload['missing'] == ['SEGNN (learning-rate search)']
    assert payload['segnn_search'] is None and payload['rows'] == []


@pytest.mark.parametrize('valley, tried, chosen', [
    # best inside the grid: no extension
    (1.5e-3, [5e-4, 1.5e-3, 4.5e-3], 1.5e-3),
    # best at the edge: one step of 3x up, which is worse: stop there
    (4.5e-3, [5e-4, 1.5e-3, 4.5e-3, 1.35e-2], 4.5e-3),
    # still improving: at most two extra rates, then the largest is kept
    (1.0, [5e-4, 1.5e-3, 4.5e-3, 1.35e-2, 4.05e-2], 4.05e-2),
])
def test_segnn_search_extends_the_grid_while_its_edge_wins(
        monkeypatch, valley, tried, chosen):
    """The search's rule, on fake runs whose validation MSE is lowest at
    ``valley``."""
    import math
    headline = _script('headline')
    trained = []
    monkeypatch.setattr(headline, 'run_all', lambda configs, seeds, *a,
                        **k: trained.extend(c['lr'] for c in configs))

    def saved(work_dir, label, seed):
        lr = float(label.split()[-1].rstrip(')'))
        return {'best_val_mse': abs(math.log(lr / valley)),
                'best_epoch': 7, 'test': {'seconds_per_epoch': 1.0}}
    monkeypatch.setattr(headline, 'saved_results', saved)
    config, search = headline.tune_segnn({}, 'unused', epochs=7)
    assert trained == pytest.approx(tried)  # each rate trained once
    assert [r['lr'] for r in search] == pytest.approx(tried)
    assert config['lr'] == pytest.approx(chosen)
    assert config['epochs'] == 7 and config['model'] == 'segnn'


def test_segnn_search_counts_a_diverged_run_as_worst(monkeypatch):
    headline = _script('headline')
    monkeypatch.setattr(headline, 'run_all', lambda *a, **k: None)
    vals = {'0.0005': 3.0, '0.0015': 2.0, '0.0045': float('nan')}
    monkeypatch.setattr(headline, 'saved_results', lambda w, label, s: {
        'best_val_mse': vals[label.split()[-1].rstrip(')')],
        'best_epoch': 1, 'test': {'seconds_per_epoch': 1.0}})
    config, search = headline.tune_segnn({}, 'unused', epochs=3)
    assert config['lr'] == 1.5e-3 and len(search) == 3
    assert '| 0.0045 | diverged |' in '\n'.join(headline.segnn_search_lines(
        {'seed': 0, 'epochs': 3, 'runs': search, 'chosen_lr': 1.5e-3}))
