"""Edges of the fused int8 convolution's fast paths, against the exact NumPy reference.

- The indirect kernel's 3x3 (dilation 1) pointer setup, with any stride and padding:
  tiles that straddle output rows and images, padding on every side, a last tile
  shorter than 6 (or 4) rows, channel counts that are not a multiple of 16 or 64, and
  VNNI's strided tiles (6 interior pixels of one output row, without Zw).
- The VNNI tile's row-by-row uint8 epilogue: output columns not a multiple of 16 or 64
  (masked bytes), fused ReLU (lo = Zo), weight zero points (row sums), Za > 127.
- conv2d_apply on an NCHW batch (converted band by band inside the fused kernel; the
  bands' own edges are in tests/test_int8_conv_scratch.py) and on a channels-last one.

Outputs are compared with ``assert_array_equal`` (full 8-bit activations, so only the
exact reference applies) at 1 and 2 threads on every SIMD path.
"""
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from test_int8_ops import activations, conv_reference, weights

import qlearn as ql
import qlearn.nn.quantized.functional as qF
from qlearn.kernels import simd as simd_paths
from qlearn.nn.quantized import packed_params as _packed

PATHS = [p.name.lower() for p in simd_paths.available()]


@pytest.fixture(params=PATHS)
def path(request):
    with simd_paths.use(request.param):
        yield request.param


# N, C, H, W, O, stride, pad, groups: 3x3 windows, dilation 1 (the specialized setup)
SHAPES = [
    (1, 4, 1, 1, 1, 1, 1, 1),          # one pixel, all padding but the centre
    (1, 8, 3, 2, 16, 1, 1, 1),         # 6 pixels: one tile; W < 3
    (2, 12, 5, 7, 20, 1, 1, 1),        # tiles straddle rows and images; O % 16 != 0
    (1, 16, 9, 11, 64, 2, 1, 1),       # stride 2
    (1, 20, 8, 9, 65, 1, 0, 1),        # no padding; O = 64 + 1 (a second, 1-column tile)
    (1, 8, 6, 7, 72, 2, 2, 1),         # padding wider than the stride
    (3, 24, 7, 5, 18, 1, 1, 2),        # groups of 12 channels (still whole 4-byte groups)
    (1, 6, 7, 7, 9, 1, 1, 1),          # 6 channels: im2col path, not the indirect one
    # wide rows: most tiles are 6 interior pixels of one row (VNNI's strided kernel),
    # the others straddle a row end or touch the padding
    (1, 8, 4, 29, 24, 1, 1, 1),
    (2, 12, 5, 31, 70, 2, 1, 1),
    (1, 4, 3, 40, 16, 3, 0, 1),
    (1, 16, 6, 23, 33, 1, 2, 1),
    # 72 channels: 162 groups per 64-column block, VNNI's prefetched full tiles (strided
    # and one pointer per tap) next to the other tiles
    (1, 72, 4, 14, 80, 1, 1, 1),
]


