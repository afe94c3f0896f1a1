r"""Tools to test code built on :mod:`torch_geometric_remul`: count the
host-device synchronisations a step makes.

On a GPU, every point where the host must read a value computed on the
device (``.item()``, ``bool(t)``, ``int(t)``, ``float(t)``, ``.tolist()``,
or an op whose *output shape* depends on tensor values such as
``nonzero``, ``unique``, ``masked_select``, boolean-mask indexing or
``repeat_interleave`` without ``output_size``) stalls the CUDA stream until
all queued work is done. :func:`count_syncs` finds these points on the CPU,
so that tests can assert a step is sync-free without a GPU: it watches the
ATen operators dispatched inside its block.

Example:

    >>> from torch_geometric_remul.testing import count_syncs
    >>> x = torch.randn(10)
    >>> with count_syncs() as syncs:
    ...     y = x * 2            # no sync
    ...     n = int((y > 0).sum())  # reads a value: one sync
    ...     z = y[y > 0]          # boolean mask: a data-dependent shape
    >>> syncs.count
    2
    >>> sorted(syncs.ops)
    ['aten._local_scalar_dense.default', 'aten.index.Tensor (boolean mask)']
"""
import collections
import os
import traceback
from typing import Counter, List, NamedTuple, Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

# Ops that always make the host wait for a value or a data-dependent size.
_ALWAYS = {
    aten._local_scalar_dense.default,  # .item(), bool(t), int(t), float(t)
    aten.nonzero.default,
    aten.argwhere.default,
    aten.masked_select.default,
    aten.equal.default,  # torch.equal returns a Python bool
    aten._unique.default,
    aten._unique2.default,
    aten.unique_dim.default,
    aten.unique_consecutive.default,
    aten.unique_dim_consecutive.default,
    aten.bincount.default,  # the output size depends on max(input) on CUDA
}
_INDEX_OPS = {
    aten.index.Tensor, aten.index_put.default, aten.index_put_.default,
    aten._index_put_impl_.default,
}
_REPEAT_INTERLEAVE = {
    aten.repeat_interleave.Tensor,
    aten.repeat_interleave.self_Tensor,
}

_HERE = os.path.abspath(__file__)
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))


class SyncEvent(NamedTuple):
    r"""One synchronisation point: the op and where user code called it.

    Example:

        >>> with count_syncs() as syncs:
        ...     _ = bool(torch.ones(1))
        >>> syncs.events[0].op
        'aten._local_scalar_dense.default'
    """
    op: str
    location: str


def _is_bool_index(indices) -> bool:
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool,
                                                          torch.uint8)
               for i in (indices or ()))


def _caller() -> str:
    for frame in reversed(traceback.extract_stack()[:-3]):
        path = os.path.abspath(frame.filename)
        if path == _HERE or path.startswith(_TORCH_DIR):
            continue
        return f'{frame.filename}:{frame.lineno} ({frame.name})'
    return '<unknown>'


class SyncCounter(TorchDispatchMode):
    r"""The dispatch mode behind :func:`count_syncs`. Its :attr:`events`
    list every synchronisation point seen; :attr:`count` and :attr:`ops`
    summarise them.

    Example:

        >>> with SyncCounter() as syncs:
        ...     _ = torch.arange(4).tolist()
        >>> syncs.count, dict(syncs.ops)
        (1, {'Tensor.tolist': 1})
    """
    def __init__(self, record_stack: bool = True) -> None:
        super().__init__()
        self.events: List[SyncEvent] = []
        self.record_stack = record_stack
        self._patched = {}

    @property
    def count(self) -> int:
        r"""Number of synchronisation points."""
        return len(self.events)

    @property
    def ops(self) -> Counter:
        r"""How many times each op synchronised."""
        return collections.Counter(e.op for e in self.events)

    def _record(self, op: str) -> None:
        where = _caller() if self.record_stack else ''
        self.events.append(SyncEvent(op, where))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _ALWAYS:
            self._record(str(func))
        elif func in _INDEX_OPS:
            indices = args[1] if len(args) > 1 else kwargs.get('indices')
            if _is_bool_index(indices):
                self._record(f'{func} (boolean mask)')
        elif func in _REPEAT_INTERLEAVE:
            if kwargs.get('output_size') is None:
                self._record(f'{func} (no output_size)')
        return func(*args, **kwargs)

    def __enter__(self):
        # ``Tensor.tolist()`` reads memory without dispatching an op on the
        # CPU; on a GPU it copies to the host and waits. (``Tensor.numpy()``
        # is not counted: it refuses device tensors, so it can only read
        # host memory, such as PyG's collation metadata.)
        for name in ('tolist', ):
            original = getattr(torch.Tensor, name)
            self._patched[name] = original

            def wrapper(tensor, *a, _original=original, _name=name, **kw):
                self._record(f'Tensor.{_name}')
                return _original(tensor, *a, **kw)

            setattr(torch.Tensor, name, wrapper)
        return super().__enter__()

    def __exit__(self, *args):
        try:
            return super().__exit__(*args)
        finally:
            for name, original in self._patched.items():
                setattr(torch.Tensor, name, original)
            self._patched = {}

    def report(self) -> str:
        r"""A readable list of the synchronisation points and their
        callers."""
        if not self.events:
            return 'no host-device synchronisation'
        lines = [f'{self.count} host-device synchronisation(s):']
        for e in self.events:
            lines.append(f'  {e.op}  at {e.location}')
        return '\n'.join(lines)


def count_syncs(record_stack: bool = True) -> SyncCounter:
    r"""Context manager that counts the host-device synchronisation points
    of the code in its block, on any device (CPU included).

    Counted: ``aten._local_scalar_dense`` (what ``.item()``, ``bool(t)``,
    ``int(t)``, ``float(t)`` dispatch to), ``Tensor.tolist()``, and ops whose output shape depends on tensor values
    (``nonzero``, ``argwhere``, ``unique``, ``masked_select``,
    ``bincount``, ``torch.equal``, boolean-mask indexing and index
    assignment, ``repeat_interleave`` without ``output_size``).

    Args:
        record_stack (bool, optional): Record the calling line of each
            point (see :meth:`SyncCounter.report`). (default: ``True``)

    Example:

        >>> with count_syncs() as syncs:
        ...     torch.ones(4).sum().item()
        4.0
        >>> syncs.count, list(syncs.ops)
        (1, ['aten._local_scalar_dense.default'])
    """
    return SyncCounter(record_stack=record_stack)


def assert_no_syncs(counter: SyncCounter, what: Optional[str] = None) -> None:
    r"""Raises :class:`AssertionError` listing the synchronisation points
    if ``counter`` saw any.

    Args:
        counter (SyncCounter): The result of :func:`count_syncs`.
        what (str, optional): What was measured, for the message.

    Example:

        >>> with count_syncs() as syncs:
        ...     y = torch.ones(3) * 2
        >>> assert_no_syncs(syncs, 'doubling')
    """
    if counter.count:
        prefix = f'{what}: ' if what else ''
        raise AssertionError(prefix + counter.report())


__all__ = ['count_syncs', 'assert_no_syncs', 'SyncCounter', 'SyncEvent']
