r"""Backbones behind one interface, ``model(data) -> Tensor``.

Unconstrained: :class:`MLP`, :class:`GNN`, :class:`Transformer`. Exactly
E(3)-equivariant: :class:`EGNN` and :class:`SEGNN` (needs e3nn, imported
only when a SEGNN is built). All take the same input/output declaration
(see :class:`~torch_geometric_remul.nn.models.base.BaseModel`) and can be
built by name with :func:`build_model`.
"""
from .base import OUTPUTS, BaseModel, ModelInputs
from .pair_linear import PairLinear
from .mlp import MLP
from .gnn import GNN, GNNLayer
from .transformer import Transformer, TransformerBlock
from .egnn import EGNN, EGNNLayer
from .segnn import SEGNN, SEGNNLayer
from .registry import MODELS, available_models, build_model

__all__ = [
    'BaseModel',
    'ModelInputs',
    'OUTPUTS',
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
