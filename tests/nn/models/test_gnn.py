import pytest
import torch

from tests.nn.models._helpers import (
    DTYPES,
    check_forward_pass,
    check_gradients,
    check_not_equivariant_at_init,
    check_seeded,
    check_variable_sizes,
    model_factory,
    nbody_batch,
)
from torch_geometric_remul.nn.models import GNN, GNNLayer

make = model_factory(GNN, hidden_channels=16, num_layers=2)


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('output', GNN.supported_outputs)
def test_forward(output, dtype):
    # point outputs: input position + a non-zero displacement
    check_forward_pass(make, output, dtype)


@pytest.mark.parametrize('output', GNN.supported_outputs)
def test_not_equivariant(output):
    check_not_equivariant_at_init(make, output)


@pytest.mark.parametrize('output', GNN.supported_outputs)
def test_variable_sizes_graphs_independent(output):
    check_variable_sizes(make, output)


def test_gradients_and_seed():
    batch = nbody_batch()
    torch.manual_seed(0)
    check_gradients(make('point'), batch)
    check_seeded(lambda: make('scalar'), batch)


def test_permutation_equivariant():
    # message passing with coordinates as features is still equivariant to
    # renumbering the nodes (the edges renumbered accordingly)
    torch.manual_seed(0)
    batch = nbody_batch([6])
    model = make('vector')
    perm = torch.randperm(6)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(6)
    permuted = batch.clone()
    for key in ('pos', 'vel', 'charge'):
        permuted[key] = batch[key][perm]
    permuted.edge_index = inv[batch.edge_index]
    assert torch.allclose(model(permuted), model(batch)[perm], atol=1e-12)


def test_edge_scalars_matter():
    torch.manual_seed(0)
    batch = nbody_batch()
    model = make('point')
    other = batch.clone()
    other.edge_attr = -batch.edge_attr
    assert not torch.allclose(model(batch), model(other))


def test_layer_without_edge_features():
    layer = GNNLayer(4)
    h = torch.randn(3, 4)
    out = layer(h, torch.tensor([[0, 1], [1, 2]]))
    assert out.shape == (3, 4)
    # node 0 receives no message: its update only sees (h_0, 0)
    assert torch.allclose(out[0], h[0] + layer.phi_h(
        torch.cat([h[0], torch.zeros(4)])))
