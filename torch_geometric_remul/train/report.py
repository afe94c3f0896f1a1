r"""What a run reports: its metrics files, its test results, its plots and
its progress bar.

Plots are drawn on a :class:`matplotlib.figure.Figure` of their own and
written with its ``savefig``: the process's plotting state (the
:mod:`matplotlib.pyplot` figures, the backend chosen in a notebook) is never
touched.
"""
import csv
import io
import json
import math
import os.path as osp
from typing import Any, Dict, List, Optional

#: ``file -> (title, {curve label: metrics column})`` of the plots.
PLOT_CURVES = {
    'loss.png': ('loss', {'train loss': 'train_loss', 'val MSE': 'val_mse'}),
    'equivariance.png': ('equivariance error', {"val E'": 'val_E_prime',
                                                'val E': 'val_E'}),
}


def metrics_csv(history: List[Dict[str, float]]) -> str:
    r"""The metrics rows as CSV text (a header line, then one line per
    epoch; the ``\r\n`` line ends of :mod:`csv`).

    Example:

        >>> metrics_csv([{'epoch': 1, 'val_mse': 0.5}]).splitlines()
        ['epoch,val_mse', '1,0.5']
    """
    buffer = io.StringIO()
    if history:
        writer = csv.DictWriter(buffer, fieldnames=list(history[0]),
                                lineterminator='\r\n')
        writer.writeheader()
        writer.writerows(history)
    return buffer.getvalue()


def write_metrics(files, history: List[Dict[str, float]]) -> None:
    r"""Writes ``metrics.json`` and ``metrics.csv`` through ``files`` (a
    :class:`~torch_geometric_remul.train.rundir.RunFiles`), atomically."""
    files.write_json('metrics.json', history)
    if history:
        files.write_text('metrics.csv', metrics_csv(history))


def write_results(files, test: Dict[str, float], config,
                  test_last: Optional[Dict[str, float]] = None,
                  best: Optional[Dict[str, Any]] = None,
                  epochs: Optional[int] = None,
                  provenance: Optional[Dict[str, Any]] = None) -> None:
    r"""Writes ``results.json``: the test metrics of the selected model
    (``test``), how it was selected (``selection``: ``"best_val"``, the
    epoch of the lowest validation MSE, ties to the earlier epoch, with
    ``best_epoch`` and ``best_val_mse``; ``"last"`` when no epoch had a
    finite validation MSE), the last epoch's test metrics (``test_last``,
    at epoch ``epochs``), the configuration and the provenance (code
    version, library versions, machine)."""
    files.write_json('results.json', {
        'selection': 'best_val' if best is not None else 'last',
        'best_epoch': best['epoch'] if best is not None else None,
        'best_val_mse': best['val_mse'] if best is not None else None,
        'epochs': epochs,
        'test': test,
        'test_last': test if test_last is None else test_last,
        'config': json.loads(config.to_json()),
        'provenance': provenance,
    })


def plot_history(run_dir: str, history: List[Dict[str, float]]) -> List[str]:
    r"""Writes ``loss.png`` and ``equivariance.png`` (log scale, one curve
    per metric) into ``run_dir``; returns their paths (an empty list when
    matplotlib is not installed). The global plotting state is untouched:
    no backend is selected and no :mod:`matplotlib.pyplot` figure is
    created.

    Example:

        >>> import tempfile
        >>> rows = [{'epoch': e, 'train_loss': 1 / e, 'val_mse': 2 / e,
        ...          'val_E_prime': 0.1 / e, 'val_E': 0.05 / e}
        ...         for e in (1, 2)]
        >>> paths = plot_history(tempfile.mkdtemp(), rows)
        >>> [p.rsplit('/', 1)[-1] for p in paths] in ([], ['loss.png',
        ...                                             'equivariance.png'])
        True
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return []
    epochs = [row['epoch'] for row in history]
    paths = []
    for name, (title, curves) in PLOT_CURVES.items():
        fig = Figure(figsize=(6, 4))
        ax = fig.subplots()
        for label, key in curves.items():
            # epochs without a value (not validated: NaN) are left out, so
            # that a curve validated every few epochs is still a line
            points = [(e, row[key]) for e, row in zip(epochs, history)
                      if key in row and math.isfinite(row[key])]
            ax.plot([e for e, _ in points], [v for _, v in points],
                    label=label)
        ax.set_yscale('log')
        ax.set_xlabel('epoch')
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        paths.append(osp.join(run_dir, name))
        fig.savefig(paths[-1], dpi=100)
    return paths


class Progress:
    r"""A progress bar over epochs (:mod:`tqdm`), or nothing when
    ``enabled`` is false.

    Args:
        enabled (bool): Whether to show it.
        total (int): Epochs of the run.
        initial (int, optional): Epochs already done. (default: ``0``)

    Example:

        >>> bar = Progress(False, total=3)
        >>> bar.update({'train_loss': 1.0, 'val_mse': 2.0,
        ...             'val_E_prime': 0.1})
        >>> bar.close()
    """
    def __init__(self, enabled: bool, total: int, initial: int = 0) -> None:
        self._bar: Optional[Any] = None
        if enabled:
            from tqdm.auto import tqdm
            self._bar = tqdm(total=total, initial=initial, unit='epoch',
                             dynamic_ncols=True)

    def update(self, row: Dict[str, float]) -> None:
        r"""Advances by one epoch, showing its loss, MSE and E'."""
        if self._bar is None:
            return
        self._bar.update(1)
        self._bar.set_postfix(loss=f'{row["train_loss"]:.3g}',
                              val_mse=f'{row["val_mse"]:.3g}',
                              E_prime=f'{row["val_E_prime"]:.3g}')

    def close(self) -> None:
        r"""Closes the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


__all__ = ['PLOT_CURVES', 'Progress', 'metrics_csv', 'plot_history',
           'write_metrics', 'write_results']
