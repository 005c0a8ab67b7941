r"""Quantized layer, group and instance normalisation, with the integers of PyTorch's
``quantized::layer_norm``, ``quantized::group_norm`` and ``quantized::instance_norm``
(x86: the AVX2 build of its kernels, which it runs on AVX-512 CPUs too).

The three split the input's integers :math:`q` into :math:`M` groups of :math:`N`
elements (layer norm: the trailing ``normalized_shape`` of each sample; group norm:
one group of channels of one sample; instance norm: one channel of one sample) and
normalise each group with its own statistics.  PyTorch computes them from exact integer
sums, in units of the input scale :math:`S_x` (zero point :math:`Z_x`):

.. math::

   \bar q = \mathrm{fl}\Big(\textstyle\sum q \Big/ N\Big), \qquad
   \mu = \bar q - Z_x, \qquad
   v = \max\Big(\mathrm{fma}\big(-\bar q, \bar q, \mathrm{fl}(\textstyle\sum q^2 / N)
   \big),\ 0\Big), \qquad \text{(qnorm-stats)}

all in float32 (the sums are exact integers, converted to float32 before the
division; :math:`v` is the variance over :math:`S_x^2`, the subtraction one fused
multiply-add).  The normalising factor, in float64 then rounded to float32, is

.. math::

   r = \mathrm{fl}_{32}\!\left(\frac{S_x}{\sqrt{\mathrm{fl}_{32}(v S_x S_x) + \epsilon}}
   \right)
   \;=\; \frac{S_x}{\sqrt{\mathrm{Var}[x] + \epsilon}} , \qquad \text{(qnorm-factor)}

and every element is mapped with one more fused multiply-add, then quantized with the
output :math:`(S_y, Z_y)`, rounding before the zero point is added:

.. math::

   \text{layer norm: } y_j = \mathrm{fma}\big(\mathrm{fl}((q_j - Z_x - \mu)\, r),\
   \gamma_j,\ \beta_j\big), \qquad
   \text{group norm: } y_j = \mathrm{fma}\big(q_j - Z_x - \mu,\ \mathrm{fl}(r\gamma_c),\
   \beta_c\big), \qquad \text{(qnorm-affine)}

.. math::

   q_{y,j} = \operatorname{clamp}\big(\operatorname{nearbyint}(y_j \cdot
   \mathrm{fl}(1/S_y)) + Z_y,\ q_{\min},\ q_{\max}\big). \qquad \text{(qnorm-quantize)}

A contiguous 4-d input with one channel, or with :math:`H W = 1`, is channels-last
contiguous as well, and PyTorch's group and instance norm then run their NHWC kernel,
which folds the mean into a per-channel shift first:

.. math::

   y_j = \mathrm{fma}\big(q_j - Z_x,\ s_c,\ \mathrm{fma}(-s_c, \mu, \beta_c)\big),
   \qquad s_c = \mathrm{fl}(r \gamma_c). \qquad \text{(qnorm-affine-nhwc)}

The compiled kernel :mod:`qlearn.kernels.norm` computes those equations with exact
integer sums and one float32 operation per step (fused where PyTorch fuses, nowhere
else), in parallel over the groups, so the output integers equal PyTorch's, measured on
millions of random elements (``tests/test_quantized_norms.py``).  Its NumPy twins,
:func:`qlearn.reference.layer_norm_ref` and :func:`qlearn.reference.group_norm_ref`,
write them with float32 arrays and :func:`~qlearn.reference.fma32` for the fused steps
(float64 holds the exact product of two float32 numbers; one rounding step is corrected
at exact float32 midpoints, so the result is the correctly rounded FMA).

Edge cases, as PyTorch:

* :math:`\epsilon = 0` and a constant group (one element, say): :math:`r = S_x / 0 =
  \infty` and :math:`0 \cdot \infty` is NaN.  PyTorch's vectorised quantize clamps
  :math:`y / S_y` from above at :math:`2^{31} - 128` *before* converting, with an
  x86 ``min`` that returns the bound for NaN, then adds :math:`Z_y` in wrapping int32
  arithmetic: such a NaN element becomes :math:`q_{\max}` for :math:`Z_y \le 127` and
  :math:`q_{\min}` above (``int32`` overflow), and so does :math:`y / S_y \ge 2^{31} -
  128` (an absurdly small output scale).  The elements of PyTorch's scalar loop (next
  item) saturate correctly instead and map NaN to 0.  qlearn reproduces both.
* PyTorch's NHWC kernel (eq. (qnorm-affine-nhwc)) sums :math:`q` and :math:`q^2` in
  float32, one position after the other, when :math:`H W \ge 512` (then
  :math:`C = 1` here); qlearn does the same, in the order of a single PyTorch thread.
  With :math:`T` threads PyTorch adds :math:`T` partial sums instead, and an output
  integer can differ by one (about one in 10 000 at two threads, measured).  The same
  kernel steps its batch index modulo the group size, so for more samples than elements per group
  (:math:`N > H W` with one channel) it leaves whole samples of its output unwritten;
  qlearn computes them.
* Elements past the last full vector block (layer norm: the last :math:`N \bmod 32`
  of a group; NHWC: the channels of a group past the last multiple of 32) go through
  PyTorch's scalar loop, which quantizes as ``quantize_per_tensor`` does, adding
  :math:`Z_y` before rounding (:math:`\operatorname{nearbyint}(\mathrm{fma}(y, 1/S_y,
  Z_y))`); qlearn does so for the same elements.
"""
import numbers

