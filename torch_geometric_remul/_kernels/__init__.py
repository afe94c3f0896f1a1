r"""Fused kernels for per-graph rigid transforms
``out_i = R[g_i] x_i (+ t[g_i])``.

PyTorch has no fused kernel for "multiply every row by its own graph's 3x3
matrix": the eager options (``bmm`` over ``[B, n, 3]`` views or a per-row
gather of ``R``) run several times slower than copying the data. This
package provides one pass over memory on each device, and
:class:`~torch_geometric_remul.group.RigidTransform` takes it whenever
:func:`kernel_usable` is true. Otherwise, and whenever a kernel cannot be
had, the native PyTorch path runs, with the same results up to
floating-point rounding (tested).

**CUDA: a Triton kernel** (``_triton.py``), used for float16, bfloat16,
float32 and float64 CUDA tensors when ``triton`` imports. One launch per
attribute; each row finds its graph from ``batch`` or by a binary search in
``ptr`` on the device, so no value is read on the host (no synchronisation).
The values of ``ptr``/``batch`` are checked only in debug mode
(:class:`torch_geometric_remul.debug`); without it, rows with an invalid graph
index are never read or written out of bounds and come out as NaN. The first
call of each variant compiles it (Triton caches it on disk). The tests run
it on CPU tensors with ``TRITON_INTERPRET=1``.

**CPU: a C kernel** (``rigid.c``, plain C99), compiled with the system C
compiler (``$CC``, else ``cc``, ``gcc`` or ``clang``) into a per-user cache
and called through :mod:`ctypes` (which releases the GIL). It is compiled
without ``-fopenmp`` and links no OpenMP runtime: from 8,192 rows it runs on
``torch.get_num_threads()`` threads of the OpenMP runtime that torch itself
has loaded (found in the process, never loaded anew), so no second runtime
or thread pool competes with torch's; it follows
:func:`torch.set_num_threads`, and runs on one thread where torch does not
use OpenMP and in forked children such as DataLoader workers (an OpenMP team
does not survive ``fork()``). It is built without FMA contraction:
each output is rounded op by op, the same bits on every machine (and, on
the machines tested, the same bits as the native path). It checks the
values of ``ptr``/``batch`` while reading them, ``ptr[0] == 0`` and
``ptr[-1] == N`` included, and raises the same :class:`ValueError` as the
native checks.
Build behaviour:

* The first transform call loads ``rigid-<key>.so`` from the cache if it is
  there (the key covers the source, the flags, the compiler's path, size and
  date, and the CPU model; computing it runs nothing).
* Otherwise a background thread compiles it (one attempt with
  ``-march=native``, one without, each limited to 60 s, ``COMPILE_TIMEOUT``
  in ``_cpu.py``, after which the compiler's whole process group is
  killed). The first call waits for it at most 2 s (``FIRST_CALL_WAIT``; a
  compile takes under a second on an idle machine); calls made while it
  runs take the native path. :func:`build_kernels` (or
  ``remul build-kernels``) builds ahead of time.
* The library is compiled in a private temporary folder, loaded once to
  check it, then copied into the cache under a temporary name and renamed:
  the cache never holds a partial file. The build records the library's
  SHA-256 in ``rigid-<key>.so.sha256``. A cached library is loaded only
  when nobody else can have written it, checked *before* it is loaded
  (loading runs its constructors): the cache folder is created with mode
  0700 and refused when it is a symbolic link, not owned by the user,
  writable by the group or others, or below a folder that another user
  could replace it in (a refused folder is neither read nor
  written; the kernel is compiled in every process, with one warning); the
  library and its record are regular files of the user, not writable by
  others, opened without following symbolic links; and the library's
  SHA-256 is the recorded one. A cached library that fails the file checks
  or does not load (damaged file, missing symbol, other ABI version) is
  deleted and rebuilt.
* A failure the user can fix (compiler error or time-out, unwritable or
  damaged cache) is reported by one :class:`RuntimeWarning` per process,
  with the reason; :func:`kernel_error` returns it. An unwritable cache
  still gives the kernel, compiled in every process. No C compiler is not
  an error: the native path runs silently (see :func:`kernel_status`).

Switches, read at call time: :func:`torch_geometric_remul.typing.force_native`
or ``REMUL_FORCE_NATIVE=1`` (every accelerator off), ``REMUL_NO_CPU_KERNEL=1``
(C kernel off), ``REMUL_NO_TRITON=1`` (Triton kernel off). ``REMUL_CACHE_DIR``
moves the cache (default ``$XDG_CACHE_HOME/torch_geometric_remul`` or
``~/.cache/torch_geometric_remul``). Both kernels serve calls that need no
gradient (inputs without ``requires_grad`` or under :func:`torch.no_grad`);
autograd goes through the native path.

Under :func:`torch.compile` both kernels are :mod:`torch.library` operators,
``torch.ops.torch_geometric_remul.rigid_cpu`` (a ``custom_op`` with a fake
implementation) and ``torch.ops.torch_geometric_remul.rigid_triton`` (a
``triton_op``), so that a compiled step traces through them without a graph
break; eager calls run the kernels directly, with the same results.

Example:

    >>> from torch_geometric_remul._kernels import kernel_status
    >>> sorted(kernel_status())
    ['cpu', 'triton']
"""
import importlib.util
from pathlib import Path
from typing import Dict, Optional

