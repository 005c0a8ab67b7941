"""Bad shapes and geometry arguments get a ValueError/TypeError that names the argument
(DESIGN.md "Errors"), before any kernel runs: operands that do not broadcast, tensors
that cannot be concatenated, conv geometry given as a string, floats or bools, and conv
weights with a zero-size dimension.  torch 2.13 refuses the same inputs (with a
RuntimeError); the tests check that it does, so the refusal is not an invention."""
import numpy as np
import pytest

import qlearn as ql
import qlearn.nn.quantized as nnq
import qlearn.nn.quantized.functional as qF
from qlearn import autograd as A


def _q(shape, dtype=None, z=128):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return ql.quantize_per_tensor(x, 0.1, z, dtype or ql.quint8)


def _w(shape):
    return ql.quantize_per_tensor(np.ones(shape, np.float32), 0.1, 0, ql.qint8)


BCAST = r"`{a}` of shape \(2, 3\) and `{b}` of shape \(4,\) do not broadcast: the size " \
        r"of `{a}` \(3\) must match the size of `{b}` \(4\) at non-singleton dimension 1"


@pytest.mark.parametrize("op", ["add", "add_relu", "mul"])
def test_qF_binary_names_both_operands(torch_mod, op):
    with pytest.raises(ValueError, match=f"qF.{op}: " + BCAST.format(a="a", b="b")):
        getattr(qF, op)(_q((2, 3)), _q((4,)), 0.1, 128)
    t = torch_mod.quantize_per_tensor(torch_mod.zeros(2, 3), 0.1, 128, torch_mod.quint8)
    u = torch_mod.quantize_per_tensor(torch_mod.zeros(4), 0.1, 128, torch_mod.quint8)
    with pytest.raises(RuntimeError):
        getattr(torch_mod.ops.quantized, op)(t, u, 0.1, 128)


@pytest.mark.parametrize("op", ["add", "add_relu", "mul"])
def test_functional_modules_name_both_operands(op):
    a, b = np.zeros((2, 3), np.float32), np.zeros((4,), np.float32)
    for mod in (nnq.FloatFunctional(), nnq.FXFloatFunctional()):
        who = type(mod).__name__
        with pytest.raises(ValueError, match=f"{who}.{op}: " + BCAST.format(a="x", b="y")):
            getattr(mod, op)(a, b)
        with pytest.raises(ValueError, match=f"{who}.{op}: " + BCAST.format(a="x", b="y")):
            getattr(mod, op)(A.tensor(a), A.tensor(b))
    with pytest.raises(ValueError, match=f"qF.{op}: " + BCAST.format(a="a", b="b")):
        getattr(nnq.QFunctional(), op)(_q((2, 3)), _q((4,)))


def test_tensor_arithmetic_names_input_and_other():
    a, b = A.tensor(np.zeros((2, 3), np.float32)), A.tensor(np.zeros(4, np.float32))
    for f in (lambda: a + b, lambda: a * b, lambda: b - a, lambda: a / np.zeros(4)):
        with pytest.raises(ValueError, match="do not broadcast"):
            f()
    assert (a + A.tensor(np.zeros((1, 3), np.float32))).shape == (2, 3)
    assert (A.tensor(np.zeros((0, 1), np.float32)) + np.zeros(5, np.float32)).shape == (0, 5)


CAT = r"sizes of `{n}` must match except in dimension 0: `{n}\[1\]` has size 4 in " \
      r"dimension 1, `{n}\[0\]` has 3"


