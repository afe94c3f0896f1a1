r"""The shared model interface: declared inputs, their validation and
assembly, output kinds and per-graph pooling.

Every backbone of :mod:`torch_geometric_remul.nn.models` derives from
:class:`BaseModel`, which reads the declared attributes of a PyG
``Data``/``Batch`` into one :class:`ModelInputs` record, so that no model
repeats the checks.
"""
import numbers
from typing import Callable, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from torch_geometric_remul._checks import check_disjoint, check_keys
from torch_geometric_remul.debug import is_debug_enabled
from torch_geometric_remul.group.segment import (batch_to_ptr, ptr_to_batch,
                                                 segment_mean, segment_sum)
from torch_geometric_remul.layout import graph_layout

#: The output kinds: ``"point"`` (``[N, 3]``, input position plus a
#: predicted displacement), ``"vector"`` (``[N, 3]``) and ``"scalar"``
#: (graph-level ``[B, out_dim]``).
OUTPUTS = ('point', 'vector', 'scalar')
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
        >>> model = GNN(vectors=('vel',), scalars=('charge',), scalar_dim=1)
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


def _int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"'{name}' must be an int (got "
                        f"{type(value).__name__})")
    if value < minimum:
        raise ValueError(f"'{name}' must be >= {minimum} (got {value})")
    return int(value)


