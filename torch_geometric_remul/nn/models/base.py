r"""The shared model interface: declared inputs, their validation and
assembly, lazily inferred input widths, output roles and per-graph pooling.

Every backbone of :mod:`torch_geometric_remul.nn.models` derives from
:class:`BaseModel`, which reads the declared attributes of a PyG
``Data``/``Batch`` into one :class:`ModelInputs` record, so that no model
repeats the checks.
"""
import copy
from collections import OrderedDict
from typing import Callable, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.nn.parameter import (
    is_lazy,
)
from torch_geometric.data import Data

from torch_geometric_remul._checks import check_disjoint, check_int, check_keys
from torch_geometric_remul.batching.layout import (
    batch_layout,
    check_batch_vector,
    check_data,
    node_batch,
)
from torch_geometric_remul.batching.segment import segment_mean, segment_sum
from torch_geometric_remul.nn.models._inputs import (
    ModelInputs,
    concat_attrs,
    edge_rows,
    read_edge_index,
    read_positions,
    read_vectors,
)
from torch_geometric_remul.nn.models._lazy import LazyLayers
from torch_geometric_remul.roles import OUTPUT_ROLES, Roles

POOLINGS = ('sum', 'mean')
#: Where the head of a ``"scalar"`` output acts: on the pooled node rows
#: (``"graph"``) or on every node before pooling (``"node"``).
READOUTS = ('graph', 'node')
#: the buffer (a ``True`` scalar) a ``readout="node"`` model's state dict
#: holds, so that weights of the other readout are refused by name
READOUT_MARK = 'node_readout'

KeysLike = Union[str, Sequence[str], None]


class BaseModel(LazyLayers):
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
        readout (str, optional): Where the head of ``output="scalar"``
            acts: ``"graph"``, on the pooled node rows,
            :math:`\mathrm{head}(\mathrm{pool}(h))`; ``"node"``, on every
            node, then pooled, :math:`\mathrm{pool}(\mathrm{head}(h))`:
            per-node contributions, e.g. atomic energies summed into a
            molecule's energy, the usual readout of interatomic potentials.
            A ``"node"`` model's state dict holds a ``node_readout`` entry,
            and ``load_state_dict`` of weights made with the other
            readout (the same shapes, another function) raises
            :class:`ValueError`. (default: ``"graph"``)

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
        readout: str = 'graph',
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
        if readout not in READOUTS:
            raise ValueError(f"'readout' must be one of {READOUTS} "
                             f"(got {readout!r})")
        if self.output != 'scalar' and readout != 'graph':
            raise ValueError(f"'readout' is only used with output='scalar' "
                             f"(output={self.output!r} has one row per "
                             f"node already)")
        self.scalar_readout = readout
        self._mark_readout()
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
        owner = type(self).__name__
        check_data(data, owner)
        pos = read_positions(data, self.position_key, owner)
        scalars = self._concat(data, 'scalar', pos.size(0), 'num_nodes',
                               owner, pos)
        edge_width = 0
        if self.edge_scalars:
            rows = edge_rows(data, self.edge_scalars[0], owner, pos)
            edge_width = self._concat(data, 'edge_scalar', rows, 'num_edges',
                                      owner, pos).size(1)
        self._build_for(scalars.size(1), edge_width)
        return self

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
        fresh._mark_readout()
        fresh.build_layers()
        self.load_state_dict(fresh.state_dict(), strict=False)

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

    def _mark_readout(self) -> None:
        # marks the weights of a 'node' readout: those of a 'graph' readout
        # have the same shapes but compute another function
        if self.scalar_readout == 'node':
            self.register_buffer(READOUT_MARK,
                                 torch.ones((), dtype=torch.bool))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        # weights of the other scalar readout fit every shape: refuse them
        # by name instead of computing another function
        have = prefix + READOUT_MARK in state_dict
        if have and self.scalar_readout != 'node':
            raise ValueError(
                f"the weights are of a model with readout='node' "
                f"({prefix + READOUT_MARK!r}), this model has "
                f"readout={self.scalar_readout!r}: the shapes agree but "
                f"the two compute different functions")
        if not have and self.scalar_readout == 'node':
            raise ValueError(
                f"the weights have no {prefix + READOUT_MARK!r} mark: they "
                f"are of readout='graph' (the head on pooled features, as "
                f"rMD17 potentials before atomic energies), this model "
                f"readout='node': same shapes, another function; train it "
                f"again")
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

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
        :func:`torch_geometric_remul.batching.batch_layout`, resolved once
        per call: a ``Batch``'s collation, and one graph for a plain
        ``Data``.

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
        owner = type(self).__name__
        check_data(data, owner)
        key = self.position_key
        pos = read_positions(data, key, owner)
        ref = self._reference()
        if pos.dtype != ref.dtype:
            raise TypeError(f"{owner}: 'data.{key}' has dtype {pos.dtype} "
                            f"but the model parameters are {ref.dtype}; "
                            f"convert one of them (e.g. "
                            f"model.to({pos.dtype}))")
        N = pos.size(0)
        vectors = read_vectors(data, self.vectors, owner, pos)
        scalars = self._concat(data, 'scalar', N, 'num_nodes', owner, pos)
        batch = check_batch_vector(data, N, owner)
        # which node belongs to which graph: resolved once for the call
        layout = batch_layout(data)
        batch, ptr = node_batch(layout, batch, N, owner, pos.device)

        edge_index = edge_scalars = None
        if self.uses_edges():
            edge_index = read_edge_index(data, N, batch, owner)
            edge_scalars = self._concat(data, 'edge_scalar',
                                        edge_index.size(1), 'num_edges',
                                        owner, pos)
        self._build_for(scalars.size(1), None if edge_scalars is None
                        else edge_scalars.size(1))
        return ModelInputs(pos, vectors, scalars, edge_index, edge_scalars,
                           batch, ptr, layout.num_graphs)

    def _concat(self, data: Data, name: str, rows: int, rows_name: str,
                owner: str, pos: Tensor) -> Tensor:
        return concat_attrs(data, getattr(self, f'{name}s'), name, rows,
                            rows_name, owner, pos,
                            getattr(self, f'{name}_dim'),
                            inferred=name in self._inferred)

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
        for ``"scalar"`` (``pool(head(h))`` with ``readout="node"``);
        otherwise ``y = head(h)`` ``[N, 3]``, returned as ``pos + y`` for
        ``"point"`` and as ``y`` for ``"vector"`` and ``"pseudovector"``."""
        if self.output == 'scalar':
            if self.scalar_readout == 'node' and head is not None:
                return self.pool_graphs(head(h), inputs)
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
            if self.scalar_readout != 'graph':
                parts.append(f'readout={self.scalar_readout!r}')
        if not self._initialized:
            parts.append('uninitialized')
        return ', '.join(parts)



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
