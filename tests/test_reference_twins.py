"""Every kernel entry of ``qlearn.kernels`` has a NumPy twin ``<kernel>_ref`` in
``qlearn.reference``, and the kernel equals it on every SIMD path (the twins the other
kernel tests do not already use are checked here)."""
import inspect

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from qlearn import reference as ref
from qlearn.kernels import fake_quant, float_conv, int8, observer, quantize, quantizers
from qlearn.kernels import simd as simd_paths

WRAPPERS = [quantize, fake_quant, observer, quantizers, float_conv, int8]
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
    "int8.peak_gops": "a timing of instruction chains, not an operation on data",
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


@pytest.mark.parametrize("stride,pad,dil", [(1, 1, 1), (2, 0, 1), (1, 2, 2)])
def test_depthwise3x3(path, stride, pad, dil, rng):
    c = 21
    x = _u8(rng, (2, c, 9, 11))
    w = rng.integers(-128, 128, (c, 1, 3, 3)).astype(np.int8)
    w_zp = rng.integers(-5, 5, c).astype(np.int32)
    bias_q = (rng.standard_normal(c) * 300).astype(np.float32)
    mult = rng.uniform(1e-4, 1e-3, c).astype(np.float32)
    want = ref.depthwise3x3_ref(x, w, 200, w_zp, bias_q, mult, 17, 0, 255, stride, pad, dil)
    taps = np.ascontiguousarray((w.reshape(c, 9).astype(np.int32) - w_zp[:, None]).T)
    out = np.full((2,) + want.shape[2:] + (c,), 0xA5, np.uint8)
    xi = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    int8.depthwise3x3(xi, taps, stride, pad, dil, 200, bias_q, mult, 17, 0, 255, out,
                      simd_paths.active())
    assert_array_equal(out.transpose(0, 3, 1, 2), want)


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
