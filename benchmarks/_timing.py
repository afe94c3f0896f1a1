"""Timing helpers shared by the benchmark scripts.

Candidates are timed *interleaved* (a, b, c, a, b, c, ...) and summarised by
the median, so that load from other processes on a shared machine affects all
of them alike and ratios measured in one run stay meaningful.
"""
import time
from typing import Callable, Dict


def interleaved_median(fns: Dict[str, Callable[[], object]], repeats: int = 30,
                       warmup: int = 3) -> Dict[str, float]:
    """Median wall time in seconds of each callable."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    out = {}
    for name, values in samples.items():
        values.sort()
        out[name] = values[len(values) // 2]
    return out


def machine_description() -> str:
    import os
    import platform

    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return (f'{cpu}, {os.cpu_count()} cores, torch {torch.__version__} '
            f'({torch.get_num_threads()} threads)')


def keep_freed_memory(limit_bytes: int = 1 << 30) -> bool:
    """Asks glibc to serve large allocations from the heap and to keep freed
    memory instead of returning it to the OS (mallopt M_MMAP_THRESHOLD and
    M_TRIM_THRESHOLD).

    Without this, a multi-MB tensor sometimes reuses warm pages and sometimes
    gets fresh ones from mmap, whose first touch costs a page fault per 4 KiB
    (about 1-2 ms for 12 MB on a small VM); which candidate pays depends on
    the allocation history, and measured ratios swing several-fold between
    identical runs. Every out-of-place candidate allocates the same output, so
    this removes noise, not work. Returns False where glibc is unavailable.
    """
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c'))
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        ok = libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(limit_bytes // 2))
        ok &= libc.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(limit_bytes))
        return bool(ok)
    except (OSError, AttributeError, TypeError):
        return False
