"""F.interpolate / nn.Upsample (float, with gradients) and the quantized
interpolate / upsample* / max_pool1d, against torch 2.13."""
import warnings

import numpy as np
import pytest

import qlearn as ql
import qlearn.nn.functional as F
import qlearn.nn.quantized.functional as qF
import qlearn.quantization as tq
from qlearn import nn
from qlearn.quantization import quantize_fx

CASES = [  # (input H, W), kwargs
    ((4, 5), {"scale_factor": 2}),
    ((4, 5), {"scale_factor": 1.7}),
    ((7, 3), {"scale_factor": (0.5, 3.0)}),
    ((6, 6), {"scale_factor": 0.37}),
    ((5, 4), {"size": (9, 11)}),
    ((5, 4), {"size": 3}),
    ((1, 1), {"size": (4, 2)}),
    ((3, 8), {"size": (3, 16)}),
    ((4, 4), {"scale_factor": 2.5, "recompute_scale_factor": True}),
]


def _modes():
    return [("nearest", None), ("bilinear", False), ("bilinear", True)]


@pytest.mark.parametrize("hw,kw", CASES)
@pytest.mark.parametrize("mode,align", _modes())
def test_float_interpolate_like_torch(hw, kw, mode, align, torch_mod):
    rng = np.random.default_rng(hash((hw, mode)) % 2**32)
    x = rng.standard_normal((2, 3, *hw)).astype(np.float32)
    xq = ql.tensor(x, requires_grad=True)
    xt = torch_mod.from_numpy(x).requires_grad_()
    yq = F.interpolate(xq, mode=mode, align_corners=align, **kw)
    yt = torch_mod.nn.functional.interpolate(xt, mode=mode, align_corners=align, **kw)
    assert yq.shape == tuple(yt.shape)
    if mode == "nearest":
        np.testing.assert_array_equal(yq.numpy(), yt.detach().numpy())
    else:
        np.testing.assert_allclose(yq.numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(yq.shape).astype(np.float32)
    (yq * g).sum().backward()
    (yt * torch_mod.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(xq.grad, xt.grad.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("hw,kw", [c for c in CASES if "recompute_scale_factor" not in c[1]])
@pytest.mark.parametrize("mode,align", _modes())
@pytest.mark.parametrize("channels", [1, 5])
@pytest.mark.parametrize("zero_point", [0, 128, 255])
def test_quantized_interpolate_like_torch(hw, kw, mode, align, channels, zero_point,
                                          torch_mod):
    rng = np.random.default_rng(channels + zero_point)
    x = rng.uniform(-3, 3, (2, channels, *hw)).astype(np.float32)
    tx = torch_mod.quantize_per_tensor(torch_mod.from_numpy(x), 0.023, zero_point,
                                       torch_mod.quint8)
    qx = ql.quantize_per_tensor(x, 0.023, zero_point, ql.quint8)
    np.testing.assert_array_equal(qx.int_repr(), tx.int_repr().numpy())
    def torch_interp(t):
        return torch_mod.ao.nn.quantized.functional.interpolate(t, mode=mode,
                                                                align_corners=align, **kw)
    ref = torch_interp(tx)
    ref_int = ref.int_repr().numpy()
    if hw == (1, 1) and channels > 1:
        # torch 2.13 bug: a (N, C>1, 1, 1) input is also channels-last contiguous, and its
        # quantized kernels then write NHWC data into an NCHW-strided output (channel
        # values rotate across positions); one channel at a time is unambiguous
        ref_int = np.concatenate([torch_interp(tx[:, c:c + 1]).int_repr().numpy()
                                  for c in range(channels)], axis=1)
        assert mode != "nearest" or (ref_int != ref.int_repr().numpy()).any()
    out = qF.interpolate(qx, mode=mode, align_corners=align, **kw)
    assert (out.q_scale(), out.q_zero_point()) == (ref.q_scale(), ref.q_zero_point())
    # one channel: torch (and qlearn, by the same rule) takes the channels-last kernel
    np.testing.assert_array_equal(out.int_repr(), ref_int)
    # F.interpolate and nn.Upsample of a QTensor take the same path, as in PyTorch
    np.testing.assert_array_equal(
        F.interpolate(qx, mode=mode, align_corners=align, **kw).int_repr(), out.int_repr())
    np.testing.assert_array_equal(
        nn.Upsample(mode=mode, align_corners=align, **kw)(qx).int_repr(), out.int_repr())


def _channels_last(q):
    """The same QTensor with its integers laid out channels-last in memory (as a
    quantized convolution's output is)."""
    from qlearn.qtensor import QTensor
    ints = q.int_repr().transpose(0, 2, 3, 1).copy().transpose(0, 3, 1, 2)
    return QTensor(ints, q.dtype, q.qscheme(), q.q_scale(), q.q_zero_point())


@pytest.mark.parametrize("channels", [3, 8, 13, 40])
def test_quantized_channels_last_input_like_torch(channels, torch_mod):
    # torch's channels-last kernel (AVX2 blocks of 8 channels, then one at a time)
    # fuses its multiply-adds; qlearn follows it for channels-last integers
    rng = np.random.default_rng(channels)
    x = rng.uniform(-2, 2, (2, channels, 9, 7)).astype(np.float32)
    tx = torch_mod.quantize_per_tensor(torch_mod.from_numpy(x), 0.017, 77, torch_mod.quint8)
    qx = _channels_last(ql.quantize_per_tensor(x, 0.017, 77, ql.quint8))
    for kw in ({"scale_factor": 1.6}, {"size": (11, 4)}, {"scale_factor": (0.5, 2.3)}):
        for align in (False, True):
            ref = torch_mod.ao.nn.quantized.functional.interpolate(
                tx.contiguous(memory_format=torch_mod.channels_last), mode="bilinear",
                align_corners=align, **kw)
            out = qF.interpolate(qx, mode="bilinear", align_corners=align, **kw)
            np.testing.assert_array_equal(out.int_repr(), ref.int_repr().numpy())


def test_quantized_conv_then_interpolate_like_torch(torch_mod):
    import qlearn.nn.quantized as nnq
    rng = np.random.default_rng(12)
    x = rng.uniform(-1, 1, (1, 3, 8, 8)).astype(np.float32)
    w = rng.uniform(-0.5, 0.5, (12, 3, 3, 3)).astype(np.float32)
    tw = torch_mod.quantize_per_tensor(torch_mod.from_numpy(w), 0.004, 0, torch_mod.qint8)
    tconv = torch_mod.ao.nn.quantized.Conv2d(3, 12, 3, padding=1)
    tconv.set_weight_bias(tw, None)
    tconv.scale, tconv.zero_point = 0.02, 60
    qconv = nnq.Conv2d(3, 12, 3, padding=1)
    qconv.set_weight_bias(ql.quantize_per_tensor(w, 0.004, 0, ql.qint8), None)
    qconv.scale, qconv.zero_point = 0.02, 60
    # 7-bit activations (integers <= 127), as every comparison of int8 convolutions
    tx = torch_mod.quantize_per_tensor(torch_mod.from_numpy(x), 0.02, 64, torch_mod.quint8)
    qx = ql.quantize_per_tensor(x, 0.02, 64, ql.quint8)
    ty, qy = tconv(tx), qconv(qx)
    np.testing.assert_array_equal(qy.int_repr(), ty.int_repr().numpy())
    ref = torch_mod.nn.functional.interpolate(ty, scale_factor=1.5, mode="bilinear")
    out = qF.interpolate(qy, scale_factor=1.5, mode="bilinear")
    np.testing.assert_array_equal(out.int_repr(), ref.int_repr().numpy())


@pytest.mark.parametrize("fn,kw", [("upsample", {"mode": "bilinear", "align_corners": False}),
                                   ("upsample_nearest", {}), ("upsample_bilinear", {})])
def test_deprecated_upsample_like_torch(fn, kw, torch_mod):
    x = np.random.default_rng(1).uniform(0, 5, (1, 2, 3, 4)).astype(np.float32)
    tx = torch_mod.quantize_per_tensor(torch_mod.from_numpy(x), 0.05, 3, torch_mod.quint8)
    qx = ql.quantize_per_tensor(x, 0.05, 3, ql.quint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = getattr(torch_mod.ao.nn.quantized.functional, fn)(tx, size=(5, 7), **kw)
    with pytest.warns(UserWarning, match="deprecated"):
        out = getattr(qF, fn)(qx, size=(5, 7), **kw)
    np.testing.assert_array_equal(out.int_repr(), ref.int_repr().numpy())


@pytest.mark.parametrize("args", [(2,), (3, 1), (3, 2, 1), (2, None, 0, 2), (3, 2, 1, 1, True)])
@pytest.mark.parametrize("shape", [(2, 3, 9), (4, 10)])
def test_max_pool1d_like_torch(args, shape, torch_mod):
    x = np.random.default_rng(len(args)).uniform(-1, 1, shape).astype(np.float32)
    tx = torch_mod.quantize_per_tensor(torch_mod.from_numpy(x), 0.01, 100, torch_mod.quint8)
    qx = ql.quantize_per_tensor(x, 0.01, 100, ql.quint8)
    ref = torch_mod.ao.nn.quantized.functional.max_pool1d(tx, *args)
    out = qF.max_pool1d(qx, *args)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_array_equal(out.int_repr(), ref.int_repr().numpy())
    assert (out.q_scale(), out.q_zero_point()) == (0.01, 100)


def test_upsample_repr_like_torch(torch_mod):
    for kw in ({"scale_factor": 2}, {"scale_factor": (2, 3)}, {"size": 4},
               {"size": (3, 5), "mode": "bilinear", "align_corners": True}):
        assert repr(nn.Upsample(**kw)) == repr(torch_mod.nn.Upsample(**kw))


def _conv_up_net(lib_nn, functional, w, b, up):
    class Net(lib_nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = lib_nn.Conv2d(2, 3, 3, padding=1)
            self.up = lib_nn.Upsample(scale_factor=2, mode="bilinear")

        def forward(self, x):
            y = self.up(self.conv(x)) if up == "module" else functional.interpolate(
                self.conv(x), scale_factor=1.5, mode="nearest")
            return y
    return Net().eval()


@pytest.mark.parametrize("up", ["module", "function"])
def test_fx_upsample_like_torch(up, torch_mod):
    rng = np.random.default_rng(4)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32) * 0.3
    b = rng.standard_normal(3).astype(np.float32)
    x = rng.standard_normal((2, 2, 5, 6)).astype(np.float32)
    tm = _conv_up_net(torch_mod.nn, torch_mod.nn.functional, w, b, up)
    with torch_mod.no_grad():
        tm.conv.weight.copy_(torch_mod.from_numpy(w))
        tm.conv.bias.copy_(torch_mod.from_numpy(b))
    qm = _conv_up_net(nn, F, w, b, up)
    qm.conv.weight.data[...] = w
    qm.conv.bias.data[...] = b
    from torch.ao.quantization import quantize_fx as tfx
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tp = tfx.prepare_fx(tm, {"": torch_mod.ao.quantization.get_default_qconfig("x86")},
                            (torch_mod.from_numpy(x),))
        tp(torch_mod.from_numpy(x))
        tc = tfx.convert_fx(tp)
        ref = tc(torch_mod.from_numpy(x)).numpy()
    p = quantize_fx.prepare_fx(qm, {"": tq.get_default_qconfig("x86")})
    p(x)
    c = quantize_fx.convert_fx(p)
    assert "interpolate" in c.code or up == "module"
    out = np.asarray(c(x))
    step = tc.conv.scale
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() <= step * 1.001
    assert np.mean(np.abs(out - ref) > step / 2) <= 0.01


def test_eager_upsample_between_stubs(torch_mod):
    m = nn.Sequential(tq.QuantStub(), nn.Conv2d(1, 2, 1), nn.Upsample(scale_factor=2),
                      tq.DeQuantStub()).eval()
    m.qconfig = tq.get_default_qconfig("x86")
    p = tq.prepare(m)
    assert not hasattr(p[2], "activation_post_process")
    p(np.ones((1, 1, 3, 3), np.float32))
    q = tq.convert(p)
    assert type(q[2]) is nn.Upsample
    assert q(np.ones((1, 1, 3, 3), np.float32)).shape == (1, 2, 6, 6)


def test_errors():
    x = np.zeros((1, 1, 2, 2), np.float32)
    q = ql.quantize_per_tensor(x, 0.1, 0, ql.quint8)
    with pytest.raises(ValueError, match="exactly one of `size` and `scale_factor`"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="exactly one of `size` and `scale_factor`"):
        qF.interpolate(q, size=2, scale_factor=2)
    with pytest.raises(ValueError, match="`align_corners` can only be set with mode "
                                         "'bilinear'"):
        qF.interpolate(q, size=3, align_corners=True)
    with pytest.raises(ValueError, match="`mode` must be one of"):
        F.interpolate(x, size=3, mode="bicubic")
    with pytest.raises(ValueError, match="`size` must be a positive int"):
        F.interpolate(x, size=(0, 2))
    with pytest.raises(ValueError, match="`scale_factor` must be a positive number"):
        F.interpolate(x, scale_factor=-1.0)
    with pytest.raises(ValueError, match="makes the output size"):
        F.interpolate(x, scale_factor=0.1)
    with pytest.raises(ValueError, match="must be 4-d"):
        qF.interpolate(ql.quantize_per_tensor(np.zeros((2, 2)), 0.1, 0, ql.quint8), size=3)
    with pytest.raises(TypeError):
        qF.interpolate(x, size=3)
    with pytest.raises(ValueError, match="`input` must be 3-d .N, C, L. or 2-d .C, L."):
        qF.max_pool1d(q, 2)
    with pytest.raises(ValueError, match="`kernel_size` must be an int >= 1 .or a 1-tuple."):
        qF.max_pool1d(ql.quantize_per_tensor(np.zeros((1, 4)), 0.1, 0, ql.quint8), (2, 2))


@pytest.mark.parametrize("args", [(2,), (3, 1), (3, 2, 1), (2, None, 0, 2), (3, 2, 1, 1, True)])
def test_float_max_pool1d_like_torch(args, torch_mod):
    x = np.random.default_rng(len(args)).standard_normal((2, 3, 9)).astype(np.float32)
    xq = ql.tensor(x, requires_grad=True)
    xt = torch_mod.from_numpy(x).requires_grad_()
    a, b = F.max_pool1d(xq, *args), torch_mod.nn.functional.max_pool1d(xt, *args)
    np.testing.assert_array_equal(a.numpy(), b.detach().numpy())
    (a * a).sum().backward()
    (b * b).sum().backward()
    np.testing.assert_allclose(xq.grad, xt.grad.numpy(), rtol=1e-6)
    _, i = F.max_pool1d(x, 3, 2, 1, return_indices=True)
    _, j = torch_mod.nn.functional.max_pool1d(torch_mod.from_numpy(x), 3, 2, 1,
                                              return_indices=True)
    np.testing.assert_array_equal(i, j.numpy())
    # as F.max_pool2d: a float function refuses a QTensor (qF.max_pool1d pools it)
    q = ql.quantize_per_tensor(x, 0.05, 128, ql.quint8)
    with pytest.raises(TypeError, match="dequantize it first"):
        F.max_pool1d(q, *args)
    with pytest.raises(ValueError, match="`input` must be 3-d .N, C, L. or 2-d .C, L."):
        F.max_pool1d(np.zeros((1, 1, 2, 2), np.float32), 2)
