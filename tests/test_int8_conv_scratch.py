"""The fused convolution on an NCHW input (bands converted in cache) and its scratch.

An NCHW input is not copied to channels-last first: each work unit (a band of output
rows of one image) converts the input rows it reads into its thread's buffer.  Here
``kint8.conv_gemm(..., nchw=True)`` is compared, on a sentinel-filled output, with the
exact NumPy reference (``qlearn.reference.conv_gemm_ref``) and with the same call on the
channels-last copy:

- bands of one output row up to whole images (``band_bytes``), strides, padding
  wider than the window's reach (bands whose windows lie wholly in the padding),
  dilation, a group's channels in the middle of the input, channel counts that take the
  indirect kernel (whole 4-byte groups) or im2col (the others: 3, 6), few channels
  (converted row by row) and many (16-channel transposes with a remainder);
- 1 and 2 threads on every SIMD path, AVX2's exact variant (inputs above 127), weight
  zero points (row sums per block);
- the depthwise kernel transposing each NCHW input row into its band's padded
  buffer (channel counts below 16, 16 + 4, 128; row widths with a tail);
- the scratch blocks are kept between calls (no new allocation, hence no page faults,
  once warm) and concurrent calls from several Python threads each get their own.
"""
import threading

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from test_int8_ops import activations, conv_reference, weights

import qlearn as ql
from qlearn import reference
from qlearn.kernels import int8 as kint8
from qlearn.kernels import simd as simd_paths
from qlearn.nn.quantized import packed_params as _packed
from qlearn.reference import conv_gemm_ref

SIMD = [p for p in simd_paths.available() if p != simd_paths.Simd.GENERIC]
SENTINEL = 0xA5

pytestmark = pytest.mark.skipif(not SIMD, reason="the fused convolution needs AVX2")


def _run(rng, x, og, gi, cg, k, stride, pad, dil, path, threads, band_bytes, w_zp=0,
         a_zp=10):
    """Group gi of a convolution of the NCHW uint8 x through conv_gemm (NCHW input and
    channels-last input), into columns [2, 2 + og) of sentinel-filled arrays."""
    n, c, h, w = x.shape
    wt = rng.integers(-128, 128, (og, cg, k, k)).astype(np.int8)
    wzp = np.full(og, w_zp, np.int32)
    gw = kint8.GemmWeight(wt.transpose(0, 2, 3, 1).reshape(og, -1), wzp)
    bias_q = (rng.standard_normal(og) * 300).astype(np.float32)
    mult = rng.uniform(2e-4, 2e-3, og).astype(np.float32)
    ho = (h + 2 * pad - dil * (k - 1) - 1) // stride + 1
    wo = (w + 2 * pad - dil * (k - 1) - 1) // stride + 1
    outs = []
    for xi, nchw in ((x, True), (np.ascontiguousarray(x.transpose(0, 2, 3, 1)), False)):
        big = np.full((n * ho * wo, og + 5), SENTINEL, np.uint8)
        kint8.conv_gemm(gw, xi, gi * cg, cg, k, k, stride, stride, pad, pad, dil, dil,
                        a_zp, bias_q, mult, 64, 0, 255, big[:, 2:2 + og], path, threads,
                        nchw=nchw, band_bytes=band_bytes)
        assert (big[:, :2] == SENTINEL).all() and (big[:, 2 + og:] == SENTINEL).all(), \
            "cells outside the output written"
        outs.append(big[:, 2:2 + og].reshape(n, ho, wo, og).transpose(0, 3, 1, 2))
    want = conv_gemm_ref(x[:, gi * cg:(gi + 1) * cg], wt, a_zp, wzp, bias_q, mult, 64, 0,
                         255, (stride, stride), (pad, pad), (dil, dil))
    return outs[0], outs[1], want


