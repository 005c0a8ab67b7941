"""quantize_per_tensor / quantize_per_channel / dequantize and the QTensor methods against
PyTorch 2.13: the same integers (ties at .5, clamping, every dtype, negative axes,
non-contiguous and 0-d inputs), the same qparams and types, the same shape methods.

Deliberate differences, asserted as qlearn's behaviour:

* qint32 dequantize: torch computes ``q - Z`` in int32 and wraps around when it
  overflows (``q = 2**31 - 1``, ``Z < 0`` dequantizes to a negative number); qlearn
  computes it without overflow;
* a negative ``axis`` counts from the end (torch accepts it too for quantize_per_channel);
* reshaping a per-channel QTensor so that the channel axis changes length is refused
  (torch returns a tensor whose axis no longer has one scale per slice); permuting one
  moves the axis (torch raises);
* float64 input is converted, integer/bool input refused, a QTensor input refused.
"""
import numpy as np
import pytest

import qlearn as ql

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

DTYPES = [("quint8", 0, 255), ("qint8", -128, 127), ("qint32", -2 ** 31, 2 ** 31 - 1)]
SHAPES = [(7,), (3, 4), (2, 3, 4), (), (0, 3), (1, 1, 1, 1), (2, 3, 5, 1)]


def _x(rng, shape, scale, i):
    x = np.asarray(rng.standard_normal(shape) * rng.choice([0.01, 1, 100, 1e6]), np.float32)
    if i % 4 == 0:                             # ties: (k + 1/2) S
        x = np.asarray((rng.integers(-300, 300, shape) + 0.5) * np.float32(scale),
                       np.float32)
    if i % 5 == 0 and x.ndim >= 2:
        x = x.swapaxes(0, -1)                  # non-contiguous
    return x


def test_quantize_per_tensor_sweep(torch_mod):
    torch = torch_mod
    rng = np.random.default_rng(21)
    overflow = 0
    for i in range(600):
        name, lo, hi = DTYPES[i % 3]
        shape = SHAPES[i % len(SHAPES)]
        scale = float(np.float32(rng.choice([1e-3, 0.1, 0.37, 2.0, 1e-8, 1e5])
                                 * rng.uniform(0.5, 1.5)))
        zp = int(rng.integers(-1000, 1000)) if name == "qint32" else int(rng.integers(lo, hi + 1))
        x = _x(rng, shape, scale, i)
        where = f"case {i}: {name}, shape {x.shape}, S={scale}, Z={zp}"
        t = torch.quantize_per_tensor(torch.from_numpy(x) if x.ndim else torch.tensor(x),
                                      scale, zp, getattr(torch, name))
        q = ql.quantize_per_tensor(x, scale, zp, getattr(ql, name))
        ir, tir = q.int_repr(), t.int_repr().numpy()
        assert ir.dtype == tir.dtype and ir.shape == tir.shape, where
        np.testing.assert_array_equal(ir, tir, err_msg=where)
        deq = np.asarray(q.dequantize())
        assert deq.dtype == np.float32 and deq.shape == x.shape, where
        wraps = (ir.astype(np.int64) - zp > 2 ** 31 - 1) | (ir.astype(np.int64) - zp < -2 ** 31)
        if wraps.any():             # deliberate: torch's int32 q - Z wraps around
            overflow += 1
            exact = ((ir.astype(np.int64) - zp).astype(np.float32) * np.float32(scale))
            np.testing.assert_array_equal(deq, exact, err_msg=where)
        else:
            np.testing.assert_array_equal(deq, t.dequantize().numpy(), err_msg=where)
        assert q.q_scale() == t.q_scale() and q.q_zero_point() == t.q_zero_point(), where
        assert type(q.q_scale()) is float and type(q.q_zero_point()) is int
        assert str(q.qscheme()) == str(t.qscheme()).replace("torch", "qlearn")
        assert str(q.dtype) == str(t.dtype).replace("torch", "qlearn")
        assert tuple(q.shape) == tuple(t.shape)
    assert 0 < overflow < 60


