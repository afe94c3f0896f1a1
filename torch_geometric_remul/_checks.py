"""Argument checks shared by the public API.

Each helper raises a :class:`ValueError` or :class:`TypeError` that names
the offending argument and states what was expected, so that bad input fails
at the API boundary rather than deep inside a torch kernel.

Shape, dtype and type checks always run (they cost nothing). Checks of tensor
*values* (index ranges, ``ptr`` bounds and order) make the host wait for the
device, so they run only in debug mode
(:func:`torch_geometric_remul.debug`). One exception costs nothing and always
runs: the two ends of a ``ptr`` held in host memory (a CPU tensor), read
without any device work.
"""
import math
import numbers
from typing import Dict, Optional, Sequence, Tuple, TypeVar

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
            index.device.type != 'meta' and is_debug_enabled():
        lo, hi = int(index.min()), int(index.max())
        if lo < 0 or hi >= num_segments:
            raise ValueError(f"'{name}' holds graph indices in [{lo}, {hi}] "
                             f"but only {num_segments} graph(s) exist "
                             f"(expected values in [0, {num_segments - 1}])")
    return index


def host_values(t: Tensor):
    """The values of a tensor held in host memory (a CPU tensor) as a NumPy
    array, read without dispatching any op (no device to wait for), or
    ``None`` for a device tensor or one that cannot be read so (traced)."""
    if t.device.type != 'cpu':
        return None
    compiler = getattr(torch, 'compiler', None)
    if compiler is not None and getattr(compiler, 'is_compiling',
                                        lambda: False)():
        return None
    try:
        return t.detach().numpy()
    except (RuntimeError, TypeError):
        return None


def ptr_ends_error(name: str, length: int, first: int,
                   last: int) -> ValueError:
    """The error for CSR offsets that do not run from 0 to ``length``: the
    same message on every path (checks, compiled kernel, native)."""
    return ValueError(f"'{name}' must start at 0 and end at the number of "
                      f"rows ({length}), got {first} ... {last}")


def check_ptr(ptr: Tensor, name: str, length: int,
              num_segments: Optional[int] = None,
              check_order: bool = True, values: Optional[bool] = None
              ) -> Tensor:
    """A CSR pointer ``[B + 1]``; in debug mode its values are checked to run
    from 0 to ``length``, non-decreasing (``check_order=False`` leaves the
    order to a caller that checks it while reading, such as the compiled
    kernel). ``values=True`` checks the values whatever the mode, for
    callers whose output size depends on them anyway (graph builders). The
    ends (``ptr[0] == 0``, ``ptr[-1] == length``) of a ``ptr`` in host
    memory are checked in every mode: reading them costs nothing."""
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
    host = host_values(ptr)
    if host is not None:  # host memory: no device to wait for
        first, last = int(host[0]), int(host[-1])
        if first != 0 or last != length:
            raise ptr_ends_error(name, length, first, last)
    if not (is_debug_enabled() if values is None else values):
        return ptr
    if host is None and (int(ptr[0]) != 0 or int(ptr[-1]) != length):
        raise ptr_ends_error(name, length, int(ptr[0]), int(ptr[-1]))
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
    if not 0 <= value < math.inf:  # NaN fails too (traceable: no isfinite)
        raise ValueError(f"'{name}' must be a finite number >= 0 "
                         f"(got {value})")
    return float(value)


# Plain Python arguments (options, sizes, names) ############################
# One family for every layer: the datasets, the graph builders, the
# training configuration and the command line report bad options alike.


