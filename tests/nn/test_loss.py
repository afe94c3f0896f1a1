import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from tests.conftest import make_batch
from tests.nn.toy_models import (
    ExactPoint,
    FreePoint,
    FreeScalar,
    InvariantScalar,
)
from torch_geometric_remul import debug
from torch_geometric_remul.group import RigidTransform
from torch_geometric_remul.metrics import equivariance_error
from torch_geometric_remul.nn import (
    Constant,
    GradNorm,
    RemulLoss,
    TargetEquivariance,
)

F64 = torch.float64


def batch_with_target(sizes=(3, 5, 4), seed=0):
    batch = make_batch(list(sizes), seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    batch.y = batch.pos + 0.1 * batch.vel + 0.01 * torch.randn(
        batch.num_nodes, 3, generator=g, dtype=F64)
    return batch


@pytest.mark.parametrize('mode', ['target', 'consistency'])
@pytest.mark.parametrize('fused', [False, True])
def test_exact_model_has_zero_equivariance_loss(mode, fused):
    batch = batch_with_target()
    model = ExactPoint()
    loss_fn = RemulLoss(vectors='vel', group='E3', mode=mode, fused=fused,
                        num_samples=2,
                        generator=torch.Generator().manual_seed(0))
    if mode == 'target':
        # the target is an exact function of the inputs for this check
        target = model(batch).detach()
    else:
        target = batch.y
    out = loss_fn(model, batch, target)
    assert out.equi.item() < 1e-24
    assert out.error['absolute'].item() < 1e-12
    free = loss_fn(FreePoint(), batch, target)
    assert free.equi.item() > 1e-4
    assert free.error['absolute'].item() > 1e-3


def _manual_loss(model, batch, y, T, alpha, beta):
    """Reference written out by hand: per-graph R x + t with explicit
    matrix products, then MSEs."""
    pos, vel, yy = [], [], []
    for b in range(batch.num_graphs):
        s, e = int(batch.ptr[b]), int(batch.ptr[b + 1])
        R, t = T.rotation[b], T.translation[b]
        pos.append(batch.pos[s:e] @ R.T + t)
        vel.append(batch.vel[s:e] @ R.T)
        yy.append(y[s:e] @ R.T + t)
    moved = batch.clone()
    moved.pos, moved.vel = torch.cat(pos), torch.cat(vel)
    task = ((model(batch) - y)**2).mean()
    equi = ((model(moved) - torch.cat(yy))**2).mean()
    return alpha * task + beta * equi, task, equi


def test_matches_hand_computed_reference():
    batch = batch_with_target((2, 3))
    torch.manual_seed(0)
    model = FreePoint()
    T = RigidTransform.sample(2, 'SE3',
                              generator=torch.Generator().manual_seed(1),
                              dtype=F64)
    loss_fn = RemulLoss(vectors='vel', group='SE3', alpha=0.3, beta=2.0)
    out = loss_fn(model, batch, batch.y, transforms=[T])
    ref, task, equi = _manual_loss(model, batch, batch.y, T, 0.3, 2.0)
    assert torch.allclose(out.loss, ref, rtol=1e-12, atol=0)
    assert torch.allclose(out.task, task, rtol=1e-12)
    assert torch.allclose(out.equi, equi, rtol=1e-12)
    assert (out.alpha, out.beta) == (0.3, 2.0)
    out.loss.backward()
    for p in model.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


@pytest.mark.parametrize('mode', ['target', 'consistency'])
def test_fused_equals_unfused(mode):
    batch = batch_with_target((3, 1, 6))
    torch.manual_seed(1)
    model = FreePoint()
    Ts = [RigidTransform.sample(3, 'SE3', generator=torch.Generator()
                                .manual_seed(s), dtype=F64) for s in (1, 2)]
    outs = []
    for fused in (False, True):
        model.zero_grad()
        loss_fn = RemulLoss(vectors='vel', group='SE3', mode=mode,
                            num_samples=2, fused=fused)
        out = loss_fn(model, batch, batch.y, transforms=Ts)
        out.loss.backward()
        outs.append((out, [p.grad.clone() for p in model.parameters()]))
    (a, ga), (b, gb) = outs
    assert torch.allclose(a.loss, b.loss, rtol=1e-12)
    assert torch.allclose(a.equi, b.equi, rtol=1e-12)
    for x, y in zip(ga, gb):
        assert torch.allclose(x, y, rtol=1e-10, atol=1e-14)


def test_fused_single_data_and_loader_batches():
    data = Data(pos=torch.randn(5, 3, dtype=F64),
                vel=torch.randn(5, 3, dtype=F64))
    data.y = data.pos + data.vel
    torch.manual_seed(2)
    model = FreePoint()
    T = RigidTransform.sample(1, dtype=F64)
    a = RemulLoss(vectors='vel', group='SE3')(model, data, data.y, [T])
    b = RemulLoss(vectors='vel', group='SE3', fused=True)(model, data,
                                                          data.y, [T])
    assert torch.allclose(a.loss, b.loss, rtol=1e-12)
    graphs = [Data(pos=torch.randn(n, 3), vel=torch.randn(n, 3),
                   y=torch.randn(n, 3), edge_index=torch.tensor([[0], [1]]))
              for n in (2, 3, 4)]
    batch = next(iter(DataLoader(graphs, batch_size=3)))
    model32 = FreePoint(dtype=torch.float32)
    out = RemulLoss(vectors='vel', fused=True)(model32, batch, batch.y)
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)