def test_quantize_per_channel_sweep(torch_mod):
    torch = torch_mod
    rng = np.random.default_rng(22)
    for i in range(400):
        name, lo, hi = DTYPES[i % 3]
        shape = [(4, 3), (2, 3, 4), (5,), (3, 1, 2, 2), (2, 0, 3)][i % 5]
        axis = int(rng.integers(0, len(shape)))
        c = shape[axis]
        scales = rng.uniform(0.5, 1.5, c) * rng.choice([1e-3, 0.1, 1.0])
        zlo, zhi = (-100, 100) if name == "qint32" else (lo, hi)
        zps = rng.integers(zlo, zhi + 1, c)
        x = np.asarray(rng.standard_normal(shape) * rng.choice([0.01, 1, 100]), np.float32)
        if i % 3 == 0:
            view = [1] * len(shape)
            view[axis] = c
            x = ((rng.integers(-300, 300, shape) + 0.5)
                 * scales.astype(np.float32).reshape(view)).astype(np.float32)
        t = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(scales),
                                       torch.from_numpy(zps), axis, getattr(torch, name))
        for ax in (axis, axis - len(shape)):
            where = f"case {i}: {name}, shape {shape}, axis {ax}"
            q = ql.quantize_per_channel(x, scales, zps, ax, getattr(ql, name))
            np.testing.assert_array_equal(q.int_repr(), t.int_repr().numpy(), err_msg=where)
            assert q.int_repr().dtype == t.int_repr().numpy().dtype
            np.testing.assert_array_equal(np.asarray(q.dequantize()),
                                          t.dequantize().numpy(), err_msg=where)
            assert q.q_per_channel_axis() == t.q_per_channel_axis(), where
            s, z = np.asarray(q.q_per_channel_scales()), np.asarray(q.q_per_channel_zero_points())
            np.testing.assert_array_equal(s, t.q_per_channel_scales().numpy())
            np.testing.assert_array_equal(z, t.q_per_channel_zero_points().numpy())
            assert s.dtype == np.float64 and z.dtype == np.int64
            assert str(q.qscheme()) == str(t.qscheme()).replace("torch", "qlearn")


def test_clamping_and_ties_by_hand(torch_mod):
    torch = torch_mod
    x = np.array([-1e9, -10.0, -0.25, -0.15, -0.05, 0.05, 0.15, 0.25, 12.7, 12.8, 1e9],
                 np.float32)
    for name, lo, hi in DTYPES[:2]:
        for zp in (lo, 0 if lo < 0 else 128, hi, 1 if lo == 0 else -1):
            t = torch.quantize_per_tensor(torch.from_numpy(x), 0.1, zp, getattr(torch, name))
            q = ql.quantize_per_tensor(x, 0.1, zp, getattr(ql, name))
            np.testing.assert_array_equal(q.int_repr(), t.int_repr().numpy())
            assert q.int_repr().min() >= lo and q.int_repr().max() <= hi


def test_qint32_dequantize_does_not_wrap(torch_mod):
    torch = torch_mod
    x = np.array([1e6], np.float32)
    t = torch.quantize_per_tensor(torch.from_numpy(x), 1e-8, -955, torch.qint32)
    q = ql.quantize_per_tensor(x, 1e-8, -955, ql.qint32)
    assert q.int_repr()[0] == t.int_repr().numpy()[0] == 2 ** 31 - 1
    assert t.dequantize().numpy()[0] < 0                     # torch wrapped around
    assert q.dequantize()[0] == np.float32(np.float32(2 ** 31 - 1 + 955) * np.float32(1e-8))


def test_repr_matches_torch(torch_mod, rng):
    torch = torch_mod
    x = rng.standard_normal((2, 3)).astype(np.float32)
    t = torch.quantize_per_tensor(torch.from_numpy(x), 0.05, 3, torch.quint8)
    q = ql.quantize_per_tensor(x, 0.05, 3, ql.quint8)
    assert repr(q) == repr(t).replace("torch", "qlearn")
    tc = torch.quantize_per_channel(torch.from_numpy(x), torch.tensor([0.1, 0.2]),
                                    torch.tensor([0, 1]), 0, torch.qint8)
    qc = ql.quantize_per_channel(x, [0.1, 0.2], [0, 1], 0, ql.qint8)
    assert repr(qc) == repr(tc).replace("torch", "qlearn")
    t0 = torch.quantize_per_tensor(torch.tensor(0.26), 0.1, 0, torch.quint8)
    q0 = ql.quantize_per_tensor(np.array(0.26, np.float32), 0.1, 0, ql.quint8)
    assert repr(q0) == repr(t0).replace("torch", "qlearn")


