import re
import subprocess
import sys
from pathlib import Path

import pytest

from torch_geometric_remul import __version__
from torch_geometric_remul.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_and_checks(capsys):
    assert main(['demo', '--graphs', '60', '--seed', '3']) == 0
    out = capsys.readouterr().out
    assert 'synthetic stand-in' in out
    assert '60 for 60 graphs' in out
    assert 'result: OK' in out
    err = float(re.search(r'inverse round trip error\s+(\S+)', out).group(1))
    assert err < 1e-10


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert 'demo' in capsys.readouterr().out


def test_bad_argument():
    with pytest.raises(SystemExit):
        main(['demo', '--graphs', '0'])


def test_module_entry_point():
    res = subprocess.run([sys.executable, '-m', 'torch_geometric_remul',
                          '--version'], capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 0
    assert __version__ in res.stdout


@pytest.mark.parametrize('args,message', [
    (['--samples', '0'], "'--samples' must be >= 1 (got 0)"),
    (['--graphs', '0'], "'--graphs' must be >= 1 (got 0)"),
    (['--group', 'XYZ'], "'--group' must be one of SO3"),
])
def test_check_options_are_checked_first(tmp_path, capsys, args, message):
    # checked before the run is even looked at (it does not exist here)
    assert main(['check', str(tmp_path / 'run')] + args) == 1
    err = capsys.readouterr().err
    assert err.startswith(f'remul check: error: {message}')
    assert err.count('\n') == 1 and 'Traceback' not in err


def test_train_interrupted_before_training_starts(tmp_path, capsys,
                                                  monkeypatch):
    import torch_geometric_remul.train.loop as loop

    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, 'load_task', interrupted)
    run = tmp_path / 'run'
    assert main(['train', '--no-progress', '--data-root',
                 str(tmp_path / 'data'), '--run-dir', str(run)]) == 130
    assert 'interrupted before training started' in capsys.readouterr().err
    assert not run.exists()


def test_train_help_states_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(['train', '--help'])
    out = ' '.join(capsys.readouterr().out.split())
    for text in ('--overwrite', 'only --epochs and --data-root may change',
                 'default: remul', 'default: 0.01', 'default: data'):
        assert text in out, text
