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
    # EGNN's learning-rate search first (3 rates on seed 0), then the rows
    # (EGNN's seed-0 run is the search's run of the rate chosen)
    assert 'training 3 run(s), 2 at a time' in out
    assert 'training 7 run(s), 2 at a time' in out
    paths = wrote_paths(out)
    assert [osp.basename(p) for p in paths][:2] == ['headline.json',
                                                    'headline.md']
    for path in paths:
        assert path.startswith(str(private_tmp)) and osp.getsize(path) > 0
    with open(paths[0]) as f:
        payload = json.load(f)
    egnn = payload['lr_search']['EGNN']
    assert [r['lr'] for r in egnn['runs']][:3] == \
        list(headline.LR_SEARCHES['EGNN'])
    egnn_label = f'EGNN (lr {egnn["chosen_lr"]:g})'
    labels = [r['label'] for r in payload['rows']]
    assert labels == ['GNN + REMUL', 'GNN + augmentation',
                      'GNN + augmentation x2', egnn_label]
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
    assert by[egnn_label]['E_prime_paper'] < 1e-4  # equivariant by design
    assert by[egnn_label]['config']['lr'] == egnn['chosen_lr']
    pairs = {(c['a'], c['b'], c['key']) for c in payload['comparisons']}
    assert ('GNN + REMUL', 'GNN + augmentation x2', 'mse') in pairs
    assert ('GNN + REMUL', egnn_label, 'E_prime_paper') in pairs
    for c in payload['comparisons']:
        d = c['difference']
        assert c['verdict'] == 'tie' if d['low'] <= 0 <= d['high'] else \
            c['verdict'].endswith('lower')
    with open(paths[1]) as f:
        text = f.read()
    assert text == headline.markdown(payload)
    assert "EGNN's learning rate: each rate trained on seed 0" in text

    # --update: only EGNN trained again, in place of the stored row
    stored = dict(payload)
    assert headline.main(['--quick', '--only', 'EGNN', '--update',
                          paths[0]]) == 0
    out = capsys.readouterr().out
    assert wrote_paths(out)[0] == paths[0]
    with open(paths[0]) as f:
        new = json.load(f)
    assert [r['label'] for r in new['rows']][:3] == labels[:3]
    assert new['rows'][:3] == stored['rows'][:3]  # kept as stored
    assert base_labels(new['rows']) == base_labels(stored['rows'])
    assert new['code'] == stored['code']
    [update] = new['updates']
    assert update['rows'] == [new['rows'][3]['label']]
    assert update['searches'] == ['EGNN']
    assert {k for k in update} >= {'code', 'versions', 'machine'}
    # every comparison is computed from the rows now in the table
    from _stats import recompute_comparisons
    assert recompute_comparisons(json.loads(json.dumps(new))) and all(
        old['verdict'] == c['verdict'] for _, old, c in
        recompute_comparisons(json.loads(json.dumps(new))))
    with open(paths[1]) as f:
        text = f.read()
    assert text == headline.markdown(new)
    assert 'Rows replaced later by ``--update``' in text


def base_labels(rows):
    return [r['label'].split(' (lr ')[0] for r in rows]


def test_update_needs_only_and_a_readable_json(tmp_path, capsys):
    headline = _script('headline')
    with pytest.raises(SystemExit):
        headline.main(['--update', str(tmp_path / 'headline.json')])
    assert '--update needs --only' in capsys.readouterr().err
    with pytest.raises(ValueError, match='headline.json'):
        headline.main(['--only', 'EGNN', '--update',
                       str(tmp_path / 'headline.json')])


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
    from _runs import saved_results
    assert headline.main(['--quick', '--only', 'SEGNN', 'EGNN',
                          '--jobs', '2']) == 0
    out = capsys.readouterr().out
    with open(wrote_paths(out)[0]) as f:
        payload = json.load(f)
    # --quick writes its outputs next to its runs
    work_dir = osp.join(osp.dirname(wrote_paths(out)[0]), 'bench-headline')
    search = payload['lr_search']['SEGNN']
    tried = [r['lr'] for r in search['runs']]
    assert tried[:3] == list(headline.LR_SEARCHES['SEGNN'])
    assert search['seed'] == 0
    best = min(search['runs'], key=lambda r: r['best_val_mse'])
    assert search['chosen_lr'] == best['lr']
    by = {r['label']: r for r in payload['rows']}
    segnn = by[best['label']]
    assert segnn['config']['lr'] == best['lr'] and 'SEGNN' not in by
    # the row's seed-0 run is the search's run of that rate
    assert segnn['runs'][0]['mse'] == pytest.approx(
        saved_results(work_dir, best['label'], 0)['test']['mse'])
    assert segnn['E_prime_paper'] < 1e-4  # equivariant by design
    # SEGNN is compared with EGNN on test MSE only (both E' are ~0)
    keys = {(c['a'], c['b'], c['key']) for c in payload['comparisons']}
    egnn = f'EGNN (lr {payload["lr_search"]["EGNN"]["chosen_lr"]:g})'
    assert (egnn, best['label'], 'mse') in keys
    assert (egnn, best['label'], 'E_prime_paper') not in keys
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
    assert payload['lr_search'] == {} and payload['rows'] == []


