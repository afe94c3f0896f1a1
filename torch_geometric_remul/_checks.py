"""Argument checks shared by the public API.

Each helper raises a :class:`ValueError` or :class:`TypeError` that names
the offending argument and states what was expected, so that bad input fails
at the API boundary rather than deep inside a torch kernel.

Shape, dtype and type checks always run (they cost nothing). Checks of tensor
*values* (index ranges, ``ptr`` bounds and order) make the host wait for the
device, so they run only in debug mode
(:func:`torch_geometric_remul.debug`).
"""
import math
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from torch_geometric_remul.debug import is_debug_enabled


def check_tensor(value, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor "
                        f"(got {type(value).__name__})")
    return value


def check_float(x: Tensor, name: str) -> Tensor:
    check_tensor(x, name)
    if not x.is_floating_point():
        raise TypeError(f"'{name}' must have a floating-point dtype "
                        f"(got {x.dtype})")
    return x


def check_xyz(x: Tensor, name: str) -> Tensor:
    """A floating-point ``[N, 3]`` tensor."""
    check_float(x, name)
    if x.dim() != 2 or x.size(-1) != 3:
        raise ValueError(f"'{name}' must have shape [num_nodes, 3] "
                         f"(got {list(x.shape)})")
    return x


def check_index(index: Tensor, name: str, length: int,
                num_segments: Optional[int] = None) -> Tensor:
    """A 1-D integer index of the given length; its values are checked to
    lie in ``[0, num_segments)`` in debug mode."""
    check_tensor(index, name)
    if index.dtype not in (torch.long, torch.int32):
        raise TypeError(f"'{name}' must be an integer tensor (torch.long), "
                        f"got {index.dtype}")
    if index.dim() != 1 or index.numel() != length:
        raise ValueError(f"'{name}' must have shape [{length}] (one graph "
                         f"index per row), got {list(index.shape)}")
    if num_segments is not None and index.numel() > 0 and \
            is_debug_enabled():
        lo, hi = int(index.min()), int(index.max())
        if lo < 0 or hi >= num_segments:
            raise ValueError(f"'{name}' holds graph indices in [{lo}, {hi}] "
                             f"but only {num_segments} graph(s) exist "
                             f"(expected values in [0, {num_segments - 1}])")
    return index


def check_ptr(ptr: Tensor, name: str, length: int,
              num_segments: Optional[int] = None,
              check_order: bool = True, values: Optional[bool] = None
              ) -> Tensor:
    """A CSR pointer ``[B + 1]``; in debug mode its values are checked to run
    from 0 to ``length``, non-decreasing (``check_order=False`` leaves the
    order to a caller that checks it while reading, such as the compiled
    kernel). ``values=True`` checks the values whatever the mode, for
    callers whose output size depends on them anyway (graph builders)."""
    check_tensor(ptr, name)
    if ptr.dtype not in (torch.long, torch.int32):
        raise TypeError(f"'{name}' must be an integer tensor (torch.long), "
                        f"got {ptr.dtype}")
    if ptr.dim() != 1 or ptr.numel() < 1:
        raise ValueError(f"'{name}' must have shape [num_graphs + 1], "
                         f"got {list(ptr.shape)}")
    if num_segments is not None and ptr.numel() != num_segments + 1:
        raise ValueError(f"'{name}' must have shape [{num_segments + 1}] "
                         f"for {num_segments} graph(s), got "
                         f"{list(ptr.shape)}")
    if not (is_debug_enabled() if values is None else values):
        return ptr
    if int(ptr[0]) != 0 or int(ptr[-1]) != length:
        raise ValueError(f"'{name}' must start at 0 and end at the number of "
                         f"rows ({length}), got {int(ptr[0])} ... "
                         f"{int(ptr[-1])}")
    if check_order and ptr.numel() > 1 and bool((ptr[1:] < ptr[:-1]).any()):
        raise ValueError(f"'{name}' must be non-decreasing")
    return ptr


def check_same_device_dtype(x: Tensor, name: str, ref: Tensor,
                            ref_name: str) -> None:
    if x.device != ref.device:
        raise ValueError(f"'{name}' is on {x.device} but {ref_name} is on "
                         f"{ref.device}; move one of them with .to(...)")
    if x.dtype != ref.dtype:
        raise ValueError(f"'{name}' has dtype {x.dtype} but {ref_name} has "
                         f"dtype {ref.dtype}; cast one of them with .to(...)")


def check_keys(value, name: str) -> Tuple[str, ...]:
    """Attribute names as a tuple: ``None`` gives ``()``, a str one name,
    any other iterable its items, which must be distinct strs."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value, )
    try:
        keys = tuple(value)
    except TypeError:
        raise TypeError(f"'{name}' must be an attribute name or a sequence "
                        f"of names (got {type(value).__name__})") from None
    for key in keys:
        if not isinstance(key, str):
            raise TypeError(f"'{name}' must hold attribute names (str), got "
                            f"{type(key).__name__}")
    if len(set(keys)) != len(keys):
        raise ValueError(f"'{name}' lists an attribute twice: {keys}")
    return keys


def check_disjoint(**groups: Sequence[str]) -> None:
    """Raises a :class:`ValueError` if an attribute name is declared in
    two of the keyword ``groups`` (role name -> names)."""
    seen = {}
    for role, keys in groups.items():
        for key in keys:
            if key in seen:
                raise ValueError(f"attribute '{key}' is declared both in "
                                 f"'{seen[key]}' and in '{role}'")
            seen[key] = role


def check_translation_std(value, name: str = 'translation_std') -> float:
    """A finite, non-negative standard deviation (a Python number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"'{name}' must be a number (got "
                        f"{type(value).__name__})")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"'{name}' must be a finite number >= 0 "
                         f"(got {value})")
    return float(value)
