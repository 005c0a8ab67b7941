r"""Per-channel quantization with float zero points: ``per_channel_affine_float_qparams``.

PyTorch quantizes embedding tables row by row with a float scale *and* a float zero
point, chosen so that each row's minimum maps to ``q_min`` exactly:

.. math::

   S_c = \frac{\max_c - \min_c}{q_{max} - q_{min}}, \qquad
   Z_c = -\frac{\min_c}{S_c} \quad (\text{a float, not rounded})

.. math::

   q = \operatorname{clamp}\big(\operatorname{nearbyint}(x \cdot S_c^{-1} + Z_c),
   \ q_{min},\ q_{max}\big), \qquad
   \hat x = (q - Z_c)\, S_c

``S_c^{-1} = 1 / S_c``, the product, the sum and the dequantization are all float32, as in
PyTorch's CPU kernels (``quantize_val_float_qparams``), so the integers are PyTorch's to
the bit.  With an integer zero point this is the per-channel affine map; a float ``Z_c``
moves the grid so that ``min_c`` is representable, at no cost in range.
:func:`qlearn.quantize_per_channel` selects this scheme when the zero points are floats
(``torch.zeros(3)``), exactly as ``torch.quantize_per_channel`` does.
"""
import numpy as np

from . import _validation as V
from .dtypes import per_channel_affine_float_qparams, qint8, quint4x2, quint8
from .kernels import float_qparams as _kernels

__all__ = ["quantize_per_channel_float_qparams", "is_float_array", "embedding_bag_byte",
           "embedding_bag_4bit", "PackedEmbeddingWeight"]

_DTYPES = (quint8, qint8, quint4x2)


def is_float_array(values):
    """True when ``values`` (array, Tensor, list) holds floating-point numbers.

    The test PyTorch applies to the zero points of ``quantize_per_channel``: a float
    tensor selects ``per_channel_affine_float_qparams``, an integer one
    ``per_channel_affine``.

    >>> import numpy as np
    >>> from qlearn.float_qparams import is_float_array
    >>> is_float_array(np.zeros(3)), is_float_array([0, 1]), is_float_array([0.5, 1])
    (True, False, True)
    """
    dtype = getattr(values, "dtype", None)
    if isinstance(dtype, np.dtype):
        return dtype.kind == "f"
    try:
        return np.asarray(values).dtype.kind == "f"
    except (TypeError, ValueError):     # ragged: left to the integer path's error
        return False


