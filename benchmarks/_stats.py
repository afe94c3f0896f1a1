"""Intervals over seeds for the benchmark tables: the mean with a Student-t
interval, a *paired* Student-t interval for the mean difference of two
methods run on the same seeds with the exact sign-flip p-value, a verdict
that calls a difference whose interval contains 0 a tie ("not shown to
differ"), formatting for tables, and the recomputation of every stored
comparison of a results JSON from its per-seed values.

Example:

    >>> from _stats import mean_interval, paired_t, sign_flip_p, verdict
    >>> iv = mean_interval([0.011, 0.012, 0.0105, 0.0118, 0.0112])
    >>> print(iv.format(4))
    0.0113 [0.0105, 0.0121]
    >>> diff = paired_t([1.0, 1.1, 0.9], [2.0, 2.2, 1.9])
    >>> verdict(diff, 'REMUL', 'augmentation')
    'REMUL lower'
    >>> sign_flip_p([1.0, 1.1, 0.9], [2.0, 2.2, 1.9])  # 3 pairs: >= 2/8
    0.25
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


#: the method of every paired comparison (stored in each comparison of the
#: JSONs as ``method``)
PAIRED_METHOD = ('paired Student-t 95% interval of the mean seed-wise '
                 'difference (t with n - 1 degrees of freedom); exact '
                 'two-sided sign-flip p-value over the 2^n sign assignments')

#: the most pairs the exact sign-flip test enumerates (2^20 assignments)
MAX_SIGN_FLIP_PAIRS = 20


def _paired(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    x, y = _values(a, 'a'), _values(b, 'b')
    if x.shape != y.shape:
        raise ValueError(f"'a' and 'b' must be paired (same length; got "
                         f"{x.size} and {y.size})")
    return x - y


def paired_t(a: Sequence[float], b: Sequence[float],
             confidence: float = 0.95) -> Interval:
    """Student-t interval of the mean difference ``a - b`` of two methods
    measured on the same seeds (``a[i]`` and ``b[i]`` share seed ``i``):
    :math:`\\bar d \\pm t_{n-1}\\, s_d / \\sqrt{n}` over the seed-wise
    differences :math:`d_i = a_i - b_i` (undefined for one pair)."""
    d = _paired(a, b)
    _check_confidence(confidence)
    est = float(d.mean())
    if d.size < 2:
        return Interval(est, None, None, 1, confidence, 'paired t')
    half = t_quantile(d.size - 1, confidence) * float(d.std(ddof=1)) / \
        math.sqrt(d.size)
    return Interval(est, est - half, est + half, int(d.size), confidence,
                    'paired t')


def sign_flip_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Exact two-sided sign-flip (randomisation) p-value of the mean
    difference ``a - b`` of paired values: the share of the :math:`2^n`
    assignments of signs to the seed-wise differences whose mean is at
    least as far from 0 as the observed one. With ``n`` pairs it is never
    below :math:`2 / 2^n` (0.0625 for 5 seeds); 1.0 when every difference
    is 0."""
    d = _paired(a, b)
    n = d.size
    if n > MAX_SIGN_FLIP_PAIRS:
        raise ValueError(f'the exact sign-flip test enumerates 2^n sign '
                         f'assignments; at most {MAX_SIGN_FLIP_PAIRS} pairs '
                         f'(got {n})')
    bits = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1
    sums = np.abs((1 - 2 * bits) @ d)
    observed = abs(float(d.sum()))
    # the observed assignment itself always counts; relative tolerance for
    # the float rounding of equal sums in another order
    tol = 1e-12 * max(1.0, float(np.abs(d).sum()))
    return float(np.count_nonzero(sums >= observed - tol)) / 2 ** n


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
            names: Optional[Tuple[str, str]] = None) -> Dict:
    """Paired comparison of two ``run_all`` rows on ``key``, as a dict for
    JSON (``names`` replace the rows' labels in ``a``, ``b`` and the
    verdict): the paired t-interval of the mean difference ``a - b``
    (:func:`paired_t`), its verdict (``"tie"`` exactly when the interval
    contains 0), the exact sign-flip p-value (``p_sign_flip``), the means
    of ``a`` and ``b`` over the paired seeds (``a_mean``, ``b_mean``) and
    the interval's half-width relative to the larger of them in absolute
    value (``relative_half_width``: how large a difference, as a share of
    the compared values, the interval still leaves room for; a share of
    the smaller mean would blow up next to an exactly equivariant model's
    E' of about 0),
    on how many seeds ``a`` is lower (``a_lower_on``; robust to one
    diverged run, which can make the mean's interval a tie) and the
    ``method``."""
    a, b, seeds = paired_by_seed(row_a, row_b, key)
    if not seeds:
        raise ValueError(f"rows {row_a['label']!r} and {row_b['label']!r} "
                         f"share no seed with {key!r}")
    diff = paired_t(a, b)
    a_name, b_name = names or (row_a['label'], row_b['label'])
    a_mean, b_mean = float(np.mean(a)), float(np.mean(b))
    reference = max(abs(a_mean), abs(b_mean))
    rel = None
    if diff.defined and reference > 0.0:
        rel = (diff.high - diff.low) / 2 / reference
    return {'a': a_name, 'b': b_name, 'key': key, 'seeds': seeds,
            'method': PAIRED_METHOD,
            'difference': diff.as_dict(),
            'verdict': verdict(diff, a_name, b_name),
            'p_sign_flip': sign_flip_p(a, b),
            'a_mean': a_mean, 'b_mean': b_mean,
            'relative_half_width': rel,
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
PAIRED_NOTE = (
    'Paired differences over seeds: the mean of the seed-wise differences '
    'a - b with a 95% Student-t interval (t with n - 1 degrees of freedom). '
    '"tie" exactly when the interval contains 0: not shown to differ, which '
    'is not "equal"; "half-width": the interval\'s half-width as a share of '
    'the larger of the two means, the size of a difference that could '
    'still hide in it. "p": '
    'exact two-sided sign-flip p-value over the 2^n sign assignments of the '
    'differences (with 5 seeds it cannot go below 0.0625). "a lower on": '
    'the seeds on which the first row is lower (robust to one diverged '
    'run). Each interval is 95% on its own; no correction for the many '
    'comparisons of the results pages is applied, so a few intervals that '
    'exclude 0 are expected by chance alone.')


def relative_half_width(c: Dict) -> str:
    """``"±16%"``: the half-width of a comparison's interval relative to
    the larger of its two means (``relative_half_width`` of
    :func:`compare`), ``"-"`` when undefined."""
    rel = c.get('relative_half_width')
    return '-' if rel is None else f'±{100 * rel:.0f}%'


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
        'difference', 'metric', 'estimate [95% t-interval]', 'half-width',
        'p (sign-flip)', 'verdict', 'a lower on']
    lines = ['', PAIRED_NOTE, '', '| ' + ' | '.join(head) + ' |',
             '|' + '---|' * len(head)]
    for c in comparisons:
        name, scale = metrics[c['key']]
        lead = []
        if first:
            value = c[first[1]]
            lead = [f'{value:,}' if isinstance(value, int) else str(value)]
        p = c.get('p_sign_flip')
        cells = lead + [f'{c["a"]} - {c["b"]}', name,
                        format_interval(c['difference'], 3, scale),
                        relative_half_width(c),
                        '-' if p is None else f'{p:.3g}',
                        c['verdict'],
                        f'{c.get("a_lower_on", "?")}/{len(c["seeds"])}']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines


