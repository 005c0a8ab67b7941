"""Fuzz targets: one function per public entry point, each drawing its own arguments.

A target draws arguments (valid and invalid), calls qlearn, and checks the outcome:

* all arguments valid -> it must succeed and agree with the NumPy reference
  (``qlearn/reference.py`` or the equation written out here);
* some argument invalid -> ``ValueError`` or ``TypeError`` whose message names it;
* anything else (another exception, a wrong number, a crash) is a failure.

``note`` writes each case to the worker's log before the call, so that a crash (which
kills the worker) is reported with the case that caused it.
"""
import contextlib
import copy
import io
import os
import pickle
import warnings

import fuzz_strategies as S
import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

import qlearn as ql
import qlearn.nn.intrinsic.quantized as nniq
import qlearn.nn.quantized as nnq
import qlearn.nn.quantized.dynamic as nnqd
import qlearn.nn.quantized.functional as qF
from qlearn import reference
from qlearn.quantization import calibrators, fake_quantize, observer
from qlearn.quantizers import (
    dorefa_quantize_activation,
    dorefa_quantize_weight,
    pact_quantize,
    wrpn_quantize_activation,
    wrpn_quantize_weight,
)

F32_MAX = S.F32_MAX
DTYPES = [ql.quint8, ql.qint8, ql.qint32]
LOG_FD = None           # set by the worker
COUNTS = {}             # target -> cases run


def note(target, **desc):
    """Record the case about to run (flushed: survives a crash)."""
    COUNTS[target] = COUNTS.get(target, 0) + 1
    if LOG_FD is not None:
        parts = []
        for k, v in desc.items():
            if isinstance(v, np.ndarray):
                v = (f"ndarray(shape={v.shape}, dtype={v.dtype}, strides={v.strides}, "
                     f"values={np.array2string(v.ravel()[:8], threshold=8)})")
            parts.append(f"{k}={v!r:.300}")
        os.write(LOG_FD, f"{target}: {', '.join(parts)}\n".encode())


def expect_arg_error(fn, names, *args, **kwargs):
    """``fn(*args)`` must raise ValueError/TypeError naming one of ``names``."""
    try:
        fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        assert any(n in msg for n in names), \
            f"the error does not name any of {names}: {type(exc).__name__}: {msg}"
        return exc
    raise AssertionError(f"accepted invalid arguments (expected an error naming {names})")


def outcome(fn, *args, **kwargs):
    """(True, result) or (False, exc) for ValueError/TypeError; other errors propagate."""
    try:
        return True, fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        return False, exc


def as32(x):
    with np.errstate(over="ignore"):
        return np.asarray(x, dtype=np.float32)


def is_float_input(x):
    if isinstance(x, (list, tuple, float)):
        try:
            return np.asarray(x).dtype.kind == "f"
        except ValueError:
            return False
    return isinstance(x, np.ndarray) and x.dtype.kind == "f"


def finite32(x):
    return bool(np.isfinite(as32(x)).all())


def valid_scale(s):
    if isinstance(s, bool) or not isinstance(s, (int, float)):
        return False
    return (np.isfinite(s) and 0 < s <= F32_MAX
            and float(np.float32(s)) >= 1.0 / F32_MAX)


def valid_zp(z, dtype):
    if isinstance(z, float) and np.isfinite(z) and z.is_integer():
        z = int(z)
    return (isinstance(z, int) and not isinstance(z, bool)
            and dtype.quant_min <= z <= dtype.quant_max)


# --- quantize / dequantize ----------------------------------------------------------------
def t_quantize_per_tensor(data):
    x = data.draw(S.any_arrays())
    dtype = data.draw(st.sampled_from(DTYPES))
    scale = data.draw(S.scales())
    zp = data.draw(S.zero_points(dtype.quant_min, dtype.quant_max))
    note("quantize_per_tensor", x=x, scale=scale, zp=zp, dtype=dtype)
    valid = (is_float_input(x) and finite32(x) and valid_scale(scale) and valid_zp(zp, dtype))
    if not valid:
        expect_arg_error(ql.quantize_per_tensor, ("`input`", "`scale`", "`zero_point`"),
                         x, scale, zp, dtype)
        return
    q = ql.quantize_per_tensor(x, scale, zp, dtype)
    x32 = as32(x)
    assert q.shape == x32.shape
    ref = reference.quantize_per_tensor_ref(x32, scale, int(zp), dtype.quant_min,
                                            dtype.quant_max, dtype is not ql.qint32)
    np.testing.assert_array_equal(q.int_repr(), ref)
    deq = reference.dequantize_per_tensor_ref(q.int_repr(), scale, int(zp))
    np.testing.assert_array_equal(q.dequantize(), deq)


def t_quantize_per_channel(data):
    x = data.draw(S.float_arrays(min_dims=1, allow_nonfinite=data.draw(st.booleans())))
    shape = np.shape(x)
    dtype = data.draw(st.sampled_from(DTYPES))
    axis = data.draw(S.axes(len(shape)))
    ok_axis = isinstance(axis, int) and not isinstance(axis, bool) \
        and -len(shape) <= axis < len(shape)
    c = shape[axis] if ok_axis else 2
    n = data.draw(st.sampled_from([c, c, c, c + 1, max(c - 1, 0)]))
    sc = data.draw(st.lists(S.scales(valid_only=True), min_size=n, max_size=n))
    if data.draw(st.integers(0, 5)) == 0 and n:
        sc[0] = data.draw(st.sampled_from([0.0, -1.0, float("nan"), 1e39, 1e-41]))
    zps = data.draw(st.lists(S.zero_points(dtype.quant_min, dtype.quant_max, True),
                             min_size=n, max_size=n))
    zdt = data.draw(st.sampled_from([np.int64, np.int32, np.uint64, np.float64]))
    if zdt in (np.uint64,) and any(z < 0 for z in zps):
        zdt = np.int64
    if data.draw(st.integers(0, 5)) == 0 and n:
        zps[0] = data.draw(st.sampled_from([dtype.quant_max + 1, dtype.quant_min - 1]))
        zdt = np.int64
    zarr = np.array(zps, dtype=zdt)
    note("quantize_per_channel", x=x, scales=sc, zps=zarr, axis=axis, dtype=dtype)
    if zdt is np.float64:     # float zero points: per_channel_affine_float_qparams
        _quantize_per_channel_float_qparams(x, sc, zarr, axis, dtype, ok_axis, n == c)
        return
    valid = (finite32(x) and ok_axis and n == c and all(valid_scale(s) for s in sc)
             and all(dtype.quant_min <= z <= dtype.quant_max for z in zps))
    if not valid:
        expect_arg_error(ql.quantize_per_channel, ("`input`", "`scales`", "`zero_points`",
                                                   "`axis`"), x, sc, zarr, axis, dtype)
        return
    q = ql.quantize_per_channel(x, sc, zarr, axis, dtype)
    ref = reference.quantize_per_channel_ref(as32(x), sc, zps, axis, dtype.quant_min,
                                             dtype.quant_max)
    np.testing.assert_array_equal(q.int_repr(), ref)
    np.testing.assert_array_equal(q.q_per_channel_zero_points(), zps)
    deq = reference.dequantize_per_channel_ref(q.int_repr(), sc, zps, axis)
    np.testing.assert_array_equal(q.dequantize(), deq)