def quantize_per_channel_float_qparams(input, scales, zero_points, axis, dtype):
    r"""Quantize ``input`` per channel with float scales and float zero points.

    The slice ``c`` of ``input`` along ``axis`` becomes

    .. math::

       q_{\dots c \dots} = \operatorname{clamp}\big(\operatorname{nearbyint}(
       x_{\dots c \dots} \cdot S_c^{-1} + Z_c),\ q_{min},\ q_{max}\big)

    in float32 (``S_c^{-1} = 1 / S_c``, multiply then add, round half to even), as
    ``torch.quantize_per_channel`` computes it for float zero points.  The result
    dequantizes to :math:`(q - Z_c)\,S_c` in float32.  Usually reached through
    :func:`qlearn.quantize_per_channel` with float zero points.

    Parameters
    ----------
    input : array_like of float
        The real values; float64 is converted to float32.
    scales : array_like of float, shape (C,)
        ``S_c > 0`` for each of the ``C = input.shape[axis]`` channels; kept in float32
        (PyTorch stores this scheme's scales as float32).
    zero_points : array_like of float, shape (C,)
        ``Z_c``, any finite numbers (``-min_c / S_c`` may fall outside the integer
        range); kept in float32.
    axis : int
        The channel axis (negative counts from the end).
    dtype : QDType
        :data:`qlearn.quint8`, :data:`qlearn.qint8` or :data:`qlearn.quint4x2` (values
        0..15; ``int_repr()`` then gives PyTorch's packed bytes, two values a byte).

    Returns
    -------
    QTensor
        Of qscheme :data:`qlearn.per_channel_affine_float_qparams`;
        ``q_per_channel_scales()`` and ``q_per_channel_zero_points()`` return float32.

    Raises
    ------
    ValueError
        If ``dtype`` is qint32 (PyTorch has no kernel for it and crashes), a scale is
        not positive and finite in float32, a zero point is not finite, the channel
        counts differ, or ``input`` holds NaN or infinity.  (PyTorch accepts a zero,
        negative or NaN scale here and returns meaningless integers.)

    Examples
    --------
    A row from -1 to 0.5 on 0..255: ``S = 1.5 / 255``, ``Z = 1 / S = 170``, and the
    minimum lands on 0:

    >>> import numpy as np, qlearn as ql
    >>> x = np.array([[-1.0, 0.0, 0.5]], np.float32)
    >>> s = np.float32(1.5) / np.float32(255)
    >>> q = ql.quantize_per_channel(x, [s], [np.float32(1.0) / s], 0, ql.quint8)
    >>> q.qscheme(), q.int_repr()
    (qlearn.per_channel_affine_float_qparams, array([[  0, 170, 255]], dtype=uint8))
    >>> q.dequantize()
    array([[-1. ,  0. ,  0.5]], dtype=float32)
    """
    dtype = V.check_dtype(dtype)
    if dtype not in _DTYPES:
        raise ValueError(f"`dtype` must be qlearn.quint8, qlearn.qint8 or qlearn.quint4x2 "
                         f"for float zero points (per_channel_affine_float_qparams), got "
                         f"{dtype!r}")
    x = V.as_float32(input, "input")
    if x.ndim == 0:
        raise ValueError("`input` must have at least one dimension for per-channel "
                         "quantization, got a 0-d array")
    axis = V.check_axis(axis, x.ndim)
    scales, zero_points = V.check_float_qparams(_data(scales), _data(zero_points),
                                                x.shape[axis])
    out = np.empty(x.shape, dtype=dtype.storage)
    if _kernels.quantize_per_channel_float_qparams(x, out, axis, np.float32(1) / scales,
                                                   zero_points, dtype.quant_min,
                                                   dtype.quant_max):
        raise ValueError("`input` must be finite: it holds NaN or infinity, which have no "
                         "quantized value")
    from .qtensor import QTensor  # (qlearn.qtensor imports this module)
    return QTensor(out, dtype, per_channel_affine_float_qparams, 1.0, 0, scales,
                   zero_points, axis)


def _data(values):
    """The array behind a Tensor (its ``data``), else ``values``."""
    data = getattr(values, "data", None)
    return data if isinstance(data, np.ndarray) else values


def embedding_bag_byte(qweight, indices, bounds, per_sample_weights=None, mode="sum"):
    r"""Reduce bags of rows of a quint8 float-qparams table, as PyTorch's packed lookup.

    Row ``i`` of ``qweight`` stands for :math:`(q - Z_i) S_i`; PyTorch's prepacked table
    keeps :math:`b_i = -(Z_i S_i)` (float32) and evaluates each element as one fused
    multiply-add, ``fma(S_i, q, b_i)``, so a row read this way can differ from
    ``dequantize()`` by one float32 ulp.  Sums accumulate ``buf = fma(w S_i, q, buf +
    w b_i)`` in index order (``w`` the per-sample weight, 1 without), as FBGEMM does.

    Parameters
    ----------
    qweight : QTensor or PackedEmbeddingWeight
        ``(N, D)``, quint8, :data:`~qlearn.per_channel_affine_float_qparams` along axis 0
        (or that table packed once, as the quantized modules keep it).
    indices : ndarray of int64, shape (L,)
        Rows read, bag after bag, each in ``[0, N)`` (checked by the caller).
    bounds : ndarray of int64, shape (B + 1,)
        Bag ``b`` is ``indices[bounds[b]:bounds[b + 1]]``.
    per_sample_weights : ndarray of float32, shape (L,), optional
    mode : {"sum", "mean", "max"}
        Mean divides the sum by the bag's size; empty bags give zeros.

    Returns
    -------
    ndarray of float32, shape (B, D)

    See Also
    --------
    embedding_bag_4bit : the same for quint4x2 tables.

    Examples
    --------
    >>> import numpy as np, qlearn as ql
    >>> from qlearn.float_qparams import embedding_bag_byte
    >>> w = ql.quantize_per_channel(np.array([[0., 1.], [2., 4.]], np.float32),
    ...                             [1 / 255, 2 / 255], [0.0, -255.0], 0, ql.quint8)
    >>> embedding_bag_byte(w, np.array([0, 1, 1]), np.array([0, 1, 3]))
    array([[0., 1.],
           [4., 8.]], dtype=float32)
    """
    packed = _packed(qweight, 8)
    return _lookup(packed, _kernels.embedding_bag_byte, indices, bounds,
                   per_sample_weights, mode)