import torch
from torch import Tensor

import torch_geometric_remul.typing as remul_typing
from torch_geometric_remul._checks import ptr_ends_error
from torch_geometric_remul._kernels import _cpu, _triton
from torch_geometric_remul.debug import is_debug_enabled

# Below this many rows one thread is as fast as two (measured: 2-core VM).
_PARALLEL_MIN_ROWS = 8192
# Tests only: route CPU tensors to the Triton kernel (needs TRITON_INTERPRET).
_TRITON_ON_CPU = False


def _needs_grad(x: Tensor, R: Tensor, t: Optional[Tensor]) -> bool:
    return torch.is_grad_enabled() and (
        x.requires_grad or R.requires_grad
        or (t is not None and t.requires_grad))


def _use_triton(x: Tensor) -> bool:
    return x.device.type != 'cpu' or _TRITON_ON_CPU


def kernel_usable(x: Tensor, R: Optional[Tensor],
                  t: Optional[Tensor]) -> bool:
    r"""Whether :func:`rigid_apply` will run a fused kernel for these
    tensors: no gradient needed, and either CPU float32/float64 with the C
    kernel built (starting its build on the first call, see the module
    docstring), or CUDA float16/bfloat16/float32/float64 with ``triton``
    importable. Reads no tensor value.

    Args:
        x (torch.Tensor): Rows ``[N, 3]``.
        R (torch.Tensor, optional): Rotations ``[B, 3, 3]`` (``None``: no
            kernel).
        t (torch.Tensor, optional): Translations ``[B, 3]``.
    """
    if R is None or _needs_grad(x, R, t):
        return False
    if _use_triton(x):
        return remul_typing.WITH_TRITON and _triton.usable(x)
    if not remul_typing.WITH_CPU_KERNEL:
        return False
    if x.dtype not in (torch.float32, torch.float64):
        return False
    return _cpu_loaded()


@torch.compiler.assume_constant_result
def _cpu_loaded() -> bool:
    # Under torch.compile the answer is taken once, when the step is traced
    # (the library's loader holds locks and threads Dynamo cannot trace): a
    # library loaded then stays loaded, one still building leaves that
    # compiled step on the native path (same results).
    return _cpu.loaded_library() is not None


