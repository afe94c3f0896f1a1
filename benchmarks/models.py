"""Forward and forward+backward time of every backbone, side by side.

Usage:  python benchmarks/models.py [--quick] [--repeats 25] [--json FILE]

Two workloads, float32, one batch each:
  N-body  100 graphs x 5 nodes, fully connected (20 edges per graph);
          inputs pos (point), vel (vector), charge (scalar), edge_attr =
          q_i q_j (edge scalar); output "point".
  MD17    100 graphs x 21 nodes (aspirin-sized), radius graph (r = 2.5 on
          positions ~ N(0, 1.2^2) per coordinate, max 32 neighbours);
          inputs pos, vel, a 4-way one-hot atom type (scalars); output
          "point".
Every model runs with its default width/depth (see each class); the MLP
flattens the fixed-size graphs. "Transformer (block)" is the same
Transformer with a block-diagonal mask over the whole batch instead of
padded per-graph attention (see the Transformer docstring).

Forward is timed under torch.no_grad(); forward+backward is one training
step without the optimizer (sum of squared outputs, backward, grads freed).
All candidates of a workload are timed interleaved (_timing.interleaved_median)
so that ratios against SEGNN and EGNN are measured in the same run.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_geometric.data import Batch  # noqa: E402

from _timing import interleaved_median, keep_freed_memory, machine_description  # noqa: E402
from torch_geometric_remul.graph import fully_connected_graph, radius_graph  # noqa: E402
from torch_geometric_remul.nn.models import build_model  # noqa: E402

MODELS = [  # (label, registry name, extra kwargs)
    ('MLP', 'mlp', {}),
    ('GNN', 'gnn', {}),
    ('Transformer', 'transformer', {}),
    ('Transformer (block)', 'transformer', {'attention': 'block'}),
    ('EGNN', 'egnn', {}),
    ('SEGNN', 'segnn', {}),
]


def make_batch(num_graphs, num_nodes, seed=0):
    g = torch.Generator().manual_seed(seed)
    N = num_graphs * num_nodes
    batch = torch.arange(num_graphs).repeat_interleave(num_nodes)
    ptr = torch.arange(num_graphs + 1) * num_nodes
    data = Batch(pos=torch.randn(N, 3, generator=g),
                 vel=torch.randn(N, 3, generator=g), batch=batch, ptr=ptr)
    return data


def nbody(num_graphs=100):
    data = make_batch(num_graphs, 5)
    g = torch.Generator().manual_seed(1)
    data.charge = torch.randint(0, 2, (data.num_nodes, 1),
                                generator=g).float() * 2 - 1
    data.edge_index = fully_connected_graph(ptr=data.ptr)
    src, dst = data.edge_index
    data.edge_attr = data.charge[src] * data.charge[dst]
    kwargs = dict(vectors=('vel', ), scalars=('charge', ), scalar_dim=1,
                  edge_scalars=('edge_attr', ), edge_scalar_dim=1)
    return data, kwargs, 5


def md17(num_graphs=100):
    data = make_batch(num_graphs, 21)
    data.pos = data.pos * 1.2
    g = torch.Generator().manual_seed(2)
    types = torch.randint(0, 4, (data.num_nodes, ), generator=g)
    data.z = torch.nn.functional.one_hot(types, 4).float()
    data.edge_index = radius_graph(data.pos, 2.5, data.batch,
                                   max_num_neighbors=32)
    kwargs = dict(vectors=('vel', ), scalars=('z', ), scalar_dim=4)
    return data, kwargs, 21


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def candidates(data, kwargs, num_nodes):
    models, fns = {}, {}
    for label, name, extra in MODELS:
        kw = dict(kwargs, **extra)
        if name == 'mlp':
            kw['num_nodes'] = num_nodes
        torch.manual_seed(0)
        model = build_model(name, output='point', **kw)
        models[label] = model

        def forward(model=model):
            with torch.no_grad():
                model(data)

        def step(model=model):
            model(data).square().sum().backward()
            for p in model.parameters():
                p.grad = None

        fns[(label, 'fwd')] = forward
        fns[(label, 'step')] = step
    return models, fns


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--graphs', type=int, default=100)
    parser.add_argument('--repeats', type=int, default=25)
    parser.add_argument('--quick', action='store_true',
                        help='tiny repeats and batches, for a smoke run')
    parser.add_argument('--json', help='write the figures to this file')
    args = parser.parse_args(argv)
    keep_freed_memory()
    warmup = 2
    if args.quick:
        args.repeats, args.graphs, warmup = 1, 4, 1
    print(f'machine: {machine_description()}')
    print(f'repeats: {args.repeats} interleaved, median; float32\n')

    results = {}
    header = (f'{"workload":<8} {"model":<20} {"params":>8} '
              f'{"fwd ms":>8} {"/SEGNN":>7} {"/EGNN":>7} '
              f'{"f+b ms":>8} {"/SEGNN":>7} {"/EGNN":>7}')
    lines = [header, '-' * len(header)]
    for workload, make in (('N-body', nbody), ('MD17', md17)):
        data, kwargs, n = make(args.graphs)
        models, fns = candidates(data, kwargs, n)
        times = interleaved_median(fns, repeats=args.repeats, warmup=warmup)
        ref = {k: times[('SEGNN', k)] for k in ('fwd', 'step')}
        egnn = {k: times[('EGNN', k)] for k in ('fwd', 'step')}
        deg = data.edge_index.size(1) / data.num_nodes
        for label, model in models.items():
            f, s = times[(label, 'fwd')], times[(label, 'step')]
            lines.append(
                f'{workload:<8} {label:<20} {num_params(model):>8,} '
                f'{f * 1e3:>8.2f} {f / ref["fwd"]:>7.3f} '
                f'{f / egnn["fwd"]:>7.2f} {s * 1e3:>8.2f} '
                f'{s / ref["step"]:>7.3f} {s / egnn["step"]:>7.2f}')
            results[f'{workload}/{label}'] = dict(
                params=num_params(model), forward_s=f, step_s=s)
        lines.append(f'{"":<8} ({data.num_graphs} graphs x {n} nodes, '
                     f'{data.edge_index.size(1)} edges, mean in-degree '
                     f'{deg:.1f})')
    print('\n'.join(lines))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(machine=machine_description(),
                           repeats=args.repeats, results=results), f,
                      indent=2)


if __name__ == '__main__':
    main()
