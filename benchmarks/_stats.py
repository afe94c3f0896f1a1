"""Intervals over seeds for the benchmark tables: the mean with a Student-t
interval, a *paired* bootstrap interval for the mean difference of two
methods run on the same seeds, a verdict that calls a difference whose
interval contains 0 a tie, and formatting for tables.

Example:

    >>> from _stats import mean_interval, paired_bootstrap, verdict
    >>> iv = mean_interval([0.011, 0.012, 0.0105, 0.0118, 0.0112])
    >>> print(iv.format(4))
    0.0113 [0.0105, 0.0121]
    >>> diff = paired_bootstrap([1.0, 1.1, 0.9], [2.0, 2.2, 1.9])
    >>> verdict(diff, 'REMUL', 'augmentation')
    'REMUL lower'
"""
import math
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

#: two-sided 95% quantiles t_{0.975, df} for df = 1..30 (used when scipy
#: is not installed); larger df use the tabulated df just below (_T95_LARGE)
_T95 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060,
        2.2622, 2.2281, 2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199,
        2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639,
        2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)
_T95_LARGE = ((40, 2.0211), (60, 2.0003), (120, 1.9799))


@dataclass(frozen=True)
class Interval:
    """An estimate with a confidence interval (``low``/``high`` are
    ``None`` when there are too few values for one, e.g. a single seed)."""
    estimate: float
    low: Optional[float]
    high: Optional[float]
    n: int
    confidence: float = 0.95
    method: str = 't'

    @property
    def defined(self) -> bool:
        return self.low is not None and self.high is not None

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the closed interval (``False`` when the
        interval is undefined)."""
        return self.defined and self.low <= value <= self.high

    def format(self, digits: int = 4, scale: float = 1.0) -> str:
        """``"0.0113 [0.0101, 0.0125]"`` (values multiplied by ``scale``),
        or the estimate alone with ``(n=1)`` when undefined."""
        est = f'{self.estimate * scale:.{digits}f}'
        if not self.defined:
            return f'{est} (n={self.n})'
        return (f'{est} [{self.low * scale:.{digits}f}, '
                f'{self.high * scale:.{digits}f}]')

    def as_dict(self) -> Dict:
        return asdict(self)


def format_interval(ci: Dict, digits: int = 4, scale: float = 1.0) -> str:
    """:meth:`Interval.format` of an interval stored as a dict (JSON)."""
    return Interval(**ci).format(digits, scale)


def error_bars(cis: Sequence[Dict], scale: float = 1.0
               ) -> Tuple[List[float], List[List[float]]]:
    """Estimates and asymmetric error-bar lengths ``[below, above]`` (for
    matplotlib's ``errorbar``) of intervals stored as dicts, multiplied by
    ``scale``; an undefined interval (one seed) gets no bar."""
    est = [ci['estimate'] * scale for ci in cis]
    below = [0.0 if ci['low'] is None else
             (ci['estimate'] - ci['low']) * scale for ci in cis]
    above = [0.0 if ci['high'] is None else
             (ci['high'] - ci['estimate']) * scale for ci in cis]
    return est, [below, above]


def _values(values: Sequence[float], name: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"'{name}' must be a non-empty 1-D sequence of "
                         f"numbers (got shape {list(x.shape)})")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"'{name}' must hold finite numbers (got {x})")
    return x


def _check_confidence(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"'confidence' must lie in (0, 1) (got "
                         f"{confidence!r})")
    return float(confidence)


def t_quantile(df: int, confidence: float = 0.95) -> float:
    """The two-sided Student-t quantile :math:`t_{(1+c)/2,\\,df}`: from
    :mod:`scipy.stats` when installed, else (95% only) from a table."""
    _check_confidence(confidence)
    if df < 1:
        raise ValueError(f"'df' must be >= 1 (got {df})")
    try:
        from scipy import stats
    except ImportError:
        return _t_table(df, confidence)
    return float(stats.t.ppf(0.5 + confidence / 2, df))


def _t_table(df: int, confidence: float) -> float:
    if abs(confidence - 0.95) > 1e-12:
        raise ValueError(f"without scipy only confidence=0.95 is available "
                         f"(got {confidence})")
    if df <= len(_T95):
        return _T95[df - 1]
    # between tabulated df, the quantile of the next lower df (slightly
    # wider: conservative)
    value = _T95[-1]
    for limit, tabulated in _T95_LARGE:
        if df < limit:
            return value
        value = tabulated
    return value


def mean_interval(values: Sequence[float],
                  confidence: float = 0.95) -> Interval:
    """The mean of ``values`` (e.g. one per seed) with a Student-t
    interval, :math:`\\bar x \\pm t_{n-1}\\, s / \\sqrt{n}`."""
    x = _values(values, 'values')
    _check_confidence(confidence)
    mean = float(x.mean())
    if x.size < 2:
        return Interval(mean, None, None, 1, confidence, 't')
    half = t_quantile(x.size - 1, confidence) * float(x.std(ddof=1)) / \
        math.sqrt(x.size)
    return Interval(mean, mean - half, mean + half, int(x.size), confidence,
                    't')


def paired_bootstrap(a: Sequence[float], b: Sequence[float],
                     num_resamples: int = 10_000, confidence: float = 0.95,
                     seed: int = 0) -> Interval:
    """Percentile bootstrap interval of the mean difference ``a - b`` of two
    methods measured on the same seeds (``a[i]`` and ``b[i]`` share seed
    ``i``): the seeds are resampled with replacement, the pairs kept
    together. Reproducible (``numpy.random.default_rng(seed)``)."""
    x, y = _values(a, 'a'), _values(b, 'b')
    if x.shape != y.shape:
        raise ValueError(f"'a' and 'b' must be paired (same length; got "
                         f"{x.size} and {y.size})")
    _check_confidence(confidence)
    if isinstance(num_resamples, bool) or not isinstance(
            num_resamples, int) or num_resamples < 1:
        raise ValueError(f"'num_resamples' must be a positive int (got "
                         f"{num_resamples!r})")
    d = x - y
    est = float(d.mean())
    if d.size < 2:
        return Interval(est, None, None, 1, confidence, 'paired bootstrap')
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(num_resamples, d.size))
    means = d[idx].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    # a constant difference gives exactly that constant (no rounding drift)
    low, high = min(float(low), est), max(float(high), est)
    return Interval(est, low, high, int(d.size), confidence,
                    'paired bootstrap')


def verdict(diff: Interval, a: str = 'A', b: str = 'B') -> str:
    """``"tie"`` when the interval of ``a - b`` contains 0, else
    ``"<a> lower"`` or ``"<b> lower"``; ``"undetermined"`` when the
    interval is undefined (a single seed)."""
    if not diff.defined:
        return 'undetermined'
    if diff.low <= 0.0 <= diff.high:
        return 'tie'
    return f'{a} lower' if diff.high < 0.0 else f'{b} lower'


def paired_by_seed(row_a: Dict, row_b: Dict,
                   key: str = 'mse') -> Tuple[List[float], List[float],
                                              List[int]]:
    """The values of ``key`` of two rows written by ``_runs.run_all``
    (``seeds`` and ``runs``), paired by seed: ``(a, b, seeds)`` over the
    seeds both rows have."""
    a = {s: r[key] for s, r in zip(row_a['seeds'], row_a['runs'])
         if key in r}
    b = {s: r[key] for s, r in zip(row_b['seeds'], row_b['runs'])
         if key in r}
    seeds = [s for s in row_a['seeds'] if s in a and s in b]
    return [a[s] for s in seeds], [b[s] for s in seeds], seeds


def compare(row_a: Dict, row_b: Dict, key: str = 'mse',
            num_resamples: int = 10_000, seed: int = 0,
            names: Optional[Tuple[str, str]] = None) -> Dict:
    """Paired comparison of two ``run_all`` rows on ``key``: the bootstrap
    interval of the mean difference ``a - b``, its verdict and on how many
    of the seeds ``a`` is lower (``a_lower_on``; robust to one diverged
    run, which can make the mean's interval a tie), as a dict for JSON
    (``names`` replace the rows' labels in ``a``, ``b`` and the
    verdict)."""
    a, b, seeds = paired_by_seed(row_a, row_b, key)
    if not seeds:
        raise ValueError(f"rows {row_a['label']!r} and {row_b['label']!r} "
                         f"share no seed with {key!r}")
    diff = paired_bootstrap(a, b, num_resamples=num_resamples, seed=seed)
    a_name, b_name = names or (row_a['label'], row_b['label'])
    return {'a': a_name, 'b': b_name, 'key': key, 'seeds': seeds,
            'difference': diff.as_dict(),
            'verdict': verdict(diff, a_name, b_name),
            'a_lower_on': sum(x < y for x, y in zip(a, b))}


def far_seeds(row: Dict, key: str = 'mse', factor: float = 3.0
              ) -> List[Tuple[int, float]]:
    """``(seed, value)`` of the runs of a ``run_all`` row whose ``key`` is
    more than ``factor`` times the row's median over seeds (a diverged or
    failed run, which the mean and its t-interval hide in a wide
    interval)."""
    vals = [r[key] for r in row['runs'] if key in r]
    if len(vals) < 3:
        return []
    median = float(np.median(vals))
    return [(s, r[key]) for s, r in zip(row['seeds'], row['runs'])
            if key in r and r[key] > factor * median]


#: columns of the charged N-body tables' differences (key -> text, scale)
MSE_AND_E_PRIME = {'mse': ('test MSE x 1e-3', 1e3),
                   'E_prime_paper': ("E' (paper) x 1e-2", 1e2)}

#: the sentence above every table of paired differences
PAIRED_NOTE = ('Paired differences over seeds (bootstrap, 10,000 resamples, '
               '95% percentile interval); "tie" when the interval contains '
               '0. "a lower on": the seeds on which the first row is lower '
               '(robust to one diverged run).')


def comparison_table(comparisons: Sequence[Dict],
                     metrics: Dict[str, Tuple[str, float]],
                     first: Optional[Tuple[str, str]] = None) -> List[str]:
    """Markdown lines of a table of paired differences (written by
    :func:`compare`): ``metrics`` maps each compared key to its column
    text and scale (e.g. ``{'mse': ('test MSE x 1e-3', 1e3)}``); ``first``
    is an optional leading column ``(header, field of the comparison)``,
    e.g. ``('molecule', 'molecule')``. Empty without comparisons."""
    if not comparisons:
        return []
    head = ([first[0]] if first else []) + [
        'difference', 'metric', 'estimate [interval]', 'verdict',
        'a lower on']
    lines = ['', PAIRED_NOTE, '', '| ' + ' | '.join(head) + ' |',
             '|' + '---|' * len(head)]
    for c in comparisons:
        name, scale = metrics[c['key']]
        lead = []
        if first:
            value = c[first[1]]
            lead = [f'{value:,}' if isinstance(value, int) else str(value)]
        cells = lead + [f'{c["a"]} - {c["b"]}', name,
                        format_interval(c['difference'], 3, scale),
                        c['verdict'],
                        f'{c.get("a_lower_on", "?")}/{len(c["seeds"])}']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines


def missing_lines(missing: Sequence[str]) -> List[str]:
    """The markdown note on rows left out of a table because not every
    seed finished (empty when none)."""
    if not missing:
        return []
    return ['', 'Not yet finished for every seed (not tabulated): ' +
            ', '.join(missing) + '.']


def far_seed_lines(rows: Sequence[Dict], scale: float, unit: str,
                   key: str = 'mse', name=lambda r: r['label']
                   ) -> List[str]:
    """A markdown note on every row with runs far above its median
    (:func:`far_seeds`): its single seeds and median, so that a diverged
    run is seen as such (empty when there is none)."""
    out = []
    for r in rows:
        far = far_seeds(r, key)
        if far:
            vals = [run[key] * scale for run in r['runs'] if key in run]
            out.append(
                f'{name(r)}: seed(s) {", ".join(str(s) for s, _ in far)} '
                f'far above the median (single seeds '
                f'{", ".join(f"{v:.1f}" for v in vals)}, median '
                f'{float(np.median(vals)):.1f} {unit})')
    if not out:
        return []
    return ['', 'Runs more than 3x their row\'s median (a diverged run '
            'widens the t-interval of the mean): ' + '; '.join(out) + '.']


def interval_cells(row: Dict, mse_scale: float, mse_digits: int = 3
                   ) -> List[str]:
    """The table cells test MSE, E' (paper, Eq. 9), E' (per node) and best
    epochs of a ``run_all`` row with intervals (:func:`add_intervals`):
    MSE multiplied by ``mse_scale``, both E' by 1e2."""
    return [format_interval(row['mse_ci'], mse_digits, mse_scale),
            format_interval(row['E_prime_paper_ci'], 3, 1e2),
            format_interval(row['E_prime_ci'], 3, 1e2),
            ', '.join(str(e) for e in row['best_epochs'])]


def add_intervals(rows: Sequence[Dict], keys: Sequence[str]) -> None:
    """Adds ``<key>_ci`` (mean over seeds with a 95% t-interval, as a dict)
    to every ``run_all`` row, for each key of ``keys`` its runs report."""
    for row in rows:
        for key in keys:
            vals = [r[key] for r in row['runs'] if key in r]
            if vals:
                row[key + '_ci'] = mean_interval(vals).as_dict()


def compare_rows(rows: Sequence[Dict], pairs: Sequence[Tuple[str, str]],
                 keys: Sequence[str]) -> List[Dict]:
    """:func:`compare` of every ``(label a, label b)`` of ``pairs`` whose
    two rows are present, on every key of ``keys``."""
    by_label = {r['label']: r for r in rows}
    return [compare(by_label[a], by_label[b], key) for a, b in pairs
            if a in by_label and b in by_label for key in keys]


__all__ = ['Interval', 'format_interval', 'error_bars', 't_quantile',
           'mean_interval', 'paired_bootstrap', 'verdict', 'paired_by_seed',
           'compare', 'far_seeds', 'interval_cells', 'add_intervals',
           'compare_rows',
           'comparison_table', 'missing_lines', 'far_seed_lines']
