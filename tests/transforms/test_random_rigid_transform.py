import copy

import pytest
import torch
import torch_geometric.transforms as T
from torch_geometric.data import Batch, Data, InMemoryDataset
from torch_geometric.loader import DataLoader

from tests.conftest import make_batch
from torch_geometric_remul.group import RigidTransform
from torch_geometric_remul.transforms import (
    RandomRigidTransform,
    stored_transform,
)

F64 = torch.float64


def test_batch_per_graph_and_roles(batch64):
    original = copy.copy(batch64)
    snapshot = {k: v.clone() for k, v in batch64.to_dict().items()}
    g = torch.Generator().manual_seed(0)
    transform = RandomRigidTransform(points='pos', vectors=('vel', 'gvec'),
                                     generator=g, store=True)
    out = transform(batch64)
    Tr = stored_transform(out)
    assert Tr.num_graphs == batch64.num_graphs == 5
    # each attribute moved by its own graph's transform
    assert torch.allclose(out.pos, Tr.apply_points(batch64.pos,
                                                   batch64.batch), atol=1e-12)
    assert torch.allclose(out.vel, Tr.apply_vectors(batch64.vel,
                                                    batch64.batch), atol=1e-12)
    # graph-level vector: one row per graph
    gidx = torch.arange(5)
    assert torch.allclose(out.gvec, Tr.apply_vectors(batch64.gvec, gidx),
                          atol=1e-12)
    # invariant attributes are untouched (same tensor object)
    assert out.charge is batch64.charge
    assert torch.equal(out.batch, batch64.batch)
    # independent transforms per graph
    R = Tr.rotation.reshape(5, 9)
    assert torch.cdist(R, R).add(torch.eye(5, dtype=F64)).min() > 1e-3
    # inputs were not modified in place
    for key, value in snapshot.items():
        assert torch.equal(batch64[key], value), key
    assert set(original.keys()) == set(batch64.keys())
    assert 'rigid_rotation' not in batch64


def test_single_data_and_inverse():
    g = torch.Generator().manual_seed(1)
    data = Data(pos=torch.randn(6, 3, dtype=F64),
                vel=torch.randn(6, 3, dtype=F64), z=torch.arange(6))
    out = RandomRigidTransform(vectors='vel', store=True, generator=g)(data)
    assert out.rigid_rotation.shape == (1, 3, 3)
    assert out.rigid_translation.shape == (1, 3)
    inv = stored_transform(out).inverse()
    assert torch.allclose(inv.apply_points(out.pos), data.pos, atol=1e-12)
    assert torch.allclose(inv.apply_vectors(out.vel), data.vel, atol=1e-12)
    assert torch.cdist(out.pos, out.pos).sub(
        torch.cdist(data.pos, data.pos)).abs().max() < 1e-12


def test_store_composes_with_earlier_transform():
    g = torch.Generator().manual_seed(2)
    batch = make_batch([3, 4])
    t = RandomRigidTransform(vectors='vel', store=True, generator=g)
    twice = t(t(batch))
    inv = stored_transform(twice).inverse()
    assert torch.allclose(inv.apply_points(twice.pos, ptr=twice.ptr),
                          batch.pos, atol=1e-12)
    assert torch.allclose(inv.apply_vectors(twice.vel, ptr=twice.ptr),
                          batch.vel, atol=1e-12)


def test_store_survives_collation():
    g = torch.Generator().manual_seed(3)
    t = RandomRigidTransform(store=True, generator=g)
    graphs = [t(Data(pos=torch.randn(n, 3, dtype=F64))) for n in (2, 5, 1)]
    batch = Batch.from_data_list(graphs)
    assert batch.rigid_rotation.shape == (3, 3, 3)
    Tr = stored_transform(batch)
    for i, d in enumerate(graphs):
        assert torch.equal(Tr.rotation[i], d.rigid_rotation[0])


@pytest.mark.parametrize('group', ['SO3', 'O3', 'SE3', 'E3', 'SO2', 'T3'])
def test_groups(group):
    g = torch.Generator().manual_seed(4)
    batch = make_batch([3, 5, 2])
    out = RandomRigidTransform(group, vectors='vel', store=True,
                               generator=g)(batch)
    Tr = stored_transform(out)
    moved = not torch.equal(Tr.translation, torch.zeros_like(Tr.translation))
    assert moved == (group in ('SE3', 'E3', 'T3'))
    if group == 'T3':
        assert torch.equal(out.vel, batch.vel)
    if group == 'SO2':  # z components unchanged
        assert torch.allclose(out.pos[:, 2], batch.pos[:, 2], atol=1e-12)
    assert torch.allclose(out.vel.norm(dim=-1), batch.vel.norm(dim=-1),
                          atol=1e-12)


