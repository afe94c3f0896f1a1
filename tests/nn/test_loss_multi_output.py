"""RemulLoss with several named outputs: an interatomic potential (energy and
forces = -dE/dpos by autograd)."""
import pytest
import torch
from torch_geometric.data import Batch, Data

from torch_geometric_remul.group import RigidSampler, RigidTransform
from torch_geometric_remul.metrics import equivariance_error
from torch_geometric_remul.nn import RemulLoss
from torch_geometric_remul.roles import Roles
from torch_geometric_remul.testing import assert_equivariant

F64 = torch.float64
OUTPUT = {'energy': 'scalar', 'forces': 'vector'}


class Springs(torch.nn.Module):
    """E = sum over edges of k (|x_i - x_j| - r0)^2 (exactly E(3)-invariant),
    forces = -dE/dx by autograd (exactly equivariant); ``bias`` adds a
    constant force, which breaks rotation equivariance."""
    def __init__(self, bias=0.0):
        super().__init__()
        self.k = torch.nn.Parameter(torch.tensor(1.3, dtype=F64))
        self.r0 = torch.nn.Parameter(torch.tensor(0.7, dtype=F64))
        self.bias = bias

    def forward(self, data):
        pos = data.pos.detach().requires_grad_()  # never touch the input
        src, dst = data.edge_index
        d = (pos[src] - pos[dst]).norm(dim=-1)
        e_edge = self.k * (d - self.r0) ** 2
        batch = data.batch if 'batch' in data else pos.new_zeros(
            pos.size(0), dtype=torch.long)
        num_graphs = data.num_graphs if 'ptr' in data else 1
        energy = pos.new_zeros(num_graphs).index_add(0, batch[src], e_edge)
        forces = -torch.autograd.grad(energy.sum(), pos,
                                      create_graph=self.training)[0]
        forces = forces + self.bias * torch.tensor([1.0, 0, 0], dtype=F64)
        return {'energy': energy.unsqueeze(-1), 'forces': forces}


