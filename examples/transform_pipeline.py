"""RandomRigidTransform in a PyG data pipeline.

Shows, on the simulated charged-particle N-body data (our simulator of the
EGNN system, a few graphs generated into a temporary folder):

1. the transform as a dataset ``transform=``, inside ``Compose``, moving the
   input positions, the velocities *and* the target positions together;
2. a ``DataLoader`` batch whose graphs each got their own rotation;
3. ``store=True`` + ``stored_transform(...).inverse()`` undoing it;
4. why velocities must be declared: the geometry between ``vel`` and
   ``pos`` survives our transform and is broken by PyG's ``RandomRotate``,
   which rotates ``pos`` only.

Run: ``python examples/transform_pipeline.py`` (a few seconds on a CPU).
Tutorial: docs/tutorial_transforms.md.
"""
import tempfile

import torch
from torch_geometric.loader import DataLoader
from torch_geometric.transforms import Compose, RandomRotate

from torch_geometric_remul.datasets import ChargedParticles
from torch_geometric_remul.group import center
from torch_geometric_remul.transforms import (
    CenterPerGraph,
    RandomRigidTransform,
    stored_transform,
)


def velocity_geometry(batch):
    """v_i . (x_i - centroid): unchanged by any rotation or translation that
    moves x as a point and v as a vector."""
    rel, _ = center(batch.pos, ptr=batch.ptr)
    return (batch.vel * rel).sum(-1)


def main(root):
    torch.manual_seed(0)

    # 1. The clean data, and the same data augmented on every access. The
    # target y (future positions) is a point: it must move with pos.
    center_graphs = CenterPerGraph(points=('pos', 'y'))
    clean = ChargedParticles(root, split='train', num_train=64,
                             transform=center_graphs)
    augment = RandomRigidTransform('SO3', points=('pos', 'y'),
                                   vectors='vel', store=True)
    augmented = ChargedParticles(root, split='train', num_train=64,
                                 transform=Compose([center_graphs, augment]))
    first, again = augmented[0], augmented[0]
    print(f'dataset: {len(augmented)} graphs, e.g. {first}')
    print(f'same graph read twice, different rotations: '
          f'{not torch.allclose(first.pos, again.pos)}')

    # 2. A DataLoader batch: one independent rotation per graph.
    batch = next(iter(DataLoader(augmented, batch_size=16)))
    R = batch.rigid_rotation  # [16, 3, 3], collated like any attribute
    distinct = len({tuple(r.flatten().round(decimals=4).tolist())
                    for r in R})
    print(f'rotations recorded in one batch: {tuple(R.shape)}, '
          f'{distinct} distinct')

    # 3. Undo the augmentation with the stored transform.
    reference = next(iter(DataLoader(clean, batch_size=16)))
    T_inv = stored_transform(batch).inverse()
    error = max(
        (T_inv.apply_points(batch.pos, ptr=batch.ptr) -
         reference.pos).abs().max().item(),
        (T_inv.apply_points(batch.y, ptr=batch.ptr) -
         reference.y).abs().max().item(),
        (T_inv.apply_vectors(batch.vel, ptr=batch.ptr) -
         reference.vel).abs().max().item(),
    )
    print(f'inverse round trip error (pos, y, vel): {error:.1e}')

    # 4. A transform applied to a whole batch (e.g. inside a training
    # step), SE(3): still one element per graph, vel moves with pos.
    before = velocity_geometry(reference)
    ours = RandomRigidTransform('SE3', points=('pos', 'y'), vectors='vel')
    moved = ours(reference.clone())
    pyg = Compose([RandomRotate(180, axis=0), RandomRotate(180, axis=1),
                   RandomRotate(180, axis=2)])
    rotated_pos_only = pyg(reference.clone())
    ours_change = (velocity_geometry(moved) - before).abs().max().item()
    pyg_change = (velocity_geometry(rotated_pos_only) -
                  before).abs().max().item()
    print(f'change of v . (x - centroid): RandomRigidTransform '
          f'{ours_change:.1e}, PyG RandomRotate {pyg_change:.1e}')
    assert error < 1e-4 and ours_change < 1e-4 < pyg_change


if __name__ == '__main__':
    with tempfile.TemporaryDirectory() as tmp:  # the simulated data
        main(tmp)
