"""Per-graph rigid transforms and centring: ours vs the memory floor and PyG.

Usage:  python benchmarks/transforms.py [--graphs 20000] [--nodes 25]
                                        [--out DIR] [--json FILE] [--quick]

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
        loop, on a subset and scaled to GRAPHS graphs (timed apart: median
        of REPEATS // 10 loops). It rotates pos only, so it does less work
        than (b+s);
and per-graph centring, ours (CenterPerGraph) vs torch_geometric.utils.scatter
(mean) + gather. Also repeats (a) and (b+s) on graphs of varying size
(1..2*NODES-1 nodes).

Writes benchmarks/results/transforms.{json,md} (--out DIR: into DIR;
--quick: into a fresh temporary directory): the JSON holds the provenance
(code version, library versions, machine), the sizes, every candidate's
median and raw samples (ms) and the ratios; the markdown table is rendered
from the JSON alone (`markdown(payload)`). --json FILE writes one more copy
of the JSON.
"""
import argparse
import json
import os
import os.path as osp
import shlex
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_geometric.transforms as T  # noqa: E402
from torch_geometric.data import Batch, Data  # noqa: E402
from torch_geometric.utils import scatter  # noqa: E402

import torch_geometric_remul._kernels as kernels  # noqa: E402
import torch_geometric_remul.typing as remul_typing  # noqa: E402
from _runs import RESULTS, run_provenance, write_outputs  # noqa: E402
from _timing import interleaved_median, keep_freed_memory, machine_description  # noqa: E402
from torch_geometric_remul.group import RigidTransform  # noqa: E402
from torch_geometric_remul.transforms import (  # noqa: E402
    CenterPerGraph,
    RandomRigidTransform,
)

#: The name of the files written (``transforms.json``, ``transforms.md``).
NAME = 'transforms'

#: (key, label) of the rigid-transform candidates, in table order.
RIGID = [
    ('floor', '(a) clone pos + vel (floor)'),
    ('apply', '(b) per-graph transform of pos + vel'),
    ('apply1', '(b1) (b), C kernel on one thread'),
    ('ours', '(b+s) RandomRigidTransform call (with sampling)'),
    ('native', "(b') (b+s), native PyTorch path"),
    ('naive', '(n) naive gather + bmm'),
    ('pyg', '(c) PyG RandomRotate per Data (scaled)'),
]
CENTRING = [
    ('ours', 'ours (CenterPerGraph)'),
    ('native', 'ours, native PyTorch path'),
    ('pyg', 'PyG scatter(mean) + gather'),
]
VARYING = [
    ('floor', '(a) clone pos + vel (floor)'),
    ('ours', '(b+s) RandomRigidTransform call'),
    ('native', "(b') (b+s), native PyTorch path"),
]


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


