"""The Triton kernel, run on CPU tensors by Triton's interpreter
(``TRITON_INTERPRET=1``): results against the native path, invalid indices,
fallbacks, and no host reads."""
import warnings

import pytest
import torch

import torch_geometric_remul._kernels as kernels
import torch_geometric_remul.typing as remul_typing
from torch_geometric_remul import debug
from torch_geometric_remul._kernels import _triton
from torch_geometric_remul.group import RigidTransform, ptr_to_batch
from torch_geometric_remul.testing import assert_no_syncs, count_syncs

pytest.importorskip(
    'triton', reason='triton is not installed (pip install triton, or the '
    '`test` extra): its interpreter runs the CUDA kernel on CPU tensors')

TOL = {torch.float64: 1e-12, torch.float32: 1e-5}


@pytest.fixture(autouse=True)
def interpreter(monkeypatch):
    """CPU tensors go to the Triton kernel, run by the interpreter (the
    kernel is created lazily, for the mode set when it is first used)."""
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    monkeypatch.setattr(kernels, '_TRITON_ON_CPU', True)
    monkeypatch.setattr(remul_typing, 'WITH_TRITON', True)
    monkeypatch.setattr(_triton, '_BROKEN', {})
    yield
    # the kernel ran: no variant fell back to the native path
    assert _triton._BROKEN == {}


def _ptr(sizes):
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.long)
    ptr[1:] = torch.tensor(sizes, dtype=torch.long).cumsum(0)
    return ptr


def _case(sizes, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    ptr = _ptr(sizes)
    x = torch.randn(int(ptr[-1]), 3, generator=g, dtype=dtype)
    T = RigidTransform.sample(max(len(sizes), 1), 'E3', generator=g,
                              dtype=dtype)
    return x, ptr, T


def _mixed(seed=3):
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, 51, (12, ), generator=g).tolist()
    sizes[4] = 0  # an empty graph in the middle
    sizes[7] = 1
    return sizes


SIZES = {'mixed 1..50': _mixed(), 'empty and one-node': [0, 1, 0, 3, 1],
         'all empty': [0, 0], 'single one-node': [1]}


def _spy(monkeypatch):
    calls = []
    real = _triton.launch

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_triton, 'launch', spy)
    return calls


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('name', list(SIZES))
def test_matches_native(dtype, name, monkeypatch):
    calls = _spy(monkeypatch)
    x, ptr, T = _case(SIZES[name], dtype)
    batch = ptr_to_batch(ptr, x.size(0))
    perm = torch.randperm(x.size(0), generator=torch.Generator()
                          .manual_seed(1))
    cases = [
        lambda: T.apply_points(x, ptr=ptr),  # ptr, with t
        lambda: T.apply_vectors(x, ptr=ptr),  # ptr, t = None
        lambda: T.apply_points(x[perm], batch[perm]),  # unsorted batch
        lambda: T.inverse().apply_vectors(x, batch.int()),  # R^T view
    ]
    for fn in cases:
        fast = fn()
        with remul_typing.force_native():
            slow = fn()
        assert fast.dtype == dtype and fast.shape == x.shape
        assert fast.is_contiguous()
        torch.testing.assert_close(fast, slow, rtol=0, atol=TOL[dtype])
    assert len(calls) == len(cases)  # every case ran the kernel


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_single_graph_and_strided_input(dtype):
    x, _, T = _case([40], dtype)
    wide = torch.randn(40, 6, dtype=dtype)
    for inp in (x, wide[:, ::2], x.t().contiguous().t()):
        for t in (T.translation, None):
            fast = kernels.rigid_apply(inp, T.rotation, t)
            ref = inp @ T.rotation[0].T + (0 if t is None else t[0])
            torch.testing.assert_close(fast, ref, rtol=0, atol=TOL[dtype])
    R = T.rotation.transpose(1, 2)  # strides (9, 1, 3): no copy needed
    torch.testing.assert_close(kernels.rigid_apply(x, R, None),
                               x @ T.rotation[0], rtol=0, atol=TOL[dtype])


def test_many_graphs_binary_search():
    # B = 300 graphs: the search in ptr takes 9 steps; mixed sizes 0..3
    g = torch.Generator().manual_seed(5)
    sizes = torch.randint(0, 4, (300, ), generator=g).tolist()
    x, ptr, T = _case(sizes, torch.float64)
    out = _triton.launch(x, T.rotation, T.translation, ptr=ptr)
    ref = _triton.native(x, T.rotation, T.translation, ptr=ptr)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    with remul_typing.force_native():
        torch.testing.assert_close(T.apply_points(x, ptr=ptr), ref,
                                   rtol=0, atol=1e-12)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision(dtype):
    x, ptr, T = _case([5, 0, 9], torch.float32)
    xh, Rh, th = x.to(dtype), T.rotation.to(dtype), T.translation.to(dtype)
    out = _triton.launch(xh, Rh, th, ptr=ptr)
    assert out.dtype == dtype
    # accumulated in float32, rounded once
    ref = _triton.native(xh.float(), Rh.float(), th.float(), ptr=ptr)
    ulp = 2.0**-10 if dtype == torch.float16 else 2.0**-7
    torch.testing.assert_close(out.float(), ref.to(dtype).float(),
                               rtol=2 * ulp, atol=1e-3)


