import pytest
import torch

import torch_geometric_remul._kernels as kernels
import torch_geometric_remul.typing as remul_typing
from torch_geometric_remul.group import RigidTransform, ptr_to_batch

needs_kernel = pytest.mark.skipif(not kernels.kernel_available(),
                                  reason='no C compiler for the CPU kernel')


def _inputs(sizes, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.long)
    ptr[1:] = torch.tensor(sizes).cumsum(0)
    x = torch.randn(int(ptr[-1]), 3, generator=g, dtype=dtype)
    T = RigidTransform.sample(len(sizes), 'E3', generator=g, dtype=dtype)
    return x, ptr, T


@needs_kernel
@pytest.mark.parametrize('dtype,tol', [(torch.float64, 1e-12),
                                       (torch.float32, 1e-5)])
@pytest.mark.parametrize('sizes', [[3, 1, 0, 5, 2], [25] * 40, [1], [0, 0],
                                   [7000, 13000]])
def test_kernel_matches_native(dtype, tol, sizes):
    x, ptr, T = _inputs(sizes, dtype)
    batch = ptr_to_batch(ptr)
    shuffled = torch.randperm(batch.numel(), generator=torch.Generator()
                              .manual_seed(1))
    for fn in (lambda: T.apply_points(x, ptr=ptr),
               lambda: T.apply_points(x, batch),
               lambda: T.apply_vectors(x, ptr=ptr),
               lambda: T.apply_points(x[shuffled], batch[shuffled]),
               lambda: T.apply_pseudovectors(x, ptr=ptr)):
        fast = fn()
        with remul_typing.force_native():
            slow = fn()
        assert fast.dtype == dtype and fast.shape == x.shape
        assert torch.allclose(fast, slow, rtol=0, atol=tol)


@needs_kernel
def test_kernel_is_used_and_skipped_for_autograd(monkeypatch):
    calls = []
    real = kernels.rigid_apply

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(out is not None)
        return out

    import torch_geometric_remul.group.rigid as rigid
    monkeypatch.setattr(rigid, 'rigid_apply', spy)
    x, ptr, T = _inputs([4, 5], torch.float64)
    T.apply_points(x, ptr=ptr)
    assert calls == [True]
    T.apply_points(x.requires_grad_(), ptr=ptr)  # needs a graph: native
    assert calls == [True]
    with torch.no_grad():
        T.apply_points(x, ptr=ptr)
    assert calls == [True, True]
    T.apply_points(x.detach().T.contiguous().T, ptr=ptr)  # non-contiguous
    assert calls == [True, True, True]


@needs_kernel
@pytest.mark.parametrize('native', [False, True])
def test_kernel_validates_like_native(native):
    x, ptr, T = _inputs([2, 3], torch.float64)
    bad_order = torch.tensor([0, 4, 2, 5])
    T3 = RigidTransform.sample(3, dtype=torch.float64)
    cases = [
        (lambda: T3.apply_points(x, ptr=bad_order), 'non-decreasing'),
        (lambda: T.apply_points(x, torch.tensor([0, 0, 1, 1, 2])),
         r'only 2 graph\(s\) exist'),
        (lambda: T.apply_vectors(x, torch.tensor([0, -1, 1, 1, 1])),
         r'only 2 graph\(s\) exist'),
    ]
    for fn, match in cases:
        if native:
            with remul_typing.force_native():
                with pytest.raises(ValueError, match=match):
                    fn()
        else:
            with pytest.raises(ValueError, match=match):
                fn()


def test_kernel_noncontiguous_input():
    x, ptr, T = _inputs([4, 5], torch.float64)
    wide = torch.randn(9, 6, dtype=torch.float64)
    view = wide[:, ::2]
    assert not view.is_contiguous()
    fast, slow = T.apply_points(view, ptr=ptr), None
    with remul_typing.force_native():
        slow = T.apply_points(view, ptr=ptr)
    assert torch.allclose(fast, slow, atol=1e-12)


def test_compile_failure_falls_back(monkeypatch, tmp_path):
    # A broken compiler must not break the library: a warning, then the
    # native path with the same results.
    bad = tmp_path / 'badcc'
    bad.write_text('#!/bin/sh\necho "broken compiler" >&2\nexit 1\n')
    bad.chmod(0o755)
    monkeypatch.setenv('CC', str(bad))
    monkeypatch.setenv('REMUL_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.setattr(kernels, '_STATE', {'tried': False, 'lib': None,
                                            'error': None})
    monkeypatch.setattr(remul_typing, 'WITH_CPU_KERNEL', True)
    with pytest.warns(UserWarning, match='could not compile'):
        assert not kernels.kernel_available()
    assert 'broken compiler' in kernels.kernel_error()
    x, ptr, T = _inputs([3, 2], torch.float64)
    out = T.apply_points(x, ptr=ptr)
    with remul_typing.force_native():
        assert torch.allclose(out, T.apply_points(x, ptr=ptr), atol=1e-12)
    assert not list((tmp_path / 'cache').glob('*.so'))  # no partial files


@needs_kernel
def test_fresh_compile_into_cache(monkeypatch, tmp_path):
    monkeypatch.setenv('REMUL_CACHE_DIR', str(tmp_path))
    monkeypatch.setattr(kernels, '_STATE', {'tried': False, 'lib': None,
                                            'error': None})
    assert kernels.kernel_available()
    built = list(tmp_path.glob('rigid-*.so'))
    assert len(built) == 1
    assert [p.name for p in tmp_path.iterdir()] == [built[0].name]
