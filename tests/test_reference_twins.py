"""Every kernel entry of ``qlearn.kernels`` has a NumPy twin ``<kernel>_ref`` in
``qlearn.reference``, and the kernel equals it on every SIMD path (the twins the other
kernel tests do not already use are checked here)."""
import inspect

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from qlearn import reference as ref
from qlearn.kernels import (
    embedding,
    fake_quant,
    float_conv,
    float_qparams,
    int8,
    lookup,
    norm,
    observer,
    quantize,
    quantizers,
)
from qlearn.kernels import simd as simd_paths
from qlearn.nn.quantized.functional import _pool_out

WRAPPERS = [quantize, fake_quant, observer, quantizers, float_conv, int8, float_qparams,
            embedding, norm, lookup]
# entries with no twin of their own, and why
NO_TWIN = {
    "quantize.channel_view_shape": "a shape helper",
    "quantize.per_tensor_unchecked": "a constructor",
    "observer.non_linear_param_search": "compared with torch's HistogramObserver search",
    "int8.requant_constants": "array arithmetic, compared with torch's int8 operators",
    "int8.as_rows": "a layout helper",
    "int8.channels_last": "a layout helper (compared with NumPy's transpose)",
    "int8.to_channels_last": "a layout helper (compared with NumPy's transpose)",
    "int8.im2col": "the patches inside conv_gemm, whose twin is conv_gemm_ref",
    "int8.pack_groupwise": "a weight layout (groupwise, whose twin is groupwise_ref)",
    "int8.peak_gops": "a timing of instruction chains, not an operation on data",
    "int8.peak_run": "instruction chains to be timed, not an operation on data",
}
TWIN_NAME = {"fake_quant.lsq_backward_per_channel": "lsq_backward_per_tensor_ref"}


def _entries():
    for mod in WRAPPERS:
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if fn.__module__ == mod.__name__ and not name.startswith("_"):
                yield f"{mod.__name__.rsplit('.', 1)[1]}.{name}"


@pytest.mark.parametrize("entry", sorted(_entries()))
def test_every_kernel_has_its_twin(entry):
    if entry in NO_TWIN:
        return
    twin = TWIN_NAME.get(entry, entry.split(".")[1] + "_ref")
    assert callable(getattr(ref, twin, None)), f"qlearn.reference.{twin} is missing"
    assert ":math:" in getattr(ref, twin).__doc__ or ":eq:" in getattr(ref, twin).__doc__


@pytest.fixture(params=[p.name.lower() for p in simd_paths.available()])
def path(request):
    with simd_paths.use(request.param):
        yield request.param


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_fake_quant_per_channel_and_ste(path, axis, rng):
    x = (rng.standard_normal((3, 5, 37)) * 4).astype(np.float32)
    c = x.shape[axis]
    scales = rng.uniform(0.01, 0.2, c).astype(np.float32)
    zps = rng.integers(-5, 6, c).astype(np.int32)
    out, mask = np.empty_like(x), np.empty(x.shape, np.uint8)
    assert not fake_quant.fake_quantize_per_channel(x, out, mask, scales, zps, axis, -8, 7)
    want, want_mask = ref.fake_quantize_per_channel_ref(x, scales, zps, axis, -8, 7)
    assert_array_equal(out, want)
    assert_array_equal(mask.astype(bool), want_mask)
    g = rng.standard_normal(x.shape).astype(np.float32)
    dx = np.empty_like(g)
    fake_quant.ste_backward(g, mask, dx)
    assert_array_equal(dx, ref.ste_backward_ref(g, mask))


