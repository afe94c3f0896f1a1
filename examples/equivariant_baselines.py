"""Exactly equivariant baselines against unconstrained backbones.

Builds every backbone of ``torch_geometric_remul.nn.models`` by name
(MLP, GNN, Transformer: coordinates as plain features; EGNN, and SEGNN when
e3nn is installed: E(3)-equivariant by construction) for the charged N-body
task (simulated with our simulator of the EGNN system, 16 graphs in a
temporary folder) and measures their equivariance errors E and E' under
random rotations, reflections and translations (group "E3") with
``metrics.equivariance_error``, in float64, without any training.

EGNN and SEGNN come out at rounding level (about 1e-15); the unconstrained
models are far from equivariant until trained, e.g. with REMUL.

Run: ``python examples/equivariant_baselines.py`` (a few seconds on a CPU).
Concepts: docs/concepts.md (the metrics).
"""
import importlib.util
import tempfile

import torch
from torch_geometric.loader import DataLoader

from torch_geometric_remul.datasets import ChargedParticles
from torch_geometric_remul.metrics import equivariance_error
from torch_geometric_remul.nn.models import build_model

# What the N-body graphs hold and how each attribute moves (the declaration
# that `remul train` uses for this task).
INPUTS = dict(output='point', points='pos', vectors=('vel', ),
              scalars=('charge', ), scalar_dim=1,
              edge_scalars=('edge_attr', ), edge_scalar_dim=1)


def main(root):
    torch.manual_seed(0)
    data = ChargedParticles(root, split='val', num_val=16)
    batch = next(iter(DataLoader(data, batch_size=16)))
    # float64, so that rounding does not hide the difference: cast the
    # floating-point attributes (edge_index stays integer).
    batch = batch.apply(lambda x: x.double() if x.is_floating_point() else x)
    names = ['mlp', 'gnn', 'transformer', 'egnn']
    if importlib.util.find_spec('e3nn') is not None:
        names.append('segnn')
    print(f'{len(data)} simulated N-body graphs, float64, group E3, '
          f'20 group elements per graph, untrained models')
    print(f"{'model':12s} {'parameters':>10s} {'E':>10s} {'E_prime':>10s}")
    for name in names:
        extra = dict(num_nodes=5) if name == 'mlp' else {}
        model = build_model(name, hidden_channels=32, num_layers=2, **INPUTS,
                            **extra).double()
        err = equivariance_error(model, batch, output='point', points='pos',
                                 vectors='vel', group='E3', num_samples=20,
                                 generator=torch.Generator().manual_seed(0))
        params = sum(p.numel() for p in model.parameters())
        print(f'{name:12s} {params:10d} {err.E:10.2e} {err.E_prime:10.2e}')


if __name__ == '__main__':
    with tempfile.TemporaryDirectory() as tmp:  # the simulated data
        main(tmp)
