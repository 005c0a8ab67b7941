"""Argument checks shared by every public function.

Each check raises a ``TypeError`` or ``ValueError`` naming the argument, what it must
be and what it got, so that no kernel ever sees bad input.  Kernels then run with
``boundscheck(False)``.
"""
import math
import numbers

import numpy as np

from .dtypes import QDType, QScheme


def shown(value, width=40):
    """``repr(value)`` cut to ``width`` characters (a 400-digit int stays readable)."""
    text = repr(value)
    return text if len(text) <= width else f"{text[:width - 12]}...({len(text)} chars)"


def as_float32(x, name="x"):
    """Return ``x`` as a C-contiguous float32 ndarray (float64 and lists are converted).

    Accepts NumPy arrays, Python numbers and nested lists, and any object with
    ``__array__`` (a :class:`qlearn.Tensor`, a torch tensor).  Integer, boolean and
    complex data are rejected: quantizing them is almost always a mistake.
    """
    if not isinstance(x, np.ndarray):
        if isinstance(x, (str, bytes)) or x is None:
            raise TypeError(f"`{name}` must be an array of floats, got {type(x).__name__}")
        try:
            x = np.asarray(x)
        except Exception as exc:  # ragged lists, unconvertible objects
            raise TypeError(f"`{name}` must be an array of floats, got "
                            f"{type(x).__name__}: {exc}") from None
    if x.dtype.kind != "f":
        raise TypeError(f"`{name}` must hold floating-point values (float32 or float64), "
                        f"got dtype {x.dtype}")
    x = np.asarray(x, dtype=np.float32, order="C")  # ascontiguousarray makes 0-d 1-d
    # a C array can still be unaligned (a view at an odd byte offset); the kernels read
    # whole float32s, so they get an aligned copy
    return x if x.flags.aligned else x.copy()


def check_all_finite(x, name="x"):
    """Raise ``ValueError`` if ``x`` holds NaN or infinity."""
    if x.size and not np.isfinite(x).all():
        bad = x.ravel()[~np.isfinite(x.ravel())][0]
        raise ValueError(f"`{name}` must be finite, got a {bad} value")


def check_dtype(dtype, name="dtype", allowed=None):
    """Return ``dtype`` if it is a quantized dtype (one of ``allowed`` when given)."""
    if not isinstance(dtype, QDType):
        raise TypeError(f"`{name}` must be qlearn.quint8, qlearn.qint8 or qlearn.qint32, "
                        f"got {dtype!r}")
    if allowed is not None and dtype not in allowed:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, allowed))}, "
                         f"got {dtype!r}")
    return dtype


def check_qscheme(qscheme, name="qscheme", allowed=None):
    """Return ``qscheme`` if it is a qscheme (one of ``allowed`` when given)."""
    if not isinstance(qscheme, QScheme):
        raise TypeError(f"`{name}` must be a qlearn qscheme such as "
                        f"qlearn.per_tensor_affine, got {qscheme!r}")
    if allowed is not None and qscheme not in allowed:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, allowed))}, "
                         f"got {qscheme!r}")
    return qscheme


# 1 / float32(scale) overflows float32 below this scale
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_SMALLEST_SCALE = 1.0 / _FLOAT32_MAX


def _scalar(value, name, kind):
    if type(value) in (float, int):  # the common case, kept cheap
        return value
    if isinstance(value, np.ndarray) or hasattr(value, "__array__"):
        arr = np.asarray(value)
        if arr.size != 1:
            raise ValueError(f"`{name}` must be a single {kind}, got an array of shape "
                             f"{arr.shape}")
        value = arr.reshape(()).item()
    return value


