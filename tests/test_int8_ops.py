"""Quantized operators against PyTorch 2.13's x86 backend and against NumPy references.

Comparisons with PyTorch use 7-bit activations (quant_max 127, PyTorch's reduce_range);
full 8-bit activations are compared with the exact NumPy transcription of the equations
(docs/int8.rst).  Off-by-one elements (a float rounding at a tie that differs) are
counted and must stay under 0.1 %.
"""
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import qlearn as ql
import qlearn.nn.quantized.functional as qF
from qlearn._ext import _qconv
from qlearn.kernels import int8 as kint8
from qlearn.kernels import simd as simd_paths
from qlearn.nn.quantized import packed_params as _packed

PATHS = [p.name.lower() for p in simd_paths.available()]
MAX_OFF_BY_ONE = 1e-3


# ---- helpers -------------------------------------------------------------------------------
def to_torch(torch, q):
    data = torch.from_numpy(q.int_repr())
    if q.qscheme().is_per_channel:
        return torch._make_per_channel_quantized_tensor(
            data, torch.from_numpy(q.q_per_channel_scales()),
            torch.from_numpy(q.q_per_channel_zero_points()), q.q_per_channel_axis())
    return torch._make_per_tensor_quantized_tensor(data, q.q_scale(), q.q_zero_point())


def activations(rng, shape, scale=0.02, zero_point=31, qmax=127):
    q = rng.integers(0, qmax + 1, shape).astype(np.uint8)
    return ql.QTensor(q, ql.quint8, ql.per_tensor_affine, scale, zero_point)


def weights(rng, shape, per_channel, zero_point=0):
    q = rng.integers(-128, 128, shape).astype(np.int8)
    if per_channel:
        n = shape[0]
        return ql.QTensor(q, ql.qint8, ql.per_channel_affine, 1.0, 0,
                          rng.uniform(0.002, 0.02, n), np.full(n, zero_point, np.int64), 0)
    return ql.QTensor(q, ql.qint8, ql.per_tensor_affine, 0.01, zero_point)


def assert_close_count(got, want, what=""):
    """Integers equal, or off by one on at most 0.1 % of the elements."""
    got, want = got.astype(np.int64), want.astype(np.int64)
    diff = np.abs(got - want)
    assert diff.max(initial=0) <= 1, f"{what}: max difference {diff.max()}"
    off = int((diff == 1).sum())
    assert off <= MAX_OFF_BY_ONE * got.size, f"{what}: {off} of {got.size} off by one"
    return off


def linear_reference(x, w, bias, scale, zero_point, relu=False):
    """eq. (3) + eq. (6), FBGEMM's float32 requantization written out."""
    if w.qscheme().is_per_channel:
        sw, zw = w.q_per_channel_scales(), w.q_per_channel_zero_points()
    else:
        sw = np.full(w.shape[0], w.q_scale())
        zw = np.full(w.shape[0], w.q_zero_point())
    acc = ((x.int_repr().astype(np.int64) - x.q_zero_point())
           @ (w.int_repr().astype(np.int64) - zw[:, None]).T)
    atws = np.float32(x.q_scale()) * sw.astype(np.float32)
    mult = atws / np.float32(scale)
    xf = acc.astype(np.float32)
    if bias is not None:
        xf = xf + (bias / atws if w.qscheme().is_per_channel
                   else bias * (np.float32(1) / atws)).astype(np.float32)
    q = np.rint(xf * mult).astype(np.int64) + zero_point
    return np.clip(q, zero_point if relu else 0, 255).astype(np.uint8)


