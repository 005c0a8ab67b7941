# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""Int8 convolution: im2col (then :func:`qlearn._ext._qgemm.gemm`) and depthwise 3x3.

Called only by :mod:`qlearn.kernels.int8` (the arguments are checked above it).
The kernels read activations channels-last, ``(N, H, W, C)`` C-contiguous: a
convolution's own output already is (as PyTorch's are); an NCHW input is converted once
per call (:func:`to_channels_last`, :func:`small_c_to_channels_last`).  The C kernels
are the headers of ``pyx/include/qconv/`` and ``pyx/include/qgemm/``.

Equation numbers refer to ``docs/int8.rst``.
"""
import numpy as np

from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.string cimport memcpy, memset

from _parallel cimport pool_run_t
from _typedefs cimport float32_t, int8_t, int16_t, int32_t, intp_t, uint8_t

from _qgemm_decl cimport (QGEMM_AVX2, QGEMM_AVX2_EXACT, QGEMM_NR, QGEMM_VNNI,
                          qgemm_epilogue, qgemm_epilogue_u8, qgemm_tile_mr, qgemm_tile_np,
                          qlearn_cpu_has_avx2, qlearn_cpu_has_avx512vnni,
                          qlearn_qgemm_rowsum_max, qlearn_qgemm_tile)

cdef extern from "qconv/dispatch.h":
    void qlearn_qconv_copy(uint8_t *d, const uint8_t *s, long n) noexcept nogil
    void qlearn_qconv_im2col_rows(const uint8_t *x, long H, long W, long C, long Ho,
                                  long Wo, long c0, long cg, long lda, long kh, long kw,
                                  long sh, long sw, long ph, long pw, long dh, long dw,
                                  uint8_t a_zp, long r0, long r1,
                                  uint8_t *dst) noexcept nogil
    void qlearn_qconv_nchw_row_to_nhwc(const uint8_t *src, long C, long HW, long W,
                                       uint8_t *dst) noexcept nogil
    void qlearn_qconv_nchw_to_nhwc_rows(const uint8_t *src, long C, long HW, long p0,
                                        long p1, uint8_t *dst) noexcept nogil
    void qlearn_qconv_dw_pack(const int32_t *wz, long C, int16_t *out) noexcept nogil
    void qlearn_qconv_indirect_block(
            int path, const uint8_t *x, long H, long W, long C, long Ho, long Wo,
            long c0, long cg, long kh, long kw, long sh, long sw, long ph, long pw,
            long dh, long dw,
            const uint8_t *zrow, long r0, long rows, const uint8_t **ptrs,
            const int8_t *packed, long Ng, long Kg, long P, long np_max,
            const qgemm_epilogue *e0, int any_wzp, int32_t *rowsum, uint8_t *out,
            long ldc) noexcept nogil
    void qlearn_qconv_dw3x3_row(int simd, const uint8_t *xp, long Wp, long C,
                                const int32_t *wz, const int16_t *wpk, long oy, long Wo,
                                int stride, int dil, int32_t *acc,
                                const qgemm_epilogue *e, uint8_t *out,
                                long ldc) noexcept nogil

from ._openmp import pool_capsule

# The process's thread pool (pyx/include/qlearn_threadpool.h; see _parallel.pxd).
cdef pool_run_t parallel_for = <pool_run_t> PyCapsule_GetPointer(pool_capsule,
                                                                 b"qlearn_pool_run")

cdef enum:
    SERIAL_BYTES = 1 << 16
    # Output pixels per block of the fused conv: a multiple of both tile heights (6
    # and 4); 96 rows of a 3x3x256 patch are 216 KiB, inside L2 with the weights.
    ROWS = 96
    # On several threads, blocks shrink (in steps of ROW_STEP, a multiple of both
    # tile heights) until there are UNITS_PER_THREAD per thread, so that a thread
    # that starts late or is preempted leaves its share to the others.
    ROW_STEP = 12
    UNITS_PER_THREAD = 4


cdef struct CopyJob:
    # the layout conversions: src (N, C, H, W) -> dst (N, H, W, C)
    const uint8_t *src
    uint8_t *dst
    intp_t C, H, W, HW, nblk


cdef void _small_c_row(void *ctx, long row, int slot) noexcept nogil:
    cdef CopyJob *j = <CopyJob *> ctx
    cdef intp_t n = row // j.H, y = row % j.H
    qlearn_qconv_nchw_row_to_nhwc(j.src + (n * j.C * j.H + y) * j.W, j.C, j.HW, j.W,
                                  j.dst + (n * j.H + y) * j.W * j.C)


cdef void _transpose_block(void *ctx, long t, int slot) noexcept nogil:
    cdef CopyJob *j = <CopyJob *> ctx
    cdef intp_t n = t // j.nblk, b = t % j.nblk
    qlearn_qconv_nchw_to_nhwc_rows(j.src + n * j.C * j.HW, j.C, j.HW, b * 256,
                                   min(j.HW, (b + 1) * 256), j.dst + n * j.HW * j.C)


def small_c_to_channels_last(const uint8_t[:, :, :, ::1] x,   # IN  (N, C, H, W)
                             uint8_t[:, :, :, ::1] out,       # OUT (N, H, W, C)
                             int num_threads):
    """out[n, y, x, c] := x[n, c, y, x], for a few channels (an image's 3)"""
    cdef intp_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef CopyJob job
    if N * C * H * W < SERIAL_BYTES:
        num_threads = 1
    if N * C * H * W == 0:
        return
    job.src, job.dst, job.C, job.H, job.W, job.HW = &x[0, 0, 0, 0], &out[0, 0, 0, 0], \
        C, H, W, H * W
    with nogil:
        parallel_for(_small_c_row, &job, N * H, num_threads, N * C * H * W)


cdef struct Geometry:
    intp_t H, W, C, Ho, Wo, c0, cg, lda
    int kh, kw, sh, sw, ph, pw, dh, dw
    uint8_t a_zp


cdef Geometry _geometry(const uint8_t[:, :, :, ::1] x, intp_t c0, intp_t cg, int kh,
                        int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                        uint8_t a_zp, intp_t lda):
    cdef Geometry g
    g.H, g.W, g.C = x.shape[1], x.shape[2], x.shape[3]
    g.Ho = (g.H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    g.Wo = (g.W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    g.c0, g.cg, g.lda = c0, cg, lda
    g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw = kh, kw, sh, sw, ph, pw, dh, dw
    g.a_zp = a_zp
    return g


cdef inline void _im2col_rows(const uint8_t *x, const Geometry *g, intp_t r0, intp_t r1,
                              uint8_t *dst) noexcept nogil:
    """Rows r0 .. r1-1 (output pixels (n, oy, ox) flattened) of the patch matrix into
    dst (r1 - r0, lda); x is the whole (N, H, W, C) channels-last input (the loop is
    ``qlearn_qconv_im2col_rows`` in ``pyx/include/qconv/im2col.h``)."""
    qlearn_qconv_im2col_rows(x, g.H, g.W, g.C, g.Ho, g.Wo, g.c0, g.cg, g.lda, g.kh, g.kw,
                             g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.a_zp, r0, r1, dst)


def to_channels_last(const uint8_t[:, :, :, ::1] x,   # IN  (N, C, H, W)
                     uint8_t[:, :, :, ::1] out,       # OUT (N, H, W, C)
                     int num_threads):
    """out[n, y, x, c] := x[n, c, y, x]: per image a (C, HW) -> (HW, C) byte transpose
    in 16x16 SSE2 tiles; threads take blocks of 256 pixels."""
    cdef intp_t N = x.shape[0], C = x.shape[1], HW = x.shape[2] * x.shape[3]
    cdef CopyJob job
    if N * C * HW < SERIAL_BYTES:
        num_threads = 1
    if N * C * HW == 0:
        return
    job.src, job.dst, job.C, job.HW = &x[0, 0, 0, 0], &out[0, 0, 0, 0], C, HW
    job.nblk = (HW + 255) // 256
    with nogil:
        parallel_for(_transpose_block, &job, N * job.nblk, num_threads, N * C * HW)


def im2col(const uint8_t[:, :, :, ::1] x,   # IN  (N, H, W, C) channels last
           intp_t c0, intp_t cg,             # the group's channels [c0, c0 + cg)
           int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
           uint8_t a_zp,
           uint8_t[:, ::1] out,              # OUT (N Ho Wo, lda), lda >= kh kw cg
           int num_threads):
    """out[(n, oy, ox), (ky, kx, c)] := x[n, oy sh-ph+ky dh, ox sw-pw+kx dw, c0+c]

    Positions in the padding hold ``a_zp`` (they stand for real zero, so
    ``x - Za = 0`` there, eq. (3)); columns past ``kh kw cg`` hold 0 (the packed weight
    is zero there).  Depth is ordered (ky, kx, c): each tap is a run of ``cg``
    contiguous bytes of the channels-last input, and with dilation 1 and one group a
    whole kernel row is one run of ``kw C`` bytes.  (:func:`conv_gemm` does the same
    in cache-sized blocks, fused with the GEMM; this whole-matrix form is the reference
    and what the generic path uses.)
    """
    cdef Geometry g = _geometry(x, c0, cg, kh, kw, sh, sw, ph, pw, dh, dw, a_zp,
                                out.shape[1])
    cdef ConvJob job
    job.M = out.shape[0]
    if job.M * g.lda < SERIAL_BYTES:
        num_threads = 1
    if job.M == 0:
        return
    job.x, job.g, job.bufs = &x[0, 0, 0, 0], &g, &out[0, 0]
    with nogil:
        parallel_for(_im2col_block, &job, (job.M + ROWS - 1) // ROWS, num_threads,
                     job.M * g.lda)


cdef void _im2col_block(void *ctx, long b, int slot) noexcept nogil:
    cdef ConvJob *j = <ConvJob *> ctx
    _im2col_rows(j.x, j.g, b * ROWS, min(j.M, (b + 1) * ROWS), j.bufs + b * ROWS * j.g.lda)


cdef struct ConvJob:
    const uint8_t *x
    const Geometry *g
    intp_t M, rows, K, Kg, Ng, P, ldc, buf_stride, sums_stride, ptrs_stride
    int path, mr_max, np_max
    bint indirect, any_wzp
    const uint8_t *zrow
    const int8_t *packed
    const qgemm_epilogue *e
    uint8_t *bufs            # slot s: bufs + s * buf_stride
    int32_t *sums
    intp_t *ptrs
    uint8_t *out


cdef void _conv_block(void *ctx, long b, int slot) noexcept nogil:
    """Output pixels [b rows, (b + 1) rows) of conv_gemm, on slot's scratch."""
    cdef ConvJob *j = <ConvJob *> ctx
    cdef intp_t r0 = b * j.rows
    cdef intp_t rows = min(j.rows, j.M - r0)
    cdef uint8_t *buf = j.bufs + slot * j.buf_stride
    cdef int32_t *sums = j.sums + slot * j.sums_stride
    if j.indirect:
        _block_indirect(j.path, j.x, j.g, r0, rows, j.zrow,
                        <const uint8_t **> (j.ptrs + slot * j.ptrs_stride), j.Kg, j.packed,
                        j.Ng, j.P, j.np_max, j.e, j.any_wzp, sums, j.out + r0 * j.ldc,
                        j.ldc)
        return
    _im2col_rows(j.x, j.g, r0, r0 + rows, buf)
    _block_gemm(j.path, buf, j.g.lda, rows, j.K, j.Kg, j.packed, j.Ng, j.P, j.mr_max,
                j.np_max, j.e, j.any_wzp, sums, j.out + r0 * j.ldc, j.ldc)


def conv_gemm(int simd,
              const uint8_t[:, :, :, ::1] x,   # IN  (N, H, W, C) channels last
              intp_t c0, intp_t cg, int kh, int kw, int sh, int sw, int ph, int pw,
              int dh, int dw, uint8_t a_zp,
              const int8_t[::1] packed,        # IN  the group's packed weight (Ng x K)
              intp_t Ng,
              const int32_t[::1] colsum, const int32_t[::1] wzp, bint any_wzp,
              const float32_t[::1] bias_q, const float32_t[::1] mult,
              int32_t out_zp, int32_t lo, int32_t hi,
              uint8_t[:, :] out,               # OUT (N Ho Wo, >= Ng) row stride ldc
              int num_threads):
    """out[(n, oy, ox), j] := eq. (6) of eq. (4) over the patches of x, fused.

    Threads take blocks of ``ROWS`` output pixels (smaller ones when there are too few
    blocks to share, see ``docs/int8.rst``, Threads).  With ``cg % 4 == 0`` the
    indirect micro-kernel of ``simd`` (VNNI or AVX2) reads every tap's channel run in
    place (padding points at a run of ``Za``; AVX2 takes its exact variant, eq. (7),
    when the input or ``Za`` exceeds 127); otherwise the block's patches are written (as
    :func:`im2col`) into the thread's cache-resident buffer and the GEMM tiles of
    :func:`qlearn._ext._qgemm.gemm` run on it.  Row sums are formed per block when some
    ``Zw != 0``.  The patch matrix is never materialized whole, and the patches and the
    GEMM are one parallel job.  Returns nothing; every output cell is written.
    """
    cdef int path = simd          # the GEMM path (AVX2 may become AVX2_EXACT per block)
    cdef intp_t K = kh * kw * cg, Kg = (K + 3) // 4, lda = 4 * Kg
    cdef Geometry g = _geometry(x, c0, cg, kh, kw, sh, sw, ph, pw, dh, dw, a_zp, lda)
    cdef intp_t M = x.shape[0] * g.Ho * g.Wo
    cdef intp_t P = (Ng + QGEMM_NR - 1) // QGEMM_NR
    cdef intp_t ldc = out.strides[0]
    cdef int mr_max = qgemm_tile_mr(path), np_max = qgemm_tile_np(path)
    cdef int nt = max(num_threads, 1)
    # Whole 4-byte groups per tap: the input is read in place (indirect convolution),
    # no patch matrix at all, only pointers to channel runs
    cdef bint indirect = (path == QGEMM_VNNI or path == QGEMM_AVX2) and cg % 4 == 0
    cdef intp_t T = kh * kw
    if indirect and path == QGEMM_AVX2:
        np_max = P      # one AVX2 kernel call runs every panel of its 4 rows
    cdef uint8_t[:, ::1] bufs = np.empty((nt, 1 if indirect else ROWS * lda),
                                         dtype=np.uint8)
    cdef int32_t[:, ::1] sums = np.empty((nt, ROWS), dtype=np.int32)
    cdef uint8_t[::1] zrow = np.full(max(cg, 1), a_zp, dtype=np.uint8)
    cdef intp_t[:, ::1] ptrs = np.empty((nt, 6 * T if indirect else 1), dtype=np.intp)
    cdef qgemm_epilogue e
    from ._qgemm import check_path
    check_path(path)
    if M == 0 or Ng == 0:
        return
    e = qgemm_epilogue_u8(&colsum[0], &wzp[0], a_zp,
                          &bias_q[0] if bias_q.shape[0] > 0 else NULL, &mult[0],
                          out_zp, lo, hi)
    if indirect and path == QGEMM_AVX2 and _needs_exact(x, c0, cg, a_zp):
        path = QGEMM_AVX2_EXACT      # eq. (7): some activation (or the padding) > 127
    if M * K * Ng < (1 << 18):
        num_threads = 1
    cdef ConvJob job
    job.x, job.g, job.M, job.K, job.Kg, job.Ng, job.P, job.ldc = \
        &x[0, 0, 0, 0], &g, M, K, Kg, Ng, P, ldc
    job.path, job.mr_max, job.np_max, job.indirect, job.any_wzp = \
        path, mr_max, np_max, indirect, any_wzp
    job.zrow, job.packed, job.e, job.out = &zrow[0], &packed[0], &e, &out[0, 0]
    job.bufs, job.buf_stride = &bufs[0, 0], bufs.shape[1]
    job.sums, job.sums_stride = &sums[0, 0], sums.shape[1]
    job.ptrs, job.ptrs_stride = &ptrs[0, 0], ptrs.shape[1]
    # One thread: blocks of ROWS.  More: smaller blocks when there are too few to share
    # (a 14x14 output is 196 pixels, 3 blocks of 96); every tile is still computed whole,
    # so the output is the same.
    job.rows = ROWS
    if num_threads > 1:
        job.rows = (M + UNITS_PER_THREAD * num_threads - 1) // (UNITS_PER_THREAD * num_threads)
        job.rows = min(ROWS, max(ROW_STEP, (job.rows + ROW_STEP - 1) // ROW_STEP * ROW_STEP))
    with nogil:
        parallel_for(_conv_block, &job, (M + job.rows - 1) // job.rows, num_threads,
                     M * K * Ng)


cdef bint _needs_exact(const uint8_t[:, :, :, ::1] x, intp_t c0, intp_t cg,
                       uint8_t a_zp) noexcept:
    """Whether AVX2's vpmaddubsw could saturate on this group's input: some byte of
    channels [c0, c0 + cg), or the zero point the padding holds, exceeds 127 (one pass
    over the group's input, not over the 9x larger patches)."""
    cdef intp_t pixels = x.shape[0] * x.shape[1] * x.shape[2]
    if a_zp > 127:
        return True
    if pixels == 0 or cg == 0:
        return False
    with nogil:
        return qlearn_qgemm_rowsum_max(&x[0, 0, 0, c0], pixels, cg, x.shape[3], NULL,
                                       1) > 127


cdef void _block_indirect(int path, const uint8_t *x, const Geometry *g, intp_t r0,
                          intp_t rows, const uint8_t *zrow, const uint8_t **ptrs,
                          intp_t Kg, const int8_t *packed, intp_t Ng, intp_t P,
                          int np_max, const qgemm_epilogue *e0, bint any_wzp,
                          int32_t *rowsum, uint8_t *out, intp_t ldc) noexcept nogil:
    """Output pixels r0 .. r0+rows-1 by the indirect kernel of ``path``: for each tile
    of 6 (VNNI) or 4 (AVX2) pixels, point at the channel run of every tap (or at a run
    of Za for padding, which is real zero, eq. (3)); row sums (eq. (4)) are summed over
    the same runs.  The loop is ``qlearn_qconv_indirect_block`` in
    ``pyx/include/qconv/indirect.h``."""
    qlearn_qconv_indirect_block(path, x, g.H, g.W, g.C, g.Ho, g.Wo, g.c0, g.cg, g.kh, g.kw,
                                g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, zrow, r0, rows, ptrs,
                                packed, Ng, Kg, P, np_max, e0, any_wzp, rowsum, out, ldc)


cdef void _block_gemm(int path, const uint8_t *a, intp_t lda, intp_t rows, intp_t K,
                      intp_t Kg, const int8_t *packed, intp_t Ng, intp_t P, int mr_max,
                      int np_max, const qgemm_epilogue *e0, bint any_wzp,
                      int32_t *rowsum, uint8_t *out, intp_t ldc) noexcept nogil:
    """The GEMM of one block of patch rows (eq. (4)), its epilogue reading this block's
    row sums: a private copy of the epilogue points at them."""
    cdef qgemm_epilogue e = e0[0]
    cdef intp_t i0, p0
    cdef int amax = qlearn_qgemm_rowsum_max(a, rows, K, lda,
                                            rowsum if any_wzp else NULL,
                                            path == QGEMM_AVX2)
    if path == QGEMM_AVX2 and amax > 127:
        path = QGEMM_AVX2_EXACT      # eq. (7): this block holds activations > 127
    e.rowsum = rowsum if any_wzp else NULL
    p0 = 0
    while p0 < P:
        i0 = 0
        while i0 < rows:
            qlearn_qgemm_tile(path, a, lda, i0, min(mr_max, rows - i0), packed, Ng, Kg,
                              p0, min(np_max, P - p0), &e, out, NULL, ldc)
            i0 += mr_max
        p0 += np_max


def depthwise3x3(const uint8_t[:, :, :, ::1] x,  # IN  (N, H, W, C) channels last
                 const int32_t[:, ::1] wz,      # IN  (9, C): W - Zw[c], taps (ky, kx)
                 int stride, int pad, int dil,
                 uint8_t a_zp,
                 const float32_t[::1] bias_q,   # IN  (C,) or empty
                 const float32_t[::1] mult,     # IN  (C,)
                 int32_t out_zp, int32_t lo, int32_t hi,
                 uint8_t[:, :, :, ::1] out,     # OUT (N, Ho, Wo, C) channels last
                 int simd, int num_threads):
    """out[n, oy, ox, c] := eq. (6) of sum_t (x - Za)[n, oy s+ky d-p, ox s+kx d-p, c] wz[t, c]

    A work unit is a band of output rows of one image: it copies the input rows the
    band reads into its thread's buffer, padded with ``Za`` (real zero), and runs the
    row kernel over them; the kernel sums ``x wz`` and the epilogue subtracts
    ``Za sum wz`` (eq. (9)).  The padding is thus made in cache, in the same parallel
    job as the arithmetic, instead of in a padded copy of the whole input.
    ``simd`` selects the plain loop (0), the AVX2 kernel with pairs of taps through
    vpmaddwd (1), or that kernel with an AVX-512 epilogue (2).
    """
    cdef intp_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef intp_t Ho = out.shape[1], Wo = out.shape[2]
    cdef intp_t Wp = W + 2 * pad, band, rows_in, t, c, nt = max(num_threads, 1)
    cdef qgemm_epilogue e
    cdef DwJob job
    if simd not in (0, 1, 2):
        raise ValueError(f"`simd` must be 0, 1 or 2, got {simd}")
    if simd and not qlearn_cpu_has_avx2():
        raise ValueError("`simd` 1 or 2 needs AVX2, which this CPU lacks")
    if simd == 2 and not qlearn_cpu_has_avx512vnni():
        raise ValueError("`simd=2` needs AVX-512, which this CPU lacks")
    if N == 0 or C == 0 or Ho == 0 or Wo == 0:
        return
    if N * C * Ho * Wo * 9 < SERIAL_BYTES:
        num_threads = nt = 1
    # Bands: DW_UNITS_PER_THREAD per thread when there are several (a late or
    # preempted thread leaves its share to the others), else as many rows as fit the
    # buffer; a band of b rows reads (b - 1) stride + 2 dil + 1 input rows.
    band = (Ho + DW_UNITS_PER_THREAD * nt - 1) // (DW_UNITS_PER_THREAD * nt) if nt > 1 else Ho
    band = max(1, min(band, (DW_BUF_BYTES // (Wp * C) - 2 * dil - 1) // stride + 1))
    rows_in = (band - 1) * stride + 2 * dil + 1
    # per thread: the padded input rows and a row of int32 sums; shared: sum_t wz and
    # the weights packed for the SIMD kernels
    cdef uint8_t[::1] bufs = np.empty(nt * rows_in * Wp * C, dtype=np.uint8)
    cdef int32_t[::1] acc = np.empty(nt * Wo * C + 2 * C, dtype=np.int32)
    cdef int16_t[::1] wpk = np.zeros(max(1, (C // 16) * 5 * 2 * 16), dtype=np.int16)
    cdef int32_t *wsum = &acc[nt * Wo * C]
    with nogil:
        for c in range(C):
            wsum[c] = 0
            wsum[C + c] = 0                  # the zero weight zero points
        for t in range(9):
            for c in range(C):
                wsum[c] += wz[t, c]
        qlearn_qconv_dw_pack(&wz[0, 0], C, &wpk[0])
    # raw = acc - Za * sum_t wz[t, c]: the column sums of a GEMM with Zw = 0
    e = qgemm_epilogue_u8(wsum, wsum + C, a_zp,
                          &bias_q[0] if bias_q.shape[0] > 0 else NULL, &mult[0],
                          out_zp, lo, hi)
    job.simd, job.x, job.H, job.W, job.C, job.pad, job.Wp = \
        simd, &x[0, 0, 0, 0], H, W, C, pad, Wp
    job.wz, job.wpk, job.fill = &wz[0, 0], &wpk[0], a_zp
    job.Ho, job.Wo, job.stride, job.dil, job.e, job.out = \
        Ho, Wo, stride, dil, &e, &out[0, 0, 0, 0]
    job.band, job.nbands, job.rows_in = band, (Ho + band - 1) // band, rows_in
    job.bufs, job.acc = &bufs[0], &acc[0]
    with nogil:
        parallel_for(_dw_band, &job, N * job.nbands, num_threads, N * Ho * Wo * C)


cdef enum:
    # Bands of output rows per thread of the depthwise kernel, and the most bytes of
    # padded input rows a band's buffer holds (it stays in L2 while the band runs).
    DW_UNITS_PER_THREAD = 4
    DW_BUF_BYTES = 1 << 17


cdef struct DwJob:
    int simd, stride, dil
    uint8_t fill             # Za: the padding
    const uint8_t *x
    intp_t H, W, C, pad, Wp, Ho, Wo, band, nbands, rows_in
    const int32_t *wz
    const int16_t *wpk
    const qgemm_epilogue *e
    uint8_t *bufs            # slot s: bufs + s * rows_in * Wp * C
    int32_t *acc             # slot s: acc + s * Wo * C
    uint8_t *out


cdef void _dw_band(void *ctx, long u, int slot) noexcept nogil:
    """Band u (image n, output rows oy0 .. oy1-1) of depthwise3x3 on slot's buffers:
    the input rows it reads, padded with Za, then each output row."""
    cdef DwJob *j = <DwJob *> ctx
    cdef intp_t n = u // j.nbands, oy0 = (u % j.nbands) * j.band
    cdef intp_t oy1 = min(j.Ho, oy0 + j.band), row = j.Wp * j.C, r, iy, oy
    cdef intp_t iy0 = oy0 * j.stride - j.pad, rows = (oy1 - 1 - oy0) * j.stride + 2 * j.dil + 1
    cdef uint8_t *buf = j.bufs + slot * j.rows_in * row
    cdef uint8_t *d
    for r in range(rows):
        iy = iy0 + r
        d = buf + r * row
        if iy < 0 or iy >= j.H:
            memset(d, j.fill, row)                              # padding rows: Za
            continue
        memset(d, j.fill, j.pad * j.C)                          # left border: Za
        memcpy(d + j.pad * j.C, j.x + (n * j.H + iy) * j.W * j.C, j.W * j.C)
        memset(d + (j.pad + j.W) * j.C, j.fill, j.pad * j.C)    # right border: Za
    for oy in range(oy0, oy1):
        qlearn_qconv_dw3x3_row(j.simd, buf, j.Wp, j.C, j.wz, j.wpk, oy - oy0, j.Wo,
                               j.stride, j.dil, j.acc + slot * j.Wo * j.C, j.e,
                               j.out + (n * j.Ho + oy) * j.Wo * j.C, j.C)
