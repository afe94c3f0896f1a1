r"""The shared model interface: declared inputs, their validation and
assembly, lazily inferred input widths, output roles and per-graph pooling.

Every backbone of :mod:`torch_geometric_remul.nn.models` derives from
:class:`BaseModel`, which reads the declared attributes of a PyG
``Data``/``Batch`` into one :class:`ModelInputs` record, so that no model
repeats the checks.
"""
import copy
import functools
import warnings
from collections import OrderedDict
from typing import Callable, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.nn.parameter import (
    UninitializedBuffer,
    UninitializedParameter,
    is_lazy,
)
from torch_geometric.data import Batch, Data

from torch_geometric_remul._checks import check_disjoint, check_int, check_keys
from torch_geometric_remul.debug import is_debug_enabled
from torch_geometric_remul.group.segment import (
    ptr_to_batch,
    segment_mean,
    segment_sum,
)
from torch_geometric_remul.layout import check_data, graph_layout
from torch_geometric_remul.roles import OUTPUT_ROLES, Roles

POOLINGS = ('sum', 'mean')

KeysLike = Union[str, Sequence[str], None]


class ModelInputs(NamedTuple):
    r"""The validated, assembled inputs of one forward pass.

    Attributes:
        pos: Input positions ``[N, 3]``.
        vectors: Declared node vectors stacked as ``[N, V, 3]`` (``V`` may
            be ``0``).
        scalars: Declared node scalars concatenated as ``[N, scalar_dim]``
            (width ``0`` if none).
        edge_index: ``[2, E]`` (``None`` for models that need no edges).
        edge_scalars: Declared edge scalars ``[E, edge_scalar_dim]``
            (``None`` without edges).
        batch: Graph index of each node ``[N]``.
        ptr: CSR offsets ``[B + 1]``.
        num_graphs: ``B``.

    Example:

        >>> from torch_geometric.data import Data
        >>> from torch_geometric_remul.nn.models import GNN
        >>> from torch_geometric_remul.graph import fully_connected_graph
        >>> data = Data(pos=torch.randn(4, 3), vel=torch.randn(4, 3),
        ...             charge=torch.ones(4, 1))
        >>> data.edge_index = fully_connected_graph(data)
        >>> model = GNN(vectors='vel', scalars='charge')
        >>> inputs = model.read_inputs(data)
        >>> inputs.vectors.shape, inputs.scalars.shape, inputs.num_graphs
        (torch.Size([4, 1, 3]), torch.Size([4, 1]), 1)
    """
    pos: Tensor
    vectors: Tensor
    scalars: Tensor
    edge_index: Optional[Tensor]
    edge_scalars: Optional[Tensor]
    batch: Tensor
    ptr: Tensor
    num_graphs: int


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


