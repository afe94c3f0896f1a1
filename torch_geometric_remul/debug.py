r"""The switch for checks that read tensor *values*.

Checks of shapes, dtypes and attribute names cost nothing and always run.
Checks that must read the values of a tensor (``ptr``/``batch`` agreement,
index ranges, edges that cross graphs, finiteness, non-negative weights)
make the host wait for the device: on a GPU each one stalls the stream. They
therefore run only while debug mode is on.

This package follows PyTorch Geometric's debug mode: whatever turns on
:func:`torch_geometric.debug` turns on these checks too, so one switch serves
both libraries:

* ``with torch_geometric.debug(): ...`` or
  ``torch_geometric.set_debug(True)``: PyG's checks and this package's;
* ``with torch_geometric_remul.debug(): ...`` or
  ``torch_geometric_remul.set_debug(True)``: this package's checks only;
  ``set_debug(False)`` keeps them off even while PyG's debug mode is on,
  and ``set_debug(None)`` makes them follow PyG's switch again (the
  default);
* for a whole process, the environment variable ``REMUL_DEBUG=1`` (on) or
  ``REMUL_DEBUG=0`` (off whatever PyG's switch says); unset, this
  package follows PyG.

As in PyG, :class:`set_debug` works both as a function and as a context
manager that restores the previous state on exit.

The ``remul`` command-line tool turns debug mode on for the first steps of a
run, so that bad data fails fast with the field named.

Example:

    >>> import torch_geometric
    >>> import torch_geometric_remul as remul
    >>> remul.is_debug_enabled()
    False
    >>> with remul.debug():
    ...     remul.is_debug_enabled()
    True
    >>> with torch_geometric.debug():
    ...     remul.is_debug_enabled()
    True
    >>> remul.is_debug_enabled()
    False
"""
import os
from typing import Any, Optional

import torch_geometric

_TRUE = {'1', 'true', 'yes', 'on'}
_FALSE = {'0', 'false', 'no', 'off'}


def _from_env() -> Optional[bool]:
    value = os.environ.get('REMUL_DEBUG', '').strip().lower()
    if value == '':
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"environment variable REMUL_DEBUG must be 0 or 1 "
                     f"(got {value!r})")


# ``None``: follow PyG's switch; ``True``/``False``: this package's own
# setting, which takes precedence over PyG's.
_MODE: Optional[bool] = _from_env()


def _check_mode(mode: Any, allow_none: bool) -> None:
    if mode is None and allow_none:
        return
    if not isinstance(mode, bool):
        allowed = 'a bool or None' if allow_none else 'a bool'
        raise TypeError(f"'mode' must be {allowed} (got "
                        f"{type(mode).__name__})")


def is_debug_enabled() -> bool:
    r"""Whether the value-reading (synchronising) checks run: this
    package's own setting if one is made (:class:`debug`, :class:`set_debug`,
    ``REMUL_DEBUG``), PyG's debug mode
    (:func:`torch_geometric.is_debug_enabled`) otherwise.

    Example:

        >>> with debug():
        ...     is_debug_enabled()
        True
    """
    if _MODE is None:
        return torch_geometric.is_debug_enabled()
    return _MODE


def _set(mode: Optional[bool]) -> None:
    global _MODE
    _MODE = mode


class set_debug:
    r"""Sets this package's value-reading checks on or off, like
    :class:`torch_geometric.set_debug`: called as a function it sets the
    mode for the whole process; used as a context manager it sets the mode
    inside the block and restores the previous setting on exit.

    Args:
        mode (bool, optional): ``True`` to enable the checks, ``False`` to
            disable them (even while PyG's debug mode is on), ``None`` to
            follow PyG's debug mode again.

    Example:

        >>> _ = set_debug(True)
        >>> is_debug_enabled()
        True
        >>> _ = set_debug(None)
        >>> with set_debug(True):
        ...     is_debug_enabled()
        True
        >>> is_debug_enabled()
        False
    """
    def __init__(self, mode: Optional[bool]) -> None:
        _check_mode(mode, allow_none=True)
        self.prev = _MODE
        _set(mode)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *args: Any) -> None:
        _set(self.prev)


class debug:
    r"""Context manager that enables this package's checks that read tensor
    values inside its block (PyG's own checks are left as they are; use
    :func:`torch_geometric.debug` to enable both), restoring the previous
    setting on exit.

    Args:
        mode (bool, optional): ``False`` turns the checks *off* inside the
            block instead, even while PyG's debug mode is on.
            (default: ``True``)

    Example:

        >>> from torch_geometric_remul import debug, is_debug_enabled
        >>> with debug():
        ...     with debug(False):
        ...         is_debug_enabled()
        False
    """
    def __init__(self, mode: bool = True) -> None:
        _check_mode(mode, allow_none=False)
        self.mode = mode
        self._previous: Optional[bool] = None

    def __enter__(self) -> 'debug':
        self._previous = _MODE
        _set(self.mode)
        return self

    def __exit__(self, *args: Any) -> None:
        _set(self._previous)


__all__ = ['debug', 'is_debug_enabled', 'set_debug']
