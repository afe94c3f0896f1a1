"""Building the fused batch of RemulLoss(fused=True): by arithmetic on the
collation record (what the loss does) vs through PyG's public collation
(``to_data_list`` of each copy, then ``Batch.from_data_list``), side by side.

Usage:  python benchmarks/fused_batch.py [--graphs 100] [--nodes 5]
                                         [--repeats 30] [--quick]

The public path separates and re-collates every graph in Python (and reads
each graph's offsets on the host); the arithmetic path never leaves the
tensors. Both give the same Batch (tests/nn/test_loss.py checks it).
"""
import argparse
import os
import sys

import torch
from torch_geometric.data import Batch, Data

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import interleaved_median  # noqa: E402
from torch_geometric_remul.nn import concat_copies  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--graphs', type=int, default=100)
    parser.add_argument('--nodes', type=int, default=5)
    parser.add_argument('--repeats', type=int, default=30)
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args(argv)
    if args.quick:
        args.graphs, args.repeats = 8, 3
    g = torch.Generator().manual_seed(0)
    n = args.nodes
    graphs = [Data(pos=torch.randn(n, 3, generator=g),
                   vel=torch.randn(n, 3, generator=g),
                   edge_index=torch.combinations(torch.arange(n)).t())
              for _ in range(args.graphs)]
    batch = Batch.from_data_list(graphs)
    moved = batch.clone()
    moved.pos = moved.pos + 1.0
    fns = {
        'arithmetic': lambda: concat_copies([batch, moved]),
        'public': lambda: Batch.from_data_list(batch.to_data_list() +
                                               moved.to_data_list()),
    }
    t = interleaved_median(fns, repeats=args.repeats)
    print(f'fused batch of 2 x {args.graphs} graphs of {n} nodes')
    for name, value in t.items():
        print(f'  {name:12s} {value * 1e3:8.3f} ms')
    print(f'ratio public / arithmetic: {t["public"] / t["arithmetic"]:.1f}')


if __name__ == '__main__':
    main()