class BaseModel(torch.nn.Module):
    r"""Base class of the REMUL backbones: ``model(data) -> Tensor``.

    **Roles.** What the model reads and returns is declared once, as a
    :class:`~torch_geometric_remul.roles.Roles` (``roles=``), the same
    object that :class:`~torch_geometric_remul.nn.RemulLoss`, the metrics
    and the transforms accept; ``points=``, ``vectors=`` and ``output=`` are
    shortcuts for it (give either ``roles`` or the shortcuts, not both).
    The model's positions are the first declared point (``roles.points[0]``,
    ``"pos"`` by default); further points (such as a target declared as a
    point for the loss) are not read by the model. Declared vectors are
    node inputs. The backbones read no pseudovector inputs and return one
    tensor, so ``roles.pseudovectors`` must be empty and ``roles.output``
    a single role.

    **Input widths.** ``scalar_dim`` and ``edge_scalar_dim`` (the total
    widths of the declared scalars) are inferred from the data when left
    ``None``, as PyG's lazy ``in_channels=-1``: the layers that depend on
    them are built at the first call (or by :meth:`initialize` on an
    example batch), reading tensor shapes only. Until then the model holds
    lazy parameters (:class:`torch.nn.parameter.UninitializedParameter`,
    as PyTorch's and PyG's lazy modules do), which the build materialises
    in place: an optimizer can be created right after construction, e.g.
    ``torch.optim.Adam(model.parameters())``. A lazily built model has the
    same parameters as one built with the widths given, under the same
    random seed: the layers are drawn from the random state saved at
    construction. Given widths are built at once and checked against the
    data at every call.

    Subclasses create their layers in :meth:`build_layers` (run once the
    constructor has returned and the widths are known), call
    :meth:`read_inputs` at the start of ``forward`` and build their output
    from the returned :class:`ModelInputs`.

    Args:
        roles (Roles, optional): The declaration of input points/vectors
            and of the output role. (default: ``Roles()``: positions
            ``"pos"``, output ``"point"``)
        output (str, optional): Shortcut for ``roles.output``: ``"point"``
            (node-level ``[N, 3]``: the input position plus a predicted
            displacement), ``"vector"`` or ``"pseudovector"`` (node-level
            ``[N, 3]``) or ``"scalar"`` (graph-level ``[B, out_dim]`` from
            per-graph pooling); see :attr:`supported_outputs`.
            (default: ``"point"``)
        points (str or sequence of str, optional): Shortcut for
            ``roles.points``; the first is the position attribute
            ``[N, 3]``. (default: ``"pos"``)
        vectors (str or sequence of str, optional): Shortcut for
            ``roles.vectors``: node vector attributes ``[N, 3]`` such as
            ``"vel"``. (default: none)
        scalars (str or sequence of str, optional): Node scalar attributes,
            each ``[N]`` or ``[N, k]``, concatenated. (default: ``()``)
        scalar_dim (int, optional): Total width of the concatenated node
            scalars. (default: ``None``: inferred from the data)
        edge_scalars (str or sequence of str, optional): Edge attributes,
            each ``[E]`` or ``[E, k]``, e.g. ``("edge_attr",)`` holding
            :math:`q_i q_j`. (default: ``()``)
        edge_scalar_dim (int, optional): Total width of the edge scalars.
            (default: ``None``: inferred from the data)
        out_dim (int, optional): Output width, only for
            ``output="scalar"``. (default: ``1``)
        pool (str, optional): Per-graph pooling for ``output="scalar"``:
            ``"sum"`` (extensive targets such as energies) or ``"mean"``.
            (default: ``"sum"``)

    Example:

        A backbone of one's own: a linear map of the plain node features,
        whose width is known once the data has been seen.

        >>> from torch_geometric.data import Data
        >>> from torch_geometric_remul.roles import Roles
        >>> class Linear(BaseModel):
        ...     requires_edges = False
        ...     def build_layers(self):
        ...         self.lin = torch.nn.Linear(self.node_feature_dim,
        ...                                    self.out_channels)
        ...     def forward(self, data):
        ...         inputs = self.read_inputs(data)
        ...         return self.assemble_output(node_features(inputs),
        ...                                     inputs, self.lin)
        >>> data = Data(pos=torch.randn(4, 3), vel=torch.randn(4, 3),
        ...             charge=torch.randn(4, 2))
        >>> model = Linear(roles=Roles(vectors='vel'), scalars='charge')
        >>> model.is_initialized  # scalar_dim is inferred at the first call
        False
        >>> optimizer = torch.optim.Adam(model.parameters())  # lazy ones
        >>> model.initialize(data).scalar_dim, model.node_feature_dim
        (2, 8)
        >>> model.lin.weight.shape  # materialised in place
        torch.Size([3, 8])
        >>> model(data).shape  # "point": pos + a predicted displacement
        torch.Size([4, 3])
        >>> Linear(output='scalar', out_dim=2, scalars='charge',
        ...        scalar_dim=2)(data).shape  # per graph; built at once
        torch.Size([1, 2])
    """
    #: Whether :meth:`read_inputs` requires ``data.edge_index``.
    requires_edges: bool = True
    #: The output roles this backbone can return (a subset of
    #: :data:`~torch_geometric_remul.roles.OUTPUT_ROLES`).
    supported_outputs: Tuple[str, ...] = OUTPUT_ROLES

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if '__init__' in cls.__dict__:
            cls.__init__ = _builds_after_init(cls.__dict__['__init__'])

    def __init__(
        self,
        *,
        roles: Optional[Roles] = None,
        output: Optional[str] = None,
        points: KeysLike = None,
        vectors: KeysLike = None,
        scalars: KeysLike = (),
        scalar_dim: Optional[int] = None,
        edge_scalars: KeysLike = (),
        edge_scalar_dim: Optional[int] = None,
        out_dim: int = 1,
        pool: str = 'sum',
    ):
        super().__init__()
        owner = type(self).__name__
        roles = Roles.resolve(roles, owner, points=points, vectors=vectors,
                              output=output)
        if roles.multi_output:
            raise ValueError(
                f"{owner}: 'output' must be a single role: these backbones "
                f"return one tensor (got the mapping {roles.output!r}); "
                f"wrap the model in a module that returns the named "
                f"outputs to use a mapping")
        if roles.output not in self.supported_outputs:
            raise ValueError(
                f"{owner}: 'output' must be one of "
                f"{', '.join(self.supported_outputs)} (got "
                f"{roles.output!r}){self._unsupported_output_hint()}")
        if roles.pseudovectors:
            raise ValueError(
                f"{owner} reads no pseudovector inputs (got "
                f"pseudovectors={list(roles.pseudovectors)}); declare them "
                f"in the roles of the loss or transform only, or give the "
                f"model a Roles without them (roles.replace("
                f"pseudovectors=()))")
        if not roles.points:
            raise ValueError(f"{owner} needs a position attribute: "
                             f"'points' is empty")
        self.roles = roles
        self.scalars = check_keys(scalars, 'scalars')
        self.edge_scalars = check_keys(edge_scalars, 'edge_scalars')
        self.scalar_dim = self._width(scalar_dim, self.scalars, 'scalar')
        self.edge_scalar_dim = self._width(edge_scalar_dim,
                                           self.edge_scalars, 'edge_scalar')
        self.out_dim = check_int(out_dim, 'out_dim', 1)
        if self.output != 'scalar' and self.out_dim != 1:
            raise ValueError(f"'out_dim' is only used with output='scalar' "
                             f"(output={self.output!r} always gives "
                             f"[N, 3])")
        if pool not in POOLINGS:
            raise ValueError(f"'pool' must be one of {POOLINGS} "
                             f"(got {pool!r})")
        self.pool = pool
        check_disjoint(points=roles.points, vectors=roles.vectors,
                       scalars=self.scalars)
        # follows .to()/.double()/.cuda() while the layers are not built, so
        # that they are built where the model is
        self.register_buffer('_like', torch.empty(0), persistent=False)
        self._initialized = False
        self._inferred: Tuple[str, ...] = ()
        self._rng_state: Optional[Tensor] = None

    @staticmethod
    def _width(value, keys: Tuple[str, ...], name: str) -> Optional[int]:
        if value is None:
            return None if keys else 0
        width = check_int(value, f'{name}_dim', 0)
        if bool(keys) != (width > 0):
            raise ValueError(
                f"'{name}s' and '{name}_dim' disagree: {len(keys)} "
                f"attribute(s) {keys} declared with total width {width}; "
                f"declare attributes together with their total width (or "
                f"leave '{name}_dim' out to infer it from the data)")
        return width

    def _unsupported_output_hint(self) -> str:
        return ''

    # The declaration ########################################################

    @property
    def output(self) -> str:
        r"""The output role (``roles.output``)."""
        return self.roles.output

    @property
    def points(self) -> Tuple[str, ...]:
        r"""The declared points (``roles.points``); the model reads the
        first, :attr:`position_key`."""
        return self.roles.points

    @property
    def position_key(self) -> str:
        r"""The attribute holding the input positions (``roles.points[0]``).
        """
        return self.roles.points[0]

    @property
    def vectors(self) -> Tuple[str, ...]:
        r"""The declared node vectors (``roles.vectors``)."""
        return self.roles.vectors

    # Shapes ################################################################

    @property
    def num_vectors(self) -> int:
        return len(self.vectors)

    @property
    def node_feature_dim(self) -> int:
        r"""The width ``3 + 3 V + scalar_dim`` of the plain node features
        (positions, ``V`` vectors and the scalars); known once
        ``scalar_dim`` is (given, or inferred at initialisation)."""
        if self.scalar_dim is None:
            raise RuntimeError(
                f"{type(self).__name__}: 'scalar_dim' is not known yet (it "
                f"is inferred from the data at the first call); create the "
                f"layers that depend on it in build_layers(), or pass "
                f"scalar_dim")
        return 3 + 3 * self.num_vectors + self.scalar_dim

    @property
    def out_channels(self) -> int:
        r"""The width of the output rows (``3``, or ``out_dim`` for
        ``output="scalar"``)."""
        return self.out_dim if self.output == 'scalar' else 3

    def uses_edges(self) -> bool:
        r"""Whether ``forward`` reads ``data.edge_index``."""
        return self.requires_edges or bool(self.edge_scalars)

    # Lazy initialisation ###################################################

    def build_layers(self) -> None:
        r"""Creates the layers of the model. Called once the input widths
        (``scalar_dim``, ``edge_scalar_dim``) are known: right
        after construction when they are given, else at the first call or
        at :meth:`initialize`. Subclasses override it (the base class has
        no layers)."""

    @property
    def is_initialized(self) -> bool:
        r"""Whether the layers are built (the input widths are known)."""
        return self._initialized

    def initialize(self, data: Data) -> 'BaseModel':
        r"""Builds the layers from an example ``Data``/``Batch`` without
        training: the widths of the declared scalars and edge scalars are
        read from its shapes (no tensor value is read; ``edge_index`` is
        not needed). The lazy parameters are materialised in place, so an
        optimizer created before keeps working. On an initialised model,
        checks the widths of the data against the model's. Returns the
        model.

        Example:

            >>> from torch_geometric.data import Data
            >>> from torch_geometric_remul.nn.models import Transformer
            >>> data = Data(pos=torch.randn(3, 3), atom=torch.randn(3, 4))
            >>> model = Transformer(scalars='atom', hidden_channels=8,
            ...                     num_layers=1, heads=2)
            >>> optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            >>> any(isinstance(p, torch.nn.UninitializedParameter)
            ...     for p in model.parameters())  # not built yet
            True
            >>> model.initialize(data).scalar_dim
            4
            >>> any(isinstance(p, torch.nn.UninitializedParameter)
            ...     for p in model.parameters())
            False
        """
        owner, key, pos = self._positions(data)
        scalars = self._concat(data, self.scalars, 'scalar', pos.size(0),
                               'num_nodes', owner, pos)
        edge_width = 0
        if self.edge_scalars:
            # the number of edges, from edge_index when there is one
            edge_index = data.edge_index if 'edge_index' in data else None
            if isinstance(edge_index, Tensor) and edge_index.dim() == 2:
                rows = edge_index.size(1)
            else:
                rows = self._attr(data, self.edge_scalars[0], 'edge_scalars',
                                  owner, like=pos).size(0)
            edge_width = self._concat(data, self.edge_scalars, 'edge_scalar',
                                      rows, 'num_edges', owner, pos).size(1)
        self._build_for(scalars.size(1), edge_width)
        return self

    def _positions(self, data: Data) -> Tuple[str, str, Tensor]:
        r"""``(owner, key, pos)``: the model's name, the position key and
        the checked ``[num_nodes, 3]`` positions of ``data``."""
        owner = type(self).__name__
        check_data(data, owner)
        key = self.position_key
        pos = self._attr(data, key, 'points', owner)
        if pos.dim() != 2 or pos.size(1) != 3:
            raise ValueError(f"{owner}: 'data.{key}' (points) must have "
                             f"shape [num_nodes, 3] (got "
                             f"{list(pos.shape)})")
        return owner, key, pos

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

    def reset_parameters(self) -> None:
        r"""Draws new initial values for the parameters made by
        :meth:`build_layers` (from the global random state), in place: an
        optimizer created before keeps working.

        Raises:
            RuntimeError: The model is not initialised yet.
        """
        if not self._initialized:
            raise RuntimeError(self._not_initialized('reset_parameters()'))
        fresh = copy.copy(self)
        fresh._parameters = OrderedDict()
        fresh._buffers = OrderedDict()
        fresh._modules = OrderedDict()
        fresh.build_layers()
        self.load_state_dict(fresh.state_dict(), strict=False)

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

    def state_dict(self, *args, destination=None, prefix='',
                   keep_vars=False):
        r"""As :meth:`torch.nn.Module.state_dict`; before the layers are
        built, their lazy parameters and buffers are left out (they hold
        no values yet)."""
        if self._initialized or args:
            return super().state_dict(*args, destination=destination,
                                      prefix=prefix, keep_vars=keep_vars)
        out = super().state_dict(destination=destination, prefix=prefix,
                                 keep_vars=True)
        for key in [k for k in out if k.startswith(prefix)]:
            if is_lazy(out[key]):
                del out[key]
            elif not keep_vars:
                out[key] = out[key].detach()
        return out

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if not self._initialized and any(
                key.startswith(prefix) for key in state_dict):
            raise RuntimeError(self._not_initialized('load_state_dict()'))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # Input assembly ########################################################

    def _reference(self) -> Tensor:
        if not self._initialized:  # lazy parameters: no dtype of their own
            return self._like
        for p in self.parameters():
            if p.is_floating_point():
                return p
        return self._like

    def read_inputs(self, data: Data) -> ModelInputs:
        r"""Validates and assembles the declared attributes of ``data``;
        on an uninitialised model, infers the missing input widths from
        their shapes and builds the layers.

        Shapes, dtypes and devices are always checked. Checks of values
        (``edge_index`` within range and inside graphs, ``batch`` within
        range and consistent with ``ptr``, a plain ``Data`` holding one
        graph) read the device,
        so they run only in debug mode (:func:`torch_geometric_remul.debug`):
        a forward pass makes no host-device synchronisation. Outside it an
        out-of-range index reaches the layers (PyTorch's ``IndexError:
        index out of range``): one call under ``debug()`` names the tensor
        (``remul train`` runs its first steps so). Which nodes
        belong to which graph comes from
        :func:`torch_geometric_remul.layout.graph_layout`: a ``Batch``'s
        collation, and one graph for a plain ``Data``.

        Raises:
            TypeError: ``data`` is not a ``Data``/``Batch``, or an attribute
                has a wrong dtype (not floating point, or not the dtype of
                the positions/parameters).
            ValueError: A declared attribute (or ``edge_index`` for a model
                with edges) is missing or has a wrong shape or width;
                ``edge_index`` holds edges but there are no nodes; in debug
                mode, naming ``edge_index`` or ``batch``, an index out of
                range (or negative).
        """
        owner, key, pos = self._positions(data)
        ref = self._reference()
        if pos.dtype != ref.dtype:
            raise TypeError(f"{owner}: 'data.{key}' has dtype {pos.dtype} "
                            f"but the model parameters are {ref.dtype}; "
                            f"convert one of them (e.g. "
                            f"model.to({pos.dtype}))")
        N = pos.size(0)

        vectors = []
        for name in self.vectors:
            v = self._attr(data, name, 'vectors', owner, like=pos)
            if v.dim() != 2 or tuple(v.shape) != (N, 3):
                raise ValueError(f"{owner}: 'data.{name}' (vectors) must "
                                 f"have shape [{N}, 3] (got "
                                 f"{list(v.shape)})")
            vectors.append(v)
        vectors = (torch.stack(vectors, dim=1) if vectors else
                   pos.new_zeros(N, 0, 3))

        scalars = self._concat(data, self.scalars, 'scalar', N, 'num_nodes',
                               owner, pos)

        batch, ptr, num_graphs = self._layout(data, N, owner, pos.device)

        edge_index = edge_scalars = None
        if self.uses_edges():
            edge_index = self._edge_index(data, N, batch, owner)
            E = edge_index.size(1)
            edge_scalars = self._concat(data, self.edge_scalars,
                                        'edge_scalar', E, 'num_edges', owner,
                                        pos)
        self._build_for(scalars.size(1), None if edge_scalars is None
                        else edge_scalars.size(1))
        return ModelInputs(pos, vectors, scalars, edge_index, edge_scalars,
                           batch, ptr, num_graphs)

    @staticmethod
    def _attr(data: Data, key: str, role: str, owner: str,
              like: Optional[Tensor] = None) -> Tensor:
        value = data[key] if key in data else None
        if value is None:
            present = ', '.join(sorted(data.keys())) or 'none'
            raise ValueError(f"{owner}: attribute '{key}' (declared in "
                             f"'{role}') is missing from the data "
                             f"(attributes present: {present})")
        if not isinstance(value, Tensor):
            raise TypeError(f"{owner}: 'data.{key}' must be a tensor (got "
                            f"{type(value).__name__})")
        if not value.is_floating_point():
            raise TypeError(f"{owner}: 'data.{key}' ({role}) must have a "
                            f"floating-point dtype (got {value.dtype}); "
                            f"encode categories e.g. as one-hot floats")
        if like is not None:
            if value.dtype != like.dtype:
                raise TypeError(f"{owner}: 'data.{key}' has dtype "
                                f"{value.dtype} but the positions have "
                                f"{like.dtype}")
            if value.device != like.device:
                raise ValueError(f"{owner}: 'data.{key}' is on "
                                 f"{value.device} but the positions are on "
                                 f"{like.device}")
        return value

    def _concat(self, data: Data, keys: Tuple[str, ...], name: str,
                rows: int, rows_name: str, owner: str, pos: Tensor) -> Tensor:
        role = f'{name}s'
        width = getattr(self, f'{name}_dim')
        parts = []
        total = 0
        for key in keys:
            value = self._attr(data, key, role, owner, like=pos)
            if value.dim() == 1:
                value = value.unsqueeze(-1)
            if value.dim() != 2 or value.size(0) != rows:
                raise ValueError(f"{owner}: 'data.{key}' ({role}) must have "
                                 f"shape [{rows}] or [{rows}, k] "
                                 f"({rows_name}), got {list(value.shape)}")
            total += value.size(1)
            parts.append(value)
        if width is not None and total != width:
            widths = ', '.join(f"'{k}': {p.size(1)}"
                               for k, p in zip(keys, parts))
            how = (' (inferred from the data at the first call)'
                   if name in self._inferred else '')
            raise ValueError(f"{owner}: the concatenated {role} ({widths}) "
                             f"have total width {total}, expected "
                             f"{name}_dim={width}{how}")
        if not parts:
            return pos.new_zeros(rows, 0)
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    @staticmethod
    def _layout(data: Data, N: int, owner: str, device: torch.device
                ) -> Tuple[Tensor, Tensor, int]:
        batch = data.batch if 'batch' in data else None
        if batch is not None:
            if not isinstance(batch, Tensor) or batch.dtype not in (
                    torch.long, torch.int32):
                raise TypeError(f"{owner}: 'data.batch' must be an integer "
                                f"tensor (torch.long)")
            if batch.dim() != 1 or batch.numel() != N:
                raise ValueError(f"{owner}: 'data.batch' must have shape "
                                 f"[{N}] (got {list(batch.shape)})")
            if is_debug_enabled() and N > 0 and \
                    batch.device.type != 'meta' and isinstance(data, Batch):
                B = data.num_graphs
                lo, hi = int(batch.min()), int(batch.max())
                if lo < 0 or hi >= B:
                    raise ValueError(f"{owner}: 'data.batch' holds graph "
                                     f"indices in [{lo}, {hi}] but there "
                                     f"are {B} graph(s)")
        # ptr (or batch) of a Batch, checked against each other in debug
        # mode; a plain Data is one graph
        num_graphs, ptr = graph_layout(data)
        if ptr is not None:
            if batch is None:
                batch = ptr_to_batch(ptr, N)
            return batch, ptr, num_graphs
        if batch is not None and is_debug_enabled() and N > 0 and \
                batch.device.type != 'meta' and bool((batch != 0).any()):
            raise ValueError(f"{owner}: a plain Data is one graph, but its "
                             f"'batch' vector names several graphs; collate "
                             f"graphs with Batch.from_data_list")
        batch = torch.zeros(N, dtype=torch.long, device=device)
        ptr = torch.arange(2, device=device) * N
        return batch, ptr, 1

    @staticmethod
    def _edge_index(data: Data, N: int, batch: Tensor, owner: str) -> Tensor:
        edge_index = data.edge_index if 'edge_index' in data else None
        if edge_index is None:
            raise ValueError(
                f"{owner}: 'data.edge_index' is missing; build edges with "
                f"torch_geometric_remul.graph (fully_connected_graph, "
                f"radius_graph or knn_graph), e.g. data.edge_index = "
                f"fully_connected_graph(data)")
        if not isinstance(edge_index, Tensor) or edge_index.dtype not in (
                torch.long, torch.int32):
            raise TypeError(f"{owner}: 'data.edge_index' must be an integer "
                            f"tensor (torch.long)")
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"{owner}: 'data.edge_index' must have shape "
                             f"[2, num_edges] (got {list(edge_index.shape)})")
        if edge_index.device != batch.device:
            raise ValueError(f"{owner}: 'data.edge_index' is on "
                             f"{edge_index.device} but the positions are on "
                             f"{batch.device}")
        if N == 0 and edge_index.size(1) > 0:  # a shape: always checked
            raise ValueError(f"{owner}: 'data.edge_index' holds "
                             f"{edge_index.size(1)} edge(s) but there are no "
                             f"nodes")
        edge_index = edge_index.long()
        if is_debug_enabled() and edge_index.numel() > 0 and \
                edge_index.device.type != 'meta':
            lo, hi = int(edge_index.min()), int(edge_index.max())
            if lo < 0 or hi >= N:
                raise ValueError(f"{owner}: 'data.edge_index' holds node "
                                 f"indices in [{lo}, {hi}] but there are "
                                 f"{N} nodes")
            if bool((batch[edge_index[0]] != batch[edge_index[1]]).any()):
                raise ValueError(f"{owner}: 'data.edge_index' connects nodes "
                                 f"of different graphs")
        return edge_index

    # Output helpers ########################################################

    def pool_graphs(self, h: Tensor, inputs: ModelInputs) -> Tensor:
        r"""Per-graph ``sum`` or ``mean`` of node rows: ``[N, F] ->
        [B, F]``."""
        fn = segment_sum if self.pool == 'sum' else segment_mean
        return fn(h, ptr=inputs.ptr, num_graphs=inputs.num_graphs)

    def assemble_output(self, h: Tensor, inputs: ModelInputs,
                        head: Optional[Callable[[Tensor], Tensor]] = None
                        ) -> Tensor:
        r"""The declared output from node rows ``h`` ``[N, F]`` and a
        ``head`` (identity if ``None``): ``head(pool(h))`` ``[B, out_dim]``
        for ``"scalar"``; otherwise ``y = head(h)`` ``[N, 3]``, returned as
        ``pos + y`` for ``"point"`` and as ``y`` for ``"vector"`` and
        ``"pseudovector"``."""
        if self.output == 'scalar':
            h = self.pool_graphs(h, inputs)
            return h if head is None else head(h)
        y = h if head is None else head(h)
        return inputs.pos + y if self.output == 'point' else y

    def extra_repr(self) -> str:
        parts = [f'output={self.output!r}', f'points={self.points!r}']
        if self.vectors:
            parts.append(f'vectors={self.vectors!r}')
        if self.scalars:
            parts.append(f'scalars={self.scalars}, '
                         f'scalar_dim={self.scalar_dim}')
        if self.edge_scalars:
            parts.append(f'edge_scalars={self.edge_scalars}, '
                         f'edge_scalar_dim={self.edge_scalar_dim}')
        if self.output == 'scalar':
            parts.append(f'out_dim={self.out_dim}, pool={self.pool!r}')
        if not self._initialized:
            parts.append('uninitialized')
        return ', '.join(parts)


