"""Training-step time: plain loss vs REMUL (unfused and fused).

Usage:  python benchmarks/loss.py [--graphs 100] [--nodes 5] [--quick]

At N-body size (GRAPHS graphs x NODES nodes, fully connected, float32
pos/vel/charge, edge attribute q_i q_j; random stand-in values, which do not
affect timing) one run times a full training step (zero_grad, forward, loss,
backward, Adam step) for the GNN and the Transformer:
  plain:         MSE(model(batch), y)
  REMUL:         RemulLoss(vectors='vel', group='SO3', beta=1), two forward
                 passes (clean + rotated);
  REMUL fused:   the same with fused=True, one forward pass on the clean and
                 rotated graphs concatenated.
Timings are interleaved medians; ratios are against the plain step of the
same model measured in the same run. Goal: REMUL <= 2.1x plain.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_geometric.data import Batch  # noqa: E402

from _timing import interleaved_median, keep_freed_memory, machine_description  # noqa: E402
from torch_geometric_remul.nn import RemulLoss  # noqa: E402
from torch_geometric_remul.nn.models import build_model  # noqa: E402

MODEL_KWARGS = dict(output='point', points='pos', vectors=('vel', ),
                    scalars=('charge', ), scalar_dim=1,
                    edge_scalars=('edge_attr', ), edge_scalar_dim=1)


def nbody_batch(num_graphs: int, n: int, seed: int = 0) -> Batch:
    """A random, fully connected N-body-shaped batch (stand-in values)."""
    g = torch.Generator().manual_seed(seed)
    N = num_graphs * n
    ptr = torch.arange(0, N + 1, n)
    batch = torch.arange(num_graphs).repeat_interleave(n)
    # all ordered pairs i != j inside each graph
    local = torch.combinations(torch.arange(n), r=2)
    local = torch.cat([local, local.flip(1)]).t()
    offsets = (torch.arange(num_graphs) * n).repeat_interleave(local.size(1))
    edge_index = local.repeat(1, num_graphs) + offsets
    charge = torch.randint(0, 2, (N, 1), generator=g).float() * 2 - 1
    pos = torch.randn(N, 3, generator=g)
    vel = torch.randn(N, 3, generator=g)
    data = Batch(pos=pos, vel=vel, charge=charge, y=pos + 0.1 * vel,
                 edge_index=edge_index,
                 edge_attr=charge[edge_index[0]] * charge[edge_index[1]],
                 batch=batch, ptr=ptr)
    return data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--graphs', type=int, default=100)
    parser.add_argument('--nodes', type=int, default=5)
    parser.add_argument('--repeats', type=int, default=50)
    parser.add_argument('--models', default='gnn,transformer')
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args(argv)
    if args.quick:
        args.graphs, args.repeats = 8, 3
    keep_freed_memory()
    print(f'machine: {machine_description()}')
    print(f'batch: {args.graphs} graphs x {args.nodes} nodes, fully '
          f'connected, float32 (random stand-in values)\n')
    batch = nbody_batch(args.graphs, args.nodes)

    results = {}
    for name in args.models.split(','):
        torch.manual_seed(0)
        model = build_model(name, **MODEL_KWARGS)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        gen = torch.Generator().manual_seed(0)
        remul = RemulLoss(vectors='vel', group='SO3', beta=1.0,
                          generator=gen)
        fused = RemulLoss(vectors='vel', group='SO3', beta=1.0, fused=True,
                          generator=gen)

        def step(loss_of):
            opt.zero_grad(set_to_none=True)
            loss_of().backward()
            opt.step()

        fns = {
            'plain': lambda: step(lambda: torch.nn.functional.mse_loss(
                model(batch), batch.y)),
            'remul': lambda: step(lambda: remul(model, batch, batch.y).loss),
            'fused': lambda: step(lambda: fused(model, batch, batch.y).loss),
        }
        results[name] = interleaved_median(fns, repeats=args.repeats)

    print(f'{"model":12s} {"plain":>10s} {"REMUL":>10s} {"fused":>10s} '
          f'{"REMUL/plain":>12s} {"fused/plain":>12s}')
    worst = 0.0
    for name, t in results.items():
        r1, r2 = t['remul'] / t['plain'], t['fused'] / t['plain']
        worst = max(worst, min(r1, r2))
        print(f'{name:12s} {t["plain"] * 1e3:8.2f}ms {t["remul"] * 1e3:8.2f}ms'
              f' {t["fused"] * 1e3:8.2f}ms {r1:11.2f}x {r2:11.2f}x')
    print(f'\ngoal: REMUL <= 2.1x plain (best of unfused/fused per model): '
          f'{"met" if worst <= 2.1 else "NOT met"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