def test_graph_level_targets():
    batch = batch_with_target((3, 4))
    # invariant scalar model: f(gx) = f(x) and g y = y, so L_equi = L_task
    target = InvariantScalar()(batch).detach() + 0.1
    out = RemulLoss(output='scalar', vectors='vel', group='E3')(
        InvariantScalar(), batch, target)
    assert abs(out.task.item() - 0.01) < 1e-12
    assert abs(out.equi.item() - out.task.item()) < 1e-12
    assert out.error['absolute'].item() < 1e-12
    torch.manual_seed(3)
    out = RemulLoss(output='scalar', vectors='vel')(FreeScalar(), batch,
                                                    target)
    assert out.equi.item() > 1e-6
    # graph-level vector: the model returns per-graph mean velocity
    from torch_geometric_remul.group import segment_mean

    def mean_vel(data):
        return segment_mean(data.vel, ptr=data.ptr)

    gvec = mean_vel(batch)
    out = RemulLoss(output='vector', vectors='vel', group='O3')(
        mean_vel, batch, gvec)
    assert out.loss.item() < 1e-24


def test_consistency_mode_is_label_free_and_detaches():
    batch = batch_with_target()
    torch.manual_seed(4)
    model = FreePoint()
    T = RigidTransform.sample(3, generator=torch.Generator().manual_seed(5),
                              dtype=F64)
    grads = []
    for detach in (True, False):
        model.zero_grad()
        loss_fn = RemulLoss(vectors='vel', mode='consistency', alpha=0.0,
                            detach_reference=detach)
        out = loss_fn(model, batch, None, transforms=[T])
        assert out.task is None
        out.loss.backward()
        grads.append(torch.cat([p.grad.flatten()
                                for p in model.parameters()]))
    assert not torch.allclose(grads[0], grads[1])
    # reference: target mode with the clean prediction as a fixed target
    moved_model_out = RemulLoss(vectors='vel', alpha=0.0)(
        model, batch, model(batch).detach(), transforms=[T])
    # same number as consistency mode: l(f(gx), g f(x))
    out = RemulLoss(vectors='vel', mode='consistency', alpha=0.0)(
        model, batch, None, transforms=[T])
    assert torch.allclose(out.equi, moved_model_out.equi, rtol=1e-12)


def test_augmentation_skips_clean_forward():
    batch = batch_with_target()
    calls = []

    def model(data):
        calls.append(data.num_nodes)
        return data.pos * 1.0

    out = RemulLoss(alpha=0.0, beta=1.0)(model, batch, batch.y)
    assert len(calls) == 1 and out.task is None and out.prediction is None


def test_batch_not_mutated():
    batch = batch_with_target()
    before = {k: v.clone() for k, v in batch.to_dict().items()}
    keys = set(batch.keys())
    torch.manual_seed(5)
    for fused in (False, True):
        RemulLoss(vectors='vel', group='SE3', fused=True, num_samples=3)(
            FreePoint(), batch, batch.y)
    assert set(batch.keys()) == keys
    for k, v in before.items():
        assert torch.equal(batch[k], v), k


def test_weighting_updates_only_in_training():
    batch = batch_with_target()
    weighting = TargetEquivariance(epsilon=1e-6, lr=0.5)
    loss_fn = RemulLoss(vectors='vel', weighting=weighting)
    torch.manual_seed(6)
    model = FreePoint()
    loss_fn.eval()
    loss_fn(model, batch, batch.y)
    assert weighting.weights()[1] == 1.0
    loss_fn.train()
    out = loss_fn(model, batch, batch.y)
    assert out.beta == 1.0  # weights used for this step, then updated
    assert weighting.weights()[1] > 1.0
    state = loss_fn.state_dict()
    assert 'weighting.log_beta' in state
    fresh = RemulLoss(vectors='vel',
                      weighting=TargetEquivariance(epsilon=1e-6, lr=0.5))
    fresh.load_state_dict(state)
    assert fresh.weighting.weights() == weighting.weights()


