r"""Backbones behind one interface, ``model(data) -> Tensor``.

Unconstrained: :class:`MLP`, :class:`GNN`, :class:`Transformer`. Exactly
E(3)-equivariant: :class:`EGNN` and :class:`SEGNN` (needs e3nn, imported
only when a SEGNN is built). All take the same input/output declaration
(a :class:`~torch_geometric_remul.roles.Roles`, or its ``points``,
``vectors`` and ``output`` shortcuts, plus the invariant ``scalars`` and
``edge_scalars``, whose widths are inferred from the data; see
:class:`~torch_geometric_remul.nn.models.base.BaseModel`) and can be built
by name with :func:`build_model`.
"""
from .base import BaseModel, ModelInputs
from .egnn import EGNN, EGNNLayer
from .gnn import GNN, GNNLayer
from .mlp import MLP
from .pair_linear import PairLinear
from .registry import MODELS, available_models, build_model
from .segnn import SEGNN, SEGNNLayer
from .transformer import Transformer, TransformerBlock

__all__ = [
    'BaseModel',
    'ModelInputs',
    'PairLinear',
    'MLP',
    'GNN',
    'GNNLayer',
    'Transformer',
    'TransformerBlock',
    'EGNN',
    'EGNNLayer',
    'SEGNN',
    'SEGNNLayer',
    'MODELS',
    'available_models',
    'build_model',
]
