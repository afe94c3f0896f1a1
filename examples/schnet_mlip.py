"""REMUL for an interatomic potential: PyG's SchNet, energy and forces.

Trains ``torch_geometric.nn.models.SchNet`` as a machine-learned interatomic
potential (an energy per molecule; forces ``-dE/dpos`` by autograd, with
``create_graph=True`` during training so that the force loss trains the
parameters) three ways, with the same data, model and optimiser:

* ``plain``: the usual loss ``w_E MSE(E) + w_F MSE(F)``;
* ``augmentation``: ``RemulLoss(alpha=0, beta=1)``, the same loss on a
  randomly rotated copy of every molecule (rotated force targets);
* ``remul``: ``RemulLoss(alpha=1, beta=1)``, the loss on the clean batch
  plus the loss on the rotated copy.

and prints a table of test energy and force errors and of the force
equivariance error E' (``metrics.equivariance_error``), plus the force error
on a randomly rotated copy of the test set.

DATA: the RDKit **MD17 stand-in** (``datasets.simulate_md17_standin``):
Langevin dynamics under the classical MMFF94 force field, in the MD17 file
layout and units (Å, kcal/mol, kcal/mol/Å). It is NOT MD17 (DFT) data:
never compare these numbers with published MD17 results. Energies are
shifted by the mean training energy (the model learns ``E - mean``; the
shift does not change the errors or the forces).

Two backbones:

* ``schnet``: PyG's SchNet as it is. It sees only interatomic distances, so
  it is exactly E(3)-invariant (its forces exactly equivariant): its E' is
  float32 rounding whatever the loss, and REMUL can only cost time.
* ``schnet_xyz``: the same SchNet plus a per-atom MLP on the atom's
  Cartesian position relative to the molecule's centroid, added to the
  energy. That term depends on the orientation: a stand-in for any
  unconstrained potential, the case REMUL is for. The stand-in trajectory
  has its rigid rotation removed, so every training frame has about the
  same orientation.

No pyg-lib: SchNet builds its graph with ``torch_geometric.nn.radius_graph``,
which needs pyg-lib (not on PyPI). ``RadiusInteractionGraph`` below replaces
``model.interaction_graph`` with this project's ``graph.radius_graph``.

Run::

    python examples/schnet_mlip.py            # default sizes, a few minutes
    python examples/schnet_mlip.py --quick    # smoke test (the test suite):
                                              # seconds, barely trained
    python examples/schnet_mlip.py --seeds 3 --out results.json

Tutorial: docs/tutorial_mlip.md.
"""
import argparse
import json
import math
import time
from typing import Dict, List

import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from torch_geometric.nn.models import SchNet
from torch_geometric.utils import scatter

from torch_geometric_remul.datasets import simulate_md17_standin
from torch_geometric_remul.graph import radius_graph
from torch_geometric_remul.group import RigidTransform
from torch_geometric_remul.metrics import equivariance_error
from torch_geometric_remul.nn import RemulLoss

#: How each model output moves under a rotation: the energy is invariant,
#: the forces rotate with the molecule.
OUTPUT = {'energy': 'scalar', 'forces': 'vector'}
#: Loss weights per output (forces weigh more, as usual for MLIPs).
WEIGHTS = {'energy': 1.0, 'forces': 100.0}
#: Method -> (alpha, beta) of RemulLoss (``plain`` uses the plain loss).
METHODS = {'plain': None, 'augmentation': (0.0, 1.0), 'remul': (1.0, 1.0)}
BACKBONES = ('schnet', 'schnet_xyz')
STANDIN = 'MD17 STAND-IN (classical MMFF94, RDKit; not MD17/DFT data)'


# Data ######################################################################