def test_reproducible_with_generator():
    batch = make_batch([4, 2])
    a = RandomRigidTransform(generator=torch.Generator().manual_seed(5))
    b = RandomRigidTransform(generator=torch.Generator().manual_seed(5))
    assert torch.equal(a(batch).pos, b(batch).pos)
    assert not torch.equal(a(batch).pos, a(batch).pos)  # state advances


def test_float32_path():
    g = torch.Generator().manual_seed(6)
    batch = make_batch([5, 3], dtype=torch.float32)
    out = RandomRigidTransform(vectors='vel', store=True, generator=g)(batch)
    Tr = stored_transform(out)
    assert out.pos.dtype == torch.float32 and Tr.dtype == torch.float32
    inv = Tr.inverse()
    assert torch.allclose(inv.apply_points(out.pos, ptr=out.ptr), batch.pos,
                          atol=1e-5)


def test_compose_dataset_and_loader():
    g = torch.Generator().manual_seed(7)

    class Toy(InMemoryDataset):
        def __init__(self, transform=None):
            super().__init__(None, transform=transform)
            gen = torch.Generator().manual_seed(0)
            data = [Data(pos=torch.randn(n, 3, generator=gen),
                         vel=torch.randn(n, 3, generator=gen))
                    for n in (3, 4, 5, 6)]
            self.data, self.slices = self.collate(data)

    transform = T.Compose([
        RandomRigidTransform(vectors='vel', generator=g, store=True),
        T.Constant(value=1.0),
    ])
    assert 'RandomRigidTransform' in repr(transform)
    plain = Toy()
    ds = Toy(transform=transform)
    for d, ref in zip(ds, plain):
        Tr = stored_transform(d)
        assert torch.allclose(Tr.inverse().apply_points(d.pos), ref.pos,
                              atol=1e-5)
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch.rigid_rotation.shape == (4, 3, 3)
    # applying to a loader batch works too
    out = RandomRigidTransform(vectors='vel', generator=g)(
        next(iter(DataLoader(plain, batch_size=4))))
    assert out.pos.shape == (18, 3)


class _Points(torch.utils.data.Dataset):
    """Graphs of 2 nodes, transformed on access (module level: picklable
    into DataLoader workers)."""
    def __init__(self, n, transform):
        self.n, self.transform = n, transform

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.transform(Data(pos=torch.ones(2, 3)))


def _worker_rotations(seed, epochs=2, num_workers=2, persistent=False):
    transform = RandomRigidTransform(
        generator=torch.Generator().manual_seed(7), store=True)
    loader = DataLoader(_Points(64, transform), batch_size=8,
                        num_workers=num_workers,
                        persistent_workers=persistent)
    torch.manual_seed(seed)  # the DataLoader draws the worker seeds from it
    return torch.cat([batch.rigid_rotation for _ in range(epochs)
                      for batch in loader]).reshape(-1, 9)


@pytest.mark.parametrize('persistent', [False, True])
def test_generator_draws_differ_across_workers_and_epochs(persistent):
    # A generator copied into every DataLoader worker used to repeat the
    # same draws in each worker and epoch (32 distinct of 128).
    R = _worker_rotations(seed=0, persistent=persistent)
    assert R.shape == (128, 9)
    assert torch.unique(R, dim=0).size(0) == 128
    # reproducible: the same seeds give the same draws, in the same order
    assert torch.equal(R, _worker_rotations(seed=0, persistent=persistent))
    assert not torch.equal(R, _worker_rotations(seed=1,
                                                persistent=persistent))


def test_generator_in_the_main_process_is_not_reseeded():
    a = torch.cat([b.rigid_rotation for b in DataLoader(
        _Points(8, RandomRigidTransform(
            generator=torch.Generator().manual_seed(7), store=True)),
        batch_size=4)])
    ref = RandomRigidTransform(generator=torch.Generator().manual_seed(7),
                               store=True)
    b = torch.cat([ref(Data(pos=torch.ones(2, 3))).rigid_rotation
                   for _ in range(8)])
    assert torch.equal(a, b)