@pytest.mark.parametrize('valley, tried, chosen', [
    # best inside the grid: no extension
    (1.5e-3, [5e-4, 1.5e-3, 4.5e-3], 1.5e-3),
    # best at the edge: one step of 3x up, which is worse: stop there
    (4.5e-3, [5e-4, 1.5e-3, 4.5e-3, 1.35e-2], 4.5e-3),
    # still improving: at most two extra rates, then the largest is kept
    (1.0, [5e-4, 1.5e-3, 4.5e-3, 1.35e-2, 4.05e-2], 4.05e-2),
    # best at the lower edge: the grid grows down the same way, and the
    # new lower edge is tried past too
    (1.6e-4, [5e-4, 1.5e-3, 4.5e-3, 5e-4 / 3, 5e-4 / 9], 5e-4 / 3),
    (1e-9, [5e-4, 1.5e-3, 4.5e-3, 5e-4 / 3, 5e-4 / 9], 5e-4 / 9),
])
def test_lr_search_extends_the_grid_while_its_edge_wins(
        monkeypatch, valley, tried, chosen):
    """The search's rule (the same for EGNN and SEGNN), on fake runs whose
    validation MSE is lowest at ``valley``."""
    import math
    _script('headline')
    import _runs
    trained = []
    monkeypatch.setattr(_runs, 'run_all', lambda configs, seeds, *a,
                        **k: trained.extend(c['lr'] for c in configs))

    def saved(work_dir, label, seed):
        lr = float(label.split()[-1].rstrip(')'))
        return {'best_val_mse': abs(math.log(lr / valley)),
                'best_epoch': 7, 'test': {'seconds_per_epoch': 1.0}}
    monkeypatch.setattr(_runs, 'saved_results', saved)
    config, search = _runs.tune_lr('SEGNN', dict(model='segnn', epochs=7),
                                   (5e-4, 1.5e-3, 4.5e-3), {}, 'unused')
    assert trained == pytest.approx(tried)  # each rate trained once
    assert [r['lr'] for r in search] == pytest.approx(tried)
    assert config['lr'] == pytest.approx(chosen)
    assert config['epochs'] == 7 and config['model'] == 'segnn'
    assert config['label'] == f'SEGNN (lr {config["lr"]:g})'


def test_lr_search_counts_a_diverged_run_as_worst(monkeypatch):
    _script('headline')
    import _runs
    monkeypatch.setattr(_runs, 'run_all', lambda *a, **k: None)
    vals = {'0.0005': 3.0, '0.0015': 2.0, '0.0045': float('nan')}
    monkeypatch.setattr(_runs, 'saved_results', lambda w, label, s: {
        'best_val_mse': vals[label.split()[-1].rstrip(')')],
        'best_epoch': 1, 'test': {'seconds_per_epoch': 1.0}})
    config, search = _runs.tune_lr('EGNN', dict(model='egnn'),
                                   (5e-4, 1.5e-3, 4.5e-3), {}, 'unused')
    assert config['lr'] == 1.5e-3 and len(search) == 3
    record = _runs.search_record(config, search, 3, (5e-4, 1.5e-3, 4.5e-3))
    assert '| 0.0045 | diverged |' in '\n'.join(
        _runs.search_lines('EGNN', record))


