import pytest
import torch

import torch_geometric_remul.typing as remul_typing
from torch_geometric_remul import debug
from torch_geometric_remul.batching import (
    batch_to_ptr,
    broadcast_to_rows,
    center,
    ptr_to_batch,
    segment_mean,
    segment_sum,
)

F64 = torch.float64


def loop_mean(x, sizes):
    out, start = [], 0
    for n in sizes:
        seg = x[start:start + n]
        out.append(seg.mean(0) if n else torch.zeros_like(x[0]))
        start += n
    return torch.stack(out)


def make(sizes, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.long)
    ptr[1:] = torch.tensor(sizes).cumsum(0)
    return torch.randn(sum(sizes), d, generator=g, dtype=F64), ptr


SIZES = [[3, 1, 0, 5, 2], [4, 4, 4], [7], [0, 2, 0]]


@pytest.mark.parametrize('sizes', SIZES)
def test_mean_and_sum_match_loop(sizes, backend):
    x, ptr = make(sizes)
    batch = ptr_to_batch(ptr)
    ref = loop_mean(x, sizes)
    for out in (segment_mean(x, ptr=ptr), segment_mean(x, batch, None,
                                                       len(sizes))):
        assert out.shape == (len(sizes), 3)
        assert torch.allclose(out, ref, atol=1e-12)
    counts = torch.tensor(sizes, dtype=F64).unsqueeze(-1)
    assert torch.allclose(segment_sum(x, ptr=ptr), ref * counts, atol=1e-12)


def test_accelerated_and_native_agree():
    if not remul_typing.WITH_TORCH_SCATTER:
        pytest.skip('torch-scatter is not installed')
    x, ptr = make([5, 0, 17, 3, 1, 9], d=4, seed=3)
    batch = ptr_to_batch(ptr)
    fast = (segment_mean(x, ptr=ptr), segment_sum(x, batch, None, 6),
            broadcast_to_rows(x[:6], ptr=ptr), center(x, ptr=ptr)[0])
    with remul_typing.force_native():
        slow = (segment_mean(x, ptr=ptr), segment_sum(x, batch, None, 6),
                broadcast_to_rows(x[:6], ptr=ptr), center(x, ptr=ptr)[0])
    for a, b in zip(fast, slow):
        assert torch.allclose(a, b, rtol=0, atol=1e-13)


def test_force_native_switches_the_path(monkeypatch):
    """The native path must not touch torch_scatter at all."""
    x, ptr = make([2, 3])
    calls = []

    class Spy:
        def segment_csr(self, *args, **kwargs):
            calls.append('segment_csr')
            raise AssertionError('accelerated path used')

    monkeypatch.setattr(remul_typing, 'torch_scatter', Spy())
    monkeypatch.setattr(remul_typing, 'WITH_TORCH_SCATTER', True)
    with pytest.raises(AssertionError):
        segment_mean(x, ptr=ptr)
    assert calls == ['segment_csr']
    with remul_typing.force_native():
        segment_mean(x, ptr=ptr)
    assert calls == ['segment_csr']
    assert remul_typing.WITH_TORCH_SCATTER is True  # restored


@pytest.mark.parametrize('sizes', SIZES)
def test_center(sizes, backend):
    x, ptr = make(sizes, seed=1)
    out, mean = center(x, ptr=ptr)
    assert torch.allclose(mean, loop_mean(x, sizes), atol=1e-12)
    assert torch.allclose(segment_mean(out, ptr=ptr),
                          torch.zeros(len(sizes), 3, dtype=F64), atol=1e-12)
    out_b, _ = center(x, ptr_to_batch(ptr), None, len(sizes))
    assert torch.allclose(out, out_b, atol=1e-12)
    assert torch.allclose(out + broadcast_to_rows(mean, ptr=ptr), x,
                          atol=1e-12)


def test_pointer_conversions():
    ptr = torch.tensor([0, 2, 2, 5])
    batch = ptr_to_batch(ptr)
    assert batch.tolist() == [0, 0, 2, 2, 2]
    assert torch.equal(batch_to_ptr(batch, 3), ptr)