def standin_frames(molecule: str, num_frames: int, seed: int) -> List[Data]:
    """The stand-in trajectory as one ``Data`` per frame."""
    md = simulate_md17_standin(molecule, num_frames=num_frames,
                               save_every=10, seed=seed)
    z = torch.as_tensor(md['z'], dtype=torch.long)
    R = torch.as_tensor(md['R'], dtype=torch.float32)   # [T, n, 3] Å
    E = torch.as_tensor(md['E'], dtype=torch.float32)   # [T, 1] kcal/mol
    F = torch.as_tensor(md['F'], dtype=torch.float32)   # [T, n, 3]
    return [Data(z=z, pos=R[t], energy=E[t].view(1), force=F[t])
            for t in range(R.size(0))]


def split(frames: List[Data], sizes, seed: int):
    """Random train/val/test split; energies shifted by the train mean."""
    perm = torch.randperm(len(frames),
                          generator=torch.Generator().manual_seed(seed))
    parts, start = [], 0
    for size in sizes:
        parts.append([frames[i] for i in perm[start:start + size].tolist()])
        start += size
    mean = torch.stack([d.energy for d in parts[0]]).mean()
    shifted = [[Data(z=d.z, pos=d.pos, energy=d.energy - mean, force=d.force)
                for d in part] for part in parts]
    return shifted, float(mean)


# Model #####################################################################

class RadiusInteractionGraph(torch.nn.Module):
    """SchNet's interaction graph (``edge_index``, ``edge_weight``) built
    with ``torch_geometric_remul.graph.radius_graph``: no pyg-lib needed."""
    def __init__(self, cutoff: float, max_num_neighbors: int = 32):
        super().__init__()
        self.cutoff = cutoff
        self.max_num_neighbors = max_num_neighbors

    def forward(self, pos, batch):
        # the neighbour search is not differentiated; the distances are
        edge_index = radius_graph(pos.detach(), self.cutoff, batch, False,
                                  self.max_num_neighbors)
        src, dst = edge_index
        return edge_index, (pos[src] - pos[dst]).norm(dim=-1)


class CartesianTerm(torch.nn.Module):
    """A per-atom energy from the atom type and its position relative to
    the molecule's centroid: depends on the orientation (not invariant)."""
    def __init__(self, hidden: int):
        super().__init__()
        self.embedding = torch.nn.Embedding(100, hidden)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(hidden + 3, hidden),
                                       torch.nn.SiLU(),
                                       torch.nn.Linear(hidden, 1))

    def forward(self, z, pos, batch, num_graphs: int):
        centre = scatter(pos, batch, 0, dim_size=num_graphs, reduce='mean')
        h = torch.cat([self.embedding(z), pos - centre[batch]], dim=-1)
        return scatter(self.mlp(h), batch, 0, dim_size=num_graphs,
                       reduce='sum')


class Potential(torch.nn.Module):
    """``model(data) -> {'energy': [B], 'forces': [N, 3]}`` with
    ``forces = -dE/dpos`` by autograd."""
    def __init__(self, backbone: str, hidden: int, num_interactions: int,
                 cutoff: float):
        super().__init__()
        self.schnet = SchNet(hidden_channels=hidden, num_filters=hidden,
                             num_interactions=num_interactions,
                             num_gaussians=25, cutoff=cutoff)
        # the pyg-lib-free interaction graph
        self.schnet.interaction_graph = RadiusInteractionGraph(cutoff)
        self.cartesian = CartesianTerm(hidden) if backbone == 'schnet_xyz' \
            else None

    def forward(self, data):
        batch = data.batch if data.batch is not None else \
            torch.zeros_like(data.z)
        num_graphs = data.num_graphs if hasattr(data, 'num_graphs') else 1
        grad_enabled = torch.is_grad_enabled()
        with torch.enable_grad():  # forces need autograd, also in no_grad
            # a new leaf that requires grad: the caller's tensor is not
            # touched (RemulLoss passes both the clean and the moved batch)
            pos = data.pos if data.pos.requires_grad else \
                data.pos.detach().requires_grad_()
            energy = self.schnet(data.z, pos, batch).view(-1)
            if self.cartesian is not None:
                energy = energy + self.cartesian(data.z, pos, batch,
                                                 num_graphs).view(-1)
            create_graph = self.training and grad_enabled
            (grad, ) = torch.autograd.grad(energy.sum(), pos,
                                           create_graph=create_graph)
        if not grad_enabled:
            energy = energy.detach()
        return {'energy': energy, 'forces': -grad}