# ---- shape methods --------------------------------------------------------------------------
METHODS = {
    "size": lambda a: a.size(), "size1": lambda a: a.size(1), "numel": lambda a: a.numel(),
    "dim": lambda a: a.dim(), "ndim": lambda a: a.ndim, "len": lambda a: len(a),
    "is_quantized": lambda a: a.is_quantized, "element_size": lambda a: a.element_size(),
    "clone": lambda a: a.clone(), "reshape": lambda a: a.reshape(6, 4),
    "reshape-1": lambda a: a.reshape(-1), "view": lambda a: a.view(3, 8),
    "permute": lambda a: a.permute(2, 0, 1), "transpose": lambda a: a.transpose(0, 2),
    "getitem": lambda a: a[0, 1:], "getitem_int": lambda a: a[1],
    "getitem_step": lambda a: a[:, ::2], "contiguous": lambda a: a.contiguous(),
    "flatten": lambda a: a.flatten(1), "squeeze": lambda a: a[None].squeeze(0),
    "unsqueeze": lambda a: a.unsqueeze(1), "t": lambda a: a[0].t(),
    "equal": lambda a: a.equal(a),
}
# (the QTensor methods added since, each against torch: tests/test_oracle_qtensor_methods.py)


def _canon(v):
    if hasattr(v, "int_repr"):
        ir = v.int_repr()
        ir = ir.numpy() if hasattr(ir, "numpy") else ir
        return ("Q", np.asarray(ir).tolist(), tuple(v.shape), v.q_scale(), v.q_zero_point())
    if isinstance(v, tuple) or type(v).__name__ == "Size":
        return tuple(v)
    return v


def _pair(rng, torch):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    return (ql.quantize_per_tensor(x, 0.05, 3, ql.quint8),
            torch.quantize_per_tensor(torch.from_numpy(x), 0.05, 3, torch.quint8))


@pytest.mark.parametrize("name", list(METHODS))
def test_shape_methods(torch_mod, name, rng):
    q, t = _pair(rng, torch_mod)
    assert _canon(METHODS[name](q)) == _canon(METHODS[name](t))


def test_per_channel_shape_methods(torch_mod, rng):
    torch = torch_mod
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    s, z = np.array([0.1, 0.2, 0.3]), np.array([1, 2, 3])
    q = ql.quantize_per_channel(x, s, z, 1, ql.qint8)
    t = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(s),
                                   torch.from_numpy(z), 1, torch.qint8)
    np.testing.assert_array_equal(q[0].int_repr(), t[0].int_repr().numpy())
    np.testing.assert_array_equal(q[:, 1:].int_repr(), t[:, 1:].int_repr().numpy())
    with pytest.raises(RuntimeError):
        t.permute(1, 0, 2)
    p = q.permute(1, 0, 2)                             # deliberate: the axis moves along
    assert p.q_per_channel_axis() == 0
    np.testing.assert_array_equal(p.dequantize(), np.asarray(q.dequantize()).transpose(1, 0, 2))
    with pytest.raises(ValueError, match="per-channel"):
        q.reshape(2, 12)
    with pytest.raises(ValueError, match="per-tensor"):
        q.q_scale()
    with pytest.raises(ValueError, match="per-channel"):
        ql.quantize_per_tensor(x, 0.1, 0, ql.quint8).q_per_channel_scales()


# ---- bad input ------------------------------------------------------------------------------
X = np.ones((2, 3), np.float32)
BAD_PER_TENSOR = [
    (dict(input=np.array([np.nan], np.float32)), ValueError, "finite"),
    (dict(input=np.array([-np.inf], np.float64)), ValueError, "finite"),
    (dict(scale=0.0), ValueError, "scale"),
    (dict(scale=-1.0), ValueError, "scale"),
    (dict(scale=float("nan")), ValueError, "scale"),
    (dict(scale=float("inf")), ValueError, "scale"),
    (dict(scale=1e-45), ValueError, "scale"),
    (dict(scale=1e39), ValueError, "scale"),
    (dict(scale="a"), TypeError, "scale"),
    (dict(scale=np.array([0.1, 0.2])), ValueError, "scale"),
    (dict(zero_point=300), ValueError, "zero_point"),
    (dict(zero_point=-1), ValueError, "zero_point"),
    (dict(zero_point=1.5), TypeError, "zero_point"),
    (dict(zero_point=True), TypeError, "zero_point"),
    (dict(dtype=np.uint8), TypeError, "dtype"),
    (dict(dtype="quint8"), TypeError, "dtype"),
    (dict(dtype=ql.float32 if hasattr(ql, "float32") else np.float32), TypeError, "dtype"),
    (dict(input=np.ones(3, np.int64)), TypeError, "floating"),
    (dict(input=np.ones(3, bool)), TypeError, "floating"),
    (dict(input=np.ones(3, np.complex64)), TypeError, "floating"),
    (dict(input="abc"), TypeError, "input"),
    (dict(input=None), TypeError, "input"),
    (dict(input=[[1.0, 2.0], [3.0]]), TypeError, "input"),
    (dict(input=ql.quantize_per_tensor(X, 0.1, 0, ql.quint8)), TypeError, "quantized"),
]


@pytest.mark.parametrize("override, exc, match", BAD_PER_TENSOR)
def test_quantize_per_tensor_bad_input(override, exc, match):
    args = dict(input=X, scale=0.1, zero_point=0, dtype=ql.quint8)
    args.update(override)
    with pytest.raises(exc, match=match):
        ql.quantize_per_tensor(**args)


BAD_PER_CHANNEL = [
    (dict(input=np.array([[np.nan, 1, 1]] * 2, np.float32)), ValueError, "finite"),
    (dict(axis=2), ValueError, "axis"),
    (dict(axis=-3), ValueError, "axis"),
    (dict(axis=0.0), TypeError, "axis"),
    (dict(scales=[0.1, 0.1, 0.1]), ValueError, "scales"),
    (dict(scales=[0.1, 0.0]), ValueError, "scales"),
    (dict(scales=[0.1, float("nan")]), ValueError, "scales"),
    (dict(scales=[[0.1, 0.1]]), TypeError, "scales"),
    (dict(scales=0.1), TypeError, "scales"),
    (dict(zero_points=[0, 200]), ValueError, "zero_points"),
    (dict(zero_points=[0]), ValueError, "zero_points"),
    (dict(input=np.float32(1.0)), ValueError, "dimension"),
    (dict(input=ql.quantize_per_tensor(X, 0.1, 0, ql.quint8)), TypeError, "quantized"),
]


@pytest.mark.parametrize("override, exc, match", BAD_PER_CHANNEL)
def test_quantize_per_channel_bad_input(override, exc, match):
    args = dict(input=X, scales=[0.1, 0.2], zero_points=[0, 0], axis=0, dtype=ql.qint8)
    args.update(override)
    with pytest.raises(exc, match=match):
        ql.quantize_per_channel(**args)


def test_accepted_inputs_are_converted(torch_mod):
    torch = torch_mod
    t = torch.quantize_per_tensor(torch.tensor([[0.26, -1.0]]), 0.1, 10, torch.quint8)
    for x in ([[0.26, -1.0]], np.array([[0.26, -1.0]]), np.array([[0.26, -1.0]], np.float16),
              ql.tensor(np.array([[0.26, -1.0]], np.float32))):
        q = ql.quantize_per_tensor(x, 0.1, 10, ql.quint8)
        np.testing.assert_array_equal(q.int_repr(), t.int_repr().numpy())
    q = ql.quantize_per_tensor(np.zeros((0, 3), np.float32), 0.1, 0, ql.quint8)
    assert q.int_repr().shape == (0, 3) and np.asarray(q.dequantize()).shape == (0, 3)


def test_dequantize_function(torch_mod):
    q = ql.quantize_per_tensor(X, 0.1, 0, ql.quint8)
    np.testing.assert_array_equal(ql.dequantize(q), q.dequantize())
    # a float input comes back unchanged, as torch.dequantize returns a float tensor
    np.testing.assert_array_equal(ql.dequantize(X), X)
    with pytest.raises(TypeError, match="QTensor"):
        ql.dequantize([q])