# n, c, h, w, og, groups (the group run: the last), k, stride, pad, dilation
SHAPES = [
    (1, 16, 9, 11, 20, 1, 3, 1, 1, 1),
    (2, 32, 7, 13, 70, 1, 3, 2, 1, 1),       # stride 2, two images
    (1, 8, 6, 5, 9, 1, 3, 1, 4, 1),          # padding beyond the window's reach
    (2, 12, 8, 9, 16, 2, 3, 1, 1, 1),        # channels [12, 24) of 24
    (1, 20, 10, 7, 17, 1, 3, 1, 2, 2),       # dilation 2; 16 + 4 channels
    (1, 64, 12, 12, 64, 1, 3, 1, 1, 1),      # 16-channel transposes, wide enough
    (1, 3, 17, 19, 16, 1, 7, 2, 3, 1),       # an image's 3 channels: im2col
    (2, 6, 5, 8, 10, 1, 3, 1, 1, 1),         # 6 channels: im2col
    (1, 4, 1, 1, 5, 1, 1, 1, 0, 1),          # one pixel, 1x1
    (8, 16, 10, 10, 16, 1, 3, 1, 1, 1),      # a batch: whole-image bands
    # rows of 16 pixels or more, 16 channels or more: each input row is transposed
    # straight into its padded row of the band
    (1, 16, 5, 18, 24, 1, 3, 1, 1, 1),
    (2, 32, 4, 21, 40, 1, 3, 2, 2, 1),       # stride 2, padding 2
    (1, 32, 5, 16, 16, 2, 3, 1, 1, 1),       # channels [16, 32) of 32
    (1, 16, 3, 20, 8, 1, 3, 1, 4, 1),        # padding beyond the window's reach
    (1, 16, 9, 17, 16, 1, 5, 1, 2, 2),       # 5x5, dilation 2
    # ... 16 planes at a time down the rows, then the planes left over
    (1, 20, 5, 18, 12, 1, 3, 1, 1, 1),       # 16 + 4 channels
    (1, 40, 4, 17, 8, 2, 3, 1, 1, 1),        # channels [20, 40) of 40: 16 + 4
    (2, 48, 3, 16, 16, 1, 3, 1, 1, 1),       # three groups of 16
]