def test_stored_segnn_search_reads_as_the_searches_of_a_table():
    headline = _script('headline')
    old = {'segnn_search': {'seed': 0, 'epochs': 100, 'runs': [],
                            'chosen_lr': 0.0135}}
    assert headline.searches_of(old)['SEGNN']['grid'] == \
        list(headline.LR_SEARCHES['SEGNN'])
    assert headline.searches_of({'lr_search': {}}) == {}


def test_lr_searches_train_their_rounds_together(monkeypatch):
    """``tune_lrs``: every search's grid in one pool, then every search's
    next extension in one, each search ending as ``tune_lr`` alone
    would."""
    import math
    _script('headline')
    import _runs
    valleys = {'A': 1.0, 'B': 1.5e-3, 'C': 1e-9}
    calls = []
    monkeypatch.setattr(_runs, 'run_all', lambda configs, seeds, *a, **k:
                        calls.append([c['label'] for c in configs]))

    def saved(work_dir, label, seed):
        lr = float(label.split()[-1].rstrip(')'))
        return {'best_val_mse': abs(math.log(lr / valleys[label[0]])),
                'best_epoch': 7, 'test': {'seconds_per_epoch': 1.0}}
    monkeypatch.setattr(_runs, 'saved_results', saved)
    grid = (5e-4, 1.5e-3, 4.5e-3)
    searches = [(name, dict(model='egnn'), grid) for name in valleys]
    together = _runs.tune_lrs(searches, {}, 'unused', jobs=2)
    assert calls == [
        [_runs.lr_label(n, lr) for n in valleys for lr in grid],
        ['A (lr 0.0135)', 'C (lr 0.000166667)'],  # B is done
        ['A (lr 0.0405)', 'C (lr 5.55556e-05)']]
    alone = [_runs.tune_lr(*search, {}, 'unused') for search in searches]
    assert together == alone
    assert [chosen['lr'] for chosen, _ in together] == pytest.approx(
        [4.05e-2, 1.5e-3, 5e-4 / 9])
    # a search whose grid is unfinished under report_only: (None, []), the
    # others still read
    monkeypatch.setattr(_runs, 'finished_configs', lambda configs, *a, **k:
                        [c for c in configs if c['label'][0] != 'B'])
    read = _runs.tune_lrs(searches, {}, 'unused', report_only=True)
    assert read[1] == (None, []) and read[0] == alone[0] \
        and read[2] == alone[2]
    with pytest.raises(ValueError, match='distinct'):
        _runs.tune_lrs(searches[:1] * 2, {}, 'unused')


def test_lr_searches_record_a_blow_up_of_one_search_only(monkeypatch,
                                                         tmp_path):
    """A rate of one search stops on a non-finite loss in a shared round:
    the round's runs are retried one at a time, the stopped one is
    recorded as diverged (worst) in its own search alone, and the other
    search is unaffected."""
    _script('headline')
    import _runs
    from torch_geometric_remul.train import TrainingError
    calls = []

    def run_all(configs, *a, **k):
        calls.append([c['label'] for c in configs])
        if any(c['label'] == 'A (lr 0.0045)' for c in configs):
            raise TrainingError('non-finite loss in epoch 3')
    monkeypatch.setattr(_runs, 'run_all', run_all)
    vals = {'A': {'0.0005': 3.0, '0.0015': 2.0},
            'B': {'0.0005': 1.0, '0.0015': 0.5, '0.0045': 2.0}}
    monkeypatch.setattr(_runs, 'saved_results', lambda w, label, s: {
        'best_val_mse': vals[label[0]][label.split()[-1].rstrip(')')],
        'best_epoch': 1, 'test': {'seconds_per_epoch': 1.0}})
    grid = (5e-4, 1.5e-3, 4.5e-3)
    (a, a_runs), (b, b_runs) = _runs.tune_lrs(
        [('A', dict(model='egnn'), grid), ('B', dict(model='gnn'), grid)],
        {}, str(tmp_path), jobs=2)
    assert calls[0] == [_runs.lr_label(n, lr) for n in 'AB' for lr in grid]
    assert len(calls) == 7  # the shared round, then its 6 runs one by one
    assert a['lr'] == 1.5e-3 and b['lr'] == 1.5e-3
    assert 'non-finite' in a_runs[2]['error']
    assert all('error' not in r for r in a_runs[:2] + b_runs)
    assert (tmp_path / 'A_(lr_0.0045)-seed0' / _runs.STOPPED).exists()
    assert not (tmp_path / 'B_(lr_0.0045)-seed0' / _runs.STOPPED).exists()


