"""Best-validation selection: the model of the epoch with the lowest
validation MSE is kept (``best.pt``), tested, restored by ``remul
evaluate`` (``--which last`` for the last epoch), and resumed bit-exactly."""
import json
import os.path as osp

import pytest
import torch

import torch_geometric_remul.train.loop as loop
from tests.train._helpers import make_config, quiet
from torch_geometric_remul.cli import main
from torch_geometric_remul.train import (
    RunDirectoryError,
    TrainConfig,
    evaluate_split,
    restore_model,
    train,
)

#: The validation MSE the patched loop sees at epochs 1, 2, ...: best at
#: epoch 2, tied at epoch 3 (the earlier epoch wins), worse afterwards.
VAL_MSE = [3.0, 1.0, 1.0, 2.0, 5.0]


@pytest.fixture
def scripted_validation(monkeypatch):
    """Makes the loop's validation MSE follow :data:`VAL_MSE` (the test
    evaluation is untouched)."""
    real = loop.evaluate_split

    def evaluate(model, dataset, spec, config, seed, runtime=None,
                 **kwargs):
        out = real(model, dataset, spec, config, seed=seed, runtime=runtime,
                   **kwargs)
        epoch = seed - config.seed * 7919  # 0-based for validation calls
        if 0 <= epoch < len(VAL_MSE):
            out['mse'] = VAL_MSE[epoch]
        return out

    monkeypatch.setattr(loop, 'evaluate_split', evaluate)


def _load(path):
    return torch.load(path, weights_only=True)


def test_best_epoch_is_selected_and_tested(tmp_path, data_root,
                                           scripted_validation):
    res = train(make_config(tmp_path / 'run', data_root, epochs=4),
                progress=False, log=quiet)
    assert res.best_epoch == 2 and res.selection == 'best_val'
    results = json.load(open(osp.join(res.run_dir, 'results.json')))
    assert results['selection'] == 'best_val'
    assert results['best_epoch'] == 2 and results['best_val_mse'] == 1.0
    assert results['epochs'] == 4
    assert results['test'] == res.test and results['test_last'] == \
        res.test_last
    best = _load(osp.join(res.run_dir, 'best.pt'))
    last = _load(osp.join(res.run_dir, 'checkpoint.pt'))
    assert best['epoch'] == 2 and best['val_mse'] == 1.0
    assert last['best']['epoch'] == 2
    assert any(not torch.equal(best['model'][k], last['model'][k])
               for k in best['model'])
    # the reported test figures are those of the saved models
    test_seed = 7919 * 0 + 10**6
    for which, key in (('best', 'test'), ('last', 'test_last')):
        config, spec, model = restore_model(res.run_dir, which=which)
        again = evaluate_split(model, spec.load('test'), spec, config,
                               seed=test_seed)
        assert again['mse'] == results[key]['mse'], which
        assert again['E_prime'] == results[key]['E_prime'], which
    assert results['test']['mse'] != results['test_last']['mse']
    # the returned model is the last epoch's
    assert all(torch.equal(v, last['model'][k])
               for k, v in res.model.state_dict().items())


def test_last_epoch_best_reports_the_same_figures(tmp_path, data_root):
    res = train(make_config(tmp_path / 'run', data_root, epochs=1),
                progress=False, log=quiet)
    assert res.best_epoch == 1 and res.test == res.test_last


def test_resume_keeps_the_best_state_bit_exact(tmp_path, data_root,
                                               scripted_validation):
    full = train(make_config(tmp_path / 'a', data_root, epochs=4),
                 progress=False, log=quiet)
    train(make_config(tmp_path / 'b', data_root, epochs=3), progress=False,
          log=quiet)
    # the run stopped at epoch 3 holds epoch 2 as its best; resuming
    # continues the same selection
    resumed = train(TrainConfig(epochs=4), resume_from=str(tmp_path / 'b'),
                    progress=False, log=quiet)
    assert resumed.best_epoch == full.best_epoch == 2
    for key in ('test', 'test_last'):
        a, b = (dict(getattr(r, key)) for r in (full, resumed))
        a.pop('seconds_per_epoch'), b.pop('seconds_per_epoch')
        assert a == b, key
    a, b = (_load(osp.join(r.run_dir, 'best.pt')) for r in (full, resumed))
    assert a['epoch'] == b['epoch'] == 2
    assert all(torch.equal(a['model'][k], b['model'][k]) for k in a['model'])
    ca, cb = (_load(osp.join(r.run_dir, 'checkpoint.pt'))
              for r in (full, resumed))
    assert all(torch.equal(ca['best']['model'][k], cb['best']['model'][k])
               for k in ca['best']['model'])


def test_better_later_epoch_replaces_the_best(tmp_path, data_root,
                                              monkeypatch):
    real = loop.evaluate_split
    scores = [2.0, 3.0, 0.5]

    def evaluate(model, dataset, spec, config, seed, runtime=None,
                 **kwargs):
        out = real(model, dataset, spec, config, seed=seed, runtime=runtime,
                   **kwargs)
        if seed - config.seed * 7919 < len(scores):
            out['mse'] = scores[seed - config.seed * 7919]
        return out

    monkeypatch.setattr(loop, 'evaluate_split', evaluate)
    res = train(make_config(tmp_path / 'run', data_root, epochs=3),
                progress=False, log=quiet)
    assert res.best_epoch == 3 and res.test == res.test_last
    assert _load(osp.join(res.run_dir, 'best.pt'))['epoch'] == 3