def check_int(value, name: str, minimum: Optional[int] = None) -> int:
    """An integer (``bool`` refused; NumPy integers accepted) that is at
    least ``minimum`` when given, as a Python ``int``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"'{name}' must be an integer (got "
                        f"{type(value).__name__} {value!r})")
    if minimum is not None and value < minimum:
        raise ValueError(f"'{name}' must be >= {minimum} (got {value})")
    return int(value)


def check_real(value, name: str, minimum: Optional[float] = None,
               strict: bool = False, why: str = '') -> float:
    """A finite real number (``bool`` refused), ``> minimum`` when
    ``strict`` else ``>= minimum`` when ``minimum`` is given, as a Python
    ``float``; ``why`` is appended to the error message."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"'{name}' must be a number (got "
                        f"{type(value).__name__} {value!r})")
    value = float(value)
    bound = '' if minimum is None else \
        f" {'>' if strict else '>='} {minimum:g}"
    if not math.isfinite(value) or (minimum is not None and (
            value < minimum or (strict and value == minimum))):
        raise ValueError(f"'{name}' must be a finite number{bound} (got "
                         f"{value}){why}")
    return value


def check_interval(value, name: str,
                   positive: bool = True) -> Tuple[float, float]:
    """A pair ``(low, high)`` of finite numbers with ``low <= high`` (and
    ``low > 0`` when ``positive``)."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"'{name}' must be a pair (low, high) of numbers "
                        f"(got {value!r})") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi or (
            positive and lo <= 0):
        req = '0 < low <= high' if positive else 'low <= high'
        raise ValueError(f"'{name}' must satisfy {req} (got ({lo}, {hi}))")
    return lo, hi


def check_str(value, name: str, optional: bool = False) -> Optional[str]:
    """A string (or ``None`` when ``optional``)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        expected = 'a string or None' if optional else 'a string'
        raise TypeError(f"'{name}' must be {expected} (got "
                        f"{type(value).__name__} {value!r})")
    return value


def check_bool(value, name: str) -> bool:
    """A ``bool`` (``0``/``1`` refused: a flag is stated, not implied)."""
    if not isinstance(value, bool):
        raise TypeError(f"'{name}' must be a bool (got "
                        f"{type(value).__name__} {value!r})")
    return value


def check_choice(value, name: str, choices: Sequence[str],
                 ignore_case: bool = False) -> str:
    """One of the strings ``choices`` (with ``ignore_case``, the matching
    choice as spelled in ``choices``)."""
    check_str(value, name)
    for choice in choices:
        if value == choice or (ignore_case and
                               value.lower() == choice.lower()):
            return choice
    raise ValueError(f"'{name}' must be one of {', '.join(choices)} "
                     f"(got {value!r})")


T = TypeVar('T')


def registry_entry(registry: Dict[str, T], name, kind: str) -> T:
    """The entry of ``registry`` (a name -> class table of ``kind``s, e.g.
    ``"model"``) called ``name``, case-insensitive: :class:`TypeError` for
    a ``name`` that is not a ``str``, :class:`ValueError` listing the
    available names for an unknown one."""
    if not isinstance(name, str):
        raise TypeError(f"'name' must be a str (got {type(name).__name__})")
    key = name.lower()
    if key not in registry:
        raise ValueError(f"unknown {kind} {name!r}; available {kind}s: "
                         f"{', '.join(registry)}")
    return registry[key]


def check_positions(pos: Tensor, name: str = 'pos') -> Tensor:
    """A floating-point ``[num_nodes, num_dims]`` tensor (any number of
    dimensions, e.g. ``[N, 3]``)."""
    check_float(pos, name)
    if pos.dim() != 2 or pos.size(1) < 1:
        raise ValueError(f"'{name}' must have shape [num_nodes, num_dims] "
                         f"(e.g. [N, 3]), got {list(pos.shape)}")
    return pos


def resolve_declaration(value, cls: type, name: str, owner: str,
                        shortcuts: dict):
    """``value`` (an instance of ``cls`` passed as ``name=``) or ``cls``
    built from the shortcut keywords; shortcuts given as ``None`` count as
    not given, and giving both is an error (the declaration would be stated
    twice)."""
    given = {k: v for k, v in shortcuts.items() if v is not None}
    if value is None:
        return cls(**given)
    if not isinstance(value, cls):
        raise TypeError(f"{owner}: '{name}' must be a {cls.__name__} (got "
                        f"{type(value).__name__})")
    if given:
        raise ValueError(f"{owner}: pass either '{name}' or "
                         f"{', '.join(repr(k) for k in sorted(given))}, "
                         f"not both")
    return value
