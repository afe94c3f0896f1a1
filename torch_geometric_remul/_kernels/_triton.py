r"""The fused Triton kernel for per-graph rigid transforms (CUDA tensors).

``triton`` is imported on first use, not when this package is imported, and
the ``@triton.jit`` kernel is created then too, once per mode (compiled or
``TRITON_INTERPRET=1``, read from the environment at that moment), so that
tests can run it on CPU tensors through Triton's interpreter.

One program handles ``BLOCK`` consecutive rows. Each row finds its graph
``g`` from ``batch`` (a load) or from ``ptr`` (a branch-free binary search
over the ``B + 1`` offsets, ``bit_length(B + 1)`` steps with a runtime
bound, so B needs no recompilation; all in cache), then
gathers ``R[g]`` (any strides, so ``R.transpose(1, 2)`` costs no copy) and
``t[g]``, and writes ``R[g] x_i + t[g]`` accumulated in float32 (float64 for
float64 input). Nothing is read on the host: rows whose graph index is
invalid (``batch`` outside ``[0, B)``, or a row outside its ``ptr`` range
because ``ptr`` is not sorted or does not run from 0 to ``N``) are never
read out of bounds and come out as NaN; the value checks that raise run
only in debug mode, in the caller.
"""
import os
import threading
import warnings
from typing import Dict, Optional

import torch
from torch import Tensor

BLOCK = 256
NUM_WARPS = 4
_MODE_SINGLE, _MODE_INDEX, _MODE_PTR = 0, 1, 2
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

_LOCK = threading.Lock()
_KERNELS: Dict[bool, object] = {}
_IMPORT = {'tried': False, 'ok': False, 'error': None}
_BROKEN: Dict[tuple, str] = {}  # launch signature -> error text


def interpret_mode() -> bool:
    r"""Whether ``TRITON_INTERPRET`` is set (kernels run on CPU tensors)."""
    return os.environ.get('TRITON_INTERPRET', '0').strip().lower() in {
        '1', 'true', 'yes', 'on'}


def available() -> bool:
    r"""Whether ``triton`` imports (tried once, on first call)."""
    if _IMPORT['tried']:
        return _IMPORT['ok']
    with _LOCK:
        if not _IMPORT['tried']:
            try:
                import triton  # noqa: F401
                import triton.language  # noqa: F401
                _IMPORT['ok'] = True
            except ImportError as e:
                _IMPORT['error'] = f'triton is not installed ({e})'
            except Exception as e:  # a broken install, not a missing one
                _IMPORT['error'] = f'triton failed to import: {e}'
                warnings.warn(f'torch_geometric_remul: {_IMPORT["error"]}; '
                              f'CUDA transforms use the native PyTorch path',
                              RuntimeWarning, stacklevel=3)
            _IMPORT['tried'] = True
    return _IMPORT['ok']


def import_error() -> Optional[str]:
    return _IMPORT['error']


def _define_kernel():
    # Only builtins of triton.language inside: its @triton.jit helpers
    # (tl.zeros, tl.cdiv, ...) are created when triton is imported, in the
    # mode of that moment, and would not run under an interpreter switched
    # on later (as the tests do).
    import triton
    import triton.language as tl

    @triton.jit(do_not_specialize=['N', 'B', 'steps'])
    def rigid_kernel(x_ptr, out_ptr, R_ptr, t_ptr, seg_ptr, N, B, steps,
                     sx0, sx1, sR0, sR1, sR2, st0, st1,
                     MODE: tl.constexpr, HAS_T: tl.constexpr,
                     IS_F64: tl.constexpr, BLOCK: tl.constexpr):
        pid = tl.program_id(0)
        rows = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        live = rows < N
        if MODE == 0:  # one graph
            g = tl.full([BLOCK], 0, tl.int64)
            ok = live
        elif MODE == 1:  # per-row graph index
            g = tl.load(seg_ptr + rows, mask=live, other=0).to(tl.int64)
            ok = live & (g >= 0) & (g < B)
        else:  # CSR offsets: g = (number of ptr[j] <= row) - 1
            lo = tl.full([BLOCK], 0, tl.int64)
            hi = tl.full([BLOCK], 0, tl.int64) + (B + 1)
            for _ in range(steps):  # a runtime bound: no recompile per B
                active = lo < hi
                mid = (lo + hi) // 2  # in [0, B] while active
                v = tl.load(seg_ptr + mid, mask=live & active, other=0)
                right = v.to(tl.int64) <= rows
                lo = tl.where(active & right, mid + 1, lo)
                hi = tl.where(active & (right == 0), mid, hi)
            g = lo - 1
            ok = live & (g >= 0) & (g < B)
            start = tl.load(seg_ptr + g, mask=ok, other=0).to(tl.int64)
            end = tl.load(seg_ptr + g + 1, mask=ok, other=0).to(tl.int64)
            ok = ok & (start <= rows) & (rows < end)
        g = tl.where(ok, g, 0)
        if IS_F64:
            acc = tl.float64
        else:
            acc = tl.float32
        xp = x_ptr + rows * sx0
        a = tl.load(xp, mask=live, other=0).to(acc)
        b = tl.load(xp + sx1, mask=live, other=0).to(acc)
        c = tl.load(xp + 2 * sx1, mask=live, other=0).to(acc)
        rp = R_ptr + g * sR0
        r0 = tl.load(rp, mask=ok, other=0).to(acc)
        r1 = tl.load(rp + sR2, mask=ok, other=0).to(acc)
        r2 = tl.load(rp + 2 * sR2, mask=ok, other=0).to(acc)
        r3 = tl.load(rp + sR1, mask=ok, other=0).to(acc)
        r4 = tl.load(rp + sR1 + sR2, mask=ok, other=0).to(acc)
        r5 = tl.load(rp + sR1 + 2 * sR2, mask=ok, other=0).to(acc)
        r6 = tl.load(rp + 2 * sR1, mask=ok, other=0).to(acc)
        r7 = tl.load(rp + 2 * sR1 + sR2, mask=ok, other=0).to(acc)
        r8 = tl.load(rp + 2 * sR1 + 2 * sR2, mask=ok, other=0).to(acc)
        y0 = r0 * a + r1 * b + r2 * c
        y1 = r3 * a + r4 * b + r5 * c
        y2 = r6 * a + r7 * b + r8 * c
        if HAS_T:
            tp = t_ptr + g * st0
            y0 += tl.load(tp, mask=ok, other=0).to(acc)
            y1 += tl.load(tp + st1, mask=ok, other=0).to(acc)
            y2 += tl.load(tp + 2 * st1, mask=ok, other=0).to(acc)
        nan = float('nan')
        y0 = tl.where(ok, y0, nan)
        y1 = tl.where(ok, y1, nan)
        y2 = tl.where(ok, y2, nan)
        ty = out_ptr.dtype.element_ty
        op = out_ptr + rows * 3
        tl.store(op, y0.to(ty), mask=live)
        tl.store(op + 1, y1.to(ty), mask=live)
        tl.store(op + 2, y2.to(ty), mask=live)

    return rigid_kernel


