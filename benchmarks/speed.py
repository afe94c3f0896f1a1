"""Inference and training-step time of every model, with ratios against the
equivariant baselines EGNN and SEGNN, on the same batches in one run.

Usage:  python benchmarks/speed.py [--device cpu|cuda] [--graphs 100 ...]
                                   [--repeats 20] [--quick]

Workloads (float32, random stand-in values, which do not affect timing;
the batches of benchmarks/models.py):
  N-body  GRAPHS graphs x 5 nodes, fully connected, pos/vel/charge and the
          edge attribute q_i q_j;
  MD17    GRAPHS graphs x 21 nodes (aspirin-sized), radius graph (r = 2.5,
          at most 32 neighbours), pos/vel and a 4-way atom one-hot.
Every model has its default width and depth. Per model and workload:
  inference      model(batch) in eval mode under torch.inference_mode();
  training step  zero_grad, loss, backward, Adam step, as each model is
                 trained in the accuracy benchmarks: the unconstrained models
                 (MLP, GNN, Transformer) with RemulLoss (beta = 1, SO(3), two
                 forward passes), EGNN and SEGNN with the plain MSE (they are
                 equivariant by construction). "fused" is the REMUL step with
                 fused=True (one forward pass on both copies).
"x SEGNN" is SEGNN's time divided by the model's (how many times faster).
All candidates of a workload are timed interleaved (median of --repeats), so
ratios come from one run. On CUDA every timed call ends with a
synchronisation. Goals (issue): inference >= 10x and training >= 2.5x faster
than SEGNN at equal batch. Writes benchmarks/results/speed.{json,md,png}
(speed_cuda.* on a GPU; --quick writes into a temporary directory;
--from-json JSON times nothing and writes the table and the figure of a
written JSON again). The figure's training bar is the faster of the unfused
and the fused REMUL step.
benchmarks/models.py times the bare backbones (forward, forward+backward
without optimizer, and the Transformer's two attention layouts).
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
from typing import Dict, List

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import md17, nbody, num_params  # noqa: E402

from _runs import load_results, write_outputs  # noqa: E402
from _timing import interleaved_median, keep_freed_memory, machine_description  # noqa: E402
from torch_geometric_remul.nn import RemulLoss  # noqa: E402
from torch_geometric_remul.nn.models import build_model  # noqa: E402
from torch_geometric_remul.train.provenance import provenance  # noqa: E402

MODELS = [('MLP', 'mlp'), ('GNN', 'gnn'), ('Transformer', 'transformer'),
          ('EGNN', 'egnn'), ('SEGNN', 'segnn')]
EQUIVARIANT = ('egnn', 'segnn')


def candidates(data, kwargs, num_nodes, device):
    """``{(label, kind): fn}`` and the models, on one batch."""
    data = data.to(device)
    data.y = data.pos + 0.1 * data.vel
    fns, models = {}, {}
    for label, name in MODELS:
        kw = dict(kwargs, num_nodes=num_nodes) if name == 'mlp' else kwargs
        torch.manual_seed(0)
        model = build_model(name, output='point', **kw).to(device)
        models[label] = model
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        gen = torch.Generator(device=device).manual_seed(0)

        def infer(model=model):
            model.eval()
            with torch.inference_mode():
                model(data)

        def step(loss_of, model=model, opt=opt):
            model.train()
            opt.zero_grad(set_to_none=True)
            loss_of().backward()
            opt.step()

        fns[(label, 'infer')] = infer
        if name in EQUIVARIANT:
            fns[(label, 'train')] = (
                lambda step=step, model=model: step(
                    lambda: torch.nn.functional.mse_loss(model(data),
                                                         data.y)))
        else:
            for kind, fused in (('train', False), ('fused', True)):
                loss = RemulLoss(vectors='vel', group='SO3', beta=1.0,
                                 fused=fused, generator=gen)
                fns[(label, kind)] = (
                    lambda step=step, loss=loss, model=model: step(
                        lambda: loss(model, data, data.y).loss))
    if device.type == 'cuda':
        def synced(fn):
            def run():
                fn()
                torch.cuda.synchronize(device)
            return run
        fns = {k: synced(fn) for k, fn in fns.items()}
    return models, fns


def measure(workloads, graphs, device, repeats, warmup, log=print):
    rows = []
    for num_graphs in graphs:
        for workload, make in workloads:
            data, kwargs, n = make(num_graphs)
            models, fns = candidates(data, kwargs, n, device)
            t = interleaved_median(fns, repeats=repeats, warmup=warmup)
            for label, model in models.items():
                row = dict(workload=workload, graphs=num_graphs, model=label,
                           params=num_params(model),
                           infer_ms=t[(label, 'infer')] * 1e3,
                           train_ms=t[(label, 'train')] * 1e3,
                           fused_ms=(t[(label, 'fused')] * 1e3
                                     if (label, 'fused') in t else None))
                for ref in ('EGNN', 'SEGNN'):
                    for kind in ('infer', 'train'):
                        row[f'{kind}_vs_{ref}'] = (t[(ref, kind)] /
                                                   t[(label, kind)])
                    if row['fused_ms'] is not None:
                        row[f'fused_vs_{ref}'] = (t[(ref, 'train')] /
                                                  t[(label, 'fused')])
                rows.append(row)
            log(f'{workload} x {num_graphs} graphs: done')
    return rows


def table(rows, header) -> str:
    lines = [f'### {header}', '',
             '| workload | model | params | inference | x SEGNN | x EGNN | '
             'training step | x SEGNN | x EGNN | fused REMUL step | '
             'x SEGNN |', '|' + '---|' * 11]
    for r in rows:
        fused = ('-', '-') if r['fused_ms'] is None else (
            f'{r["fused_ms"]:.2f} ms', f'{r["fused_vs_SEGNN"]:.1f}')
        lines.append(
            f'| {r["workload"]} ({r["graphs"]} graphs) | {r["model"]} | '
            f'{r["params"]:,} | {r["infer_ms"]:.2f} ms | '
            f'{r["infer_vs_SEGNN"]:.1f} | {r["infer_vs_EGNN"]:.2f} | '
            f'{r["train_ms"]:.2f} ms | {r["train_vs_SEGNN"]:.1f} | '
            f'{r["train_vs_EGNN"]:.2f} | {fused[0]} | {fused[1]} |')
    return '\n'.join(lines) + '\n'


def goals(rows) -> str:
    """Which unconstrained models meet the issue's speed goals."""
    out = []
    for r in rows:
        if r['model'] in ('EGNN', 'SEGNN'):
            continue
        train = max(r['train_vs_SEGNN'], r.get('fused_vs_SEGNN', 0.0))
        out.append(f'- {r["workload"]} ({r["graphs"]} graphs), '
                   f'{r["model"]}: inference {r["infer_vs_SEGNN"]:.1f}x '
                   f'({"meets" if r["infer_vs_SEGNN"] >= 10 else "misses"} '
                   f'>= 10x), REMUL training {train:.1f}x '
                   f'({"meets" if train >= 2.5 else "misses"} >= 2.5x) '
                   f'faster than SEGNN')
    return '\n'.join(out) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default=None,
                        help='cpu or cuda (default: cuda when available)')
    parser.add_argument('--graphs', type=int, nargs='+', default=None,
                        help='batch sizes (default: 100 on CPU, 100 and '
                        '1000 on CUDA)')
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--from-json', metavar='JSON', default=None,
                        help='time nothing: write the table and the figure '
                        'of a written speed JSON again')
    args = parser.parse_args(argv)
    if args.from_json:
        print('wrote', ', '.join(from_json(args.from_json)))
        return 0
    device = torch.device(args.device or ('cuda' if torch.cuda.is_available()
                                          else 'cpu'))
    if device.type == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    graphs = args.graphs or ([100, 1000] if device.type == 'cuda' else [100])
    warmup = 3
    if args.quick:
        graphs, args.repeats, warmup = [4], 1, 1
    keep_freed_memory()
    where = machine_description()
    if device.type == 'cuda':
        where += f', GPU {torch.cuda.get_device_name(device)}'
    print(f'machine: {where}\ndevice: {device}, float32, '
          f'{args.repeats} interleaved repeats (median)\n')
    rows = measure((('N-body', nbody), ('MD17', md17)), graphs, device,
                   args.repeats, warmup)
    # the code version, library versions and machine, as the other JSONs
    payload = dict(provenance(), machine_description=where,
                   device=str(device), repeats=args.repeats, rows=rows)
    text = markdown(payload)
    print('\n' + text)
    name = 'speed' if device.type == 'cpu' else f'speed_{device.type}'
    paths = write_outputs(name, payload, text, plot(payload),
                          **({'directory': tempfile.mkdtemp()} if args.quick
                             else {}))
    print('wrote', ', '.join(paths))
    return 0


