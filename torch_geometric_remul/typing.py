r"""Optional accelerators and shared type aliases.

``WITH_TORCH_SCATTER`` and ``WITH_TORCH_CLUSTER`` tell whether the compiled
`torch-scatter <https://github.com/rusty1s/pytorch_scatter>`_ and
`torch-cluster <https://github.com/rusty1s/pytorch_cluster>`_ packages
imported successfully, in the style of :mod:`torch_geometric.typing`.
Code that can use them reads the flags *at call time*, so that
:func:`force_native` (or the environment variable
``REMUL_FORCE_NATIVE=1``) switches every call to the native PyTorch
implementation, which gives the same results.
"""
import contextlib
import os
import warnings
from typing import Iterator, Optional, Tuple, Union

import torch
from torch import Tensor

OptTensor = Optional[Tensor]
PairTensor = Tuple[Tensor, Tensor]
Device = Union[str, torch.device, None]

_FORCE_NATIVE = os.environ.get('REMUL_FORCE_NATIVE', '0').lower() in {
    '1', 'true', 'yes'}

try:
    import torch_scatter  # noqa: F401
    WITH_TORCH_SCATTER = not _FORCE_NATIVE
except Exception as e:  # pragma: no cover - depends on the environment
    if not isinstance(e, ImportError):  # a broken build, not a missing one
        warnings.warn(f"An issue occurred while importing 'torch-scatter' "
                      f"({e}); falling back to native PyTorch code.")
    torch_scatter = None
    WITH_TORCH_SCATTER = False

try:
    import torch_cluster  # noqa: F401
    WITH_TORCH_CLUSTER = not _FORCE_NATIVE
except Exception as e:  # pragma: no cover - depends on the environment
    if not isinstance(e, ImportError):
        warnings.warn(f"An issue occurred while importing 'torch-cluster' "
                      f"({e}); falling back to native PyTorch code.")
    torch_cluster = None
    WITH_TORCH_CLUSTER = False


#: Whether the compiled CPU rigid-transform kernel may be used (it is built
#: lazily on first use; see :mod:`torch_geometric_remul._kernels`).
WITH_CPU_KERNEL = not _FORCE_NATIVE and os.environ.get(
    'REMUL_NO_CPU_KERNEL', '0').lower() not in {'1', 'true', 'yes'}


@contextlib.contextmanager
def force_native() -> Iterator[None]:
    r"""Context manager that disables the optional accelerators
    (torch-scatter, torch-cluster and the compiled CPU kernel).

    Inside the block every function of this package takes its native
    PyTorch path, whatever is installed. Useful to compare both paths or to
    rule out an accelerator bug.

    Example:

        >>> import torch_geometric_remul.typing as t
        >>> with t.force_native():
        ...     t.WITH_TORCH_SCATTER
        False
    """
    global WITH_TORCH_SCATTER, WITH_TORCH_CLUSTER, WITH_CPU_KERNEL
    saved = WITH_TORCH_SCATTER, WITH_TORCH_CLUSTER, WITH_CPU_KERNEL
    WITH_TORCH_SCATTER = WITH_TORCH_CLUSTER = WITH_CPU_KERNEL = False
    try:
        yield
    finally:
        WITH_TORCH_SCATTER, WITH_TORCH_CLUSTER, WITH_CPU_KERNEL = saved


__all__ = [
    'WITH_TORCH_SCATTER',
    'WITH_TORCH_CLUSTER',
    'WITH_CPU_KERNEL',
    'force_native',
    'OptTensor',
    'PairTensor',
]
