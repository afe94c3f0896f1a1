r"""Optional compiled CPU kernels.

PyTorch has no fused kernel for "multiply every row by its own graph's 3x3
matrix": the eager options (``bmm`` over ``[B, n, 3]`` views or a per-row
gather of ``R``) run 10-25x slower than copying the data. ``rigid.c`` does it
in one pass over memory. It is plain C (no Python or torch headers), compiled
on first use with the system C compiler (``$CC``, ``cc`` or ``gcc``) into a
per-user cache and called through :mod:`ctypes`.

The kernel is used only for contiguous-able CPU float32/float64 tensors when
no gradient is needed; everything else, and every machine without a working
C compiler, takes the native PyTorch path, which gives the same results up to
floating-point rounding. It is disabled by
:func:`torch_geometric_remul.typing.force_native`, ``REMUL_FORCE_NATIVE=1`` or
``REMUL_NO_CPU_KERNEL=1``. ``REMUL_CACHE_DIR`` overrides the cache folder
(default ``$XDG_CACHE_HOME/torch_geometric_remul`` or
``~/.cache/torch_geometric_remul``).
"""
import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

import torch_geometric_remul.typing as remul_typing

_SOURCE = Path(__file__).with_name('rigid.c')
_ABI_VERSION = 2
_LOCK = threading.Lock()
_STATE = {'tried': False, 'lib': None, 'error': None}
# Below this many rows a single thread is faster than waking a team.
_PARALLEL_MIN_ROWS = 16384

_FLAG_SETS = (
    ['-O3', '-march=native', '-fopenmp'],
    ['-O3', '-fopenmp'],
    ['-O3'],
)


def _cache_dir() -> Path:
    root = os.environ.get('REMUL_CACHE_DIR')
    if root:
        return Path(root)
    xdg = os.environ.get('XDG_CACHE_HOME') or os.path.join(
        os.path.expanduser('~'), '.cache')
    return Path(xdg) / 'torch_geometric_remul'


def _cpu_signature() -> str:
    """Identifies the CPU model and features so that a cache shared between
    machines never serves a ``-march=native`` build to the wrong CPU."""
    parts = [platform.machine(), platform.processor()]
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith(('model name', 'flags', 'Features')):
                    parts.append(line.strip())
                if len(parts) >= 4:
                    break
    except OSError:
        pass
    return '|'.join(parts)


def _compiler() -> Optional[str]:
    cc = os.environ.get('CC')
    if cc and shutil.which(cc):
        return shutil.which(cc)
    return shutil.which('cc') or shutil.which('gcc') or shutil.which('clang')