import numpy as np

from ... import _validation as V
from ...dtypes import per_tensor_affine, per_tensor_symmetric, qint8, quint8
from ...kernels import norm as _kernel
from ...qtensor import QTensor
from ...reference import fma32  # noqa: F401  (the one fused multiply-add, to the bit)
from ..functional_norm import _check_num_groups, _normalized_shape

__all__ = ["layer_norm", "group_norm", "instance_norm", "fma32"]

_f32 = np.float32
_RANGES = {quint8: (0, 255), qint8: (-128, 127)}


def _channels_last_ambiguous(shape):
    """Whether a contiguous (N, C, H, W) tensor of ``shape`` is channels-last
    contiguous too (C = 1 or H W = 1): PyTorch's group norm then takes its NHWC kernel."""
    return len(shape) == 4 and (shape[1] == 1 or shape[2] * shape[3] == 1)


# -- argument checks -----------------------------------------------------------------------
def _require_input(x, who):
    if not isinstance(x, QTensor):
        raise TypeError(f"{who} expects a quantized `input` (a quint8 or qint8 QTensor), got "
                        f"{type(x).__name__}; quantize it first")
    if x.dtype not in _RANGES:
        raise TypeError(f"{who}: `input` must be quint8 or qint8, got {x.dtype!r}")
    if x.qscheme() not in (per_tensor_affine, per_tensor_symmetric):
        raise ValueError(f"{who}: `input` must be quantized per tensor, got "
                         f"{x.qscheme()!r}")
    return x


def _param(v, shape, name, who):
    if v is None:
        return None
    arr = np.asarray(getattr(v, "data", v))
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{who}: `{name}` must be a float array or None, got dtype "
                        f"{arr.dtype}")
    if arr.shape != tuple(shape):
        raise ValueError(f"{who}: `{name}` must have shape {tuple(shape)}, got {arr.shape}")
    return arr.astype(_f32)


def _eps(eps, who):
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not np.isfinite(eps) \
            or eps < 0:
        raise ValueError(f"{who}: `eps` must be a finite number >= 0, got {eps!r}")
    return float(eps)


def _out_qparams(x, scale, zero_point):
    qmin, qmax = _RANGES[x.dtype]
    if scale is None:
        scale = x.q_scale()
    if zero_point is None:
        zero_point = x.q_zero_point()
    return (V.check_scale(scale, "output_scale"),
            V.check_zero_point(zero_point, qmin, qmax, "output_zero_point"), qmin, qmax)


def _result(x, data, scale, zero_point):
    return QTensor(data.reshape(x.shape).astype(x._int.dtype, copy=False), x.dtype,
                   per_tensor_affine, scale, zero_point)