def test_cat_names_the_tensor_that_does_not_fit(torch_mod):
    with pytest.raises(ValueError, match="qF.cat: " + CAT.format(n="tensors")):
        qF.cat([_q((2, 3)), _q((2, 4))])
    with pytest.raises(ValueError, match=r"qF.cat: `tensors\[1\]` must be 2-d like "):
        qF.cat([_q((2, 3)), _q((2,))])
    with pytest.raises(ValueError, match="qF.cat: " + CAT.format(n="tensors")):
        nnq.QFunctional().cat([_q((2, 3)), _q((2, 4))])
    for mod in (nnq.FloatFunctional(), nnq.FXFloatFunctional()):
        with pytest.raises(ValueError, match=CAT.format(n="x")):
            mod.cat([np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32)])
    with pytest.raises(ValueError, match="cat: " + CAT.format(n="tensors")):
        ql.cat([A.tensor(np.zeros((2, 3), np.float32)), np.zeros((2, 4), np.float32)])
    with pytest.raises(ValueError, match=r"stack: `tensors\[1\]` must have the shape"):
        ql.stack([np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32)])
    assert qF.cat([_q((2, 3)), _q((2, 3))], dim=1).shape == (2, 6)
    with pytest.raises(RuntimeError):
        torch_mod.cat([torch_mod.zeros(2, 3), torch_mod.zeros(2, 4)])


CONVS = [(nnq.Conv1d, 1), (nnq.Conv2d, 2), (nnq.Conv3d, 3), (nnq.ConvTranspose1d, 1),
         (nnq.ConvTranspose2d, 2), (nnq.ConvTranspose3d, 3)]


@pytest.mark.parametrize("cls,k", CONVS, ids=[c.__name__ for c, _ in CONVS])
@pytest.mark.parametrize("kw", [dict(padding="same"), dict(padding="11"),
                                dict(stride=(1.5, 1.5, 1.5)), dict(padding=(True,) * 3),
                                dict(dilation=2.0)],
                         ids=["same", "digits", "float_tuple", "bool_tuple", "float"])
def test_conv_geometry_refuses_strings_floats_and_bools(cls, k, kw):
    """'11' used to be read digit by digit as (1, 1) and (1.5, 1.5) truncated to (1, 1)
    for Conv2d and the transposed convs; 'same' gave int()'s 'invalid literal'."""
    name = next(iter(kw))
    with pytest.raises(TypeError, match=rf"{cls.__name__}: (`{name}` must be an int or a|"
                                        rf"string padding)"):
        cls(4, 4, 3, **kw)


@pytest.mark.parametrize("shape", [(0, 2, 1, 1), (4, 2, 0, 1), (4, 0, 1, 1)],
                         ids=["no_out_channel", "empty_kernel", "no_in_channel"])
