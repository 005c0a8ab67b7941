r"""Float fused modules for the 1-d and 3-d convolutions (as ``torch.ao.nn.intrinsic``):
``ConvReLU1d`` / ``ConvBn1d`` / ``ConvBnReLU1d`` and their 3-d twins, the same
containers as the 2-d ones of :mod:`qlearn.nn.intrinsic.modules.fused`, and
``BNReLU3d``, the 3-d ``BNReLU2d``.
"""
from ...modules.activation import ReLU
from ...modules.batchnorm import BatchNorm1d, BatchNorm3d
from ...modules.conv_nd import Conv1d, Conv3d
from .fused import _FusedModule

__all__ = ["ConvReLU1d", "ConvBn1d", "ConvBnReLU1d", "ConvReLU3d", "ConvBn3d",
           "ConvBnReLU3d", "BNReLU3d"]


class ConvReLU1d(_FusedModule):
    r""":math:`y = \max(\operatorname{conv1d}(x), 0)`: a ``Conv1d`` then a ``ReLU``.

    >>> import numpy as np
    >>> from qlearn import nn
    >>> import qlearn.nn.intrinsic as nni
    >>> m = nni.ConvReLU1d(nn.Conv1d(1, 2, 3), nn.ReLU())
    >>> bool((m(np.ones((1, 1, 5))).numpy() >= 0).all())
    True
    """

    _TYPES = (Conv1d, ReLU)

    def __init__(self, conv, relu):
        super().__init__(conv, relu)


class ConvBn1d(_FusedModule):
    r"""A ``Conv1d`` then a ``BatchNorm1d`` (for QAT: :class:`qlearn.nn.intrinsic.qat.ConvBn1d`).

    >>> import numpy as np
    >>> from qlearn import nn
    >>> import qlearn.nn.intrinsic as nni
    >>> nni.ConvBn1d(nn.Conv1d(1, 2, 3), nn.BatchNorm1d(2))(np.ones((2, 1, 5))).shape
    (2, 2, 3)
    """

    _TYPES = (Conv1d, BatchNorm1d)

    def __init__(self, conv, bn):
        super().__init__(conv, bn)


class ConvBnReLU1d(_FusedModule):
    r"""A ``Conv1d``, a ``BatchNorm1d`` and a ``ReLU`` (for QAT).

    >>> from qlearn import nn
    >>> import qlearn.nn.intrinsic as nni
    >>> m = nni.ConvBnReLU1d(nn.Conv1d(1, 2, 3), nn.BatchNorm1d(2), nn.ReLU())
    >>> [type(c).__name__ for c in m]
    ['Conv1d', 'BatchNorm1d', 'ReLU']
    """

    _TYPES = (Conv1d, BatchNorm1d, ReLU)

    def __init__(self, conv, bn, relu):
        super().__init__(conv, bn, relu)


class ConvReLU3d(_FusedModule):
    r""":math:`y = \max(\operatorname{conv3d}(x), 0)`: a ``Conv3d`` then a ``ReLU``.

    >>> import numpy as np
    >>> from qlearn import nn
    >>> import qlearn.nn.intrinsic as nni
    >>> nni.ConvReLU3d(nn.Conv3d(1, 2, 3), nn.ReLU())(np.ones((1, 1, 3, 4, 5))).shape
    (1, 2, 1, 2, 3)
    """

    _TYPES = (Conv3d, ReLU)

    def __init__(self, conv, relu):
        super().__init__(conv, relu)


class ConvBn3d(_FusedModule):
    r"""A ``Conv3d`` then a ``BatchNorm3d`` (for QAT: :class:`qlearn.nn.intrinsic.qat.ConvBn3d`).

    >>> import numpy as np
    >>> from qlearn import nn
    >>> import qlearn.nn.intrinsic as nni
    >>> nni.ConvBn3d(nn.Conv3d(1, 2, 1), nn.BatchNorm3d(2))(np.ones((2, 1, 2, 2, 2))).shape
    (2, 2, 2, 2, 2)
    """

    _TYPES = (Conv3d, BatchNorm3d)

    def __init__(self, conv, bn):
        super().__init__(conv, bn)


class ConvBnReLU3d(_FusedModule):
    r"""A ``Conv3d``, a ``BatchNorm3d`` and a ``ReLU`` (for QAT).

    >>> from qlearn import nn
    >>> import qlearn.nn.intrinsic as nni
    >>> m = nni.ConvBnReLU3d(nn.Conv3d(1, 2, 3), nn.BatchNorm3d(2), nn.ReLU())
    >>> [type(c).__name__ for c in m]
    ['Conv3d', 'BatchNorm3d', 'ReLU']
    """

    _TYPES = (Conv3d, BatchNorm3d, ReLU)

    def __init__(self, conv, bn, relu):
        super().__init__(conv, bn, relu)


class BNReLU3d(_FusedModule):
    r""":math:`y = \max(\operatorname{batch\_norm}(x), 0)` on (N, C, D, H, W) input: a
    ``BatchNorm3d`` then a ``ReLU`` (``torch.ao.nn.intrinsic.BNReLU3d``); converts to
    :class:`qlearn.nn.intrinsic.quantized.BNReLU3d`.

    >>> import numpy as np
    >>> from qlearn import nn
    >>> import qlearn.nn.intrinsic as nni
    >>> m = nni.BNReLU3d(nn.BatchNorm3d(2), nn.ReLU())
    >>> m(np.ones((2, 2, 1, 3, 3))).shape
    (2, 2, 1, 3, 3)
    """

    _TYPES = (BatchNorm3d, ReLU)

    def __init__(self, batch_norm, relu):
        super().__init__(batch_norm, relu)
