import contextlib
import os
import re

import pytest
import torch

import torch_geometric_remul._kernels as kernels
import torch_geometric_remul.typing as remul_typing
from torch_geometric_remul import debug
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
        if native:  # the native path reads values in debug mode only
            with remul_typing.force_native(), debug():
                with pytest.raises(ValueError, match=match):
                    fn()
        else:  # the kernel checks them while reading, always
            with pytest.raises(ValueError, match=match):
                fn()


@pytest.mark.parametrize('bad', [[0, 3, 6, 9], [1, 3, 6, 10],
                                 [0, 3, 6, 11], [-1, 3, 6, 10]])
def test_ptr_ends_are_refused_on_every_path(bad):
    # ptr[0] != 0 or ptr[-1] != N leaves rows in no graph: the C kernel
    # returned them uninitialised, the native path failed with "allocated
    # size does not match". A host ptr costs nothing to check: every path,
    # in every mode, raises the same error.
    g = torch.Generator().manual_seed(0)
    T = RigidTransform.sample(3, 'SE3', generator=g, dtype=torch.float64)
    x = torch.randn(10, 3, generator=g, dtype=torch.float64)
    ptr = torch.tensor(bad)
    match = re.escape(f"'ptr' must start at 0 and end at the number of rows "
                      f"(10), got {bad[0]} ... {bad[-1]}")
    paths = [lambda: T.apply_points(x, ptr=ptr),
             lambda: T.apply_vectors(x, ptr=ptr),
             lambda: T.inverse().apply_points(x, ptr=ptr)]
    for fn in paths:
        for native in (False, True):
            for debug_on in (False, True):
                with remul_typing.force_native() if native else \
                        contextlib.nullcontext(), debug(debug_on):
                    with pytest.raises(ValueError, match=match):
                        fn()
    if kernels.kernel_available():  # the C kernel checks the ends itself
        for fn in (lambda: kernels.rigid_apply(x, T.rotation, T.translation,
                                               ptr=ptr),
                   lambda: kernels.rigid_apply(x.float(), T.rotation.float(),
                                               None, ptr=ptr.int())):
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


@needs_kernel
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_kernel_rounding_is_fixed(dtype):
    # The C kernel is built without FMA contraction (-ffp-contract=off): each
    # output is ((r0 x0 + r1 x1) + r2 x2) + t rounded op by op, on every
    # machine and whatever -march: the same bits as this elementwise
    # formula (and, on the machines tested, as the native path).
    x, ptr, T = _inputs([3, 0, 7, 1, 30], dtype, seed=4)
    batch = ptr_to_batch(ptr)
    Rn, tn = T.rotation[batch], T.translation[batch]
    ref = ((Rn[:, :, 0] * x[:, None, 0] + Rn[:, :, 1] * x[:, None, 1])
           + Rn[:, :, 2] * x[:, None, 2]) + tn
    assert torch.equal(kernels.rigid_apply(x, T.rotation, T.translation,
                                           ptr=ptr), ref)
    assert torch.equal(kernels.rigid_apply(x, T.rotation, T.translation,
                                           index=batch), ref)


@needs_kernel
def test_kernel_path_reads_no_value_on_the_host():
    from torch_geometric_remul.testing import assert_no_syncs, count_syncs
    x, ptr, T = _inputs([3, 0, 7, 1], torch.float32)
    batch = ptr_to_batch(ptr)
    with count_syncs() as syncs:
        T.apply_points(x, ptr=ptr)
        T.apply_vectors(x, batch)
        T.inverse().apply_points(x, ptr=ptr)
    assert_no_syncs(syncs, 'the C kernel path')


@needs_kernel
def test_index_on_another_device_is_refused():
    x, ptr, T = _inputs([2, 3], torch.float64)
    meta = ptr.to('meta')
    with pytest.raises(ValueError, match="'ptr' is on meta"):
        kernels.rigid_apply(x, T.rotation, None, ptr=meta)
    with pytest.raises(ValueError, match="'batch' is on meta"):
        kernels.rigid_apply(x, T.rotation, None,
                            index=torch.zeros(5, dtype=torch.long,
                                              device='meta'))


def _openmp_libraries():
    import re
    with open('/proc/self/maps') as f:
        names = {line.rsplit('/', 1)[-1].strip() for line in f if '/' in line}
    return {n for n in names if re.match(r'lib(gomp|iomp5|omp)[-.]', n)}


