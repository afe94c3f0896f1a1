import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from tests.conftest import make_batch
from tests.nn.toy_models import (
    ExactPoint,
    FreePoint,
    FreeScalar,
    InvariantScalar,
)
from torch_geometric_remul.metrics import equivariance_error


@pytest.mark.parametrize('group', ['SO3', 'SE3', 'E3'])
def test_exact_model_zero_free_model_positive(group):
    batch = make_batch([3, 5, 2, 4])
    g = torch.Generator().manual_seed(0)
    exact = equivariance_error(ExactPoint(), batch, vectors='vel',
                               group=group, num_samples=5, generator=g)
    assert exact.E < 1e-10 and exact.E_prime < 1e-10
    assert exact.num_graphs == 4
    torch.manual_seed(0)
    free = equivariance_error(FreePoint(), batch, vectors='vel', group=group,
                              num_samples=5, generator=g)
    assert free.E_prime > 1e-3 and free.E_prime_rel > 1e-4
    # triangle inequality: E <= E'
    assert free.E <= free.E_prime + 1e-12


def test_scalar_invariance():
    batch = make_batch([3, 4])
    err = equivariance_error(InvariantScalar(), batch, output='scalar',
                             vectors='vel', group='E3', num_samples=4)
    assert err.E_prime < 1e-10
    torch.manual_seed(1)
    free = equivariance_error(FreeScalar(), batch, output='scalar',
                              vectors='vel', num_samples=4)
    assert free.E_prime > 1e-4


def test_loader_matches_single_batch_and_restores_mode():
    graphs = make_batch([3, 4, 5, 2]).to_data_list()
    torch.manual_seed(2)
    model = FreePoint()
    model.train()
    kw = dict(vectors='vel', num_samples=3)
    whole = equivariance_error(model, Batch.from_data_list(graphs),
                               generator=torch.Generator().manual_seed(3),
                               **kw)
    assert model.training
    # same draws: graphs in one batch of 4 vs the loader's batches of 4
    loader = DataLoader(graphs, batch_size=4)
    split = equivariance_error(model, loader,
                               generator=torch.Generator().manual_seed(3),
                               **kw)
    assert split.E_prime == pytest.approx(whole.E_prime, rel=1e-12)
    assert split.E_prime_paper == pytest.approx(whole.E_prime_paper,
                                                rel=1e-12)
    assert split.num_graphs == 4
    # a loader with several batches averages per graph
    two = equivariance_error(model, DataLoader(graphs, batch_size=2), **kw)
    assert two.num_graphs == 4 and two.E_prime > 0


def test_bad_input():
    batch = make_batch([3])
    with pytest.raises(ValueError, match="'output'"):
        equivariance_error(ExactPoint(), batch, output='tensor')
    with pytest.raises(ValueError, match="'num_samples' must be >= 1"):
        equivariance_error(ExactPoint(), batch, num_samples=0)
    with pytest.raises(TypeError, match="'num_samples' must be an integer"):
        equivariance_error(ExactPoint(), batch, num_samples=2.0)
    with pytest.raises(ValueError, match='no graph'):
        equivariance_error(ExactPoint(), [])
    with pytest.raises(ValueError, match="'force' .* is missing"):
        equivariance_error(ExactPoint(), batch, vectors='force')


def test_any_callable_model():
    batch = make_batch([3, 4])
    err = equivariance_error(lambda d: 2 * d.pos, batch, num_samples=3)
    assert err.E_prime < 1e-10 and err.num_graphs == 2
    err = equivariance_error(lambda d: d.pos + 1.0, batch, num_samples=3,
                             generator=torch.Generator().manual_seed(0))
    assert err.E_prime > 0.1  # a fixed offset is not rotation-equivariant
    with pytest.raises(TypeError, match="'model' must be callable"):
        equivariance_error(3, batch)