def test_gradnorm_in_loss():
    batch = batch_with_target()
    torch.manual_seed(7)
    model = FreePoint()
    loss_fn = RemulLoss(vectors='vel',
                        weighting=GradNorm(model.mlp[-1].parameters()))
    for _ in range(3):
        out = loss_fn(model, batch, batch.y)
        out.loss.backward()
    a, b = loss_fn.weighting.weights()
    assert abs(a + b - 2) < 1e-9 and (a, b) != (1.0, 1.0)


def test_bad_input():
    batch = batch_with_target()
    torch.manual_seed(8)
    model = FreePoint()
    loss_fn = RemulLoss(vectors='vel')
    with pytest.raises(ValueError, match=r"rows of 'target' \(7 rows\)"):
        loss_fn(model, batch, torch.randn(7, 3, dtype=F64))
    with pytest.raises(ValueError,
                       match=r"'target' must have shape \[rows, 3\]"):
        loss_fn(model, batch, torch.randn(batch.num_nodes, 2, dtype=F64))
    with pytest.raises(ValueError, match="'target' is required"):
        loss_fn(model, batch)
    with pytest.raises(TypeError, match="'target' must be a torch.Tensor"):
        loss_fn(model, batch, batch.y.tolist())
    with pytest.raises(ValueError, match="'force' .* is missing"):
        RemulLoss(vectors='force')(model, batch, batch.y)
    with pytest.raises(ValueError, match='model output on the clean batch'):
        loss_fn(lambda d: d.pos[:, :2], batch, batch.y)
    with pytest.raises(TypeError, match='model output on the .* batch '
                       'must be a torch.Tensor'):
        loss_fn(lambda d: (d.pos, ), batch, batch.y)
    # the finiteness check reads the loss: debug mode only
    with debug(), pytest.raises(FloatingPointError, match='non-finite'):
        loss_fn(lambda d: d.pos * float('nan'), batch, batch.y)
    out = loss_fn(lambda d: d.pos * float('nan'), batch, batch.y)
    assert torch.isnan(out.loss)
    with pytest.raises(ValueError, match="'mode'"):
        RemulLoss(mode='invariance')
    with pytest.raises(ValueError, match="'output'"):
        RemulLoss(output='tensor')
    with pytest.raises(ValueError, match="'num_samples' must be >= 1"):
        RemulLoss(num_samples=0)
    for bad in (2.0, True, '2'):  # as _checks.check_int: a TypeError
        with pytest.raises(TypeError, match="'num_samples' must be an "
                           "integer"):
            RemulLoss(num_samples=bad)
    with pytest.raises(ValueError, match='not both'):
        RemulLoss(beta=2.0, weighting=Constant(1.0, 2.0))
    with pytest.raises(TypeError, match="'weighting'"):
        RemulLoss(weighting='gradnorm')
    with pytest.raises(ValueError, match="'transforms' must be 1"):
        loss_fn(model, batch, batch.y, transforms=[])
    with pytest.raises(ValueError, match='one element per graph'):
        loss_fn(model, batch, batch.y,
                transforms=[RigidTransform.sample(2, dtype=F64)])


def test_training_with_remul_lowers_equivariance_error():
    # A toy equivariant task: y = x + 0.5 v. The training velocities all
    # point roughly along +x, so a plain model can fit the data without
    # using v equivariantly; REMUL with a large beta must learn the
    # symmetry. Seeded; a few seconds on 2 cores.
    def make_graphs(n, seed):
        g = torch.Generator().manual_seed(seed)
        graphs = []
        for _ in range(n):
            pos = torch.randn(4, 3, generator=g)
            speed = 1 + 0.2 * torch.rand(4, 1, generator=g)
            vel = speed * torch.tensor([1.0, 0.0, 0.0]) + 0.05 * torch.randn(
                4, 3, generator=g)
            graphs.append(Data(pos=pos, vel=vel, y=pos + 0.5 * vel))
        return graphs

    train = DataLoader(make_graphs(256, 0), batch_size=64, shuffle=True,
                       generator=torch.Generator().manual_seed(0))
    test = Batch.from_data_list(make_graphs(64, 1))

    def fit(beta):
        torch.manual_seed(0)
        model = FreePoint(hidden_channels=32, dtype=torch.float32)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        loss_fn = RemulLoss(vectors='vel', group='SO3', alpha=1.0,
                            beta=beta,
                            generator=torch.Generator().manual_seed(1))
        for _ in range(40):
            for batch in train:
                opt.zero_grad()
                loss_fn(model, batch, batch.y).loss.backward()
                opt.step()
        err = equivariance_error(model, test, vectors='vel', num_samples=8,
                                 generator=torch.Generator().manual_seed(2))
        mse = ((model(test) - test.y)**2).mean().item()
        return err.E_prime, mse

    plain_err, plain_mse = fit(0.0)
    remul_err, remul_mse = fit(10.0)
    assert plain_mse < 0.05  # both fit the training distribution
    assert remul_mse < 0.05
    assert remul_err < 0.25 * plain_err, (plain_err, remul_err)


