"""Choosing beta, or stating the equivariance level you want.

On a toy task (labelled SYNTHETIC data: random 5-node point clouds with
anisotropic velocities and the equivariant target
``y = pos + 0.3 * vel * |vel|``, as in remul_training_loop.py), an
unconstrained MLP is trained

* with constant weights, beta = 0 (the plain loss), 1 and 10 (the paper's
  "constant penalty"), and
* with ``TargetEquivariance(epsilon)``, which adapts beta during training so
  that the running E' approaches epsilon (here in the label-free
  "consistency" mode, which penalises E' directly),

and prints the validation MSE, the final beta and the measured E' of each.

Run: ``python examples/target_equivariance.py`` (about 10 s on a CPU).
Tutorial: docs/tutorial_equivariance_level.md.
"""
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from torch_geometric_remul.metrics import equivariance_error
from torch_geometric_remul.nn import RemulLoss, TargetEquivariance


def synthetic_dataset(num_graphs, generator):
    """SYNTHETIC stand-in data (see the module docstring)."""
    scale = torch.tensor([2.0, 0.3, 0.3])
    graphs = []
    for _ in range(num_graphs):
        pos = torch.randn(5, 3, generator=generator)
        vel = torch.randn(5, 3, generator=generator) * scale
        y = pos + 0.3 * vel * vel.norm(dim=-1, keepdim=True)
        graphs.append(Data(pos=pos, vel=vel, y=y))
    return graphs


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp = torch.nn.Sequential(torch.nn.Linear(6, 64),
                                       torch.nn.SiLU(),
                                       torch.nn.Linear(64, 3))

    def forward(self, data):
        return data.pos + self.mlp(torch.cat([data.pos, data.vel], dim=-1))


def fit(loss_fn, train_set, val, epochs):
    torch.manual_seed(0)
    model = Model()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(train_set, batch_size=32, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    for _ in range(epochs):
        for batch in loader:
            optimizer.zero_grad()
            out = loss_fn(model, batch, batch.y)
            out.loss.backward()
            optimizer.step()
    with torch.no_grad():
        mse = torch.nn.functional.mse_loss(model(val), val.y).item()
    err = equivariance_error(model, val, vectors='vel', num_samples=20,
                             generator=torch.Generator().manual_seed(1))
    return mse, out.beta, err.E_prime


def main():
    g = torch.Generator().manual_seed(0)
    train_set = synthetic_dataset(256, g)
    val = next(iter(DataLoader(synthetic_dataset(64, g), batch_size=64)))
    runs = [(f'Constant beta={beta:g}', 'target',
             RemulLoss(vectors='vel', beta=beta))
            for beta in (0.0, 1.0, 10.0)]
    runs += [(f'TargetEquivariance epsilon={eps:g}', 'consistency',
              RemulLoss(vectors='vel', mode='consistency',
                        weighting=TargetEquivariance(epsilon=eps, lr=0.05)))
             for eps in (0.3, 0.15)]
    print('synthetic stand-in data; 40 epochs each')
    print(f"{'weighting':34s} {'mode':12s} {'final beta':>10s} "
          f"{'val MSE':>8s} {'E_prime':>8s}")
    for name, mode, loss_fn in runs:
        mse, beta, e_prime = fit(loss_fn, train_set, val, epochs=40)
        print(f'{name:34s} {mode:12s} {beta:10.3g} {mse:8.3f} '
              f'{e_prime:8.3f}')


if __name__ == '__main__':
    main()
