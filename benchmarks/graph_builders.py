"""Graph builders: torch-cluster against the native fallback.

Usage:  python benchmarks/graph_builders.py [--repeats 15] [--json FILE]
                                            [--quick]

Does torch-cluster make this package's graph builders faster? Times
`torch_geometric_remul.graph.radius_graph` and `knn_graph` on the
torch-cluster path and with the native fallback forced
(`torch_geometric_remul.typing.force_native()`), interleaved medians, on
batches of the sizes the tasks and tutorials use:

  md17-radius   100 molecules x 21 atoms (aspirin-sized), r = 5 (most pairs)
  mocap-knn     100 skeletons x 31 joints, k = 8
  cloud-radius  64 point clouds x 500 points, r = 0.2 (Gaussian, std 0.5)
  cloud-knn     64 point clouds x 500 points, k = 16

and checks that both paths return the same edge set. Prints a markdown table
(time per call, native / torch-cluster); --json FILE also writes the figures.
Without torch-cluster only the native path is timed. --quick: tiny sizes and
3 repeats (a smoke run for CI, not a measurement).
"""
import argparse
import json
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import torch_geometric_remul.typing as remul_typing  # noqa: E402
from _timing import interleaved_median, machine_description  # noqa: E402
from torch_geometric_remul.graph import knn_graph, radius_graph  # noqa: E402

CASES = [
    # name, graphs, nodes per graph, builder, its parameter, position scale
    ('md17-radius', 100, 21, 'radius', 5.0, 1.5),
    ('mocap-knn', 100, 31, 'knn', 8, 10.0),
    ('cloud-radius', 64, 500, 'radius', 0.2, 0.5),
    ('cloud-knn', 64, 500, 'knn', 16, 0.5),
]


def build(kind, pos, param, batch):
    if kind == 'radius':
        return radius_graph(pos, param, batch, max_num_neighbors=64)
    return knn_graph(pos, param, batch)


def edge_set(edge_index):
    return set(map(tuple, edge_index.t().tolist()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=15)
    parser.add_argument('--json', default=None)
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    accelerated = remul_typing.WITH_TORCH_CLUSTER
    print(f'machine: {machine_description()}; torch-cluster: '
          f'{"installed" if accelerated else "not installed"}')
    rows = []
    gen = torch.Generator().manual_seed(0)
    for name, graphs, nodes, kind, param, scale in CASES:
        if args.quick:
            graphs, nodes = 4, min(nodes, 10)
        pos = torch.randn(graphs * nodes, 3, generator=gen) * scale
        batch = torch.arange(graphs).repeat_interleave(nodes)

        def native(pos=pos, batch=batch, kind=kind, param=param):
            with remul_typing.force_native():
                return build(kind, pos, param, batch)

        fns = {'native': native}
        if accelerated:
            fns['torch-cluster'] = lambda pos=pos, batch=batch, kind=kind, \
                param=param: build(kind, pos, param, batch)
            assert edge_set(fns['torch-cluster']()) == edge_set(native()), \
                f'{name}: the two paths give different edges'
        times = interleaved_median(fns, repeats=repeats, warmup=2)
        edges = native().size(1)
        row = dict(case=name, graphs=graphs, nodes=nodes, builder=kind,
                   param=param, edges=edges,
                   native_ms=1e3 * times['native'])
        if accelerated:
            row['torch_cluster_ms'] = 1e3 * times['torch-cluster']
            row['native_over_cluster'] = times['native'] / \
                times['torch-cluster']
        rows.append(row)

    print('\n| case | graphs x nodes | edges | native | torch-cluster | '
          'native / torch-cluster |')
    print('|---|---|---|---|---|---|')
    for r in rows:
        cluster = (f"{r['torch_cluster_ms']:.2f} ms",
                   f"{r['native_over_cluster']:.2f}x") \
            if accelerated else ('-', '-')
        print(f"| {r['case']} ({r['builder']} {r['param']}) | "
              f"{r['graphs']} x {r['nodes']} | {r['edges']} | "
              f"{r['native_ms']:.2f} ms | {cluster[0]} | {cluster[1]} |")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(machine=machine_description(),
                           torch_cluster=accelerated, repeats=repeats,
                           rows=rows), f, indent=1)


if __name__ == '__main__':
    main()