@pytest.mark.parametrize('mode', ['target', 'consistency'])
def test_egnn_exact_and_gnn_not(mode):
    from torch_geometric_remul.graph import fully_connected_graph
    from torch_geometric_remul.nn.models import build_model
    batch = batch_with_target((3, 5, 4), seed=3)
    batch.edge_index = fully_connected_graph(batch)
    kw = dict(vectors=('vel', ), scalars=('charge', ), scalar_dim=1,
              hidden_channels=16, num_layers=2)
    torch.manual_seed(0)
    egnn = build_model('egnn', **kw).double()
    gnn = build_model('gnn', **kw).double()
    gen = torch.Generator().manual_seed(4)
    loss_fn = RemulLoss(vectors='vel', group='E3', mode=mode, num_samples=2,
                        generator=gen)
    target = egnn(batch).detach() if mode == 'target' else batch.y
    out = loss_fn(egnn, batch, target)
    assert out.equi.item() < 1e-20
    assert out.error['absolute'].item() < 1e-9
    err = equivariance_error(egnn, batch, vectors='vel', group='E3',
                             num_samples=4, generator=gen)
    assert err.E_prime < 1e-9 and err.E < 1e-9
    out = loss_fn(gnn, batch, target)
    assert out.equi.item() > 1e-6
    assert equivariance_error(gnn, batch, vectors='vel', group='E3',
                              num_samples=4).E_prime > 1e-4


@pytest.mark.parametrize('name', ['gnn', 'egnn', 'transformer'])
def test_fused_equals_unfused_with_message_passing(name):
    # the fused batch must offset edge_index, batch and ptr per copy
    from torch_geometric_remul.graph import fully_connected_graph
    from torch_geometric_remul.nn.models import build_model
    batch = batch_with_target((3, 5, 1, 4), seed=5)
    batch.edge_index = fully_connected_graph(batch)
    torch.manual_seed(0)
    model = build_model(name, vectors=('vel', ), scalars=('charge', ),
                        scalar_dim=1, hidden_channels=16,
                        num_layers=2).double()
    Ts = [RigidTransform.sample(4, 'SE3', generator=torch.Generator()
                                .manual_seed(s), dtype=F64) for s in (1, 2)]
    outs = []
    for fused in (False, True):
        loss_fn = RemulLoss(vectors='vel', group='SE3', num_samples=2,
                            fused=fused)
        outs.append(loss_fn(model, batch, batch.y, transforms=Ts))
    assert torch.allclose(outs[0].loss, outs[1].loss, rtol=1e-10)
    assert torch.allclose(outs[0].prediction, outs[1].prediction,
                          rtol=1e-10, atol=1e-12)


# Row layout from the collation metadata ####################################

def _equal_counts_batch():
    """3 nodes in 3 graphs (one empty): node- and graph-level row counts
    coincide. ``u`` is a graph-level vector target, collated."""
    g = torch.Generator().manual_seed(11)
    graphs = [Data(pos=torch.randn(n, 3, generator=g, dtype=F64),
                   vel=torch.randn(n, 3, generator=g, dtype=F64),
                   u=torch.randn(1, 3, generator=g, dtype=F64))
              for n in (2, 0, 1)]
    batch = Batch.from_data_list(graphs)
    assert batch.num_nodes == batch.num_graphs == 3
    return batch


def _sum_vel(data):  # exactly equivariant graph-level vector
    from torch_geometric_remul.group import segment_sum
    return segment_sum(data.vel, ptr=data.ptr)


@pytest.mark.parametrize('fused', [False, True])
def test_graph_level_target_when_nodes_equal_graphs(fused):
    batch = _equal_counts_batch()
    loss_fn = RemulLoss(output='vector', vectors='vel', fused=fused,
                        generator=torch.Generator().manual_seed(0))
    # batch.u is found by identity: graph-level from the metadata. For an
    # equivariant model the moved output fits the moved target exactly as
    # well as the clean one (rotations keep each graph's error norm)
    out = loss_fn(_sum_vel, batch, batch.u)
    assert torch.allclose(out.equi, out.task, rtol=1e-12)
    assert float(out.error['absolute']) < 1e-12
    # a free tensor with an ambiguous row count: a clear error...
    with pytest.raises(ValueError, match=r"rows of 'target' \(3 rows\).*"
                       r"several layouts.*level"):
        loss_fn(_sum_vel, batch, batch.u.clone())
    # ... unless its level is stated
    stated = RemulLoss(output='vector', vectors='vel', fused=fused,
                       level='graph',
                       generator=torch.Generator().manual_seed(0))
    out = stated(_sum_vel, batch, batch.u.clone())
    assert torch.allclose(out.equi, out.task, rtol=1e-12)
    assert 'level' in repr(stated)
    consistency = RemulLoss(output='vector', vectors='vel', fused=fused,
                            mode='consistency', alpha=0.0, level='graph')
    assert float(consistency(_sum_vel, batch).equi) < 1e-24
    with pytest.raises(ValueError, match="'level'"):
        RemulLoss(level='nodes')


