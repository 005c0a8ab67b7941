"""Quantized modules and operators against PyTorch 2.13's x86 (FBGEMM) backend: the same
int8 weights, inputs and qparams must give the same output integers, counted exactly.

Activations use 7 bits (quant_max 127) for Linear and Conv2d, as the x86 qconfig does:
with 8-bit activations torch's AVX2 kernel saturates int16 pair sums and qlearn's exact
path does not (a deliberate difference, docs/int8.rst).  The elementwise operators,
pooling, cat and batch norm use the full 8 bits.

Modules torch has and qlearn does not (so not compared here): nnq.Hardswish, ELU,
LeakyReLU, Sigmoid, Tanh, Embedding, ConvTranspose, Conv1d/Conv3d, LayerNorm, ...;
"""
import numpy as np
import pytest

import qlearn as ql
import qlearn.nn as nn
import qlearn.nn.quantized as nnq
import qlearn.nn.quantized.functional as qF
import qlearn.quantization as tq

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _engine(torch_mod, name):
    before = torch_mod.backends.quantized.engine
    torch_mod.backends.quantized.engine = name
    yield torch_mod
    torch_mod.backends.quantized.engine = before


@pytest.fixture
def torch_x86(torch_mod):
    yield from _engine(torch_mod, "x86")


def _act(rng, torch, shape, scale, zp, qmax=127):
    ints = rng.integers(0, qmax + 1, shape).astype(np.float32)
    x = (ints - zp) * np.float32(scale)
    return (ql.quantize_per_tensor(x, scale, zp, ql.quint8),
            torch.quantize_per_tensor(torch.from_numpy(x), scale, zp, torch.quint8))


def _weight(rng, torch, shape, per_channel, symmetric=True):
    w = (rng.standard_normal(shape) * 0.3).astype(np.float32)
    if per_channel:
        s = np.abs(w).reshape(shape[0], -1).max(1).astype(np.float64) / 127 + 1e-4
        z = np.zeros(shape[0], np.int64) if symmetric else rng.integers(-5, 5, shape[0])
        return (ql.quantize_per_channel(w, s, z, 0, ql.qint8),
                torch.quantize_per_channel(torch.from_numpy(w), torch.from_numpy(s),
                                           torch.from_numpy(z), 0, torch.qint8))
    s = float(np.abs(w).max() / 127)
    return (ql.quantize_per_tensor(w, s, 0, ql.qint8),
            torch.quantize_per_tensor(torch.from_numpy(w), s, 0, torch.qint8))


def _same(ours, theirs, where=""):
    ir, tir = ours.int_repr(), theirs.int_repr().numpy()
    assert ir.shape == tir.shape, where
    np.testing.assert_array_equal(ir, tir, err_msg=where)
    assert ours.q_scale() == pytest.approx(theirs.q_scale(), rel=1e-7), where
    assert ours.q_zero_point() == theirs.q_zero_point(), where


def test_linear(torch_x86, rng):
    torch = torch_x86
    tnnq, tqF = torch.ao.nn.quantized, torch.ao.nn.quantized.functional
    for i in range(60):
        k, n, m = (int(v) for v in rng.integers(1, [40, 30, 9]))
        a, at = _act(rng, torch, (m, k), 0.05, int(rng.integers(0, 60)))
        w, wt = _weight(rng, torch, (n, k), i % 2 == 0, symmetric=i % 4 != 0)
        b = rng.standard_normal(n).astype(np.float32) if i % 3 else None
        bt = torch.from_numpy(b) if b is not None else None
        s, z = float(rng.uniform(0.01, 0.3)), int(rng.integers(0, 128))
        mod = nnq.Linear(k, n)
        mod.set_weight_bias(w, b)
        mod.scale, mod.zero_point = s, z
        tmod = tnnq.Linear(k, n)
        tmod.set_weight_bias(wt, bt)
        tmod.scale, tmod.zero_point = s, z
        where = f"case {i}: ({m}, {k}) x ({n}, {k})"
        _same(mod(a), tmod(at), where)
        _same(qF.linear(a, w, b, s, z), tqF.linear(at, wt, bt, s, z), where)
        np.testing.assert_array_equal(mod.weight().int_repr(), tmod.weight().int_repr().numpy())
        if i % 10 == 0:                                     # batched (..., K) input
            a3, at3 = _act(rng, torch, (2, m, k), 0.05, 3)
            _same(mod(a3), tmod(at3), where + " 3-d")