def test_empty_graphs_excluded_and_counted():
    graphs = make_batch([3, 4], extra=False).to_data_list()
    empty = make_batch([0], extra=False).to_data_list()[0]
    torch.manual_seed(0)

    def model(data):  # under translations t, the error of a node is |t|
        return 2 * data.pos

    # translations only (drawn as randn(B, 3)), one sample, empty graphs
    # last: the non-empty graphs draw the same elements in both batches
    kw = dict(vectors='vel', num_samples=1, group='T3')
    whole = equivariance_error(model, Batch.from_data_list(graphs),
                               generator=torch.Generator().manual_seed(1),
                               **kw)
    with_empty = equivariance_error(
        model, Batch.from_data_list(graphs + [empty, empty]),
        generator=torch.Generator().manual_seed(1), **kw)
    assert (whole.num_graphs, whole.num_empty) == (2, 0)
    assert (with_empty.num_graphs, with_empty.num_empty) == (2, 2)
    assert with_empty.as_dict()['num_empty'] == 2
    for key in ('E', 'E_prime', 'E_rel', 'E_prime_rel', 'E_prime_paper'):
        assert getattr(with_empty, key) == pytest.approx(
            getattr(whole, key), rel=1e-12), key
    # a single empty Data is excluded too; nothing left is an error
    assert whole.E_prime > 0.1
    exact = equivariance_error(ExactPoint(), [graphs[0], empty], **kw)
    assert (exact.num_graphs, exact.num_empty) == (1, 1)
    with pytest.raises(ValueError, match='no graph with nodes'):
        equivariance_error(model, Batch.from_data_list([empty, empty]), **kw)


def test_one_host_read_per_call():
    from torch_geometric_remul.testing import count_syncs
    graphs = make_batch([3, 4, 0, 5, 2, 6]).to_data_list()
    batches = list(DataLoader(graphs, batch_size=2))  # collated beforehand
    torch.manual_seed(0)
    with count_syncs() as syncs:
        err = equivariance_error(FreePoint(), batches, vectors='vel',
                                 num_samples=4)
    assert syncs.count == 1, syncs.report()
    assert err.num_graphs == 5 and err.num_empty == 1


def test_level_for_ambiguous_output_rows():
    # 3 nodes in 3 graphs: node-level and graph-level outputs look alike
    graphs = [make_batch([n], extra=False, seed=n).to_data_list()[0]
              for n in (2, 0, 1)]
    batch = Batch.from_data_list(graphs)

    def double(data):
        return 2 * data.pos

    with pytest.raises(ValueError, match="model output.*several layouts"):
        equivariance_error(double, batch)
    err = equivariance_error(double, batch, level='node')
    assert err.E_prime < 1e-10 and (err.num_graphs, err.num_empty) == (2, 1)
    with pytest.raises(ValueError, match="'level'"):
        equivariance_error(double, batch, level='atom')


@pytest.mark.parametrize('group', ['SO3', 'T3', 'SE3'])
@pytest.mark.parametrize('n', [1, 4, 9])
def test_paper_e_prime_is_sqrt_n_times_ours_for_equal_node_errors(group, n):
    # f(x) = x + c: under a rigid motion (R, t) every node's error is the
    # same vector c - R c, so the whole-output norm is sqrt(n) x the
    # per-node norm (n nodes in every graph)
    batch = make_batch([n, n, n])
    offset = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    err = equivariance_error(lambda d: d.pos + offset, batch, group=group,
                             num_samples=3, vectors='vel', level='node',
                             generator=torch.Generator().manual_seed(4))
    assert err.E_prime > 1e-3 or group == 'T3'
    assert err.E_prime_paper == pytest.approx(n ** 0.5 * err.E_prime,
                                              rel=1e-10, abs=1e-12)
    # translations alone: x -> 2x moves every node's error to |t|
    err = equivariance_error(lambda d: 2 * d.pos, batch, group='T3',
                             num_samples=2, level='node',
                             generator=torch.Generator().manual_seed(5))
    assert err.E_prime > 0.1
    assert err.E_prime_paper == pytest.approx(n ** 0.5 * err.E_prime,
                                              rel=1e-10)
    assert err.as_dict()['E_prime_paper'] == err.E_prime_paper


def test_paper_e_prime_by_hand_for_unequal_sizes():
    # one translation t_b per graph: f(x) = 2x errs by t_b at every node,
    # so the paper's norm of graph b is sqrt(n_b) |t_b| and ours |t_b|
    sizes = [1, 4, 9]
    batch = make_batch(sizes, extra=False)
    seen = []

    def model(data):
        seen.append(data.pos)
        return 2 * data.pos

    err = equivariance_error(model, batch, group='T3', num_samples=1,
                             generator=torch.Generator().manual_seed(6))
    moved = seen[1] - seen[0]  # the sampled translation, per node
    norms = moved[batch.ptr[:-1]].norm(dim=-1)
    assert err.E_prime == pytest.approx(norms.mean().item(), rel=1e-10)
    expected = torch.tensor(sizes, dtype=torch.float64).sqrt() * norms
    assert err.E_prime_paper == pytest.approx(expected.mean().item(),
                                              rel=1e-10)
    assert err.E_prime_paper > 1.5 * err.E_prime