# Training ##################################################################

def weighted_mse(pred: Dict, target: Dict):
    return sum(w * torch.nn.functional.mse_loss(pred[k], target[k])
               for k, w in WEIGHTS.items())


@torch.no_grad()
def errors(model, loader, rotate_seed=None) -> Dict[str, float]:
    """Energy and force MAE/RMSE over a loader (kcal/mol, kcal/mol/Å; force
    errors per component, as usual for MD17). With ``rotate_seed`` every
    molecule is first rotated by a random rotation (forces rotated too)."""
    model.eval()
    g = None if rotate_seed is None else \
        torch.Generator().manual_seed(rotate_seed)
    sums = torch.zeros(4, dtype=torch.float64)
    counts = torch.zeros(2, dtype=torch.float64)
    for batch in loader:
        force = batch.force
        if g is not None:
            T = RigidTransform.sample(batch.num_graphs, 'SO3', generator=g)
            batch = batch.clone()
            batch.pos = T.apply_points(batch.pos, batch.batch)
            force = T.apply_vectors(force, batch.batch)
        pred = model(batch)
        de = (pred['energy'] - batch.energy).double()
        df = (pred['forces'] - force).double()
        sums += torch.stack([de.abs().sum(), de.pow(2).sum(),
                             df.abs().sum(), df.pow(2).sum()])
        counts += torch.tensor([de.numel(), df.numel()], dtype=torch.float64)
    e_mae, e_mse, f_mae, f_mse = (sums / counts.repeat_interleave(2)).tolist()
    return {'energy_mae': e_mae, 'energy_rmse': math.sqrt(e_mse),
            'force_mae': f_mae, 'force_rmse': math.sqrt(f_mse)}


