"""Metrics files and plots: plots leave the user's plotting state alone."""
import csv
import io
import json

import pytest

from torch_geometric_remul.train.report import (
    Progress,
    metrics_csv,
    plot_history,
    write_metrics,
)
from torch_geometric_remul.train.rundir import RunFiles

ROWS = [{'epoch': e, 'train_loss': 1.0 / e, 'val_mse': 2.0 / e,
         'val_E_prime': 0.1 / e, 'val_E': 0.05 / e} for e in (1, 2, 3)]


def test_plots_leave_the_backend_and_pyplot_alone(tmp_path, monkeypatch):
    matplotlib = pytest.importorskip('matplotlib')
    backend = matplotlib.rcParams['backend']

    def refuse(*args, **kwargs):
        raise AssertionError('plot_history switched the matplotlib backend')

    monkeypatch.setattr(matplotlib, 'use', refuse)
    import matplotlib.pyplot as plt
    before = plt.get_fignums()
    paths = plot_history(str(tmp_path), ROWS)
    assert [p.rsplit('/', 1)[-1] for p in paths] == ['loss.png',
                                                     'equivariance.png']
    for path in paths:
        with open(path, 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert matplotlib.rcParams['backend'] == backend
    assert plt.get_fignums() == before  # no pyplot figure left behind


def test_metrics_files(tmp_path):
    files = RunFiles(str(tmp_path))
    write_metrics(files, ROWS)
    assert json.loads((tmp_path / 'metrics.json').read_text()) == ROWS
    rows = list(csv.DictReader(io.StringIO(metrics_csv(ROWS))))
    assert [float(r['val_mse']) for r in rows] == [r['val_mse'] for r in
                                                  ROWS]
    assert (tmp_path / 'metrics.csv').read_bytes() == \
        metrics_csv(ROWS).encode()


def test_progress_bar_off_imports_nothing(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'tqdm', None)  # would fail to import
    bar = Progress(False, total=2)
    bar.update(ROWS[0])
    bar.close()
