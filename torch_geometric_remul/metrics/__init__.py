r"""Metrics of learned equivariance."""
from .equivariance import EquivarianceError, equivariance_error

__all__ = ['equivariance_error', 'EquivarianceError']
