"""The AVX2 4x16 tiles at their edges (``qgemm_u8s8_4x16_avx2.h``, its indirect form for
convolution, and the register epilogue of ``epilogue_avx2.h``) against the NumPy
transcription of the equations (``qlearn.reference``).

A tile is 4 output rows (pixels) by one 16-column panel; its epilogue requantizes a full
panel with uint8 output in registers and any other tile (a column tail, float output)
through memory.  The shapes below put every row tail (M mod 4), column tail (N mod 16),
depth per tap (cg / 4 groups, odd or even) and the several 96-pixel blocks of the
convolution driver on both forms, with outputs written into a wider sentinel-filled
array so that a cell written outside the tile shows.
"""
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from qlearn._ext import _qgemm
from qlearn.kernels import int8 as kint8
from qlearn.kernels import simd as simd_paths
from qlearn.reference import conv_gemm_ref, gemm_f32_ref, gemm_u8_ref

pytestmark = pytest.mark.skipif(simd_paths.Simd.AVX2 not in simd_paths.available(),
                                reason="this CPU lacks AVX2")
AVX2 = simd_paths.Simd.AVX2
SENTINEL = 0xA5
NO_BIAS = np.empty(0, np.float32)


def assert_same(got, want, what):
    bad = np.argwhere(got != want)
    if len(bad):
        pos = tuple(bad[0])
        pytest.fail(f"{len(bad)} cells differ ({what}); first at {pos}: expected "
                    f"{want[pos]}, got {got[pos]}")


def requant_constants(rng, n, spread):
    """bias_q and mult: ``spread`` "wide" makes many outputs clamp at both ends (and some
    products pass 1e9 and 2^31 before the clamp), "narrow" keeps most of them inside."""
    if spread == "wide":
        mult = np.exp(rng.uniform(np.log(1e-6), np.log(1e3), n)).astype(np.float32)
        bias = (rng.standard_normal(n) * 1e5).astype(np.float32)
    else:
        mult = rng.uniform(2e-4, 2e-3, n).astype(np.float32)
        bias = (rng.standard_normal(n) * 300).astype(np.float32)
    return bias, mult


def run_conv(rng, n, h, w, cg, og, *, groups=1, gi=0, a_zp=10, amax=127, w_zp=0,
             bias=True, spread="narrow", out_zp=64, lo=0, hi=255, k=3, stride=1, pad=1,
             threads=1):
    """One group of a convolution through kint8.conv_gemm on the AVX2 path, written into
    columns [3, 3 + og) of a sentinel-filled (M, og + 8) array; returns (got, want)."""
    c = cg * groups
    x = rng.integers(0, amax + 1, (n, c, h, w)).astype(np.uint8)
    wt = rng.integers(-128, 128, (og, cg, k, k)).astype(np.int8)
    wzp = np.asarray(w_zp, np.int32) * np.ones(og, np.int32)
    gw = kint8.GemmWeight(wt.transpose(0, 2, 3, 1).reshape(og, -1), wzp)
    bias_q, mult = requant_constants(rng, og, spread)
    if not bias:
        bias_q = NO_BIAS
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    big = np.full((n * ho * wo, og + 8), SENTINEL, np.uint8)
    xi = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    kint8.conv_gemm(gw, xi, gi * cg, cg, k, k, stride, stride, pad, pad, 1, 1, a_zp,
                    bias_q, mult, out_zp, lo, hi, big[:, 3:3 + og], AVX2, threads)
    assert (big[:, :3] == SENTINEL).all() and (big[:, 3 + og:] == SENTINEL).all(), \
        "cells outside the output written"
    got = big[:, 3:3 + og].reshape(n, ho, wo, og).transpose(0, 3, 1, 2)
    want = conv_gemm_ref(x[:, gi * cg:(gi + 1) * cg], wt, a_zp, wzp, bias_q, mult, out_zp,
                         lo, hi, (stride, stride), (pad, pad))
    return got, want


# M = n h w: 1, 6, 35 and 30 pixels (every row tail of the 4-row tile); og: a column
# tail only, one tail, exactly one and two panels, a panel and a tail; cg / 4 groups per
# tap: 1, 3, 5 and 16.
@pytest.mark.parametrize("n,h,w", [(1, 1, 1), (1, 2, 3), (1, 5, 7), (2, 3, 5)])
@pytest.mark.parametrize("cg", [4, 12, 20, 64])
@pytest.mark.parametrize("og", [1, 15, 16, 17, 32, 40])
def test_conv_tile_edges(rng, n, h, w, cg, og):
    got, want = run_conv(rng, n, h, w, cg, og)
    assert_same(got, want, f"N={n} H={h} W={w} cg={cg} og={og}")