def test_conv_prepack_refuses_zero_size_weight(torch_mod, shape):
    """An empty kernel widened the output by one per axis (a (1, 2, 3, 3) input gave a
    (1, 4, 4, 3) output of zeros); torch's oneDNN refuses all three weights.

    The oracle is pinned to oneDNN: on a CPU without AVX512-VNNI the ``x86`` engine
    runs FBGEMM, which divides by zero on the weight without output channels (SIGFPE)
    and accepts the empty kernel with that very (1, 4, 4, 3) output."""
    x = _q((1, 2, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d_prepack: `weight` .* must have no "
                                         r"zero-size dimension, got shape"):
        qF.conv2d(x, _w(shape), None, scale=0.1, zero_point=0)
    with pytest.raises(ValueError, match="conv1d_prepack: `weight`"):
        qF.conv1d(_q((1, 2, 3)), _w(shape[:3]), None, scale=0.1, zero_point=0)
    with pytest.raises(ValueError, match="conv3d_prepack: `weight`"):
        qF.conv3d(_q((1, 2, 3, 3, 3)), _w(shape + (1,)), None, scale=0.1, zero_point=0)
    from qlearn.nn.quantized.packed_conv_transpose import PackedConvTransposeWeight
    with pytest.raises(ValueError, match="conv_transpose_prepack: `weight`"):
        PackedConvTransposeWeight(_w(shape), None)
    t = torch_mod
    tx = t.quantize_per_tensor(t.ones(1, 2, 3, 3), 0.1, 0, t.quint8)
    tw = t.quantize_per_tensor(t.ones(*shape), 0.1, 0, t.qint8)
    before = t.backends.quantized.engine
    t.backends.quantized.engine = "onednn"
    try:
        with pytest.raises(RuntimeError):
            packed = t.ops.quantized.conv2d_prepack(tw, None, [1, 1], [0, 0], [1, 1], 1)
            t.ops.quantized.conv2d(tx, packed, 0.1, 0)
    finally:
        t.backends.quantized.engine = before


def test_conv1d_prepack_error_names_conv1d():
    with pytest.raises(ValueError, match=r"conv1d_prepack: out_channels \(4\) must be "
                                         r"divisible by groups \(3\)"):
        qF.conv1d(_q((1, 6, 3)), _w((4, 2, 1)), None, groups=3, scale=0.1, zero_point=0)


def test_float_layer_refuses_a_ragged_list_by_name():
    import qlearn.nn as nn
    with pytest.raises(TypeError, match=r"`input` must be a qlearn.Tensor or a float "
                                        r"array, got list"):
        nn.Linear(2, 2)([[1.0], [1.0, 2.0]])


def test_save_and_load_refuse_what_is_not_a_file():
    """Was: AttributeError ('NoneType' object has no attribute 'tell') from load(None)
    and the os module's message from save(obj, None)."""
    import io
    for f in (None, 5, object()):
        with pytest.raises(TypeError, match="`f` must be a path or a seekable binary file"):
            ql.load(f)
        with pytest.raises(TypeError, match="`f` must be a path or a writable binary file"):
            ql.save({"a": 1}, f)
    buf = io.BytesIO()
    ql.save({"a": np.arange(3)}, buf)
    buf.seek(0)
    np.testing.assert_array_equal(ql.load(buf)["a"], np.arange(3))


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_dynamic_rnn_empty_sequence_and_batch_as_torch(torch_mod, cls):
    """torch: a sequence of length 0 raises ('Expected sequence length to be larger
    than 0'), a batch of 0 gives an empty output; qlearn gave NumPy's reshape error for
    both."""
    import qlearn.nn.quantized.dynamic as nnqd
    tm = getattr(torch_mod.ao.nn.quantized.dynamic, cls)(2, 3)
    qm = getattr(nnqd, cls)(2, 3)
    with pytest.raises(RuntimeError):
        tm(torch_mod.zeros(0, 5, 2))
    with pytest.raises(ValueError, match="`input` must have at least one time step"):
        qm(np.zeros((0, 5, 2), np.float32))
    assert qm(np.zeros((4, 0, 2), np.float32))[0].shape == \
        tuple(tm(torch_mod.zeros(4, 0, 2))[0].shape) == (4, 0, 3)
    bf = getattr(nnqd, cls)(2, 3, batch_first=True, bidirectional=True)
    assert bf(np.zeros((0, 4, 2), np.float32))[0].shape == (0, 4, 6)


def test_dynamic_rnn_checks_the_initial_state(torch_mod):
    """A (2, 5, 3) h_0 for a one-layer LSTM was accepted (its first slice used); torch
    raises 'Expected hidden[0] size (1, 5, 3)'."""
    import qlearn.nn.quantized.dynamic as nnqd
    x = np.zeros((4, 5, 2), np.float32)
    m = nnqd.LSTM(2, 3)
    z = np.zeros((1, 5, 3), np.float32)
    with pytest.raises(ValueError, match=r"`hx\[0\]` must have shape \(1, 5, 3\)"):
        m(x, (np.zeros((2, 5, 3), np.float32), z))
    with pytest.raises(ValueError, match=r"`hx\[1\]` must have shape \(1, 5, 3\)"):
        m(x, (z, np.zeros((1, 5, 4), np.float32)))
    with pytest.raises(TypeError, match=r"`hx` must be a tuple \(h_0, c_0\)"):
        m(x, z)
    with pytest.raises(ValueError, match=r"`hx` must have shape \(1, 5, 3\)"):
        nnqd.GRU(2, 3)(x, np.zeros((1, 3), np.float32))
    assert m(x, (z, z))[0].shape == (4, 5, 3)
    tm = torch_mod.ao.nn.quantized.dynamic.LSTM(2, 3)
    with pytest.raises(RuntimeError):
        tm(torch_mod.zeros(4, 5, 2), (torch_mod.zeros(2, 5, 3), torch_mod.zeros(1, 5, 3)))


@pytest.mark.parametrize("args,exc,msg", [
    ((0.0, 0, 0, 255), ValueError, "`scale` must be a positive finite number, got 0.0"),
    ((-1.0, 0, 0, 255), ValueError, "`scale` must be a positive finite number"),
    ((float("nan"), 0, 0, 255), ValueError, "`scale` must be a positive finite number"),
    ((1.0, 0, 255, 0), ValueError, "`quant_min` must be <= `quant_max`"),
    ((1.0, 300, 0, 255), ValueError, r"`zero_point` must be in \[0, 255\], got 300"),
    ((1.0, 1.5, 0, 255), TypeError, "`zero_point` must be an integer"),
])
def test_range_linear_quantize_checks_its_parameters(args, exc, msg):
    """Was: silently computed (scale 0 gave inf * 0 = NaN cast to int32, an undefined
    integer; a zero point of 300 or quant_min > quant_max clipped to nonsense)."""
    from qlearn.quantizers.range_linear import linear_quantize
    with pytest.raises(exc, match=msg):
        linear_quantize(np.array([-1.0, 0.5, 2.0], np.float32), *args)


def test_range_linear_quantize_refuses_nan_and_keeps_its_answers():
    from qlearn.quantizers.range_linear import (
        linear_dequantize,
        linear_quantization_params,
        linear_quantize,
    )
    with pytest.raises(ValueError, match="`input` must be finite"):
        linear_quantize(np.array([np.nan], np.float32), 0.25, 4, 0, 15)
    s, z, lo, hi = linear_quantization_params(-1.0, 3.0, 4, "asymmetric_unsigned")
    q = linear_quantize([-1.0, 0.0, 0.7, 3.0], s, z, lo, hi)      # 1-element arrays
    np.testing.assert_array_equal(q, linear_quantize([-1.0, 0.0, 0.7, 3.0], float(s[0]),
                                                     int(z[0]), lo, hi))
    with pytest.raises(TypeError, match="`q` must hold integers"):
        linear_dequantize(np.array([0.5]), 0.25, 4)
    with pytest.raises(ValueError, match="`scale` must be a positive finite number"):
        linear_dequantize(q, 0.0, 4)


@pytest.mark.parametrize("kind", ["conv", "convtranspose"])
def test_fuse_conv_bn_names_the_channel_mismatch(torch_mod, kind):
    """Was NumPy's 'operands could not be broadcast'; torch raises a RuntimeError (size
    mismatch).  A one-feature batch norm broadcasts, in both."""
    import qlearn.nn as nn
    import qlearn.quantization as tq
    conv = nn.Conv2d(1, 2, 1) if kind == "conv" else nn.ConvTranspose2d(1, 2, 1)
    with pytest.raises(ValueError, match=r"`bn.num_features` must equal the convolution's "
                                         r"`out_channels` \(2\) or be 1, got 3"):
        tq.fuse_modules(nn.Sequential(conv, nn.BatchNorm2d(3)).eval(), [["0", "1"]])
    tconv = torch_mod.nn.Conv2d(1, 2, 1) if kind == "conv" else \
        torch_mod.nn.ConvTranspose2d(1, 2, 1)
    with pytest.raises(RuntimeError):
        torch_mod.ao.quantization.fuse_modules(
            torch_mod.nn.Sequential(tconv, torch_mod.nn.BatchNorm2d(3)).eval(), [["0", "1"]])
    fused = tq.fuse_modules(nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(1)).eval(),
                            [["0", "1"]])
    assert type(fused[0]).__name__ == "Conv2d"


def test_float_conv2d_refuses_an_unknown_padding_string_when_built(torch_mod):
    """Was refused only at the first forward; torch.nn.Conv2d refuses it when built."""
    import qlearn.nn as nn
    with pytest.raises(ValueError, match="`padding` must be an int, a pair, 'valid' or "
                                         "'same', got '11'"):
        nn.Conv2d(3, 4, 3, padding="11")
    with pytest.raises(ValueError):
        torch_mod.nn.Conv2d(3, 4, 3, padding="11")
    assert nn.Conv2d(3, 4, 3, padding="same")(np.ones((1, 3, 5, 5), np.float32)).shape == \
        (1, 4, 5, 5)