def test_functional_name_and_repr():
    t = RandomRigidTransform('so2', vectors=['vel', 'force'], axis='y')
    assert repr(t) == ("RandomRigidTransform(group='SO2', points=['pos'], "
                       "vectors=['vel', 'force'], axis='y')")
    assert repr(RandomRigidTransform('SE3', translation_std=0.5)) == (
        "RandomRigidTransform(group='SE3', points=['pos'], "
        "translation_std=0.5)")
    # one default group for the transform, the loss and the metrics
    assert repr(RandomRigidTransform()) == (
        "RandomRigidTransform(group='SO3', points=['pos'])")
    from torch.utils.data.datapipes.datapipe import IterDataPipe
    assert 'random_rigid_transform' in IterDataPipe.functions
    assert 'center_per_graph' in IterDataPipe.functions


def test_matches_group_layer_when_reseeded():
    # The transform draws exactly RigidTransform.sample(B, group, ...).
    batch = make_batch([2, 3, 4])
    out = RandomRigidTransform('SE3', vectors='vel', translation_std=0.3,
                               generator=torch.Generator().manual_seed(8))(
                                   batch)
    Tr = RigidTransform.sample(3, 'SE3', translation_std=0.3,
                               generator=torch.Generator().manual_seed(8),
                               dtype=F64)
    assert torch.equal(out.pos, Tr.apply_points(batch.pos, ptr=batch.ptr))


def test_bad_input():
    data = Data(pos=torch.randn(4, 3), vel=torch.randn(4, 2),
                x=torch.randn(4, 5))
    with pytest.raises(ValueError, match="'force' .* is missing"):
        RandomRigidTransform(vectors='force')(data)
    with pytest.raises(ValueError, match=r"'data.vel' must have shape \["):
        RandomRigidTransform(vectors='vel')(data)
    with pytest.raises(ValueError, match="both in 'points' and in 'vectors'"):
        RandomRigidTransform(points='pos', vectors='pos')
    with pytest.raises(ValueError, match="'group' must be one of"):
        RandomRigidTransform('SU2')
    with pytest.raises(ValueError, match='at least one attribute'):
        RandomRigidTransform(points=())
    with pytest.raises(ValueError, match="'translation_std'"):
        RandomRigidTransform(translation_std=-1)
    with pytest.raises(TypeError, match="'generator'"):
        RandomRigidTransform(generator=0)
    with pytest.raises(TypeError, match='expects a torch_geometric'):
        RandomRigidTransform()(torch.randn(3, 3))
    mixed = Data(pos=torch.randn(4, 3), vel=torch.randn(4, 3, dtype=F64))
    with pytest.raises(ValueError, match='share dtype and device'):
        RandomRigidTransform(vectors='vel')(mixed)
    bad_rows = make_batch([2, 3])
    bad_rows.odd = torch.randn(7, 3, dtype=F64)
    with pytest.raises(ValueError, match="which rows of 'data.odd'"):
        RandomRigidTransform(vectors='odd')(bad_rows)
    with pytest.raises(ValueError, match='no stored transform'):
        stored_transform(data)


def _graphs_with_edge_vectors():
    # 2 graphs, 3 nodes and 3 edges in all: edge count == node count
    g0 = Data(pos=torch.randn(1, 3, dtype=F64),
              edge_index=torch.tensor([[0, 0], [0, 0]]),
              evec=torch.randn(2, 3, dtype=F64))
    g1 = Data(pos=torch.randn(2, 3, dtype=F64),
              edge_index=torch.tensor([[0], [1]]),
              evec=torch.randn(1, 3, dtype=F64))
    return Batch.from_data_list([g0, g1])


def test_edge_level_vector_rows_follow_their_graph():
    batch = _graphs_with_edge_vectors()
    assert batch.num_edges == batch.num_nodes == 3  # row counts can't tell
    g = torch.Generator().manual_seed(1)
    out = RandomRigidTransform('SO3', vectors='evec', generator=g,
                               store=True)(batch)
    Tr = stored_transform(out)
    edge_graph = torch.tensor([0, 0, 1])  # edges 0-1 in graph 0, 2 in 1
    expected = Tr.apply_vectors(batch.evec, edge_graph)
    assert torch.allclose(out.evec, expected, atol=1e-12)


