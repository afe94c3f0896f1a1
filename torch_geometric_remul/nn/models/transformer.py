r"""An unconstrained Transformer over the nodes of each graph."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from torch_geometric_remul._checks import check_int
from torch_geometric_remul.batching import _collation as collation
from torch_geometric_remul.debug import is_debug_enabled
from torch_geometric_remul.nn.models.base import (
    BaseModel,
    ModelInputs,
    mlp,
    node_features,
)

ATTENTIONS = ('padded', 'block')


class TransformerBlock(torch.nn.Module):
    r"""A pre-LayerNorm Transformer block on padded token sets
    ``[S, L, width]``: multi-head self-attention under a mask (plus an
    optional additive per-head bias), then a feed-forward network, each
    with a residual connection.

    Args:
        width (int): Token width.
        heads (int): Number of attention heads (must divide ``width``).
        ffn_ratio (int, optional): Hidden width of the feed-forward network
            as a multiple of ``width``. (default: ``2``)

    Example:

        >>> block = TransformerBlock(16, heads=4)
        >>> x = torch.randn(2, 5, 16)
        >>> mask = torch.ones(2, 1, 5, 5, dtype=torch.bool)
        >>> block(x, mask).shape
        torch.Size([2, 5, 16])
    """
    def __init__(self, width: int, heads: int, ffn_ratio: int = 2):
        super().__init__()
        if width % heads != 0:
            raise ValueError(f"'hidden_channels' ({width}) must be "
                             f"divisible by 'heads' ({heads})")
        self.heads = heads
        self.norm1 = torch.nn.LayerNorm(width)
        self.qkv = torch.nn.Linear(width, 3 * width)
        self.proj = torch.nn.Linear(width, width)
        self.norm2 = torch.nn.LayerNorm(width)
        self.ffn = mlp(width, ffn_ratio * width, width, 2, act=torch.nn.GELU)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        r"""``mask``: boolean ``[S, 1, L, L]`` (``True`` = may attend) or a
        float additive mask ``[S, heads, L, L]`` (``-inf`` = may not)."""
        S, L, D = x.shape
        H = self.heads
        q, k, v = self.qkv(self.norm1(x)).view(S, L, 3, H, D // H).permute(
            2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(a.transpose(1, 2).reshape(S, L, D))
        return x + self.ffn(self.norm2(x))


class Transformer(BaseModel):
    r"""An unconstrained Transformer: every node is a token whose input is
    its position, declared vectors and scalars as plain numbers; attention
    is restricted to the nodes of the same graph.

    ``num_layers`` pre-LayerNorm blocks of ``heads``-head self-attention and a
    feed-forward network (``2 * hidden_channels`` wide). Declared edge
    scalars (for which ``data.edge_index`` is read) enter as a learned additive
    per-head attention bias on the (target ``i``, source ``j``) pairs of
    the edges ``j -> i``.
    Outputs: ``"point"`` :math:`x + \mathrm{MLP}(h)`, ``"vector"``
    :math:`\mathrm{MLP}(h)`, ``"scalar"`` :math:`\mathrm{MLP}(\mathrm{pool}
    (h))`. There is no positional encoding: apart from the coordinates in
    the features, the model is permutation equivariant.

    The defaults (``hidden_channels=128``, ``num_layers=4``, ``heads=8``) are
    sized for CPU runs; the REMUL paper used 10 blocks, 384 wide, 8 heads on
    the gravity task
    (``Transformer(hidden_channels=384, num_layers=10, heads=8)``).

    Attention masking (``attention=``): ``"padded"`` (default) pads each
    graph to the largest graph of the batch with
    :func:`torch_geometric.utils.to_dense_batch` and runs
    ``[B, heads, n_max, n_max]`` attention with a key-padding mask;
    ``"block"`` runs one ``[heads, N, N]`` attention over all ``N`` nodes of
    the batch with a block-diagonal mask. Both give the same output
    (tested). Padded attention costs :math:`O(B n_{max}^2)` instead of
    :math:`O(N^2) = O(B^2 n^2)`. Measured on 2 CPU cores (torch 2.13, float32
    forward of the default model, ``benchmarks/models.py``): 6.1 ms against
    33.5 ms at the N-body size (100 graphs x 5 nodes) and 16.1 ms against
    83.0 ms at the MD17 size (100 graphs x 21 nodes); with uneven sizes
    (100 graphs of 1-41 nodes) 30.7 ms against 82.5 ms. So ``"padded"`` is
    the default. ``"block"`` only wins when one large graph dominates a
    small batch (one graph of 200 nodes plus seven of 5: 3.6 ms against
    15.6 ms padded), where padding wastes most of the dense block.

    The padding size of ``"padded"`` is a shape, so it must be known on
    the host. With ``max_num_nodes`` given it is that number, and a forward
    pass reads nothing from the device; a graph with more nodes gets NaN
    outputs for its extra nodes (caught by the non-finite checks of a
    training loop; in debug mode, :func:`torch_geometric_remul.debug`, a
    :class:`ValueError`). Otherwise it is the largest graph of the batch,
    read from the ``Batch``'s collation metadata, which PyG keeps on the
    host (no wait for the device on a GPU); only a ``Batch`` built by hand
    without that metadata makes the model read ``ptr`` from the device.

    Args:
        hidden_channels (int, optional): Token width. (default: ``128``)
        num_layers (int, optional): Number of Transformer blocks.
            (default: ``4``)
        heads (int, optional): Attention heads. (default: ``8``)
        attention (str, optional): ``"padded"`` or ``"block"``, see above.
            (default: ``"padded"``)
        max_num_nodes (int, optional): Padding size of ``"padded"``
            attention, the largest number of nodes a graph may have (e.g.
            5 for N-body); see above. (default: ``None``: per batch)
        **kwargs: The input/output declaration of
            :class:`~torch_geometric_remul.nn.models.base.BaseModel`.

    Example:

        >>> from torch_geometric.data import Batch, Data
        >>> graphs = [Data(pos=torch.randn(n, 3)) for n in (3, 5)]
        >>> model = Transformer(hidden_channels=16, num_layers=1, heads=2)
        >>> model(Batch.from_data_list(graphs)).shape
        torch.Size([8, 3])
    """
    requires_edges = False

    def __init__(self, *, hidden_channels: int = 128, num_layers: int = 4,
                 heads: int = 8,
                 attention: str = 'padded',
                 max_num_nodes: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        self.hidden_channels = check_int(hidden_channels, 'hidden_channels',
                                         1)
        self.num_layers = check_int(num_layers, 'num_layers', 1)
        self.heads = check_int(heads, 'heads', 1)
        if self.hidden_channels % self.heads != 0:
            raise ValueError(f"'hidden_channels' ({self.hidden_channels}) "
                             f"must be divisible by 'heads' ({self.heads})")
        if attention not in ATTENTIONS:
            raise ValueError(f"'attention' must be one of {ATTENTIONS} "
                             f"(got {attention!r})")
        self.attention = attention
        self.max_num_nodes = (None if max_num_nodes is None else
                              check_int(max_num_nodes, 'max_num_nodes', 1))

    def build_layers(self) -> None:
        self.embed = torch.nn.Linear(self.node_feature_dim,
                                     self.hidden_channels)
        self.blocks = torch.nn.ModuleList(
            TransformerBlock(self.hidden_channels, self.heads)
            for _ in range(self.num_layers))
        self.edge_bias = None
        if self.edge_scalar_dim > 0:
            self.edge_bias = torch.nn.Linear(self.edge_scalar_dim,
                                             self.heads * self.num_layers,
                                             bias=False)
        self.norm = torch.nn.LayerNorm(self.hidden_channels)
        self.head = mlp(self.hidden_channels, self.hidden_channels,
                        self.out_channels, 2)

    def forward(self, data: Data) -> Tensor:
        r"""Returns ``[N, 3]`` (``"point"``/``"vector"``) or
        ``[B, out_dim]`` (``"scalar"``)."""
        inputs = self.read_inputs(data)
        h = self.embed(node_features(inputs))
        if self.attention == 'padded':
            h = self._padded(h, inputs, self._padding_size(data, inputs))
        else:
            h = self._block(h, inputs)
        return self.assemble_output(self.norm(h), inputs, self.head)

    def _padding_size(self, data: Data, inputs: ModelInputs) -> int:
        r"""The number of token slots per graph for ``"padded"``."""
        N, B = inputs.pos.size(0), inputs.num_graphs
        if self.max_num_nodes is not None:
            return self.max_num_nodes
        if B == 1:
            return N
        # PyG's collation metadata lives in host memory: reading it makes
        # no device wait
        offsets = collation.host_offsets(data, self.position_key, B, N)
        if offsets is not None:
            return int((offsets[1:] - offsets[:-1]).max())
        # no (or stale) host-side metadata: read ptr on the device
        return int(inputs.ptr.diff().max()) if B > 0 else 0

    def _padded(self, h: Tensor, inputs: ModelInputs, n: int) -> Tensor:
        B, (N, D) = inputs.num_graphs, h.shape
        if N == 0 or n == 0:
            return h
        batch = inputs.batch.long()
        local = torch.arange(N, device=h.device) - inputs.ptr[batch]
        slot = batch * n + local
        if self.max_num_nodes is not None:
            # nodes beyond the padding go to a trash slot, read back as NaN
            fits = local < n
            if is_debug_enabled() and h.device.type != 'meta' and \
                    not bool(fits.all()):
                raise ValueError(
                    f"{type(self).__name__}: a graph has "
                    f"{int(inputs.ptr.diff().max())} nodes but "
                    f"'max_num_nodes' is {n}")
            slot = torch.where(fits, slot, B * n)
        x = h.new_zeros(B * n + 1, D).index_copy(0, slot, h)
        valid = torch.zeros(B * n + 1, dtype=torch.bool,
                            device=h.device).index_fill_(0, slot, True)
        x, valid = x[:B * n].view(B, n, D), valid[:B * n].view(B, n)
        # padded query rows attend to themselves, so no row is all-masked
        eye = torch.eye(n, dtype=torch.bool, device=h.device)
        mask = (valid[:, None, :] | eye).unsqueeze(1)  # [B, 1, n, n]
        biases = None
        if self.edge_bias is not None:
            src, dst = inputs.edge_index
            pair = (slot[dst] * n + local[src]).clamp(max=B * n * n)
            if self.max_num_nodes is not None:
                # an edge touching a node beyond the padding: trash slot
                pair = torch.where((local[src] < n) & (local[dst] < n),
                                   pair, B * n * n)
            biases = self._bias_slots(inputs.edge_scalars, pair,
                                      B * n * n + 1)[:B * n * n]
            biases = biases.view(B, n, n, self.num_layers, self.heads)
        for i, block in enumerate(self.blocks):
            x = block(x, self._mask(mask, biases, i))
        out = x.reshape(B * n, D)
        if self.max_num_nodes is not None:
            out = torch.cat([out, out.new_full((1, D), float('nan'))])
        return out.index_select(0, slot)

    def _block(self, h: Tensor, inputs: ModelInputs) -> Tensor:
        N = h.size(0)
        mask = (inputs.batch[:, None] == inputs.batch[None, :])
        mask = mask.view(1, 1, N, N)
        biases = None
        if self.edge_bias is not None:
            src, dst = inputs.edge_index
            biases = self._bias_slots(inputs.edge_scalars, dst * N + src,
                                      N * N)
            biases = biases.view(1, N, N, self.num_layers, self.heads)
        x = h.unsqueeze(0)
        for i, block in enumerate(self.blocks):
            x = block(x, self._mask(mask, biases, i))
        return x.squeeze(0)

    def _bias_slots(self, edge_scalars: Tensor, slot: Tensor,
                    size: int) -> Tensor:
        values = self.edge_bias(edge_scalars)  # [E, layers * heads]
        dense = values.new_zeros(size, values.size(1))
        return dense.index_add(0, slot, values)

    @staticmethod
    def _mask(mask: Tensor, biases: Optional[Tensor], i: int) -> Tensor:
        if biases is None:
            return mask
        bias = biases[..., i, :].permute(0, 3, 1, 2)  # [S, heads, L, L]
        return bias.masked_fill(~mask, float('-inf'))

    def extra_repr(self) -> str:
        extra = (f'max_num_nodes={self.max_num_nodes}, '
                 if self.max_num_nodes is not None else '')
        return (f'hidden_channels={self.hidden_channels}, '
                f'num_layers={self.num_layers}, '
                f'heads={self.heads}, attention={self.attention!r}, ' +
                extra + super().extra_repr())


__all__ = ['Transformer', 'TransformerBlock']
