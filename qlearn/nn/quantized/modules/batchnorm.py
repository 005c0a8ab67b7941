r"""``nnq.BatchNorm2d`` and ``nnq.BatchNorm3d``: batch normalisation of a quint8 tensor,
as one per-channel affine map of its integers.

With the input :math:`x = S_x (q_x - Z_x)` and the output :math:`y = S_y (q_y - Z_y)`,
eval-mode batch norm :math:`y = \gamma (x - \mu)/\sqrt{\sigma^2 + \epsilon} + \beta`
becomes, per channel :math:`c`,

.. math::

   q_y = \operatorname{clamp}\big(\operatorname{round}(\alpha_c (q_x - Z_x) + b_c) + Z_y,
   \ 0,\ 255\big), \qquad
   \alpha_c = \frac{\gamma_c}{\sqrt{\sigma^2_c + \epsilon}} \frac{S_x}{S_y}, \qquad
   b_c = \frac{\beta_c - \mu_c \gamma_c / \sqrt{\sigma^2_c + \epsilon}}{S_y}

(the fused ReLU clamps below at :math:`Z_y` too).  The constants are formed in the
precisions PyTorch's ``quantized::batch_norm2d`` uses (float32 :math:`1/\sqrt{\cdot}`,
the scale ratio in float64) and :math:`\alpha_c (q - Z_x) + b_c` is one fused
multiply-add rounded half to even, so the output integers are PyTorch's.  The constants
are formed here (C of them); the element-wise map is the compiled kernel
:func:`qlearn.kernels.norm.batch_norm` (its twin: :func:`qlearn.reference.batch_norm_ref`).
"""
import numpy as np

from ....dtypes import per_tensor_affine, quint8
from ....kernels import norm as _kernel
from ....qtensor import QTensor
from ...intrinsic.modules.fused import BNReLU2d
from ...modules.batchnorm import BatchNorm2d as _FloatBatchNorm2d
from ...modules.batchnorm import BatchNorm3d as _FloatBatchNorm3d
from ..packed_params import require_quantized
from .utils import activation_qparams

__all__ = ["BatchNorm2d", "BatchNorm3d"]


def _f32(x):
    return np.asarray(getattr(x, "data", x), dtype=np.float32)


def quantized_batch_norm(input, weight, bias, mean, var, eps, output_scale,
                         output_zero_point, relu=False, who="QuantizedBatchNorm2d", ndim=4):
    r"""``quantized::batch_norm2d`` (``relu=True``: ``batch_norm2d_relu``) of a quint8
    (N, C, H, W) QTensor, or ``quantized::batch_norm3d`` of an (N, C, D, H, W) one with
    ``ndim=5``; see the module docstring for the equation.

    >>> from qlearn.nn.quantized.modules.batchnorm import quantized_batch_norm
    >>> q = ql.quantize_per_tensor(np.array([[[[1.0]], [[-1.0]]]]), 0.1, 128, ql.quint8)
    >>> one, zero = np.ones(2, np.float32), np.zeros(2, np.float32)
    >>> quantized_batch_norm(q, one * 2, zero, zero, one, 0.0, 0.1, 128).dequantize().ravel()
    array([ 2., -2.], dtype=float32)
    """
    require_quantized(input, who)
    if input.ndim != ndim:
        layout = "(N, C, H, W)" if ndim == 4 else "(N, C, D, H, W)"
        raise ValueError(f"{who} expects a {ndim}-d {layout} input, got shape {input.shape}")
    C = input.shape[1]
    mean, var = _f32(mean), _f32(var)
    w = np.ones(C, np.float32) if weight is None else _f32(weight)
    b = np.zeros(C, np.float32) if bias is None else _f32(bias)
    for arr, name in ((w, "weight"), (b, "bias"), (mean, "running_mean"),
                      (var, "running_var")):
        if arr.shape != (C,):
            raise ValueError(f"{who}: `{name}` must have shape ({C},) for an input with {C} "
                             f"channels, got {arr.shape}")
    in_scale, in_zp = float(input.q_scale()), int(input.q_zero_point())
    out_scale, out_zp = float(output_scale), int(output_zero_point)
    inv_sigma = (1.0 / np.sqrt(var + np.float32(eps))).astype(np.float32)
    gain = inv_sigma * w                                        # float32
    alpha = (gain.astype(np.float64) * (in_scale / out_scale)).astype(np.float32)
    beta = ((b - mean * inv_sigma * w).astype(np.float64) / out_scale).astype(np.float32)
    ints = input.int_repr()
    # one fused multiply-add per element, alpha_c (q - Z_x) + b_c, rounded once
    inner = int(np.prod(ints.shape[2:]))
    q = _kernel.batch_norm(ints.reshape(ints.shape[0], C, inner), alpha, beta, in_zp, out_zp,
                           out_zp if relu else 0, 255).reshape(ints.shape)
    return QTensor(q, quint8, per_tensor_affine, out_scale, out_zp)


