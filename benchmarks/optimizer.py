"""Training-step time with the optimiser ``remul train`` uses (Adam on its
fused kernel, ``train.build_optimizer``) against PyTorch's default Adam
(one loop over the parameters, about ten tensor operations each).

Usage:  python benchmarks/optimizer.py [--rmd17-root DIR] [--repeats 30]
                                       [--out DIR] [--quick]

Workloads: the training steps of ``remul train`` as its loop runs them
(zero_grad, forward, loss, backward, optimiser step), on the first batch of
each task's training set, with the task's default model sizes and batch
size:
  nbody   charged N-body (simulated, EGNN's generator), 100 systems per
          batch: GNN + REMUL, Transformer + REMUL, EGNN plain;
  rmd17   (only with --rmd17-root, the real files) aspirin, 5 molecules
          per batch, energy + forces by autograd (a double backward):
          Transformer + REMUL, EGNN plain.
Per workload the two optimisers drive two copies of the same model (same
initial weights, same batch) and are timed interleaved (median of
--repeats, after warm-up), so the ratio "default / fused" comes from one
run on a shared machine; each optimiser's step is also timed alone (on
fixed gradients, interleaved), and "share" is the default Adam step's time
over the default training step's.

Writes benchmarks/results/optimizer.{json,md} (--out DIR: into DIR;
--quick: 3 repeats, a 10-system N-body batch, into a temporary directory):
provenance, every median and ratio; the table is rendered from the JSON.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
from typing import Dict, List, Optional

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_geometric.loader import DataLoader  # noqa: E402

from _runs import RESULTS, write_outputs  # noqa: E402
from _timing import interleaved_median, machine_description  # noqa: E402
from torch_geometric_remul.train import (  # noqa: E402
    TrainConfig,
    build_loss,
    build_optimizer,
    build_task_model,
    task_spec,
    train_step,
)
from torch_geometric_remul.train.provenance import provenance  # noqa: E402

#: (workload, label, TrainConfig fields) of the timed steps
ROWS = [
    ('nbody', 'GNN + REMUL', dict(task='nbody', model='gnn', loss='remul')),
    ('nbody', 'Transformer + REMUL',
     dict(task='nbody', model='transformer', loss='remul')),
    ('nbody', 'EGNN plain', dict(task='nbody', model='egnn', loss='plain')),
    ('rmd17', 'Transformer + REMUL',
     dict(task='rmd17', molecule='aspirin', model='transformer',
          loss='remul')),
    ('rmd17', 'EGNN plain',
     dict(task='rmd17', molecule='aspirin', model='egnn', loss='plain')),
]


def steps(fields: Dict, data_root: Optional[str], batch_size: Optional[int]):
    """``({'fused': step, 'default': step, 'fused Adam alone': fn,
    'default Adam alone': fn}, config, parameters)`` on the first training
    batch of the configuration."""
    cfg = TrainConfig(**fields, data_root=data_root,
                      batch_size=batch_size).resolved()
    spec = task_spec(cfg)
    train_ds = spec.load('train')
    batch = next(iter(DataLoader(
        [train_ds[i] for i in range(min(cfg.batch_size, len(train_ds)))],
        batch_size=cfg.batch_size)))
    fns = {}
    models = []
    for kind in ('fused', 'default'):
        torch.manual_seed(cfg.seed)
        net = build_task_model(cfg, spec, train_ds[0])
        if models:
            net.load_state_dict(models[0].state_dict())
        models.append(net)
        loss_fn = build_loss(cfg, spec, net, steps_per_epoch=10)
        opt = build_optimizer(cfg, net) if kind == 'fused' else \
            torch.optim.Adam(net.parameters(), lr=cfg.lr,
                             weight_decay=cfg.weight_decay, foreach=False)

        def step(net=net, loss_fn=loss_fn, opt=opt):
            net.train()
            opt.zero_grad(set_to_none=True)
            train_step(net, loss_fn, batch, spec.targets(batch), 1.0,
                       spec.output_weights)
            opt.step()
        fns[kind] = step
        step()  # gradients for the optimiser-alone timing
        fns[f'{kind} Adam alone'] = opt.step
    return fns, cfg, sum(p.numel() for p in models[0].parameters())


def measure(rows, data_root, rmd17_root, repeats, batch_size, log=print):
    out = []
    for workload, label, fields in rows:
        root = rmd17_root if workload == 'rmd17' else data_root
        fns, cfg, params = steps(fields, root, batch_size.get(workload))
        t = interleaved_median(fns, repeats=repeats, warmup=3)
        row = dict(workload=workload, label=label, model=cfg.model,
                   loss=cfg.loss, batch_size=cfg.batch_size,
                   params=params,
                   fused_ms=t['fused'] * 1e3, default_ms=t['default'] * 1e3,
                   adam_alone_ms=t['default Adam alone'] * 1e3,
                   fused_adam_alone_ms=t['fused Adam alone'] * 1e3)
        row['ratio'] = row['default_ms'] / row['fused_ms']
        row['optimizer_share'] = row['adam_alone_ms'] / row['default_ms']
        log(f"{workload} {label}: default {row['default_ms']:.2f} ms, "
            f"fused {row['fused_ms']:.2f} ms, {row['ratio']:.2f}x")
        out.append(row)
    return out


def markdown(payload: Dict) -> str:
    lines = [f"### Training step, default Adam against fused Adam "
             f"({payload['machine']})", '',
             'Median of interleaved repeats, ms per step (zero_grad, '
             'forward, loss, backward, optimiser step), the first batch of '
             "each task's training set at its default batch size.", '',
             '| workload | model / loss | parameters | batch | default Adam '
             '| fused Adam | default / fused | Adam step alone: default '
             '(share of its step), fused |',
             '|---|---|---|---|---|---|---|---|']
    for r in payload['rows']:
        lines.append(
            f"| {r['workload']} | {r['label']} | {r['params']:,} | "
            f"{r['batch_size']} | "
            f"{r['default_ms']:.2f} | {r['fused_ms']:.2f} | "
            f"{r['ratio']:.2f}x | {r['adam_alone_ms']:.2f} "
            f"({100 * r['optimizer_share']:.0f}%), "
            f"{r['fused_adam_alone_ms']:.2f} |")
    lines += ['', f"Command: `{payload['command']}`", '']
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rmd17-root', default=None,
                        help='the rMD17 files (adds the rmd17 workload)')
    parser.add_argument('--data-root', default=None,
                        help='where the N-body data are made (default: '
                             "the task's)")
    parser.add_argument('--repeats', type=int, default=30)
    parser.add_argument('--out', default=None)
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    rows = [r for r in ROWS if r[0] != 'rmd17' or args.rmd17_root]
    batch_size, repeats, out = {}, args.repeats, args.out
    data_root = args.data_root
    if args.quick:
        tmp = tempfile.mkdtemp(prefix='remul-optimizer-')
        out, repeats, batch_size = tmp, 3, {'nbody': 10}
        data_root = data_root or osp.join(tmp, 'data')
    payload = dict(
        provenance=provenance(), machine=machine_description(),
        command='python benchmarks/optimizer.py ' + ' '.join(
            argv if argv is not None else sys.argv[1:]),
        repeats=repeats,
        rows=measure(rows, data_root, args.rmd17_root, repeats, batch_size))
    paths = write_outputs('optimizer', payload, markdown(payload),
                          directory=out or RESULTS)
    print('wrote', ', '.join(paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