# -- the operators -------------------------------------------------------------------------
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5,
               output_scale=None, output_zero_point=None):
    r"""Quantized layer norm over the trailing ``normalized_shape`` dimensions
    (``torch.ops.quantized.layer_norm``, ``nnq.LayerNorm``'s operator):

    .. math::
        y = \frac{x - \mathrm E[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \odot \gamma + \beta,
        \qquad q_y = \operatorname{clamp}(\operatorname{nearbyint}(y / S_y) + Z_y)

    computed from the integers as the module notes derive (eqs. (qnorm-stats) to
    (qnorm-quantize)).  ``input`` is a quint8 or qint8 QTensor (the output has its
    dtype), ``weight`` :math:`\gamma` and ``bias`` :math:`\beta` float arrays of shape
    ``normalized_shape`` or None, and ``output_scale`` :math:`S_y` /
    ``output_zero_point`` :math:`Z_y` default to the input's.

    >>> import qlearn.nn.quantized.functional as qF
    >>> q = ql.quantize_per_tensor(np.array([[1.0, 3.0], [0.0, 4.0]]), 0.1, 10, ql.quint8)
    >>> qF.layer_norm(q, (2,), output_scale=0.01, output_zero_point=128).int_repr()
    array([[ 28, 228],
           [ 28, 228]], dtype=uint8)
    """
    who = "qF.layer_norm"
    x = _require_input(input, who)
    shape = _normalized_shape(normalized_shape, x.shape, who)
    w, b = _param(weight, shape, "weight", who), _param(bias, shape, "bias", who)
    eps = _eps(eps, who)
    scale, zp, qmin, qmax = _out_qparams(x, output_scale, output_zero_point)
    if x._int.size == 0:
        return _result(x, x._int.copy(), scale, zp)
    out = _kernel.layer_norm(x._int.reshape(-1, int(np.prod(shape))), w, b, x.q_scale(),
                             x.q_zero_point(), eps, scale, zp, qmin, qmax)
    return _result(x, out, scale, zp)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5, output_scale=None,
               output_zero_point=None):
    r"""Quantized group norm of an (N, C, \*) input with at least 3 dimensions
    (``torch.ops.quantized.group_norm``, ``nnq.GroupNorm``'s operator):

    .. math::
        y_{n,c} = \frac{x_{n,c} - \mathrm E[x_{n,G(c)}]}{\sqrt{\mathrm{Var}[x_{n,G(c)}]
        + \epsilon}}\, \gamma_c + \beta_c

    with the statistics over each of the ``num_groups`` groups of ``C / num_groups``
    channels, computed from the integers as the module notes derive.  ``weight`` and
    ``bias`` have shape (C,) or are None; the output qparams default to the input's.

    >>> import qlearn.nn.quantized.functional as qF
    >>> x = np.array([[[1.0], [3.0], [5.0], [5.0]]])
    >>> q = ql.quantize_per_tensor(x, 0.1, 0, ql.quint8)
    >>> qF.group_norm(q, 2, output_scale=0.01, output_zero_point=128).int_repr().ravel()
    array([ 28, 228, 128, 128], dtype=uint8)
    """
    return _group_norm(input, num_groups, weight, bias, eps, output_scale,
                       output_zero_point, "qF.group_norm")


def _group_norm(input, num_groups, weight, bias, eps, output_scale, output_zero_point, who):
    x = _require_input(input, who)
    if x.ndim < 3:
        raise ValueError(f"{who}: `input` must be (N, C, *) with at least 3 dimensions "
                         f"(as PyTorch's quantized kernel), got shape {x.shape}")
    B, C = x.shape[0], x.shape[1]
    _check_num_groups(num_groups, C, who)
    G = int(num_groups)
    w, b = _param(weight, (C,), "weight", who), _param(bias, (C,), "bias", who)
    eps = _eps(eps, who)
    scale, zp, qmin, qmax = _out_qparams(x, output_scale, output_zero_point)
    if x._int.size == 0:
        return _result(x, x._int.copy(), scale, zp)
    cpg = C // G
    q = x._int.reshape(B * G, cpg, -1)      # row n G + g: the channels of group g
    # a contiguous input with C = 1 or H W = 1 is channels-last as well, and PyTorch
    # runs its NHWC kernel (eq. qnorm-affine-nhwc), which sums in float32 for H W >= 512
    nhwc = _channels_last_ambiguous(x.shape)
    out = _kernel.group_norm(q, w, b, G, nhwc, nhwc and q.shape[2] >= 512, x.q_scale(),
                             x.q_zero_point(), eps, scale, zp, qmin, qmax)
    return _result(x, out, scale, zp)


def instance_norm(input, weight=None, bias=None, eps=1e-5, output_scale=None,
                  output_zero_point=None):
    r"""Quantized instance norm of an (N, C, \*) input with at least 3 dimensions
    (``torch.ops.quantized.instance_norm``, the operator of ``nnq.InstanceNorm*d``):
    group norm with one channel per group,

    .. math::
        y_{n,c} = \frac{x_{n,c} - \mathrm E[x_{n,c}]}{\sqrt{\mathrm{Var}[x_{n,c}] +
        \epsilon}}\, \gamma_c + \beta_c .

    >>> import qlearn.nn.quantized.functional as qF
    >>> q = ql.quantize_per_tensor(np.array([[[1.0, 3.0]]]), 0.1, 0, ql.quint8)
    >>> qF.instance_norm(q, output_scale=0.01, output_zero_point=128).int_repr()
    array([[[ 28, 228]]], dtype=uint8)
    """
    who = "qF.instance_norm"
    x = _require_input(input, who)
    if x.ndim < 3:
        raise ValueError(f"{who}: `input` must be (N, C, *) with at least 3 dimensions, "
                         f"got shape {x.shape}")
    return _group_norm(x, max(x.shape[1], 1), weight, bias, eps, output_scale,
                       output_zero_point, who)