def kernel():
    r"""The ``@triton.jit`` kernel for the current mode (built on first
    use)."""
    mode = interpret_mode()
    fn = _KERNELS.get(mode)
    if fn is None:
        with _LOCK:
            fn = _KERNELS.get(mode)
            if fn is None:
                fn = _KERNELS[mode] = _define_kernel()
    return fn


def usable(x: Tensor) -> bool:
    r"""Device and dtype allow the kernel, and triton imports."""
    if x.dtype not in _FLOATS:
        return False
    if x.device.type != 'cuda' and not (x.device.type == 'cpu'
                                        and interpret_mode()):
        return False
    return available()


def launch(x: Tensor, R: Tensor, t: Optional[Tensor],
           ptr: Optional[Tensor] = None,
           index: Optional[Tensor] = None, wrap=None,
           fallback: bool = True) -> Tensor:
    r"""``out_i = R[g_i] x_i (+ t[g_i])`` in one launch; see the module
    docstring. Shapes are assumed valid; reads no value on the host.
    ``wrap`` (:func:`torch.library.wrap_triton`) wraps the kernel for a
    traced operator, which launches it without the per-variant fallback
    (``fallback=False``: a failure is raised)."""
    N, B = x.size(0), R.size(0)
    out = torch.empty((N, 3), dtype=x.dtype, device=x.device)
    if N == 0:
        return out
    if ptr is not None:
        mode, seg, steps = _MODE_PTR, ptr, (B + 1).bit_length()
    elif index is not None:
        mode, seg, steps = _MODE_INDEX, index, 0
    else:
        mode, seg, steps = _MODE_SINGLE, x, 0  # seg unused
    if mode != _MODE_SINGLE:
        if seg.dtype not in (torch.int32, torch.int64):
            seg = seg.long()
        seg = seg.contiguous()
    ts = (0, 0) if t is None else (t.stride(0), t.stride(1))
    grid = (-(-N // BLOCK), )
    if not fallback:
        _run(grid, x, out, R, t, seg, N, B, ts, mode, steps, wrap)
        return out
    sig = (x.device.type, x.dtype, mode, t is not None, seg.dtype)
    if sig in _BROKEN:
        return native(x, R, t, ptr, index)
    try:
        if x.device.type == 'cuda':
            with torch.cuda.device(x.device):
                _run(grid, x, out, R, t, seg, N, B, ts, mode, steps)
        else:
            _run(grid, x, out, R, t, seg, N, B, ts, mode, steps)
    except Exception as e:  # a compile or launch failure of this variant
        text = f'{type(e).__name__}: {e}'
        _BROKEN[sig] = text
        warnings.warn(f'torch_geometric_remul: the Triton rigid-transform '
                      f'kernel failed for {x.dtype} on {x.device} ({text}); '
                      f'using the native PyTorch path for such calls',
                      RuntimeWarning, stacklevel=3)
        return native(x, R, t, ptr, index)
    return out


def _run(grid, x, out, R, t, seg, N, B, ts, mode, steps, wrap=None):
    fn = kernel() if wrap is None else wrap(kernel())
    fn[grid](
        x, out, R, R if t is None else t, seg, N, B, steps,
        x.stride(0), x.stride(1), R.stride(0), R.stride(1), R.stride(2),
        ts[0], ts[1],
        MODE=mode, HAS_T=t is not None, IS_F64=x.dtype == torch.float64,
        BLOCK=BLOCK, num_warps=NUM_WARPS, enable_fp_fusion=True)


def native(x: Tensor, R: Tensor, t: Optional[Tensor],
           ptr: Optional[Tensor] = None,
           index: Optional[Tensor] = None) -> Tensor:
    r"""The same map with PyTorch ops (no host sync), used when the kernel
    fails to compile for a device or dtype."""
    if ptr is None and index is None:
        out = x @ R[0].transpose(0, 1)
        return out if t is None else out + t[0]
    if ptr is not None:
        rows = torch.arange(x.size(0), device=x.device, dtype=ptr.dtype)
        index = torch.searchsorted(ptr, rows, right=True) - 1
        index = index.clamp_(0, max(R.size(0) - 1, 0))
    index = index.long()
    out = torch.bmm(R.index_select(0, index), x.unsqueeze(-1)).squeeze(-1)
    return out if t is None else out + t.index_select(0, index)
