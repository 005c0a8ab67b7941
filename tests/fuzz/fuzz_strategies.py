"""Hypothesis strategies for the fuzz suite: arrays of every layout, extreme values and
quantization parameters, valid and not.

Everything here is drawn inside the worker process (fuzz_worker.py), so that a crash
kills a worker, not the test run.
"""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

F32 = np.finfo(np.float32)
F32_MAX = float(F32.max)

# Values that break arithmetic: the float32 limits, subnormals, signed zeros, ulps
# around the integers and halves where rounding decides.
EXTREME_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 127.5, 255.5, -128.5,
                  F32_MAX, -F32_MAX, 3e38, -3e38, 1e38, -1e38, float(F32.tiny),
                  -float(F32.tiny), 1e-45, -1e-45, 1e-40, 2.0 ** 23, 2.0 ** 24 + 1,
                  2.0 ** 31, -2.0 ** 31, 2.0 ** 63, 1e10, -1e10, 0.1, 1.0 / 3]
NONFINITE = [float("nan"), float("inf"), float("-inf")]

FLOAT_DTYPES = [np.float32, np.float64, np.float16, ">f4", ">f8"]
OTHER_DTYPES = [np.int8, np.uint8, np.int32, np.int64, np.uint64, np.bool_, np.complex64,
                object]


def finite_floats(width=32):
    """Floats that fit float32, extremes included."""
    return st.one_of(
        st.sampled_from(EXTREME_FLOATS),
        st.floats(-1e4, 1e4, width=width),
        st.floats(-F32_MAX, F32_MAX, width=32, allow_subnormal=True),
    )


def small_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


@st.composite
def layouts(draw, base):
    """``base`` in one of many memory layouts (same values, or a view with other strides)."""
    kind = draw(st.sampled_from(["c", "f", "neg", "strided", "readonly", "broadcast",
                                 "list", "unaligned", "c", "c"]))
    if kind == "unaligned" and base.dtype.isnative:
        # the same values at an odd address (SIMD loads must not assume alignment)
        raw = np.zeros(base.nbytes + 1, np.uint8)
        out = np.frombuffer(raw.data, base.dtype, base.size, 1).reshape(base.shape)
        out[...] = base
        return out
    if kind == "f":
        return np.asfortranarray(base)
    if kind == "neg" and base.ndim:
        return base[::-1]
    if kind == "strided" and base.ndim:
        big = np.repeat(base, 2, axis=-1)
        return big[..., ::2]
    if kind == "readonly":
        out = base.copy()
        out.setflags(write=False)
        return out
    if kind == "broadcast" and base.ndim:
        return np.broadcast_to(base[..., :1], base.shape) if base.shape[-1] else base
    if kind == "list" and base.dtype.kind == "f" and base.dtype.isnative and base.size:
        # (an empty array's nested list loses its shape: [] for (0, 3))
        return base.tolist()
    return base


@st.composite
def float_arrays(draw, shape=None, allow_nonfinite=False, min_dims=0, max_dims=4,
                 min_side=0, max_side=6, dtypes=FLOAT_DTYPES):
    """Float arrays (float16/32/64, big-endian too) in any layout."""
    if shape is None:
        shape = draw(small_shapes(min_dims, max_dims, min_side, max_side))
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    elems = finite_floats()
    if allow_nonfinite:
        elems = st.one_of(elems, st.sampled_from(NONFINITE))
    values = draw(hnp.arrays(np.float64, shape, elements=elems))
    with np.errstate(over="ignore"):
        arr = values.astype(dtype)          # float16 turns big values into inf
    return draw(layouts(arr))


@st.composite
def any_arrays(draw, shape=None, max_dims=4):
    """Arrays of any dtype, floats most often, plus non-array inputs."""
    choice = draw(st.integers(0, 9))
    if choice < 6:
        return draw(float_arrays(shape=shape, allow_nonfinite=draw(st.booleans()),
                                 max_dims=max_dims))
    if choice == 6:
        return draw(st.sampled_from([None, "abc", b"x", 1.5, 3, [[1.0], [2.0, 3.0]],
                                     {"a": 1}, [], (), object()]))
    if shape is None:
        shape = draw(small_shapes(0, max_dims))
    dtype = np.dtype(draw(st.sampled_from(OTHER_DTYPES)))
    if dtype.kind == "O":
        return np.full(shape, 1.5, dtype=object)
    return draw(layouts(np.zeros(shape, dtype)))


def scales(valid_only=False):
    """Scales: ordinary, extreme but valid, and (unless ``valid_only``) invalid ones."""
    valid = st.one_of(
        st.floats(1e-4, 10.0),
        st.sampled_from([1.0, 0.1, 1 / 3, 1e-38, 3e-39, float(F32.tiny), 1e-20, 1e20,
                         1e38, 3e38, F32_MAX, 2.0 ** -126]),
    )
    if valid_only:
        return valid
    invalid = st.sampled_from([0.0, -1.0, -0.0, float("nan"), float("inf"), 1e39, 1e-40,
                               1e-300, 1e300, "0.1", None, True, np.array([0.1, 0.2])])
    return st.one_of(valid, valid, valid, invalid)


def zero_points(qmin, qmax, valid_only=False):
    valid = st.one_of(st.integers(qmin, qmax), st.sampled_from([qmin, qmax, (qmin + qmax) // 2]))
    if valid_only:
        return valid
    invalid = st.sampled_from([qmin - 1, qmax + 1, 2 ** 63, -2 ** 63, 2 ** 64, 1.5,
                               float("nan"), "0", None, True])
    return st.one_of(valid, valid, valid, invalid)


def axes(ndim, valid_only=False):
    if ndim == 0:
        return st.sampled_from([0, -1]) if not valid_only else st.nothing()
    valid = st.integers(-ndim, ndim - 1)
    if valid_only:
        return valid
    return st.one_of(valid, valid, st.sampled_from([ndim, -ndim - 1, 10 ** 6, 1.0, None,
                                                     True, "0"]))


def index_keys(shape):
    """Indexing keys: basic (ints, slices with any step, ..., None) and advanced (bool,
    integer arrays), in range and not."""
    ndim = len(shape)
    one = st.one_of(
        st.integers(-8, 8),
        st.builds(slice, st.none() | st.integers(-8, 8), st.none() | st.integers(-8, 8),
                  st.none() | st.sampled_from([1, 2, -1, -2, 3])),
        st.just(Ellipsis), st.just(None), st.booleans(), st.just(np.True_),
        st.lists(st.integers(-4, 4), max_size=3).map(lambda v: np.array(v, np.intp)),
    )
    return st.one_of(one, st.lists(one, max_size=ndim + 1).map(tuple))
