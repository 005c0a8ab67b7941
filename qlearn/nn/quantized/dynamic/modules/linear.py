"""``nnqd.Linear``: qint8 weights, float input and output, activations quantized per call."""
from .....dtypes import qint8
from ..._packed import linear_dynamic_apply
from ...modules import linear as nnq
from ...modules.utils import check_float_module, float_data, quantize_weight, weight_observer_of

__all__ = ["Linear"]


class Linear(nnq.Linear):
    r"""Dynamically quantized linear layer (``torch.ao.nn.quantized.dynamic.Linear``).

    A quantized :class:`qlearn.nn.quantized.Linear` (weights, packing and state dict
    included, as in PyTorch) whose forward takes and returns float arrays.

    On every call the input's range :math:`[\min(x, 0), \max(x, 0)]` gives its scale
    and zero point (7-bit, ``reduce_range``, as PyTorch's x86 backend), the int8 GEMM
    accumulates in int32 and the result is returned in float32 (eq. :eq:`int8-dynamic`):

    .. math::  y_{ij} = S_x S_{w,j} \textstyle\sum_k (x_{ik} - Z_x)(w_{jk} - Z_{w,j}) + b_j

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
    """

    _NAME = "DynamicQuantizedLinear"

    def __init__(self, in_features, out_features, bias_=True, dtype=qint8):
        super().__init__(in_features, out_features, bias_, dtype)
        self.dtype = dtype
        self.reduce_range = True

    def forward(self, x):
        return linear_dynamic_apply(x, self._packed_params, self.reduce_range,
                                    who=self._NAME)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"dtype={self.dtype!r}, qscheme={self.weight().qscheme()!r}")

    @classmethod
    def from_float(cls, mod):
        """Build from a float ``Linear`` with a ``qconfig`` (its weight observer is run
        over the weight; no activation observer is needed)."""
        check_float_module(mod, ("Linear", "LinearReLU"), cls.__name__)
        lin = mod if hasattr(mod, "weight") else mod[0]
        if getattr(lin, "qconfig", None) is None:
            lin.qconfig = getattr(mod, "qconfig", None)
        qweight = quantize_weight(float_data(lin.weight), weight_observer_of(lin))
        q = cls(lin.in_features, lin.out_features, bias_=lin.bias is not None)
        q.set_weight_bias(qweight, float_data(lin.bias))
        return q