def rigid_apply(x: Tensor, R: Tensor, t: Optional[Tensor],
                ptr: Optional[Tensor] = None,
                index: Optional[Tensor] = None) -> Optional[Tensor]:
    r"""``out_i = R[g_i] x_i (+ t[g_i])`` with a fused kernel, or ``None``
    when :func:`kernel_usable` is false (the caller falls back).

    Shapes and dtypes are assumed validated by the caller: ``x`` ``[N, 3]``,
    ``R`` ``[B, 3, 3]``, ``t`` ``[B, 3]`` or ``None``, at most one of
    ``ptr`` (``[B + 1]``, CSR offsets) and ``index`` (``[N]``, graph of each
    row); neither means ``B = 1``. The output is a new contiguous tensor.

    Values of ``ptr`` (from 0 to ``N``, non-decreasing) and ``index``
    (within ``[0, B)``): on CPU the kernel checks them while reading and
    raises the same :class:`ValueError` as the native checks; on CUDA they
    are checked only in debug mode (invalid rows come out as NaN otherwise,
    including rows before ``ptr[0]`` or from ``ptr[-1]`` on).

    Args:
        x (torch.Tensor): Rows ``[N, 3]``.
        R (torch.Tensor): Rotations ``[B, 3, 3]``.
        t (torch.Tensor, optional): Translations ``[B, 3]``.
        ptr (torch.Tensor, optional): CSR offsets ``[B + 1]``.
        index (torch.Tensor, optional): Graph index per row ``[N]``.

    Example:

        >>> R = torch.eye(3).expand(2, 3, 3)
        >>> t = torch.tensor([[0., 0., 0.], [1., 1., 1.]])
        >>> x = torch.zeros(3, 3)
        >>> out = rigid_apply(x, R, t, ptr=torch.tensor([0, 1, 3]))
        >>> out is None or out.tolist() == [[0, 0, 0], [1, 1, 1], [1, 1, 1]]
        True
    """
    if ptr is not None and index is not None:
        raise ValueError("pass at most one of 'ptr' and 'index'")
    if not kernel_usable(x, R, t):
        return None
    for name, seg in (('ptr', ptr), ('batch', index)):
        if seg is not None and seg.device != x.device:
            # a kernel would read it through a pointer of the wrong device
            raise ValueError(f"'{name}' is on {seg.device} but the rows are "
                             f"on {x.device}; move it with .to(...)")
    if _use_triton(x):
        if is_debug_enabled():
            _check_values(x, R, ptr, index)
        if torch.compiler.is_compiling():
            return rigid_triton(x, R, t, ptr, index)
        return _triton.launch(x, R, t, ptr=ptr, index=index)
    if torch.compiler.is_compiling():
        return rigid_cpu(x, R, t, ptr, index)
    return _cpu_apply(_cpu.loaded_library(), x, R, t, ptr, index)


# The kernels as operators of torch.library, so that torch.compile traces
# through them (a ctypes call or a raw Triton launch cannot be traced) and
# Inductor schedules around them. Eager calls keep calling the kernels
# directly (no dispatcher overhead; Triton's per-variant fallback kept);
# traced calls (torch.compiler.is_compiling()) go through the operators.
# Both serve calls that need no gradient only (see kernel_usable), so no
# autograd formula is registered: the operators refuse inputs that need one.

@torch.library.custom_op('torch_geometric_remul::rigid_cpu', mutates_args=())
def rigid_cpu(x: Tensor, R: Tensor, t: Optional[Tensor],
              ptr: Optional[Tensor], index: Optional[Tensor]) -> Tensor:
    r"""The C kernel as an operator: ``out_i = R[g_i] x_i (+ t[g_i])`` for
    CPU float32/float64 rows (arguments as in :func:`rigid_apply`). Raises
    :class:`RuntimeError` if the library is not loaded."""
    lib = _cpu.loaded_library()
    if lib is None:
        raise RuntimeError('torch_geometric_remul: the CPU rigid-transform '
                           'kernel is not loaded (see kernel_status())')
    return _cpu_apply(lib, x, R, t, ptr, index)


