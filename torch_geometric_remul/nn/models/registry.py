r"""Building any backbone by name."""
from typing import Dict, List, Type

from torch_geometric_remul._checks import registry_entry
from torch_geometric_remul.nn.models.base import BaseModel
from torch_geometric_remul.nn.models.egnn import EGNN
from torch_geometric_remul.nn.models.gnn import GNN
from torch_geometric_remul.nn.models.mlp import MLP
from torch_geometric_remul.nn.models.segnn import SEGNN
from torch_geometric_remul.nn.models.transformer import Transformer

#: Model name -> class. Unconstrained models first, then the exactly
#: equivariant baselines.
MODELS: Dict[str, Type[BaseModel]] = {
    'mlp': MLP,
    'gnn': GNN,
    'transformer': Transformer,
    'egnn': EGNN,
    'segnn': SEGNN,
}


def available_models() -> List[str]:
    r"""The names understood by :func:`build_model`.

    Example:

        >>> available_models()
        ['mlp', 'gnn', 'transformer', 'egnn', 'segnn']
    """
    return list(MODELS)


def build_model(name: str, **kwargs) -> BaseModel:
    r"""Builds the backbone called ``name`` (case-insensitive) with the
    keyword arguments of its constructor: the shared declaration ``roles``
    (or its shortcuts ``output``, ``points``, ``vectors``), ``scalars``,
    ``edge_scalars`` (their widths ``scalar_dim``/``edge_scalar_dim`` are
    inferred from the data unless given), ``out_dim``, ``pool``, plus
    ``hidden_channels``, ``num_layers`` and model-specific ones
    (``num_nodes`` for ``"mlp"``).

    Args:
        name (str): One of :func:`available_models`.
        **kwargs: Constructor arguments.

    Example:

        >>> from torch_geometric_remul.roles import Roles
        >>> roles = Roles(vectors='vel', output='point')  # as for the loss
        >>> model = build_model('egnn', roles=roles, hidden_channels=8,
        ...                     num_layers=1)
        >>> type(model).__name__, model.vectors
        ('EGNN', ('vel',))
    """
    return registry_entry(MODELS, name, 'model')(**kwargs)


__all__ = ['MODELS', 'available_models', 'build_model']