def test_bad_input():
    # value checks (graph index range, ptr bounds/order) run in debug mode
    with debug():
        x, ptr = make([2, 3])
        with pytest.raises(ValueError, match="one of 'batch' or 'ptr'"):
            segment_mean(x)
        with pytest.raises(ValueError, match=r"'batch' must have shape \[5\]"):
            segment_mean(x, torch.tensor([0, 1]))
        with pytest.raises(ValueError, match="end at the number of rows"):
            segment_mean(x, ptr=torch.tensor([0, 2, 4]))
        with pytest.raises(ValueError, match=r"only 2 graph\(s\) exist"):
            segment_mean(x, torch.tensor([0, 0, 1, 1, 2]), num_graphs=2)
        with pytest.raises(TypeError, match="'x' must be a torch.Tensor"):
            segment_mean([1.0, 2.0], ptr=ptr)


@pytest.mark.parametrize('native', [False, True])
def test_ptr_ends_refused_in_every_mode(native):
    # a host ptr's ends cost nothing to read: checked without debug mode
    # too (the native path failed with "allocated size does not match")
    from torch_geometric_remul.typing import force_native
    x, _ = make([2, 3])
    values = torch.zeros(2, 3, dtype=F64)
    with force_native() if native else debug(False):
        for bad in ([0, 2, 4], [1, 2, 5], [0, 2, 6]):
            ptr = torch.tensor(bad)
            for fn in (lambda: segment_mean(x, ptr=ptr),
                       lambda: segment_sum(x, ptr=ptr),
                       lambda: center(x, ptr=ptr),
                       lambda: broadcast_to_rows(values, ptr=ptr,
                                                 num_rows=5)):
                with pytest.raises(ValueError, match="'ptr' must start at 0 "
                                   r"and end at the number of rows \(5\)"):
                    fn()


@pytest.mark.parametrize('native', [False, True])
def test_segment_ops_make_no_host_sync(native):
    import contextlib

    from torch_geometric_remul.testing import assert_no_syncs, count_syncs
    from torch_geometric_remul.typing import force_native
    x, ptr = make([2, 0, 3])
    batch = ptr_to_batch(ptr, 5)
    ctx = force_native() if native else contextlib.nullcontext()
    with ctx, count_syncs() as syncs:
        a = segment_mean(x, ptr=ptr)
        b = segment_sum(x, batch, num_graphs=3)
        c = broadcast_to_rows(a, ptr=ptr, num_rows=5)
        centred, _ = center(x, ptr=ptr)
        p = batch_to_ptr(batch, 3)
    assert_no_syncs(syncs, 'segment ops')
    assert torch.equal(p, ptr)
    assert torch.allclose(b[1], torch.zeros_like(b[1]))
    assert torch.allclose(c + centred, x, atol=1e-6)


def test_compiled_segment_ops_use_torch_ops_not_torch_scatter(monkeypatch):
    """Under torch.compile the torch-scatter path is left for torch's own
    ops (torch-scatter's kernels have no fake-tensor implementation, so
    Dynamo fails on them): the whole function is one graph even with the
    accelerator flag on, and gives the eager (native) results."""
    x, ptr = make([3, 1, 0, 5, 2], seed=4)
    batch = ptr_to_batch(ptr)

    class Refuse:
        def __getattr__(self, name):
            raise AssertionError(f'torch_scatter.{name} used while tracing')

    def step(x, ptr, batch):
        return (segment_mean(x, ptr=ptr), segment_sum(x, batch, None, 5),
                broadcast_to_rows(x[:5], ptr=ptr, num_rows=x.size(0)),
                center(x, ptr=ptr)[0])

    with remul_typing.force_native():
        ref = step(x, ptr, batch)
    monkeypatch.setattr(remul_typing, 'torch_scatter', Refuse())
    monkeypatch.setattr(remul_typing, 'WITH_TORCH_SCATTER', True)
    torch._dynamo.reset()
    out = torch.compile(step, backend='eager', fullgraph=True)(x, ptr, batch)
    for a, b in zip(out, ref):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)