def test_paper_e_prime_equals_ours_for_graph_level_outputs():
    batch = make_batch([3, 5, 2])
    torch.manual_seed(0)
    from torch_geometric_remul.group import segment_sum

    def summed(data):  # a graph-level vector, not equivariant (the +1)
        return segment_sum(data.vel + 1.0, ptr=data.ptr)

    free = equivariance_error(summed, batch, output='vector', vectors='vel',
                              num_samples=4,
                              generator=torch.Generator().manual_seed(1))
    assert free.E_prime > 1e-3
    assert free.E_prime_paper == pytest.approx(free.E_prime, rel=1e-12)
    torch.manual_seed(0)
    scal = equivariance_error(FreeScalar(), batch, output='scalar',
                              vectors='vel', num_samples=4)
    assert scal.E_prime > 1e-4
    assert scal.E_prime_paper == pytest.approx(scal.E_prime, rel=1e-12)
    inv = equivariance_error(InvariantScalar(), batch, output='scalar',
                             vectors='vel', group='E3', num_samples=4)
    assert inv.E_prime < 1e-10 and inv.E_prime_paper < 1e-10


@pytest.mark.parametrize('group', ['SO3', 'E3'])
def test_exact_model_zero_for_both_e_primes(group):
    batch = make_batch([3, 5, 2, 4])
    exact = equivariance_error(ExactPoint(), batch, vectors='vel',
                               group=group, num_samples=5,
                               generator=torch.Generator().manual_seed(0))
    assert exact.E_prime < 1e-10 and exact.E_prime_paper < 1e-10


def test_roles_default_to_the_models_own():
    """Without a declaration, a model that declares its roles is measured
    with them (here: 'vel' moves as a vector) instead of the default
    Roles() that would leave 'vel' in place."""
    from torch_geometric_remul.roles import Roles

    class Declared(ExactPoint):
        roles = Roles(vectors='vel', output='point')

    batch = make_batch([3, 5])
    g = torch.Generator().manual_seed(0)
    own = equivariance_error(Declared(), batch, generator=g, num_samples=2)
    assert own.E_prime < 1e-10
    # an explicit declaration still wins
    pos_only = equivariance_error(Declared(), batch, roles=Roles(),
                                  generator=g, num_samples=2)
    assert pos_only.E_prime > 1e-3
    assert equivariance_error(Declared(), batch, points='pos', generator=g,
                              num_samples=2).E_prime > 1e-3


def test_options_are_keyword_only():
    batch = make_batch([3])
    with pytest.raises(TypeError, match='positional'):
        equivariance_error(ExactPoint(), batch, 'point')


def test_loss_batch_error_is_the_metrics_e_prime():
    """RemulLoss's per-batch E' and equivariance_error's E' are one
    computation (metrics.equivariance.sample_error): with the same group
    elements they agree, empty graphs left out of both."""
    from torch_geometric.data import Batch, Data

    from torch_geometric_remul.group import RigidSampler
    from torch_geometric_remul.nn import RemulLoss
    g = torch.Generator().manual_seed(0)
    batch = Batch.from_data_list([
        Data(pos=torch.randn(n, 3, generator=g, dtype=torch.float64),
             vel=torch.randn(n, 3, generator=g, dtype=torch.float64))
        for n in (3, 0, 4)])

    def biased(data):  # not equivariant: a fixed offset along x
        return data.pos + data.vel + data.pos.new_tensor([0.5, 0.0, 0.0])

    def sampler():
        return RigidSampler('SE3',
                            generator=torch.Generator().manual_seed(7))
    out = RemulLoss(vectors='vel', sampler=sampler(), mode='consistency',
                    alpha=0.0)(biased, batch)
    err = equivariance_error(biased, batch, vectors='vel',
                             sampler=sampler(), num_samples=1)
    assert err.num_graphs == 2 and err.num_empty == 1
    assert torch.isclose(out.error['absolute'],
                         torch.tensor(err.E_prime, dtype=torch.float64))
    assert torch.isclose(out.error['relative'],
                         torch.tensor(err.E_prime_rel, dtype=torch.float64))