def _quantize_per_channel_float_qparams(x, sc, zarr, axis, dtype, ok_axis, same_count):
    """Float zero points: the float32 map clamp(rint(x * (1/S) + Z)), any finite Z."""
    valid = (finite32(x) and ok_axis and same_count and all(valid_scale(s) for s in sc)
             and dtype is not ql.qint32)
    if not valid:
        expect_arg_error(ql.quantize_per_channel, ("`input`", "`scales`", "`zero_points`",
                                                   "`axis`", "`dtype`"), x, sc, zarr, axis,
                         dtype)
        return
    q = ql.quantize_per_channel(x, sc, zarr, axis, dtype)
    assert q.qscheme() is ql.per_channel_affine_float_qparams
    x32 = as32(x)
    shape = [1] * x32.ndim
    shape[axis] = -1
    s32 = np.asarray(sc, np.float32).reshape(shape)
    z32 = zarr.astype(np.float32).reshape(shape)
    ref = np.clip(np.rint(x32 * (np.float32(1) / s32) + z32), dtype.quant_min, dtype.quant_max)
    np.testing.assert_array_equal(q.int_repr(), ref)
    np.testing.assert_array_equal(q.dequantize(), (q.int_repr().astype(np.float32) - z32) * s32)


def t_dequantize(data):
    x = data.draw(st.one_of(S.any_arrays(), st.builds(
        lambda v: ql.quantize_per_tensor(v, 0.5, 0, ql.qint8),
        S.float_arrays(dtypes=[np.float32, np.float64]))))
    note("dequantize", x=x)
    if isinstance(x, ql.QTensor):
        np.testing.assert_array_equal(ql.dequantize(x), x.dequantize())
    elif isinstance(x, np.ndarray) and x.dtype.kind == "f":
        assert ql.dequantize(x) is x
    else:
        expect_arg_error(ql.dequantize, ("`input`",), x)


# --- the QTensor constructor, indexing and views ----------------------------------------------
def t_qtensor_constructor(data):
    dtype = data.draw(st.sampled_from(DTYPES + [np.uint8, "quint8", None]))
    storage = dtype.storage if isinstance(dtype, ql.QDType) else np.uint8
    shape = data.draw(S.small_shapes(0, 3))
    idt = data.draw(st.sampled_from([storage, storage, storage, np.int16, np.float32,
                                     np.dtype(storage).newbyteorder(">")]))
    int_data = data.draw(st.sampled_from(["array", "array", "array", "list"]))
    arr = np.zeros(shape, idt)
    if int_data == "list":
        arr = arr.tolist()
    qscheme = data.draw(st.sampled_from([ql.per_tensor_affine, ql.per_channel_affine,
                                         ql.per_tensor_symmetric, ql.per_channel_symmetric,
                                         "per_tensor_affine"]))
    kwargs = {}
    per_channel = getattr(qscheme, "is_per_channel", False)
    qmin, qmax = (dtype.quant_min, dtype.quant_max) if isinstance(dtype, ql.QDType) else (0, 255)
    if per_channel:
        axis = data.draw(S.axes(len(shape)))
        c = shape[axis] if isinstance(axis, int) and not isinstance(axis, bool) \
            and -len(shape) <= axis < len(shape) else 1
        n = data.draw(st.sampled_from([c, c, c + 1, max(0, c - 1)]))
        kwargs = dict(scales=data.draw(st.lists(S.scales(True), min_size=n, max_size=n)),
                      zero_points=data.draw(st.lists(S.zero_points(qmin, qmax, True),
                                                     min_size=n, max_size=n)), axis=axis)
        if data.draw(st.booleans()):
            kwargs[data.draw(st.sampled_from(["scales", "zero_points"]))] = \
                data.draw(st.sampled_from([None, [float("nan")] * n, [-1] * n,
                                           [qmax + 1] * n, "x"]))
        valid_pc = (np.ndim(arr) > 0 and isinstance(axis, int) and not isinstance(axis, bool)
                    and -len(shape) <= axis < len(shape) and n == c
                    and isinstance(kwargs["scales"], list)
                    and all(valid_scale(s) for s in kwargs["scales"])
                    and isinstance(kwargs["zero_points"], list)
                    and all(isinstance(z, int) and qmin <= z <= qmax
                            for z in kwargs["zero_points"]))
    else:
        kwargs = dict(scale=data.draw(S.scales()), zero_point=data.draw(S.zero_points(qmin,
                                                                                     qmax)))
        valid_pc = (valid_scale(kwargs["scale"]) and isinstance(dtype, ql.QDType)
                    and valid_zp(kwargs["zero_point"], dtype))
    note("QTensor()", dtype=dtype, int_data=arr if isinstance(arr, np.ndarray) else "list",
         qscheme=qscheme, **kwargs)
    valid = (isinstance(dtype, ql.QDType) and isinstance(arr, np.ndarray)
             and arr.dtype == dtype.storage and isinstance(qscheme, ql.QScheme) and valid_pc)
    if not valid:
        expect_arg_error(ql.QTensor, ("`int_data`", "`dtype`", "`qscheme`", "`scale`",
                                      "`zero_point`", "`scales`", "`zero_points`", "`axis`"),
                         arr, dtype, qscheme, **kwargs)
        return
    q = ql.QTensor(arr, dtype, qscheme, **kwargs)
    out = q.dequantize()
    # |S (q - Z)| beyond the float32 maximum rounds to +-inf, as IEEE float32 does
    with np.errstate(over="ignore"):
        want = _real(q).astype(np.float32)
    assert out.shape == arr.shape
    np.testing.assert_allclose(out, want, rtol=1.2e-7)


def _random_qtensor(data, min_dims=0):
    x = data.draw(S.float_arrays(min_dims=min_dims, max_side=5, dtypes=[np.float32]))
    x = as32(x)
    if data.draw(st.booleans()) and x.ndim:
        axis = data.draw(st.integers(0, x.ndim - 1))
        c = x.shape[axis]
        return ql.quantize_per_channel(
            x, data.draw(st.lists(S.scales(True), min_size=c, max_size=c)),
            data.draw(st.lists(st.integers(-128, 127), min_size=c, max_size=c)), axis,
            ql.qint8)
    return ql.quantize_per_tensor(x, data.draw(S.scales(True)), 3, ql.quint8)


def t_qtensor_indexing(data):
    q = _random_qtensor(data)
    key = data.draw(S.index_keys(q.shape))
    note("QTensor[key]", shape=q.shape, per_channel=q.qscheme().is_per_channel, key=key)
    deq = q.dequantize()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            want = deq[key]
        except (IndexError, ValueError, TypeError):
            want = None
    try:
        got = q[key]
    except (IndexError, ValueError, TypeError) as exc:
        # a key NumPy accepts may be refused on a per-channel tensor (advanced indexing)
        assert want is None or q.qscheme().is_per_channel, \
            f"refused a key NumPy accepts: {type(exc).__name__}: {exc}"
        return
    assert want is not None, "accepted a key NumPy refuses"
    np.testing.assert_allclose(got.dequantize(), want, rtol=1.2e-7, atol=0)
    assert got.shape == np.shape(want)


