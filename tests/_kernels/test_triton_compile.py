"""The Triton kernel compiles for real NVIDIA GPUs (to PTX and with ptxas,
which ship with triton), without a GPU: catches code that the interpreter
accepts but the compiler does not."""
import itertools

import pytest

from torch_geometric_remul._kernels import _triton

triton = pytest.importorskip(
    'triton', reason='triton is not installed (pip install triton, or the '
    '`test` extra)')

try:
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
except ImportError as e:  # pragma: no cover - other triton versions
    pytest.skip(f'this triton has no ahead-of-time compile API ({e})',
                allow_module_level=True)

DTYPES = {'fp32': False, 'fp64': True, 'fp16': False, 'bf16': False}


@pytest.fixture
def compiled_mode(monkeypatch, tmp_path):
    monkeypatch.delenv('TRITON_INTERPRET', raising=False)
    monkeypatch.setenv('TRITON_CACHE_DIR', str(tmp_path))
    fn = _triton.kernel()
    assert not _triton.interpret_mode()
    return fn


def _compile(fn, arch, xdt, mode, has_t, segdt):
    sig = {name: 'i64' for name in fn.arg_names}
    sig.update({'x_ptr': f'*{xdt}', 'out_ptr': f'*{xdt}', 'R_ptr': f'*{xdt}',
                't_ptr': f'*{xdt}', 'seg_ptr': f'*{segdt}', 'steps': 'i32'})
    consts = {'MODE': mode, 'HAS_T': has_t, 'IS_F64': DTYPES[xdt],
              'BLOCK': _triton.BLOCK}
    sig.update({k: 'constexpr' for k in consts})
    src = ASTSource(fn, sig, constexprs=consts)
    try:
        out = triton.compile(src, target=GPUTarget('cuda', arch, 32),
                             options={'num_warps': _triton.NUM_WARPS,
                                      'enable_fp_fusion': True})
    except FileNotFoundError as e:  # pragma: no cover - no ptxas shipped
        pytest.skip(f'no ptxas in this triton install ({e})')
    assert out.asm.get('cubin'), 'no machine code produced'


@pytest.mark.parametrize('xdt,mode,has_t,segdt', [
    ('fp32', 2, True, 'i64'),  # ptr, translation
    ('fp64', 1, False, 'i32'),  # batch, vectors
    ('bf16', 0, True, 'i64'),  # one graph
])
def test_compiles_for_h100_class_gpu(compiled_mode, xdt, mode, has_t,
                                     segdt):
    _compile(compiled_mode, 90, xdt, mode, has_t, segdt)


@pytest.mark.slow
@pytest.mark.parametrize('arch', [70, 80, 90])
def test_every_variant_compiles(compiled_mode, arch):
    for xdt, mode, has_t, segdt in itertools.product(
            DTYPES, (0, 1, 2), (True, False), ('i64', 'i32')):
        _compile(compiled_mode, arch, xdt, mode, has_t, segdt)