def test_graph_level_vector_with_empty_graph_where_B_equals_N():
    graphs = [Data(pos=torch.randn(n, 3, dtype=F64),
                   u=torch.randn(1, 3, dtype=F64)) for n in (2, 0, 1)]
    batch = Batch.from_data_list(graphs)
    assert batch.num_nodes == batch.num_graphs == 3
    g = torch.Generator().manual_seed(2)
    out = RandomRigidTransform('SO3', vectors='u', generator=g,
                               store=True)(batch)
    Tr = stored_transform(out)
    assert torch.allclose(out.u, Tr.apply_vectors(batch.u, torch.arange(3)),
                          atol=1e-12)
    assert torch.allclose(out.pos, Tr.apply_points(batch.pos, batch.batch),
                          atol=1e-12)


def test_ambiguous_uncollated_attribute_is_refused():
    graphs = [Data(pos=torch.randn(n, 3, dtype=F64)) for n in (2, 0, 1)]
    batch = Batch.from_data_list(graphs)
    batch.late = torch.randn(3, 3, dtype=F64)  # set after collation, N == B
    with pytest.raises(ValueError, match="'data.late'.*several layouts"):
        RandomRigidTransform(vectors='late')(batch)


def test_stale_ptr_after_subgraph_is_caught_in_debug_mode():
    from torch_geometric_remul import debug
    graphs = [Data(pos=torch.randn(n, 3, dtype=F64)) for n in (2, 3)]
    sub = Batch.from_data_list(graphs).subgraph(torch.tensor([0, 2, 3]))
    with debug(), pytest.raises(ValueError, match='subgraph'):
        RandomRigidTransform()(sub)


@pytest.mark.parametrize('std', [float('nan'), float('inf'), -1.0])
def test_bad_translation_std(std):
    with pytest.raises(ValueError, match="'translation_std' must be a "
                       "finite number >= 0"):
        RandomRigidTransform(translation_std=std)
    with pytest.raises(ValueError, match="'translation_std'"):
        RigidTransform.sample(2, translation_std=std)


@pytest.mark.parametrize('native', [False, True])
def test_transforms_on_a_batch_make_no_host_sync(native):
    import contextlib

    from torch_geometric_remul.testing import assert_no_syncs, count_syncs
    from torch_geometric_remul.transforms import (
        CenterPerGraph,
        apply_rigid_transform,
    )
    from torch_geometric_remul.typing import force_native
    graphs = [Data(pos=torch.randn(n, 3), vel=torch.randn(n, 3),
                   mass=torch.rand(n) + 0.5, y=torch.randn(n, 3),
                   edge_index=torch.zeros(2, 0, dtype=torch.long),
                   u=torch.randn(1, 3)) for n in (3, 0, 7, 5, 1)]
    batch = Batch.from_data_list(graphs)
    g = torch.Generator().manual_seed(0)
    ctx = force_native() if native else contextlib.nullcontext()
    with ctx, count_syncs() as syncs:
        out = RandomRigidTransform(points=('pos', 'y'), vectors=('vel', 'u'),
                                   generator=g, store=True)(batch)
        out = CenterPerGraph(points=('pos', 'y'))(out)
        out = CenterPerGraph(weight='mass')(out)
        back = apply_rigid_transform(out, stored_transform(out).inverse(),
                                     points=(), vectors=('vel', 'u'))
    assert_no_syncs(syncs, 'RandomRigidTransform + CenterPerGraph')
    assert torch.allclose(back.vel, batch.vel, atol=1e-5)
    assert torch.allclose(back.u, batch.u, atol=1e-5)


def test_transforms_on_a_device_batch_copy_nothing_from_the_host():
    """Group elements are drawn on the batch's device and the collation
    offsets taken from the device, so a step on a device batch copies no
    per-step data from the host (the meta device stands in for a GPU)."""
    from torch_geometric_remul.testing import assert_no_syncs, count_syncs
    from torch_geometric_remul.transforms import CenterPerGraph
    graphs = [Data(pos=torch.randn(n, 3), vel=torch.randn(n, 3),
                   edge_index=torch.zeros(2, 0, dtype=torch.long),
                   u=torch.randn(1, 3)) for n in (3, 1, 4)]
    batch = Batch.from_data_list(graphs).to('meta')
    for group in ('SO3', 'O3', 'E3', 'SO2'):
        transform = RandomRigidTransform(group, points=('pos', ),
                                         vectors=('vel', 'u'))
        transform(batch)  # warm-up: constants reach the device once
        with count_syncs() as syncs:
            out = CenterPerGraph()(transform(batch))
        assert_no_syncs(syncs, f'{group} on a meta batch')
        assert out.pos.device.type == 'meta' and out.u.shape == (3, 3)


