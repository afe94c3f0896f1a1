"""Per-graph rigid transforms and centring: ours vs the memory floor and PyG.

Usage:  python benchmarks/transforms.py [--graphs 20000] [--nodes 25] [--quick]

On a batch of GRAPHS graphs x NODES nodes with float32 `pos` and `vel`, one
run measures side by side (interleaved medians):
  (a)   cloning pos and vel: the memory floor of any out-of-place transform;
  (b)   our per-graph transform: RigidTransform.apply_points(pos) and
        apply_vectors(vel) with one group element per graph;
  (b1)  (b) with the C kernel held to one thread (it runs large inputs on
        torch.get_num_threads() threads of torch's own OpenMP team
        otherwise);
  (b+s) the whole RandomRigidTransform(vectors='vel') call on the Batch,
        i.e. (b) plus sampling GRAPHS independent SE(3) elements;
  (b')  (b+s) with every accelerator disabled (native PyTorch path);
  (n)   a naive per-row gather of R followed by bmm;
  (c)   PyG's RandomRotate (x, y and z composed) applied per Data in a Python
        loop, on a subset and scaled to GRAPHS graphs. It rotates pos only,
        so it does less work than (b+s);
and per-graph centring, ours (CenterPerGraph) vs torch_geometric.utils.scatter
(mean) + gather. Also repeats (a) and (b+s) on graphs of varying size
(1..2*NODES-1 nodes).
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_geometric.transforms as T  # noqa: E402
from torch_geometric.data import Batch, Data  # noqa: E402
from torch_geometric.utils import scatter  # noqa: E402

import torch_geometric_remul._kernels as kernels  # noqa: E402
import torch_geometric_remul.typing as remul_typing  # noqa: E402
from _timing import interleaved_median, keep_freed_memory, machine_description  # noqa: E402
from torch_geometric_remul.group import RigidTransform  # noqa: E402
from torch_geometric_remul.transforms import (  # noqa: E402
    CenterPerGraph,
    RandomRigidTransform,
)


def make_batch(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    N = int(sum(sizes))
    sizes_t = torch.tensor(sizes)
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.long)
    ptr[1:] = sizes_t.cumsum(0)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), sizes_t)
    # Built directly (Batch.from_data_list on 20k graphs takes seconds).
    data = Batch(pos=torch.randn(N, 3, generator=g),
                 vel=torch.randn(N, 3, generator=g), batch=batch, ptr=ptr)
    data._num_graphs = len(sizes)
    return data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--graphs', type=int, default=20000)
    parser.add_argument('--nodes', type=int, default=25)
    parser.add_argument('--repeats', type=int, default=30)
    parser.add_argument('--pyg-graphs', type=int, default=2000,
                        help='graphs in the PyG loop before scaling')
    parser.add_argument('--quick', action='store_true',
                        help='tiny sizes, for a smoke run')
    parser.add_argument('--json', help='write the figures to this file')
    parser.add_argument('--fresh-pages', action='store_true',
                        help='leave glibc malloc at its defaults (noisier: '
                        'see _timing.keep_freed_memory)')
    args = parser.parse_args(argv)
    warm = False if args.fresh_pages else keep_freed_memory()
    if args.quick:
        args.graphs, args.repeats, args.pyg_graphs = 200, 3, 50

    B, n = args.graphs, args.nodes
    print(f'machine: {machine_description()}')
    # Built before timing, so that no call waits for (or skips) it.
    status = kernels.build_kernels(cuda=False)
    print(f'compiled CPU kernel: {status["cpu"]}; '
          f'torch-scatter: {remul_typing.WITH_TORCH_SCATTER}')
    allocator = 'freed memory kept (warm pages)' if warm else \
        'glibc defaults'
    print(f'allocator: {allocator}')
    print(f'batch: {B} graphs x {n} nodes, float32 pos + vel '
          f'({B * n} nodes)\n')

    batch = make_batch([n] * B)
    gen = torch.Generator().manual_seed(0)
    ours = RandomRigidTransform('SE3', vectors='vel', generator=gen)
    Tr = RigidTransform.sample(B, 'SE3', generator=gen)

    def floor():
        return batch.pos.clone(), batch.vel.clone()

    def native():
        with remul_typing.force_native():
            return ours(batch)

    def naive():
        Rn = Tr.rotation[batch.batch]
        return (torch.bmm(Rn, batch.pos.unsqueeze(-1)).squeeze(-1) +
                Tr.translation[batch.batch],
                torch.bmm(Rn, batch.vel.unsqueeze(-1)).squeeze(-1))

    def apply_only():
        return (Tr.apply_points(batch.pos, ptr=batch.ptr),
                Tr.apply_vectors(batch.vel, ptr=batch.ptr))

    def apply_one_thread():
        saved = kernels._PARALLEL_MIN_ROWS
        kernels._PARALLEL_MIN_ROWS = 1 << 62
        try:
            return apply_only()
        finally:
            kernels._PARALLEL_MIN_ROWS = saved

    t = interleaved_median({
        'floor': floor, 'ours': lambda: ours(batch),
        'apply': apply_only, 'apply1': apply_one_thread, 'native': native,
        'naive': naive
    }, repeats=args.repeats)

    # PyG: per Data, Python loop, on a subset; scaled to B graphs.
    k = min(args.pyg_graphs, B)
    graphs = [Data(pos=batch.pos[i * n:(i + 1) * n],
                   vel=batch.vel[i * n:(i + 1) * n]) for i in range(k)]
    pyg = T.Compose([T.RandomRotate(180, axis=i) for i in range(3)])
    reps = max(1, args.repeats // 10)
    t0 = time.perf_counter()
    for _ in range(reps):
        for d in graphs:
            pyg(d)
    t_pyg = (time.perf_counter() - t0) / reps * (B / k)

    # Centring: ours vs PyG scatter mean + gather.
    center = CenterPerGraph()

    def pyg_center():
        mean = scatter(batch.pos, batch.batch, dim=0, dim_size=B,
                       reduce='mean')
        return batch.pos - mean[batch.batch]

    def native_center():
        with remul_typing.force_native():
            return center(batch)

    tc = interleaved_median({'ours': lambda: center(batch),
                             'native': native_center, 'pyg': pyg_center},
                            repeats=args.repeats)

    # Graphs of varying size, same mean size.
    gsz = torch.Generator().manual_seed(1)
    sizes = torch.randint(1, 2 * n, (B, ), generator=gsz).tolist()
    vbatch = make_batch(sizes, seed=2)

    def vfloor():
        return vbatch.pos.clone(), vbatch.vel.clone()

    def vnative():
        with remul_typing.force_native():
            return ours(vbatch)

    tv = interleaved_median({'floor': vfloor, 'ours': lambda: ours(vbatch),
                             'native': vnative}, repeats=args.repeats)

    ms = lambda s: f'{s * 1e3:9.3f} ms'  # noqa: E731
    rows = [
        ('(a)   clone pos + vel (floor)', t['floor'], None),
        ('(b)   per-graph transform of pos + vel', t['apply'], t['floor']),
        ('(b1)  (b), C kernel on one thread', t['apply1'], t['floor']),
        ('(b+s) RandomRigidTransform call (with sampling)', t['ours'],
         t['floor']),
        ("(b')  (b+s), native PyTorch path", t['native'], t['floor']),
        ('(n)   naive gather + bmm', t['naive'], t['floor']),
        ('(c)   PyG RandomRotate per Data (scaled)', t_pyg, t['floor']),
    ]
    print(f'{"rigid transform":50s} {"time":>12s}  {"/ floor":>8s}')
    for name, value, ref in rows:
        ratio = f'{value / ref:7.2f}x' if ref else ''
        print(f'{name:50s} {ms(value)}  {ratio:>8s}')
    print(f'\n{"per-graph centring":50s}')
    print(f'{"ours (CenterPerGraph)":50s} {ms(tc["ours"])}')
    print(f'{"ours, native PyTorch path":50s} {ms(tc["native"])}')
    print(f'{"PyG scatter(mean) + gather":50s} {ms(tc["pyg"])}')
    print(f'\nvarying graph sizes (1..{2 * n - 1} nodes, {len(sizes)} graphs,'
          f' {sum(sizes)} nodes)')
    print(f'{"(a)   clone pos + vel (floor)":50s} {ms(tv["floor"])}')
    print(f'{"(b+s) RandomRigidTransform call":50s} {ms(tv["ours"])}  '
          f'{tv["ours"] / tv["floor"]:7.2f}x')
    label = "(b')  (b+s), native PyTorch path"
    print(f'{label:50s} {ms(tv["native"])}  '
          f'{tv["native"] / tv["floor"]:7.2f}x')

    ratios = {
        'b_over_a': t['apply'] / t['floor'],
        'b1_over_a': t['apply1'] / t['floor'],
        'bs_over_a': t['ours'] / t['floor'],
        'c_over_bs': t_pyg / t['ours'],
        'native_over_a': t['native'] / t['floor'],
        'naive_over_a': t['naive'] / t['floor'],
        'pyg_center_over_ours': tc['pyg'] / tc['ours'],
        'varying_bs_over_a': tv['ours'] / tv['floor'],
    }
    print('\nratios: ' + ', '.join(f'{k} = {v:.2f}' for k, v in
                                   ratios.items()))
    if args.quick:  # tiny sizes: per-call overhead dominates every ratio
        print('goals: not checked in --quick mode (smoke test only)')
    else:
        print(f'goals: (b)/(a) <= 1.5: '
              f'{"met" if ratios["b_over_a"] <= 1.5 else "NOT met"}; '
              f'(b+s)/(a) <= 3.5: '
              f'{"met" if ratios["bs_over_a"] <= 3.5 else "NOT met"}; '
              f'(c)/(b+s) >= 300: '
              f'{"met" if ratios["c_over_bs"] >= 300 else "NOT met"}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'machine': machine_description(), 'graphs': B,
                       'kernels': status,
                       'nodes': n, 'seconds': {**t, 'pyg': t_pyg},
                       'centring_seconds': tc, 'varying_seconds': tv,
                       'ratios': ratios}, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
