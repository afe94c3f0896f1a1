import subprocess
import sys

import pytest
import torch

from tests.nn.models._helpers import (
    VARIABLE_SIZES,
    assert_model_equivariant,
    assert_not_mutated,
    check_forward,
    check_gradients,
    check_graphs_independent,
    model_factory,
    nbody_batch,
)
from torch_geometric_remul.nn.models import SEGNN

pytest.importorskip('e3nn')

from torch_geometric_remul.nn.models.segnn import (  # noqa: E402
    SteerableLinear,
    balanced_irreps,
)

TOL = 1e-9
HIDDEN = '8x0e+4x1o+2x2e'


make = model_factory(SEGNN, hidden_channels=HIDDEN, num_layers=2, lmax_attr=2)


@pytest.fixture(scope='module')
def models():
    torch.manual_seed(0)
    return {output: make(output) for output in SEGNN.supported_outputs}


@pytest.mark.parametrize('group', ['SE3', 'E3'])
@pytest.mark.parametrize('output', SEGNN.supported_outputs)
def test_equivariant(models, output, group):
    model = models[output]
    batch = nbody_batch([4, 1, 6, 0, 3])
    assert_model_equivariant(model, batch, group)  # E' <= 1e-9 (float64)
    assert model(batch).abs().max() > 1e-3  # a non-trivial output


def test_points_move_with_translations(models):
    batch = nbody_batch()
    shifted = batch.clone()
    shift = torch.tensor([3.0, -1.0, 2.0], dtype=torch.float64)
    shifted.pos = batch.pos + shift
    assert torch.allclose(models['point'](shifted),
                          models['point'](batch) + shift, atol=TOL)
    assert torch.allclose(models['vector'](shifted), models['vector'](batch),
                          atol=TOL)
    out = models['point'](batch)
    assert (out - batch.pos).abs().max() > 1e-4  # a real displacement


def test_default_irreps_and_plain_inputs():
    torch.manual_seed(0)
    model = SEGNN(num_layers=1).double()  # no vectors, scalars or edge scalars
    assert str(model.irreps_hidden) == '32x0e+10x1o'
    assert str(model.irreps_attr) == '1x0e+1x1o'
    batch = nbody_batch([4, 3])
    assert_model_equivariant(model, batch, 'E3')


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_forward_dtypes(models, dtype):
    torch.manual_seed(0)
    model = models['scalar'] if dtype == torch.float64 else make(
        'scalar', torch.float32, num_layers=1)
    check_forward(model, nbody_batch(dtype=dtype), dtype)


def test_variable_sizes_gradients_no_mutation(models):
    batch = nbody_batch(VARIABLE_SIZES)
    check_graphs_independent(models['vector'], batch)
    check_gradients(models['point'], batch)
    assert_not_mutated(batch, lambda: models['scalar'](batch))


def test_seeded():
    batch = nbody_batch([3, 2])
    outs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        model = make('vector', hidden_channels='4x0e+2x1o', num_layers=1)
        outs.append(model(batch))
    assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(outs[0], outs[2])


def test_balanced_irreps_and_bad_hidden():
    assert str(balanced_irreps(64, 1)) == '32x0e+10x1o'
    assert str(balanced_irreps(30, 2)) == '10x0e+3x1o+2x2e'
    with pytest.raises(ValueError,
                       match="'hidden_channels' is not a valid irreps"):
        SEGNN(hidden_channels='8x0q')
    with pytest.raises(ValueError,
                       match=r"'hidden_channels' needs even scalars"):
        SEGNN(hidden_channels='4x1o')


def test_steerable_linear_gate():
    lin = SteerableLinear('2x0e+1x1o', '1x0e+1x1o', '3x0e+2x1o', gate=True)
    out = lin(torch.randn(5, 5), torch.randn(5, 4))
    assert out.shape == (5, 3 + 2 * 3)
    assert lin.bias.numel() == 3 + 2  # 3 scalars + 2 gates


def test_models_import_without_e3nn():
    code = ("import sys; sys.modules['e3nn'] = None\n"
            "import torch_geometric_remul.nn.models as m\n"
            "m.build_model('egnn', hidden_channels=4, num_layers=1)\n"
            "try:\n"
            "    m.build_model('segnn')\n"
            "except ImportError as e:\n"
            "    print('ImportError:', e)\n")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'ImportError: SEGNN needs e3nn' in out.stdout


def test_exact_after_dtype_round_trip_and_state_dict():
    # e3nn's Clebsch-Gordan buffers are kept exact through .float() and
    # .double() and through loading a float32 state dict
    torch.manual_seed(0)
    model = make('vector', num_layers=1).float().double()
    batch = nbody_batch([4, 3])
    assert_model_equivariant(model, batch, 'E3')
    torch.manual_seed(1)
    other = make('vector', num_layers=1, dtype=torch.float32)
    model.load_state_dict(other.state_dict())
    assert_model_equivariant(model, batch, 'E3')
    out32 = other(nbody_batch([4, 3], dtype=torch.float32))
    assert torch.allclose(out32.double(), model(batch), atol=1e-4)


def test_pseudovector_output_is_axial(models):
    # the 1e readout flips sign under reflections relative to a vector:
    # equivariant as a pseudovector under E(3), not as a vector
    from torch_geometric_remul.testing import assert_equivariant
    model = models['pseudovector']
    batch = nbody_batch([4, 3])
    assert_model_equivariant(model, batch, 'E3')
    as_vector = model.roles.replace(output='vector')
    assert_equivariant(model, batch, roles=as_vector, group='SE3',
                       num_samples=2)  # rotations alone cannot tell
    with pytest.raises(AssertionError, match='not equivariant under E3'):
        assert_equivariant(model, batch, roles=as_vector, group='E3',
                           num_samples=2)


def test_pseudovector_output_needs_a_path():
    with pytest.raises(ValueError, match=r"SEGNN cannot give a pseudovector "
                       r"output \(1e\).*use hidden irreps with 1o"):
        SEGNN(output='pseudovector', hidden_channels='4x0e')
    with pytest.raises(ValueError, match="cannot give a pseudovector"):
        SEGNN(output='pseudovector', hidden_channels='4x0e+2x1o',
              lmax_attr=0)


def test_lazy_float64_build_is_exact():
    # built at the first call in float64 (widths inferred): the
    # Clebsch-Gordan buffers are the exact float64 ones
    torch.manual_seed(0)
    model = SEGNN(vectors='vel', scalars='charge', edge_scalars='edge_attr',
                  hidden_channels=HIDDEN, num_layers=1, lmax_attr=2,
                  output='vector').double()
    batch = nbody_batch([4, 3])
    model.initialize(batch)
    assert model.irreps_in == model.irreps_in.__class__('2x0e+2x1o')
    assert_model_equivariant(model, batch, 'E3')
