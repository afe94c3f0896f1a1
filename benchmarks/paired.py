"""One figure of the paired differences the results pages rest on: for every
accuracy benchmark, REMUL against augmentation, REMUL against EGNN and the
other comparisons the text cites, each as the mean seed-wise difference of
test MSE with its paired 95% Student-t interval, in percent of the second
method's mean (so that tasks with different units share an axis).

Usage:  python benchmarks/paired.py [--results benchmarks/results]

Reads the results JSONs written by headline.py, nbody.py, gravity.py,
data_efficiency.py, mocap.py and md17.py (trains nothing; a missing JSON
is skipped) and writes ``paired.png`` next to them. A tie (interval
containing 0) is drawn open: not shown to differ. The rows' own intervals
in the other figures overlap in many places where the paired difference
excludes 0; the verdicts come from the paired differences.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _runs import (  # noqa: E402
    RESULTS,
    Figures,
    load_results,
    paired_panel,
)

#: the benchmarks drawn, with a short name per part of their JSON
SOURCES = (('headline', 'N-body 300 ep.'), ('nbody', 'N-body 60 ep.'),
           ('gravity', 'gravity'), ('data_efficiency', 'data eff.'),
           ('mocap', 'mocap proxy'), ('md17', 'MD17 stand-in'))

def _egnn(name: str) -> bool:
    """Whether a row name is EGNN's (at whatever learning rate its search
    chose: ``"EGNN (lr 0.0005)"``)."""
    return name.split(' (lr ')[0] == 'EGNN'


#: the panels: title and a test ``(a, b) -> bool`` on a comparison's names
PANELS = (
    ('REMUL - augmentation',
     lambda a, b: 'REMUL' in a and 'augmentation' in b),
    ('REMUL - EGNN', lambda a, b: 'REMUL' in a and _egnn(b)),
    ('augmentation - plain, EGNN - augmentation',
     lambda a, b: ('augmentation' in a and 'plain' in b) or
     (_egnn(a) and 'augmentation' in b)),
)


#: the x axis ends at +-LIMIT percent (a wider interval is cut and written
#: out: a diverged run makes an interval span several times the mean)
LIMIT = 120.0


def collect(results: str) -> List[Tuple[str, Dict]]:
    """``(where, comparison)`` of every test-MSE comparison of the JSONs
    in ``results``; ``where`` names the benchmark and its part (protocol,
    task, training-set size or molecule)."""
    out = []
    for name, short in SOURCES:
        path = osp.join(results, f'{name}.json')
        if not osp.exists(path):
            continue
        payload = load_results(path)
        parts = [('', payload)]
        if 'protocols' in payload:
            parts = list(payload['protocols'].items())
        elif 'tasks' in payload:
            parts = list(payload['tasks'].items())
        for part, body in parts:
            for c in body.get('comparisons', []):
                if c['key'] != 'mse':
                    continue
                where = ' '.join(x for x in (short, part) if x)
                if 'num_train' in c:
                    where += f' {c["num_train"]:,}'
                if 'molecule' in c:
                    where += f' {c["molecule"]}'
                out.append((where, c))
    return out


def plot(found: List[Tuple[str, Dict]]):
    """``plot(figures) -> figure``: one panel per entry of ``PANELS``."""
    chosen = [[(w, c) for w, c in found if test(c['a'], c['b'])]
              for _, test in PANELS]

    def draw(figures):
        heights = [max(len(c), 1) for c in chosen]
        fig, axes = figures.subplots(
            len(PANELS), 1, figsize=(10, 0.26 * sum(heights) + 3),
            gridspec_kw={'height_ratios': heights})
        for ax, (title, _), part in zip(axes, PANELS, chosen):
            labels = {id(c): f'{w}: {c["a"]} - {c["b"]}' for w, c in part}
            paired_panel(ax, [c for _, c in part], relative=True,
                         xlabel='paired difference of test MSE, % of the '
                         'second method\'s mean',
                         label=lambda c: labels[id(c)], limit=LIMIT)
            ax.set_title(title, fontsize=9)
        fig.suptitle('Paired differences over seeds (95% t-interval, n - 1 '
                     'df); open: tie (not shown to differ); green: first '
                     'lower, red: second lower\np: exact sign-flip p-value '
                     '(>= 0.0625 with 5 seeds), then the seeds on which the '
                     'first is lower', fontsize=8)
        fig.tight_layout(rect=(0, 0, 1, 0.975))
        return fig
    return draw


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--results', default=RESULTS,
                        help='the directory of the results JSONs (default: '
                        'benchmarks/results)')
    args = parser.parse_args(argv)
    found = collect(args.results)
    if not found:
        parser.error(f'no comparisons in {args.results}')
    from matplotlib.figure import Figure
    path = osp.join(args.results, 'paired.png')
    tmp = path + '.tmp.png'
    plot(found)(Figures(Figure)).savefig(tmp, dpi=100)
    os.replace(tmp, path)
    print('wrote', path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