def embedding_bag_4bit(qweight, indices, bounds, per_sample_weights=None, mode="sum"):
    r"""Reduce bags of rows of a quint4x2 float-qparams table, as PyTorch's 4-bit lookup
    (``torch.ops.quantized.embedding_bag_4bit``).

    PyTorch's 4-bit prepacked table stores each row's scale and bias in float16
    (``embedding_bag_4bit_prepack``), so each element is

    .. math::

       \hat W_{ij} = \operatorname{fma}\big(\tilde S_i,\ q_{ij},\ \tilde b_i\big),
       \qquad \tilde S_i = \mathrm{fp16}(S_i), \quad
       \tilde b_i = \mathrm{fp16}\big(-(Z_i S_i)\big)

    with :math:`q_{ij} \in [0, 15]`; the float16 rounding (11 significant bits) makes a
    row read this way differ from ``dequantize()`` by up to about :math:`2^{-11}` of
    :math:`|S_i|` and :math:`|Z_i S_i|`.  Bags reduce as :func:`embedding_bag_byte`.

    Parameters
    ----------
    qweight : QTensor or PackedEmbeddingWeight
        ``(N, D)``, :data:`qlearn.quint4x2`, per-row float qparams (axis 0).
    indices, bounds, per_sample_weights, mode
        As :func:`embedding_bag_byte`.

    Returns
    -------
    ndarray of float32, shape (B, D)

    Examples
    --------
    Scales and biases that float16 holds exactly read back exactly:

    >>> import numpy as np, qlearn as ql
    >>> from qlearn.float_qparams import embedding_bag_4bit
    >>> w = ql.quantize_per_channel(np.array([[0., 1.5], [-1., 6.5]], np.float32),
    ...                             [0.5, 0.5], [0.0, 2.0], 0, ql.quint4x2)
    >>> embedding_bag_4bit(w, np.array([0, 1, 1]), np.array([0, 1, 3]))
    array([[ 0. ,  1.5],
           [-2. , 13. ]], dtype=float32)
    """
    packed = _packed(qweight, 4)
    return _lookup(packed, _kernels.embedding_bag_4bit, indices, bounds,
                   per_sample_weights, mode)


def _packed(qweight, bits):
    packed = qweight if isinstance(qweight, PackedEmbeddingWeight) else \
        PackedEmbeddingWeight(qweight)
    if packed.bits != bits:
        raise TypeError(f"`qweight` must be a {'quint8' if bits == 8 else 'quint4x2'} "
                        f"table for this lookup, got {packed.qweight.dtype!r}")
    return packed