def _conv_case(rng, torch, cin, cout, groups, kmax, hmax, per_channel):
    """A random int8 Conv2d case, qlearn's and torch's modules on the same weights:
    kernel up to ``kmax``, stride and dilation 1 or 2, padding below the kernel (torch's
    FBGEMM conv crashes with SIGSEGV when the padding reaches the kernel size, e.g.
    kernel (2, 1) with padding (1, 1)), a 1- or 2-image input up to ``hmax`` square."""
    k = (int(rng.integers(1, kmax + 1)), int(rng.integers(1, kmax + 1)))
    st = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    pd = (int(rng.integers(0, k[0])), int(rng.integers(0, k[1])))
    dl = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    h = int(rng.integers(max(k[0] * dl[0] - 2 * pd[0], 1), hmax))
    w_ = int(rng.integers(max(k[1] * dl[1] - 2 * pd[1], 1), hmax))
    a, at = _act(rng, torch, (int(rng.integers(1, 3)), cin, h, w_), 0.04,
                 int(rng.integers(0, 60)))
    w, wt = _weight(rng, torch, (cout, cin // groups, *k), per_channel)
    b = rng.standard_normal(cout).astype(np.float32)
    s, z = float(rng.uniform(0.02, 0.3)), int(rng.integers(0, 128))
    mod = nnq.Conv2d(cin, cout, k, st, pd, dl, groups)
    mod.set_weight_bias(w, b)
    mod.scale, mod.zero_point = s, z
    tmod = torch.ao.nn.quantized.Conv2d(cin, cout, k, st, pd, dl, groups)
    tmod.set_weight_bias(wt, torch.from_numpy(b))
    tmod.scale, tmod.zero_point = s, z
    where = (f"groups {groups}, {cin} channels, kernel {k}, stride {st}, padding {pd}, "
             f"dilation {dl}")
    return (a, at, w, wt, b), (st, pd, dl, s, z), (mod, tmod), where


def test_conv2d(torch_x86, rng):
    torch = torch_x86
    tqF = torch.ao.nn.quantized.functional
    for i in range(60):
        g = [1, 2, 4][i % 3]
        cin, cout = g * int(rng.integers(1, 4)), g * int(rng.integers(1, 4))
        (a, at, w, wt, b), (st, pd, dl, s, z), (mod, tmod), where = _conv_case(
            rng, torch, cin, cout, g, 3, 12, i % 2 == 0)
        where = f"case {i}: {where}"
        _same(mod(a), tmod(at), where)
        _same(qF.conv2d(a, w, b, st, pd, dl, g, scale=s, zero_point=z),
              tqF.conv2d(at, wt, torch.from_numpy(b), st, pd, dl, g, scale=s, zero_point=z),
              where)
    with pytest.raises(ValueError, match="padding_mode"):
        nnq.Conv2d(2, 2, 3, padding_mode="replicate")   # torch's: zeros or reflect only


@pytest.fixture
def torch_fbgemm(torch_mod):
    yield from _engine(torch_mod, "fbgemm")


def test_depthwise_conv2d_any_window(torch_fbgemm, rng):
    """Depthwise convolutions (groups = channels) run qlearn's direct kernel for every
    window: square and rectangular, up to 7x7, strided, dilated, on channel counts
    around its 16- and 32-channel blocks; the integers equal PyTorch's FBGEMM ones.

    (Engine ``fbgemm``: on a VNNI CPU the ``x86`` engine sends grouped convolutions
    with symmetric weights to oneDNN, whose float32 requantization rounds the other way
    at rare near-ties, as for conv3d in test_conv_nd.py: under ``x86`` 1 of 86,382
    outputs of 40 such cases was one step off, and equal to oneDNN's.)"""
    for i in range(40):
        c = [1, 5, 16, 37, 48, 64][i % 6]
        (a, at, *_), _, (mod, tmod), where = _conv_case(rng, torch_fbgemm, c, c, c, 7, 20,
                                                       i % 2 == 0)
        _same(mod(a), tmod(at), f"case {i}: {where}")


def test_depthwise_conv2d_channel_multiplier(torch_fbgemm, rng):
    """One input channel per group and 2 to 4 outputs each (a depthwise convolution
    with a channel multiplier): qlearn's depthwise kernel on the input with its
    channels repeated, on every path, NCHW and channels-last inputs; the integers equal
    PyTorch's FBGEMM ones."""
    from qlearn.kernels import simd
    from qlearn.kernels.quantize import per_tensor_unchecked
    for i in range(24):
        c, m = [2, 5, 16, 37][i % 4], [2, 3, 4][i % 3]
        (a, at, *_), _, (mod, tmod), where = _conv_case(
            rng, torch_fbgemm, c, c * m, c, 5, 16, i % 2 == 0)
        assert mod._packed_params.depthwise
        theirs = tmod(at)
        # the same integers laid out channels-last, as a convolution's output is
        cl = np.ascontiguousarray(a.int_repr().transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        a_cl = per_tensor_unchecked(cl, ql.quint8, ql.per_tensor_affine, a.q_scale(),
                                    a.q_zero_point())
        for path in simd.available():
            with simd.use(path):
                _same(mod(a), theirs, f"case {i}, {path.name}: {where}")
                _same(mod(a_cl), theirs, f"case {i}, {path.name}, channels-last: {where}")


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("padding", [(1, 1), (1, 2), (2, 0)])
def test_conv2d_reflect_padding(torch_x86, rng, fused, padding):
    torch = torch_x86
    import qlearn.nn.intrinsic.quantized as nniq
    cls = nniq.ConvReLU2d if fused else nnq.Conv2d
    tcls = (torch.ao.nn.intrinsic.quantized.ConvReLU2d if fused
            else torch.ao.nn.quantized.Conv2d)
    w, wt = _weight(rng, torch, (4, 2, 3, 3), per_channel=True)
    b = rng.standard_normal(4).astype(np.float32)
    mod, tmod = (c(2, 4, 3, padding=padding, padding_mode="reflect") for c in (cls, tcls))
    mod.set_weight_bias(w, b)
    tmod.set_weight_bias(wt, torch.from_numpy(b))
    mod.scale = tmod.scale = 0.1
    mod.zero_point = tmod.zero_point = 50
    assert repr(mod) == repr(tmod).replace("torch", "qlearn")
    a, at = _act(rng, torch, (2, 2, 5, 6), 0.05, 10)
    _same(mod(a), tmod(at))
    m = max(padding)                             # a padding as large as the input
    small, _ = _act(rng, torch, (1, 2, m, m), 0.05, 10)
    with pytest.raises(ValueError, match="reflect padding"):
        mod(small)


def _elementwise_cases(torch, a, at, b, bt, a2, at2, s, z):
    tqF = torch.ao.nn.quantized.functional
    ops = torch.ops.quantized
    tnnq = torch.ao.nn.quantized
    return [
        ("relu", lambda: qF.relu(a), lambda: torch.relu(at)),
        ("ReLU", lambda: nnq.ReLU()(a), lambda: torch.nn.ReLU()(at)),
        ("relu6", lambda: qF.relu6(a), lambda: torch.nn.functional.relu6(at)),
        ("ReLU6", lambda: nnq.ReLU6()(a), lambda: tnnq.ReLU6()(at)),
        ("add", lambda: qF.add(a, b, s, z), lambda: ops.add(at, bt, s, z)),
        ("add_relu", lambda: qF.add_relu(a, b, s, z), lambda: ops.add_relu(at, bt, s, z)),
        ("mul", lambda: qF.mul(a, b, s, z), lambda: ops.mul(at, bt, s, z)),
        ("cat", lambda: qF.cat([a, b], 1, s, z), lambda: ops.cat([at, bt], 1, s, z)),
        ("cat-1", lambda: qF.cat([a, b], -1), lambda: torch.cat([at, bt], -1)),
        ("max_pool2d", lambda: qF.max_pool2d(a, 2, 1, 1), lambda: tqF.max_pool2d(at, 2, 1, 1)),
        ("max_pool2d_ceil", lambda: qF.max_pool2d(a, 3, 2, 1, ceil_mode=True),
         lambda: tqF.max_pool2d(at, 3, 2, 1, ceil_mode=True)),
        ("MaxPool2d", lambda: nnq.MaxPool2d(2)(a), lambda: torch.nn.MaxPool2d(2)(at)),
        ("avg_pool2d", lambda: qF.avg_pool2d(a2, 2), lambda: tqF.avg_pool2d(at2, 2)),
        ("adaptive_avg_pool2d", lambda: qF.adaptive_avg_pool2d(a, (3, 2)),
         lambda: tqF.adaptive_avg_pool2d(at, (3, 2))),
        ("AdaptiveAvgPool2d", lambda: nnq.AdaptiveAvgPool2d(1)(a),
         lambda: torch.nn.AdaptiveAvgPool2d(1)(at)),
        ("add_scalar", lambda: qF.add_scalar(a, 0.7), lambda: ops.add_scalar(at, 0.7)),
        ("add_scalar-", lambda: qF.add_scalar(a, -3.1), lambda: ops.add_scalar(at, -3.1)),
        ("mul_scalar", lambda: qF.mul_scalar(a, 1.7), lambda: ops.mul_scalar(at, 1.7)),
        ("mul_scalar-", lambda: qF.mul_scalar(a, -0.3), lambda: ops.mul_scalar(at, -0.3)),
        ("mul_scalar0", lambda: qF.mul_scalar(a, 0.0), lambda: ops.mul_scalar(at, 0.0)),
        ("Dropout", lambda: nnq.Dropout(0.5)(a), lambda: tnnq.Dropout(0.5)(at)),
    ]


def test_elementwise_pooling_and_scalar_ops(torch_x86, rng):
    torch = torch_x86
    for i in range(40):
        shape = (2, 3, int(rng.integers(2, 9)), int(rng.integers(2, 9)))
        a, at = _act(rng, torch, shape, float(rng.uniform(0.01, 0.2)),
                     int(rng.integers(0, 128)), 255)
        b, bt = _act(rng, torch, shape, float(rng.uniform(0.01, 0.2)),
                     int(rng.integers(0, 128)), 255)
        a2, at2 = _act(rng, torch, (2, 3, 4, 6), 0.03, 7, 255)
        s, z = float(rng.uniform(0.01, 0.3)), int(rng.integers(0, 128))
        for name, ours, theirs in _elementwise_cases(torch, a, at, b, bt, a2, at2, s, z):
            _same(ours(), theirs(), f"case {i}: {name} on {shape}")


def test_adaptive_avg_pool_ties_round_as_torch(torch_x86):
    """PyTorch multiplies the bin's integer sum by float32(1/n): at a tie with n = 14
    (a 2x7 bin) that lands above the half and rounds up where a division gives the even
    integer (the case was off by one before)."""
    torch = torch_x86
    ints = np.zeros((1, 1, 2, 7), np.float32)
    ints.reshape(-1)[:] = 126
    ints[0, 0, 0, 0] = 133                          # sum 1771 = 14 * 126.5
    a = ql.quantize_per_tensor(ints, 1.0, 0, ql.quint8)
    at = torch.quantize_per_tensor(torch.from_numpy(ints), 1.0, 0, torch.quint8)
    _same(qF.adaptive_avg_pool2d(a, 1), torch.nn.functional.adaptive_avg_pool2d(at, 1))
    assert qF.adaptive_avg_pool2d(a, 1).int_repr().item() == 127
    rng = np.random.default_rng(23)
    for _ in range(200):
        h, w = int(rng.integers(1, 16)), int(rng.integers(1, 16))
        out = (int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1)))
        a, at = _act(rng, torch, (1, 2, h, w), 0.1, int(rng.integers(0, 256)), 255)
        _same(qF.adaptive_avg_pool2d(a, out), torch.nn.functional.adaptive_avg_pool2d(at, out),
              f"{h}x{w} -> {out}")


def test_float_functional_and_qfunctional(torch_x86, rng):
    torch = torch_x86
    tnnq = torch.ao.nn.quantized
    for _ in range(10):
        shape = (2, 3, 4, 5)
        a, at = _act(rng, torch, shape, 0.05, int(rng.integers(0, 128)), 255)
        b, bt = _act(rng, torch, shape, 0.07, int(rng.integers(0, 128)), 255)
        s, z = float(rng.uniform(0.01, 0.3)), int(rng.integers(0, 128))
        f, ft = nnq.QFunctional(), tnnq.QFunctional()
        f.scale, f.zero_point = s, z
        ft.scale, ft.zero_point = s, z
        for name in ("add", "mul", "add_relu"):
            _same(getattr(f, name)(a, b), getattr(ft, name)(at, bt), name)
        _same(f.cat([a, b], 1), ft.cat([at, bt], 1), "cat")
        for c in (0.5, -1.25, 3.0):
            _same(f.add_scalar(a, c), ft.add_scalar(at, c), f"add_scalar {c}")
            _same(f.mul_scalar(a, c), ft.mul_scalar(at, c), f"mul_scalar {c}")
    # FloatFunctional is float arithmetic (and a hook point for an observer)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    y = rng.standard_normal((2, 3)).astype(np.float32)
    ff, fft = nnq.FloatFunctional(), tnnq.FloatFunctional()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    for ours, theirs in ((ff.add(x, y), fft.add(tx, ty)), (ff.mul(x, y), fft.mul(tx, ty)),
                         (ff.add_relu(x, y), fft.add_relu(tx, ty)),
                         (ff.add_scalar(x, 1.5), fft.add_scalar(tx, 1.5)),
                         (ff.mul_scalar(x, -2.0), fft.mul_scalar(tx, -2.0)),
                         (ff.cat([x, y], 0), fft.cat([tx, ty], 0))):
        np.testing.assert_array_equal(np.asarray(getattr(ours, "data", ours)), theirs.numpy())


def test_batch_norm2d(torch_x86, rng):
    torch = torch_x86
    tnnq = torch.ao.nn.quantized
    for i in range(20):
        c = int(rng.integers(1, 6))
        a, at = _act(rng, torch, (2, c, 4, 5), 0.05, 20, 255)
        mod, tmod = nnq.BatchNorm2d(c), tnnq.BatchNorm2d(c)
        gamma = rng.uniform(0.5, 2, c).astype(np.float32)
        beta = rng.standard_normal(c).astype(np.float32)
        mean = rng.standard_normal(c).astype(np.float32)
        var = rng.uniform(0.2, 3, c).astype(np.float32)
        mod.weight.data[:] = gamma
        mod.bias.data[:] = beta
        mod.running_mean[:] = mean
        mod.running_var[:] = var
        mod.scale, mod.zero_point = np.array(0.07, np.float32), np.array(60)
        with torch.no_grad():
            for dst, src in ((tmod.weight, gamma), (tmod.bias, beta),
                             (tmod.running_mean, mean), (tmod.running_var, var)):
                dst.copy_(torch.from_numpy(src))
        tmod.scale, tmod.zero_point = torch.tensor(0.07), torch.tensor(60)
        _same(mod(a), tmod(at), f"case {i}: {c} channels")
    assert repr(mod) == repr(tmod)


def test_quantize_and_dequantize_modules(torch_x86, rng):
    torch = torch_x86
    tnnq = torch.ao.nn.quantized
    x = rng.standard_normal((3, 4)).astype(np.float32)
    for name in ("quint8", "qint8"):
        q = nnq.Quantize(0.05, 7, getattr(ql, name))(x)
        t = tnnq.Quantize(0.05, 7, getattr(torch, name))(torch.from_numpy(x))
        _same(q, t)
        np.testing.assert_array_equal(np.asarray(nnq.DeQuantize()(q).data),
                                      tnnq.DeQuantize()(t).numpy())


# ---- bad input --------------------------------------------------------------------------
def _q(shape, dtype=ql.quint8):
    return ql.quantize_per_tensor(np.ones(shape, np.float32), 0.1, 0, dtype)


BAD = [
    ("Linear float input", lambda: nnq.Linear(4, 3)(np.ones((2, 4), np.float32)), TypeError,
     "quantized"),
    ("Linear qint8 input", lambda: nnq.Linear(4, 3)(_q((2, 4), ql.qint8)), TypeError, "quint8"),
    ("Linear features", lambda: nnq.Linear(4, 3)(_q((2, 5))), ValueError, "4 features"),
    ("Linear 0-d", lambda: nnq.Linear(4, 3)(_q(())), ValueError, "features"),
    ("Linear size", lambda: nnq.Linear(-1, 3), ValueError, "in_features"),
    ("Linear weight float", lambda: nnq.Linear(4, 3).set_weight_bias(
        np.ones((3, 4), np.float32), None), (TypeError, ValueError), "weight"),
    ("Linear weight quint8", lambda: nnq.Linear(4, 3).set_weight_bias(
        _q((3, 4)), None), TypeError, "qint8"),
    ("Linear weight shape", lambda: nnq.Linear(4, 3).set_weight_bias(
        _q((3, 5), ql.qint8), None), ValueError, "shape"),
    ("Linear bias shape", lambda: nnq.Linear(4, 3).set_weight_bias(
        _q((3, 4), ql.qint8), np.ones(5)), ValueError, "bias"),
    ("Conv2d 3-d input", lambda: nnq.Conv2d(2, 3, 3)(_q((2, 5, 5))), ValueError, "4-d"),
    ("Conv2d channels", lambda: nnq.Conv2d(2, 3, 3)(_q((1, 3, 5, 5))), ValueError, "channels"),
    ("Conv2d too small", lambda: nnq.Conv2d(2, 3, 3)(_q((1, 2, 2, 2))), ValueError, "small"),
    ("Conv2d groups", lambda: nnq.Conv2d(3, 4, 3, groups=2), ValueError, "groups"),
    ("Conv2d stride 0", lambda: nnq.Conv2d(2, 4, 3, stride=0), ValueError, "stride"),
    ("qF.linear scale", lambda: qF.linear(_q((2, 4)), _q((3, 4), ql.qint8), None, -1.0, 0),
     ValueError, "scale"),
    ("qF.linear zero_point", lambda: qF.linear(_q((2, 4)), _q((3, 4), ql.qint8), None, 0.1,
                                               300), ValueError, "zero_point"),
    ("qF.add shapes", lambda: qF.add(_q((2, 4)), _q((1, 2, 5, 5)), 0.1, 0), ValueError, ""),
    ("qF.add float", lambda: qF.add(_q((2, 4)), np.ones((2, 4)), 0.1, 0), ValueError, "b"),
    ("qF.cat empty", lambda: qF.cat([], 0), ValueError, "tensors"),
    ("qF.cat dim", lambda: qF.cat([_q((2, 4)), _q((2, 4))], 5), ValueError, "dim"),
    ("qF.relu float", lambda: qF.relu(np.ones(3)), TypeError, "quantized"),
    ("qF.max_pool2d kernel", lambda: qF.max_pool2d(_q((1, 2, 5, 5)), 0), ValueError, "kernel"),
    ("qF.max_pool2d too big", lambda: qF.max_pool2d(_q((1, 2, 5, 5)), 7), ValueError, "small"),
    ("qF.adaptive 0", lambda: qF.adaptive_avg_pool2d(_q((1, 2, 5, 5)), 0), ValueError,
     "output_size"),
    ("qF.avg_pool2d padding", lambda: qF.avg_pool2d(_q((1, 2, 5, 5)), 3, 1, 2), ValueError,
     "half the kernel"),
    ("qF.avg_pool2d divisor", lambda: qF.avg_pool2d(_q((1, 2, 5, 5)), 3, 1, 1,
                                                     divisor_override=0), ValueError,
     "divisor_override"),
    ("qF.avg_pool2d too small", lambda: qF.avg_pool2d(_q((1, 2, 2, 2)), 3), ValueError,
     "small"),
    ("qF.avg_pool2d 2-d", lambda: qF.avg_pool2d(_q((2, 2)), 1), ValueError, "3-d or 4-d"),
    ("add_scalar nan", lambda: qF.add_scalar(_q((2, 4)), float("nan")), ValueError, "finite"),
    ("add_scalar inf", lambda: qF.add_scalar(_q((2, 4)), float("inf")), ValueError, "finite"),
    ("add_scalar huge", lambda: qF.add_scalar(_q((2, 4)), 1e300), ValueError, "2\\*\\*31"),
    ("mul_scalar nan", lambda: qF.mul_scalar(_q((2, 4)), float("nan")), ValueError, "finite"),
    ("mul_scalar -inf", lambda: qF.mul_scalar(_q((2, 4)), -float("inf")), ValueError,
     "finite"),
    ("add_scalar str", lambda: qF.add_scalar(_q((2, 4)), "1"), TypeError, "other"),
    ("Quantize nan", lambda: nnq.Quantize(0.1, 0, ql.quint8)(np.array([np.nan], np.float32)),
     ValueError, "finite"),
    ("Quantize scale", lambda: nnq.Quantize(-0.1, 0, ql.quint8), ValueError, "scale"),
    ("BatchNorm2d channels", lambda: nnq.BatchNorm2d(3)(_q((1, 2, 5, 5))), ValueError, "shape"),
    ("BatchNorm2d 2-d", lambda: nnq.BatchNorm2d(4)(_q((2, 4))), ValueError, "4-d"),
]


@pytest.mark.parametrize("name, call, exc, match", BAD, ids=[b[0] for b in BAD])
def test_bad_input(name, call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_empty_batches(torch_x86, rng):
    torch = torch_x86
    lin = nnq.Linear(4, 3)
    assert lin(_q((0, 4))).shape == (0, 3)
    assert nnq.Conv2d(2, 3, 3)(_q((0, 2, 5, 5))).shape == (0, 3, 3, 3)
    assert qF.add(_q((0, 4)), _q((0, 4)), 0.1, 0).shape == (0, 4)
    assert qF.adaptive_avg_pool2d(_q((0, 2, 5, 5)), 2).shape == (0, 2, 2, 2)
    t = torch.ao.nn.quantized.Linear(4, 3)(torch.quantize_per_tensor(
        torch.ones(0, 4), 0.1, 0, torch.quint8))
    assert tuple(t.shape) == lin(_q((0, 4))).shape


# ---- elementwise maps: every one of the 256 input integers -----------------------------
def _all_levels(torch, scale, zp):
    x = ((np.arange(256) - zp) * np.float32(scale)).astype(np.float32).reshape(4, 64)
    return (ql.quantize_per_tensor(x, scale, zp, ql.quint8),
            torch.quantize_per_tensor(torch.from_numpy(x), scale, zp, torch.quint8))


def _map_cases(torch, a, at, s, z):
    tqF = torch.ao.nn.quantized.functional
    tnnq = torch.ao.nn.quantized
    return [
        ("hardswish", lambda: qF.hardswish(a, s, z), lambda: tqF.hardswish(at, s, z)),
        ("Hardswish", lambda: nnq.Hardswish(s, z)(a), lambda: tnnq.Hardswish(s, z)(at)),
        ("elu", lambda: qF.elu(a, s, z), lambda: tqF.elu(at, s, z)),
        ("elu alpha", lambda: qF.elu(a, s, z, 0.3), lambda: tqF.elu(at, s, z, 0.3)),
        ("ELU", lambda: nnq.ELU(s, z, 1.7)(a), lambda: tnnq.ELU(s, z, 1.7)(at)),
        ("celu", lambda: qF.celu(a, s, z, 2.0), lambda: tqF.celu(at, s, z, 2.0)),
        ("leaky_relu", lambda: qF.leaky_relu(a, 0.1), lambda: tqF.leaky_relu(at, 0.1)),
        ("leaky_relu qparams", lambda: qF.leaky_relu(a, 0.2, scale=s, zero_point=z),
         lambda: tqF.leaky_relu(at, 0.2, scale=s, zero_point=z)),
        ("LeakyReLU", lambda: nnq.LeakyReLU(s, z, 0.05)(a),
         lambda: tnnq.LeakyReLU(s, z, 0.05)(at)),
        ("hardsigmoid", lambda: qF.hardsigmoid(a), lambda: tqF.hardsigmoid(at)),
        ("sigmoid", lambda: qF.sigmoid(a), lambda: torch.sigmoid(at)),
        ("Sigmoid", lambda: nnq.Sigmoid(s, z)(a), lambda: tnnq.Sigmoid(s, z)(at)),
        ("hardtanh", lambda: qF.hardtanh(a), lambda: tqF.hardtanh(at)),
        ("hardtanh range", lambda: qF.hardtanh(a, -0.33, 2.5),
         lambda: tqF.hardtanh(at, -0.33, 2.5)),
        ("clamp", lambda: qF.clamp(a, 0.1, 0.77), lambda: tqF.clamp(at, 0.1, 0.77)),
        ("threshold", lambda: qF.threshold(a, 0.3, -0.5), lambda: tqF.threshold(at, 0.3, -0.5)),
    ]


def test_elementwise_maps(torch_x86, rng):
    torch = torch_x86
    for i in range(40):
        scale, zp = float(rng.uniform(0.005, 0.2)), int(rng.integers(0, 256))
        a, at = _all_levels(torch, scale, zp)
        s, z = float(rng.uniform(0.005, 0.1)), int(rng.integers(0, 256))
        for name, ours, theirs in _map_cases(torch, a, at, s, z):
            _same(ours(), theirs(), f"case {i}: {name}, input ({scale}, {zp})")


def test_activation_modules_repr_and_from_float(torch_mod, rng):
    torch = torch_mod
    tnnq = torch.ao.nn.quantized
    for ours, theirs in ((nnq.Hardswish(0.1, 3), tnnq.Hardswish(0.1, 3)),
                         (nnq.ELU(0.1, 3, 0.5), tnnq.ELU(0.1, 3, 0.5)),
                         (nnq.LeakyReLU(0.1, 3, 0.2), tnnq.LeakyReLU(0.1, 3, 0.2)),
                         (nnq.Sigmoid(0.1, 3), tnnq.Sigmoid(0.1, 3))):
        assert repr(ours) == repr(theirs)
        assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    float_mod = nn.LeakyReLU(0.2)
    float_mod.activation_post_process = tq.MinMaxObserver()
    float_mod.activation_post_process(np.array([-1.0, 3.0], np.float32))
    q = nnq.LeakyReLU.from_float(float_mod)
    s, z = float_mod.activation_post_process.calculate_qparams()
    assert (float(q.scale), int(q.zero_point), q.negative_slope) == (float(s[0]), int(z[0]),
                                                                      0.2)
    with pytest.raises(ValueError, match="activation_post_process"):
        nnq.Hardswish.from_float(nn.LeakyReLU())


def test_elementwise_map_bad_input():
    a = _q((2, 4))
    with pytest.raises(TypeError, match="quantized"):
        qF.hardswish(np.ones(3, np.float32), 0.1, 0)
    with pytest.raises(TypeError, match="quint8"):
        qF.elu(_q((2, 4), ql.qint8), 0.1, 0)
    with pytest.raises(ValueError, match="scale"):
        qF.hardswish(a, -1.0, 0)
    with pytest.raises(ValueError, match="zero_point"):
        qF.elu(a, 0.1, 256)
    with pytest.raises(ValueError, match="finite"):
        qF.elu(a, 0.1, 0, alpha=float("nan"))
    with pytest.raises(TypeError, match="negative_slope"):
        qF.leaky_relu(a, "0.1")
    with pytest.raises(ValueError, match="both"):
        qF.leaky_relu(a, 0.1, scale=0.1)
    with pytest.raises(ValueError, match="min_val"):
        qF.hardtanh(a, 1.0, -1.0)
    with pytest.raises(ValueError, match="alpha"):
        qF.celu(a, 0.1, 0, alpha=0.0)
    assert qF.hardswish(_q((0, 4)), 0.1, 0).shape == (0, 4)


def test_elementwise_maps_on_any_size(torch_x86, rng):
    """PyTorch's vectorised loop takes whole blocks of elements, its scalar loop the
    rest (dequantizing as (q - Z) S instead of one FMA): the tail can differ by one at a
    tie.  qlearn gives every element the vectorised result, so on awkward sizes the
    integers agree except for a few tail elements, never by more than one."""
    torch = torch_x86
    tqF = torch.ao.nn.quantized.functional
    total = differ = 0
    for n in (1, 7, 31, 33, 100, 1000):
        for _ in range(5):
            scale, zp = float(rng.uniform(0.005, 0.2)), int(rng.integers(0, 256))
            x = ((rng.integers(0, 256, n) - zp) * np.float32(scale)).astype(np.float32)
            a = ql.quantize_per_tensor(x, scale, zp, ql.quint8)
            at = torch.quantize_per_tensor(torch.from_numpy(x), scale, zp, torch.quint8)
            for ours, theirs in ((qF.leaky_relu(a, 0.1), tqF.leaky_relu(at, 0.1)),
                                 (qF.hardswish(a, 0.03, 40), tqF.hardswish(at, 0.03, 40))):
                d = np.abs(ours.int_repr().astype(int) - theirs.int_repr().numpy().astype(int))
                assert d.max() <= 1
                total += n
                differ += int(d.sum())
    assert differ <= total // 50


def test_avg_pool2d_every_option(torch_x86, rng):
    """Overlapping windows, padding, ceil_mode, count_include_pad, divisor_override and
    3-d inputs: torch's integers (its kernel adds the zero point before rounding)."""
    torch = torch_x86
    tqF = torch.ao.nn.quantized.functional
    for i in range(200):
        k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        p = (int(rng.integers(0, k[0] // 2 + 1)), int(rng.integers(0, k[1] // 2 + 1)))
        ceil, cip = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
        dov = int(rng.integers(1, 30)) if i % 5 == 0 else None
        shape = (2, 3, int(rng.integers(k[0], 14)), int(rng.integers(k[1], 14)))
        a, at = _act(rng, torch, shape[1:] if i % 7 == 0 else shape,
                     float(rng.uniform(0.01, 0.3)), int(rng.integers(0, 256)), 255)
        _same(qF.avg_pool2d(a, k, s, p, ceil, cip, dov), tqF.avg_pool2d(at, k, s, p, ceil, cip,
                                                                         dov),
              f"case {i}: kernel {k}, stride {s}, padding {p}, ceil {ceil}, "
              f"count_include_pad {cip}, divisor {dov}")


def test_softmax(torch_x86, rng):
    torch = torch_x86
    tnnq = torch.ao.nn.quantized
    assert repr(nnq.Softmax(1)) == repr(tnnq.Softmax(1))
    assert sorted(nnq.Softmax(1).state_dict()) == sorted(tnnq.Softmax(1).state_dict())
    differ = total = 0
    for i in range(100):
        shape = [(4, 10), (2, 3, 5), (2, 3, 4, 5), (7,), (3, 300)][i % 5]
        dim = [None, -1, 0, 1][i % 4] if len(shape) > 1 else None
        a, at = _act(rng, torch, shape, float(rng.uniform(0.01, 0.2)),
                     int(rng.integers(0, 256)), 255)
        s, z = [(1 / 256, 0), (float(rng.uniform(0.001, 0.01)), int(rng.integers(0, 50)))][i % 2]
        ours, theirs = nnq.Softmax(dim, s, z)(a), tnnq.Softmax(dim, s, z)(at)
        d = np.abs(ours.int_repr().astype(int) - theirs.int_repr().numpy().astype(int))
        assert d.max() <= 1 and ours.q_scale() == theirs.q_scale()
        differ += int((d > 0).sum())
        total += d.size
    assert differ <= total // 1000           # float32 exp: measured 0 of 64 000
    with pytest.raises(TypeError, match="quantized"):
        nnq.Softmax(1)(np.ones((2, 3), np.float32))
    assert nnq.Softmax(1)(_q((0, 3))).shape == (0, 3)


def test_grouped_conv2d_4_and_8_channels_per_group(torch_fbgemm, rng):
    """Groups of 4 or 8 input and output channels with a symmetric weight (qlearn's
    direct kernel on VNNI and on AVX2, a GEMM per group on the generic path): the
    integers equal PyTorch's FBGEMM ones on every path."""
    from qlearn.kernels import simd
    for i in range(36):
        cg = 4 if i < 18 else 8
        g = [2, 8, 16, 17, 32, 50][i % 6]
        (a, at, w, wt, b), _, (mod, tmod), where = _conv_case(
            rng, torch_fbgemm, cg * g, cg * g, g, 5, 16, i % 2 == 0)
        assert mod._packed_params.groupwise
        theirs = tmod(at)
        for path in simd.available():
            with simd.use(path):
                _same(mod(a), theirs, f"case {i}, {path.name}: {where}")