def _compile(cc: str, target: Path) -> Optional[str]:
    """Builds the library at ``target`` atomically; returns an error text or
    ``None``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for flags in _FLAG_SETS:
        fd, tmp = tempfile.mkstemp(suffix='.so', dir=target.parent)
        os.close(fd)
        cmd = [cc, *flags, '-shared', '-fPIC', str(_SOURCE), '-o', tmp]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True,
                                 timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            res = None
            errors.append(f'{" ".join(cmd)}: {e}')
        if res is not None and res.returncode == 0:
            os.replace(tmp, target)  # atomic: readers never see half a file
            return None
        if res is not None:
            errors.append(f'{" ".join(cmd)}: {res.stderr.strip()[:500]}')
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return '\n'.join(errors)


def _load() -> Optional[ctypes.CDLL]:
    with _LOCK:
        if _STATE['tried']:
            return _STATE['lib']
        _STATE['tried'] = True
        cc = _compiler()
        if cc is None:
            _STATE['error'] = 'no C compiler found (set $CC)'
            return None
        try:
            version = subprocess.run([cc, '--version'], capture_output=True,
                                     text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired) as e:
            _STATE['error'] = f'{cc} --version failed: {e}'
            return None
        key = hashlib.sha256('\0'.join([
            _SOURCE.read_text(), repr(_FLAG_SETS), cc, version,
            _cpu_signature()
        ]).encode()).hexdigest()[:16]
        target = _cache_dir() / f'rigid-{key}.so'
        try:
            if not target.exists():
                error = _compile(cc, target)
                if error is not None:
                    _STATE['error'] = error
                    warnings.warn(
                        'torch_geometric_remul: could not compile the CPU '
                        'rigid-transform kernel; using the slower native '
                        f'PyTorch path. Compiler output:\n{error}')
                    return None
            lib = ctypes.CDLL(str(target))
            if lib.rigid_kernel_abi_version() != _ABI_VERSION:
                raise OSError('ABI version mismatch')
        except OSError as e:
            _STATE['error'] = f'could not load {target}: {e}'
            return None
        i64, ptr, cint = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
        for name in ('rigid_ptr_f32', 'rigid_ptr_f64', 'rigid_index_f32',
                     'rigid_index_f64'):
            fn = getattr(lib, name)
            fn.argtypes = [ptr, ptr, ptr, ptr, ptr, i64, i64, cint]
            fn.restype = i64
        _STATE['lib'] = lib
        return lib


def kernel_available() -> bool:
    r"""Whether the compiled CPU kernel is enabled and loads (compiling it on
    the first call)."""
    return remul_typing.WITH_CPU_KERNEL and _load() is not None


def kernel_error() -> Optional[str]:
    r"""Why the kernel is unavailable, if it was tried and failed."""
    return _STATE['error']


def _addr(t: Optional[Tensor]) -> Optional[int]:
    return None if t is None else t.data_ptr()


def kernel_usable(x: Tensor, R: Optional[Tensor],
                  t: Optional[Tensor]) -> bool:
    r"""Whether :func:`rigid_apply` will run the compiled kernel for these
    tensors (compiling it on the first call): CPU float32/float64, no
    gradient needed, kernel enabled and loadable."""
    if R is None or not remul_typing.WITH_CPU_KERNEL:
        return False
    if x.device.type != 'cpu' or x.dtype not in (torch.float32,
                                                 torch.float64):
        return False
    if torch.is_grad_enabled() and (x.requires_grad or R.requires_grad or (
            t is not None and t.requires_grad)):
        return False  # autograd goes through the native path
    return _load() is not None


def rigid_apply(x: Tensor, R: Tensor, t: Optional[Tensor],
                ptr: Optional[Tensor] = None,
                index: Optional[Tensor] = None) -> Optional[Tensor]:
    r"""``out_i = R[g_i] x_i (+ t[g_i])`` with the compiled kernel, or
    ``None`` when :func:`kernel_usable` is false (the caller falls back).

    Shapes and dtypes are assumed validated by the caller: ``x`` ``[N, 3]``,
    ``R`` ``[B, 3, 3]``, ``t`` ``[B, 3]`` or ``None``, at most one of
    ``ptr``/``index`` (neither: ``B = 1``). The *values* of ``ptr``
    (non-decreasing, within ``[0, N]``) and ``index`` (within ``[0, B)``)
    are checked by the kernel while it reads them, raising the same
    :class:`ValueError` as the native checks.
    """
    if not kernel_usable(x, R, t):
        return None
    lib = _load()
    suffix = 'f32' if x.dtype == torch.float32 else 'f64'
    x = x.contiguous()
    R = R.contiguous()
    t = None if t is None else t.contiguous()
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    N, B = x.size(0), R.size(0)
    nthreads = torch.get_num_threads() if N >= _PARALLEL_MIN_ROWS else 1
    if ptr is None and index is None:
        ptr = torch.tensor([0, N], dtype=torch.long)
    if ptr is not None:
        ptr = ptr.to(torch.long).contiguous()
        bad = getattr(lib, f'rigid_ptr_{suffix}')(
            x.data_ptr(), out.data_ptr(), R.data_ptr(), _addr(t),
            ptr.data_ptr(), B, N, nthreads)
        if bad >= 0:
            raise ValueError(f"'ptr' must be non-decreasing from 0 to the "
                             f"number of rows ({N}); graph {bad} spans rows "
                             f"{int(ptr[bad])}..{int(ptr[bad + 1])}")
    else:
        index = index.to(torch.long).contiguous()
        bad = getattr(lib, f'rigid_index_{suffix}')(
            x.data_ptr(), out.data_ptr(), R.data_ptr(), _addr(t),
            index.data_ptr(), N, B, nthreads)
        if bad >= 0:
            raise ValueError(f"'batch' holds graph index {int(index[bad])} "
                             f"at row {bad} but only {B} graph(s) exist "
                             f"(expected values in [0, {B - 1}])")
    return out


__all__ = ['kernel_available', 'kernel_error', 'kernel_usable',
           'rigid_apply']