def t_qtensor_views(data):
    q = _random_qtensor(data)
    deq = q.dequantize()
    n = q.ndim
    op = data.draw(st.sampled_from(["transpose", "permute", "T", "reshape", "contiguous",
                                    "clone"]))
    if op == "transpose":
        d0 = data.draw(st.integers(-n - 1, n))
        d1 = data.draw(st.integers(-n - 1, n))
        note("QTensor.transpose", shape=q.shape, axis=q._axis, d=(d0, d1))
        if not (-n <= d0 < n and -n <= d1 < n):
            expect_arg_error(q.transpose, ("`dim0`",), d0, d1)
            return
        got, want = q.transpose(d0, d1), np.swapaxes(deq, d0, d1)
    elif op == "permute":
        dims = data.draw(st.one_of(st.permutations(range(n)).map(
            lambda p: [d - n if i % 2 else d for i, d in enumerate(p)]),
            st.lists(st.integers(-n - 1, n), max_size=n + 1)))
        note("QTensor.permute", shape=q.shape, axis=q._axis, dims=dims)
        if sorted(d % n for d in dims if -n <= d < n) != list(range(n)) \
                or any(not -n <= d < n for d in dims) or len(dims) != n:
            expect_arg_error(q.permute, ("`dims`",), *dims)
            return
        got, want = q.permute(*dims), np.transpose(deq, dims)
    elif op == "reshape":
        shape = data.draw(st.sampled_from([(-1,), tuple(reversed(q.shape)), q.shape + (1,),
                                           (1,) + q.shape]))
        note("QTensor.reshape", shape=q.shape, axis=q._axis, to=shape)
        ok, got = outcome(q.reshape, shape)
        if not ok:
            assert q.qscheme().is_per_channel or q.size == 0, got
            return
        want = deq.reshape(shape)
    else:
        note(f"QTensor.{op}", shape=q.shape, axis=q._axis)
        got = q.T if op == "T" else getattr(q, op)()
        want = deq.T if op == "T" else deq
    np.testing.assert_array_equal(got.dequantize(), want)


# --- observers and calibrators --------------------------------------------------------------
OBSERVERS = {
    "MinMaxObserver": observer.MinMaxObserver,
    "MovingAverageMinMaxObserver": observer.MovingAverageMinMaxObserver,
    "PerChannelMinMaxObserver": observer.PerChannelMinMaxObserver,
    "MovingAveragePerChannelMinMaxObserver": observer.MovingAveragePerChannelMinMaxObserver,
    "HistogramObserver": observer.HistogramObserver,
    "PercentileObserver": calibrators.PercentileObserver,
    "MSEObserver": calibrators.MSEObserver,
    "EntropyObserver": calibrators.EntropyObserver,
}


def _check_qparams(scale, zp, qmin, qmax):
    scale, zp = np.asarray(scale), np.asarray(zp)
    assert scale.dtype == np.float32 and np.isfinite(scale).all() and (scale > 0).all(), \
        f"invalid scale {scale}"
    assert ((zp >= qmin) & (zp <= qmax)).all(), f"zero point {zp} outside [{qmin}, {qmax}]"


def _observer_target(name):
    cls = OBSERVERS[name]
    per_channel = "PerChannel" in name

    def target(data):
        kwargs = {}
        dtype = data.draw(st.sampled_from([ql.quint8, ql.qint8]))
        kwargs["dtype"] = dtype
        if per_channel:
            kwargs["qscheme"] = data.draw(st.sampled_from([ql.per_channel_affine,
                                                           ql.per_channel_symmetric]))
        else:
            kwargs["qscheme"] = data.draw(st.sampled_from([ql.per_tensor_affine,
                                                           ql.per_tensor_symmetric]))
        kwargs["reduce_range"] = data.draw(st.booleans())
        if "Histogram" in name or name in ("PercentileObserver", "MSEObserver",
                                           "EntropyObserver"):
            kwargs["bins"] = data.draw(st.sampled_from([1, 2, 7, 64, 2048]))
        if per_channel:
            kwargs["ch_axis"] = data.draw(st.integers(-2, 1))
        batches = data.draw(st.lists(S.float_arrays(
            min_dims=2 if per_channel else 0, max_side=7,
            allow_nonfinite=data.draw(st.integers(0, 7)) == 0), min_size=1, max_size=3))
        note(name, kwargs=kwargs, batches=[np.shape(b) for b in batches],
             first=as32(batches[0]))
        if (kwargs["reduce_range"] and dtype is ql.quint8
                and kwargs["qscheme"].is_symmetric):
            try:        # PyTorch raises NotImplementedError here; so does qlearn
                cls(**kwargs)
            except NotImplementedError:
                return
            raise AssertionError("reduce_range with symmetric quint8 was accepted")
        obs = cls(**kwargs)
        fed, accepted = 0, []
        for b in batches:
            if not finite32(b):
                expect_arg_error(obs, ("finite", "NaN", "`x", "`input"), b)
                continue
            ok, out = outcome(obs, b)
            if not ok:   # a per-channel observer refuses a new channel count or ch_axis
                assert per_channel and ("channel" in str(out) or "ch_axis" in str(out)), out
                continue
            assert out is b
            fed += as32(b).size
            accepted.append(b)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok, res = outcome(obs.calculate_qparams)
            # a refused batch leaves no trace: the same as an observer fed only the rest
            ref = cls(**kwargs)
            for b in accepted:
                ref(b)
            want = ref.calculate_qparams()
        assert ok, f"calculate_qparams failed on finite data: {res}"
        for got_p, want_p in zip(res, want):
            np.testing.assert_array_equal(got_p, want_p)
        scale, zp = res
        _check_qparams(scale, zp, obs.quant_min, obs.quant_max)
        if hasattr(obs, "histogram") and fed:
            assert obs.histogram.sum() == fed, (obs.histogram.sum(), fed)
        if name == "MinMaxObserver" and fed:
            # every value seen lies in the range: quantizing it loses at most S / 2
            x = np.concatenate([as32(b).ravel() for b in batches if finite32(b)])
            s, z = float(scale[0]), int(zp[0])
            q = ql.quantize_per_tensor(x, s, z, dtype)
            err = np.abs(q.dequantize().astype(np.float64) - x)
            tol = 0.5 * np.float64(np.float32(s)) * (1 + 1e-5) + np.abs(x) * 2.0 ** -21
            with np.errstate(over="ignore"):
                fits = np.abs(x) < F32_MAX / 2
            s64 = np.float64(np.float32(s))
            if max(s64 * (obs.quant_max - z), s64 * (z - obs.quant_min)) > 0.99 * F32_MAX:
                # the scale was lowered after Z was chosen, so that the outermost level
                # stays finite (docs/robustness.md): the other end may then be clamped,
                # up to one step away (qparams.py; reported, a Z chosen after the
                # lowering would keep S / 2)
                tol = tol + 0.5 * s64
            if kwargs["qscheme"] is ql.per_tensor_affine and not kwargs["reduce_range"]:
                assert (err[fits] <= tol[fits] + float(np.float32(s)) * 1e-3).all(), \
                    f"max error {err.max()} > S/2 = {s / 2}"
    target.__name__ = f"t_{name}"
    return target


