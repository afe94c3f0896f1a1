r"""How a backbone builds its layers once its input widths are known.

:class:`~torch_geometric_remul.nn.models.BaseModel` infers the widths of
the declared scalars and edge scalars from the data when they are not given
(as PyG's lazy ``in_channels=-1``). :class:`LazyLayers` holds the
machinery: once the outermost constructor of a subclass chain has returned
(its ``__init__`` is wrapped by ``__init_subclass__``, so that every
attribute a subclass sets before or after ``super().__init__()`` is there),
the layers are built from :meth:`build_layers` when the widths are known, or
stand-ins with lazy parameters
(:class:`~torch.nn.parameter.UninitializedParameter`) are made, materialised
in place at the first call from the random state saved at construction: a
lazily built model equals one built with the widths given under the same
seed, and an optimizer created right after construction keeps working.

A subclass sets ``scalar_dim``/``edge_scalar_dim`` (``None`` when
inferred), a ``_like`` buffer (where the layers are built) and
``_initialized``/``_inferred``/``_rng_state`` in its constructor, and
implements ``build_layers``.
"""
import functools
import warnings
from typing import Callable, Optional

import torch
from torch.nn.parameter import (
    UninitializedBuffer,
    UninitializedParameter,
    is_lazy,
)


def _builds_after_init(init: Callable) -> Callable:
    r"""Wraps a model's ``__init__`` so that, once the outermost constructor
    of a subclass chain has returned, the model builds its layers (when the
    input widths are known) or defers them to the first call."""
    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        depth = self.__dict__.get('_init_depth', 0)
        self.__dict__['_init_depth'] = depth + 1
        try:
            init(self, *args, **kwargs)
        finally:
            self.__dict__['_init_depth'] = depth
        if depth == 0:
            del self.__dict__['_init_depth']
            self._build_or_defer()
    return __init__


class LazyLayers(torch.nn.Module):
    r"""The lazy build of a model's layers (see the module's docstring);
    the base of :class:`~torch_geometric_remul.nn.models.BaseModel`."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if '__init__' in cls.__dict__:
            cls.__init__ = _builds_after_init(cls.__dict__['__init__'])

    def _build_for(self, scalar_width: int, edge_width: Optional[int]
                   ) -> None:
        r"""Builds the layers of a model not initialised yet, inferring
        the widths left ``None`` from those of the data."""
        if self._initialized:
            return
        inferred = []
        if self.scalar_dim is None:
            self.scalar_dim = scalar_width
            inferred.append('scalar')
        if self.edge_scalar_dim is None:
            self.edge_scalar_dim = edge_width
            inferred.append('edge_scalar')
        self._inferred = tuple(inferred)
        self._build()

    def _not_initialized(self, what: str) -> str:
        lazy = [f"{name}_dim" for name, dim in
                (('scalar', self.scalar_dim),
                 ('edge_scalar', self.edge_scalar_dim)) if dim is None]
        return (f"{type(self).__name__}.{what}: the model is not initialised: "
                f"{' and '.join(lazy)} will be inferred from the data, so "
                f"its layers do not exist yet. Call model.initialize("
                f"example_batch) (or run one forward pass) first, or pass "
                f"{' and '.join(lazy)} to the constructor")

    def _build_or_defer(self) -> None:
        if self.scalar_dim is None or self.edge_scalar_dim is None:
            # the layers are drawn later from the random state of now, so
            # that they equal those of a model built with the widths given
            self._rng_state = torch.random.get_rng_state()
            self._build_placeholders()
            return
        self._build()

    def _build_placeholders(self) -> None:
        # The layers built for width 1 in place of each unknown width (a
        # declared attribute has width >= 1), their parameters and buffers
        # replaced by lazy ones (shared ones stay shared): model.parameters()
        # lists them before the first call, as with PyTorch's lazy modules,
        # and _build() materialises them in place. The global random state
        # is left as it was.
        before = {id(t) for t in self.parameters()}
        before.update(id(t) for t in self.buffers())
        widths = self.scalar_dim, self.edge_scalar_dim
        self.scalar_dim = 1 if widths[0] is None else widths[0]
        self.edge_scalar_dim = 1 if widths[1] is None else widths[1]
        try:
            with torch.random.fork_rng(devices=[]), \
                    torch.inference_mode(False), torch.no_grad():
                self.build_layers()
        finally:
            self.scalar_dim, self.edge_scalar_dim = widths
        device, dtype = self._like.device, self._like.dtype
        lazy = {}
        for module in self.modules():
            for slots, kind in ((module._parameters, UninitializedParameter),
                                (module._buffers, UninitializedBuffer)):
                for name, t in slots.items():
                    if t is None or id(t) in before:
                        continue
                    if id(t) not in lazy:
                        kw = dict(device=device, dtype=dtype if
                                  t.is_floating_point() else t.dtype)
                        lazy[id(t)] = (
                            kind(requires_grad=t.requires_grad, **kw)
                            if kind is UninitializedParameter else kind(**kw))
                    slots[name] = lazy[id(t)]

    def _adopt_placeholders(self, lazy: dict) -> None:
        # The built layers take over the lazy parameters of the same names,
        # materialised in place with the built values: an optimizer created
        # before the build holds them.
        adopted = {}
        for name, fresh in self.named_parameters(remove_duplicate=False):
            p = lazy.get(name)
            if p is not None and is_lazy(p) and id(fresh) not in adopted:
                p.materialize(fresh.shape, device=fresh.device,
                              dtype=fresh.dtype)
                with torch.no_grad():
                    p.copy_(fresh)
                p.requires_grad_(fresh.requires_grad)
                adopted[id(fresh)] = p
        fresh_names = []
        for prefix, module in self.named_modules():
            for name, fresh in module._parameters.items():
                if fresh is None:
                    continue
                if id(fresh) in adopted:
                    module._parameters[name] = adopted[id(fresh)]
                elif not any(fresh is p for p in lazy.values()):
                    fresh_names.append(f'{prefix}.{name}'.lstrip('.'))
        stale = sorted(name for name, p in lazy.items() if is_lazy(p))
        if stale or fresh_names:
            warnings.warn(
                f"{type(self).__name__}: build_layers() made other "
                f"parameters for the inferred widths than for the "
                f"placeholder width 1 (new: {fresh_names}, left out: "
                f"{stale}); an optimizer created before the first call "
                f"does not hold the new ones: create it after "
                f"model.initialize(example_batch)", RuntimeWarning,
                stacklevel=3)

    def _build(self) -> None:
        deferred = self._rng_state is not None
        where = dict(device=self._like.device, dtype=self._like.dtype)
        lazy = dict(self.named_parameters(remove_duplicate=False)) \
            if deferred else {}
        # parameters, even when first built under torch.inference_mode()
        with torch.inference_mode(False):
            if deferred:
                with torch.random.fork_rng(devices=[]):
                    torch.random.set_rng_state(self._rng_state)
                    self.build_layers()
                # built on the CPU: move to where the model is
                self.to(**where)
                if any(is_lazy(p) for p in lazy.values()):
                    self._adopt_placeholders(lazy)
            else:
                self.build_layers()
        self._rng_state = None
        self._initialized = True

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if not self._initialized and any(
                key.startswith(prefix) for key in state_dict):
            raise RuntimeError(self._not_initialized('load_state_dict()'))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
