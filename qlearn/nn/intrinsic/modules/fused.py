r"""Float fused modules: containers that mark a run of layers to be quantized as one.

Each class is a :class:`~qlearn.nn.Sequential` of the layers it fuses, with the
children named ``"0"``, ``"1"``, ``"2"`` (``ConvReLU2d(conv, relu)[0]`` is the conv),
as in ``torch.ao.nn.intrinsic``.  In float it computes exactly what the unfused layers
compute; what changes is what comes after: ``prepare`` puts one observer on the output
of the whole block (not one per layer), and ``convert`` replaces it by one quantized
module (``ConvReLU2d`` -> :class:`qlearn.nn.intrinsic.quantized.ConvReLU2d`, whose
requantization clamps at the zero point, so the ReLU costs nothing).  The ``...Bn...``
forms exist for quantization-aware training (``fuse_modules_qat``): in eval-mode fusion
the batch norm is folded into the weights instead (see
:func:`qlearn.nn.utils.fusion.fuse_conv_bn_eval`).

The 1-d and 3-d convolution forms (``ConvReLU1d``, ``ConvBn3d``, ...) are in
:mod:`qlearn.nn.intrinsic.modules.fused_nd`.
"""
from ...modules.activation import ReLU
from ...modules.batchnorm import BatchNorm1d, BatchNorm2d
from ...modules.container import Sequential
from ...modules.conv import Conv2d
from ...modules.linear import Linear

__all__ = ["ConvReLU2d", "ConvBn2d", "ConvBnReLU2d", "LinearReLU", "LinearBn1d",
           "BNReLU2d"]


class _FusedModule(Sequential):
    """Base of the fused containers: a Sequential whose children must be exactly the
    layer types of ``_TYPES`` (``type(m) is T``: a subclass is a different layer)."""

    _TYPES = ()

    def __init__(self, *mods):
        names = [t.__name__ for t in self._TYPES]
        if len(mods) != len(self._TYPES) or any(
                type(m) is not t for m, t in zip(mods, self._TYPES)):
            got = ", ".join(type(m).__name__ for m in mods)
            raise TypeError(f"{type(self).__name__} fuses ({', '.join(names)}), got "
                            f"({got})")
        super().__init__(*mods)


class ConvReLU2d(_FusedModule):
    r""":math:`y = \max(\operatorname{conv2d}(x), 0)`: a ``Conv2d`` then a ``ReLU``.

    >>> from qlearn import nn
    >>> import qlearn.nn.intrinsic as nni
    >>> m = nni.ConvReLU2d(nn.Conv2d(1, 2, 3), nn.ReLU())
    >>> type(m[0]).__name__, bool((m(np.ones((1, 1, 4, 4))).numpy() >= 0).all())
    ('Conv2d', True)
    """

    _TYPES = (Conv2d, ReLU)

    def __init__(self, conv, relu):
        super().__init__(conv, relu)


class ConvBn2d(_FusedModule):
    r"""A ``Conv2d`` then a ``BatchNorm2d`` (for QAT; :class:`qlearn.nn.intrinsic.qat.ConvBn2d`
    simulates the folding).

    >>> from qlearn import nn
    >>> import qlearn.nn.intrinsic as nni
    >>> nni.ConvBn2d(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))(np.ones((2, 1, 4, 4))).shape
    (2, 2, 2, 2)
    """

    _TYPES = (Conv2d, BatchNorm2d)

    def __init__(self, conv, bn):
        super().__init__(conv, bn)


class ConvBnReLU2d(_FusedModule):
    r"""A ``Conv2d``, a ``BatchNorm2d`` and a ``ReLU`` (for QAT).

    >>> from qlearn import nn
    >>> import qlearn.nn.intrinsic as nni
    >>> m = nni.ConvBnReLU2d(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU())
    >>> [type(c).__name__ for c in m]
    ['Conv2d', 'BatchNorm2d', 'ReLU']
    """

    _TYPES = (Conv2d, BatchNorm2d, ReLU)

    def __init__(self, conv, bn, relu):
        super().__init__(conv, bn, relu)


class LinearReLU(_FusedModule):
    r""":math:`y = \max(x W^\top + b, 0)`: a ``Linear`` then a ``ReLU``.

    >>> from qlearn import nn
    >>> import qlearn.nn.intrinsic as nni
    >>> nni.LinearReLU(nn.Linear(4, 3), nn.ReLU())(np.ones((2, 4))).shape
    (2, 3)
    """

    _TYPES = (Linear, ReLU)

    def __init__(self, linear, relu):
        super().__init__(linear, relu)


class LinearBn1d(_FusedModule):
    r"""A ``Linear`` then a ``BatchNorm1d`` (for QAT).

    >>> from qlearn import nn
    >>> import qlearn.nn.intrinsic as nni
    >>> nni.LinearBn1d(nn.Linear(4, 3), nn.BatchNorm1d(3))(np.ones((2, 4))).shape
    (2, 3)
    """

    _TYPES = (Linear, BatchNorm1d)

    def __init__(self, linear, bn):
        super().__init__(linear, bn)


class BNReLU2d(_FusedModule):
    r"""A ``BatchNorm2d`` then a ``ReLU``; converts to
    :class:`qlearn.nn.intrinsic.quantized.BNReLU2d`.

    >>> from qlearn import nn
    >>> import qlearn.nn.intrinsic as nni
    >>> nni.BNReLU2d(nn.BatchNorm2d(2), nn.ReLU())(np.ones((2, 2, 3, 3))).shape
    (2, 2, 3, 3)
    """

    _TYPES = (BatchNorm2d, ReLU)

    def __init__(self, batch_norm, relu):
        super().__init__(batch_norm, relu)