# --- fake quantize ----------------------------------------------------------------------
def _fq_ref(x, scale, zp, qmin, qmax):
    """torch.fake_quantize_per_tensor_affine's arithmetic (round, add Z, clamp, (q-Z) S)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return reference.fake_quantize_per_tensor_ref(as32(x), scale, zp, qmin, qmax)[0]


def t_fake_quantize_per_tensor(data):
    x = data.draw(S.float_arrays(allow_nonfinite=data.draw(st.integers(0, 5)) == 0))
    bits = data.draw(st.sampled_from([(0, 255), (-128, 127), (0, 15), (-2 ** 31, 2 ** 31 - 1),
                                      (-2 ** 24, 2 ** 24), (0, 2 ** 24), (5, 5),
                                      (-2 ** 24 - 1, 2 ** 24)]))
    qmin, qmax = bits
    if data.draw(st.integers(0, 6)) == 0:
        qmin, qmax = data.draw(st.sampled_from([(3, 2), (0, 2 ** 31), (-2 ** 31 - 1, 0),
                                                (0.0, 255), (None, 4)]))
    scale = data.draw(S.scales())
    zp = data.draw(st.integers(qmin, qmax)) if isinstance(qmin, int) and isinstance(
        qmax, int) and qmin <= qmax else 0
    if data.draw(st.integers(0, 6)) == 0:
        zp = data.draw(st.sampled_from([qmax + 1 if isinstance(qmax, int) else 1, "1"]))
    note("fake_quantize_per_tensor_affine", x=x, scale=scale, zp=zp, qmin=qmin, qmax=qmax)
    ok_range = (isinstance(qmin, int) and isinstance(qmax, int) and qmin <= qmax
                and qmin >= -2 ** 31 and qmax < 2 ** 31)
    valid = (finite32(x) and valid_scale(scale) and ok_range and isinstance(zp, int)
             and qmin <= zp <= qmax)
    args = (x, scale, zp, qmin, qmax)
    if not valid:
        expect_arg_error(ql.fake_quantize_per_tensor_affine,
                         ("`input`", "`scale`", "`zero_point`", "`quant_min`", "`quant_max`",
                          "finite"), *args)
        return
    got = ql.fake_quantize_per_tensor_affine(*args).numpy()
    np.testing.assert_array_equal(got, _fq_ref(x, scale, zp, qmin, qmax))


def t_fake_quantize_per_channel(data):
    x = data.draw(S.float_arrays(min_dims=1, dtypes=[np.float32, np.float64]))
    x32 = as32(x)
    axis = data.draw(st.integers(-x32.ndim, x32.ndim - 1))
    c = x32.shape[axis]
    qmin, qmax = data.draw(st.sampled_from([(0, 255), (-128, 127), (-2 ** 24, 2 ** 24),
                                            (-2 ** 31, 2 ** 31 - 1)]))
    sc = np.array(data.draw(st.lists(S.scales(True), min_size=c, max_size=c)))
    zp = np.array(data.draw(st.lists(st.integers(qmin, qmax), min_size=c, max_size=c)),
                  np.int64)
    note("fake_quantize_per_channel_affine", x=x, scales=sc, zps=zp, axis=axis,
         qmin=qmin, qmax=qmax)
    valid = finite32(x)
    if not valid:
        expect_arg_error(ql.fake_quantize_per_channel_affine, ("`input`", "finite"),
                         x, sc, zp, axis, qmin, qmax)
        return
    got = ql.fake_quantize_per_channel_affine(x, sc, zp, axis, qmin, qmax).numpy()
    assert got.shape == x32.shape
    if c == 0:
        return
    xm = np.moveaxis(x32, axis, -1)
    want = np.stack([_fq_ref(xm[..., i], sc[i], zp[i], qmin, qmax) for i in range(c)], -1)
    np.testing.assert_array_equal(np.moveaxis(got, axis, -1), want.reshape(xm.shape))


def t_fake_quantize_modules(data):
    kind = data.draw(st.sampled_from(["FakeQuantize", "FusedMovingAvgObsFakeQuantize",
                                      "FakeQuantizePerChannel", "LearnableFakeQuantize",
                                      "FixedQParamsFakeQuantize"]))
    xs = data.draw(st.lists(S.float_arrays(min_dims=2, max_side=5,
                                           allow_nonfinite=data.draw(st.integers(0, 7)) == 0),
                            min_size=1, max_size=3))
    note(kind, shapes=[np.shape(x) for x in xs], first=as32(xs[0]))
    if kind == "FakeQuantize":
        m = fake_quantize.FakeQuantize()
    elif kind == "FusedMovingAvgObsFakeQuantize":
        m = fake_quantize.FusedMovingAvgObsFakeQuantize()
    elif kind == "FakeQuantizePerChannel":
        m = fake_quantize.FakeQuantize(observer.MovingAveragePerChannelMinMaxObserver,
                                       quant_min=-128, quant_max=127, dtype=ql.qint8,
                                       qscheme=ql.per_channel_symmetric, ch_axis=0)
    elif kind == "LearnableFakeQuantize":
        m = fake_quantize.LearnableFakeQuantize(observer.MovingAverageMinMaxObserver)
    else:
        m = fake_quantize.FixedQParamsFakeQuantize(
            observer.default_fixed_qparams_range_0to1_observer)
    for x in xs:
        if not finite32(x):
            expect_arg_error(m, ("finite", "`x", "`input", "NaN"), x)
            continue
        if kind == "FakeQuantizePerChannel" and np.shape(x)[0] != np.shape(xs[0])[0]:
            continue
        y = m(x)
        y = np.asarray(getattr(y, "data", y))
        assert y.shape == np.shape(x)
        if not np.isfinite(y).all():
            # only a level beyond the float32 maximum (data at +-3.4e38) may round to inf
            s = np.asarray(m.scale, np.float64).max()
            top = s * (m.quant_max - m.quant_min)
            assert top > F32_MAX / 2, f"non-finite output for finite input (scale {s})"


# --- Distiller's quantizers -------------------------------------------------------------
def _levels_ref(y, n, unit=1.0):
    return reference.clip_round_ref(as32(y), -np.inf, np.inf, unit, n)


def t_quantizers(data):
    which = data.draw(st.sampled_from(["dorefa_act", "dorefa_weight", "wrpn_weight",
                                       "wrpn_act", "pact"]))
    x = data.draw(S.float_arrays(allow_nonfinite=data.draw(st.integers(0, 6)) == 0))
    bits = data.draw(st.one_of(st.integers(1, 16), st.sampled_from([0, 17, 2.0, True, None])))
    alpha = data.draw(st.one_of(st.sampled_from([1.0, 3.0, 1e-30, 1e-38, 1e-45, 3e38, F32_MAX]),
                                st.floats(1e-3, 100), st.sampled_from([0.0, -1.0,
                                                                       float("nan"),
                                                                       float("inf")])))
    note(which, x=x, num_bits=bits, alpha=alpha)
    ok_bits = isinstance(bits, int) and not isinstance(bits, bool) and 1 <= bits <= 16
    if which == "wrpn_weight":
        ok_bits = ok_bits and bits >= 2
    valid = ok_bits and finite32(x)
    ok_alpha = np.isfinite(alpha) and alpha > 0 and np.float32(alpha) > 0
    fns = {"dorefa_act": lambda: dorefa_quantize_activation(x, bits),
           "dorefa_weight": lambda: dorefa_quantize_weight(x, bits),
           "wrpn_weight": lambda: wrpn_quantize_weight(x, bits),
           "wrpn_act": lambda: wrpn_quantize_activation(x, bits),
           "pact": lambda: pact_quantize(x, bits, alpha)}
    if which == "pact":
        valid = valid and ok_alpha
    if not valid:
        expect_arg_error(fns[which], ("`num_bits`", "`input`", "`weight`", "`alpha`",
                                      "finite"))
        return
    y = fns[which]().numpy()
    x32 = as32(x)
    if which in ("dorefa_act", "wrpn_act"):
        want = _levels_ref(np.clip(x32, 0, 1), 2.0 ** bits - 1)
    elif which == "wrpn_weight":
        want = _levels_ref(np.clip(x32, -1, 1), 2.0 ** (bits - 1) - 1)
    elif which == "pact":
        a = np.float32(alpha)
        want = _levels_ref(np.clip(x32, 0, a), 2.0 ** bits - 1, a)
    elif bits == 1:     # binarization: E(|w|) sign(w), sign(0) = 1
        e = np.float32(np.abs(x32).mean()) if x32.size else np.float32(0)
        want = np.where(x32 == 0, np.float32(1), np.sign(x32)).astype(np.float32) * e
        np.testing.assert_allclose(y, want, rtol=1e-6)
        return
    else:
        t = np.tanh(x32.astype(np.float64)).astype(np.float32)
        big = np.abs(t).max() if t.size else np.float32(0)
        f = t / (np.float32(2) * big) + np.float32(0.5) if big > 0 else \
            np.full_like(t, 0.5)
        want = np.float32(2) * _levels_ref(f, 2.0 ** bits - 1) - np.float32(1)
    np.testing.assert_array_equal(y, want)


# --- int8 operators and modules ---------------------------------------------------------
def _qtensor(data, shape, dtype=ql.quint8, extreme=True):
    ints = np.asarray(data.draw(st.lists(st.integers(dtype.quant_min, dtype.quant_max),
                                         min_size=int(np.prod(shape)),
                                         max_size=int(np.prod(shape)))),
                      dtype.storage).reshape(shape)
    scale = data.draw(S.scales(True) if extreme else st.floats(1e-3, 10))
    zp = data.draw(st.integers(dtype.quant_min, dtype.quant_max)) if dtype is ql.quint8 \
        else 0
    return ql.QTensor(ints, dtype, ql.per_tensor_affine, scale, zp)


def _real(q):
    if q.qscheme().is_per_channel:
        s = q.q_per_channel_scales()
        z = q.q_per_channel_zero_points()
        shape = [1] * q.ndim
        shape[q.q_per_channel_axis()] = -1
        # per-channel dequantization multiplies by the float64 scales (as PyTorch)
        return (q.int_repr().astype(np.float64) - z.reshape(shape)) * s.reshape(shape)
    return (q.int_repr().astype(np.float64) - q.q_zero_point()) * np.float64(
        np.float32(q.q_scale()))


def _requant_ref(real, scale, zp, lo=0):
    with np.errstate(over="ignore", invalid="ignore"):
        t = np.rint(real / np.float64(np.float32(scale))) + zp
    return np.clip(t, lo, 255)


def _close_ints(got, want, tol=1):
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert diff.size == 0 or diff.max() <= tol, \
        f"int8 output off by {diff.max()} (> {tol}) at " \
        f"{np.unravel_index(diff.argmax(), diff.shape)}"


def t_qF_linear(data):
    m = data.draw(st.integers(0, 5))
    k = data.draw(st.integers(0, 40))
    n = data.draw(st.integers(0, 9))
    a = _qtensor(data, (m, k))
    w = _qtensor(data, (n, k), ql.qint8)
    bias = data.draw(st.one_of(st.none(), S.float_arrays(shape=(n,), dtypes=[np.float32])))
    bias = None if bias is None else as32(bias)
    scale = data.draw(S.scales())
    zp = data.draw(S.zero_points(0, 255))
    relu = data.draw(st.booleans())
    note("qF.linear" + ("_relu" if relu else ""), a=a.int_repr(), sa=a.q_scale(),
         za=a.q_zero_point(), w=w.int_repr(), sw=w.q_scale(), bias=bias, scale=scale, zp=zp)
    scale = a.q_scale() if scale is None else scale      # None: the input's (documented)
    zp = a.q_zero_point() if zp is None else zp
    if not (valid_scale(scale) and valid_zp(zp, ql.quint8)):
        expect_arg_error(qF.linear, ("`scale`", "`zero_point`"), a, w, bias, scale, zp)
        return
    if relu:
        mod = nniq.LinearReLU(k, n, bias=bias is not None)
        ok, res = outcome(lambda: (mod.set_weight_bias(w, bias),
                                   setattr(mod, "scale", scale),
                                   setattr(mod, "zero_point", zp), mod(a))[-1])
    else:
        ok, res = outcome(qF.linear, a, w, bias, scale, zp)
    if not ok:      # only constants float32 cannot hold may be refused
        assert "float32 maximum" in str(res), res
        return
    acc = _real(a) @ _real(w).T
    if bias is not None:
        acc = acc + as32(bias).astype(np.float64)
    want = _requant_ref(acc, scale, zp, zp if relu else 0)
    # float32 requantization (FBGEMM's): the product rounds differently from float64 at
    # most by one level, unless bias / (Sa Sw) is beyond 2^24 (float32 drops its digits)
    tol = 1
    if bias is not None and bias.size:
        with np.errstate(over="ignore", divide="ignore"):
            big = np.abs(as32(bias).astype(np.float64)
                         / (np.float64(np.float32(a.q_scale())) * np.float32(w.q_scale())))
        if (big > 2.0 ** 22).any():
            tol = 255
    _close_ints(res.int_repr(), want, tol)


def _conv_ref(x, w, bias, stride, padding, dilation, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, o, ho, wo))
    og = o // groups
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, g * cg:(g + 1) * cg,
                           i * dilation:i * dilation + (ho - 1) * stride + 1:stride,
                           j * dilation:j * dilation + (wo - 1) * stride + 1:stride]
                out[:, g * og:(g + 1) * og] += np.einsum(
                    "nchw,oc->nohw", patch, w[g * og:(g + 1) * og, :, i, j])
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out


def t_qF_conv2d(data):
    groups = data.draw(st.sampled_from([1, 1, 2]))
    c = groups * data.draw(st.integers(1, 3))
    o = groups * data.draw(st.integers(1, 3))
    kh = data.draw(st.integers(1, 3))
    stride, padding, dilation = (data.draw(st.integers(1, 2)), data.draw(st.integers(0, 2)),
                                 data.draw(st.integers(1, 2)))
    h, w_ = data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7))
    x = _qtensor(data, (data.draw(st.integers(0, 2)), c, h, w_), extreme=False)
    wq = _qtensor(data, (o, c // groups, kh, kh), ql.qint8, extreme=False)
    bias = data.draw(st.one_of(st.none(), st.lists(st.floats(-10, 10, width=32), min_size=o,
                                                   max_size=o).map(np.float32)))
    scale = data.draw(st.floats(1e-3, 10))
    zp = data.draw(st.integers(0, 255))
    note("qF.conv2d", x=x.shape, w=wq.shape, stride=stride, padding=padding,
         dilation=dilation, groups=groups, scale=scale, zp=zp)
    ok, res = outcome(qF.conv2d, x, wq, bias, stride, padding, dilation, groups,
                      scale=scale, zero_point=zp)
    span = dilation * (kh - 1) + 1
    if h + 2 * padding < span or w_ + 2 * padding < span:
        assert not ok, "accepted an input smaller than the kernel"
        return
    assert ok, res
    want = _requant_ref(_conv_ref(_real(x), _real(wq), None if bias is None
                                  else bias.astype(np.float64), stride, padding, dilation,
                                  groups), scale, zp)
    _close_ints(res.int_repr(), want)


def t_qF_elementwise(data):
    op = data.draw(st.sampled_from(["add", "add_relu", "mul", "add_scalar", "mul_scalar",
                                    "relu", "relu6", "cat"]))
    shape = data.draw(S.small_shapes(0, 3, 0, 5))
    a = _qtensor(data, shape)
    b = _qtensor(data, shape)
    scale = data.draw(S.scales())
    zp = data.draw(S.zero_points(0, 255))
    note(f"qF.{op}", a=a.int_repr(), sa=a.q_scale(), za=a.q_zero_point(), b=b.int_repr(),
         sb=b.q_scale(), zb=b.q_zero_point(), scale=scale, zp=zp)
    valid = valid_scale(scale) and valid_zp(zp, ql.quint8)
    if op in ("relu", "relu6"):
        got = getattr(qF, op)(a)
        real = np.maximum(_real(a), 0)
        if op == "relu6":
            six = ql.quantize_per_tensor(np.float32(6), a.q_scale(), a.q_zero_point(),
                                         ql.quint8).int_repr()
            np.testing.assert_array_equal(
                got.int_repr(), np.minimum(np.maximum(a.int_repr(), a.q_zero_point()), six))
        else:
            np.testing.assert_array_equal(got.int_repr(), np.maximum(a.int_repr(),
                                                                     a.q_zero_point()))
        del real
        return
    if op == "cat":
        valid = valid_scale(scale) and (zp is None or valid_zp(zp, ql.quint8))
        if a.ndim == 0:
            expect_arg_error(qF.cat, ("`tensors`",), [a, b], 0, 1.0, 0)
            return
        if not valid:
            expect_arg_error(qF.cat, ("`scale`", "`zero_point`"), [a, b], 0, scale, zp)
            return
        ok, got = outcome(qF.cat, [a, b], 0, scale, zp)
        assert ok, got
        want = _requant_ref(np.concatenate([_real(a), _real(b)]), scale,
                            a.q_zero_point() if zp is None else zp)
        _close_ints(got.int_repr(), want)
        return
    if op.endswith("_scalar"):
        bval = data.draw(st.one_of(S.finite_floats(), st.sampled_from(
            [float("nan"), float("inf"), 1e300, "1", None])))
        fn = qF.add if op == "add_scalar" else qF.mul
        if not (valid and isinstance(bval, float) and np.isfinite(np.float32(bval))
                if isinstance(bval, float) and abs(bval) < 1e39 else False):
            expect_arg_error(fn, ("`b`", "`scale`", "`zero_point`"), a, bval, scale, zp)
            return
        real_b = np.float64(np.float32(bval))
        with np.errstate(over="ignore"):
            ok, got = outcome(fn, a, bval, scale, zp)
        assert ok, got
        r = _real(a) + real_b if op == "add_scalar" else _real(a) * real_b
    else:
        fn = getattr(qF, op)
        if not valid:
            expect_arg_error(fn, ("`scale`", "`zero_point`"), a, b, scale, zp)
            return
        ok, got = outcome(fn, a, b, scale, zp)
        assert ok, got
        r = _real(a) * _real(b) if op == "mul" else _real(a) + _real(b)
        if op == "add_relu":
            r = np.maximum(r, 0)
    want = _requant_ref(r, scale, zp)
    _close_ints(got.int_repr(), want)


def t_qF_pooling(data):
    op = data.draw(st.sampled_from(["max_pool2d", "adaptive_avg_pool2d", "avg_pool2d",
                                    "MaxPool2d", "AdaptiveAvgPool2d"]))
    x = _qtensor(data, data.draw(st.sampled_from([(1, 2, 5, 4), (2, 1, 3, 3), (1, 1, 1, 1),
                                                   (3, 4, 4), (1, 1, 0, 3), (4, 4), (1, 2, 8, 8)])),
                 extreme=False)
    k = data.draw(st.one_of(st.integers(-1, 4), st.tuples(st.integers(1, 3),
                                                           st.integers(1, 3))))
    note(f"qF.{op}", x=x.shape, k=k)
    if op in ("max_pool2d", "MaxPool2d"):
        stride = data.draw(st.one_of(st.none(), st.integers(0, 3)))
        pad = data.draw(st.integers(0, 2))
        fn = (lambda: qF.max_pool2d(x, k, stride, pad)) if op == "max_pool2d" else \
            (lambda: nnq.MaxPool2d(k, stride, pad)(x))
        ok, got = outcome(fn)
        if not ok:
            return
        kh, kw = (k, k) if isinstance(k, int) else k
        s = (kh, kw) if stride is None else (stride, stride)
        q = x.int_repr().astype(np.int64)
        qp = np.pad(q, [(0, 0)] * (q.ndim - 2) + [(pad, pad), (pad, pad)],
                    constant_values=-1)
        ho = (q.shape[-2] + 2 * pad - kh) // s[0] + 1
        wo = (q.shape[-1] + 2 * pad - kw) // s[1] + 1
        want = np.full(q.shape[:-2] + (ho, wo), -1)
        for i in range(kh):
            for j in range(kw):
                want = np.maximum(want, qp[..., i:i + (ho - 1) * s[0] + 1:s[0],
                                           j:j + (wo - 1) * s[1] + 1:s[1]])
        np.testing.assert_array_equal(got.int_repr(), want)
        return
    fn = {"adaptive_avg_pool2d": lambda: qF.adaptive_avg_pool2d(x, k),
          "AdaptiveAvgPool2d": lambda: nnq.AdaptiveAvgPool2d(k)(x),
          "avg_pool2d": lambda: qF.avg_pool2d(x, k)}[op]
    ok, got = outcome(fn)
    if ok:
        assert np.isfinite(got.dequantize()).all()


def t_nnq_modules(data):
    kind = data.draw(st.sampled_from(["Linear", "Conv2d", "ConvReLU2d", "Quantize",
                                      "DeQuantize", "ReLU", "ReLU6", "QFunctional",
                                      "dynamic.Linear", "dynamic.LSTM"]))
    note(f"nnq.{kind}")
    if kind == "Quantize":
        x = data.draw(S.any_arrays())
        scale = data.draw(S.scales())
        zp = data.draw(S.zero_points(0, 255))
        note("nnq.Quantize", x=x, scale=scale, zp=zp)
        ok, mod = outcome(nnq.Quantize, scale, zp, ql.quint8)
        if not ok:
            assert not (valid_scale(scale) and valid_zp(zp, ql.quint8)), mod
            return
        if not (is_float_input(x) and finite32(x)):
            expect_arg_error(mod, ("`input`", "`x`"), x)
            return
        got = mod(x)
        np.testing.assert_array_equal(got.int_repr(), ql.quantize_per_tensor(
            x, scale, zp, ql.quint8).int_repr())
        return
    if kind == "DeQuantize":
        q = _qtensor(data, data.draw(S.small_shapes(0, 3)))
        np.testing.assert_array_equal(nnq.DeQuantize()(q), q.dequantize())
        return
    if kind in ("ReLU", "ReLU6"):
        q = _qtensor(data, data.draw(S.small_shapes(0, 3)))
        got = getattr(nnq, kind)()(q)
        assert got.shape == q.shape
        return
    if kind == "QFunctional":
        q = _qtensor(data, data.draw(S.small_shapes(1, 3, 1)), extreme=False)
        f = nnq.QFunctional()
        f.scale, f.zero_point = data.draw(st.floats(1e-3, 10)), data.draw(st.integers(0, 255))
        for name in ("add", "mul", "add_relu"):
            r = getattr(f, name)(q, q)
            assert r.shape == q.shape
        return
    if kind in ("Linear", "dynamic.Linear"):
        k, n = data.draw(st.integers(1, 20)), data.draw(st.integers(1, 6))
        cls = nnq.Linear if kind == "Linear" else nnqd.Linear
        mod = cls(k, n)
        w = _qtensor(data, (n, k), ql.qint8, extreme=False)
        mod.set_weight_bias(w, np.zeros(n, np.float32))
        if kind == "Linear":
            x = _qtensor(data, (data.draw(st.integers(0, 4)), k), extreme=False)
            y = mod(x)
            assert y.shape == (x.shape[0], n)
            return
        x = data.draw(S.float_arrays(shape=(data.draw(st.integers(0, 4)), k),
                                     allow_nonfinite=data.draw(st.integers(0, 5)) == 0))
        if not finite32(x):
            expect_arg_error(mod, ("finite", "`input`", "`x`"), x)
            return
        ok, y = outcome(mod, x)
        assert ok, y
        y = np.asarray(getattr(y, "data", y))
        want = as32(x).astype(np.float64) @ _real(w).T
        assert y.shape == want.shape
        fits = np.abs(want) < F32_MAX * 0.999     # beyond: float32 overflows, as it should
        y, want = y[fits], want[fits]
        if want.size:
            # dynamic quantization error: the input step times sum |w|
            x64 = as32(x).astype(np.float64)
            step = ((max(x64.max(), 0) - min(x64.min(), 0)) / 127 * np.abs(_real(w)).sum(1)
                    if x64.size else np.zeros(n))
            step = np.broadcast_to(step, fits.shape)[fits]
            assert (np.abs(y - want) <= step + 1e-3 * np.abs(want) + 1e-6).all()
        return
    if kind == "dynamic.LSTM":
        in_size, hidden = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
        ok, mod = outcome(nnqd.LSTM, in_size, hidden)
        assert ok, mod
        x = data.draw(S.float_arrays(shape=(data.draw(st.integers(1, 3)), 1, in_size),
                                     allow_nonfinite=data.draw(st.integers(0, 5)) == 0))
        ok, res = outcome(mod, x)
        if ok:
            out = np.asarray(getattr(res[0], "data", res[0]))
            assert np.isfinite(out).all() or not finite32(x)
        else:
            assert not finite32(x), res
        return
    # Conv2d / ConvReLU2d
    c, o = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    cls = nnq.Conv2d if kind == "Conv2d" else nniq.ConvReLU2d
    pad = data.draw(st.integers(0, 1))
    mod = cls(c, o, 3, padding=pad)
    x = _qtensor(data, (1, c, data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))),
                 extreme=False)
    ok, y = outcome(mod, x)
    if min(x.shape[2:]) + 2 * pad < 3:
        assert not ok
    else:
        assert ok, y


# --- ql.load on mutated files -----------------------------------------------------------
def t_load_mutated(data):
    obj = {"w": ql.quantize_per_channel(np.arange(6.0).reshape(3, 2), [0.1, 0.2, 0.3],
                                        [0, 1, 2], 0, ql.qint8),
           "t": ql.quantize_per_tensor([0.5, 1.0], 0.5, 3, ql.quint8),
           "x": np.arange(5.0), "meta": [1, "a", None]}
    buf = io.BytesIO()
    ql.save(obj, buf)
    raw = bytearray(buf.getvalue())
    how = data.draw(st.sampled_from(["flip", "truncate", "insert", "header"]))
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    elif how == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    elif how == "insert":
        i = data.draw(st.integers(0, len(raw)))
        raw[i:i] = data.draw(st.binary(min_size=1, max_size=16))
    else:   # rewrite a number in the JSON header: a new scale, shape, zero point, ...
        text = raw.decode("latin-1")
        start = text.find('{"format"')
        assume(start >= 0)
        digits = [i for i in range(start, len(text)) if text[i].isdigit()]
        assume(digits)
        i = data.draw(st.sampled_from(digits))
        new = data.draw(st.sampled_from(["9", "-", "e", "0", "NaN", "1e999", "\"", "]"]))
        text = text[:i] + new + text[i + 1:]
        raw = bytearray(text.encode("latin-1"))
    note("ql.load", how=how, size=len(raw))
    with contextlib.suppress(ValueError):
        ql.load(io.BytesIO(bytes(raw)))


# --- QTensor methods with adversarial arguments -----------------------------------------
BAD_INTS = [0, 1, -1, 2, 3, -4, 7, 2 ** 31, 2 ** 63, -2 ** 63 - 1, 10 ** 30, 1.5, 1.0, None,
            "1", True, np.int64(1), np.uint64(2 ** 63), (0, 1), [1], slice(None)]
ARG_ERRORS = (ValueError, TypeError, IndexError)


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def t_qtensor_methods(data):
    """Any argument: an error of an argument type (never OverflowError, MemoryError,
    AttributeError, ...), or the answer NumPy gives on the dequantized values."""
    q = _random_qtensor(data)
    deq = q.dequantize()
    op = data.draw(st.sampled_from(["select", "narrow", "chunk", "split", "squeeze",
                                    "unsqueeze", "flip", "movedim", "size", "repeat",
                                    "expand", "unflatten", "flatten", "unbind", "getitem"]))
    a = data.draw(st.one_of(st.sampled_from(BAD_INTS), st.integers(-5, 5)))
    b = data.draw(st.one_of(st.sampled_from(BAD_INTS), st.integers(-5, 5)))
    note(f"QTensor.{op}", shape=q.shape, axis=q._axis, a=a, b=b)
    call = {
        "select": lambda: q.select(a, b), "narrow": lambda: q.narrow(a, b, 1),
        "chunk": lambda: q.chunk(a, b if _is_int(b) else 0), "split": lambda: q.split(a),
        "squeeze": lambda: q.squeeze(a), "unsqueeze": lambda: q.unsqueeze(a),
        "flip": lambda: q.flip(a), "movedim": lambda: q.movedim(a, b),
        "size": lambda: q.size(a), "repeat": lambda: q.repeat(*([a] * max(q.ndim, 1))),
        "expand": lambda: q.expand(a, *q.shape), "unflatten": lambda: q.unflatten(0, (a, -1)),
        "flatten": lambda: q.flatten(a), "unbind": lambda: q.unbind(a),
        "getitem": lambda: q[a],
    }[op]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = call()
    except ARG_ERRORS:
        return
    except MemoryError:
        # representable but huge (repeat / expand by 2**31): NumPy refuses to allocate
        assert op in ("repeat", "expand"), op
        return
    if op == "size":
        assert _is_int(a) and got == deq.shape[a]
    elif op == "select":
        # (a channel taken out becomes per tensor: its scale rounded to float32, which
        # for a subnormal scale loses digits; the check is that the right values come out)
        np.testing.assert_allclose(got.dequantize(), np.take(deq, b, axis=a), rtol=1e-5)
    elif op == "narrow":
        np.testing.assert_array_equal(got.dequantize(),
                                      np.moveaxis(np.moveaxis(deq, a, 0)[b % deq.shape[a]:
                                                                         b % deq.shape[a] + 1],
                                                  0, a))
    elif op in ("chunk", "split", "unbind"):
        parts = [p.dequantize() for p in got]
        axis = {"chunk": b if _is_int(b) else 0, "split": 0, "unbind": a}[op]
        if op == "unbind":
            parts = [np.expand_dims(p, axis) for p in parts]
        if parts and deq.size:
            np.testing.assert_allclose(np.concatenate(parts, axis), deq, rtol=1e-5)
    elif op == "flip":
        np.testing.assert_array_equal(got.dequantize(), np.flip(deq, a) if deq.ndim else deq)
    elif op == "getitem":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.testing.assert_allclose(got.dequantize(), deq[a], rtol=1e-5)
    else:
        assert isinstance(got, ql.QTensor)


# --- module state: pickle, deepcopy, load_state_dict with mutated entries ------------------
def _module(name):
    return {
        "MinMaxObserver": observer.MinMaxObserver,
        "PerChannelMinMaxObserver": observer.PerChannelMinMaxObserver,
        "HistogramObserver": lambda: observer.HistogramObserver(bins=64),
        "FixedQParamsObserver": lambda: observer.FixedQParamsObserver(1 / 256.0, 0),
        "FakeQuantize": fake_quantize.FakeQuantize,
        "FusedMovingAvgObsFakeQuantize": fake_quantize.FusedMovingAvgObsFakeQuantize,
        "LearnableFakeQuantize": lambda: fake_quantize.LearnableFakeQuantize(
            observer.MovingAverageMinMaxObserver, quant_min=0, quant_max=255),
    }[name]()


MODULE_NAMES = ["MinMaxObserver", "PerChannelMinMaxObserver", "HistogramObserver",
                "FixedQParamsObserver", "FakeQuantize", "FusedMovingAvgObsFakeQuantize",
                "LearnableFakeQuantize"]
BAD_STATE = ["abc", None, object(), np.array(["x"]), np.zeros((3, 3), np.float32),
             np.zeros(0, np.float32), np.full(1, np.nan, np.float32), np.ones(5, np.int64),
             np.float32(2.0), [1.0, 2.0], np.array([1 + 1j])]


def _values(mod):
    return {k: np.array(getattr(v, "data", v), copy=True)
            for k, v in mod.state_dict().items()}


def t_module_state(data):
    name = data.draw(st.sampled_from(MODULE_NAMES))
    x = as32(data.draw(S.float_arrays(shape=(3, 4), dtypes=[np.float32])))
    key_i = data.draw(st.integers(0, 50))
    bad = data.draw(st.sampled_from(BAD_STATE))
    how = data.draw(st.sampled_from(["pickle", "deepcopy", "load"]))
    note("module state", name=name, x=x, how=how, key=key_i, bad=bad)
    mod = _module(name)
    mod(x)
    if how != "load":
        other = pickle.loads(pickle.dumps(mod)) if how == "pickle" else copy.deepcopy(mod)
        for k, v in _values(mod).items():
            np.testing.assert_array_equal(_values(other)[k], v, err_msg=k)
        y, z = mod(x * 0.5), other(x * 0.5)
        np.testing.assert_array_equal(np.asarray(getattr(y, "data", y)),
                                      np.asarray(getattr(z, "data", z)))
        return
    sd = mod.state_dict()
    key = sorted(sd)[key_i % len(sd)]
    target = copy.deepcopy(mod)
    with contextlib.suppress(RuntimeError, ValueError, TypeError):
        target.load_state_dict({**sd, key: bad})
    # whatever was loaded, the module either works or refuses by name: never an
    # AttributeError or a crash far from the cause
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for call in (lambda: target(x), getattr(target, "calculate_qparams", None)):
            if call is None:
                continue
            with contextlib.suppress(ValueError, TypeError, RuntimeError):
                call()


TARGETS = {
    "quantize_per_tensor": t_quantize_per_tensor,
    "quantize_per_channel": t_quantize_per_channel,
    "dequantize": t_dequantize,
    "QTensor()": t_qtensor_constructor,
    "QTensor[key]": t_qtensor_indexing,
    "QTensor views": t_qtensor_views,
    **{name: _observer_target(name) for name in OBSERVERS},
    "fake_quantize_per_tensor_affine": t_fake_quantize_per_tensor,
    "fake_quantize_per_channel_affine": t_fake_quantize_per_channel,
    "FakeQuantize modules": t_fake_quantize_modules,
    "quantizers DoReFa/WRPN/PACT": t_quantizers,
    "qF.linear / LinearReLU": t_qF_linear,
    "qF.conv2d": t_qF_conv2d,
    "qF add/mul/cat/relu": t_qF_elementwise,
    "qF / nnq pooling": t_qF_pooling,
    "nnq / nnqd modules": t_nnq_modules,
    "ql.load (mutated files)": t_load_mutated,
    "QTensor methods (adversarial arguments)": t_qtensor_methods,
    "module state (pickle / deepcopy / load_state_dict)": t_module_state,
}
