"""Shared helpers of the accuracy benchmarks: run `train()` for a list of
configurations and seeds, aggregate, and write JSON, markdown and a plot."""
import json
import os
import os.path as osp
import statistics
import time
from typing import Dict, List

from torch_geometric_remul.train import TrainConfig, train

RESULTS = osp.join(osp.dirname(osp.abspath(__file__)), 'results')

#: sizes used by --quick (a smoke run of the whole pipeline)
QUICK = dict(num_train=32, num_val=16, num_test=16, epochs=2, hidden=8,
             layers=1, batch_size=16, eval_graphs=16, eval_samples=2)


def run_all(configs: List[Dict], seeds: List[int], common: Dict,
            work_dir: str, log=print) -> List[Dict]:
    """Trains every configuration for every seed; returns one row per
    configuration with mean and standard deviation over seeds."""
    rows = []
    for cfg in configs:
        label = cfg.pop('label')
        per_seed = []
        for seed in seeds:
            values = dict(common, **cfg, seed=seed)
            values['run_dir'] = osp.join(work_dir, f'{label}-seed{seed}'
                                         .replace(' ', '_'))
            test = _finished(values)
            if test is None:
                t0 = time.perf_counter()
                test = train(TrainConfig(**values), progress=False,
                             log=lambda s: None).test
                test['wall_seconds'] = time.perf_counter() - t0
                note = ''
            else:
                note = ' (finished run reused)'
            per_seed.append(test)
            log(f'{label:32s} seed {seed}: test MSE {test["mse"]:.5f}, '
                f'E\' {test["E_prime"]:.4f}{note}')
        row = {'label': label, 'config': cfg, 'seeds': seeds,
               'runs': per_seed}
        for key in ('mse', 'E', 'E_prime', 'E_prime_rel',
                    'seconds_per_epoch'):
            vals = [r[key] for r in per_seed]
            row[key] = statistics.fmean(vals)
            row[key + '_std'] = statistics.stdev(vals) if len(vals) > 1 \
                else 0.0
        rows.append(row)
    return rows


def _finished(values: Dict):
    """The test results of a run directory that already holds a finished
    run of exactly this configuration, else ``None`` (so that an interrupted
    benchmark continues where it stopped)."""
    path = osp.join(values['run_dir'], 'results.json')
    if not osp.exists(path):
        return None
    with open(path) as f:
        saved = json.load(f)
    wanted = json.loads(TrainConfig(**values).resolved().to_json())
    return saved['test'] if saved.get('config') == wanted else None


def markdown_table(rows: List[Dict], title: str) -> str:
    lines = [f'### {title}', '',
             "| model / loss | test MSE | E' | E | s / epoch |",
             '|---|---|---|---|---|']
    for r in rows:
        pm = (lambda k: f'{r[k]:.5f} +- {r[k + "_std"]:.5f}'
              if len(r['seeds']) > 1 else f'{r[k]:.5f}')
        lines.append(f'| {r["label"]} | {pm("mse")} | {r["E_prime"]:.4f} | '
                     f'{r["E"]:.4f} | {r["seconds_per_epoch"]:.2f} |')
    return '\n'.join(lines) + '\n'


def write_outputs(name: str, payload: Dict, table: str,
                  plot=None) -> List[str]:
    os.makedirs(RESULTS, exist_ok=True)
    paths = [osp.join(RESULTS, f'{name}.json'), osp.join(RESULTS,
                                                        f'{name}.md')]
    with open(paths[0], 'w') as f:
        json.dump(payload, f, indent=2)
    with open(paths[1], 'w') as f:
        f.write(table)
    if plot is not None:
        try:
            import matplotlib
            matplotlib.use('Agg')
            import matplotlib.pyplot as plt
        except ImportError:
            return paths
        fig = plot(plt)
        paths.append(osp.join(RESULTS, f'{name}.png'))
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths
