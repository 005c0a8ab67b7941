r"""Slow NumPy twins of the kernels, written as the equations (for tests and reading).

Each function here is the literal formula of a docs equation, with the same float32
arithmetic as the kernel it mirrors; the tests require the kernels to agree with these
to the last bit.
"""
import numpy as np

f32 = np.float32


def _fma32(a, b, c):
    """float32(a * b + c) with a single rounding: the float32 product is exact in
    float64 (24 + 24 < 53 bits), and one float64 addition then one float32 rounding
    reproduces fmaf except in double-rounding corner cases far rarer than a tie."""
    return (a.astype(np.float64) * np.float64(b) + np.float64(c)).astype(f32)


def quantize_per_tensor_ref(x, scale, zero_point, quant_min, quant_max, fused=True):
    r"""Eq. :eq:`quantize`: :math:`q = \mathrm{clamp}(\mathrm{round}(x / S + Z),
    q_{min}, q_{max})`."""
    x = np.asarray(x, dtype=f32)
    inv_scale = f32(1) / f32(scale)
    with np.errstate(over="ignore"):   # |x / S| beyond float32 is inf, then clamped
        t = _fma32(x, inv_scale, zero_point) if fused else x * inv_scale + f32(zero_point)
    # clamp in float64: float32 cannot hold qint32's quant_max (2**31 - 1 rounds up)
    return np.clip(np.rint(t).astype(np.float64), quant_min, quant_max).astype(np.int64)


def quantize_per_channel_ref(x, scales, zero_points, axis, quant_min, quant_max):
    r"""Eq. :eq:`per-channel`: one :math:`(S_c, Z_c)` per slice along ``axis`` (multiply,
    then add)."""
    x = np.asarray(x, dtype=f32)
    shape = [1] * x.ndim
    shape[axis] = -1
    inv = (f32(1) / np.asarray(scales, dtype=f32)).reshape(shape)
    zp = np.asarray(zero_points).astype(f32).reshape(shape)
    return np.clip(np.rint(x * inv + zp).astype(np.float64), quant_min,
                   quant_max).astype(np.int64)


def dequantize_per_tensor_ref(q, scale, zero_point):
    r"""Eq. :eq:`dequantize`: :math:`r = (q - Z)\,S` in float32."""
    return (np.asarray(q, dtype=np.int64) - zero_point).astype(f32) * f32(scale)


def dequantize_per_channel_ref(q, scales, zero_points, axis):
    r"""Eq. :eq:`dequantize` per channel, the product taken in float64 then rounded to float32."""
    q = np.asarray(q, dtype=np.int64)
    shape = [1] * q.ndim
    shape[axis] = -1
    s = np.asarray(scales, dtype=np.float64).reshape(shape)
    z = np.asarray(zero_points, dtype=np.int64).reshape(shape)
    return ((q - z) * s).astype(f32)