def conv_reference(x, w, bias, stride, padding, dilation, groups, scale, zero_point):
    """Direct convolution of (x - Za)(w - Zw) in int64, then eq. (6); ``stride``,
    ``padding`` and ``dilation`` ints or (height, width) pairs."""
    (sh, sw_), (ph, pw), (dh, dw) = (np.broadcast_to(v, 2) for v in (stride, padding,
                                                                     dilation))
    a = x.int_repr().astype(np.int64) - x.q_zero_point()
    n, _, h, wd = a.shape
    o, cg, kh, kw = w.shape
    if w.qscheme().is_per_channel:
        sw, zw = w.q_per_channel_scales(), w.q_per_channel_zero_points()
    else:
        sw, zw = np.full(o, w.q_scale()), np.full(o, w.q_zero_point())
    wz = w.int_repr().astype(np.int64) - zw[:, None, None, None]
    ap = np.pad(a, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw_ + 1
    acc = np.zeros((n, o, ho, wo), np.int64)
    og = o // groups
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                patch = ap[:, g * cg:(g + 1) * cg,
                           i * dh:i * dh + sh * (ho - 1) + 1:sh,
                           j * dw:j * dw + sw_ * (wo - 1) + 1:sw_]
                acc[:, g * og:(g + 1) * og] += np.einsum(
                    "nchw,oc->nohw", patch, wz[g * og:(g + 1) * og, :, i, j])
    atws = (np.float32(x.q_scale()) * sw.astype(np.float32)).reshape(1, -1, 1, 1)
    xf = acc.astype(np.float32)
    if bias is not None:
        b = bias.reshape(1, -1, 1, 1)
        xf = xf + (b / atws if w.qscheme().is_per_channel
                   else b * (np.float32(1) / atws)).astype(np.float32)
    q = np.rint(xf * (atws / np.float32(scale))).astype(np.int64) + zero_point
    return np.clip(q, 0, 255).astype(np.uint8)


@pytest.fixture(params=PATHS)
def path(request):
    with simd_paths.use(request.param):
        yield request.param


# ---- linear --------------------------------------------------------------------------------
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 17, 5), (16, 64, 33), (37, 129, 70)])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("w_zp", [0, 3])
def test_linear_matches_torch(torch_mod, path, num_threads, rng, m, k, n, per_channel,
                              w_zp):
    torch = torch_mod
    torch.backends.quantized.engine = "x86"
    x = activations(rng, (m, k))
    w = weights(rng, (n, k), per_channel, w_zp)
    b = (rng.standard_normal(n) * 2).astype(np.float32)
    for relu in (False, True):
        op = qF.linear if not relu else None
        packed = torch.ops.quantized.linear_prepack(to_torch(torch, w), torch.from_numpy(b))
        top = torch.ops.quantized.linear_relu if relu else torch.ops.quantized.linear
        want = top(to_torch(torch, x), packed, 0.07, 100).int_repr().numpy()
        if op is not None:
            got = op(x, w, b, 0.07, 100)
        else:
            got = _packed.linear_apply(x, _packed.PackedLinearWeight(w, b), 0.07, 100,
                                       relu=True)
        assert got.dtype is ql.quint8 and got.q_scale() == 0.07 and got.q_zero_point() == 100
        assert_close_count(got.int_repr(), want, f"linear relu={relu}")


def test_linear_many_outputs_off_by_one_count(torch_mod, rng):
    """On 200 k outputs the integers are PyTorch's exactly (the count is 0 here; any
    nonzero count would be a float rounding difference at a tie)."""
    torch = torch_mod
    torch.backends.quantized.engine = "x86"
    x = activations(rng, (200, 256))
    w = weights(rng, (1000, 256), True)
    b = (rng.standard_normal(1000) * 5).astype(np.float32)
    got = qF.linear(x, w, b, 0.05, 128).int_repr()
    packed = torch.ops.quantized.linear_prepack(to_torch(torch, w), torch.from_numpy(b))
    want = torch.ops.quantized.linear(to_torch(torch, x), packed, 0.05, 128)
    assert assert_close_count(got, want.int_repr().numpy()) == 0


@pytest.mark.parametrize("per_channel", [False, True])
def test_linear_full_8bit_matches_exact_reference(path, rng, per_channel):
    x = activations(rng, (9, 70), qmax=255, zero_point=128)
    x._int[0] = 255
    w = weights(rng, (21, 70), per_channel, zero_point=2)
    b = rng.standard_normal(21).astype(np.float32)
    got = qF.linear(x, w, b, 0.3, 7).int_repr()
    assert_array_equal(got, linear_reference(x, w, b, 0.3, 7))
    got = qF.linear(x, w, None, 0.3, 7).int_repr()
    assert_array_equal(got, linear_reference(x, w, None, 0.3, 7))


def test_linear_keeps_leading_dimensions(rng):
    x = activations(rng, (2, 3, 8))
    w = weights(rng, (5, 8), False)
    y = qF.linear(x, w, None, 0.1, 0)
    assert y.shape == (2, 3, 5)
    assert_array_equal(y.int_repr().reshape(6, 5),
                       qF.linear(x.reshape(6, 8), w, None, 0.1, 0).int_repr())


