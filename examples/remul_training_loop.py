"""An existing PyG training loop with REMUL: only the loss line changes.

The data is a labelled SYNTHETIC stand-in, not a benchmark: random point
clouds of 5 nodes whose velocities are drawn anisotropically (much larger
along x), with the exactly E(3)-equivariant target
``y = pos + 0.3 * vel * |vel|``. Because every training velocity points
roughly along x, a model trained with the plain loss is only right in that
orientation; REMUL's equivariance term shows it rotated copies.

The model is unconstrained (an MLP on the raw coordinates). The script
trains it twice, with the plain MSE loss and with ``RemulLoss``, and prints
the validation MSE and the equivariance error E' of both.

Run: ``python examples/remul_training_loop.py`` (a few seconds on a CPU).
Tutorial: docs/remul_loss.md.
"""
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from torch_geometric_remul.metrics import equivariance_error
from torch_geometric_remul.nn import RemulLoss


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
    """Any unconstrained model: coordinates are plain input features."""
    def __init__(self):
        super().__init__()
        self.mlp = torch.nn.Sequential(torch.nn.Linear(6, 64),
                                       torch.nn.SiLU(),
                                       torch.nn.Linear(64, 3))

    def forward(self, data):
        return data.pos + self.mlp(torch.cat([data.pos, data.vel], dim=-1))


def train(use_remul, train_set, epochs=20):
    torch.manual_seed(0)
    model = Model()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(train_set, batch_size=32, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    loss_fn = RemulLoss(output='point', points='pos', vectors='vel',
                        group='SO3', beta=1.0)
    for epoch in range(epochs):
        for batch in loader:
            optimizer.zero_grad()
            if use_remul:
                out = loss_fn(model, batch, batch.y)                # after
                loss = out.loss
            else:
                loss = torch.nn.functional.mse_loss(model(batch),   # before
                                                    batch.y)
            loss.backward()
            optimizer.step()
        if use_remul and epoch % 5 == 4:
            print(f'  epoch {epoch + 1:2d}: task {out.task.item():.4f}, '
                  f'equi {out.equi.item():.4f}, batch E\' '
                  f'{out.error["absolute"].item():.4f}')
    return model


def main():
    g = torch.Generator().manual_seed(0)
    train_set = synthetic_dataset(256, g)
    val = next(iter(DataLoader(synthetic_dataset(64, g), batch_size=64)))
    print('synthetic stand-in data: 256 training graphs, 64 validation')
    for name, use_remul in (('plain MSE', False), ('REMUL (beta=1)', True)):
        print(f'training with {name}')
        model = train(use_remul, train_set)
        with torch.no_grad():
            mse = torch.nn.functional.mse_loss(model(val), val.y).item()
        err = equivariance_error(model, val, output='point', vectors='vel',
                                 group='SO3', num_samples=20,
                                 generator=torch.Generator().manual_seed(1))
        print(f"  E' after training with {name}: {err.E_prime:.3f} "
              f"(validation MSE {mse:.3f})")


if __name__ == '__main__':
    main()