def test_on_a_batch_compiles_in_one_graph():
    """torch.compile traces RandomRigidTransform on a Batch in one graph
    (fullgraph), with the C kernel as an operator and on the native path:
    no host reads, and the shallow copy of the Batch is one Dynamo
    follows. The compiled transform draws the eager group elements."""
    import torch_geometric_remul.typing as remul_typing
    batch = make_batch([2, 3, 4])
    for native in (False, True):
        torch._dynamo.reset()
        with pytest.MonkeyPatch.context() as mp:
            if native:
                mp.setattr(remul_typing, 'WITH_CPU_KERNEL', False)
            transform = RandomRigidTransform(vectors='vel')
            explain = torch._dynamo.explain(
                lambda d: transform(d).pos)(batch)
            assert explain.graph_break_count == 0, explain.break_reasons
            compiled = torch.compile(lambda d: transform(d).vel,
                                     backend='eager', fullgraph=True)
            torch.manual_seed(0)
            out = compiled(batch)
            torch.manual_seed(0)
            assert torch.allclose(out, transform(batch).vel)


def test_roles_and_sampler_objects_are_shortcut_equivalent():
    from torch_geometric_remul.group import RigidSampler
    from torch_geometric_remul.roles import Roles
    batch = make_batch([2, 3, 4])
    a = RandomRigidTransform('E3', vectors='vel', translation_std=0.2,
                             generator=torch.Generator().manual_seed(3))
    b = RandomRigidTransform(
        roles=Roles(vectors='vel', output='vector'),
        sampler=RigidSampler('E3', translation_std=0.2,
                             generator=torch.Generator().manual_seed(3)))
    assert repr(a) == repr(b)
    oa, ob = a(batch), b(batch)
    assert torch.equal(oa.pos, ob.pos) and torch.equal(oa.vel, ob.vel)
    with pytest.raises(ValueError, match="either 'roles' or 'vectors'"):
        RandomRigidTransform(vectors='vel', roles=Roles())
    with pytest.raises(ValueError, match="either 'sampler' or 'group'"):
        RandomRigidTransform('SE3', sampler=RigidSampler())


@pytest.mark.parametrize('native', [False, True])
def test_unsorted_batch_without_ptr_places_rows_by_their_graph(native):
    # A Batch built by hand with an unsorted 'batch' and no 'ptr': each row
    # is moved by its own graph's element (as apply_points(batch=...)),
    # not by the graph its position would have in a sorted Batch.
    import contextlib

    from torch_geometric_remul import debug
    from torch_geometric_remul.typing import force_native
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(5, 3, generator=g, dtype=F64)
    vel = torch.randn(5, 3, generator=g, dtype=F64)
    index = torch.tensor([1, 0, 1, 0, 1])
    for debug_on in (False, True):
        data = Batch(pos=pos, vel=vel, batch=index)
        ctx = force_native() if native else contextlib.nullcontext()
        with ctx, debug(debug_on):
            out = RandomRigidTransform(group='E3', vectors='vel', store=True,
                                       generator=g)(data)
        R, t = out.rigid_rotation, out.rigid_translation
        assert R.shape == (2, 3, 3)
        assert torch.allclose(out.pos, torch.einsum('nij,nj->ni', R[index],
                                                    pos) + t[index],
                              atol=1e-12)
        assert torch.allclose(out.vel, torch.einsum('nij,nj->ni', R[index],
                                                    vel), atol=1e-12)
        # the same as apply_points/apply_vectors with batch=
        T_ = stored_transform(out)
        assert torch.equal(out.pos, T_.apply_points(pos, batch=index))
        assert torch.equal(out.vel, T_.apply_vectors(vel, batch=index))


def test_options_after_group_are_keyword_only():
    # group first, as in RigidSampler; the rest by name
    assert RandomRigidTransform('SE3', vectors='vel').group == 'SE3'
    with pytest.raises(TypeError, match='positional'):
        RandomRigidTransform('SE3', 'pos')
