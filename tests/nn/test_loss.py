import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from tests.conftest import make_batch
from tests.nn.toy_models import (ExactPoint, FreePoint, FreeScalar,
                                 InvariantScalar)
from torch_geometric_remul.group import RigidTransform
from torch_geometric_remul.metrics import equivariance_error
from torch_geometric_remul.nn import (Constant, GradNorm, RemulLoss,
                                      TargetEquivariance)

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
    with pytest.raises(ValueError, match="'target' has 7 rows"):
        loss_fn(model, batch, torch.randn(7, 3, dtype=F64))
    with pytest.raises(ValueError, match=r"'target' must have shape \[rows, 3\]"):
        loss_fn(model, batch, torch.randn(batch.num_nodes, 2, dtype=F64))
    with pytest.raises(ValueError, match="'target' is required"):
        loss_fn(model, batch)
    with pytest.raises(TypeError, match="'target' must be a torch.Tensor"):
        loss_fn(model, batch, batch.y.tolist())
    with pytest.raises(ValueError, match="'force' .* is missing"):
        RemulLoss(vectors='force')(model, batch, batch.y)
    with pytest.raises(ValueError, match='model output on the clean batch'):
        loss_fn(lambda d: d.pos[:, :2], batch, batch.y)
    with pytest.raises(TypeError, match='must return a Tensor'):
        loss_fn(lambda d: (d.pos, ), batch, batch.y)
    with pytest.raises(FloatingPointError, match='non-finite'):
        loss_fn(lambda d: d.pos * float('nan'), batch, batch.y)
    with pytest.raises(ValueError, match="'mode'"):
        RemulLoss(mode='invariance')
    with pytest.raises(ValueError, match="'output'"):
        RemulLoss(output='tensor')
    with pytest.raises(ValueError, match="'num_samples'"):
        RemulLoss(num_samples=0)
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
        model = FreePoint(hidden=32, dtype=torch.float32)
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
              hidden=16, layers=2)
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
                        scalar_dim=1, hidden=16, layers=2).double()
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