def timed(fns, repeats, warmup=3):
    """``{name: {'median_ms', 'samples_ms'}}``: every callable timed
    interleaved, ``repeats`` times after ``warmup`` calls each (one
    ``interleaved_median`` round per repeat, so the raw samples are kept).
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        one = interleaved_median(fns, repeats=1, warmup=0)
        for name, seconds in one.items():
            samples[name].append(seconds * 1e3)
    return {name: {'median_ms': _median(values), 'samples_ms': values}
            for name, values in samples.items()}


def _median(values):
    """The median as ``_timing.interleaved_median`` takes it (the upper
    one of an even count)."""
    return sorted(values)[len(values) // 2]


def output_directory(parser, args):
    """Where the files go: ``--out``, else a fresh temporary directory for
    ``--quick``, else ``benchmarks/results``; a quick run never writes into
    ``benchmarks/results``."""
    if args.out is None:
        return tempfile.mkdtemp() if args.quick else RESULTS
    if args.quick and osp.realpath(args.out) == osp.realpath(RESULTS):
        parser.error(f"--out: a --quick run must not write into "
                     f"{RESULTS} (got --out {args.out!r})")
    return args.out


def provenance():
    """``_runs.run_provenance()`` without its ``selection`` entry (which
    describes how trained runs are selected; nothing is trained here)."""
    out = run_provenance()
    out.pop('selection', None)
    return out


def _ms(value):
    """A time in ms for the tables: three significant figures or more."""
    if value >= 100:
        return f'{value:,.1f}'
    return f'{value:.2f}' if value >= 10 else f'{value:.3f}'


def _header(payload, title):
    """The lines every table starts with: title, what the times are, the
    command and the code version that produced them."""
    code = payload['code']
    version = 'commit unknown' if code.get('commit') is None else \
        f'commit {code["commit"][:10]}' + (
            ', with uncommitted changes' if code.get('dirty') else '')
    if payload['quick']:
        title += ' (--quick smoke run: tiny sizes, not a measurement)'
    return [f'### {title}', '',
            f'Median of {payload["repeats"]} interleaved repeat'
            f'{"s" if payload["repeats"] != 1 else ""} on '
            f'{payload["machine_description"]}.',
            f'Produced by `{payload["command"]}` ({version}).', '']


def markdown(payload):
    """The markdown tables of a ``transforms.json`` payload (built from
    the payload alone, so that the docs can include the file).

    Usage: ``markdown(json.load(open('benchmarks/results/transforms.json')))``
    """
    w = payload['workload']
    lines = _header(payload, f'Per-graph rigid transform: {w["graphs"]:,} '
                    f'graphs x {w["nodes"]} nodes, float32 pos + vel')
    lines += [f'Compiled CPU kernel: {payload["kernels"]["cpu"]}; '
              f'allocator: {payload["allocator"]}.', '',
              '| rigid transform | time (ms) | / floor |', '|---|---|---|']
    for r in payload['rigid']:
        lines.append(f'| {r["label"]} | {_ms(r["median_ms"])} | '
                     f'{r["vs_floor"]:.2f}x |')
    pyg = payload['pyg_loop']
    loops = f'{pyg["loops"]} loop' + ('s' if pyg['loops'] != 1 else '')
    lines += ['', f'(c) is timed apart: median of {loops} over '
              f'{pyg["graphs"]:,} graphs, scaled to {w["graphs"]:,} graphs; '
              f'it rotates pos only.', '',
              '| per-graph centring | time (ms) | / ours |', '|---|---|---|']
    for r in payload['centring']:
        lines.append(f'| {r["label"]} | {_ms(r["median_ms"])} | '
                     f'{r["vs_ours"]:.2f}x |')
    v = payload['varying']
    lines += ['', f'| varying graph sizes ({v["min_nodes"]}..'
              f'{v["max_nodes"]} nodes, {v["graphs"]:,} graphs, '
              f'{v["nodes"]:,} nodes) | time (ms) | / floor |',
              '|---|---|---|']
    for r in v['rows']:
        lines.append(f'| {r["label"]} | {_ms(r["median_ms"])} | '
                     f'{r["vs_floor"]:.2f}x |')
    lines += ['', 'Ratios: ' + ', '.join(
        f'{k} = {x:.2f}' for k, x in payload['ratios'].items()) + '.']
    goals = payload['goals']
    if goals is None:
        lines.append('Goals: not checked (--quick: tiny sizes, per-call '
                     'overhead dominates every ratio).')
    else:
        lines.append('Goals: ' + '; '.join(
            f'{g["goal"]}: {"met" if g["met"] else "NOT met"}'
            for g in goals) + '.')
    return '\n'.join(lines) + '\n'


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--graphs', type=int, default=20000)
    parser.add_argument('--nodes', type=int, default=25)
    parser.add_argument('--repeats', type=int, default=30)
    parser.add_argument('--pyg-graphs', type=int, default=2000,
                        help='graphs in the PyG loop before scaling')
    parser.add_argument('--quick', action='store_true',
                        help='tiny sizes, for a smoke run (writes into a '
                        'temporary directory)')
    parser.add_argument('--out', default=None,
                        help='directory of transforms.json and .md '
                        '(default: benchmarks/results)')
    parser.add_argument('--json', help='also write the JSON to this file')
    parser.add_argument('--fresh-pages', action='store_true',
                        help='leave glibc malloc at its defaults (noisier: '
                        'see _timing.keep_freed_memory)')
    args = parser.parse_args(argv)
    out_dir = output_directory(parser, args)
    warm = False if args.fresh_pages else keep_freed_memory()
    if args.quick:
        args.graphs, args.repeats, args.pyg_graphs = 200, 3, 50

    B, n = args.graphs, args.nodes
    where = machine_description()
    print(f'machine: {where}')
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

    t = timed({
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
    loops = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for d in graphs:
            pyg(d)
        loops.append((time.perf_counter() - t0) * (B / k) * 1e3)
    t['pyg'] = {'median_ms': _median(loops), 'samples_ms': loops}

    # Centring: ours vs PyG scatter mean + gather.
    center = CenterPerGraph()

    def pyg_center():
        mean = scatter(batch.pos, batch.batch, dim=0, dim_size=B,
                       reduce='mean')
        return batch.pos - mean[batch.batch]

    def native_center():
        with remul_typing.force_native():
            return center(batch)

    tc = timed({'ours': lambda: center(batch), 'native': native_center,
                'pyg': pyg_center}, repeats=args.repeats)

    # Graphs of varying size, same mean size.
    gsz = torch.Generator().manual_seed(1)
    sizes = torch.randint(1, 2 * n, (B, ), generator=gsz).tolist()
    vbatch = make_batch(sizes, seed=2)

    def vfloor():
        return vbatch.pos.clone(), vbatch.vel.clone()

    def vnative():
        with remul_typing.force_native():
            return ours(vbatch)

    tv = timed({'floor': vfloor, 'ours': lambda: ours(vbatch),
                'native': vnative}, repeats=args.repeats)

    med = {key: x['median_ms'] for key, x in t.items()}
    medc = {key: x['median_ms'] for key, x in tc.items()}
    medv = {key: x['median_ms'] for key, x in tv.items()}
    ratios = {
        'b_over_a': med['apply'] / med['floor'],
        'b1_over_a': med['apply1'] / med['floor'],
        'bs_over_a': med['ours'] / med['floor'],
        'c_over_bs': med['pyg'] / med['ours'],
        'native_over_a': med['native'] / med['floor'],
        'naive_over_a': med['naive'] / med['floor'],
        'pyg_center_over_ours': medc['pyg'] / medc['ours'],
        'varying_bs_over_a': medv['ours'] / medv['floor'],
    }
    goals = None if args.quick else [  # --quick: overhead dominates
        dict(goal='(b)/(a) <= 1.5', met=ratios['b_over_a'] <= 1.5),
        dict(goal='(b+s)/(a) <= 3.5', met=ratios['bs_over_a'] <= 3.5),
        dict(goal='(c)/(b+s) >= 300', met=ratios['c_over_bs'] >= 300),
    ]
    payload = dict(
        provenance(), benchmark=NAME,
        command=shlex.join(['python', 'benchmarks/transforms.py', *argv]),
        machine_description=where, quick=args.quick, kernels=status,
        torch_scatter=remul_typing.WITH_TORCH_SCATTER, allocator=allocator,
        repeats=args.repeats, warmup=3, dtype='float32',
        workload=dict(graphs=B, nodes=n, total_nodes=B * n),
        rigid=[dict(key=key, label=label, **t[key],
                    vs_floor=med[key] / med['floor'])
               for key, label in RIGID],
        pyg_loop=dict(graphs=k, loops=reps, scaled_to=B),
        centring=[dict(key=key, label=label, **tc[key],
                       vs_ours=medc[key] / medc['ours'])
                  for key, label in CENTRING],
        varying=dict(graphs=len(sizes), nodes=int(sum(sizes)), min_nodes=1,
                     max_nodes=2 * n - 1,
                     rows=[dict(key=key, label=label, **tv[key],
                                vs_floor=medv[key] / medv['floor'])
                           for key, label in VARYING]),
        ratios=ratios, goals=goals)
    table = markdown(payload)
    print(table)
    paths = write_outputs(NAME, payload, table, directory=out_dir)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(payload, f, indent=2)
        paths.append(args.json)
    print('wrote', ', '.join(paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