def train(backbone, method, data, cfg, seed):
    torch.manual_seed(seed)
    model = Potential(backbone, cfg['hidden'], cfg['num_interactions'],
                      cfg['cutoff'])
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg['lr'])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=cfg['epochs'])
    loader = DataLoader(data['train'], batch_size=cfg['batch_size'],
                        shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    loss_fn = None
    if METHODS[method] is not None:
        alpha, beta = METHODS[method]
        loss_fn = RemulLoss(output=OUTPUT, task_loss=torch.nn.MSELoss(),
                            output_weights=WEIGHTS, group='SO3', alpha=alpha,
                            beta=beta,
                            generator=torch.Generator().manual_seed(seed))
    val_loader = DataLoader(data['val'], batch_size=256)
    best, best_state = math.inf, None
    for epoch in range(cfg['epochs']):
        model.train()
        for batch in loader:
            optimizer.zero_grad()
            target = {'energy': batch.energy, 'forces': batch.force}
            if loss_fn is None:
                loss = weighted_mse(model(batch), target)          # before
            else:
                loss = loss_fn(model, batch, target=target).loss   # after
            loss.backward()
            optimizer.step()
        scheduler.step()
        val = errors(model, val_loader)
        score = WEIGHTS['energy'] * val['energy_rmse'] ** 2 + \
            WEIGHTS['forces'] * val['force_rmse'] ** 2
        if score < best:  # keep the best model on the validation set
            best = score
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return model


def evaluate(model, test, cfg, seed) -> Dict[str, float]:
    loader = DataLoader(test, batch_size=256)
    out = errors(model, loader)
    rotated = errors(model, loader, rotate_seed=seed + 1)
    out['rotated_force_mae'] = rotated['force_mae']
    err = equivariance_error(model, loader, output=OUTPUT, group='SO3',
                             num_samples=cfg['num_samples'],
                             generator=torch.Generator().manual_seed(seed))
    out['force_E_prime'] = err['forces'].E_prime
    out['energy_E_prime'] = err['energy'].E_prime
    return out


# Main ######################################################################

QUICK = dict(num_frames=240, train=160, val=40, test=40, epochs=4,
             hidden=32, num_interactions=2, batch_size=32, lr=2e-3,
             num_samples=4, cutoff=5.0)
DEFAULT = dict(num_frames=1500, train=1000, val=250, test=250, epochs=25,
               hidden=32, num_interactions=2, batch_size=32, lr=3e-3,
               num_samples=10, cutoff=5.0)

COLUMNS = [('energy_mae', 'E MAE'), ('energy_rmse', 'E RMSE'),
           ('force_mae', 'F MAE'), ('force_rmse', 'F RMSE'),
           ('force_E_prime', "F E'"), ('rotated_force_mae', 'rot F MAE')]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--molecule', default='ethanol')
    parser.add_argument('--quick', action='store_true',
                        help='tiny sizes, seconds: a smoke test (the '
                        'models barely train), used by the tests')
    parser.add_argument('--seeds', type=int, default=1,
                        help='training seeds per method (table: the mean)')
    parser.add_argument('--epochs', type=int, default=None)
    parser.add_argument('--backbones', default=','.join(BACKBONES))
    parser.add_argument('--out', default=None, help='write a JSON here')
    args = parser.parse_args()
    cfg = dict(QUICK if args.quick else DEFAULT)
    if args.epochs is not None:
        cfg['epochs'] = args.epochs
    backbones = args.backbones.split(',')
    for b in backbones:
        if b not in BACKBONES:
            parser.error(f'--backbones: unknown {b!r} '
                         f'(choose from {", ".join(BACKBONES)})')
    torch.set_num_threads(1)

    start = time.perf_counter()
    frames = standin_frames(args.molecule, cfg['num_frames'], seed=0)
    (train_set, val_set, test_set), mean = split(
        frames, (cfg['train'], cfg['val'], cfg['test']), seed=0)
    data = {'train': train_set, 'val': val_set}
    print(f"{STANDIN}: {args.molecule}, {len(frames)} frames (5 fs apart), "
          f"{cfg['train']} train / {cfg['val']} val / {cfg['test']} test; "
          f"energies shifted by the train mean {mean:.2f} kcal/mol "
          f"({time.perf_counter() - start:.1f} s)")
    print(f"SchNet hidden {cfg['hidden']}, {cfg['num_interactions']} "
          f"interactions, {cfg['epochs']} epochs, batch "
          f"{cfg['batch_size']}, loss weights {WEIGHTS}; seeds "
          f"{args.seeds} (mean shown)")

    results = []
    for backbone in backbones:
        for method in METHODS:
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                model = train(backbone, method, data, cfg, seed)
                row = evaluate(model, test_set, cfg, seed)
                row.update(backbone=backbone, method=method, seed=seed,
                           seconds=time.perf_counter() - t0)
                results.append(row)

    print('test errors: E in kcal/mol, F in kcal/mol/Å (per component); '
          "F E' = force equivariance error; rot F MAE = force MAE on "
          'randomly rotated test molecules')
    print(f"{'backbone':11s} {'method':13s}" +
          ''.join(f' {name:>9s}' for _, name in COLUMNS) + f" {'s/run':>6s}")
    table = []
    for backbone in backbones:
        for method in METHODS:
            rows = [r for r in results
                    if r['backbone'] == backbone and r['method'] == method]
            mean_row = {k: sum(r[k] for r in rows) / len(rows)
                        for k, _ in COLUMNS + [('seconds', '')]}
            table.append(dict(backbone=backbone, method=method, **mean_row))
            print(f'{backbone:11s} {method:13s}' +
                  ''.join(f' {mean_row[k]:9.3g}' for k, _ in COLUMNS) +
                  f" {mean_row['seconds']:6.1f}")
    print(f'total {time.perf_counter() - start:.0f} s')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(data=STANDIN, molecule=args.molecule, config=cfg,
                           energy_shift=mean, seeds=args.seeds,
                           weights=WEIGHTS, table=table, runs=results), f,
                      indent=1)
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
