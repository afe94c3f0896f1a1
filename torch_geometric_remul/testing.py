r"""Tools to test code built on :mod:`torch_geometric_remul`: check that a
model is equivariant (:func:`assert_equivariant`), and count the
host-device synchronisations a step makes (:func:`count_syncs`).

On a GPU, every point where the host must read a value computed on the
device (``.item()``, ``bool(t)``, ``int(t)``, ``float(t)``, ``.tolist()``,
or an op whose *output shape* depends on tensor values such as
``nonzero``, ``unique``, ``masked_select``, boolean-mask indexing or
``repeat_interleave`` without ``output_size``) stalls the CUDA stream until
all queued work is done, and so does a copy of host (pageable) memory to the
device. :func:`count_syncs` finds these points on the CPU,
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
from typing import Any, Callable, Counter, List, NamedTuple, Optional

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

# Ops that copy between tensors, checked for a host-to-device copy.
_COPIES = {aten._to_copy.default, aten.copy_.default}

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


def _host_to_device(func, args, kwargs) -> Optional[str]:
    """``"cpu->cuda"`` (say) if ``func`` copies a host (CPU) tensor of at
    least one element to another device, else ``None``."""
    if func is aten._to_copy.default:
        src = args[0] if args else None
        dst = kwargs.get('device')
        dst = None if dst is None else torch.device(dst).type
    else:  # copy_(dst, src)
        src = args[1] if len(args) > 1 else kwargs.get('src')
        dst = args[0].device.type if args else None
    if not isinstance(src, torch.Tensor) or src.device.type != 'cpu' or \
            dst is None or dst == 'cpu':
        return None
    return f'cpu->{dst}'


def _caller() -> str:
    for frame in reversed(traceback.extract_stack()[:-3]):
        path = os.path.abspath(frame.filename)
        if path == _HERE or path.startswith(_TORCH_DIR):
            continue
        return f'{frame.filename}:{frame.lineno} ({frame.name})'
    return '<unknown>'


class SyncCounter(TorchDispatchMode):
    r"""The dispatch mode behind :func:`count_syncs`. Its ``events``
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
        elif func in _COPIES:
            where = _host_to_device(func, args, kwargs)
            if where is not None:
                self._record(f'{func} (host-to-device copy, {where})')
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
    ``int(t)``, ``float(t)`` dispatch to), ``Tensor.tolist()``, and ops
    whose output shape depends on tensor values
    (``nonzero``, ``argwhere``, ``unique``, ``masked_select``,
    ``bincount``, ``torch.equal``, boolean-mask indexing and index
    assignment, ``repeat_interleave`` without ``output_size``), and copies
    of a host (CPU) tensor to another device (``.to(device)``,
    ``copy_``): on CUDA, a copy from pageable host memory waits for the
    stream to drain, so data a step makes on the host and then moves is a
    synchronisation point too. Run the step on data on the ``meta`` device
    to see these copies without a GPU.

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


#: Default ``(atol, rtol)`` of :func:`assert_equivariant` per dtype.
DEFAULT_TOLERANCES = {
    torch.float64: (1e-9, 1e-9),
    torch.float32: (1e-4, 1e-4),
    torch.float16: (1e-2, 1e-2),
    torch.bfloat16: (5e-2, 5e-2),
}