def markdown(payload: Dict) -> str:
    """The table and the goals of a written speed JSON."""
    device = torch.device(payload['device'])
    # speed.json before it recorded its provenance: "machine" is the text
    where = payload.get('machine_description', payload['machine'])
    text = table(payload['rows'], f'Speed on {device.type} ({where})')
    return text + '\nGoals:\n' + goals(payload['rows'])


#: the speed goals (times faster than SEGNN) and their line colours
GOALS = (('inference', 10.0, 'C0'), ('training step', 2.5, 'C1'))


def train_vs_segnn(row: Dict) -> float:
    """The training-step ratio against SEGNN a bar shows: the faster of the
    unfused and the fused REMUL step (``max`` of the two ratios)."""
    return max(row['train_vs_SEGNN'], row.get('fused_vs_SEGNN') or 0.0)


def workload_name(row: Dict) -> str:
    """``"N-body\\n100 graphs"`` or ``"21-node random\\ngraphs x 100"``
    (the MD17 workload is random graphs of aspirin's size, not MD17
    data)."""
    if row['workload'] == 'MD17':
        return f'21-node random\ngraphs x {row["graphs"]}'
    return f'{row["workload"]}\n{row["graphs"]} graphs'


def plot(payload: Dict):
    """``plot(figures) -> figure``: per unconstrained model and workload,
    how many times faster than SEGNN its inference and its REMUL training
    step are, on a log axis (the MLP's ratios are 10-50x the others'),
    with the goals as labelled lines."""
    from matplotlib.ticker import FuncFormatter, LogLocator
    rows = payload['rows']
    device = torch.device(payload['device'])

    def draw(figures):
        fig, ax = figures.subplots(figsize=(10, 5))
        shown = [r for r in rows if r['model'] not in ('EGNN', 'SEGNN')]
        names = [f'{r["model"]}\n{workload_name(r)}' for r in shown]
        x = range(len(shown))
        infer = [r['infer_vs_SEGNN'] for r in shown]
        train = [train_vs_segnn(r) for r in shown]
        bars = [ax.bar([i - 0.2 for i in x], infer, width=0.4,
                       label='inference', color='C0'),
                ax.bar([i + 0.2 for i in x], train, width=0.4,
                       label='REMUL training step (faster of unfused and '
                       'fused)', color='C1')]
        for group, values in zip(bars, (infer, train)):
            ax.bar_label(group, [f'{v:.1f}x' for v in values], fontsize=8,
                         padding=2)
        for label, goal, colour in GOALS:
            ax.axhline(goal, ls='--', c=colour, lw=1,
                       label=f'goal: {label} >= {goal:g}x')
        ax.axhline(1.0, c='black', lw=0.8)
        ax.set_yscale('log')
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f'{v:g}x'))
        ax.yaxis.set_minor_locator(LogLocator(base=10, subs=()))
        ax.set_ylim(0.8, 2.5 * max(infer + train))
        ax.set_xticks(list(x), names, fontsize=9)
        ax.tick_params(axis='y', labelsize=9)
        ax.set_ylabel('times faster than SEGNN (log scale)', fontsize=10)
        ax.set_title(f'speed on {device.type} against SEGNN, same batches '
                     f'(median of {payload["repeats"]} interleaved '
                     f'repeats)', fontsize=10)
        ax.legend(fontsize=8, loc='upper right')
        ax.grid(axis='y', alpha=0.3)
        fig.tight_layout()
        return fig
    return draw


def from_json(path: str) -> List[str]:
    """Writes the table and the figure of a written speed JSON again
    (nothing is timed); returns the paths written."""
    payload = load_results(path)
    return write_outputs(osp.splitext(osp.basename(path))[0], payload,
                         markdown(payload), plot(payload),
                         directory=osp.dirname(osp.abspath(path)))


if __name__ == '__main__':
    sys.exit(main())