# ---- conv2d --------------------------------------------------------------------------------
CONVS = [  # N, C, H, W, O, k, stride, pad, dilation, groups
    (1, 1, 1, 1, 1, 1, 1, 0, 1, 1),
    (2, 8, 9, 9, 16, 3, 1, 1, 1, 1),
    (1, 3, 23, 19, 8, 7, 2, 3, 1, 1),
    (2, 16, 10, 11, 16, 3, 1, 1, 1, 16),     # depthwise 3x3
    (1, 16, 13, 13, 16, 3, 2, 1, 1, 16),     # depthwise 3x3, stride 2
    (1, 12, 7, 7, 20, 1, 1, 0, 1, 1),        # 1x1
    (1, 12, 7, 9, 6, 3, 1, 2, 2, 3),         # grouped, dilated
    (1, 5, 6, 8, 7, 2, 2, 0, 1, 1),
]


@pytest.mark.parametrize("cfg", CONVS, ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("per_channel", [False, True])
def test_conv2d_matches_torch(torch_mod, path, num_threads, rng, cfg, per_channel):
    torch = torch_mod
    n, c, h, w_, o, k, s, p, d, g = cfg
    x = activations(rng, (n, c, h, w_))
    w = weights(rng, (o, c // g, k, k), per_channel)
    b = rng.standard_normal(o).astype(np.float32)
    got = qF.conv2d(x, w, b, s, p, d, g, scale=0.05, zero_point=60).int_repr()
    assert_close_count(got, conv_reference(x, w, b, s, p, d, g, 0.05, 60), "vs reference")
    for engine in ("x86", "fbgemm"):
        torch.backends.quantized.engine = engine
        packed = torch.ops.quantized.conv2d_prepack(to_torch(torch, w), torch.from_numpy(b),
                                                    [s, s], [p, p], [d, d], g)
        want = torch.ops.quantized.conv2d(to_torch(torch, x), packed, 0.05, 60)
        assert_close_count(got, want.int_repr().numpy(), f"vs torch {engine}")
    torch.backends.quantized.engine = "x86"


@pytest.mark.parametrize("cfg", [CONVS[1], CONVS[3], CONVS[5]],
                         ids=lambda c: "x".join(map(str, c)))
def test_conv2d_full_8bit_and_weight_zero_point(path, rng, cfg):
    n, c, h, w_, o, k, s, p, d, g = cfg
    x = activations(rng, (n, c, h, w_), qmax=255, zero_point=255)
    w = weights(rng, (o, c // g, k, k), True, zero_point=-5)
    b = rng.standard_normal(o).astype(np.float32)
    got = qF.conv2d(x, w, b, s, p, d, g, scale=0.5, zero_point=0).int_repr()
    assert_array_equal(got, conv_reference(x, w, b, s, p, d, g, 0.5, 0))


def test_conv2d_reads_its_own_channels_last_output(path, rng):
    """A conv's output is channels-last; a following 1x1 conv reads it in place (the
    "direct" GEMM), and gives what it gives on a contiguous copy."""
    x = activations(rng, (2, 8, 6, 6))
    w1 = weights(rng, (16, 8, 3, 3), False)
    w2 = weights(rng, (12, 16, 1, 1), True)
    y1 = qF.conv2d(x, w1, None, padding=1, scale=0.1, zero_point=3)
    assert not y1._int.flags.c_contiguous          # NCHW view of NHWC memory
    y2 = qF.conv2d(y1, w2, None, scale=0.2, zero_point=9).int_repr()
    y1c = ql.QTensor(y1.int_repr(), ql.quint8, ql.per_tensor_affine, 0.1, 3)
    assert_array_equal(y2, qF.conv2d(y1c, w2, None, scale=0.2, zero_point=9).int_repr())
    assert_array_equal(y2, conv_reference(y1c, w2, None, 1, 0, 1, 1, 0.2, 9))


def test_conv_saturation_worst_case(path):
    """All activations 255 against weights -128: exact int32, no vpmaddubsw saturation."""
    x = ql.QTensor(np.full((1, 16, 4, 4), 255, np.uint8), ql.quint8, ql.per_tensor_affine,
                   1.0, 0)
    w = ql.QTensor(np.full((4, 16, 3, 3), -128, np.int8), ql.qint8, ql.per_tensor_affine,
                   1.0, 0)
    s = 255 * 128 * 16 * 9
    y = qF.conv2d(x, w, None, scale=s / 100, zero_point=200).int_repr()
    assert (y == 100).all()    # -s / (s/100) + 200


# ---- the other operators -------------------------------------------------------------------
def test_relu_relu6(torch_mod, rng):
    torch = torch_mod
    x = activations(rng, (3, 40), qmax=255, zero_point=100, scale=0.05)
    assert_array_equal(qF.relu(x).int_repr(), torch.relu(to_torch(torch, x)).int_repr())
    want = torch.nn.functional.relu6(to_torch(torch, x)).int_repr().numpy()
    assert_array_equal(qF.relu6(x).int_repr(), want)


@pytest.mark.parametrize("k,s,p,d,ceil", [(2, 2, 0, 1, False), (3, 2, 1, 1, False),
                                          (3, 2, 1, 1, True), (3, 1, 0, 2, False),
                                          (2, 3, 1, 1, True)])
def test_max_pool2d(torch_mod, rng, k, s, p, d, ceil):
    torch = torch_mod
    x = activations(rng, (2, 3, 11, 12), qmax=255)
    want = torch.nn.functional.max_pool2d(to_torch(torch, x), k, s, p, d, ceil_mode=ceil)
    got = qF.max_pool2d(x, k, s, p, d, ceil_mode=ceil)
    assert got.shape == tuple(want.shape)
    assert_array_equal(got.int_repr(), want.int_repr().numpy())


@pytest.mark.parametrize("out", [1, (4, 5), (7, 3), (11, 12)])
def test_adaptive_avg_pool2d(torch_mod, rng, out):
    torch = torch_mod
    x = activations(rng, (2, 5, 11, 12), qmax=255, zero_point=77)
    want = torch.nn.functional.adaptive_avg_pool2d(to_torch(torch, x), out)
    got = qF.adaptive_avg_pool2d(x, out)
    assert (got.q_scale(), got.q_zero_point()) == (want.q_scale(), want.q_zero_point())
    assert_close_count(got.int_repr(), want.int_repr().numpy())


@pytest.mark.parametrize("name", ["add", "add_relu", "mul"])
def test_binary_ops(torch_mod, rng, name):
    torch = torch_mod
    torch.backends.quantized.engine = "x86"
    a = activations(rng, (4, 8, 9, 9), qmax=255, zero_point=120, scale=0.03)
    b = activations(rng, (4, 8, 9, 9), qmax=255, zero_point=60, scale=0.07)
    want = getattr(torch.ops.quantized, name)(to_torch(torch, a), to_torch(torch, b),
                                             0.09, 90)
    got = getattr(qF, name)(a, b, 0.09, 90)
    assert_close_count(got.int_repr(), want.int_repr().numpy(), name)


def test_cat(torch_mod, rng):
    torch = torch_mod
    a = activations(rng, (2, 3, 4), qmax=255, zero_point=10, scale=0.1)
    b = activations(rng, (2, 5, 4), qmax=255, zero_point=40, scale=0.05)
    want = torch.ops.quantized.cat([to_torch(torch, a), to_torch(torch, b)], 1, 0.1, 10)
    got = qF.cat([a, b], 1, 0.1, 10)
    assert_close_count(got.int_repr(), want.int_repr().numpy())


# ---- dynamic linear ------------------------------------------------------------------------
def test_choose_qparams_dynamic_matches_torch(torch_mod, rng):
    torch = torch_mod
    for lo, hi in [(-1.0, 2.0), (0.5, 3.0), (-4.0, -0.1), (-0.3, 0.2)]:
        x = rng.uniform(lo, hi, 100).astype(np.float32)
        for rr in (True, False):
            got = _packed.choose_qparams_dynamic(x, rr)
            s, z = torch._choose_qparams_per_tensor(torch.from_numpy(x), rr)
            assert got[1] == z and np.float32(got[0]) == np.float32(s)


@pytest.mark.parametrize("per_channel", [False, True])
def test_linear_dynamic_matches_torch(torch_mod, path, rng, per_channel):
    torch = torch_mod
    torch.backends.quantized.engine = "x86"
    x = rng.standard_normal((13, 50)).astype(np.float32)
    w = weights(rng, (31, 50), per_channel)
    b = rng.standard_normal(31).astype(np.float32)
    got = _packed.linear_dynamic_apply(x, _packed.PackedLinearWeight(w, b))
    packed = torch.ops.quantized.linear_prepack(to_torch(torch, w), torch.from_numpy(b))
    want = torch.ops.quantized.linear_dynamic(torch.from_numpy(x), packed, True).numpy()
    a_scale, _ = _packed.choose_qparams_dynamic(x, True)
    sw = w.q_per_channel_scales().max() if per_channel else w.q_scale()
    # within one output quantization step: one activation step times sum |w| is loose;
    # the tight bound is a few float32 ulps of the accumulator scale
    assert np.abs(got - want).max() <= a_scale * sw * 4 + 1e-5


@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_blocks_and_threads(path, num_threads, rng, groups):
    """Large enough for several 96-pixel blocks of the fused im2col + GEMM, split over
    threads; a weight zero point exercises the per-block row sums."""
    x = activations(rng, (2, 32, 21, 19), qmax=255, zero_point=200)
    w = weights(rng, (40, 32 // groups, 3, 3), True, zero_point=3)
    b = rng.standard_normal(40).astype(np.float32)
    got = qF.conv2d(x, w, b, 1, 1, 1, groups, scale=0.8, zero_point=5).int_repr()
    assert_array_equal(got, conv_reference(x, w, b, 1, 1, 1, groups, 0.8, 5))


@pytest.mark.parametrize("c", [1, 16, 21, 48, 96])
@pytest.mark.parametrize("k,stride,pad,dil", [
    (3, 1, 1, 1), (3, 2, 1, 1), (3, 1, 2, 2), (3, 2, 0, 1), (5, 1, 2, 1), (5, 2, 2, 1),
    ((7, 7), (1, 2), (3, 2), (1, 1)), ((1, 5), 1, (0, 4), (1, 2)), ((2, 3), 1, 0, 1)])
@pytest.mark.parametrize("simd", [0, 1, 2])
def test_depthwise_kernel(rng, num_threads, c, k, stride, pad, dil, simd):
    """The depthwise kernels (plain loop, AVX2 vpmaddwd pairs, AVX-512 vpdpwssd pairs)
    against eq. (9) for several windows (square, rectangular, even, with an odd and an
    even number of taps), with full 8-bit activations, a zero point of 255 and
    per-channel weight zero points."""
    if (simd == 1 and "avx2" not in PATHS) or (simd == 2 and "vnni" not in PATHS):
        pytest.skip("this CPU lacks the instructions")
    kh, kw = (k, k) if isinstance(k, int) else k
    x = activations(rng, (2, c, 11, 9), qmax=255, zero_point=255)
    w = weights(rng, (c, 1, kh, kw), True, zero_point=-7)
    b = rng.standard_normal(c).astype(np.float32)
    want = conv_reference(x, w, b, stride, pad, dil, c, 0.3, 17)
    pc = _packed.PackedConvWeight(w, b, stride, pad, dil, c)
    assert pc.depthwise
    bias_q, mult = _packed._conv_requant(pc, x.q_scale(), 0.3)
    out = np.full((2,) + want.shape[2:] + (c,), 0xA5, np.uint8)
    kint8.depthwise(np.ascontiguousarray(x.int_repr().transpose(0, 2, 3, 1)),
                    pc.dw_taps, pc.kernel_size, pc.stride, pc.padding, pc.dilation, 255,
                    bias_q, mult, 17, 0, 255, out, simd, num_threads)
    assert_array_equal(out.transpose(0, 3, 1, 2), want)


@pytest.mark.parametrize("c", [48, 80])
@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("width", range(1, 11))
@pytest.mark.parametrize("simd", [1, 2])
def test_depthwise_kernel_pixel_tiles(rng, c, k, width, simd):
    """The SIMD depthwise kernels sum 4, 2 or 1 output pixels together (4 only when the
    window's weights do not fit the registers, a 5x5 one): every output width from 1
    to 10 leaves each remainder of those tiles, in the 32-channel blocks and in the
    16-channel block after them (48 and 80 channels)."""
    if (simd == 1 and "avx2" not in PATHS) or (simd == 2 and "vnni" not in PATHS):
        pytest.skip("this CPU lacks the instructions")
    x = activations(rng, (1, c, 6, width), qmax=255, zero_point=250)
    w = weights(rng, (c, 1, k, k), True, zero_point=-7)
    b = rng.standard_normal(c).astype(np.float32)
    want = conv_reference(x, w, b, 1, k // 2, 1, c, 0.3, 17)
    pc = _packed.PackedConvWeight(w, b, 1, k // 2, 1, c)
    bias_q, mult = _packed._conv_requant(pc, x.q_scale(), 0.3)
    out = np.full((1,) + want.shape[2:] + (c,), 0xA5, np.uint8)
    kint8.depthwise(np.ascontiguousarray(x.int_repr().transpose(0, 2, 3, 1)),
                    pc.dw_taps, pc.kernel_size, pc.stride, pc.padding, pc.dilation, 250,
                    bias_q, mult, 17, 0, 255, out, simd, 1)
    assert_array_equal(out.transpose(0, 3, 1, 2), want)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 5, 7), (1, 16, 4, 4), (2, 17, 9, 11),
                                   (3, 33, 17, 16), (1, 64, 20, 21)])
def test_to_channels_last(rng, num_threads, shape):
    x = rng.integers(0, 256, shape).astype(np.uint8)
    want = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    got = kint8.channels_last(x, num_threads)
    assert_array_equal(got, want)
    out = np.full(want.shape, 0xA5, np.uint8)
    kint8.to_channels_last(x, out, num_threads)
    assert_array_equal(out, want)


@pytest.mark.parametrize("a_zp", [200, 255])
def test_conv2d_padding_zero_point_above_127(path, rng, a_zp):
    """Activations all <= 127 but a zero point > 127: the indirect kernel's padding taps
    read runs of Za, so AVX2 must still take its exact variant (a pair 2 Za (-128)
    saturates vpmaddubsw's int16)."""
    x = activations(rng, (1, 8, 5, 6), zero_point=a_zp)
    w = ql.QTensor(np.full((16, 8, 3, 3), -128, np.int8), ql.qint8, ql.per_tensor_affine,
                   0.001, 0)
    got = qF.conv2d(x, w, None, padding=1, scale=0.2, zero_point=0).int_repr()
    assert got.min() > 0 and got.max() < 255       # no clamping hides an error
    assert_array_equal(got, conv_reference(x, w, None, 1, 1, 1, 1, 0.2, 0))


@pytest.mark.parametrize("c", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("w", [1, 15, 16, 17, 33, 224])
def test_small_c_to_channels_last(rng, num_threads, c, w):
    """The few-channel NCHW -> NHWC copy (three channels: 16 pixels per SSSE3 shuffle
    step, then the scalar tail) is a plain transpose."""
    x = rng.integers(0, 256, (2, c, 3, w)).astype(np.uint8)
    out = np.full((2, 3, w, c), 0xA5, np.uint8)
    _qconv.small_c_to_channels_last(x, out, num_threads)
    assert_array_equal(out, x.transpose(0, 2, 3, 1))


@pytest.mark.parametrize("hot_group", [0, 1, 2])
def test_conv2d_groups_saturation_per_group(path, rng, hot_group):
    """Only one group's channels hold activations > 127: the AVX2 indirect kernel
    decides per group (it scans that group's channels) and must take the exact variant
    exactly where vpmaddubsw could saturate."""
    q = rng.integers(0, 128, (1, 12, 6, 7)).astype(np.uint8)
    q[0, 4 * hot_group:4 * hot_group + 4, 2:4, 3:6] = 255
    x = ql.QTensor(q, ql.quint8, ql.per_tensor_affine, 0.02, 0)
    w = ql.QTensor(np.full((9, 4, 3, 3), -128, np.int8), ql.qint8, ql.per_tensor_affine,
                   0.001, 0)
    got = qF.conv2d(x, w, None, padding=1, groups=3, scale=0.5, zero_point=255).int_repr()
    assert got.min() > 0 and got.max() < 255
    assert_array_equal(got, conv_reference(x, w, None, 1, 1, 1, 3, 0.5, 255))
