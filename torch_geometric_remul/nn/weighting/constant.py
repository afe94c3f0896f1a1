from typing import Tuple

from torch_geometric_remul.nn.weighting.base import Weighting, check_weight


class Constant(Weighting):
    r"""Fixed weights :math:`\alpha` and :math:`\beta` (the paper's constant
    penalty). ``Constant(0.0, 1.0)`` is plain data augmentation. The weights
    are Python floats: using them reads nothing from the device.

    Args:
        alpha (float, optional): Weight of the task loss, finite and
            :math:`\ge 0`. (default: ``1.0``)
        beta (float, optional): Weight of the equivariance loss, finite and
            :math:`\ge 0`. (default: ``1.0``)

    Example:

        >>> Constant(1.0, 10.0).weights()
        (1.0, 10.0)
    """
    def __init__(self, alpha: float = 1.0, beta: float = 1.0):
        super().__init__()
        self.alpha = check_weight(alpha, 'alpha')
        self.beta = check_weight(beta, 'beta')

    def weights(self) -> Tuple[float, float]:
        return self.alpha, self.beta
