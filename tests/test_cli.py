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