def _is_comparison(item) -> bool:
    return isinstance(item, dict) and 'difference' in item and \
        'verdict' in item and 'a' in item and 'b' in item


#: fields of a comparison that select its rows besides the names
ROW_SELECTORS = ('num_train', 'molecule')


def row_of(rows: Sequence[Dict], name: str, comparison: Dict) -> Dict:
    """The row a comparison's ``a`` or ``b`` (``name``) stands for: the
    row with that ``label``, ``row`` (its short name) or ``method``, among
    those with the comparison's ``num_train`` / ``molecule`` where it has
    one. A name that matches no row or more than one is a ValueError."""
    found = [r for r in rows
             if all(r.get(k) == comparison[k] for k in ROW_SELECTORS
                    if k in comparison)
             and name in (r.get('label'), r.get('row'), r.get('method'))]
    if len(found) != 1:
        where = ', '.join(f'{k}={comparison[k]!r}' for k in ROW_SELECTORS
                          if k in comparison)
        raise ValueError(f'comparison {comparison["a"]!r} - '
                         f'{comparison["b"]!r}: {len(found)} rows match '
                         f'{name!r}{" at " + where if where else ""} '
                         f'(expected exactly one)')
    return found[0]


def recompute_comparisons(payload: Dict) -> List[Tuple[str, Dict, Dict]]:
    """Recomputes, in place, every comparison stored in a results JSON
    (any list of :func:`compare` dicts, at any depth) from the per-seed
    values of the ``rows`` next to it or above it (:func:`row_of`), with
    the current method; fields that are not :func:`compare`'s own (e.g.
    ``num_train``) are kept. Returns ``(where, old, new)`` per comparison,
    ``where`` the keys leading to its list (e.g.
    ``"tasks/gravity/comparisons"``)."""
    changes: List[Tuple[str, Dict, Dict]] = []

    def walk(node, rows, where):
        if isinstance(node, dict):
            if isinstance(node.get('rows'), list):
                rows = node['rows']
            for key, value in node.items():
                walk(value, rows, f'{where}/{key}' if where else str(key))
        elif isinstance(node, list):
            for i, item in enumerate(node):
                if _is_comparison(item):
                    if rows is None:
                        raise ValueError(f'comparison {item["a"]!r} - '
                                         f'{item["b"]!r} has no rows to '
                                         f'recompute it from')
                    new = compare(row_of(rows, item['a'], item),
                                  row_of(rows, item['b'], item),
                                  item['key'], names=(item['a'], item['b']))
                    new.update((k, v) for k, v in item.items()
                               if k not in new and k not in OLD_FIELDS)
                    changes.append((where, item, new))
                    node[i] = new
                else:
                    walk(item, rows, where)
    walk(payload, None, '')
    return changes


