r"""The ``remul`` command line (also ``python -m torch_geometric_remul``)."""
import argparse
import math
import sys
import time
from typing import List, Optional

import torch

from torch_geometric_remul import __version__


def _demo_batch(num_graphs: int, seed: int, dtype=torch.float64):
    from torch_geometric.data import Batch, Data
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, 26, (num_graphs, ), generator=g).tolist()
    graphs = [Data(pos=torch.randn(n, 3, generator=g, dtype=dtype),
                   vel=torch.randn(n, 3, generator=g, dtype=dtype),
                   charge=torch.randint(0, 2, (n, 1), generator=g) * 2 - 1)
              for n in sizes]
    return Batch.from_data_list(graphs), graphs


def _relative_geometry(pos, vel, batch):
    """Per-node invariants: |x - centroid|, |v|, and (x - centroid) . v."""
    from torch_geometric_remul.group import center
    rel, _ = center(pos, batch)
    return torch.stack([rel.norm(dim=-1), vel.norm(dim=-1),
                        (rel * vel).sum(-1)], -1)


def demo(args: argparse.Namespace) -> int:
    """Per-graph rigid transforms on random graphs, checked and timed."""
    import torch_geometric.transforms as T

    from torch_geometric_remul.group import rotation_angle
    from torch_geometric_remul.transforms import (RandomRigidTransform,
                                                  stored_transform)

    print(f'torch_geometric_remul {__version__} demo: per-graph rigid '
          f'transforms')
    print(f'data: {args.graphs} random graphs (synthetic stand-in, 1-25 '
          f'nodes each) with pos, vel and charge, float64\n')
    batch, _ = _demo_batch(args.graphs, args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    transform = RandomRigidTransform('SE3', vectors='vel', store=True,
                                     generator=gen)
    print(f'transform: {transform}')

    out = transform(batch)
    Tr = stored_transform(out)
    inv = Tr.inverse()
    before = _relative_geometry(batch.pos, batch.vel, batch.batch)
    after = _relative_geometry(out.pos, out.vel, out.batch)
    back_pos = inv.apply_points(out.pos, ptr=out.ptr)
    back_vel = inv.apply_vectors(out.vel, ptr=out.ptr)
    angles = rotation_angle(Tr.rotation)
    haar_mean = math.pi / 2 + 2 / math.pi
    rows = [
        ('distinct rotations', f'{Tr.num_graphs} for {batch.num_graphs} '
         f'graphs'),
        ('mean rotation angle', f'{angles.mean():.4f} rad (Haar: '
         f'{haar_mean:.4f})'),
        ('invariants changed by (max)', f'{(after - before).abs().max():.2e}'),
        ('inverse round trip error', f'{max((back_pos - batch.pos).abs().max(), (back_vel - batch.vel).abs().max()):.2e}'),  # noqa: E501
        ('charges untouched', str(out.charge is batch.charge)),
    ]

    # PyG's RandomRotate: per-axis angles, pos only, one rotation per batch.
    pyg = T.Compose([T.RandomRotate(180, axis=i) for i in range(3)])
    torch.manual_seed(args.seed)
    pyg_out = pyg(batch)
    pyg_after = _relative_geometry(pyg_out.pos, pyg_out.vel, pyg_out.batch)
    rows.append(('PyG RandomRotate invariants changed by',
                 f'{(pyg_after - before).abs().max():.2e} (vel not rotated)'))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f'  {key:<{width}}  {value}')

    # Timing: one vectorised call vs PyG per Data in a Python loop.
    batch32, graphs32 = _demo_batch(args.graphs, args.seed, torch.float32)
    fast = RandomRigidTransform('SE3', vectors='vel')
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        fast(batch32)
    t_ours = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for g in graphs32:
        pyg(g)
    t_pyg = time.perf_counter() - t0
    print(f'\ntime for {args.graphs} graphs (float32): ours {t_ours * 1e3:.2f}'
          f' ms in one call; PyG RandomRotate per Data {t_pyg * 1e3:.1f} ms '
          f'({t_pyg / t_ours:.0f}x)')
    ok = (after - before).abs().max() < 1e-10 and \
        (back_pos - batch.pos).abs().max() < 1e-10
    print('\nresult:', 'OK, geometry preserved per graph' if ok else 'FAILED')
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='remul', description='Relaxed equivariance via multitask '
        'learning (REMUL) for PyTorch Geometric.')
    parser.add_argument('--version', action='version',
                        version=f'%(prog)s {__version__}')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    p = sub.add_parser('demo', help='per-graph rigid transforms, checked and '
                       'timed on random graphs')
    p.add_argument('--graphs', type=int, default=2000,
                   help='number of graphs (default: 2000)')
    p.add_argument('--seed', type=int, default=0, help='random seed')
    p.set_defaults(func=demo)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, 'func', None) is None:
        parser.print_help()
        return 2
    if getattr(args, 'graphs', 1) < 1:
        parser.error('--graphs must be >= 1')
    return args.func(args)


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