def test_empty_graphs_excluded_from_batch_error():
    # E' of the batch averages the graphs that have nodes: adding empty
    # graphs does not dilute it
    torch.manual_seed(9)
    model = FreePoint()
    g = torch.Generator().manual_seed(3)
    graphs = [Data(pos=torch.randn(n, 3, generator=g, dtype=F64),
                   vel=torch.randn(n, 3, generator=g, dtype=F64),
                   y=torch.randn(n, 3, generator=g, dtype=F64))
              for n in (3, 4, 0)]
    full = Batch.from_data_list(graphs[:2])
    padded = Batch.from_data_list([graphs[0], graphs[2], graphs[1],
                                   graphs[2]])
    T = RigidTransform.sample(2, generator=torch.Generator().manual_seed(1),
                              dtype=F64)
    T4 = T.index_select(torch.tensor([0, 0, 1, 1]))
    loss_fn = RemulLoss(vectors='vel')
    a = loss_fn(model, full, full.y, transforms=[T]).error
    b = loss_fn(model, padded, padded.y, transforms=[T4]).error
    for key in ('absolute', 'relative'):
        assert torch.allclose(a[key], b[key], rtol=1e-12), key


# No host-device synchronisation ###########################################

def _sync_batch(num_graphs=100, seed=0):
    """``num_graphs`` graphs of 3-7 nodes, fully connected, float32."""
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(3, 8, (num_graphs, ), generator=g).tolist()
    graphs = []
    for n in sizes:
        i = torch.arange(n)
        ei = torch.stack(torch.meshgrid(i, i, indexing='ij')).reshape(2, -1)
        pos = torch.randn(n, 3, generator=g)
        vel = torch.randn(n, 3, generator=g)
        graphs.append(Data(pos=pos, vel=vel, y=pos + 0.1 * vel,
                           edge_index=ei[:, ei[0] != ei[1]]))
    return Batch.from_data_list(graphs)


_SYNC_BATCH = []


def _weighting(name, model):
    from torch_geometric_remul.nn.weighting import Schedule
    if name == 'constant':
        return Constant(1.0, 1.0)
    if name == 'schedule':
        return Schedule(beta_end=1.0, total_steps=10)
    if name == 'gradnorm':
        last = [m for m in model.modules()
                if isinstance(m, torch.nn.Linear)][-1]
        return GradNorm(last.parameters())
    return TargetEquivariance(epsilon=0.01)


@pytest.mark.parametrize('weighting', ['constant', 'schedule', 'gradnorm',
                                       'target'])
@pytest.mark.parametrize('mode', ['target', 'consistency'])
@pytest.mark.parametrize('fused', [True, False])
@pytest.mark.parametrize('name', ['gnn', 'transformer', 'egnn'])
def test_step_makes_no_host_device_sync(name, fused, mode, weighting):
    from torch_geometric_remul.nn.models import build_model
    from torch_geometric_remul.testing import assert_no_syncs, count_syncs
    if not _SYNC_BATCH:
        _SYNC_BATCH.append(_sync_batch())
    batch = _SYNC_BATCH[0]
    torch.manual_seed(0)
    model = build_model(name, vectors=('vel', ), hidden_channels=8,
                        num_layers=2)
    loss_fn = RemulLoss(vectors='vel', mode=mode, fused=fused,
                        weighting=_weighting(weighting, model),
                        generator=torch.Generator().manual_seed(0))
    for step in range(2):  # the first update initialises learned state
        with count_syncs() as syncs:
            out = loss_fn(model, batch, batch.y)
            out.loss.backward()
        assert_no_syncs(syncs, f'{name} {mode} {weighting} fused={fused} '
                        f'step {step}')
    assert torch.isfinite(out.loss)


