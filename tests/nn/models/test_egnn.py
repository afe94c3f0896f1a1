import pytest
import torch

from tests.nn.models._helpers import (
    DTYPES,
    assert_model_equivariant,
    assert_not_mutated,
    check_forward_pass,
    check_gradients,
    check_seeded,
    check_variable_sizes,
    model_factory,
    nbody_batch,
)
from torch_geometric_remul.graph import radius_graph
from torch_geometric_remul.nn.models import EGNN, EGNNLayer

TOL = 1e-9

make = model_factory(EGNN, hidden_channels=16, num_layers=3)


@pytest.mark.parametrize('group', ['SE3', 'E3'])
@pytest.mark.parametrize('output', EGNN.supported_outputs)
def test_equivariant(output, group):
    torch.manual_seed(0)
    model = make(output)
    batch = nbody_batch([4, 1, 6, 0, 3])
    assert_model_equivariant(model, batch, group)  # E' <= 1e-9 (float64)
    assert model(batch).abs().max() > 1e-2  # a non-trivial output


@pytest.mark.parametrize('output', ['point', 'vector'])
def test_points_move_with_translations_vectors_do_not(output):
    torch.manual_seed(0)
    model = make(output)
    batch = nbody_batch()
    shifted = batch.clone()
    shift = torch.tensor([3.0, -1.0, 2.0], dtype=torch.float64)
    shifted.pos = batch.pos + shift
    expected = model(batch) + (shift if output == 'point' else 0)
    assert torch.allclose(model(shifted), expected, atol=TOL)


def test_equivariant_without_vectors_or_scalars():
    torch.manual_seed(0)
    model = make('point', vectors=(), scalars=(), scalar_dim=0,
                 edge_scalars=(), edge_scalar_dim=0)
    batch = nbody_batch()
    assert_model_equivariant(model, batch, 'E3')
    # without velocities the prediction still moves the points
    assert (model(batch) - batch.pos).abs().max() > 1e-6


def test_equivariant_on_radius_graph():
    torch.manual_seed(0)
    batch = nbody_batch([8, 5, 9])
    batch.edge_index = radius_graph(batch.pos, 1.5, batch.batch)
    model = make('vector', edge_scalars=(), edge_scalar_dim=0)
    assert_model_equivariant(model, batch, 'E3')


def test_velocity_variant():
    # a single layer with phi_x = 0 predicts x + phi_v(h) v: check against
    # the formula with the layer's own phi_v
    torch.manual_seed(0)
    model = make('point', num_layers=1)
    layer = model.convs[0]
    with torch.no_grad():
        layer.phi_x[-1].weight.zero_()
        layer.phi_x[-1].bias.zero_()
    batch = nbody_batch()
    norms = batch.vel.norm(dim=-1, keepdim=True)
    h = model.embed(torch.cat([batch.charge, norms], dim=-1))
    expected = batch.pos + layer.phi_v(h) * batch.vel
    assert torch.allclose(model(batch), expected, atol=1e-12)


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('output', EGNN.supported_outputs)
def test_forward(output, dtype):
    check_forward_pass(make, output, dtype)


@pytest.mark.parametrize('output', EGNN.supported_outputs)
def test_variable_sizes_graphs_independent(output):
    check_variable_sizes(make, output)


def test_gradients_seed_and_no_mutation():
    batch = nbody_batch()
    torch.manual_seed(0)
    model = make('point')
    check_gradients(model, batch)
    check_seeded(lambda: make('scalar'), batch)
    assert_not_mutated(batch, lambda: model(batch))
    zero = batch.clone()
    zero.vel = torch.zeros_like(batch.vel)  # |v| = 0: gradients stay finite
    check_gradients(make('vector'), zero)


def test_layer_checks_vectors():
    layer = EGNNLayer(4, num_vectors=1)
    h, x = torch.randn(2, 4), torch.randn(2, 3)
    edge_index = torch.tensor([[0], [1]])
    with pytest.raises(ValueError, match="built for 1 input vector"):
        layer(h, x, edge_index)
    h2, x2 = layer(h, x, edge_index, vectors=torch.randn(2, 1, 3))
    assert h2.shape == (2, 4) and x2.shape == (2, 3)
