from typing import Tuple

from torch_geometric_remul.nn.weighting.base import Weighting


class Constant(Weighting):
    r"""Fixed weights :math:`\alpha` and :math:`\beta` (the paper's constant
    penalty). ``Constant(0.0, 1.0)`` is plain data augmentation.

    Args:
        alpha (float, optional): Weight of the task loss. (default: ``1.0``)
        beta (float, optional): Weight of the equivariance loss.
            (default: ``1.0``)

    Example:

        >>> Constant(1.0, 10.0).weights()
        (1.0, 10.0)
    """
    def __init__(self, alpha: float = 1.0, beta: float = 1.0):
        super().__init__()
        for name, value in (('alpha', alpha), ('beta', beta)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"'{name}' must be a non-negative number "
                                 f"(got {value!r})")
        self.alpha = float(alpha)
        self.beta = float(beta)

    def weights(self) -> Tuple[float, float]:
        return self.alpha, self.beta