@pytest.mark.parametrize("spread", ["narrow", "wide"])
@pytest.mark.parametrize("out_zp,lo,hi", [(0, 0, 255), (255, 0, 255), (64, 64, 255),
                                          (64, 0, 200), (7, 30, 31), (128, 128, 128)])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_register_epilogue_clamps(rng, spread, out_zp, lo, hi, bias):
    """Eq. (6) in registers: every Zo, fused-ReLU floor and ceiling, with and without
    bias, products far beyond the byte range on both sides."""
    got, want = run_conv(rng, 1, 5, 6, 16, 48, spread=spread, out_zp=out_zp, lo=lo, hi=hi,
                         bias=bias)
    assert_same(got, want, f"Zo={out_zp} lo={lo} hi={hi} {spread} bias={bias}")
    if spread == "wide" and lo < hi:
        assert (got == lo).any() and (got == hi).any()     # both clamps were reached


@pytest.mark.parametrize("a_zp,amax", [(10, 255), (200, 127), (255, 255)])
@pytest.mark.parametrize("og", [16, 21])
def test_conv_exact_variant(rng, a_zp, amax, og):
    """Activations or Za above 127 take eq. (7)'s exact variant, whose accumulators go
    through the same epilogue."""
    got, want = run_conv(rng, 1, 6, 7, 8, og, a_zp=a_zp, amax=amax)
    assert_same(got, want, f"Za={a_zp} amax={amax} og={og}")


@pytest.mark.parametrize("w_zp", [-3, 5])
@pytest.mark.parametrize("og", [16, 19])
def test_conv_weight_zero_point_row_sums(rng, w_zp, og):
    """Zw != 0: the epilogue subtracts Zw rowsum (eq. (4)), in registers and in memory."""
    got, want = run_conv(rng, 1, 5, 5, 12, og, w_zp=w_zp, amax=255, a_zp=131)
    assert_same(got, want, f"Zw={w_zp} og={og}")


@pytest.mark.parametrize("gi", [0, 1, 2])
def test_conv_group_channels(rng, gi):
    """A group reads channels [gi cg, (gi + 1) cg) of the channels-last input."""
    got, want = run_conv(rng, 1, 4, 6, 8, 20, groups=3, gi=gi)
    assert_same(got, want, f"group {gi}")


def test_conv_blocks_and_threads_identical(rng):
    """143 pixels (two 96-pixel blocks, the second with a row tail), stride 2 with
    padding on every side: the same integers at 1 and 2 threads."""
    outs = []
    for threads in (1, 2):
        got, want = run_conv(np.random.default_rng(7), 1, 21, 25, 16, 33, stride=2,
                             threads=threads)
        assert_same(got, want, f"{threads} threads")
        outs.append(got)
    assert_array_equal(outs[0], outs[1])
    got, want = run_conv(rng, 1, 11, 13, 16, 33, threads=2)
    assert_same(got, want, "stride 1, 2 threads")


# GEMM: every row tail, full panels and tails, extreme requantization, Zw != 0.
@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 9])
@pytest.mark.parametrize("n", [16, 31, 48])
@pytest.mark.parametrize("k", [4, 12, 37])
def test_gemm_tile_edges(rng, m, n, k):
    a = rng.integers(0, 256, (m, k)).astype(np.uint8)
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    for w_zp, a_zp, (out_zp, lo, hi), spread in [(0, 0, (0, 0, 255), "narrow"),
                                                 (-7, 255, (90, 90, 255), "wide"),
                                                 (3, 77, (5, 3, 200), "wide")]:
        wzp = np.full(n, w_zp, np.int32)
        gw = kint8.GemmWeight(w, wzp)
        bias_q, mult = requant_constants(rng, n, spread)
        big = np.full((m, n + 5), SENTINEL, np.uint8)
        kint8.gemm_u8(gw, kint8.as_rows(a, k), a_zp, bias_q, mult, out_zp, lo, hi,
                      big[:, 2:2 + n], AVX2, 1)
        assert (big[:, :2] == SENTINEL).all() and (big[:, 2 + n:] == SENTINEL).all()
        want = gemm_u8_ref(a, w, a_zp, wzp, bias_q, mult, out_zp, lo, hi)
        assert_same(big[:, 2:2 + n], want, f"M={m} K={k} N={n} Zw={w_zp} Za={a_zp}")


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_conv_exact_variant_found_anywhere(where):
    """One activation of 255 among 127s, next to a -128 weight, saturates vpmaddubsw's
    int16 pair sum (255 (-128) + 127 (-128) < -2^15): the scan for values > 127 (one
    run over the whole channels-last input, 5 x 7 x 12 = 420 bytes, not a multiple of
    its 32-byte step) must find it wherever it is, so that the exact variant runs."""
    x = np.full((1, 12, 5, 7), 127, np.uint8)
    pos = {"first": (0, 0, 0, 0), "middle": (0, 5, 2, 3), "last": (0, 11, 4, 6)}[where]
    x[pos] = 255
    wt = np.full((16, 12, 3, 3), -128, np.int8)
    wzp = np.zeros(16, np.int32)
    gw = kint8.GemmWeight(wt.transpose(0, 2, 3, 1).reshape(16, -1), wzp)
    mult = np.full(16, 1e-4, np.float32)
    out = np.full((35, 16), SENTINEL, np.uint8)
    kint8.conv_gemm(gw, np.ascontiguousarray(x.transpose(0, 2, 3, 1)), 0, 12, 3, 3, 1, 1,
                    1, 1, 1, 1, 0, NO_BIAS, mult, 255, 0, 255, out, AVX2, 1)
    want = conv_gemm_ref(x, wt, 0, wzp, NO_BIAS, mult, 255, 0, 255, (1, 1), (1, 1))
    got = out.reshape(1, 5, 7, 16).transpose(0, 3, 1, 2)
    assert want.min() > 0 and want.max() < 255                # no clamp hides an error
    assert_same(got, want, f"255 at {pos}")


