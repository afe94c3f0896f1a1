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
from typing import Iterator, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

OptTensor = Optional[Tensor]
PairTensor = Tuple[Tensor, Tensor]
Device = Union[str, torch.device, None]
#: One attribute name or several (``'pos'`` or ``('pos', 'y')``).
Keys = Union[str, Sequence[str]]

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


def _env_off(name: str) -> bool:
    return os.environ.get(name, '0').lower() in {'1', 'true', 'yes'}


#: Whether the compiled CPU rigid-transform kernel may be used (it is built
#: on first use or by ``remul build-kernels``; see
#: :mod:`torch_geometric_remul._kernels`).
WITH_CPU_KERNEL = not _FORCE_NATIVE and not _env_off('REMUL_NO_CPU_KERNEL')

#: Whether the Triton rigid-transform kernel may be used for CUDA tensors.
#: ``triton`` itself is imported only when a CUDA tensor first needs it, so
#: this flag says "allowed", not "installed" (``REMUL_NO_TRITON=1`` turns
#: it off).
WITH_TRITON = not _FORCE_NATIVE and not _env_off('REMUL_NO_TRITON')


@contextlib.contextmanager
def force_native() -> Iterator[None]:
    r"""Context manager that disables the optional accelerators
    (torch-scatter, torch-cluster, the compiled CPU kernel and the Triton
    kernel).

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
    global WITH_TRITON
    saved = (WITH_TORCH_SCATTER, WITH_TORCH_CLUSTER, WITH_CPU_KERNEL,
             WITH_TRITON)
    WITH_TORCH_SCATTER = WITH_TORCH_CLUSTER = WITH_CPU_KERNEL = False
    WITH_TRITON = False
    try:
        yield
    finally:
        (WITH_TORCH_SCATTER, WITH_TORCH_CLUSTER, WITH_CPU_KERNEL,
         WITH_TRITON) = saved


__all__ = [
    'WITH_TORCH_SCATTER',
    'WITH_TORCH_CLUSTER',
    'WITH_CPU_KERNEL',
    'WITH_TRITON',
    'force_native',
    'OptTensor',
    'PairTensor',
    'Keys',
]