def test_invalid_rows_are_nan_and_in_bounds():
    x, ptr, T = _case([2, 3], torch.float64)
    batch = torch.tensor([0, 0, 1, 7, -1])  # rows 3, 4: no such graph
    out = kernels.rigid_apply(x, T.rotation, T.translation, index=batch)
    assert out.isnan()[3:].all() and not out.isnan()[:3].any()
    ref = _triton.native(x[:3], T.rotation, T.translation,
                         index=batch[:3])
    torch.testing.assert_close(out[:3], ref, rtol=0, atol=1e-12)
    # ptr not ending at N: rows past ptr[-1] belong to no graph
    short = torch.tensor([0, 2, 4])
    out = kernels.rigid_apply(x, T.rotation, None, ptr=short)
    assert out[4].isnan().all() and not out[:4].isnan().any()
    # nor starting at 0: rows before ptr[0] belong to no graph either
    late = torch.tensor([1, 2, 5])
    out = kernels.rigid_apply(x, T.rotation, None, ptr=late)
    assert out[0].isnan().all() and not out[1:].isnan().any()


def test_ptr_ends_same_error_as_every_path():
    # A device ptr is not read on the host outside debug mode (NaN rows,
    # above); in debug mode, and through the public API with a ptr in host
    # memory (free to read), the error is the one of every other path.
    x, ptr, T = _case([2, 3], torch.float64)
    match = (r"'ptr' must start at 0 and end at the number of rows \(5\), "
             r"got 1 \.\.\. 5")
    late = torch.tensor([1, 2, 5])
    with debug(), pytest.raises(ValueError, match=match):
        kernels.rigid_apply(x, T.rotation, None, ptr=late)
    with pytest.raises(ValueError, match=match):
        T.apply_points(x, ptr=late)


def test_debug_mode_checks_values():
    x, ptr, T = _case([2, 3], torch.float64)
    with debug():
        T3 = RigidTransform.sample(3, dtype=torch.float64)
        with pytest.raises(ValueError, match='non-decreasing'):
            kernels.rigid_apply(x, T3.rotation, None,
                                ptr=torch.tensor([0, 4, 2, 5]))
        with pytest.raises(ValueError, match=r'only 2 graph\(s\) exist'):
            kernels.rigid_apply(x, T.rotation, None,
                                index=torch.tensor([0, 0, 1, 1, 2]))


def test_no_host_reads(monkeypatch):
    # Our launch code reads no value: count with the kernel itself stubbed
    # (the interpreter copies tensors to numpy, which a GPU never does).
    monkeypatch.setattr(_triton, '_run', lambda *args: None)
    x, ptr, T = _case([3, 0, 4], torch.float32)
    batch = ptr_to_batch(ptr, x.size(0))
    with count_syncs() as syncs:
        kernels.rigid_apply(x, T.rotation, T.translation, ptr=ptr)
        kernels.rigid_apply(x, T.rotation, None, index=batch)
        kernels.rigid_apply(x, T.rotation, T.translation)
        T.apply_points(x, ptr=ptr)
        T.apply_vectors(x, batch)
    assert_no_syncs(syncs, 'the Triton launch path')


def test_gradients_take_the_native_path(monkeypatch):
    calls = _spy(monkeypatch)
    x, ptr, T = _case([2, 3], torch.float64)
    xg = x.clone().requires_grad_()
    assert not kernels.kernel_usable(xg, T.rotation, T.translation)
    out = T.apply_points(xg, ptr=ptr)
    out.sum().backward()
    assert xg.grad is not None and calls == []
    with torch.no_grad():
        T.apply_points(xg, ptr=ptr)
    assert calls == [1]


def test_switches_and_missing_triton(monkeypatch):
    x, ptr, T = _case([2, 3], torch.float64)
    assert kernels.kernel_usable(x, T.rotation, None)
    assert not kernels.kernel_usable(x.long(), T.rotation, None)
    assert not kernels.kernel_usable(x, None, T.translation)
    with remul_typing.force_native():
        assert not kernels.kernel_usable(x, T.rotation, None)
    monkeypatch.setattr(_triton, '_IMPORT', {'tried': True, 'ok': False,
                                             'error': 'not installed'})
    assert not kernels.kernel_usable(x, T.rotation, None)
    assert kernels.rigid_apply(x, T.rotation, None, ptr=ptr) is None
    with remul_typing.force_native():
        ref = T.apply_points(x, ptr=ptr)
    torch.testing.assert_close(T.apply_points(x, ptr=ptr), ref)


def test_failed_compile_warns_once_and_falls_back(monkeypatch):
    def broken():
        raise RuntimeError('no such GPU feature')

    monkeypatch.setattr(_triton, 'kernel', broken)
    x, ptr, T = _case([2, 3], torch.float64)
    with pytest.warns(RuntimeWarning, match='no such GPU feature'):
        out = kernels.rigid_apply(x, T.rotation, T.translation, ptr=ptr)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        again = kernels.rigid_apply(x, T.rotation, T.translation, ptr=ptr)
    with remul_typing.force_native():
        ref = T.apply_points(x, ptr=ptr)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(again, ref, rtol=0, atol=1e-12)
    assert len(_triton._BROKEN) == 1
    _triton._BROKEN.clear()


def test_triton_op_matches_the_launch():
    """The Triton kernel as ``torch_geometric_remul::rigid_triton`` (a
    ``triton_op`` launching through ``wrap_triton``, what a compiled step
    calls) gives the direct launch's bits."""
    x, ptr, T = _case(_mixed(), torch.float32)
    R, t = T.rotation, T.translation
    op = torch.ops.torch_geometric_remul.rigid_triton
    for seg in (dict(ptr=ptr, index=None),
                dict(ptr=None, index=ptr_to_batch(ptr)),
                dict(ptr=None, index=None)):
        rows = x if seg['ptr'] is not None or seg['index'] is not None \
            else x[:5]
        out = op(rows, R, t if seg['ptr'] is None else None, seg['ptr'],
                 seg['index'])
        ref = _triton.launch(rows, R, t if seg['ptr'] is None else None,
                             **seg)
        assert torch.equal(out, ref)