@needs_kernel
@pytest.mark.skipif(not hasattr(os, 'RTLD_NOLOAD')
                    or not os.path.exists('/proc/self/maps'),
                    reason='finds the OpenMP runtime through /proc (Linux)')
def test_parallel_runs_on_torchs_own_openmp_runtime(monkeypatch):
    from torch_geometric_remul._kernels import _cpu
    before = _openmp_libraries()
    if 'parallel backend: OpenMP' not in torch.__config__.parallel_info():
        assert _cpu._openmp_entry_points() is None
        pytest.skip('this torch does not use OpenMP: one thread only')
    assert _cpu._wire_parallel(_cpu.loaded_library())
    assert _openmp_libraries() == before  # nothing loaded: no 2nd runtime
    # several threads of torch's team, each on a share of graphs or rows
    monkeypatch.setattr(kernels, '_PARALLEL_MIN_ROWS', 1)
    monkeypatch.setattr(torch, 'get_num_threads', lambda: 3)
    x, ptr, T = _inputs([5, 0, 3, 8, 1, 0, 7, 2, 9, 4], torch.float64)
    batch = ptr_to_batch(ptr)
    for fn in (lambda: T.apply_points(x, ptr=ptr),
               lambda: T.apply_vectors(x, batch)):
        fast = fn()
        with remul_typing.force_native():
            slow = fn()
        torch.testing.assert_close(fast, slow, rtol=0, atol=1e-12)
    # the smallest bad position is reported, whichever thread saw it
    bad = batch.clone()
    bad[[11, 30]] = 10
    with pytest.raises(ValueError, match='at row 11 '):
        kernels.rigid_apply(x, T.rotation, None, index=bad)


@needs_kernel
@pytest.mark.skipif(not hasattr(os, 'fork'), reason='needs fork()')
def test_forked_child_runs_the_kernel_on_one_thread(monkeypatch):
    import time
    import warnings
    monkeypatch.setattr(kernels, '_PARALLEL_MIN_ROWS', 1)
    monkeypatch.setattr(torch, 'get_num_threads', lambda: 2)
    x, ptr, T = _inputs([40] * 50, torch.float64)
    ref = kernels.rigid_apply(x, T.rotation, T.translation, ptr=ptr)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)  # threads
        pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 1
        try:
            out = kernels.rigid_apply(x, T.rotation, T.translation, ptr=ptr)
            code = 0 if torch.equal(out, ref) else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 20
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail('the kernel hung in a forked child')
        time.sleep(0.02)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    # the parent keeps its threads
    from torch_geometric_remul._kernels import _cpu
    assert not _cpu._FORKED


@needs_kernel
def test_kernel_is_a_custom_op_that_compiles_without_a_break():
    """The C kernel is the operator ``torch_geometric_remul::rigid_cpu``:
    its schema and fake implementation pass ``opcheck``, it gives the
    eager kernel's bits, and a compiled transform traces through it (the
    ctypes call alone would break the graph)."""
    x, ptr, T = _inputs([3, 0, 5, 2], torch.float64)
    R, t = T.rotation, T.translation
    index = ptr_to_batch(ptr)
    op = torch.ops.torch_geometric_remul.rigid_cpu
    for seg in (dict(ptr=ptr, index=None), dict(ptr=None, index=index)):
        args = (x, R, t, seg['ptr'], seg['index'])
        torch.library.opcheck(op, args)
        assert torch.equal(op(*args), kernels.rigid_apply(x, R, t, **seg))

    calls = []
    real = kernels._cpu_apply

    def traced(x, ptr):
        return T.apply_points(x, ptr=ptr)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kernels, '_cpu_apply',
                   lambda *a: calls.append(1) or real(*a))
        torch._dynamo.reset()
        explain = torch._dynamo.explain(traced)(x, ptr)
        assert explain.graph_break_count == 0, explain.break_reasons
        out = torch.compile(traced, backend='aot_eager', fullgraph=True)(
            x, ptr)
    assert calls, 'the kernel did not run in the compiled call'
    assert torch.equal(out, T.apply_points(x, ptr=ptr))


def test_import_without_triton_is_quiet():
    """Without triton the Triton operator is not registered (registering
    one logs a warning there), and nothing is printed on import."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    code = ("import sys; sys.modules['triton'] = None\n"
            "import torch_geometric_remul._kernels as k\n"
            "assert k.rigid_triton is None\n")
    proc = subprocess.run([sys.executable, '-c', code], cwd=root,
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=root))
    assert proc.returncode == 0, proc.stderr
    assert 'Triton' not in proc.stderr, proc.stderr