def test_lsq_backward(path, rng):
    x = (rng.standard_normal(1000) * 3).astype(np.float32)
    dy = rng.standard_normal(1000).astype(np.float32)
    dx = np.empty_like(x)
    ds, dz = fake_quant.lsq_backward_per_tensor(x, dy, dx, 0.05, 3.0, -20, 20, 0.5)
    want_dx, want_ds, want_dz = ref.lsq_backward_per_tensor_ref(x, dy, 0.05, 3.0, -20, 20,
                                                                0.5)
    assert_array_equal(dx, want_dx)
    assert ds == pytest.approx(want_ds, rel=1e-12, abs=1e-9)
    assert dz == pytest.approx(want_dz, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_aminmax_and_minmax(path, axis, rng):
    x = rng.standard_normal((4, 33)).astype(np.float32)
    c = 1 if axis is None else x.shape[axis]
    lo, hi = np.empty(c, np.float32), np.empty(c, np.float32)
    assert not fake_quant.aminmax_per_channel(x, lo, hi, axis)
    want_lo, want_hi = ref.aminmax_per_channel_ref(x, axis)
    assert_array_equal(lo, want_lo)
    assert_array_equal(hi, want_hi)
    x[1, 3] = np.nan
    assert observer.minmax(x) == ref.minmax_ref(x)
    if axis is not None:
        assert observer.minmax_per_channel(x, axis, lo, hi)
        want_lo, want_hi = ref.minmax_per_channel_ref(x, axis)
        assert_array_equal(lo, want_lo)
        assert_array_equal(hi, want_hi)


def test_entropy_search(rng):
    hist = np.histogram(np.abs(rng.standard_normal(5000)), bins=300)[0].astype(np.float64)
    assert observer.entropy_search(hist, 16, 16) == ref.entropy_search_ref(hist, 16, 16)


def test_clip_and_pact_backward(path, rng):
    x = (rng.standard_normal(40_001) * 2).astype(np.float32)
    x[:4] = [0.0, 1.5, -1.0, 1.0]
    g = rng.standard_normal(x.size).astype(np.float32)
    out = np.empty_like(x)
    quantizers.clip_backward(x, g, out, -1.0, 1.0, True)
    assert_array_equal(out, ref.clip_backward_ref(x, g, -1.0, 1.0, True))
    quantizers.clip_backward(x, g, out, -1.0, 1.0, False)
    assert_array_equal(out, ref.clip_backward_ref(x, g, -1.0, 1.0, False))
    d_alpha = quantizers.pact_backward(x, g, out, 1.5)
    want, want_alpha = ref.pact_backward_ref(x, g, 1.5)
    assert_array_equal(out, want)
    assert d_alpha == pytest.approx(want_alpha, rel=1e-9)


def test_dorefa_weight_forward_and_backward(rng):
    w = rng.standard_normal(3000).astype(np.float32)
    t, out = np.empty_like(w), np.empty_like(w)
    big, bad = quantizers.dorefa_weight_forward(w, t, out, 15.0)
    want, want_t, want_big = ref.dorefa_weight_forward_ref(w, 15.0)
    assert not bad and big == want_big
    assert_array_equal(t, want_t)
    assert_array_equal(out, want)
    g = rng.standard_normal(w.size).astype(np.float32)
    direct = np.empty_like(w)
    dot = quantizers.dorefa_weight_backward(t, g, direct, big)
    want_direct, want_dot = ref.dorefa_weight_backward_ref(t, g, big)
    assert_allclose(direct, want_direct, rtol=1e-6)
    assert dot == pytest.approx(want_dot, rel=1e-9)


@pytest.mark.parametrize("geom", [((2, 3), (1, 1), (1, 0), (1, 2)),
                                  ((3, 3), (2, 1), (1, 1), (1, 1))])
def test_col2im_avg_and_max_pool(geom, rng):
    (kh, kw), s, p, d = geom
    x = rng.standard_normal((2, 3, 8, 9))
    oh = (8 + 2 * p[0] - d[0] * (kh - 1) - 1) // s[0] + 1
    ow = (9 + 2 * p[1] - d[1] * (kw - 1) - 1) // s[1] + 1
    cols = rng.standard_normal((3 * kh * kw, 2 * oh * ow))
    dx = np.empty(x.shape)
    float_conv.col2im(cols, dx, kh, kw, *s, *p, *d)
    assert_allclose(dx, ref.col2im_ref(cols, x.shape, kh, kw, s, p, d), rtol=1e-12,
                    atol=1e-15)     # float64 sums, in another order
    y = np.empty((2, 3, (8 + 2 * p[0] - kh) // s[0] + 1, (9 + 2 * p[1] - kw) // s[1] + 1))
    idx = np.empty(y.shape, np.int64)
    float_conv.max_pool2d_forward(x, y, idx, kh, kw, *s, *p, 1, 1)
    want_y, want_idx = ref.max_pool2d_forward_ref(x, (kh, kw), s, p)
    assert_array_equal(y, want_y)
    assert_array_equal(idx, want_idx)
    g = rng.standard_normal(y.shape)
    dxp = np.empty((2, 3, 8 * 9))
    float_conv.max_pool2d_backward(g, idx, dxp)
    assert_allclose(dxp.reshape(x.shape), ref.max_pool2d_backward_ref(g, idx, x.shape),
                    rtol=1e-12, atol=1e-15)
    for include in (True, False):
        ya = np.empty(y.shape)
        float_conv.avg_pool2d(x, ya, ya, x, False, kh, kw, *s, *p, include, 0, False)
        assert_allclose(ya, ref.avg_pool2d_ref(x, (kh, kw), s, p, include), rtol=1e-12,
                        atol=1e-15)


def _u8(rng, shape, hi=255):
    return rng.integers(0, hi + 1, shape).astype(np.uint8)


@pytest.mark.parametrize("kernel,stride,pad,dil", [
    ((3, 3), (1, 1), (1, 1), (1, 1)), ((3, 3), (2, 2), (0, 0), (1, 1)),
    ((3, 3), (1, 1), (2, 2), (2, 2)), ((5, 5), (2, 1), (2, 1), (1, 2)),
    ((1, 7), (1, 3), (0, 3), (1, 1)), ((4, 2), (1, 1), (1, 0), (2, 1))])
def test_depthwise(path, kernel, stride, pad, dil, rng):
    c, (kh, kw) = 37, kernel
    x = _u8(rng, (2, c, 9, 11))
    w = rng.integers(-128, 128, (c, 1, kh, kw)).astype(np.int8)
    w_zp = rng.integers(-5, 5, c).astype(np.int32)
    bias_q = (rng.standard_normal(c) * 300).astype(np.float32)
    mult = rng.uniform(1e-4, 1e-3, c).astype(np.float32)
    want = ref.depthwise_ref(x, w, 200, w_zp, bias_q, mult, 17, 0, 255, stride, pad, dil)
    taps = np.ascontiguousarray((w.reshape(c, kh * kw).astype(np.int32)
                                 - w_zp[:, None]).T)
    out = np.full((2,) + want.shape[2:] + (c,), 0xA5, np.uint8)
    xi = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    int8.depthwise(xi, taps, kernel, stride, pad, dil, 200, bias_q, mult, 17, 0, 255, out,
                   simd_paths.active())
    assert_array_equal(out.transpose(0, 3, 1, 2), want)


# channel multipliers 2 and 4 (the SSE2 repeat, with a byte tail: 13 channels) and 3
# (the plain loop); channels-last and NCHW inputs, 1 and 2 threads
@pytest.mark.parametrize("m", [2, 3, 4])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_depthwise_channel_multiplier(path, m, num_threads, rng):
    cx, kernel, stride, pad = 13, (3, 3), (1, 2), (1, 1)
    c = cx * m
    x = _u8(rng, (2, cx, 40, 23))
    w = rng.integers(-128, 128, (c, 1) + kernel).astype(np.int8)
    w_zp = rng.integers(-5, 5, c).astype(np.int32)
    bias_q = (rng.standard_normal(c) * 300).astype(np.float32)
    mult = rng.uniform(1e-4, 1e-3, c).astype(np.float32)
    want = ref.depthwise_ref(np.repeat(x, m, axis=1), w, 200, w_zp, bias_q, mult, 17, 0,
                             255, stride, pad, (1, 1))
    taps = np.ascontiguousarray((w.reshape(c, -1).astype(np.int32) - w_zp[:, None]).T)
    for xi, nchw in ((x, True), (np.ascontiguousarray(x.transpose(0, 2, 3, 1)), False)):
        out = np.full((2,) + want.shape[2:] + (c,), 0xA5, np.uint8)
        int8.depthwise(xi, taps, kernel, stride, pad, (1, 1), 200, bias_q, mult, 17, 0,
                       255, out, simd_paths.active(), num_threads, nchw)
        assert_array_equal(out.transpose(0, 3, 1, 2), want, err_msg=f"nchw={nchw}")
    with pytest.raises(ValueError, match="multiple"):
        int8.depthwise(xi, taps, kernel, stride, pad, (1, 1), 200, bias_q, mult, 17, 0,
                       255, np.empty(out.shape[:3] + (c - 1,), np.uint8))


# channels per group 4 and 8; channel counts: one block of 64 channels, a block and a
# tail (of 2 groups of 4, 1 of 8), a tail only, and for the AVX2 kernel's blocks of 16 a
# tail of 4 and of 12 channels; windows: 3x3 (strided, dilated), 1x2, 5x5; NCHW and
# channels-last inputs, 1 and 2 threads (bands of 1 and of several rows), both paths
@pytest.mark.parametrize("path", ["avx2", "vnni"])
@pytest.mark.parametrize("G", [4, 8])
@pytest.mark.parametrize("n,c,h,w,k,stride,pad,dil", [
    (1, 64, 9, 11, (3, 3), (1, 1), (1, 1), (1, 1)),
    (2, 72, 7, 13, (3, 3), (2, 1), (1, 0), (1, 2)),
    (1, 8, 5, 5, (1, 2), (1, 1), (0, 1), (1, 1)),
    (1, 200, 17, 9, (5, 5), (1, 2), (2, 2), (1, 1)),
    (1, 40, 6, 7, (3, 3), (1, 1), (1, 1), (1, 1))])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_groupwise(path, G, n, c, h, w, k, stride, pad, dil, num_threads, rng):
    path = simd_paths.Simd[path.upper()]
    if path not in simd_paths.available():
        pytest.skip(f"this CPU lacks the {path.name} path")
    if c % G:
        pytest.skip(f"{c} channels are not groups of {G}")
    x = _u8(rng, (n, c, h, w))
    wt = rng.integers(-128, 128, (c, G) + k).astype(np.int8)
    bias_q = (rng.standard_normal(c) * 300).astype(np.float32)
    mult = rng.uniform(1e-4, 1e-3, c).astype(np.float32)
    want = ref.groupwise_ref(x, wt, 200, bias_q, mult, 17, 0, 255, stride, pad, dil)
    packed, colsum = int8.pack_groupwise(wt, path)
    for xi, nchw in ((x, True), (np.ascontiguousarray(x.transpose(0, 2, 3, 1)), False)):
        out = np.full((n,) + want.shape[2:] + (c,), 0xA5, np.uint8)
        int8.groupwise(xi, packed, colsum, G, k, stride, pad, dil, 200, bias_q, mult, 17,
                       0, 255, out, path, num_threads, nchw)
        assert_array_equal(out.transpose(0, 3, 1, 2), want, err_msg=f"nchw={nchw}")


def test_groupwise_refuses_another_paths_weights(rng):
    """The two paths' weights differ in layout and type: the other one is refused."""
    paths = [p for p in (simd_paths.Simd.AVX2, simd_paths.Simd.VNNI)
             if p in simd_paths.available()]
    if len(paths) < 2:
        pytest.skip("needs the AVX2 and the VNNI paths")
    wt = rng.integers(-128, 128, (16, 4, 3, 3)).astype(np.int8)
    packed, colsum = int8.pack_groupwise(wt, "avx2")
    x = np.zeros((1, 5, 5, 16), np.uint8)
    out = np.empty((1, 3, 3, 16), np.uint8)
    with pytest.raises(ValueError, match="VNNI path takes"):
        int8.groupwise(x, packed, colsum, 4, (3, 3), (1, 1), (0, 0), (1, 1), 0,
                       np.zeros(0, np.float32), np.ones(16, np.float32), 0, 0, 255, out,
                       "vnni")
    with pytest.raises(ValueError, match="AVX2 or the VNNI"):
        int8.pack_groupwise(wt, "generic")


@pytest.mark.parametrize("k,stride,pad", [(3, 1, 1), (1, 1, 0), (2, 2, 1)])
def test_conv_gemm(k, stride, pad, rng):
    if simd_paths.Simd.AVX2 not in simd_paths.available():
        pytest.skip("conv_gemm runs on a SIMD path")
    n, c, o = 2, 8, 20
    x = _u8(rng, (n, c, 7, 6))
    w = rng.integers(-128, 128, (o, c, k, k)).astype(np.int8)
    w_zp = rng.integers(-3, 4, o).astype(np.int32)
    bias_q = (rng.standard_normal(o) * 300).astype(np.float32)
    mult = rng.uniform(1e-4, 1e-3, o).astype(np.float32)
    want = ref.conv_gemm_ref(x, w, 90, w_zp, bias_q, mult, 33, 0, 255, (stride,) * 2,
                             (pad,) * 2)
    gw = int8.GemmWeight(np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(o, -1)),
                         w_zp)
    ho, wo = want.shape[2:]
    xi = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    for p in simd_paths.available()[1:]:
        out = np.full((n * ho * wo, o), 0xA5, np.uint8)
        int8.conv_gemm(gw, xi, 0, c, k, k, stride, stride, pad, pad, 1, 1, 90, bias_q,
                       mult, 33, 0, 255, out, p)
        assert_array_equal(out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2), want)


# groups in one call: 4 input channels a group (the indirect kernel) and 3 (im2col), a
# weight zero point in one group only (row sums for all), activations above 127 in one
# group only (AVX2's exact variant for that one), NCHW and channels-last inputs, 1 and 2
# threads (the NCHW bands of one thread, the whole conversion of two)
@pytest.mark.parametrize("cg", [4, 3])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_conv_gemm_groups(cg, num_threads, rng):
    if simd_paths.Simd.AVX2 not in simd_paths.available():
        pytest.skip("conv_gemm runs on a SIMD path")
    n, groups, og, k, h, w_ = 2, 5, 6, 3, 31, 13          # 2 threads: past the serial size
    c, o = groups * cg, groups * og
    x = rng.integers(0, 128, (n, c, h, w_)).astype(np.uint8)
    x[:, 2 * cg:3 * cg] += 128                            # group 2 only: 8-bit values
    w = rng.integers(-128, 128, (o, cg, k, k)).astype(np.int8)
    w_zp = np.zeros(o, np.int32)
    w_zp[og:2 * og] = rng.integers(-3, 4, og)             # group 1 only
    bias_q = (rng.standard_normal(o) * 300).astype(np.float32)
    mult = rng.uniform(1e-4, 1e-3, o).astype(np.float32)
    want = np.concatenate(
        [ref.conv_gemm_ref(x[:, i * cg:(i + 1) * cg], w[i * og:(i + 1) * og], 90,
                           w_zp[i * og:(i + 1) * og], bias_q[i * og:(i + 1) * og],
                           mult[i * og:(i + 1) * og], 33, 0, 255, (2, 1), (1, 1))
         for i in range(groups)], axis=1)
    gw = int8.GroupedGemmWeight([int8.GemmWeight(np.ascontiguousarray(
        w[i * og:(i + 1) * og].transpose(0, 2, 3, 1).reshape(og, -1)),
        w_zp[i * og:(i + 1) * og]) for i in range(groups)])
    ho, wo = want.shape[2:]
    for p in simd_paths.available()[1:]:
        for xi, nchw in ((x, True), (np.ascontiguousarray(x.transpose(0, 2, 3, 1)), False)):
            out = np.full((n * ho * wo, o + 3), 0xA5, np.uint8)   # 3 columns past
            int8.conv_gemm(gw, xi, 0, cg, k, k, 2, 1, 1, 1, 1, 1, 90, bias_q, mult, 33, 0,
                           255, out, p, num_threads, nchw)
            assert_array_equal(out[:, :o].reshape(n, ho, wo, o).transpose(0, 3, 1, 2),
                               want, err_msg=f"{p.name} nchw={nchw}")
            assert (out[:, o:] == 0xA5).all()
    with pytest.raises(ValueError, match="groups"):
        int8.conv_gemm(gw, xi, 1, cg, k, k, 2, 1, 1, 1, 1, 1, 90, bias_q, mult, 33, 0,
                       255, out, simd_paths.available()[-1])


# -- float zero points and the embedding lookups --------------------------------------------
# These kernels run one float32 rounding per fma; the twins' fma32 rounds once too, so
# they are held to the bit.  Sizes above the kernels' 32768-element serial threshold make
# the 2-thread runs really split the work.
def test_fmaf_rounds_once():
    # a b = 2^-24 (1 + 4688 2^-46): 1 + a b rounded to float64 is a float32 tie (even:
    # 1.0), the exact sum lies above it (1 + 2^-23), as C's fmaf gives
    a = np.float32(1 + 2896 * 2.0 ** -23)
    b = np.float32((1 - 2895 * 2.0 ** -23) * 2.0 ** -24)
    assert ref.fma32(a, b, np.float32(1)) == np.float32(1 + 2.0 ** -23)
    assert ref.fma32(np.float32(3), np.float32(0.5), np.float32(-1.5)) == 0
    assert np.isinf(ref.fma32(np.float32(3e38), np.float32(10), np.float32(1)))


def _float_qparams_case(rng, shape, axis, qmin, qmax):
    c = shape[axis]
    scales = rng.uniform(0.005, 0.1, c).astype(np.float32)
    zps = rng.uniform(qmin - 40, qmax + 40, c).astype(np.float32)
    x = (rng.standard_normal(shape) * 4).astype(np.float32)    # many out of range
    bshape = [1] * len(shape)
    bshape[axis] = -1
    if x.size:          # exact ties x / S + Z = k + 1/2, on power-of-two scales
        ties = (2.0 ** -rng.integers(2, 7, c)).astype(np.float32)
        scales[::2] = ties[::2]
        zps[::2] = np.round(zps[::2]) + np.float32(0.25)
        k = rng.integers(qmin - 3, qmax + 3, shape).astype(np.float32)
        tie = ((k + 0.5 - zps.reshape(bshape)) * scales.reshape(bshape)).astype(np.float32)
        x = np.where(rng.random(shape) < 0.5, tie, x).astype(np.float32)
    return x, scales, zps


@pytest.mark.parametrize("shape,axis", [((5,), 0), ((1, 7), 0), ((1, 7), 1), ((0, 4), 1),
                                        ((3, 5, 37), 0), ((3, 5, 37), 1), ((3, 5, 37), 2),
                                        ((2, 3, 4, 5), 0), ((2, 3, 4, 5), 3),
                                        ((300, 257), 0), ((7, 9000), 1)])
@pytest.mark.parametrize("storage,qmin,qmax", [(np.uint8, 0, 255), (np.int8, -128, 127),
                                               (np.uint8, 0, 15)])       # quint4x2
def test_quantize_dequantize_float_qparams(path, num_threads, shape, axis, storage, qmin,
                                           qmax, rng):
    x, scales, zps = _float_qparams_case(rng, shape, axis, qmin, qmax)
    q = np.full(shape, 0x5A, storage)
    assert not float_qparams.quantize_per_channel_float_qparams(
        x, q, axis, np.float32(1) / scales, zps, qmin, qmax)
    want = ref.quantize_per_channel_float_qparams_ref(x, scales, zps, axis, qmin, qmax)
    assert_array_equal(q.astype(np.int64), want)
    r = np.full(shape, np.nan, np.float32)
    float_qparams.dequantize_per_channel_float_qparams(q, r, axis, scales, zps)
    assert_array_equal(r, ref.dequantize_per_channel_float_qparams_ref(q, scales, zps, axis))


def test_quantize_float_qparams_nonfinite(path):
    x = np.array([[np.nan, 1.0, np.inf], [-np.inf, 0.0, 3e38]], np.float32)
    scales, zps = np.float32([0.01, 1e-3]), np.float32([100.5, -3.25])
    q = np.empty(x.shape, np.uint8)
    assert float_qparams.quantize_per_channel_float_qparams(x, q, 0, np.float32(1) / scales,
                                                            zps, 0, 255)
    want = ref.quantize_per_channel_float_qparams_ref(x, scales, zps, 0, 0, 255)
    assert_array_equal(q, want)
    # NaN clamps to q_min; 1 / 0.01 + 100.5 = 200.5 rounds to even
    assert_array_equal(want, [[0, 200, 255], [0, 0, 255]])


def _bags(rng, n, length, nbags):
    """Indices with repeats and bounds with empty bags (leading, inner, trailing)."""
    indices = rng.integers(0, n, length)
    indices[1::7] = indices[:1]
    bounds = np.sort(rng.integers(0, length + 1, nbags + 1))
    bounds[0], bounds[-1] = 0, length
    bounds[1] = 0
    if nbags > 3:
        bounds[2] = bounds[3]
        bounds[-2] = length
    return indices, bounds.astype(np.int64)


# (table rows, embedding_dim, indices, bags): one row, odd D, an empty table with empty
# bags, and one large enough to run on two threads
LOOKUPS = [(1, 3, 9, 4), (20, 1, 30, 8), (37, 7, 60, 11), (0, 5, 0, 3), (50, 45, 1000, 64)]


def _table(rng, n, d, bits):
    scales = rng.uniform(1e-3, 0.1, n).astype(np.float32)
    biases = (-rng.uniform(-40, 300, n) * scales).astype(np.float32)
    if bits == 8:
        return rng.integers(0, 256, (n, d)).astype(np.uint8), scales, biases
    # the 4-bit table: float16 scale and bias, rows on their own bytes (an odd D leaves a
    # high nibble unused: random here, the lookup must not read it)
    half = np.float16
    return (rng.integers(0, 256, (n, (d + 1) // 2)).astype(np.uint8),
            scales.astype(half).astype(np.float32), biases.astype(half).astype(np.float32))


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n,d,length,nbags", LOOKUPS)
def test_embedding_bag_byte_and_4bit(path, num_threads, bits, mode, weighted, n, d, length,
                                     nbags, rng):
    ints, scales, biases = _table(rng, n, d, bits)
    indices, bounds = _bags(rng, max(n, 1), length, nbags)
    weights = rng.standard_normal(length).astype(np.float32) if weighted else \
        np.zeros(0, np.float32)
    out = np.full((nbags, d), np.nan, np.float32)
    if bits == 8:
        float_qparams.embedding_bag_byte(ints, scales, biases, indices, bounds, weights,
                                         mode, out)
        want = ref.embedding_bag_byte_ref(ints, scales, biases, indices, bounds, weights,
                                          mode)
    else:
        float_qparams.embedding_bag_4bit(ints, scales, biases, indices, bounds, weights,
                                         mode, out)
        want = ref.embedding_bag_4bit_ref(ints, scales, biases, indices, bounds, weights,
                                          mode, embedding_dim=d)
    assert_array_equal(out, want)
    empty = bounds[1:] == bounds[:-1]
    assert empty.any() and not out[empty].any()


def test_embedding_bag_4bit_ref_unpacks_low_nibble_first():
    packed = np.array([[0x21, 0x43, 0xF5]], np.uint8)
    rows = ref.embedding_bag_4bit_ref(packed, [1.0], [0.0], [0], [0, 1], embedding_dim=5)
    assert_array_equal(rows, [[1, 2, 3, 4, 5]])


@pytest.mark.parametrize("mode", [0, 2])
@pytest.mark.parametrize("weighted,fused", [(False, True), (True, True), (True, False)])
@pytest.mark.parametrize("n,d,length,nbags", LOOKUPS)
def test_embedding_bag_forward(path, num_threads, mode, weighted, fused, n, d, length,
                               nbags, rng):
    weight = rng.standard_normal((n, d)).astype(np.float32)
    if n > 3:
        weight[3] = weight[2]          # ties in max: the first position wins
    indices, bounds = _bags(rng, max(n, 1), length, nbags)
    weights = rng.standard_normal(length).astype(np.float32) if weighted else None
    out = np.full((nbags, d), np.nan, np.float32)
    winner = np.full((nbags, d) if mode == 2 else (0, 0), -1, np.int64)
    embedding.embedding_bag_forward(weight, indices, bounds, weights, mode, fused, out,
                                    winner)
    want = ref.embedding_bag_forward_ref(weight, indices, bounds, weights, mode, fused)
    if mode == 2:
        want, want_winner = want
        assert_array_equal(winner, want_winner)
    assert_array_equal(out, want)


def test_embedding_bag_forward_fma_rounds_once():
    # bag: 1 * 1, then fma(a, b, 1) whose float64 rounding is a float32 tie (see above)
    a = np.float32(1 + 2896 * 2.0 ** -23)
    b = np.float32((1 - 2895 * 2.0 ** -23) * 2.0 ** -24)
    weight = np.array([[1.0], [b]], np.float32)
    out, none = np.empty((1, 1), np.float32), np.empty((0, 0), np.int64)
    args = (weight, np.array([0, 1]), np.array([0, 2]), np.float32([1, a]), 0, True)
    embedding.embedding_bag_forward(*args, out, none)
    assert out[0, 0] == np.float32(1 + 2.0 ** -23)
    assert_array_equal(out, ref.embedding_bag_forward_ref(*args))


@pytest.mark.parametrize("seed", range(4))
def test_avg_pool_u8(seed):
    """Random windows, strides, paddings (up to half the window), ceil_mode's cut
    windows, both divisors and overrides (negative, large), 0 to 2 leading axes, 1 and 2
    threads: the kernel equals the equation to the last integer."""
    rng = np.random.default_rng(seed)
    for _ in range(60):
        lead = tuple(int(v) for v in rng.integers(1, 4, rng.integers(0, 3)))
        size = tuple(int(v) for v in rng.integers(1, 9, 3))
        k = tuple(int(rng.integers(1, min(4, n) + 1)) for n in size)
        s = tuple(int(v) for v in rng.integers(1, 4, 3))
        p = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
        ceil_mode = bool(rng.integers(0, 2))
        out = tuple(_pool_out(*a, 1, ceil_mode) for a in zip(size, k, s, p))
        q = rng.integers(0, 256, lead + size).astype(np.uint8)
        z, include_pad = int(rng.integers(0, 256)), bool(rng.integers(0, 2))
        override = None if rng.integers(0, 3) else int(rng.choice([-7, 3, 1000, -2**40]))
        got = int8.avg_pool_u8(q, k, s, p, out, z, include_pad, override,
                               num_threads=int(rng.integers(1, 3)))
        assert_array_equal(got, ref.avg_pool_u8_ref(q, k, s, p, out, z, include_pad,
                                                    override))