class _QuantizedBatchNorm:
    """What the quantized batch norms share, mixed in before the float class they
    subclass: the output qparams as buffers, ``forward`` by
    :func:`quantized_batch_norm`, PyTorch's repr and ``from_float``."""

    _NAME = "QuantizedBatchNorm"
    _FLOAT = None
    _FUSED = BNReLU2d        # the fused float container the ReLU forms take
    _RELU = False
    _NDIM = 0

    def __init__(self, num_features, eps=1e-5, momentum=0.1, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, True, True, device, dtype)
        self.register_buffer("scale", np.array(1.0, np.float32))
        self.register_buffer("zero_point", np.array(0, np.int64))

    def forward(self, input):
        return quantized_batch_norm(input, self.weight, self.bias, self.running_mean,
                                    self.running_var, self.eps,
                                    float(np.asarray(self.scale).reshape(-1)[0]),
                                    int(np.asarray(self.zero_point).reshape(-1)[0]),
                                    relu=self._RELU, who=self._NAME, ndim=self._NDIM)

    def __repr__(self):
        # PyTorch's print (its quantized batch norm shows no scale or zero point)
        return (f"{self._NAME}({self.num_features}, eps={self.eps}, "
                f"momentum={self.momentum}, affine=True, bias=True, "
                f"track_running_stats=True)")

    @classmethod
    def from_float(cls, mod):
        """Build from an observed float ``BatchNorm2d`` / ``BatchNorm3d`` (or fused
        ``nni.BNReLU2d`` / ``nni.BNReLU3d`` for the ReLU forms): its affine parameters and running
        statistics, and the output qparams of ``mod.activation_post_process``."""
        expected = (cls._FUSED,) if cls._RELU else (cls._FLOAT,)
        if type(mod) not in expected:
            raise TypeError(f"{cls.__name__}.from_float expects a float "
                            f"{expected[0].__name__}, got {type(mod).__name__}")
        scale, zero_point = activation_qparams(mod, cls.__name__)
        bn = mod[0] if cls._RELU else mod
        new = cls(bn.num_features, bn.eps)
        new.weight = bn.weight
        new.bias = bn.bias
        new.running_mean = bn.running_mean
        new.running_var = bn.running_var
        new.scale = np.array(scale, np.float32)
        new.zero_point = np.array(zero_point, np.int64)
        return new


class BatchNorm2d(_QuantizedBatchNorm, _FloatBatchNorm2d):
    r"""Quantized 2-d batch norm (``torch.ao.nn.quantized.BatchNorm2d``): eval-mode batch
    normalisation with the running statistics, quint8 in and out; ``scale`` and
    ``zero_point`` are the output's.

    .. math::

       q_y = \operatorname{clamp}\big(\operatorname{round}(\alpha_c (q_x - Z_x) + b_c)
       + Z_y\big), \quad
       \alpha_c = \frac{\gamma_c S_x}{\sqrt{\sigma^2_c + \epsilon}\, S_y}, \quad
       b_c = \frac{\beta_c - \mu_c\gamma_c/\sqrt{\sigma^2_c + \epsilon}}{S_y}

    Examples
    --------
    >>> import qlearn.nn.quantized as nnq
    >>> bn = nnq.BatchNorm2d(2)
    >>> bn.running_mean[:] = [1.0, -1.0]; bn.scale, bn.zero_point = 0.05, 100
    >>> x = ql.quantize_per_tensor(np.full((1, 2, 1, 1), 1.0), 0.05, 100, ql.quint8)
    >>> bn(x).dequantize().ravel()        # (1 - 1) and (1 + 1) / sqrt(1 + 1e-5)
    array([0., 2.], dtype=float32)
    """

    _NAME = "QuantizedBatchNorm2d"
    _FLOAT_NAMES = ("BatchNorm2d",)
    _FLOAT = _FloatBatchNorm2d
    _RELU = False
    _NDIM = 4


class BatchNorm3d(_QuantizedBatchNorm, _FloatBatchNorm3d):
    r"""Quantized 3-d batch norm (``torch.ao.nn.quantized.BatchNorm3d``): the per-channel
    map of :class:`BatchNorm2d` on (N, C, D, H, W) quint8 input (PyTorch's
    ``quantized::batch_norm3d``).

    >>> import qlearn.nn.quantized as nnq
    >>> bn = nnq.BatchNorm3d(2)
    >>> repr(bn)[:38]
    'QuantizedBatchNorm3d(2, eps=1e-05, mom'
    >>> bn.scale, bn.zero_point = 0.05, 100
    >>> x = ql.quantize_per_tensor(np.full((1, 2, 1, 1, 1), 1.0), 0.05, 100, ql.quint8)
    >>> bn(x).dequantize().ravel()
    array([1., 1.], dtype=float32)
    """

    _NAME = "QuantizedBatchNorm3d"
    _FLOAT_NAMES = ("BatchNorm3d",)
    _FLOAT = _FloatBatchNorm3d
    _RELU = False
    _NDIM = 5