def _lookup(packed, kernel, indices, bounds, per_sample_weights, mode):
    """Check the bags against the table and run ``kernel`` (8- or 4-bit)."""
    modes = {"sum": 0, "mean": 1, "max": 2}
    if mode not in modes:
        raise ValueError(f"`mode` must be one of 'sum', 'mean' or 'max', got {mode!r}")
    ints, scales, biases = packed.ints, packed.scales, packed.biases
    rows = ints.shape[0]
    weights = np.zeros(0, np.float32) if per_sample_weights is None else \
        np.ascontiguousarray(per_sample_weights, np.float32)
    indices = np.ascontiguousarray(indices, np.int64)
    bounds = np.ascontiguousarray(bounds, np.int64)
    # the kernel reads without bounds checks: nothing out of range may reach it
    if indices.ndim != 1 or (indices.size and (indices.min() < 0
                                               or indices.max() >= rows)):
        raise IndexError(f"`indices` must be a 1-d array in [0, {rows})")
    if bounds.ndim != 1 or bounds.size < 1 or bounds[0] != 0 \
            or np.any(np.diff(bounds) < 0) or bounds[-1] > indices.size:
        raise ValueError(f"`bounds` must be non-decreasing from 0 to at most "
                         f"{indices.size}, got {bounds.tolist()[:8]}")
    if weights.size and weights.shape != indices.shape:
        raise ValueError(f"`per_sample_weights` must have shape {indices.shape}, got "
                         f"{weights.shape}")
    out = np.empty((bounds.size - 1, packed.embedding_dim), np.float32)
    kernel(ints, scales, biases, indices, bounds, weights, modes[mode], out)
    return out


class PackedEmbeddingWeight:
    """A float-qparams table as the lookup reads it, built once per weight (PyTorch's
    ``embedding_bag_prepack``).

    quint8: the C-contiguous integers, the float32 scales and the biases
    ``-(Z_i S_i)``.  quint4x2: the rows packed two values a byte (``(N, ceil(D / 2))``,
    low nibble first; each row starts on a byte, unlike ``int_repr()``'s flat packing),
    and the scales and biases rounded to float16 as PyTorch stores them (kept as float32
    here).

    >>> import numpy as np, qlearn as ql
    >>> from qlearn.float_qparams import PackedEmbeddingWeight
    >>> w = ql.quantize_per_channel(np.array([[0., 1., 2.]], np.float32), [1.0], [0.0],
    ...                             0, ql.quint4x2)
    >>> p = PackedEmbeddingWeight(w)
    >>> p.bits, p.ints, p.embedding_dim
    (4, array([[16,  2]], dtype=uint8), 3)
    """

    def __init__(self, qweight):
        from .qtensor import QTensor
        if not isinstance(qweight, QTensor) or qweight.dtype not in (quint8, quint4x2) \
                or qweight.qscheme() is not per_channel_affine_float_qparams \
                or qweight.ndim != 2 or qweight.q_per_channel_axis() != 0:
            raise TypeError("`qweight` must be a 2-d quint8 or quint4x2 QTensor quantized "
                            "per row with qlearn.per_channel_affine_float_qparams (axis 0)")
        self.qweight = qweight
        self.bits = qweight.dtype.bits
        self.embedding_dim = qweight.shape[1]
        scales = qweight.q_per_channel_scales()
        biases = -(qweight.q_per_channel_zero_points() * scales)       # float32
        if self.bits == 8:
            self.ints = np.ascontiguousarray(qweight.int_repr())
            self.scales, self.biases = scales, biases
        else:
            self.ints = _pack_rows(qweight._int)
            self.scales = scales.astype(np.float16).astype(np.float32)
            self.biases = biases.astype(np.float16).astype(np.float32)


def _pack_rows(values):
    """(N, D) 4-bit values, one a byte -> (N, ceil(D / 2)) bytes, low nibble first."""
    v = np.ascontiguousarray(values, np.uint8)
    if v.shape[1] % 2:
        v = np.concatenate([v, np.zeros((v.shape[0], 1), np.uint8)], axis=1)
    return np.ascontiguousarray(v[:, 0::2] | (v[:, 1::2] << 4))