# The one-row tile (qgemm_u8s8_1x64_avx2: a GEMM with M = 1 reads up to four panels at
# once): N across 2, 3 and 4 panels, with and without a column tail, more than one
# call of 4 panels, and the tails of 1 panel left after them (N = 65, 80).
ONE_ROW_N = [17, 32, 47, 48, 63, 64, 65, 80, 129, 200]


@pytest.mark.parametrize("n", ONE_ROW_N)
@pytest.mark.parametrize("k,amax,a_zp,w_zp", [(4, 127, 10, 0), (37, 255, 131, 0),
                                              (256, 127, 0, -5), (100, 255, 255, 7)])
def test_one_row_tile_requant(rng, n, k, amax, a_zp, w_zp, num_threads):
    """M = 1, uint8 output: both variants (amax 255 takes eq. (7)'s), Zw != 0, wide
    multipliers that clamp at both ends, into a sentinel-filled wider array."""
    a = rng.integers(0, amax + 1, (1, k)).astype(np.uint8)
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    wzp = np.full(n, w_zp, np.int32)
    gw = kint8.GemmWeight(w, wzp)
    for (out_zp, lo, hi), spread in [((0, 0, 255), "narrow"), ((90, 90, 255), "wide"),
                                     ((5, 3, 200), "wide")]:
        bias_q, mult = requant_constants(rng, n, spread)
        big = np.full((1, n + 5), SENTINEL, np.uint8)
        kint8.gemm_u8(gw, kint8.as_rows(a, k), a_zp, bias_q, mult, out_zp, lo, hi,
                      big[:, 2:2 + n], AVX2, num_threads)
        assert (big[:, :2] == SENTINEL).all() and (big[:, 2 + n:] == SENTINEL).all()
        want = gemm_u8_ref(a, w, a_zp, wzp, bias_q, mult, out_zp, lo, hi)
        assert_same(big[:, 2:2 + n], want, f"K={k} N={n} Za={a_zp} amax={amax} "
                                           f"Zo={out_zp} [{lo}, {hi}]")


@pytest.mark.parametrize("n", ONE_ROW_N)
@pytest.mark.parametrize("amax", [127, 255])
@pytest.mark.parametrize("relu", [False, True])
def test_one_row_tile_float(rng, n, amax, relu, num_threads):
    """M = 1, float output (dynamic quantization, eq. (8)): every panel goes through the
    memory epilogue; the NaN sentinel around the output stays."""
    k = 45
    a = rng.integers(0, amax + 1, (1, k)).astype(np.uint8)
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    wzp = rng.integers(-3, 4, n).astype(np.int32)
    gw = kint8.GemmWeight(w, wzp)
    fscale = rng.uniform(1e-5, 1e-3, n).astype(np.float32)
    fbias = rng.standard_normal(n).astype(np.float32)
    big = np.full((1, n + 5), np.nan, np.float32)
    _qgemm.gemm(AVX2, kint8.as_rows(a, k), k, gw.packed, n, gw.colsum, wzp,
                bool(wzp.any()), 77, NO_BIAS, NO_BIAS, 0, 0, 255, fscale, fbias, relu,
                None, big[:, 2:2 + n], num_threads)
    assert np.isnan(big[:, :2]).all() and np.isnan(big[:, 2 + n:]).all()
    assert_array_equal(big[:, 2:2 + n], gemm_f32_ref(a, w, 77, wzp, fscale, fbias, relu))


@pytest.mark.parametrize("amax", [127, 255])
def test_one_row_tile_threads_identical(rng, amax):
    """M = 1 large enough to be split between threads (by blocks of four panels, the
    last with a column tail): the same integers at 1 and 2 threads."""
    k, n = 600, 1000
    a = rng.integers(0, amax + 1, (1, k)).astype(np.uint8)
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    wzp = np.zeros(n, np.int32)
    gw = kint8.GemmWeight(w, wzp)
    bias_q, mult = requant_constants(rng, n, "narrow")
    want = gemm_u8_ref(a, w, 3, wzp, bias_q, mult, 64, 0, 255)
    for threads in (1, 2):
        out = np.full((1, n), SENTINEL, np.uint8)
        kint8.gemm_u8(gw, kint8.as_rows(a, k), 3, bias_q, mult, 64, 0, 255, out, AVX2,
                      threads)
        assert_same(out, want, f"{threads} threads amax={amax}")