def is_int(value):
    """Whether ``value`` is an integer index or size: a Python or NumPy integer, not a
    bool (torch refuses a bool where it takes an int)."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))


def check_size(value, name, minimum=0, who=None):
    """Return ``value`` as an int, checking it is a whole number >= ``minimum``.

    Layer sizes (``in_features``, ``out_channels``, ...) are checked here so that a bad one
    gets a message naming it instead of NumPy's "negative dimensions are not allowed".
    """
    prefix = f"{who}: " if who else ""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{prefix}`{name}` must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{prefix}`{name}` must be an integer >= {minimum}, got {value}")
    return int(value)


def check_scale(scale, name="scale"):
    """Return ``scale`` as a Python float, checking it is positive, finite and usable.

    The kernels compute ``inv_scale = 1.0f / float32(scale)``, so a scale that is
    positive in float64 but zero or subnormal-overflowing in float32 is refused too.
    """
    scale = _scalar(scale, name, "positive number")
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise TypeError(f"`{name}` must be a positive finite number, got {scale!r}")
    try:
        scale = float(scale)
    except OverflowError:   # an int beyond float64
        raise ValueError(f"`{name}` must be a positive finite number, got "
                         f"{shown(scale)}") from None
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"`{name}` must be a positive finite number, got {scale}")
    if scale > _FLOAT32_MAX:   # float32(scale) = inf: every value would quantize to Z
        raise ValueError(f"`{name}` must be at most the float32 maximum "
                         f"({_FLOAT32_MAX:.7g}), got {scale}")
    if float(np.float32(scale)) < _SMALLEST_SCALE:
        raise ValueError(f"`{name}` is too small for float32 arithmetic "
                         f"(1/scale overflows), got {scale}")
    return scale


def check_zero_point(zero_point, quant_min, quant_max, name="zero_point"):
    """Return ``zero_point`` as an int, checking it lies in ``[quant_min, quant_max]``."""
    zero_point = _scalar(zero_point, name, "integer")
    if isinstance(zero_point, float) and zero_point.is_integer():
        zero_point = int(zero_point)  # torch accepts zero points stored as floats
    if isinstance(zero_point, bool) or not isinstance(zero_point, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {zero_point!r}")
    zero_point = int(zero_point)
    if not quant_min <= zero_point <= quant_max:
        raise ValueError(f"`{name}` must be in [{quant_min}, {quant_max}], got {zero_point}")
    return zero_point


def check_scales(scales, channels, name="scales"):
    """Return per-channel ``scales`` as a float64 array of length ``channels``."""
    arr = np.asarray(scales)
    if arr.dtype.kind not in "fiu" or arr.ndim != 1:
        raise TypeError(f"`{name}` must be a 1-d array of positive numbers, got "
                        f"{arr.dtype} array of shape {arr.shape}")
    arr = arr.astype(np.float64)
    if arr.shape[0] != channels:
        raise ValueError(f"`{name}` must have one entry per channel ({channels}), "
                         f"got {arr.shape[0]}")
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        inv = np.float32(1) / arr.astype(np.float32)
    bad = ~(np.isfinite(arr) & (arr > 0) & (arr <= _FLOAT32_MAX) & np.isfinite(inv))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"`{name}` must be positive finite numbers usable in float32, "
                         f"got {arr[i]} at channel {i}")
    return arr


def check_zero_points(zero_points, channels, quant_min, quant_max, name="zero_points"):
    """Return per-channel ``zero_points`` as an int64 array of length ``channels``."""
    try:
        arr = np.asarray(zero_points)
    except (TypeError, ValueError, OverflowError) as exc:   # ragged or huge Python ints
        raise TypeError(f"`{name}` must be a 1-d array of integers, got "
                        f"{type(zero_points).__name__}: {exc}") from None
    if arr.dtype.kind == "f" and arr.ndim == 1 and np.all(np.isfinite(arr)) \
            and np.all(np.mod(arr, 1) == 0):
        arr = arr.astype(np.int64)  # torch.zeros(3) is a valid zero-point tensor there
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise TypeError(f"`{name}` must be a 1-d array of integers, got {arr.dtype} "
                        f"array of shape {arr.shape}")
    if arr.shape[0] != channels:
        raise ValueError(f"`{name}` must have one entry per channel ({channels}), "
                         f"got {arr.shape[0]}")
    # compare before converting: uint64 values above 2**63 would wrap to negatives
    bad = (arr < quant_min) | (arr > quant_max)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"`{name}` must be in [{quant_min}, {quant_max}], got {arr[i]} "
                         f"at channel {i}")
    return arr.astype(np.int64)


def check_axis(axis, ndim, name="axis"):
    """Return ``axis`` normalised to ``[0, ndim)``."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {axis!r}")
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"`{name}` must be in [{-ndim}, {ndim - 1}] for a {ndim}-d "
                         f"tensor, got {axis}")
    return axis % ndim