def molecules(sizes=(3, 5, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for n in sizes:
        i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing='ij')
        keep = i != j
        graphs.append(Data(pos=torch.randn(n, 3, generator=g, dtype=F64),
                           edge_index=torch.stack([i[keep], j[keep]]),
                           energy=torch.randn(1, 1, generator=g, dtype=F64),
                           force=torch.randn(n, 3, generator=g, dtype=F64)))
    return Batch.from_data_list(graphs)


def targets(batch):
    return {'energy': batch.energy, 'forces': batch.force}


@pytest.mark.parametrize('fused', [False, True])
def test_exact_potential_has_zero_equivariance_loss(fused):
    batch = molecules()
    model = Springs()
    loss_fn = RemulLoss(output=OUTPUT, group='SE3', fused=fused,
                        output_weights={'energy': 1.0, 'forces': 100.0},
                        generator=torch.Generator().manual_seed(1))
    out = loss_fn(model, batch, targets(batch))
    # target mode: the moved prediction fits the moved target exactly as
    # the prediction fits the target, output by output
    for k in OUTPUT:
        assert torch.allclose(out.parts[f'equi/{k}'], out.parts[f'task/{k}'],
                              rtol=1e-10, atol=1e-12)
    assert float(out.error['absolute/forces']) < 1e-12
    assert float(out.error['absolute/energy']) < 1e-12
    # weighted sum: energy weight 1, force weight 100
    expected = out.parts['task/energy'] + 100 * out.parts['task/forces']
    assert torch.allclose(out.task.detach(), expected, rtol=1e-12)
    out.loss.backward()  # second-order gradients through the forces
    assert model.k.grad is not None and torch.isfinite(model.k.grad)
    # label-free consistency mode: exactly 0 for the exact model
    cons = RemulLoss(output=OUTPUT, group='SE3', mode='consistency',
                     alpha=0.0, fused=fused)(Springs(), batch)
    assert float(cons.equi.detach()) < 1e-20


@pytest.mark.parametrize('fused', [False, True])
def test_biased_forces_are_penalised(fused):
    batch = molecules()
    loss_fn = RemulLoss(output=OUTPUT, group='SE3', mode='consistency',
                        alpha=0.0, fused=fused,
                        generator=torch.Generator().manual_seed(2))
    out = loss_fn(Springs(bias=0.5), batch)
    assert float(out.parts['equi/forces']) > 1e-3
    assert float(out.parts['equi/energy']) < 1e-20  # energy stays invariant


def test_fused_equals_unfused_with_autograd_forces():
    batch = molecules()
    Ts = [RigidTransform.sample(batch.num_graphs, 'SE3', dtype=F64,
                                generator=torch.Generator().manual_seed(3))]
    a = RemulLoss(output=OUTPUT)(Springs(bias=0.3), batch, targets(batch),
                                 transforms=Ts)
    b = RemulLoss(output=OUTPUT, fused=True)(Springs(bias=0.3), batch,
                                             targets(batch), transforms=Ts)
    assert torch.allclose(a.loss, b.loss, rtol=1e-12)


def test_per_output_task_losses_and_roles_object():
    batch = molecules()
    l1 = torch.nn.L1Loss()
    roles = Roles(output=OUTPUT)
    out = RemulLoss(task_loss={'energy': l1, 'forces': torch.nn.MSELoss()},
                    roles=roles, sampler=RigidSampler('SO3'))(
                        Springs(), batch, targets(batch))
    pred = out.prediction
    assert torch.allclose(out.parts['task/energy'],
                          l1(pred['energy'], batch.energy))


def test_multi_output_errors():
    batch = molecules()
    with pytest.raises(ValueError, match=r"'target' lacks the output\(s\) "
                       r"\['forces'\]"):
        RemulLoss(output=OUTPUT)(Springs(), batch,
                                 {'energy': batch.energy})
    with pytest.raises(TypeError, match='the model output on the clean '
                       'batch must be a mapping with the outputs'):
        RemulLoss(output=OUTPUT)(lambda d: d.pos, batch, targets(batch))
    with pytest.raises(ValueError, match="'output_weights' names unknown"):
        RemulLoss(output=OUTPUT, output_weights={'energies': 1.0})
    with pytest.raises(ValueError, match=r"'output_weights\['forces'\]' must "
                       r"be a finite number >= 0"):
        RemulLoss(output=OUTPUT, output_weights={'forces': -1.0})
    with pytest.raises(ValueError, match="'task_loss' must have the keys"):
        RemulLoss(output=OUTPUT, task_loss={'energy': torch.nn.MSELoss()})
    with pytest.raises(ValueError, match=r"'output\['energy'\]' must be one "
                       r"of point, vector"):
        RemulLoss(output={'energy': 'invariant'})
    with pytest.raises(ValueError, match="either 'roles' or 'output'"):
        RemulLoss(output='vector', roles=Roles())


def test_equivariance_error_and_assert_equivariant_multi_output():
    batch = molecules()
    model = Springs()
    model.train()
    errs = equivariance_error(model, batch, output=OUTPUT, group='SE3',
                              num_samples=4)
    assert set(errs) == set(OUTPUT)
    assert errs['forces'].E_prime < 1e-12 and errs['energy'].E_prime < 1e-12
    assert model.training and model.k.requires_grad  # restored
    assert model.k.grad is None  # no parameter gradient recorded
    assert_equivariant(model, batch, output=OUTPUT, group='SE3')
    with pytest.raises(AssertionError, match="forces: E'"):
        assert_equivariant(Springs(bias=0.5), batch, output=OUTPUT,
                           group='SO3')


@pytest.mark.parametrize('fused', [False, True])
def test_multi_output_step_makes_no_host_sync(fused):
    from torch_geometric_remul.testing import assert_no_syncs, count_syncs
    batch = molecules(sizes=(3, 5, 4, 6))
    model = Springs(bias=0.1)
    loss_fn = RemulLoss(output=OUTPUT, group='SE3', fused=fused,
                        output_weights={'energy': 1.0, 'forces': 10.0},
                        generator=torch.Generator().manual_seed(0))
    loss_fn(model, batch, targets(batch)).loss.backward()  # warm-up
    with count_syncs() as syncs:
        loss_fn(model, batch, targets(batch)).loss.backward()
    assert_no_syncs(syncs, 'energy + forces RemulLoss step')