def test_evaluate_which(tmp_path, data_root, scripted_validation, capsys):
    res = train(make_config(tmp_path / 'run', data_root, epochs=4),
                progress=False, log=quiet)
    results = json.load(open(osp.join(res.run_dir, 'results.json')))
    mse = {}
    for which in (None, 'best', 'last'):
        args = ['evaluate', res.run_dir] + ([] if which is None else
                                            ['--which', which])
        assert main(args) == 0
        out = capsys.readouterr().out
        mse[which] = float(out.split('MSE')[1].split()[0])
        assert ('epoch 2, the best validation epoch' in out) == \
            (which != 'last')
        assert ('epoch 4, the last epoch' in out) == (which == 'last')
    assert mse[None] == mse['best'] == pytest.approx(
        results['test']['mse'], rel=1e-5)
    assert mse['last'] == pytest.approx(results['test_last']['mse'],
                                        rel=1e-5)
    assert main(['check', res.run_dir, '--which', 'last', '--samples', '2',
                 '--graphs', '2']) == 0
    assert 'the last epoch' in capsys.readouterr().out


def test_run_without_best_model_says_which_last(run_copy, capsys):
    # a run written before best-validation selection has no best.pt
    (run_copy / 'best.pt').unlink()
    with pytest.raises(RunDirectoryError, match='--which last'):
        restore_model(str(run_copy))
    assert main(['evaluate', str(run_copy)]) == 1
    assert '--which last' in capsys.readouterr().err
    assert main(['evaluate', str(run_copy), '--which', 'last']) == 0
    with pytest.raises(ValueError, match="'which'"):
        restore_model(str(run_copy), which='first')


def test_hostile_best_model_runs_nothing(run_copy, capsys):
    class Hostile:
        def __reduce__(self):
            return (exec, ("open('pwned', 'w')", ))

    torch.save({'model': {}, 'epoch': 1, 'x': Hostile()},
               run_copy / 'best.pt')
    assert main(['evaluate', str(run_copy)]) == 1
    err = capsys.readouterr().err
    assert 'best.pt was refused' in err
    assert not osp.exists('pwned')


def test_val_every_validates_every_n_epochs_and_the_last(tmp_path, data_root,
                                                        scripted_validation):
    # validated: epochs 2 and 4 (every 2nd) and 5 (the last)
    res = train(make_config(tmp_path / 'run', data_root, epochs=5,
                            val_every=2), progress=False, log=quiet)
    validated = [row['epoch'] for row in res.history
                 if row['val_mse'] == row['val_mse']]
    assert validated == [2, 4, 5]
    for row in res.history:
        if row['epoch'] not in validated:
            assert all(row[k] != row[k] for k in row if k.startswith('val_'))
    assert res.best_epoch == 2  # VAL_MSE: 1.0 at epoch 2, 2.0, 5.0 later
    results = json.load(open(osp.join(res.run_dir, 'results.json')))
    assert results['best_epoch'] == 2 and results['best_val_mse'] == 1.0
    assert 'E_prime_paper' in results['test']
    assert osp.exists(osp.join(res.run_dir, 'loss.png')) or \
        not _has_matplotlib()


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_validation_without_equivariance_trains_the_same_model(tmp_path,
                                                               data_root):
    # the equivariance metrics of validation draw their own group elements:
    # leaving them out changes no training step, no validation loss, no
    # selection and no test figure; their columns are nan
    full, lean = (train(make_config(tmp_path / name, data_root, epochs=3,
                                    loss='remul', val_equivariance=flag),
                        progress=False, log=quiet)
                  for name, flag in (('full', True), ('lean', False)))
    for a, b in zip(full.history, lean.history):
        for key in ('train_loss', 'train_equi', 'val_mse'):
            assert a[key] == b[key], key
        assert a['val_E_prime'] == a['val_E_prime'] > 0
        assert all(b[k] != b[k] for k in ('val_E', 'val_E_prime',
                                          'val_E_prime_rel',
                                          'val_E_prime_paper'))
    assert full.best_epoch == lean.best_epoch
    assert set(full.test) == set(lean.test)
    for key in set(full.test) - {'seconds_per_epoch'}:
        assert full.test[key] == lean.test[key], key
    assert lean.test['E_prime'] > 0  # the test split gets every metric
    with pytest.raises(TypeError, match='val_equivariance'):
        TrainConfig(val_equivariance=1).resolved()
    # a resumed run may change it (the training does not depend on it)
    more = train(make_config(tmp_path / 'full', data_root, epochs=4,
                             loss='remul', val_equivariance=False),
                 resume_from=str(tmp_path / 'full'), progress=False,
                 log=quiet)
    assert more.history[2]['val_E_prime'] > 0
    assert more.history[3]['val_E_prime'] != more.history[3]['val_E_prime']
