r"""Steerable E(3)-equivariant message passing in the style of SEGNN
(Brandstetter, Hesselink, van der Pol, Bekkers and Welling, "Geometric and
Physical Quantities Improve E(3) Equivariant Message Passing", ICLR 2022),
built on `e3nn <https://e3nn.org>`_.

e3nn is imported lazily, when a :class:`SEGNN` is built, so that
:mod:`torch_geometric_remul.nn.models` imports without it.
"""
import contextlib
from typing import Dict, Iterator, List, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.parameter import is_lazy
from torch_geometric.data import Data

from torch_geometric_remul._checks import check_int
from torch_geometric_remul.batching.segment import center
from torch_geometric_remul.nn.models.base import BaseModel, inverse_degree, mlp


def _e3nn():
    try:
        import e3nn  # noqa: F401
        from e3nn import o3
        from e3nn.nn import Gate
    except ImportError as e:  # pragma: no cover - depends on the env
        raise ImportError("SEGNN needs e3nn: pip install e3nn (or pip "
                          "install 'torch-geometric-remul[e3nn]')") from e
    return o3, Gate


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    saved = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


def balanced_irreps(hidden: int, lmax: int):
    r"""Hidden irreps of about ``hidden`` dimensions spread evenly over the
    degrees ``l = 0..lmax``: ``max(1, hidden // ((lmax + 1) (2l + 1)))``
    copies of degree ``l`` with parity :math:`(-1)^l` (the parities that
    positions and spherical harmonics produce).

    Example:

        >>> str(balanced_irreps(64, 1))
        '32x0e+10x1o'
    """
    o3, _ = _e3nn()
    parts = []
    for degree in range(lmax + 1):
        mul = max(1, hidden // ((lmax + 1) * (2 * degree + 1)))
        parts.append((mul, (degree, (-1)**degree)))
    return o3.Irreps(parts)


class SteerableLinear(torch.nn.Module):
    r"""An attribute-conditioned linear map
    :math:`W (h \otimes a) + b`: a fully connected tensor product of
    features ``h`` with steerable attributes ``a`` (spherical harmonics),
    plus a bias on the even scalar (``0e``) outputs. Optionally followed by
    a gated nonlinearity (SiLU on scalars, sigmoid gates on the
    ``l > 0`` outputs).

    Args:
        irreps_in: Irreps of ``h``.
        irreps_attr: Irreps of ``a``.
        irreps_out: Irreps of the output.
        gate (bool, optional): Apply the gated nonlinearity.
            (default: ``False``)
    """
    def __init__(self, irreps_in, irreps_attr, irreps_out,
                 gate: bool = False):
        super().__init__()
        o3, Gate = _e3nn()
        irreps_in = o3.Irreps(irreps_in)
        irreps_attr = o3.Irreps(irreps_attr)
        irreps_out = o3.Irreps(irreps_out)
        self.irreps_out = irreps_out
        self.gate = None
        tp_out = irreps_out
        if gate:
            scalars = o3.Irreps([(m, ir) for m, ir in irreps_out
                                 if ir.l == 0 and ir.p == 1])
            gated = o3.Irreps([(m, ir) for m, ir in irreps_out
                               if not (ir.l == 0 and ir.p == 1)])
            if any(ir.l == 0 for _, ir in gated):
                raise ValueError(f"gated irreps must not hold odd scalars "
                                 f"(0o): {irreps_out}")
            if gated.num_irreps > 0:
                gates = o3.Irreps(f'{gated.num_irreps}x0e')
                self.gate = Gate(scalars, [F.silu], gates, [torch.sigmoid],
                                 gated)
                tp_out = self.gate.irreps_in
            else:
                self.gate = _SiLU()
        self.tp = o3.FullyConnectedTensorProduct(irreps_in, irreps_attr,
                                                 tp_out)
        # bias on the 0e slots of the tensor-product output
        index: List[int] = []
        for (mul, ir), sl in zip(tp_out, tp_out.slices()):
            if ir.l == 0 and ir.p == 1:
                index.extend(range(sl.start, sl.stop))
        self.register_buffer('bias_index', torch.tensor(index,
                                                        dtype=torch.long),
                             persistent=False)
        self.bias = (torch.nn.Parameter(torch.zeros(len(index)))
                     if index else None)
        self.tp_dim = tp_out.dim

    def forward(self, h: Tensor, attr: Tensor) -> Tensor:
        out = self.tp(h, attr)
        if self.bias is not None:
            bias = out.new_zeros(self.tp_dim).index_copy(
                0, self.bias_index, self.bias)
            out = out + bias
        return self.gate(out) if self.gate is not None else out


class _SiLU(torch.nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)


class SEGNNLayer(torch.nn.Module):
    r"""One steerable message-passing layer:

    .. math::
        m_{ij} &= \phi_m\big(h_i \oplus h_j \oplus \|x_i - x_j\|^2 \oplus
                  s_{ij};\ a_{ij}\big) \\
        h_i' &= h_i + \phi_u\Big(h_i \oplus \frac{1}{|\mathcal N(i)|}
                \sum_{j \to i} m_{ij};\ a_i\Big)

    where :math:`\phi_m` and :math:`\phi_u` are two
    :class:`SteerableLinear` maps each (gated, then gated for
    :math:`\phi_m` / linear for :math:`\phi_u`), conditioned on the edge
    attributes :math:`a_{ij} = Y(x_i - x_j)` and node attributes
    :math:`a_i` (mean of :math:`a_{ij}` over incoming edges).

    Args:
        irreps_hidden: Irreps of :math:`h`.
        irreps_attr: Irreps of the attributes (spherical harmonics).
        edge_dim (int, optional): Number of edge scalars :math:`s_{ij}`.
            (default: ``0``)

    Its ``forward(h, edge_index, edge_attr, node_attr, edge_scalars,
    inv_deg)`` takes the features ``h``, the edges, the attributes
    :math:`a_{ij}` and :math:`a_i`, the edge scalars (squared length first,
    then :math:`s_{ij}`) and the inverse in-degrees ``[N, 1]``, and returns
    the new features.

    Example:

        >>> from e3nn import o3
        >>> layer = SEGNNLayer('8x0e+4x1o', '1x0e+1x1o')
        >>> pos = torch.randn(4, 3)
        >>> edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])  # a ring
        >>> rel = pos[edge_index[1]] - pos[edge_index[0]]
        >>> edge_attr = o3.spherical_harmonics('1x0e+1x1o', rel,
        ...                                    normalize=True)
        >>> node_attr = edge_attr[[3, 0, 1, 2]]  # one incoming edge each
        >>> h = torch.randn(4, 8 + 4 * 3)
        >>> out = layer(h, edge_index, edge_attr, node_attr,
        ...             (rel * rel).sum(-1, keepdim=True), torch.ones(4, 1))
        >>> out.shape
        torch.Size([4, 20])
    """
    def __init__(self, irreps_hidden, irreps_attr, edge_dim: int = 0):
        super().__init__()
        o3, _ = _e3nn()
        irreps_hidden = o3.Irreps(irreps_hidden)
        msg_in = irreps_hidden + irreps_hidden + o3.Irreps(
            f'{1 + edge_dim}x0e')
        self.message1 = SteerableLinear(msg_in, irreps_attr, irreps_hidden,
                                        gate=True)
        self.message2 = SteerableLinear(irreps_hidden, irreps_attr,
                                        irreps_hidden, gate=True)
        self.update1 = SteerableLinear(irreps_hidden + irreps_hidden,
                                       irreps_attr, irreps_hidden, gate=True)
        self.update2 = SteerableLinear(irreps_hidden, irreps_attr,
                                       irreps_hidden)

    def forward(self, h: Tensor, edge_index: Tensor, edge_attr: Tensor,
                node_attr: Tensor, edge_scalars: Tensor,
                inv_deg: Tensor) -> Tensor:
        src, dst = edge_index
        m = torch.cat([h.index_select(0, dst), h.index_select(0, src),
                       edge_scalars], dim=-1)
        m = self.message2(self.message1(m, edge_attr), edge_attr)
        agg = h.new_zeros(h.size(0), m.size(1)).index_add(0, dst, m) * inv_deg
        u = self.update1(torch.cat([h, agg], dim=-1), node_attr)
        return h + self.update2(u, node_attr)


class SEGNN(BaseModel):
    r"""A steerable E(3)-equivariant GNN in the style of SEGNN, exactly
    equivariant to rotations, reflections and translations of each graph.

    Features are direct sums of irreducible representations of O(3)
    (:class:`e3nn.o3.Irreps`). Each node's input is: the declared scalars
    and the norms :math:`\|v_k\|` as ``0e``, the declared vectors and the
    position relative to its graph's centroid as ``1o``. Edge attributes
    are the spherical harmonics :math:`Y^{(l \le l_{attr})}(x_i - x_j)`
    (``o3.spherical_harmonics``, normalised directions); node attributes
    their mean over incoming edges (with the ``l = 0`` entry set to 1).
    All maps are ``o3.FullyConnectedTensorProduct`` of features with
    attributes, with gated nonlinearities (``e3nn.nn.Gate``). Squared edge
    lengths and the declared edge scalars enter the messages as ``0e``.

    Outputs: ``"point"`` the input position plus a predicted ``1o``
    displacement, ``"vector"`` a ``1o`` vector, ``"pseudovector"`` a ``1e``
    vector (:math:`w \mapsto \det(R) R w`, e.g. from the cross products
    of ``1o`` features with ``1o`` attributes), ``"scalar"``
    :math:`\mathrm{MLP}(\mathrm{pool}(\cdot))` of ``0e`` node features.

    Hidden irreps: ``hidden_channels`` is either an irreps string (e.g.
    ``"32x0e+10x1o"``) or an int spread evenly over degrees
    ``0..lmax_hidden`` by :func:`balanced_irreps`; the default
    ``hidden_channels=64, lmax_hidden=1`` gives ``32x0e+10x1o`` (62
    dimensions) with
    attributes ``1x0e+1x1o`` (``lmax_attr=1``), close to SEGNN's N-body
    setting (64 features, ``l <= 1``), with 4 layers.

    Args:
        hidden_channels (int or str, optional): Hidden irreps or their size.
            (default: ``64``)
        num_layers (int, optional): Number of message-passing layers.
            (default: ``4``)
        lmax_hidden (int, optional): Highest degree of the hidden irreps
            when ``hidden_channels`` is an int. (default: ``1``)
        lmax_attr (int, optional): Highest degree of the spherical-harmonic
            attributes. (default: ``1``)
        **kwargs: The input/output declaration of
            :class:`~torch_geometric_remul.nn.models.base.BaseModel`.

    Example:

        >>> from torch_geometric.data import Data
        >>> from torch_geometric_remul.graph import fully_connected_graph
        >>> data = Data(pos=torch.randn(4, 3), vel=torch.randn(4, 3))
        >>> data.edge_index = fully_connected_graph(data)
        >>> model = SEGNN(vectors=('vel',), hidden_channels='8x0e+4x1o',
        ...               num_layers=1)
        >>> model(data).shape
        torch.Size([4, 3])
    """
    def __init__(self, *, hidden_channels: Union[int, str] = 64,
                 num_layers: int = 4, lmax_hidden: int = 1,
                 lmax_attr: int = 1, **kwargs):
        super().__init__(**kwargs)
        o3, _ = _e3nn()
        self.num_layers = check_int(num_layers, 'num_layers', 1)
        self.lmax_hidden = check_int(lmax_hidden, 'lmax_hidden', 0)
        self.lmax_attr = check_int(lmax_attr, 'lmax_attr', 0)
        if isinstance(hidden_channels, str):
            try:
                irreps_hidden = o3.Irreps(hidden_channels)
            except (ValueError, AssertionError) as e:
                raise ValueError(f"'hidden_channels' is not a valid irreps "
                                 f"string: {hidden_channels!r} ({e})"
                                 ) from None
        else:
            irreps_hidden = balanced_irreps(
                check_int(hidden_channels, 'hidden_channels', 1),
                self.lmax_hidden)
        self.num_scalars = sum(m for m, ir in irreps_hidden
                               if ir.l == 0 and ir.p == 1)
        if self.num_scalars == 0:
            raise ValueError(f"'hidden_channels' needs even scalars (0e) "
                             f"(got {irreps_hidden})")
        self.irreps_hidden = irreps_hidden
        self.irreps_attr = o3.Irreps.spherical_harmonics(self.lmax_attr)
        self.irreps_out = {'point': o3.Irreps('1x1o'),
                           'vector': o3.Irreps('1x1o'),
                           'pseudovector': o3.Irreps('1x1e'),
                           'scalar': o3.Irreps(f'{self.num_scalars}x0e')
                           }[self.output]
        target = self.irreps_out[0].ir
        if not any(target in ir1 * ir2 for _, ir1 in irreps_hidden
                   for _, ir2 in self.irreps_attr):
            raise ValueError(
                f"SEGNN cannot give a {self.output} output ({target}): no "
                f"product of the hidden irreps {irreps_hidden} with the "
                f"attributes {self.irreps_attr} contains it; use hidden "
                f"irreps with 1o and lmax_attr >= 1")
        self._exact_buffers: Dict[str, Tensor] = {}
        self.register_load_state_dict_post_hook(
            lambda module, _: module._restore_exact_buffers())

    def build_layers(self) -> None:
        dtype = torch.get_default_dtype()
        # e3nn computes its Clebsch-Gordan buffers in the default dtype:
        # build them in float64 and keep exact copies, so that the model is
        # equivariant to float64 precision after .double() (see _apply)
        with _default_dtype(torch.float64):
            self._build_float64()
        self._exact_buffers = {
            name: buf.detach().clone()
            for name, buf in self.named_buffers()
            if buf.is_floating_point() and name != '_like'
        }
        self.to(dtype)

    def _build_float64(self) -> None:
        o3, _ = _e3nn()
        irreps_hidden = self.irreps_hidden
        num_inv = self.scalar_dim + self.num_vectors
        irreps_in = o3.Irreps(f'{self.num_vectors + 1}x1o')
        if num_inv > 0:
            irreps_in = o3.Irreps(f'{num_inv}x0e') + irreps_in
        self.irreps_in = irreps_in
        self.embed = SteerableLinear(irreps_in, self.irreps_attr,
                                     irreps_hidden)
        self.convs = torch.nn.ModuleList(
            SEGNNLayer(irreps_hidden, self.irreps_attr, self.edge_scalar_dim)
            for _ in range(self.num_layers))
        self.pre_head = SteerableLinear(irreps_hidden, self.irreps_attr,
                                        irreps_hidden, gate=True)
        self.readout = SteerableLinear(irreps_hidden, self.irreps_attr,
                                       self.irreps_out)
        if self.output == 'scalar':
            self.head = mlp(self.num_scalars, self.num_scalars, self.out_dim,
                            2)
        else:
            self.head = None
            # start with small displacements (as EGNN's coordinate MLP):
            # the component-normalised tensor products otherwise predict
            # displacements of order 10 at initialisation
            with torch.no_grad():
                self.readout.tp.weight.mul_(1e-2)

    def _restore_exact_buffers(self) -> None:
        exact = getattr(self, '_exact_buffers', None)
        if not exact:
            return
        with torch.no_grad():
            for name, buf in self.named_buffers():
                value = exact.get(name)
                # (lazy buffers of a model whose widths are not inferred
                # yet hold no values)
                if value is not None and not is_lazy(buf) and \
                        buf.is_floating_point():
                    buf.copy_(value)

    def _apply(self, fn, recurse=True):
        out = super()._apply(fn, recurse)
        self._restore_exact_buffers()
        return out

    def _spherical_harmonics(self, vectors: Tensor) -> Tensor:
        o3, _ = _e3nn()
        return o3.spherical_harmonics(self.irreps_attr, vectors,
                                      normalize=True,
                                      normalization='component')

    def forward(self, data: Data) -> Tensor:
        r"""Returns ``[N, 3]`` (``"point"``/``"vector"``) or
        ``[B, out_dim]`` (``"scalar"``)."""
        inputs = self.read_inputs(data)
        pos, vectors = inputs.pos, inputs.vectors
        N = pos.size(0)
        src, dst = inputs.edge_index
        rel = pos.index_select(0, dst) - pos.index_select(0, src)
        edge_attr = self._spherical_harmonics(rel)
        inv_deg = inverse_degree(dst, N, pos)
        node_attr = pos.new_zeros(N, edge_attr.size(1)).index_add(
            0, dst, edge_attr) * inv_deg
        node_attr = torch.cat([torch.ones_like(node_attr[:, :1]),
                               node_attr[:, 1:]], dim=-1)
        edge_scalars = torch.cat([(rel * rel).sum(-1, keepdim=True),
                                  inputs.edge_scalars], dim=-1)

        centred, _ = center(pos, ptr=inputs.ptr,
                            num_graphs=inputs.num_graphs)
        parts: List[Tensor] = []
        if self.scalar_dim + self.num_vectors > 0:
            parts += [inputs.scalars, vectors.norm(dim=-1)]
        parts += [vectors.reshape(N, 3 * self.num_vectors), centred]
        h = self.embed(torch.cat(parts, dim=-1), node_attr)

        for conv in self.convs:
            h = conv(h, inputs.edge_index, edge_attr, node_attr,
                     edge_scalars, inv_deg)
        h = self.pre_head(h, node_attr)
        # node outputs have no head (self.head is None): y is the readout
        return self.assemble_output(self.readout(h, node_attr), inputs,
                                    self.head)

    def extra_repr(self) -> str:
        return (f'hidden_channels={self.irreps_hidden}, '
                f'attr={self.irreps_attr}, '
                f'num_layers={self.num_layers}, ' + super().extra_repr())


__all__ = ['SEGNN', 'SEGNNLayer', 'SteerableLinear', 'balanced_irreps']