def test_fused_batch_built_without_reading_values():
    from torch_geometric_remul.layout import row_layout
    from torch_geometric_remul.nn._fuse import concat_copies
    from torch_geometric_remul.testing import assert_no_syncs, count_syncs
    batch = _sync_batch(6)
    graphs = batch.to_data_list()
    with count_syncs() as syncs:
        fused = concat_copies([batch, batch, batch])
    assert_no_syncs(syncs, 'concat_copies')
    ref = Batch.from_data_list(graphs * 3)
    assert fused.num_graphs == 18
    for key in ('batch', 'ptr', 'edge_index', 'pos'):
        assert torch.equal(fused[key], ref[key]), key
    for key in ('pos', 'y', 'edge_index'):
        assert torch.equal(fused._slice_dict[key], ref._slice_dict[key]), key
    assert torch.equal(row_layout(fused, 'pos').ptr, ref.ptr)
    single = Data(pos=torch.randn(4, 3))
    two = concat_copies([single, single])
    assert two.ptr.tolist() == [0, 4, 8] and two.num_graphs == 2


# Meta device, dtypes ######################################################

@pytest.mark.parametrize('name', ['gnn', 'transformer', 'egnn'])
@pytest.mark.parametrize('fused', [False, True])
def test_meta_device_forward(name, fused):
    from torch_geometric_remul.nn.models import build_model
    batch = _sync_batch(5).to('meta')
    model = build_model(name, vectors=('vel', ), hidden_channels=8,
                        num_layers=1).to('meta')
    loss_fn = RemulLoss(vectors='vel', fused=fused,
                        weighting=_weighting('gradnorm', model)).to('meta')
    out = loss_fn(model, batch, batch.y)
    out.loss.backward()
    assert out.loss.device.type == 'meta' and out.loss.shape == ()
    assert out.equi.shape == () and out.task.shape == ()
    assert out.prediction.shape == (batch.num_nodes, 3)
    assert out.prediction.device.type == 'meta'
    assert out.error['absolute'].device.type == 'meta'
    assert out.alpha.device.type == 'meta'


@pytest.mark.parametrize('fused', [False, True])
def test_step_on_a_device_batch_copies_nothing_from_the_host(fused):
    """No per-step host-to-device copy (random numbers drawn on the data's
    device, offsets taken from the device), seen on the meta device."""
    from torch_geometric_remul.nn.models import build_model
    from torch_geometric_remul.testing import assert_no_syncs, count_syncs
    batch = _sync_batch(5).to('meta')
    model = build_model('gnn', vectors=('vel', ), hidden_channels=8,
                        num_layers=1).to('meta')
    loss_fn = RemulLoss(vectors='vel', group='E3', fused=fused)
    for step in range(2):  # the first step brings constants to the device
        with count_syncs() as syncs:
            loss_fn(model, batch, batch.y).loss.backward()
    assert_no_syncs(syncs, f'REMUL step on meta, fused={fused}')


@pytest.mark.parametrize('dtype', [torch.long, torch.float64])
def test_target_dtype_error_names_target(dtype):
    batch = _sync_batch(3)
    torch.manual_seed(0)
    model = FreePoint(dtype=torch.float32)
    target = batch.y.to(dtype)
    for fused in (False, True):
        with pytest.raises(TypeError, match=f"'target' has dtype {dtype} "
                           f"but must be torch.float32"):
            RemulLoss(vectors='vel', fused=fused)(model, batch, target)
    # a model output of another dtype is named too
    with pytest.raises(TypeError, match="model output on the clean batch "
                       "has dtype torch.float64 but must be torch.float32"):
        RemulLoss(vectors='vel', mode='consistency', alpha=0.0)(
            lambda d: d.pos.double(), batch)


def test_adaptive_weights_are_tensors_in_output():
    batch = batch_with_target()
    torch.manual_seed(7)
    model = FreePoint()
    out = RemulLoss(vectors='vel', weighting=GradNorm(
        model.mlp[-1].parameters()))(model, batch, batch.y)
    assert isinstance(out.alpha, torch.Tensor) and out.alpha.shape == ()
    assert float(out.alpha) == 1.0 and float(out.beta) == 1.0
    out = RemulLoss(vectors='vel', alpha=0.5)(model, batch, batch.y)
    assert (out.alpha, out.beta) == (0.5, 1.0)


def test_fused_batch_matches_from_data_list_and_separates():
    from torch_geometric.data import Batch, Data

    from torch_geometric_remul.nn._fuse import concat_copies
    g = torch.Generator().manual_seed(0)
    graphs = [Data(pos=torch.randn(n, 3, generator=g),
                   edge_index=torch.randint(0, max(n, 1), (2, 2 * n),
                                            generator=g),
                   u=torch.randn(1, 3, generator=g)) for n in (3, 0, 2)]
    batch = Batch.from_data_list(graphs)
    other = batch.clone()
    other.pos = other.pos + 1
    fused = concat_copies([batch, other])
    ref = Batch.from_data_list(graphs + other.to_data_list())
    for key in ('pos', 'edge_index', 'u', 'batch', 'ptr'):
        assert torch.equal(fused[key], ref[key]), key
    assert fused.num_graphs == 6
    parts = fused.to_data_list()
    assert len(parts) == 6
    for a, b in zip(parts, ref.to_data_list()):
        assert torch.equal(a.pos, b.pos)
        assert torch.equal(a.edge_index, b.edge_index)