def check_broadcast(shape_a, shape_b, who, a="a", b="b"):
    """The broadcast shape of ``shape_a`` and ``shape_b``; a ``ValueError`` naming both
    arguments and the first dimension (counted as PyTorch counts it, in the result)
    where their sizes differ and neither is 1."""
    shape_a, shape_b = tuple(shape_a), tuple(shape_b)
    if shape_a == shape_b:
        return shape_a
    n = max(len(shape_a), len(shape_b))
    pa, pb = (1,) * (n - len(shape_a)) + shape_a, (1,) * (n - len(shape_b)) + shape_b
    for d in range(n):
        if pa[d] != pb[d] and pa[d] != 1 and pb[d] != 1:
            prefix = f"{who}: " if who else ""
            raise ValueError(f"{prefix}`{a}` of shape {shape_a} and `{b}` of shape "
                             f"{shape_b} do not broadcast: the size of `{a}` ({pa[d]}) "
                             f"must match the size of `{b}` ({pb[d]}) at non-singleton "
                             f"dimension {d}")
    return tuple(max(x, y) if min(x, y) != 0 else 0 for x, y in zip(pa, pb))


def check_cat_shapes(shapes, dim, who, name="tensors"):
    """``dim`` normalised for concatenating arrays of ``shapes`` along it; a
    ``ValueError`` naming the first element whose rank or size (in a dimension other
    than ``dim``) differs from ``name[0]``'s."""
    shapes = [tuple(s) for s in shapes]
    prefix = f"{who}: " if who else ""
    first = shapes[0]
    for i, s in enumerate(shapes[1:], 1):
        if len(s) != len(first):
            raise ValueError(f"{prefix}`{name}[{i}]` must be {len(first)}-d like "
                             f"`{name}[0]` (shape {first}), got shape {s}")
    dim = check_axis(dim, len(first), "dim")
    for i, s in enumerate(shapes[1:], 1):
        for d, (x, y) in enumerate(zip(first, s)):
            if d != dim and x != y:
                raise ValueError(f"{prefix}sizes of `{name}` must match except in "
                                 f"dimension {dim}: `{name}[{i}]` has size {y} in "
                                 f"dimension {d}, `{name}[0]` has {x} (shapes {first} "
                                 f"and {s})")
    return dim


def check_float_qparams(scales, zero_points, channels):
    """Return ``(scales, zero_points)`` of a ``per_channel_affine_float_qparams`` tensor
    as float32 arrays of length ``channels``.

    The scales must be positive and finite in float32 (so that ``1 / S`` is finite);
    the zero points any finite numbers (``-min / S`` may lie outside the integer range,
    and PyTorch does not bound them).
    """
    # check_scales already requires float32(S) > 0 with a finite 1 / float32(S)
    s = check_scales(scales, channels).astype(np.float32)
    try:
        z = np.asarray(zero_points)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`zero_points` must be a 1-d array of numbers, got "
                        f"{type(zero_points).__name__}: {exc}") from None
    if z.dtype.kind not in "fiub" or z.ndim != 1:
        raise TypeError(f"`zero_points` must be a 1-d array of numbers, got {z.dtype} "
                        f"array of shape {z.shape}")
    if z.shape[0] != channels:
        raise ValueError(f"`zero_points` must have one entry per channel ({channels}), "
                         f"got {z.shape[0]}")
    with np.errstate(over="ignore"):
        z32 = z.astype(np.float32)
    bad = ~np.isfinite(z32)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"`zero_points` must be finite numbers usable in float32, got "
                         f"{z[i]!r} at channel {i}")
    return s, z32


def _beyond_int64(v):
    """Whether ``v`` is a Python int outside int64 (NumPy keeps such an index as an
    object, or overflows on it)."""
    return type(v) is int and not -2**63 <= v < 2**63


def index_error(err, key, shape):
    """The IndexError torch raises where indexing an array of ``shape`` with ``key``
    raised ``err`` in NumPy (an IndexError or OverflowError), or None to let ``err``
    stand: an integer beyond int64 is out of range (NumPy calls it no integer at all, or
    overflows, and names no index), and an index out of bounds is so "for dimension",
    not "for axis"."""
    huge = [k for k in (key if isinstance(key, tuple) else (key,)) if _beyond_int64(k)]
    if huge or isinstance(err, OverflowError):
        return IndexError(f"index {huge[0] if huge else shown(key, 60)} is out of range "
                          f"for a tensor of shape {tuple(shape)}")
    msg = str(err)
    if msg.startswith("index ") and " is out of bounds for axis " in msg:
        return IndexError(msg.replace(" for axis ", " for dimension ", 1))
    return None