def compare_named(rows: Sequence[Dict], pairs: Sequence[Tuple[str, str]],
                  keys: Sequence[str], **where) -> List[Dict]:
    """:func:`compare` of every ``(name a, name b)`` of ``pairs`` whose two
    rows are present among ``rows`` (a name is a row's ``label``, ``row``
    or ``method``, see :func:`row_of`; ``where``, e.g. ``num_train=300``,
    restricts the rows and is stored in each comparison), on every key of
    ``keys``. What the ``--from-json`` re-rendering of a table uses to
    rebuild its comparisons from a written JSON."""
    out = []
    for a, b in pairs:
        try:
            ra, rb = (row_of(rows, name, dict(where, a=a, b=b))
                      for name in (a, b))
        except ValueError:
            continue  # a row not in the table (e.g. not finished)
        out += [dict(compare(ra, rb, key, names=(a, b)), **where)
                for key in keys]
    return out


#: fields of comparisons written by earlier versions, dropped when
#: recomputed
OLD_FIELDS = ('num_resamples',)


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
           'mean_interval', 'paired_t', 'sign_flip_p', 'PAIRED_METHOD',
           'PAIRED_NOTE', 'verdict', 'paired_by_seed', 'row_of',
           'recompute_comparisons', 'relative_half_width', 'compare_named',
           'compare', 'far_seeds', 'interval_cells', 'add_intervals',
           'compare_rows',
           'comparison_table', 'missing_lines', 'far_seed_lines']
