"""The int8 GEMM kernels against the literal equations (docs/int8.rst, eqs. (3)-(8)).

Every path (the plain reference loop, AVX2 vpmaddubsw, its exact variant, AVX512-VNNI)
must give the same integers as a NumPy transcription of the equations, on awkward
shapes, at 1 and 2 threads, with the output pre-filled by a sentinel so that cells the
kernel forgot to write show up.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from qlearn._ext import _qgemm
from qlearn.kernels import int8 as int8_kernels
from qlearn.kernels import simd as simd_paths
from qlearn.reference import gemm_f32_ref, gemm_u8_ref

PATHS = [p.name.lower() for p in simd_paths.available()]
FAST = [p for p in PATHS if p != "generic"]
CODES = {"avx2": _qgemm.AVX2, "vnni": _qgemm.VNNI}
SENTINEL = 0xA5
EMPTY = np.empty(0, dtype=np.float32)


class Problem:
    def __init__(self, rng, m, k, n, a_zp=77, wzp_kind="zero", amax=255, amin=0,
                 wmin=-128, wmax=127):
        self.m, self.k, self.n = m, k, n
        self.a = rng.integers(amin, amax + 1, (m, k)).astype(np.uint8)
        self.w = rng.integers(wmin, wmax + 1, (n, k)).astype(np.int8)
        self.a_zp = a_zp
        if wzp_kind == "zero":
            self.w_zp = np.zeros(n, np.int32)
        elif wzp_kind == "tensor":
            self.w_zp = np.full(n, -3, np.int32)
        else:
            self.w_zp = rng.integers(-128, 128, n).astype(np.int32)
        self.bias_q = (rng.standard_normal(n) * 500).astype(np.float32)
        self.mult = rng.uniform(2e-5, 2e-3, n).astype(np.float32)
        kg = (k + 3) // 4
        self.rows = np.zeros((m, 4 * kg), np.uint8)
        self.rows[:, :k] = self.a
        self.packed = np.empty(_qgemm.packed_size(n, k), np.int8)
        _qgemm.pack_weight(self.w, self.packed)
        self.colsum = (self.w.sum(1, dtype=np.int64) - k * self.w_zp).astype(np.int32)

    def run(self, path, out_zp, lo, hi, num_threads):
        out = np.full((self.m, self.n), SENTINEL, np.uint8)
        if path == "generic":
            _qgemm.gemm_ref(self.a, self.w, self.w_zp, self.a_zp, self.bias_q, self.mult,
                            out_zp, lo, hi, out, num_threads)
            return out, path
        ran = _qgemm.gemm(CODES[path], self.rows, self.k, self.packed, self.n, self.colsum,
                          self.w_zp, bool(self.w_zp.any()), self.a_zp, self.bias_q,
                          self.mult, out_zp, lo, hi, EMPTY, EMPTY, False, out, None,
                          num_threads)
        return out, ran

    def expected(self, out_zp, lo, hi):
        return gemm_u8_ref(self.a, self.w, self.a_zp, self.w_zp, self.bias_q,
                                 self.mult, out_zp, lo, hi)


def assert_same(got, want, p):
    bad = np.argwhere(got != want)
    if len(bad):
        i, j = bad[0]
        pytest.fail(f"{len(bad)} cells differ for M={p.m} K={p.k} N={p.n}; first at "
                    f"({i}, {j}): expected {want[i, j]}, got {got[i, j]}")


# M, K, N: 1, odd, prime, multiples and non-multiples of the 4-deep groups, 16-wide
# panels and the 6x64 / 4x16 tiles, and one larger than every tile in every direction;
# K = 700 (175 groups) runs VNNI's full tiles with the weight prefetched
# (QGEMM_VNNI_PF_MIN_KG = 160) next to the other tiles.
# (4, 3, 16) and (8, 8, 33): full AVX2 row tiles with one group of depth (the assembly
# loop's odd tail alone) and with one pair of groups (its loop once, no tail)
SHAPES = [(1, 1, 1), (1, 3, 5), (2, 4, 16), (3, 7, 17), (4, 3, 16), (8, 8, 33),
          (5, 13, 31), (6, 64, 64), (7, 129, 65), (13, 31, 97), (1, 1024, 33),
          (37, 200, 130), (13, 700, 70)]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_gemm_requant_matches_equations(path, m, k, n, num_threads, rng):
    p = Problem(rng, m, k, n, wzp_kind="channel")
    got, _ = p.run(path, out_zp=100, lo=0, hi=255, num_threads=num_threads)
    assert_same(got, p.expected(100, 0, 255), p)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("a_zp", [0, 128, 255])
@pytest.mark.parametrize("out_zp", [0, 128, 255])
@pytest.mark.parametrize("wzp_kind", ["zero", "tensor"])
def test_gemm_zero_points(path, a_zp, out_zp, wzp_kind, rng):
    p = Problem(rng, 9, 37, 40, a_zp=a_zp, wzp_kind=wzp_kind)
    got, _ = p.run(path, out_zp=out_zp, lo=0, hi=255, num_threads=2)
    assert_same(got, p.expected(out_zp, 0, 255), p)


@pytest.mark.parametrize("path", PATHS)
def test_gemm_fused_relu_clamps_at_zero_point(path, rng):
    p = Problem(rng, 11, 50, 23)
    got, _ = p.run(path, out_zp=90, lo=90, hi=255, num_threads=1)
    assert got.min() >= 90
    assert_same(got, p.expected(90, 90, 255), p)


@pytest.mark.parametrize("path", FAST)
def test_gemm_saturation_worst_case(path):
    """All activations 255 and all weights -128: every vpmaddubsw pair sum would be
    -65280, which int16 saturates to -32768.  The AVX2 path must notice (max(A) > 127)
    and switch to its exact variant; VNNI is exact by construction."""
    rng = np.random.default_rng(0)
    p = Problem(rng, 5, 64, 20, a_zp=0, amin=255, amax=255, wmin=-128, wmax=-128)
    p.bias_q[:] = 0
    p.mult[:] = 1.0 / (64 * 255 * 128)      # maps the exact sum -64*255*128 to -1
    got, ran = p.run(path, out_zp=128, lo=0, hi=255, num_threads=1)
    assert_array_equal(got, np.full((5, 20), 127, np.uint8))
    if path == "avx2":
        assert ran == _qgemm.AVX2_EXACT
    # the exact int32 accumulator is what eq. (3) gives
    acc = (p.a.astype(np.int64)) @ p.w.astype(np.int64).T
    assert acc[0, 0] == -64 * 255 * 128


def test_vpmaddubsw_would_saturate_without_the_exact_variant():
    """Document the hazard: the int16 pair sum the plain AVX2 sequence forms."""
    pair = 255 * -128 + 255 * -128
    assert pair < np.iinfo(np.int16).min          # -65280 < -32768: saturates
    assert np.iinfo(np.int16).min <= 127 * -128 * 2   # 7-bit activations cannot


@pytest.mark.parametrize("amax", [127, 255])
def test_avx2_chooses_exact_variant_only_when_needed(amax, rng):
    if "avx2" not in PATHS:
        pytest.skip("no AVX2 on this CPU")
    p = Problem(rng, 4, 40, 16, amax=amax)
    p.a[0, 0] = amax
    p.rows[0, 0] = amax
    got, ran = p.run("avx2", 10, 0, 255, 1)
    assert ran == (_qgemm.AVX2 if amax == 127 else _qgemm.AVX2_EXACT)
    assert_same(got, p.expected(10, 0, 255), p)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("relu", [False, True])
def test_gemm_float_output(path, relu, num_threads, rng):
    p = Problem(rng, 7, 45, 35, wzp_kind="channel")
    fscale = rng.uniform(1e-5, 1e-3, p.n).astype(np.float32)
    fbias = rng.standard_normal(p.n).astype(np.float32)
    out = np.full((p.m, p.n), np.nan, np.float32)
    if path == "generic":
        _qgemm.gemm_ref_float(p.a, p.w, p.w_zp, p.a_zp, fscale, fbias, relu, out,
                              num_threads)
    else:
        _qgemm.gemm(CODES[path], p.rows, p.k, p.packed, p.n, p.colsum, p.w_zp, True,
                    p.a_zp, EMPTY, EMPTY, 0, 0, 255, fscale, fbias, relu, None, out,
                    num_threads)
    assert_array_equal(out, gemm_f32_ref(p.a, p.w, p.a_zp, p.w_zp, fscale, fbias, relu))


def test_paths_agree_on_a_large_problem(rng):
    p = Problem(rng, 70, 300, 200, wzp_kind="channel")
    outs = [p.run(path, 50, 0, 255, 2)[0] for path in PATHS]
    for o in outs[1:]:
        assert_array_equal(o, outs[0])
    assert_array_equal(outs[0], p.expected(50, 0, 255))


def test_pack_layout(rng):
    """eq. (5): panel p, group g, column c, depth t lives at byte (p Kg + g) 64 + 4c + t."""
    n, k = 20, 9
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    packed = np.empty(_qgemm.packed_size(n, k), np.int8)
    _qgemm.pack_weight(w, packed)
    kg = (k + 3) // 4
    assert packed.size == 2 * kg * 64
    for j in range(n):
        for kk in range(k):
            p, c, g, t = j // 16, j % 16, kk // 4, kk % 4
            assert packed[(p * kg + g) * 64 + 4 * c + t] == w[j, kk]
    # the padding (columns 20..31, depth 9..11) is zero
    view = packed.reshape(2, kg, 16, 4)
    assert not view[1, :, 4:, :].any() and not view[:, 2, :, 1:].any()


@pytest.mark.parametrize("n,k", [(1, 1), (5, 7), (20, 9), (1024, 1024)])
def test_empty_packed_is_cache_line_aligned(n, k, rng):
    """empty_packed: packed_size bytes from a 64-byte boundary, which pack_weight fills
    exactly as it fills an array NumPy placed."""
    packed = _qgemm.empty_packed(n, k)
    assert packed.dtype == np.int8 and packed.flags.c_contiguous and packed.flags.writeable
    assert packed.size == _qgemm.packed_size(n, k) and packed.ctypes.data % 64 == 0
    p = Problem(rng, 3, k, n)
    _qgemm.pack_weight(p.w, packed)
    assert_array_equal(packed, p.packed)


def test_unknown_or_unavailable_path_is_refused(rng):
    p = Problem(rng, 2, 8, 4)
    out = np.zeros((2, 4), np.uint8)
    with pytest.raises(ValueError, match="path"):
        _qgemm.gemm(_qgemm.GENERIC, p.rows, p.k, p.packed, p.n, p.colsum, p.w_zp, False,
                    0, EMPTY, p.mult, 0, 0, 255, EMPTY, EMPTY, False, out, None, 1)
    if simd_paths.Simd.VNNI not in simd_paths.cpu_paths():   # the kernel's own guard
        with pytest.raises(ValueError, match="VNNI"):
            _qgemm.check_path(_qgemm.VNNI)


@given(m=st.integers(1, 20), k=st.integers(1, 70), n=st.integers(1, 70),
       a_zp=st.integers(0, 255), out_zp=st.integers(0, 255),
       wzp=st.sampled_from(["zero", "tensor", "channel"]), amax=st.sampled_from([127, 255]),
       path=st.sampled_from(PATHS), threads=st.sampled_from([1, 2]),
       seed=st.integers(0, 2**32 - 1))
def test_gemm_property(m, k, n, a_zp, out_zp, wzp, amax, path, threads, seed):
    """Any shape, zero points, activation range, path and thread count: eq. (3) + (6)."""
    p = Problem(np.random.default_rng(seed), m, k, n, a_zp=a_zp, wzp_kind=wzp, amax=amax)
    got, _ = p.run(path, out_zp=out_zp, lo=0, hi=255, num_threads=threads)
    assert_same(got, p.expected(out_zp, 0, 255), p)


@pytest.mark.parametrize("path", FAST)
def test_peak_gops_runs(path):
    # The benchmark's peak measurement (its value is timing, never asserted on; only
    # that it runs the path's loop and reports a positive rate).
    assert _qgemm.peak_gops(CODES[path], 0.005) > 0
    assert int8_kernels.peak_gops(path, 0.005) > 0


def test_peak_gops_rejects_generic():
    with pytest.raises(ValueError, match="`simd`"):
        _qgemm.peak_gops(_qgemm.GENERIC, 0.005)
    with pytest.raises(ValueError, match="`path` must be an available SIMD path"):
        int8_kernels.peak_gops("generic", 0.005)


@pytest.mark.parametrize("path", FAST)
@pytest.mark.parametrize("ops", [1, 3071, 3072, 1e6 + 1])
def test_peak_run_does_at_least_the_work_asked(path, ops):
    # A benchmark times it against a kernel of `ops` operations: it must do no less,
    # and at most one step of the chains more (VNNI 24 x 64, AVX2 8 x 32 multiply-adds).
    step = 2 * (24 * 64 if path == "vnni" else 8 * 32)
    done = int8_kernels.peak_run(path, ops)
    assert ops <= done <= ops + step and done % step == 0
    assert _qgemm.peak_run(CODES[path], ops) == done


@pytest.mark.parametrize("ops", [0, -1, float("nan"), float("inf"), 2.0 ** 61])
def test_peak_run_rejects_bad_work(ops):
    path = "vnni" if "vnni" in FAST else "avx2"
    if path not in FAST:
        pytest.skip("no SIMD path on this CPU")
    with pytest.raises(ValueError, match="`ops` must be a positive number"):
        int8_kernels.peak_run(path, ops)


def test_peak_run_rejects_generic():
    with pytest.raises(ValueError, match="`simd`"):
        _qgemm.peak_run(_qgemm.GENERIC, 10)
    with pytest.raises(ValueError, match="`path` must be an available SIMD path"):
        int8_kernels.peak_run("generic", 10)


@pytest.mark.parametrize("path", FAST)
@pytest.mark.parametrize("lo,hi", [(0, 255), (90, 255), (3, 200)])
def test_gemm_extreme_multipliers_match_reference(path, lo, hi, rng):
    # Multipliers and biases that push (C + bias_q) mult past +-1e9, to +-inf and to
    # NaN (0 * inf): the SIMD epilogues' shortened clamp (QGEMM_CLAMP_NOTE in
    # qgemm/common.h) must give the integers of the reference loop, which clamps to
    # [-1e9, 1e9] before converting.
    p = Problem(rng, 13, 40, 37, a_zp=0, amin=0, amax=3, wmin=-2, wmax=2)
    p.a[0] = 0                                  # a zero row: C = 0, so 0 * inf = NaN
    p.rows[:, :p.k] = p.a
    specials = np.array([np.inf, -np.inf, 1e30, -1e30, 3e8, -3e8, 1.0, -1.0],
                        np.float32)
    p.mult = specials[np.arange(p.n) % len(specials)]
    p.bias_q = np.where(np.arange(p.n) % 3 == 0, 0.0, 5e8).astype(np.float32)
    got, _ = p.run(path, out_zp=7, lo=lo, hi=hi, num_threads=1)
    want, _ = p.run("generic", out_zp=7, lo=lo, hi=hi, num_threads=1)
    assert_same(got, want, p)
