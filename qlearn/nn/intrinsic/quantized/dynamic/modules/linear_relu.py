r""":class:`LinearReLU` is :class:`qlearn.nn.quantized.dynamic.Linear` with the ReLU
applied to its float output (PyTorch's ``quantized::linear_relu_dynamic``, whose
FBGEMM output stage clamps the float result at 0):

.. math::  y_{ij} = \max\Big(0,\ S_x S_{w,j} \textstyle\sum_k (x_{ik} - Z_x)(w_{jk} - Z_{w,j})
           + b_j\Big)
"""
import numpy as np

from ......dtypes import qint8
from .....quantized.dynamic.modules.linear import Linear as _DynamicLinear

__all__ = ["LinearReLU"]


class LinearReLU(_DynamicLinear):
    r"""Dynamically quantized ``relu(linear(x))``
    (``torch.ao.nn.intrinsic.quantized.dynamic.LinearReLU``): qint8 (or float16) weights,
    float input and output, the input quantized from its own range on every call,
    then :math:`\max(y, 0)`.

    ``from_float`` takes a float :class:`qlearn.nn.intrinsic.LinearReLU` with a dynamic
    qconfig (``quantize_dynamic(model, {nni.LinearReLU})``).

    Examples
    --------
    >>> import numpy as np, qlearn as ql
    >>> import qlearn.nn.intrinsic.quantized.dynamic as nniqd
    >>> m = nniqd.LinearReLU(2, 2)
    >>> m   # doctest: +ELLIPSIS
    DynamicQuantizedLinearReLU(in_features=2, out_features=2, dtype=qlearn.qint8, ...)
    >>> m.set_weight_bias(ql.quantize_per_tensor(np.array([[1.0, 0.0], [-1.0, 0.0]]), 0.1,
    ...                                          0, ql.qint8), None)
    >>> np.round(m(np.array([[2.0, 1.0]], np.float32)), 2)
    array([[2., 0.]], dtype=float32)
    """

    _NAME = "DynamicQuantizedLinearReLU"

    def __init__(self, in_features, out_features, bias=True, dtype=qint8):
        # PyTorch names this argument ``bias`` here (``bias_`` in nnqd.Linear)
        super().__init__(in_features, out_features, bias, dtype)

    @classmethod
    def _float_modules(cls):
        from ....modules.fused import LinearReLU as FloatLinearReLU
        return (FloatLinearReLU,)

    def forward(self, x):
        y = super().forward(x)
        return np.maximum(y, np.float32(0), out=y)