@rigid_cpu.register_fake
def _rigid_fake(x: Tensor, R: Tensor, t: Optional[Tensor],
                ptr: Optional[Tensor], index: Optional[Tensor]) -> Tensor:
    return x.new_empty((x.size(0), 3))


def _rigid_triton(x: Tensor, R: Tensor, t: Optional[Tensor],
                  ptr: Optional[Tensor], index: Optional[Tensor]) -> Tensor:
    r"""The Triton kernel as an operator (:func:`torch.library.triton_op`,
    launched through :func:`torch.library.wrap_triton`): the same map for
    CUDA rows (CPU rows under ``TRITON_INTERPRET=1``), arguments as in
    :func:`rigid_apply`."""
    from torch.library import wrap_triton
    return _triton.launch(x, R, t, ptr=ptr, index=index, wrap=wrap_triton,
                          fallback=False)


# Registered only where triton is installed (registering looks for Triton
# kernels and logs a warning without it); without triton the Triton path is
# never taken, traced or not.
rigid_triton = None if importlib.util.find_spec('triton') is None else \
    torch.library.triton_op('torch_geometric_remul::rigid_triton',
                            mutates_args=())(_rigid_triton)


def _check_values(x: Tensor, R: Tensor, ptr: Optional[Tensor],
                  index: Optional[Tensor]) -> None:
    from torch_geometric_remul._checks import check_index, check_ptr
    N, B = x.size(0), R.size(0)
    if ptr is not None:
        check_ptr(ptr, 'ptr', N, B)
    elif index is not None:
        check_index(index, 'batch', N, B)


def _cpu_apply(lib, x: Tensor, R: Tensor, t: Optional[Tensor],
               ptr: Optional[Tensor], index: Optional[Tensor]) -> Tensor:
    suffix = 'f32' if x.dtype == torch.float32 else 'f64'
    x = x.contiguous()
    R = R.contiguous()
    t = None if t is None else t.contiguous()
    out = torch.empty((x.size(0), 3), dtype=x.dtype)
    N, B = x.size(0), R.size(0)
    nthreads = torch.get_num_threads() if N >= _PARALLEL_MIN_ROWS else 1
    t_addr = None if t is None else t.data_ptr()
    if ptr is None and index is None:
        ptr = torch.tensor([0, N], dtype=torch.long)
    if ptr is not None:
        ptr = ptr.to(torch.long).contiguous()
        bad = getattr(lib, f'rigid_ptr_{suffix}')(
            x.data_ptr(), out.data_ptr(), R.data_ptr(), t_addr,
            ptr.data_ptr(), B, N, nthreads)
        if bad == B:  # the ends: checked first, nothing written
            raise ptr_ends_error('ptr', N, int(ptr[0]), int(ptr[-1]))
        if bad >= 0:
            raise ValueError(f"'ptr' must be non-decreasing from 0 to the "
                             f"number of rows ({N}); graph {bad} spans rows "
                             f"{int(ptr[bad])}..{int(ptr[bad + 1])}")
    else:
        index = index.to(torch.long).contiguous()
        bad = getattr(lib, f'rigid_index_{suffix}')(
            x.data_ptr(), out.data_ptr(), R.data_ptr(), t_addr,
            index.data_ptr(), N, B, nthreads)
        if bad >= 0:
            raise ValueError(f"'batch' holds graph index {int(index[bad])} "
                             f"at row {bad} but only {B} graph(s) exist "
                             f"(expected values in [0, {B - 1}])")
    return out


def kernel_available() -> bool:
    r"""Whether the compiled CPU kernel is enabled and loaded, building it
    now if needed (waits for the build; see :func:`build_kernels`)."""
    if not remul_typing.WITH_CPU_KERNEL:
        return False
    return _cpu.build() is None