BaseModel.__init__ = _builds_after_init(BaseModel.__init__)


def mlp(in_channels: int, hidden: int, out_channels: int,
        num_layers: int = 2, act: type = torch.nn.SiLU,
        act_last: bool = False) -> torch.nn.Sequential:
    r"""A plain MLP ``in -> hidden -> ... -> out`` with ``num_layers``
    linear layers and ``act`` between them."""
    dims = [in_channels] + [hidden] * (num_layers - 1) + [out_channels]
    modules = []
    for i in range(num_layers):
        modules.append(torch.nn.Linear(dims[i], dims[i + 1]))
        if i < num_layers - 1 or act_last:
            modules.append(act())
    return torch.nn.Sequential(*modules)


def inverse_degree(dst: Tensor, num_nodes: int, like: Tensor) -> Tensor:
    r"""``1 / max(deg_i, 1)`` ``[num_nodes, 1]`` in the dtype of ``like``,
    for the in-degrees counted from the edge targets ``dst``: the
    normalisation of a mean over incoming edges. Counted by a scatter of
    ones into ``num_nodes`` slots (unlike :func:`torch.bincount`, no
    host-device synchronisation)."""
    ones = torch.ones(dst.numel(), dtype=like.dtype, device=dst.device)
    deg = like.new_zeros(num_nodes).index_add_(0, dst.long(), ones)
    return deg.clamp_(min=1).reciprocal().unsqueeze(-1)


def node_features(inputs: ModelInputs) -> Tensor:
    r"""The unconstrained node features ``[N, 3 + 3 V + scalar_dim]``:
    positions, vectors and scalars as plain numbers."""
    N, V = inputs.pos.size(0), inputs.vectors.size(1)
    return torch.cat([inputs.pos, inputs.vectors.reshape(N, 3 * V),
                      inputs.scalars], dim=-1)


__all__ = ['BaseModel', 'ModelInputs', 'POOLINGS', 'mlp', 'node_features',
           'inverse_degree']