@pytest.mark.parametrize("cfg", SHAPES, ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("band_bytes", [1, 300, 0])
@pytest.mark.parametrize("path", SIMD, ids=lambda p: p.name.lower())
def test_nchw_bands_match_reference(rng, num_threads, cfg, band_bytes, path):
    n, c, h, w, og, g, k, s, p, d = cfg
    x = rng.integers(0, 128, (n, c, h, w)).astype(np.uint8)
    cg = c // g
    got, nhwc, want = _run(rng, x, og, g - 1, cg, k, s, p, d, path, num_threads,
                           band_bytes)
    assert_array_equal(got, want)
    assert_array_equal(nhwc, want)


@pytest.mark.parametrize("band_bytes", [1, 0])
@pytest.mark.parametrize("w_zp", [0, 3])
@pytest.mark.parametrize("path", SIMD, ids=lambda p: p.name.lower())
def test_nchw_bands_full_range_and_weight_zero_points(rng, num_threads, band_bytes, w_zp,
                                                      path):
    """Activations up to 255 (AVX2 takes its exact variant) and Zw != 0 (the row sums
    of each block, over the band's converted rows)."""
    x = rng.integers(0, 256, (2, 24, 9, 10)).astype(np.uint8)
    got, nhwc, want = _run(rng, x, 33, 0, 24, 3, 1, 1, 1, path, num_threads, band_bytes,
                           w_zp=w_zp, a_zp=200)
    assert_array_equal(got, want)
    assert_array_equal(nhwc, want)


def test_conv2d_apply_nchw_and_channels_last_inputs(rng, num_threads):
    """The module-level call on an NCHW input and on the same values channels-last
    (a convolution's output, read in place) give the reference's integers."""
    x = activations(rng, (3, 16, 11, 9), qmax=255, zero_point=129)
    w = weights(rng, (24, 16, 3, 3), True, zero_point=2)
    b = rng.standard_normal(24).astype(np.float32)
    pc = _packed.PackedConvWeight(w, b, 1, 1, 1, 1)
    want = conv_reference(x, w, b, 1, 1, 1, 1, 0.4, 6)
    assert_array_equal(_packed.conv2d_apply(x, pc, 0.4, 6).int_repr(), want)
    q = np.ascontiguousarray(x.int_repr().transpose(0, 2, 3, 1))
    xl = ql.QTensor(q.transpose(0, 3, 1, 2), ql.quint8, ql.per_tensor_affine,
                    x.q_scale(), x.q_zero_point())
    assert_array_equal(_packed.conv2d_apply(xl, pc, 0.4, 6).int_repr(), want)


def test_output_is_channels_last_and_chains_in_place(rng):
    """The output's integers are channels-last (as PyTorch's); the next convolution's
    channels-last view of them is the same memory, not a copy."""
    x = activations(rng, (2, 8, 6, 7))
    w = weights(rng, (8, 8, 3, 3), False)
    pc = _packed.PackedConvWeight(w, None, 1, 1, 1, 1)
    y = _packed.conv2d_apply(x, pc, 0.3, 5)
    nhwc = y._int.transpose(0, 2, 3, 1)
    assert nhwc.flags.c_contiguous
    assert np.shares_memory(kint8.channels_last(y._int), y._int)


def test_scratch_is_kept_and_reused(rng):
    """After a first call the scratch block is kept; the same call again takes it back
    (the same number and sizes of kept blocks), it is not allocated anew."""
    x = rng.integers(0, 128, (2, 32, 20, 20)).astype(np.uint8)
    _run(rng, x, 32, 0, 32, 3, 1, 1, 1, SIMD[-1], 1, 0)
    kept = kint8._conv_scratch_kept()
    assert kept and all(b >= 4096 for b in kept)
    _run(rng, x, 32, 0, 32, 3, 1, 1, 1, SIMD[-1], 1, 0)
    assert kint8._conv_scratch_kept() == kept


def test_concurrent_python_threads_get_their_own_scratch(rng):
    """Calls from several Python threads at once (each releases the GIL in the kernel)
    each get their own scratch: every result is the reference's."""
    x = rng.integers(0, 128, (2, 16, 24, 24)).astype(np.uint8)
    w = weights(rng, (16, 16, 3, 3), False)
    pc = _packed.PackedConvWeight(w, None, 1, 1, 1, 1)
    xq = ql.QTensor(x, ql.quint8, ql.per_tensor_affine, 0.1, 3)
    want = conv_reference(xq, w, None, 1, 1, 1, 1, 0.2, 7)
    errors = []

    def work():
        try:
            for _ in range(20):
                got = _packed.conv2d_apply(xq, pc, 0.2, 7).int_repr()
                if not np.array_equal(got, want):
                    errors.append("mismatch")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# n, c, h, w, stride, pad, dilation: channel counts below 16 (rows transposed byte by
# byte), 16 + 4, 128; widths below 16, with a tail (56 = 3 x 16 + 8) and exact
@pytest.mark.parametrize("cfg", [(1, 5, 6, 7, 1, 1, 1), (2, 20, 9, 17, 2, 0, 1),
                                 (1, 16, 5, 16, 1, 2, 2), (1, 128, 6, 56, 1, 1, 1),
                                 (2, 32, 3, 1, 1, 1, 1)],
                         ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("path", SIMD, ids=lambda p: p.name.lower())
def test_depthwise_nchw_rows_match_reference(rng, num_threads, cfg, path):
    """The depthwise kernel transposing each NCHW input row into its band's padded
    buffer gives the reference's integers, as on the channels-last copy."""
    n, c, h, w, s, p, d = cfg
    x = rng.integers(0, 256, (n, c, h, w)).astype(np.uint8)
    wt = rng.integers(-128, 128, (c, 1, 3, 3)).astype(np.int8)
    w_zp = rng.integers(-5, 5, c).astype(np.int32)
    bias_q = (rng.standard_normal(c) * 300).astype(np.float32)
    mult = rng.uniform(1e-4, 1e-3, c).astype(np.float32)
    want = reference.depthwise_ref(x, wt, 200, w_zp, bias_q, mult, 17, 0, 255, (s, s),
                                   (p, p), (d, d))
    taps = np.ascontiguousarray((wt.reshape(c, 9).astype(np.int32) - w_zp[:, None]).T)
    for xi, nchw in ((x, True), (np.ascontiguousarray(x.transpose(0, 2, 3, 1)), False)):
        out = np.full((n,) + want.shape[2:] + (c,), SENTINEL, np.uint8)
        kint8.depthwise(xi, taps, (3, 3), (s, s), (p, p), (d, d), 200, bias_q, mult, 17,
                        0, 255, out, path, num_threads, nchw=nchw)
        assert_array_equal(out.transpose(0, 3, 1, 2), want)
