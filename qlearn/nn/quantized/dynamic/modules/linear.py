"""``nnqd.Linear``: qint8 (or float16) weights, float input and output, activations
quantized per call."""
import numpy as np

from ..... import _validation as V
from .....dtypes import qint8
from ...modules import linear as nnq
from ...modules.utils import (
    check_float_module,
    float_data,
    quantize_weight,
    weight_for_quantization,
)
from ...packed_params import linear_dynamic_apply

__all__ = ["Linear"]


def is_float16(dtype):
    """Whether ``dtype`` names float16 (``qlearn.float16``, ``numpy.float16``, ...)."""
    if dtype is qint8 or type(dtype).__name__ == "QDType":
        return False
    try:
        return np.dtype(getattr(dtype, "numpy_dtype", dtype)) == np.float16
    except TypeError:
        return False


def float16_dtype():
    """``qlearn.float16`` when qlearn has it, else ``numpy.float16``."""
    from ..... import dtypes
    return getattr(dtypes, "float16", np.float16)


def linear_fp16_apply(x, w16, bias, who):
    r""":math:`y = x\,\mathrm{f32}(W_{16})^\top + b`: float16 weights widened to float32,
    float32 input and accumulation (PyTorch's ``linear_dynamic_fp16``)."""
    from .....qtensor import QTensor
    if isinstance(x, QTensor):
        raise TypeError(f"{who} expects a float `input`, got a QTensor; dequantize() it "
                        f"first")
    xf = V.as_float32(getattr(x, "data", x) if not isinstance(x, np.ndarray) else x,
                      "input")
    if xf.ndim < 1 or xf.shape[-1] != w16.shape[1]:
        raise ValueError(f"{who}: `input` must have {w16.shape[1]} features in its last "
                         f"dimension, got shape {xf.shape}")
    y = np.matmul(xf, w16.astype(np.float32).T)
    if bias is not None:
        y += bias
    return y.astype(np.float32, copy=False)