def kernel_error() -> Optional[str]:
    r"""Why the CPU kernel is unavailable, if it was tried and failed."""
    return _cpu.error()


def kernel_cache_dir() -> Path:
    r"""The folder of the compiled CPU kernel: ``$REMUL_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/torch_geometric_remul``, else
    ``~/.cache/torch_geometric_remul``."""
    return _cpu.cache_dir()


def _triton_status(load: bool) -> str:
    if not remul_typing.WITH_TRITON:
        return 'disabled (REMUL_NO_TRITON or REMUL_FORCE_NATIVE)'
    if not load and not _triton._IMPORT['tried']:
        if importlib.util.find_spec('triton') is None:
            return 'unavailable: triton is not installed'
    elif not _triton.available():
        return f'unavailable: {_triton.import_error()}'
    if not torch.cuda.is_available() and not _triton.interpret_mode():
        return 'importable; no CUDA device (used for CUDA tensors only)'
    return 'ready'


def kernel_status() -> Dict[str, str]:
    r"""The state of each kernel, without building anything: ``"cpu"``
    (``"ready"``, ``"not built yet"``, ``"building"``, ``"disabled ..."`` or
    the reason of a failure) and ``"triton"`` (``"ready"`` or why not)."""
    cpu = _cpu.status() if remul_typing.WITH_CPU_KERNEL else \
        'disabled (REMUL_NO_CPU_KERNEL or REMUL_FORCE_NATIVE)'
    return {'cpu': cpu, 'triton': _triton_status(load=False)}


def build_kernels(timeout: float = 130.0,
                  cuda: Optional[bool] = None) -> Dict[str, str]:
    r"""Builds the kernels ahead of time, so that no transform call waits
    for a compiler: the C kernel (into the cache, see the module docstring)
    and, with a CUDA device, the Triton kernel's float32 and float64
    variants (Triton caches them on disk). Safe to call from every process
    of a distributed job: concurrent builds publish the same file
    atomically.

    Args:
        timeout (float, optional): Seconds to wait for the C compiler.
            (default: ``130``)
        cuda (bool, optional): Compile the Triton kernel on the current
            CUDA device. (default: when a CUDA device is present)

    Returns:
        ``{"cpu": status, "triton": status}``, each ``"ready"`` or the
        reason why not (see :func:`kernel_status`).

    Example:

        >>> from torch_geometric_remul._kernels import build_kernels
        >>> status = build_kernels(cuda=False)  # doctest: +SKIP
        >>> status['cpu']  # doctest: +SKIP
        'ready'
    """
    if remul_typing.WITH_CPU_KERNEL:
        error = _cpu.build(timeout)
        cpu = 'ready' if error is None else error
    else:
        cpu = 'disabled (REMUL_NO_CPU_KERNEL or REMUL_FORCE_NATIVE)'
    triton_status = _triton_status(load=True)
    if cuda is None:
        cuda = torch.cuda.is_available()
    if cuda and triton_status == 'ready':
        before = len(_triton._BROKEN)
        for dtype in (torch.float32, torch.float64):
            x = torch.zeros(4, 3, dtype=dtype, device='cuda')
            R = torch.eye(3, dtype=dtype, device='cuda').expand(2, 3, 3)
            t = torch.zeros(2, 3, dtype=dtype, device='cuda')
            ptr = torch.tensor([0, 1, 4], device='cuda')
            _triton.launch(x, R, t, ptr=ptr)
            _triton.launch(x, R, None, index=torch.zeros(
                4, dtype=torch.long, device='cuda'))
        torch.cuda.synchronize()
        if len(_triton._BROKEN) > before:
            triton_status = 'failed: ' + '; '.join(
                _triton._BROKEN.values())
    return {'cpu': cpu, 'triton': triton_status}


__all__ = ['kernel_usable', 'rigid_apply', 'kernel_available',
           'kernel_error', 'kernel_cache_dir', 'kernel_status',
           'build_kernels']