def check_index_vector(index, size, dim, name="index"):
    """``index`` (the argument of ``index_select``: a 0-d or 1-d integer index, an
    empty float list counted as empty) as a 1-d ``intp`` array of indices into a
    dimension ``dim`` of length ``size``, by torch's rules: ``TypeError`` for a
    non-integer index, ``IndexError`` for one of more than one dimension or an index
    outside ``[0, size)`` (negative ones included)."""
    try:
        idx = np.asarray(index)
    except (TypeError, ValueError):
        idx = None
    if (idx is not None and idx.dtype == object and idx.size
            and all(type(v) is int for v in idx.reshape(-1))):
        # Python integers beyond int64 (NumPy keeps them as objects): integers, out of
        # range, not non-integers
        if idx.ndim > 1:
            raise IndexError(f"`{name}` must be a vector (0-d or 1-d), got shape "
                             f"{idx.shape}")
        bad = next(v for v in idx.reshape(-1) if not 0 <= v < size)
        raise IndexError(f"`{name}` must hold indices in [0, {size - 1}] for dimension "
                         f"{dim} of length {size}, got {bad}")
    if idx is None or not (idx.dtype.kind in "iu" or (idx.size == 0
                                                      and idx.dtype.kind == "f")):
        raise TypeError(f"`{name}` must be a vector of integers, got {shown(index)}"
                        + (f" of {idx.dtype}" if idx is not None else ""))
    if idx.ndim > 1:    # torch's class for a bad index shape
        raise IndexError(f"`{name}` must be a vector (0-d or 1-d), got shape {idx.shape}")
    if not idx.size:
        return np.zeros(0, np.intp)
    idx = idx.reshape(-1)
    bad = idx[(idx < 0) | (idx >= size)]      # before the cast: a uint64 could wrap
    if bad.size:
        raise IndexError(f"`{name}` must hold indices in [0, {size - 1}] for dimension "
                         f"{dim} of length {size}, got {int(bad[0])}")
    return idx.astype(np.intp)


def check_shape(shape, size, name="shape"):
    """``shape`` (the arguments of ``reshape`` / ``view``) checked by torch's rules for a
    tensor of ``size`` elements, before NumPy sees it: integers (not bools), each ``>= 0``
    or one ``-1``, multiplying to ``size`` (Python integers: no int64 wrap-around).
    Returns the shape with the ``-1`` resolved.  (NumPy takes any negative size for
    ``-1``, and its messages name no argument.)"""
    if not shape and size != 1:
        raise ValueError(f"`{name}` () is invalid for a tensor of {size} elements")
    dims = []
    for k, v in enumerate(shape):
        if not is_int(v):
            raise TypeError(f"`{name}` must be a tuple of integers, got {shown(shape)} "
                            f"(element {k} is {type(v).__name__} {shown(v, 20)})")
        if int(v) < -1:
            raise ValueError(f"`{name}` {shown(shape)}: invalid size {int(v)} at index "
                             f"{k} (sizes are >= 0, or -1 for the one inferred)")
        dims.append(int(v))
    if dims.count(-1) > 1:
        raise ValueError(f"`{name}` {shown(shape)}: only one dimension can be -1 "
                         f"(inferred)")
    known = math.prod(v for v in dims if v != -1)
    if -1 in dims:
        if known == 0 or size % known:
            why = " (-1 is ambiguous next to a size 0)" if known == 0 else ""
            raise ValueError(f"`{name}` {shown(shape)} is invalid for a tensor of {size} "
                             f"elements{why}")
        dims[dims.index(-1)] = size // known
    elif known != size:
        raise ValueError(f"`{name}` {shown(shape)} is invalid for a tensor of {size} "
                         f"elements (it holds {known})")
    return tuple(dims)


def check_expand(sizes, shape, name="sizes"):
    """The shape ``expand(*sizes)`` gives a tensor of shape ``shape``, by torch's rules:
    at least one size per dimension (new ones lead), integers, ``-1`` keeping an
    existing dimension, and only dimensions of length 1 changing."""
    n = len(shape)
    if len(sizes) < n:
        raise ValueError(f"`{name}` must name at least {n} sizes (one per dimension), "
                         f"got {sizes}")
    k = len(sizes) - n
    out = []
    for i, s in enumerate(sizes):
        if not is_int(s):
            raise TypeError(f"`{name}` must be integers, got {sizes}")
        s = int(s)
        old = shape[i - k] if i >= k else None
        if s == -1 and old is not None:
            s = old
        if s < 0:
            raise ValueError(f"`{name}` must be non-negative (or -1 for an existing "
                             f"dimension), got {sizes}")
        if old is not None and old != 1 and s != old:
            raise ValueError(f"`{name}` must keep the length {old} of dimension {i - k} "
                             f"(only axes of length 1 expand), got {sizes}")
        out.append(s)
    return tuple(out)
