from typing import Optional, Sequence, Union

from torch_geometric.data import Data
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from torch_geometric_remul._checks import check_float
from torch_geometric_remul.group.rigid import RigidTransform
from torch_geometric_remul.group.segment import segment_sum
from torch_geometric_remul.transforms._roles import (as_key_tuple,
                                                     check_data, get_xyz,
                                                     graph_layout, rows_ptr)

Keys = Union[str, Sequence[str]]


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
        self.points = as_key_tuple(points, 'points')
        if not self.points:
            raise ValueError("CenterPerGraph needs at least one attribute in "
                             "'points'")
        if weight is not None and not isinstance(weight, str):
            raise TypeError(f"'weight' must be an attribute name (str), got "
                            f"{type(weight).__name__}")
        self.weight = weight

    def forward(self, data: Data) -> Data:
        owner = self.__class__.__name__
        check_data(data, owner)
        num_graphs, node_ptr = graph_layout(data)
        ref_key = self.points[0]
        ref = get_xyz(data, ref_key, 'point', owner)
        ref_ptr = rows_ptr(data, ref_key, ref.size(0), num_graphs, node_ptr,
                           owner)
        if ref_ptr is None:  # a single graph
            ref_ptr = ref.new_tensor([0, ref.size(0)]).long()

        if self.weight is None:
            total = segment_sum(ref, ptr=ref_ptr)
            norm = ref_ptr.diff().unsqueeze(-1).to(ref.dtype)
        else:
            w = self._weights(data, ref)
            total = segment_sum(ref * w, ptr=ref_ptr)
            norm = segment_sum(w, ptr=ref_ptr)
        centroid = total / norm.clamp(min=1e-30)
        shift = RigidTransform(translation=-centroid)

        for key in self.points:
            value = ref if key == ref_key else get_xyz(data, key, 'point',
                                                       owner)
            ptr = rows_ptr(data, key, value.size(0), num_graphs, node_ptr,
                           owner)
            if ptr is None:
                ptr = ref_ptr if value.size(0) == ref.size(0) else None
            data[key] = shift.apply_points(value, ptr=ptr)
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
        if bool((w < 0).any()):
            raise ValueError(f"{owner}: 'data.{self.weight}' must be "
                             f"non-negative")
        return w.to(ref.dtype)

    def __repr__(self) -> str:
        args = [f'points={list(self.points)}']
        if self.weight is not None:
            args.append(f'weight={self.weight!r}')
        return f'{self.__class__.__name__}({", ".join(args)})'