@pytest.mark.parametrize("cfg", SHAPES, ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("w_zp", [0, -3])
def test_conv3x3_paths_exact(path, num_threads, rng, cfg, relu, w_zp):
    n, c, h, w_, o, s, p, g = cfg
    x = activations(rng, (n, c, h, w_), qmax=255, zero_point=200)
    w = weights(rng, (o, c // g, 3, 3), True, zero_point=w_zp)
    b = rng.standard_normal(o).astype(np.float32) * 50
    pc = _packed.PackedConvWeight(w, b, s, p, 1, g)
    got = _packed.conv2d_apply(x, pc, 0.7, 11, relu=relu).int_repr()
    want = conv_reference(x, w, b, s, p, 1, g, 0.7, 11)
    if relu:
        want = np.maximum(want, 11)
    assert_array_equal(got, want)



# N, C, H, W, O, kernel, stride, pad, dilation: other windows of the indirect kernel (the
# general pointer setup).  With dilation 1 a kernel row's taps are one run of kw C
# bytes (the merged runs of qconv/indirect.h) in the tiles whose windows are inside the
# image; dilation 2 keeps one pointer per tap.
WINDOWS = [
    (1, 8, 9, 14, 20, 5, 1, 2, 1),     # 5x5: merged runs of 40 bytes, padding of 2
    (2, 12, 6, 13, 17, 2, 2, 0, 1),    # 2x2 stride 2, no padding: every tile merged
    (1, 16, 5, 8, 64, 1, 1, 1, 1),     # 1x1 with padding: the indirect kernel, kw = 1
    (1, 8, 9, 16, 24, 3, 1, 2, 2),     # dilation 2: one pointer per tap
    (1, 4, 11, 20, 7, 4, 3, 1, 1),     # even kernel, stride 3
]


@pytest.mark.parametrize("cfg", WINDOWS, ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("w_zp", [0, -3])
def test_conv_windows_exact(path, num_threads, rng, cfg, w_zp):
    n, c, h, w_, o, k, s, p, d = cfg
    x = activations(rng, (n, c, h, w_), qmax=255, zero_point=200)
    w = weights(rng, (o, c, k, k), True, zero_point=w_zp)
    b = rng.standard_normal(o).astype(np.float32) * 50
    pc = _packed.PackedConvWeight(w, b, s, p, d, 1)
    got = _packed.conv2d_apply(x, pc, 0.7, 11).int_repr()
    assert_array_equal(got, conv_reference(x, w, b, s, p, d, 1, 0.7, 11))

@pytest.mark.parametrize("o", [1, 15, 17, 47, 63, 64, 100, 129])
def test_vnni_epilogue_partial_columns(path, rng, o):
    """Output channel counts around the 16-column panels and 64-column tiles: every
    valid byte written, none past the row (the output is compared whole)."""
    x = activations(rng, (1, 16, 4, 13), qmax=255, zero_point=3)
    w = weights(rng, (o, 16, 3, 3), False)
    b = rng.standard_normal(o).astype(np.float32) * 20
    got = qF.conv2d(x, w, b, 1, 1, 1, 1, scale=0.9, zero_point=128).int_repr()
    assert_array_equal(got, conv_reference(x, w, b, 1, 1, 1, 1, 0.9, 128))


@pytest.mark.parametrize("groups", [1, 2])
def test_nchw_batch_matches_reference(path, num_threads, rng, groups):
    """A 7-image NCHW batch, converted band by band inside the fused kernel (at 2
    threads whole, by a job of its own), gives the reference's result."""
    x = activations(rng, (7, 8, 9, 10), qmax=255, zero_point=129)
    w = weights(rng, (12, 8 // groups, 3, 3), True, zero_point=2)
    b = rng.standard_normal(12).astype(np.float32)
    pc = _packed.PackedConvWeight(w, b, 1, 1, 1, groups)
    got = _packed.conv2d_apply(x, pc, 0.4, 6).int_repr()
    assert_array_equal(got, conv_reference(x, w, b, 1, 1, 1, groups, 0.4, 6))


def test_channels_last_input_is_read_in_place(rng):
    """A channels-last input (a conv's own output) is read in place, whole."""
    q = np.ascontiguousarray(rng.integers(0, 256, (3, 5, 6, 8)).astype(np.uint8))
    x = ql.QTensor(q.transpose(0, 3, 1, 2), ql.quint8, ql.per_tensor_affine, 0.1, 4)
    w = weights(rng, (4, 8, 3, 3), False)
    got = qF.conv2d(x, w, None, 1, 1, 1, 1, scale=0.3, zero_point=1).int_repr()
    assert_array_equal(got, conv_reference(x, w, None, 1, 1, 1, 1, 0.3, 1))


@pytest.mark.parametrize("cg, k, stride, pad, dil", [
    (1, 3, 1, 1, 1), (2, 5, 2, 2, 1), (3, 7, 2, 3, 1), (5, 3, 1, 2, 2), (3, 1, 1, 0, 1),
    (17, 3, 2, 1, 1)])
@pytest.mark.parametrize("extra", [0, 1, 3, 9])
def test_im2col_short_runs_and_depth_padding(cg, k, stride, pad, dil, extra):
    """The patch rows of few-channel inputs (the stem's 3): taps and padding runs of a
    few bytes, written without libc calls, and ``extra`` bytes of depth padding past
    kh kw cg, which must be 0 (the padded weight is 0 there, Za at a padding tap)."""
    from qlearn import reference
    from qlearn.kernels import int8 as k8
    rng = np.random.default_rng(cg * 100 + k * 10 + extra)
    C, za = cg + 2, 77
    x = rng.integers(0, 256, (2, 9, 8, C), dtype=np.uint8)
    c0 = 1
    # the float reference pads with 0 and orders depth (c, ky, kx): shift by Za, reorder
    nchw = x[..., c0:c0 + cg].transpose(0, 3, 1, 2).astype(np.int32) - za
    cols = reference.im2col_ref(nchw, k, k, (stride,) * 2, (pad,) * 2, (dil,) * 2) + za
    patches = cols.reshape(cg, k * k, -1).transpose(2, 1, 0).reshape(-1, k * k * cg)
    want = np.zeros((patches.shape[0], k * k * cg + extra), np.uint8)
    want[:, :k * k * cg] = patches
    for threads in (1, 2):
        out = np.full_like(want, 0xAB)          # sentinel: every byte must be written
        k8.im2col(x, c0, cg, k, k, stride, stride, pad, pad, dil, dil, za, out, threads)
        np.testing.assert_array_equal(out, want)
