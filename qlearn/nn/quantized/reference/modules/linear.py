"""The reference quantized ``Linear``."""
from ....modules.linear import Linear as _FloatLinear
from .utils import ReferenceQuantizedModule

__all__ = ["Linear"]


class Linear(ReferenceQuantizedModule, _FloatLinear):
    r"""Reference quantized linear layer (``torch.ao.nn.quantized.reference.Linear``):
    :math:`y = x \hat W^\top + b` in float, :math:`\hat W` the quantized-dequantized
    weight (:mod:`~qlearn.nn.quantized.reference.modules.utils`).

    Parameters
    ----------
    in_features, out_features : int
    bias_ : bool
    device, dtype : None
    weight_qparams : dict, optional
        ``{"qscheme", "dtype", "scale", "zero_point"[, "axis"]}``; default per-tensor
        quint8 with scale 1 and zero point 0 (PyTorch's default).

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.nn.quantized.reference as nnqr
    >>> lin = nn.Linear(2, 1)
    >>> lin.weight.data[...] = [[0.26, -0.5]]
    >>> ref = nnqr.Linear.from_float(lin, {"qscheme": ql.per_tensor_affine,
    ...                                   "dtype": ql.qint8, "scale": 0.1, "zero_point": 0})
    >>> ref
    QuantizedLinear(Reference)(in_features=2, out_features=1, bias=True)
    >>> ref.get_weight()
    array([[ 0.3, -0.5]], dtype=float32)
    """

    _NAME = "QuantizedLinear(Reference)"

    def __init__(self, in_features, out_features, bias_=True, device=None, dtype=None,
                 weight_qparams=None):
        super().__init__(in_features, out_features, bias_, device, dtype)
        self._init_weight_qparams(weight_qparams)

    def forward(self, x):
        from .... import functional as F
        return F.linear(self._float_input(x), self.get_weight(), self.bias)

    @classmethod
    def from_float(cls, float_linear, weight_qparams):
        """A reference ``Linear`` with ``float_linear``'s weight and bias (copied) and
        the given weight qparams."""
        if not isinstance(float_linear, _FloatLinear):
            raise TypeError(f"`float_linear` must be an nn.Linear, got "
                            f"{type(float_linear).__name__}")
        ref = cls(float_linear.in_features, float_linear.out_features,
                  float_linear.bias is not None, weight_qparams=weight_qparams)
        ref.weight.data[...] = float_linear.weight.data
        if float_linear.bias is not None:
            ref.bias.data[...] = float_linear.bias.data
        return ref
