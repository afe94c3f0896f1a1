r"""A switch for checks that read tensor *values*.

Checks of shapes, dtypes and attribute names cost nothing and always run.
Checks that must read the values of a tensor (``ptr``/``batch`` agreement,
index ranges, edges that cross graphs, finiteness, non-negative weights)
make the host wait for the device: on a GPU each one stalls the stream. They
therefore run only while debug mode is on, in the spirit of
:func:`torch_geometric.debug`:

* as a context manager, ``with torch_geometric_remul.debug(): ...``;
* for a whole process, with the environment variable ``REMUL_DEBUG=1``;
* programmatically, with :func:`set_debug`.

The ``remul`` command-line tool turns debug mode on for the first steps of a
run, so that bad data fails fast with the field named.

Example:

    >>> import torch_geometric_remul as remul
    >>> remul.is_debug_enabled()
    False
    >>> with remul.debug():
    ...     remul.is_debug_enabled()
    True
    >>> remul.is_debug_enabled()
    False
"""
import os
from typing import Any

_TRUE = {'1', 'true', 'yes', 'on'}
_FALSE = {'', '0', 'false', 'no', 'off'}


def _from_env() -> bool:
    value = os.environ.get('REMUL_DEBUG', '0').strip().lower()
    if value in _TRUE:
        return True
    if value not in _FALSE:
        raise ValueError(f"environment variable REMUL_DEBUG must be 0 or 1 "
                         f"(got {value!r})")
    return False


_DEBUG = _from_env()


def is_debug_enabled() -> bool:
    r"""Whether the value-reading (synchronising) checks run.

    Example:

        >>> with debug():
        ...     is_debug_enabled()
        True
    """
    return _DEBUG


def set_debug(mode: bool) -> None:
    r"""Turns the value-reading checks on or off for the whole process.

    Args:
        mode (bool): ``True`` to enable them.

    Example:

        >>> set_debug(True)
        >>> is_debug_enabled()
        True
        >>> set_debug(False)
    """
    global _DEBUG
    if not isinstance(mode, bool):
        raise TypeError(f"'mode' must be a bool (got {type(mode).__name__})")
    _DEBUG = mode


class debug:
    r"""Context manager (or decorator target) that enables the checks that
    read tensor values inside its block, restoring the previous state on
    exit.

    Args:
        mode (bool, optional): ``False`` turns the checks *off* inside the
            block instead. (default: ``True``)

    Example:

        >>> from torch_geometric_remul import debug, is_debug_enabled
        >>> with debug():
        ...     with debug(False):
        ...         is_debug_enabled()
        False
    """
    def __init__(self, mode: bool = True) -> None:
        if not isinstance(mode, bool):
            raise TypeError(f"'mode' must be a bool (got "
                            f"{type(mode).__name__})")
        self.mode = mode
        self._previous = None

    def __enter__(self) -> 'debug':
        self._previous = is_debug_enabled()
        set_debug(self.mode)
        return self

    def __exit__(self, *args: Any) -> None:
        set_debug(self._previous)


__all__ = ['debug', 'is_debug_enabled', 'set_debug']
