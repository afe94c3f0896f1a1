import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from tests.conftest import make_batch
from tests.nn.toy_models import (ExactPoint, FreePoint, FreeScalar,
                                 InvariantScalar)
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
    assert split.num_graphs == 4
    # a loader with several batches averages per graph
    two = equivariance_error(model, DataLoader(graphs, batch_size=2), **kw)
    assert two.num_graphs == 4 and two.E_prime > 0


def test_bad_input():
    batch = make_batch([3])
    with pytest.raises(ValueError, match="'output'"):
        equivariance_error(ExactPoint(), batch, output='tensor')
    with pytest.raises(ValueError, match="'num_samples'"):
        equivariance_error(ExactPoint(), batch, num_samples=0)
    with pytest.raises(ValueError, match='no graph'):
        equivariance_error(ExactPoint(), [])
    with pytest.raises(ValueError, match="'force' .* is missing"):
        equivariance_error(ExactPoint(), batch, vectors='force')