def _all_empty_batch(num_graphs=3):
    """A Batch of graphs that all have no nodes (node-level target)."""
    return Batch.from_data_list([
        Data(pos=torch.zeros(0, 3, dtype=F64),
             vel=torch.zeros(0, 3, dtype=F64),
             y=torch.zeros(0, 3, dtype=F64)) for _ in range(num_graphs)])


@pytest.mark.parametrize('weighting', ['constant', 'gradnorm'])
@pytest.mark.parametrize('mode', ['target', 'consistency'])
@pytest.mark.parametrize('fused', [False, True])
@pytest.mark.parametrize('debug_mode', [False, True])
def test_all_empty_batch_gives_zero_loss_and_zero_gradient(
        weighting, mode, fused, debug_mode):
    from torch_geometric_remul.testing import assert_no_syncs, count_syncs
    torch.manual_seed(0)
    model = FreePoint()
    batch = _all_empty_batch()
    weights = (GradNorm(model.parameters()) if weighting == 'gradnorm'
               else Constant(1.0, 1.0))
    loss_fn = RemulLoss(vectors='vel', mode=mode, fused=fused,
                        weighting=weights)
    with debug(debug_mode), count_syncs() as syncs:
        out = loss_fn(model, batch, batch.y)
        out.loss.backward()
    if not debug_mode:  # decided from shapes: no host read
        assert_no_syncs(syncs, 'all-empty batch')
    # it used to be NaN (a mean over no rows); debug mode raised
    assert out.loss.item() == 0.0 and out.equi.item() == 0.0
    assert out.task.item() == 0.0
    for p in model.parameters():
        assert p.grad is None or (p.grad == 0).all()
    assert float(out.error['absolute']) == 0.0
    if weighting == 'gradnorm':
        assert torch.isfinite(torch.as_tensor(out.alpha)).all()
        assert torch.isfinite(torch.as_tensor(out.beta)).all()


def test_batch_of_no_graphs_is_refused():
    empty = Batch(pos=torch.zeros(0, 3),
                  batch=torch.zeros(0, dtype=torch.long),
                  ptr=torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match=r'the Batch holds no graphs '
                       r'\(num_graphs is 0\)'):
        RemulLoss()(FreePoint(), empty, torch.zeros(0, 3))


def test_roles_default_to_the_models_own():
    """A loss built without a declaration moves what the model declares
    (here 'vel' as a vector): the exactly equivariant model then has no
    equivariance loss, while the default Roles() would leave 'vel' in place
    and see a violation."""
    from torch_geometric_remul.roles import Roles

    class Declared(ExactPoint):
        roles = Roles(vectors='vel', output='point')

    batch = make_batch([3, 4])
    g = torch.Generator().manual_seed(0)
    loss_fn = RemulLoss(generator=g, mode='consistency', alpha=0.0)
    assert loss_fn.vectors == ()  # nothing known before the first call
    out = loss_fn(Declared(), batch)
    assert loss_fn.roles is Declared.roles and loss_fn.vectors == ('vel', )
    assert float(out.equi.detach()) < 1e-20
    # a declared loss keeps its own roles
    stated = RemulLoss(points='pos', generator=g, mode='consistency',
                       alpha=0.0)
    assert float(stated(Declared(), batch).equi.detach()) > 1e-6
    assert stated.vectors == ()


def test_options_are_keyword_only():
    with pytest.raises(TypeError, match='positional'):
        RemulLoss(None, 'point')
    assert RemulLoss(torch.nn.L1Loss()).task_loss.__class__ is \
        torch.nn.L1Loss


# torch.compile ############################################################

def _compile_step(loss_fn):
    def step(model, batch):
        out = loss_fn(model, batch, batch.y)
        out.loss.backward()
        return out.loss.detach()
    return step


