import subprocess
import sys

import pytest
import torch

from tests.nn.models._helpers import (VARIABLE_SIZES, assert_not_mutated,
                                      check_forward, check_gradients,
                                      check_graphs_independent,
                                      equivariance_error, model_factory,
                                      nbody_batch)
from torch_geometric_remul.nn.models import OUTPUTS, SEGNN

pytest.importorskip('e3nn')

from torch_geometric_remul.nn.models.segnn import (  # noqa: E402
    SteerableLinear, balanced_irreps)

TOL = 1e-9
HIDDEN = '8x0e+4x1o+2x2e'


make = model_factory(SEGNN, hidden_channels=HIDDEN, num_layers=2, lmax_attr=2)


@pytest.fixture(scope='module')
def models():
    torch.manual_seed(0)
    return {output: make(output) for output in OUTPUTS}


@pytest.mark.parametrize('group', ['SE3', 'E3'])
@pytest.mark.parametrize('output', OUTPUTS)
def test_equivariant(models, output, group):
    model = models[output]
    err, scale = equivariance_error(model, nbody_batch([4, 1, 6, 0, 3]),
                                    group)
    assert err < TOL
    assert scale > 1e-2


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
    err, _ = equivariance_error(model, batch, 'E3')
    assert err < TOL


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
        outs.append(make('vector', hidden_channels='4x0e+2x1o', num_layers=1)(batch))
    assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(outs[0], outs[2])


def test_balanced_irreps_and_bad_hidden():
    assert str(balanced_irreps(64, 1)) == '32x0e+10x1o'
    assert str(balanced_irreps(30, 2)) == '10x0e+3x1o+2x2e'
    with pytest.raises(ValueError, match="'hidden_channels' is not a valid irreps"):
        SEGNN(hidden_channels='8x0q')
    with pytest.raises(ValueError, match=r"'hidden_channels' needs even scalars"):
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
    err, _ = equivariance_error(model, batch, 'E3')
    assert err < TOL
    torch.manual_seed(1)
    other = make('vector', num_layers=1, dtype=torch.float32)
    model.load_state_dict(other.state_dict())
    err, _ = equivariance_error(model, batch, 'E3')
    assert err < TOL
    out32 = other(nbody_batch([4, 3], dtype=torch.float32))
    assert torch.allclose(out32.double(), model(batch), atol=1e-4)