class BaseModel(torch.nn.Module):
    r"""Base class of the REMUL backbones: ``model(data) -> Tensor``.

    Subclasses call :meth:`read_inputs` at the start of ``forward``
    and build their output from the returned :class:`ModelInputs`.

    Args:
        output (str, optional): ``"point"`` (node-level ``[N, 3]``: the
            input position plus a predicted displacement), ``"vector"``
            (node-level ``[N, 3]``) or ``"scalar"`` (graph-level
            ``[B, out_dim]`` from per-graph pooling). (default: ``"point"``)
        points (str, optional): The input position attribute ``[N, 3]``.
            (default: ``"pos"``)
        vectors (str or sequence of str, optional): Node vector attributes
            ``[N, 3]`` such as ``("vel",)``. (default: ``()``)
        scalars (str or sequence of str, optional): Node scalar attributes,
            each ``[N]`` or ``[N, k]``, concatenated. (default: ``()``)
        scalar_dim (int, optional): Total width of the concatenated node
            scalars. (default: ``0``)
        edge_scalars (str or sequence of str, optional): Edge attributes,
            each ``[E]`` or ``[E, k]``, e.g. ``("edge_attr",)`` holding
            :math:`q_i q_j`. (default: ``()``)
        edge_scalar_dim (int, optional): Total width of the edge scalars.
            (default: ``0``)
        out_dim (int, optional): Output width, only for
            ``output="scalar"``. (default: ``1``)
        pool (str, optional): Per-graph pooling for ``output="scalar"``:
            ``"sum"`` (extensive targets such as energies) or ``"mean"``.
            (default: ``"sum"``)

    Example:

        A backbone of one's own: a linear map of the plain node features.

        >>> from torch_geometric.data import Data
        >>> class Linear(BaseModel):
        ...     requires_edges = False
        ...     def __init__(self, **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.lin = torch.nn.Linear(self.node_feature_dim,
        ...                                    self.out_channels)
        ...     def forward(self, data):
        ...         inputs = self.read_inputs(data)
        ...         return self.assemble_output(node_features(inputs),
        ...                                     inputs, self.lin)
        >>> model = Linear(vectors=('vel',))
        >>> data = Data(pos=torch.randn(4, 3), vel=torch.randn(4, 3))
        >>> model(data).shape  # "point": pos + a predicted displacement
        torch.Size([4, 3])
        >>> Linear(output='scalar', out_dim=2)(data).shape  # per graph
        torch.Size([1, 2])
    """
    #: Whether :meth:`read_inputs` requires ``data.edge_index``.
    requires_edges: bool = True

    def __init__(
        self,
        *,
        output: str = 'point',
        points: str = 'pos',
        vectors: KeysLike = (),
        scalars: KeysLike = (),
        scalar_dim: int = 0,
        edge_scalars: KeysLike = (),
        edge_scalar_dim: int = 0,
        out_dim: int = 1,
        pool: str = 'sum',
    ):
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"'output' must be one of {OUTPUTS} "
                             f"(got {output!r})")
        if not isinstance(points, str):
            raise TypeError(f"'points' must be the name of the position "
                            f"attribute (got {type(points).__name__})")
        self.output = output
        self.points = points
        self.vectors = check_keys(vectors, 'vectors')
        self.scalars = check_keys(scalars, 'scalars')
        self.edge_scalars = check_keys(edge_scalars, 'edge_scalars')
        self.scalar_dim = _int(scalar_dim, 'scalar_dim', 0)
        self.edge_scalar_dim = _int(edge_scalar_dim, 'edge_scalar_dim', 0)
        self.out_dim = _int(out_dim, 'out_dim', 1)
        if output != 'scalar' and self.out_dim != 1:
            raise ValueError(f"'out_dim' is only used with output='scalar' "
                             f"(output={output!r} always gives [N, 3])")
        if pool not in POOLINGS:
            raise ValueError(f"'pool' must be one of {POOLINGS} "
                             f"(got {pool!r})")
        self.pool = pool
        for keys, dim, name in ((self.scalars, self.scalar_dim, 'scalar'),
                                (self.edge_scalars, self.edge_scalar_dim,
                                 'edge_scalar')):
            if bool(keys) != (dim > 0):
                raise ValueError(
                    f"'{name}s' and '{name}_dim' disagree: {len(keys)} "
                    f"attribute(s) {keys} declared with total width {dim}; "
                    f"declare attributes together with their total width")
        check_disjoint(points=(points, ), vectors=self.vectors,
                       scalars=self.scalars)

    # Shapes ################################################################

    @property
    def num_vectors(self) -> int:
        return len(self.vectors)

    @property
    def node_feature_dim(self) -> int:
        r"""The width ``3 + 3 V + scalar_dim`` of the plain node features
        (positions, ``V`` vectors and the scalars)."""
        return 3 + 3 * self.num_vectors + self.scalar_dim

    @property
    def out_channels(self) -> int:
        r"""The width of the output rows (``3``, or ``out_dim`` for
        ``output="scalar"``)."""
        return self.out_dim if self.output == 'scalar' else 3

    def uses_edges(self) -> bool:
        r"""Whether ``forward`` reads ``data.edge_index``."""
        return self.requires_edges or bool(self.edge_scalars)

    # Input assembly ########################################################

    def _reference(self) -> Optional[Tensor]:
        for p in self.parameters():
            if p.is_floating_point():
                return p
        return None

    def read_inputs(self, data: Data) -> ModelInputs:
        r"""Validates and assembles the declared attributes of ``data``.

        Shapes, dtypes and devices are always checked. Checks of values
        (``edge_index`` within range and inside graphs, ``batch`` sorted,
        ``ptr`` consistent with ``batch``) read the device, so they run only
        in debug mode (:func:`torch_geometric_remul.debug`): a forward pass
        on a ``Batch`` makes no host-device synchronisation.

        Raises:
            TypeError: ``data`` is not a ``Data``/``Batch``, or an attribute
                has a wrong dtype (not floating point, or not the dtype of
                the positions/parameters).
            ValueError: A declared attribute (or ``edge_index`` for a model
                with edges) is missing or has a wrong shape or width.
        """
        owner = type(self).__name__
        if not isinstance(data, Data):
            raise TypeError(f"{owner} expects a torch_geometric.data.Data or "
                            f"Batch (got {type(data).__name__})")
        pos = self._attr(data, self.points, 'points', owner)
        if pos.dim() != 2 or pos.size(1) != 3:
            raise ValueError(f"{owner}: 'data.{self.points}' (points) must "
                             f"have shape [num_nodes, 3] (got "
                             f"{list(pos.shape)})")
        ref = self._reference()
        if ref is not None and pos.dtype != ref.dtype:
            raise TypeError(f"{owner}: 'data.{self.points}' has dtype "
                            f"{pos.dtype} but the model parameters are "
                            f"{ref.dtype}; convert one of them (e.g. "
                            f"model.to({pos.dtype}))")
        N = pos.size(0)

        vectors = []
        for key in self.vectors:
            v = self._attr(data, key, 'vectors', owner, like=pos)
            if v.dim() != 2 or tuple(v.shape) != (N, 3):
                raise ValueError(f"{owner}: 'data.{key}' (vectors) must have "
                                 f"shape [{N}, 3] (got {list(v.shape)})")
            vectors.append(v)
        vectors = (torch.stack(vectors, dim=1) if vectors else
                   pos.new_zeros(N, 0, 3))

        scalars = self._concat(data, self.scalars, self.scalar_dim, N,
                               'scalars', 'scalar_dim', 'num_nodes', owner,
                               pos)

        batch, ptr, num_graphs = self._layout(data, N, owner, pos.device)

        edge_index = edge_scalars = None
        if self.uses_edges():
            edge_index = self._edge_index(data, N, batch, owner)
            E = edge_index.size(1)
            edge_scalars = self._concat(data, self.edge_scalars,
                                        self.edge_scalar_dim, E,
                                        'edge_scalars', 'edge_scalar_dim',
                                        'num_edges', owner, pos)
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

    def _concat(self, data: Data, keys: Tuple[str, ...], width: int,
                rows: int, role: str, width_name: str, rows_name: str,
                owner: str, pos: Tensor) -> Tensor:
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
        if total != width:
            widths = ', '.join(f"'{k}': {p.size(1)}"
                               for k, p in zip(keys, parts))
            raise ValueError(f"{owner}: the concatenated {role} ({widths}) "
                             f"have total width {total}, expected "
                             f"{width_name}={width}")
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
        if isinstance(data, Batch):
            # ptr (or batch), checked against each other in debug mode
            num_graphs, ptr = graph_layout(data)
            if batch is None:
                batch = ptr_to_batch(ptr, N)
            return batch, ptr, num_graphs
        if batch is None:
            batch = torch.zeros(N, dtype=torch.long, device=device)
            ptr = torch.arange(2, device=device) * N
            return batch, ptr, 1
        # a plain Data carrying a batch vector: the number of graphs is
        # only known from its values (a read; a Batch needs none)
        num_graphs = int(batch.max()) + 1 if N > 0 else 1
        ptr = data.ptr if 'ptr' in data else None
        if ptr is None:
            if is_debug_enabled() and N > 1 and bool(
                    (batch[1:] < batch[:-1]).any()):
                raise ValueError(f"{owner}: 'data.batch' must be sorted "
                                 f"(nodes of a graph contiguous)")
            ptr = batch_to_ptr(batch, num_graphs)
        return batch, ptr, num_graphs

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
        ``pos + y`` for ``"point"`` and as ``y`` for ``"vector"``."""
        if self.output == 'scalar':
            h = self.pool_graphs(h, inputs)
            return h if head is None else head(h)
        y = h if head is None else head(h)
        return inputs.pos + y if self.output == 'point' else y

    def extra_repr(self) -> str:
        parts = [f'output={self.output!r}', f'points={self.points!r}']
        if self.vectors:
            parts.append(f'vectors={self.vectors}')
        if self.scalars:
            parts.append(f'scalars={self.scalars}, '
                         f'scalar_dim={self.scalar_dim}')
        if self.edge_scalars:
            parts.append(f'edge_scalars={self.edge_scalars}, '
                         f'edge_scalar_dim={self.edge_scalar_dim}')
        if self.output == 'scalar':
            parts.append(f'out_dim={self.out_dim}, pool={self.pool!r}')
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


__all__ = ['BaseModel', 'ModelInputs', 'OUTPUTS', 'mlp', 'node_features',
           'inverse_degree']