def test_train_missing_pools_the_runs_of_several_sweeps(monkeypatch):
    """``train_missing`` trains the unfinished runs of several ``run_all``
    calls (here one per fold) in one pool, in the order given; with one
    process it leaves them to ``run_all``."""
    _script('headline')
    import _runs
    pools = []
    monkeypatch.setattr(_runs, '_train_pending', lambda pending, jobs, log:
                        pools.append([name for name, _, _ in pending]))
    monkeypatch.setattr(_runs, '_finished', lambda values, *a:
                        {'mse': 1.0} if values['fold'] == 2 else None)
    monkeypatch.setattr(_runs, 'resumable', lambda values, current: None)
    configs = [dict(label='a', model='gnn'), dict(label='b', model='egnn')]
    batches = [(configs, [fold], dict(task='rmd17', fold=fold),
                f'work/fold{fold}') for fold in (1, 2, 3)]
    _runs.train_missing(batches, jobs=2)
    assert pools == [['a seed 1', 'b seed 1', 'a seed 3', 'b seed 3']]
    _runs.train_missing(batches, jobs=1)
    assert len(pools) == 1


def test_lr_search_ranks_a_rate_whose_training_blew_up_last(monkeypatch,
                                                            tmp_path):
    """A rate whose training stops on a non-finite loss (TrainingError) is
    recorded as diverged and ranked last, not fatal to the search; other
    errors still propagate. The stop is recorded in the run's directory, so
    that a report (``report_only``) reads the search and a later search
    does not train that rate again."""
    _script('headline')
    import _runs
    from torch_geometric_remul.train import TrainingError

    calls = []

    def run_all(configs, *a, **k):
        calls.append(len(configs))
        if any(c['lr'] == 4.5e-3 for c in configs):
            raise TrainingError('non-finite loss in epoch 2')
    monkeypatch.setattr(_runs, 'run_all', run_all)
    vals = {'0.0005': 3.0, '0.0015': 2.0}
    monkeypatch.setattr(_runs, 'saved_results', lambda w, label, s: {
        'best_val_mse': vals[label.split()[-1].rstrip(')')],
        'best_epoch': 1, 'test': {'seconds_per_epoch': 1.0}})
    work = str(tmp_path)
    config, search = _runs.tune_lr('EGNN', dict(model='egnn'),
                                   (5e-4, 1.5e-3, 4.5e-3), {}, work)
    assert config['lr'] == 1.5e-3
    assert calls == [3, 1, 1, 1]  # all at once, then one by one
    assert search[2]['best_val_mse'] is None
    assert 'non-finite' in search[2]['error']
    record = _runs.search_record(config, search, 3, (5e-4, 1.5e-3, 4.5e-3))
    assert '| 0.0045 | diverged | None | - |' in '\n'.join(
        _runs.search_lines('EGNN', record))
    stopped = tmp_path / 'EGNN_(lr_0.0045)-seed0' / _runs.STOPPED
    assert 'non-finite loss in epoch 2' in stopped.read_text()
    # read again: the two runs that finished, the stop from its record
    monkeypatch.setattr(_runs, 'finished_configs', lambda configs, *a, **k:
                        [c for c in configs if c['lr'] != 4.5e-3])
    for report_only in (True, False):
        calls.clear()
        again = _runs.tune_lr('EGNN', dict(model='egnn'),
                              (5e-4, 1.5e-3, 4.5e-3), {}, work,
                              report_only=report_only)
        assert again == (config, search)
        assert calls == ([] if report_only else [2])  # 4.5e-3 not again
    # another configuration (or code version): the record does not count
    assert _runs.stopped_run(_runs._values(
        {}, dict(model='egnn', lr=4.5e-3, epochs=3), 0, 'EGNN (lr 0.0045)',
        work)) is None
    stopped.write_text('{damaged')
    assert _runs.stopped_run(_runs._values(
        {}, dict(model='egnn', lr=4.5e-3), 0, 'EGNN (lr 0.0045)',
        work)) is None

    def broken(*a, **k):
        raise OSError('disk full')
    monkeypatch.setattr(_runs, 'run_all', broken)
    with pytest.raises(OSError):
        _runs.tune_lr('EGNN', dict(model='egnn'), (5e-4, ), {}, 'unused')