class Linear(nnq.Linear):
    r"""Dynamically quantized linear layer (``torch.ao.nn.quantized.dynamic.Linear``).

    A quantized :class:`qlearn.nn.quantized.Linear` (weights, packing and state dict
    included, as in PyTorch) whose forward takes and returns float arrays.

    With ``dtype=qlearn.qint8``, on every call the input's range
    :math:`[\min(x, 0), \max(x, 0)]` gives its scale and zero point (7-bit,
    ``reduce_range``, as PyTorch's x86 backend), the int8 GEMM accumulates in int32 and
    the result is returned in float32 (eq. :eq:`int8-dynamic`):

    .. math::  y_{ij} = S_x S_{w,j} \textstyle\sum_k (x_{ik} - Z_x)(w_{jk} - Z_{w,j}) + b_j

    With ``dtype=qlearn.float16`` the weight is stored as float16 (half the bytes of
    float32) and :math:`y = x\,\mathrm{f32}(W_{16})^\top + b` is computed in float32;
    ``weight()`` is then the float16 array.

    Examples
    --------
    >>> import qlearn.nn.quantized.dynamic as nnqd
    >>> m = nnqd.Linear(4, 2)
    >>> print(repr(m).replace(", ", ",\n"))
    DynamicQuantizedLinear(in_features=4,
    out_features=2,
    dtype=qlearn.qint8,
    qscheme=qlearn.per_tensor_affine)
    >>> m.set_weight_bias(ql.quantize_per_tensor(np.ones((2, 4)), 0.1, 0, ql.qint8),
    ...                   np.array([0.0, 1.0], np.float32))
    >>> np.round(m(np.array([[1.0, 2.0, 3.0, 4.0]], np.float32)), 1)
    array([[10., 11.]], dtype=float32)
    >>> h = nnqd.Linear(4, 2, dtype=np.float16)
    >>> h.set_weight_bias(np.full((2, 4), 0.1), np.zeros(2, np.float32))
    >>> h.weight().dtype, h(np.ones((1, 4), np.float32))
    (dtype('float16'), array([[0.39990234, 0.39990234]], dtype=float32))
    """

    _NAME = "DynamicQuantizedLinear"
    _fp16 = None        # (float16 weight, float32 bias) for dtype=float16

    def __init__(self, in_features, out_features, bias_=True, dtype=qint8):
        fp16 = is_float16(dtype)
        if dtype is not qint8 and not fp16:
            raise ValueError(f"`dtype` must be qlearn.qint8 or qlearn.float16, got "
                             f"{dtype!r}")
        super().__init__(in_features, out_features, bias_, qint8)
        self.dtype = float16_dtype() if fp16 else qint8
        self.reduce_range = True
        if fp16:
            self.set_weight_bias(np.zeros((self.out_features, self.in_features),
                                          np.float16),
                                 np.zeros(self.out_features, np.float32) if bias_ else None)

    def set_weight_bias(self, w, b):
        """Set the weight (a qint8 QTensor, or for float16 an array rounded to float16)
        and the float bias."""
        if getattr(self, "_fp16", None) is None and not (
                isinstance(w, np.ndarray) and is_float16(getattr(self, "dtype", qint8))):
            return super().set_weight_bias(w, b)
        w16 = np.asarray(float_data(w), np.float32).astype(np.float16)
        if w16.shape != (self.out_features, self.in_features):
            raise ValueError(f"`w` must have shape ({self.out_features}, "
                             f"{self.in_features}), got {w16.shape}")
        self._fp16 = (w16, None if b is None else float_data(b).copy())

    def weight(self):
        """The qint8 weight (a QTensor), or the float16 weight array."""
        return self._fp16[0] if self._fp16 is not None else super().weight()

    def bias(self):
        """The float32 bias of shape (out,), or None."""
        return self._fp16[1] if self._fp16 is not None else super().bias()

    def forward(self, x):
        if self._fp16 is not None:
            return linear_fp16_apply(x, self._fp16[0], self._fp16[1], self._NAME)
        return linear_dynamic_apply(x, self._packed_params, self.reduce_range,
                                    who=self._NAME)

    def extra_repr(self):
        s = (f"in_features={self.in_features}, out_features={self.out_features}, "
             f"dtype={self.dtype!r}")
        if self._fp16 is None:
            s += f", qscheme={self.weight().qscheme()!r}"
        return s

    @classmethod
    def _float_modules(cls):
        # not the fused nni.LinearReLU: this layer has no ReLU to apply
        # (nniqd.LinearReLU takes it)
        from ....modules.linear import Linear as FloatLinear
        from ....qat import Linear as QATLinear
        from ....qat.dynamic import Linear as DynamicQATLinear
        return (FloatLinear, QATLinear, DynamicQATLinear)

    @classmethod
    def from_float(cls, mod):
        """Build from a float ``nn.Linear`` with a ``qconfig`` (its weight observer is
        run over the weight; no activation observer is needed).  A float16 weight
        observer (``float16_dynamic_qconfig``) gives float16 weights.

        A QAT ``nnqat.Linear`` (the dynamic mapping's entry for it, as PyTorch's) or
        ``nnqat.dynamic.Linear`` is quantized with a fresh ``qconfig.weight()`` run over
        its trained weight, the observer PyTorch's ``from_float`` builds; its
        ``weight_fake_quant`` is not used.
        (PyTorch's own ``from_float`` refuses an ``nnqat.Linear`` although its mapping
        names it; qlearn accepts it.)"""
        check_float_module(mod, cls._float_modules(), cls.__name__)
        if hasattr(mod, "weight_fake_quant"):
            lin, w, b = mod, float_data(mod.weight), float_data(mod.bias)
            obs = mod.qconfig.weight()
            obs(w)
        else:
            lin, w, b, obs = weight_for_quantization(mod)
        if is_float16(getattr(obs, "dtype", qint8)):
            q = cls(lin.in_features, lin.out_features, b is not None,
                    dtype=np.float16)
            q.set_weight_bias(w, b)
            return q
        q = cls(lin.in_features, lin.out_features, b is not None)
        q.set_weight_bias(quantize_weight(w, obs), b)
        return q
