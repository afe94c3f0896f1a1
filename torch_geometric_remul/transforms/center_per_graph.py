from typing import Optional

import torch
from torch_geometric.data import Data
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from torch_geometric_remul._checks import check_float, check_keys
from torch_geometric_remul._copy import shallow_copy
from torch_geometric_remul.batching.layout import batch_layout, row_layout
from torch_geometric_remul.batching.segment import segment_sum
from torch_geometric_remul.debug import is_debug_enabled
from torch_geometric_remul.group.rigid import RigidTransform
from torch_geometric_remul.transforms._roles import get_xyz
from torch_geometric_remul.typing import Keys


@functional_transform('center_per_graph')
class CenterPerGraph(BaseTransform):
    r"""Translates every graph so that its centroid lies at the origin
    (functional name: ``center_per_graph``).

    :class:`torch_geometric.transforms.Center` on a ``Batch`` subtracts the
    mean of the whole batch; this transform subtracts each graph's **own**
    centroid. The centroid is computed from the reference attribute (the
    first of ``points``) and the same translation is applied to every
    attribute in ``points`` (e.g. positions and a future-position target), so
    that their relation is preserved. Vectors are unaffected by translations
    and need not be declared.

    Args:
        points (str or [str], optional): Point attributes to translate; the
            first one defines the centroid. (default: ``"pos"``)
        weight (str, optional): Name of a node attribute (``[N]`` or
            ``[N, 1]``) used as weights, e.g. ``"mass"`` for the centre of
            mass. (default: ``None``, the plain mean)

    Example:

        >>> from torch_geometric.data import Batch, Data
        >>> batch = Batch.from_data_list([
        ...     Data(pos=torch.tensor([[0., 0., 0.], [2., 0., 0.]])),
        ...     Data(pos=torch.tensor([[5., 5., 5.]]))])
        >>> CenterPerGraph()(batch).pos
        tensor([[-1.,  0.,  0.],
                [ 1.,  0.,  0.],
                [ 0.,  0.,  0.]])
    """
    def __init__(self, points: Keys = ('pos', ),
                 weight: Optional[str] = None) -> None:
        self.points = check_keys(points, 'points')
        if not self.points:
            raise ValueError("CenterPerGraph needs at least one attribute in "
                             "'points'")
        if weight is not None and not isinstance(weight, str):
            raise TypeError(f"'weight' must be an attribute name (str), got "
                            f"{type(weight).__name__}")
        self.weight = weight

    def __call__(self, data: Data) -> Data:
        # BaseTransform's copy.copy, in a form torch.compile traces
        return self.forward(shallow_copy(data))

    def forward(self, data: Data) -> Data:
        owner = self.__class__.__name__
        layout = batch_layout(data, owner)
        num_graphs = layout.num_graphs
        ref_key = self.points[0]
        ref = get_xyz(data, ref_key, 'point', owner)
        values = {key: ref if key == ref_key else get_xyz(data, key, 'point',
                                                          owner)
                  for key in self.points}
        layouts = {key: row_layout(data, key, value, owner=owner,
                                   layout=layout)
                   for key, value in values.items()}
        ref_layout = layouts[ref_key]
        ptr, index = ref_layout.ptr, ref_layout.index
        if ptr is None and index is None:  # a single graph
            ptr = torch.tensor([0, ref.size(0)], device=ref.device)
        seg = dict(ptr=ptr, batch=index, num_graphs=num_graphs)

        total = segment_sum(ref, **seg)
        if ptr is not None:  # rows per graph, by arithmetic on the offsets
            counts = ptr.diff().unsqueeze(-1).to(ref.dtype)
        else:
            counts = segment_sum(ref.new_ones(ref.size(0), 1), **seg)
        norm = counts
        if self.weight is not None:
            w = self._weights(data, ref)
            total, norm = segment_sum(ref * w, **seg), segment_sum(w, **seg)
            if is_debug_enabled() and bool(((norm == 0) &
                                             (counts > 0)).any()):
                raise ValueError(
                    f"{owner}: a graph with nodes has total weight 0 in "
                    f"'data.{self.weight}': its weighted centre is undefined")
        # An empty graph has no centre (and no rows to move): shift it by 0.
        # A non-empty graph of total weight 0 has none either: its rows
        # become NaN rather than silently staying uncentred (debug mode
        # raises instead).
        centroid = (total / norm).masked_fill(counts == 0, 0.0)
        shift = RigidTransform(translation=-centroid)

        for key, value in values.items():
            layout = layouts[key]
            data[key] = shift.apply_points(value, batch=layout.index,
                                           ptr=layout.ptr)
        return data

    def _weights(self, data: Data, ref):
        owner = self.__class__.__name__
        w = getattr(data, self.weight, None) if self.weight in data else None
        if w is None:
            raise ValueError(f"{owner}: weight attribute '{self.weight}' is "
                             f"missing from the data")
        check_float(w, f'data.{self.weight}')
        if w.dim() == 1:
            w = w.unsqueeze(-1)
        if w.shape != (ref.size(0), 1):
            raise ValueError(f"{owner}: 'data.{self.weight}' must have shape "
                             f"[{ref.size(0)}] or [{ref.size(0)}, 1] (one "
                             f"weight per node), got {list(w.shape)}")
        if is_debug_enabled() and bool((w < 0).any()):
            raise ValueError(f"{owner}: 'data.{self.weight}' must be "
                             f"non-negative")
        return w.to(ref.dtype)

    def __repr__(self) -> str:
        args = [f'points={list(self.points)}']
        if self.weight is not None:
            args.append(f'weight={self.weight!r}')
        return f'{self.__class__.__name__}({", ".join(args)})'
