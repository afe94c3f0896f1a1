r"""Building any weighting by name, as
:func:`~torch_geometric_remul.nn.models.build_model` builds models."""
from typing import Dict, List, Type

from torch_geometric_remul._checks import registry_entry
from torch_geometric_remul.nn.weighting.base import Weighting
from torch_geometric_remul.nn.weighting.constant import Constant
from torch_geometric_remul.nn.weighting.gradnorm import GradNorm
from torch_geometric_remul.nn.weighting.schedule import Schedule
from torch_geometric_remul.nn.weighting.target import TargetEquivariance

#: Weighting name -> class.
WEIGHTINGS: Dict[str, Type[Weighting]] = {
    'constant': Constant,
    'schedule': Schedule,
    'gradnorm': GradNorm,
    'target': TargetEquivariance,
}


def available_weightings() -> List[str]:
    r"""The names understood by :func:`build_weighting`.

    Example:

        >>> available_weightings()
        ['constant', 'schedule', 'gradnorm', 'target']
    """
    return list(WEIGHTINGS)


def build_weighting(name: str, **kwargs) -> Weighting:
    r"""Builds the weighting called ``name`` (case-insensitive) with the
    keyword arguments of its constructor.

    Args:
        name (str): One of :func:`available_weightings`.
        **kwargs: Constructor arguments (e.g. ``alpha``, ``beta``;
            ``shared_parameters`` for ``"gradnorm"``, ``epsilon`` for
            ``"target"``, ``beta_end`` and ``total_steps`` for
            ``"schedule"``).

    Example:

        >>> w = build_weighting('schedule', beta_end=2.0, total_steps=10)
        >>> type(w).__name__, w.total_steps
        ('Schedule', 10)
    """
    return registry_entry(WEIGHTINGS, name, 'weighting')(**kwargs)


__all__ = ['WEIGHTINGS', 'available_weightings', 'build_weighting']