def test_compiled_fused_step_serves_batches_of_every_shape():
    """One compiled fused REMUL step (default dynamic=None) takes batches of
    different numbers of graphs and nodes: no false layout error, the
    eager loss and gradients (same seeds), and no recompile after the
    second shape (which makes the sizes symbolic)."""
    from torch._dynamo.utils import counters

    from torch_geometric_remul.nn.models import build_model
    torch.manual_seed(0)
    model = build_model('gnn', vectors=('vel', ), hidden_channels=8,
                        num_layers=1)
    loss_fn = RemulLoss(vectors='vel', group='SO3', fused=True, level='node')
    step = _compile_step(loss_fn)
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(step, backend='aot_eager')
    graphs = []
    for n in (6, 4, 5):
        batch = _sync_batch(n, seed=n)
        for fn in (step, compiled):
            model.zero_grad()
            torch.manual_seed(n)
            loss = fn(model, batch)
            grads = [p.grad.clone() for p in model.parameters()]
            if fn is step:
                ref_loss, ref_grads = loss, grads
        assert torch.allclose(loss, ref_loss, rtol=1e-5, atol=1e-6)
        for g, r in zip(grads, ref_grads):
            assert torch.allclose(g, r, rtol=1e-4, atol=1e-6)
        graphs.append(counters['stats']['unique_graphs'])
    assert graphs[1] > graphs[0]  # the second shape: symbolic sizes
    assert graphs[2] == graphs[1], graphs


def _traced_backward():
    """Dynamo traces ``loss.backward()`` into the graph (the whole step in
    one graph) only with ``trace_autograd_ops``; older torch has no such
    option."""
    if not hasattr(torch._dynamo.config, 'trace_autograd_ops'):
        pytest.skip('this torch cannot trace Tensor.backward()')
    return torch._dynamo.config.patch(trace_autograd_ops=True)


@pytest.mark.parametrize('name,native', [
    ('gnn', False), ('gnn', True), ('egnn', False), ('transformer', False),
    ('mlp', True)])
def test_compiled_fused_step_is_one_graph_with_the_eager_result(name,
                                                                native):
    """The whole fused REMUL step (forward, loss and backward, the README's
    Roles(vectors='vel', output='point')) is one graph: torch._dynamo.explain
    finds no graph break (the Transformer with a static max_num_nodes), with
    and without the accelerators, and torch.compile(step, fullgraph=True)
    gives the eager loss and gradients (same seeds)."""
    import contextlib

    from torch_geometric_remul.nn.models import build_model
    from torch_geometric_remul.roles import Roles
    from torch_geometric_remul.typing import force_native
    batch = _sync_batch(6)
    roles = Roles(vectors='vel', output='point')
    options = dict(roles=roles, hidden_channels=8, num_layers=1)
    if name == 'transformer':
        options['max_num_nodes'] = 7  # a static size: no host read
    if name == 'mlp':
        batch = Batch.from_data_list([Data(
            pos=torch.randn(5, 3), vel=torch.randn(5, 3),
            y=torch.randn(5, 3)) for _ in range(4)])
        options['num_nodes'] = 5
    torch.manual_seed(0)
    model = build_model(name, **options)
    step = _compile_step(RemulLoss(roles=roles, group='SO3', beta=1.0,
                                   fused=True))
    with force_native() if native else contextlib.nullcontext(), \
            _traced_backward():
        torch._dynamo.reset()
        explain = torch._dynamo.explain(step)(model, batch)
        assert explain.graph_break_count == 0, explain.break_reasons
        assert explain.graph_count == 1
        compiled = torch.compile(step, backend='aot_eager', fullgraph=True)
        results = []
        for fn in (step, compiled):
            model.zero_grad()
            torch.manual_seed(1)
            loss = fn(model, batch)
            results.append((loss, [p.grad.clone()
                                   for p in model.parameters()]))
    (ref, ref_grads), (loss, grads) = results
    assert torch.allclose(loss, ref, rtol=1e-5, atol=1e-6)
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('name', ['gnn', 'egnn', 'transformer'])
def test_models_compile_with_fullgraph_to_the_eager_result(name):
    """torch.compile(model, fullgraph=True) (the Transformer with a static
    max_num_nodes) gives the eager outputs and parameter gradients."""
    from torch_geometric_remul.nn.models import build_model
    batch = _sync_batch(5, seed=2)
    options = dict(vectors=('vel', ), hidden_channels=8, num_layers=1)
    if name == 'transformer':
        options['max_num_nodes'] = 7
    torch.manual_seed(0)
    model = build_model(name, **options)
    torch._dynamo.reset()
    compiled = torch.compile(model, backend='aot_eager', fullgraph=True)
    results = []
    for fn in (model, compiled):
        model.zero_grad()
        out = fn(batch)
        torch.nn.functional.mse_loss(out, batch.y).backward()
        results.append((out.detach(), [p.grad.clone()
                                       for p in model.parameters()]))
    (ref, ref_grads), (out, grads) = results
    assert torch.allclose(out, ref, rtol=1e-5, atol=1e-6)
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, rtol=1e-4, atol=1e-6)