def assert_equivariant(model: Callable[[Any], Any], data, *,
                       roles=None, output=None, points=None, vectors=None,
                       pseudovectors=None, sampler=None,
                       group: Optional[str] = None, generator=None,
                       num_samples: int = 8, level=None,
                       atol: Optional[float] = None,
                       rtol: Optional[float] = None) -> dict:
    r"""Raises :class:`AssertionError` unless ``model`` is equivariant on
    ``data`` within tolerance, for every declared output: the mean
    distance :math:`E'` between :math:`f(\phi(g) x)` and
    :math:`\rho(g) f(x)` over ``num_samples`` random group elements per
    graph (:func:`~torch_geometric_remul.metrics.equivariance_error`) must
    be at most ``atol``, or at most ``rtol`` relative to the output's norm.

    Accepts any callable, with one output or several named ones (``output``
    a mapping such as ``{"energy": "scalar", "forces": "vector"}``), and
    models that differentiate with respect to their inputs (forces by
    autograd). The declarations are the same as everywhere in the package:
    ``roles=``/``sampler=`` or the shortcut keywords.

    Args:
        model (callable): ``model(data)`` -> Tensor or mapping of Tensors.
        data (Data, Batch or iterable of them): Where to test.
        output (str or dict, optional): Role(s) of the output(s).
            (default: ``"point"``)
        points (str or [str], optional): Input point attributes.
            (default: ``"pos"``)
        vectors (str or [str], optional): Input vector attributes.
        pseudovectors (str or [str], optional): Input pseudovectors.
        group (str, optional): The group to test. (default: ``"SO3"``)
        num_samples (int, optional): Group elements per graph.
            (default: ``8``)
        atol (float, optional): Absolute tolerance on :math:`E'`.
            (default: per dtype of the first declared input, see
            :data:`DEFAULT_TOLERANCES`: ``1e-9`` for float64, ``1e-4`` for
            float32)
        rtol (float, optional): Tolerance on :math:`E'` relative to the
            output norm. (default: per dtype, as ``atol``)
        roles (Roles, optional): The declarations as one object.
        sampler (RigidSampler, optional): The group as one object.
        generator (torch.Generator, optional): For reproducible draws.
        level (str, optional): Row level of an ambiguous output.

    Returns:
        dict: The measured errors per output name (``"output"`` for a single
        output), as :class:`~torch_geometric_remul.metrics.EquivarianceError`.

    Example:

        >>> from torch_geometric.data import Data
        >>> data = Data(pos=torch.randn(5, 3, dtype=torch.float64),
        ...             vel=torch.randn(5, 3, dtype=torch.float64))
        >>> _ = assert_equivariant(lambda d: d.pos + d.vel, data,
        ...                        vectors='vel', group='SE3')
        >>> assert_equivariant(lambda d: d.pos + 1.0, data, group='SE3')
        Traceback (most recent call last):
        ...
        AssertionError: not equivariant under SE3: output: E' = ...
    """
    from torch_geometric_remul.group import RigidSampler
    from torch_geometric_remul.metrics import equivariance_error
    from torch_geometric_remul.roles import Roles
    roles = Roles.resolve(roles, 'assert_equivariant', points=points,
                          vectors=vectors, pseudovectors=pseudovectors,
                          output=output)
    sampler = RigidSampler.resolve(sampler, 'assert_equivariant',
                                   group=group, generator=generator)
    first = data if not isinstance(data, (list, tuple)) else data[0]
    dtype = torch.get_default_dtype()
    for key, _ in roles.inputs:
        value = getattr(first, key, None)
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            dtype = value.dtype
            break
    d_atol, d_rtol = DEFAULT_TOLERANCES.get(dtype, (1e-4, 1e-4))
    atol = d_atol if atol is None else float(atol)
    rtol = d_rtol if rtol is None else float(rtol)
    errors = equivariance_error(model, data, num_samples=num_samples,
                                roles=roles, sampler=sampler, level=level)
    if not roles.multi_output:
        errors = {'output': errors}
    failed = [f"{name}: E' = {e.E_prime:.3e} (relative {e.E_prime_rel:.3e})"
              for name, e in errors.items()
              if not (e.E_prime <= atol or e.E_prime_rel <= rtol)]
    if failed:
        raise AssertionError(
            f"not equivariant under {sampler.group}: {'; '.join(failed)}; "
            f"tolerance atol={atol:g} or rtol={rtol:g} ({dtype}, "
            f"{num_samples} samples per graph)")
    return errors


__all__ = ['assert_equivariant', 'DEFAULT_TOLERANCES', 'count_syncs',
           'assert_no_syncs', 'SyncCounter', 'SyncEvent']
