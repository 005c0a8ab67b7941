# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""Int8 convolution: im2col (then :func:`qlearn._ext._qgemm.gemm`), depthwise and grouped.

Called only by :mod:`qlearn.kernels.int8` (the arguments are checked above it).
The kernels read activations channels-last, ``(N, H, W, C)`` C-contiguous: a
convolution's own output already is (as PyTorch's are).  An NCHW input is converted
inside the kernel's own parallel job, a band of rows at a time into the thread's
cache-resident buffer (:func:`conv_gemm` and :func:`depthwise` with ``nchw``); the
whole-array conversions (:func:`to_channels_last`, :func:`small_c_to_channels_last`)
serve the matrix paths (1x1 convolution, generic loops).  Temporaries come from scratch
blocks kept between calls.  The C kernels are the headers of ``pyx/include/qconv/`` and
``pyx/include/qgemm/``.

Equation numbers refer to ``docs/int8.rst``.
"""
import numpy as np

from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.string cimport memcpy, memset

from _parallel cimport pool_plan_t, pool_run_plan_t, pool_run_t, qlearn_pool_plan_t
from _rounding cimport nearbyint32
from _typedefs cimport (float32_t, int8_t, int16_t, int32_t, int64_t, intp_t,
                       uint8_t)

from _qgemm_decl cimport (QGEMM_AVX2, QGEMM_AVX2_EXACT, QGEMM_NR, QGEMM_VNNI,
                          qgemm_epilogue, qgemm_epilogue_u8, qgemm_tile_mr, qgemm_tile_np,
                          qlearn_cpu_has_avx2, qlearn_cpu_has_avx512vnni,
                          qlearn_qgemm_rowsum_max, qlearn_qgemm_rows)

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
    void qlearn_qconv_nchw_band_to_nhwc(const uint8_t *src, long H, long W, long c0,
                                        long cg, long y0, long y1,
                                        uint8_t *dst) noexcept nogil
    void qlearn_qconv_nchw_band_padded(const uint8_t *img, long H, long W, long c0,
                                       long cg, long yb0, long rows, long pw, long Wb,
                                       uint8_t fill, uint8_t *tmp,
                                       uint8_t *dst) noexcept nogil
    void qlearn_qconv_pad_band_repeat(const uint8_t *src, long top, long n, long rows,
                                      long W, long Cs, long m, long pw, long Wb,
                                      uint8_t fill, uint8_t *dst) noexcept nogil
    void qlearn_qconv_pad_band(const uint8_t *src, long top, long n, long rows, long W,
                               long C, long pw, long Wb, uint8_t fill,
                               uint8_t *dst) noexcept nogil
    void qlearn_qconv_dw_pack(const int32_t *wz, long C, int T, int blk,
                              int16_t *out) noexcept nogil
    int qlearn_qconv_dw_blk(int simd) noexcept nogil
    void qlearn_qconv_indirect_block(
            int path, const uint8_t *x, long H, long W, long C, long Ho, long Wo,
            long c0, long cg, long kh, long kw, long sh, long sw, long ph, long pw,
            long dh, long dw,
            const uint8_t *zrow, long r0, long rows, const uint8_t **ptrs,
            const int8_t *packed, long Ng, long Kg, long P, long np_max,
            const qgemm_epilogue *e0, int any_wzp, int32_t *rowsum, uint8_t *out,
            long ldc) noexcept nogil
    void qlearn_qconv_gw_row(int simd, const uint8_t *xp, long Wp, long C, int G,
                             const void *wpk, const long *off, int T, long oy, long Wo,
                             int sh, int sw, const qgemm_epilogue *e, uint8_t *out,
                             long ldc) noexcept nogil
    void qlearn_qconv_dw_row(int simd, const uint8_t *xp, long Wp, long C,
                             const int32_t *wz, const int16_t *wpk, const long *off, int T,
                             long oy, long Wo, int sh, int sw, int32_t *acc,
                             const qgemm_epilogue *e, uint8_t *out,
                             long ldc) noexcept nogil

from ._openmp import pool_capsule, pool_plan_capsule, pool_run_plan_capsule

# The process's thread pool (pyx/include/qlearn_threadpool.h; see _parallel.pxd).
cdef pool_run_t parallel_for = <pool_run_t> PyCapsule_GetPointer(pool_capsule,
                                                                 b"qlearn_pool_run")
cdef pool_plan_t pool_plan = <pool_plan_t> PyCapsule_GetPointer(pool_plan_capsule,
                                                                b"qlearn_pool_plan")
cdef pool_run_plan_t pool_run_plan = <pool_run_plan_t> PyCapsule_GetPointer(
    pool_run_plan_capsule, b"qlearn_pool_run_plan")

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


cdef inline intp_t _span(intp_t M, intp_t nt, intp_t r) noexcept nogil:
    # Pixels on the busiest of nt threads when M pixels are cut into blocks of r (the
    # last one shorter) and the threads take them in turn: the thread that gets the
    # short block is the busiest only if it is the one thread with an extra block.
    cdef intp_t nb = (M + r - 1) // r, q = nb // nt, rem = nb % nt
    if rem == 0:
        return q * r
    return q * r + (M - (nb - 1) * r if rem == 1 else r)


cdef inline intp_t _balanced_rows(intp_t M, intp_t nt, intp_t r_max) noexcept nogil:
    # The block height, a multiple of ROW_STEP up to r_max, that evens the threads'
    # shares best: a shorter block only where it makes the busiest thread's share 2 %
    # smaller (each block re-reads the weight).  Measured (VNNI, 2 threads, quiet): a
    # 14x14 output, 196 pixels, in blocks of 36 is 36+36+36 against 36+36+16 pixels,
    # 729-774 GOP/s on conv 3x3 256->256; in blocks of 24 (100 against 96) 789-806.
    cdef intp_t best = r_max, span = _span(M, nt, r_max), r = r_max - ROW_STEP, s
    while r >= ROW_STEP:
        s = _span(M, nt, r)
        if s * 50 < span * 49:
            best, span = r, s
        r -= ROW_STEP
    return best


cdef inline intp_t _block_rows(intp_t M, intp_t nt, intp_t groups) noexcept nogil:
    # The pixels of a work unit of the fused conv (see conv_gemm and block_rows).
    cdef intp_t units, rows
    if nt <= 1:
        return ROWS
    units = (UNITS_PER_THREAD * nt + groups - 1) // groups      # per group
    rows = (M + units - 1) // units
    rows = min(ROWS, max(ROW_STEP, (rows + ROW_STEP - 1) // ROW_STEP * ROW_STEP))
    if groups == 1:     # (the groups' blocks interleave: no even share to find)
        rows = _balanced_rows(M, nt, rows)
    return rows


def block_rows(intp_t M, int num_threads, intp_t groups=1):
    r"""Output pixels per work unit of :func:`conv_gemm` (tests, docs): ``ROWS`` (96)
    on one thread; on more, blocks of a multiple of 12 pixels, at least 4 per thread
    where the output allows, then the height among those that minimises the busiest
    thread's share :math:`\max_t \sum_{b \in t} |b|` (a shorter block only for 2 %)."""
    if M < 1 or num_threads < 1 or groups < 1:
        raise ValueError(f"block_rows: M, num_threads and groups must be >= 1, got "
                         f"{M}, {num_threads}, {groups}")
    return _block_rows(M, num_threads, groups)


cdef struct CopyJob:
    # the layout conversions: src (N, C, H, W) -> dst (N, H, W, C)
    const uint8_t *src
    uint8_t *dst
    intp_t C, H, W, HW, nblk, nblk_rows


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
    const uint8_t *x         # the input: channels last, or NCHW with nbands > 0
    const Geometry *g
    intp_t M, rows, K, Kg, Ng, P, ldc, buf_stride, sums_stride, ptrs_stride
    intp_t nbands, bh, band_stride
    bint padded              # bands hold their padding (Wb pixels a row), see _conv_band
    intp_t Wb, pad_bytes     # padded row width; bytes of a slot's padded rows
    int path, mr_max, np_max
    bint indirect, any_wzp
    const uint8_t *zrow
    const int8_t *packed
    const qgemm_epilogue *e
    uint8_t *bufs            # slot s: bufs + s * buf_stride (im2col's patch rows)
    uint8_t *bands           # slot s: bands + s * band_stride (NCHW input rows)
    int32_t *sums
    intp_t *ptrs
    uint8_t *out


cdef inline void _block(const ConvJob *j, const uint8_t *x, const Geometry *g, intp_t r0,
                        intp_t rows, int slot, uint8_t *out) noexcept nogil:
    """Output pixels r0 .. r0+rows-1 of the channels-last input x (geometry g) into
    out (rows, ldc), on slot's scratch."""
    cdef int32_t *sums = j.sums + slot * j.sums_stride
    cdef uint8_t *buf
    if j.indirect:
        _block_indirect(j.path, x, g, r0, rows, j.zrow,
                        <const uint8_t **> (j.ptrs + slot * j.ptrs_stride), j.Kg, j.packed,
                        j.Ng, j.P, j.np_max, j.e, j.any_wzp, sums, out, j.ldc)
        return
    buf = j.bufs + slot * j.buf_stride
    _im2col_rows(x, g, r0, r0 + rows, buf)
    _block_gemm(j.path, buf, g.lda, rows, j.K, j.Kg, j.packed, j.Ng, j.P, j.mr_max,
                j.np_max, j.e, j.any_wzp, sums, out, j.ldc)


cdef void _conv_block(void *ctx, long b, int slot) noexcept nogil:
    """Output pixels [b rows, (b + 1) rows) of conv_gemm (channels-last input)."""
    cdef ConvJob *j = <ConvJob *> ctx
    cdef intp_t r0 = b * j.rows
    _block(j, j.x, j.g, r0, min(j.rows, j.M - r0), slot, j.out + r0 * j.ldc)


cdef inline void _band_rows(const ConvJob *j, intp_t u, intp_t *n, intp_t *oy0,
                            intp_t *oy1, intp_t *y0, intp_t *y1) noexcept nogil:
    """Band u: image n, output rows [oy0, oy1), the input rows [y0, y1) they read."""
    cdef const Geometry *g = j.g
    n[0] = u // j.nbands
    oy0[0] = (u % j.nbands) * j.bh
    oy1[0] = min(g.Ho, oy0[0] + j.bh)
    y0[0] = max(0, oy0[0] * g.sh - g.ph)
    y1[0] = max(y0[0], min(g.H, (oy1[0] - 1) * g.sh - g.ph + (g.kh - 1) * g.dh + 1))


cdef void _conv_band(void *ctx, long u, int slot) noexcept nogil:
    """Band u (image n, output rows oy0 .. oy1-1) of conv_gemm on an NCHW input: the
    input rows the band reads are converted to channels last into slot's buffer (in
    cache), then the band's pixels run on it as on a small image whose first row is
    the band's first.  For the indirect kernel the buffer also holds the padding
    (rows of Wb pixels, Za around the input; a small image with no padding at all);
    for im2col its top padding shrinks accordingly and rows past the buffer are past
    the image, i.e. padding."""
    cdef ConvJob *j = <ConvJob *> ctx
    cdef const Geometry *g = j.g
    cdef intp_t n, oy0, oy1, y0, y1, M, r0 = 0, step
    _band_rows(j, u, &n, &oy0, &oy1, &y0, &y1)
    cdef uint8_t *band = j.bands + slot * j.band_stride
    cdef uint8_t *out = j.out + (n * g.Ho + oy0) * g.Wo * j.ldc
    cdef Geometry bg = g[0]
    cdef intp_t rows_b = (oy1 - oy0 - 1) * g.sh + (g.kh - 1) * g.dh + 1
    if j.padded:
        # the padding made real around the band's rows: every window is then inside
        # the band, so every tile takes the kernels' interior forms (strided, or one
        # run per kernel row) and none points at a row of Za
        qlearn_qconv_nchw_band_padded(j.x + n * g.C * g.H * g.W, g.H, g.W, g.c0, g.cg,
                                      oy0 * g.sh - g.ph, rows_b, g.pw, j.Wb, g.a_zp,
                                      band + j.pad_bytes, band)
        bg.H, bg.W, bg.C, bg.c0, bg.Ho = rows_b, j.Wb, g.cg, 0, oy1 - oy0
        bg.ph = bg.pw = 0
    else:
        if y1 > y0:
            qlearn_qconv_nchw_band_to_nhwc(j.x + n * g.C * g.H * g.W, g.H, g.W, g.c0,
                                           g.cg, y0, y1, band)
        bg.H, bg.C, bg.c0, bg.Ho = y1 - y0, g.cg, 0, oy1 - oy0
        bg.ph = <int> (g.ph - oy0 * g.sh + y0)     # in [0, ph]
    M = (oy1 - oy0) * g.Wo
    # the indirect kernel takes the whole band at once, unless it needs row sums
    # (a block's), as im2col needs its patch rows
    step = ROWS if not j.indirect or j.any_wzp else M
    while r0 < M:
        _block(j, band, &bg, r0, min(step, M - r0), slot, out + r0 * j.ldc)
        r0 += step


cdef void _transpose_image_block(void *ctx, long t, int slot) noexcept nogil:
    # (the layout conversion of conv_gemm's own NCHW input, into its scratch)
    cdef CopyJob *j = <CopyJob *> ctx
    cdef intp_t n = t // j.nblk, b = t % j.nblk
    qlearn_qconv_nchw_band_to_nhwc(j.src + n * j.C * j.HW, j.H, j.W, 0, j.C, b * j.nblk_rows,
                                   min(j.H, (b + 1) * j.nblk_rows),
                                   j.dst + (n * j.HW + b * j.nblk_rows * j.W) * j.C)


# ---- scratch kept between calls ------------------------------------------------------------
# conv_gemm's temporaries (pointers, row sums, patch rows, converted input rows) come
# from a few malloc'd blocks that are kept and reused, not from new arrays per call:
# glibc returns large freed blocks to the OS, and every page of a fresh one then costs
# a page fault on first touch (~11 % of a convolution of a batch of 8 in a fresh
# process).  The blocks are taken and given back with the GIL held, so concurrent
# calls from several Python threads each get their own.
cdef extern from "stdlib.h":
    int posix_memalign(void **p, size_t alignment, size_t size) nogil
    void free(void *p) nogil

cdef enum:
    # blocks kept at most, and the largest kept (a larger one, e.g. the converted copy
    # of a big batch, is freed after its call)
    SCRATCH_KEPT = 4
    KEEP_MAX_BYTES = 1 << 23

cdef void *_kept[SCRATCH_KEPT]
cdef size_t _kept_bytes[SCRATCH_KEPT]
cdef int _n_kept = 0


cdef uint8_t *_scratch_take(size_t nbytes, size_t *got) except NULL:
    """A 64-byte aligned block of at least nbytes (GIL held): a kept one if large
    enough, else a new one."""
    global _n_kept
    cdef void *p = NULL
    if _n_kept:
        _n_kept -= 1
        if _kept_bytes[_n_kept] >= nbytes:
            got[0] = _kept_bytes[_n_kept]
            return <uint8_t *> _kept[_n_kept]
        free(_kept[_n_kept])
    nbytes = (max(nbytes, <size_t> 4096) + 4095) & ~(<size_t> 4095)
    if posix_memalign(&p, 64, nbytes) != 0:
        raise MemoryError(f"conv_gemm: cannot allocate {nbytes} bytes of scratch")
    got[0] = nbytes
    return <uint8_t *> p


cdef void _scratch_give(uint8_t *p, size_t nbytes) noexcept:
    """Keep the block for the next call (GIL held), or free it when enough are kept."""
    global _n_kept
    if _n_kept < SCRATCH_KEPT and nbytes <= KEEP_MAX_BYTES:
        _kept[_n_kept], _kept_bytes[_n_kept] = p, nbytes
        _n_kept += 1
    else:
        free(p)


def scratch_kept():
    """Bytes of scratch kept between calls, per block (for tests)."""
    return [_kept_bytes[i] for i in range(_n_kept)]


cdef inline intp_t _up64(intp_t n) noexcept nogil:
    return (n + 63) & ~(<intp_t> 63)


cdef enum:
    # The most bytes of converted input rows in a band's buffer (it stays in L2 with
    # the packed weight while the band's GEMM reads it; a band also converts the
    # (kh - 1) dh rows the one above it read)
    BAND_BYTES = 1 << 18


cdef bint HAS_AVX2 = qlearn_cpu_has_avx2()
cdef bint HAS_VNNI = HAS_AVX2 and qlearn_cpu_has_avx512vnni()


def conv_gemm(int simd,
              const uint8_t[:, :, :, ::1] x,   # IN  (N, H, W, C), or (N, C, H, W) if nchw
              intp_t c0, intp_t cg, int kh, int kw, int sh, int sw, int ph, int pw,
              int dh, int dw, uint8_t a_zp,
              const int8_t[::1] packed,        # IN  the group's packed weight (Ng x K)
              intp_t Ng,
              const int32_t[::1] colsum, const int32_t[::1] wzp, bint any_wzp,
              const float32_t[::1] bias_q, const float32_t[::1] mult,
              int32_t out_zp, int32_t lo, int32_t hi,
              uint8_t[:, :] out,               # OUT (N Ho Wo, >= groups Ng), stride ldc
              int num_threads, bint nchw=False, intp_t band_bytes=0, intp_t groups=1):
    """out[(n, oy, ox), j] := eq. (6) of eq. (4) over the patches of x, fused.

    ``groups`` convolutions at once: group i reads the input channels
    ``[c0 + i cg, c0 + (i + 1) cg)`` and writes the output columns ``[i Ng, (i + 1) Ng)``
    with the i-th of the ``groups`` packed weights of equal size that ``packed`` holds
    one after the other (and entries ``[i Ng, (i + 1) Ng)`` of ``colsum``, ``wzp``,
    ``bias_q`` and ``mult``); the work units of every group form one parallel job.

    Threads take blocks of ``ROWS`` output pixels (smaller ones when there are too few
    blocks to share, see ``docs/int8.rst``, Threads).  With ``cg % 4 == 0`` the
    indirect micro-kernel of ``simd`` (VNNI or AVX2) reads every tap's channel run in
    place (padding points at a run of ``Za``; AVX2 takes its exact variant, eq. (7),
    when the input or ``Za`` exceeds 127); otherwise the block's patches are written (as
    :func:`im2col`) into the thread's cache-resident buffer and the GEMM tiles of
    :func:`qlearn._ext._qgemm.gemm` run on it.  Row sums are formed per block when some
    ``Zw != 0``.  The patch matrix is never materialized whole, and the patches and the
    GEMM are one parallel job.

    An NCHW input (``nchw``) is converted in the same job on one thread: a work unit
    is then a band of output rows of one image, which first converts the input rows it
    reads into the buffer, in cache (for the indirect kernel with the padding made
    real around them, so that every tile takes the kernel's interior forms).  On several threads it is converted whole first,
    into scratch, by a job of its own.  Returns nothing; every output cell is
    written.
    """
    cdef int path = simd          # the GEMM path (AVX2 may become AVX2_EXACT per block)
    cdef intp_t N = x.shape[0]
    cdef intp_t H = x.shape[2] if nchw else x.shape[1]
    cdef intp_t W = x.shape[3] if nchw else x.shape[2]
    cdef intp_t C = x.shape[1] if nchw else x.shape[3]
    cdef intp_t K = kh * kw * cg, Kg = (K + 3) // 4, lda = 4 * Kg
    cdef Geometry g
    cdef intp_t M, P = (Ng + QGEMM_NR - 1) // QGEMM_NR
    cdef intp_t ldc = out.strides[0], T = kh * kw
    cdef int mr_max, np_max, nt = max(num_threads, 1)
    cdef bint indirect
    cdef intp_t row_bytes, bh, nb, in_rows
    cdef intp_t o_ptrs, o_sums, o_zrow, o_bufs, o_bands, o_conv, total
    cdef size_t got = 0
    cdef uint8_t *scratch
    cdef ConvJob job
    cdef CopyJob cj
    cdef GroupsJob gj
    cdef intp_t gi, gsize, o_jobs
    cdef Geometry *geos
    cdef qgemm_epilogue *eps
    if groups < 1:
        raise ValueError(f"`groups` must be >= 1, got {groups}")
    if packed.shape[0] % groups or colsum.shape[0] < groups * Ng \
            or wzp.shape[0] < groups * Ng or mult.shape[0] < groups * Ng \
            or bias_q.shape[0] and bias_q.shape[0] < groups * Ng \
            or out.shape[1] < groups * Ng or c0 + groups * cg > C:
        raise ValueError(f"conv_gemm: {groups} groups of {Ng} outputs and {cg} input "
                         f"channels need {groups} packed weights of equal size, "
                         f"{groups * Ng} column constants and output columns and "
                         f"{c0 + groups * cg} input channels")
    gsize = packed.shape[0] // groups
    if not (path == QGEMM_VNNI and HAS_VNNI
            or (path == QGEMM_AVX2 or path == QGEMM_AVX2_EXACT) and HAS_AVX2):
        from ._qgemm import check_path
        check_path(path)         # raises: no such path, or not on this CPU
    g.H, g.W, g.C = H, W, C
    g.Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    g.Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    g.c0, g.cg, g.lda = c0, cg, lda
    g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw = kh, kw, sh, sw, ph, pw, dh, dw
    g.a_zp = a_zp
    M = N * g.Ho * g.Wo
    if M == 0 or Ng == 0:
        return
    mr_max, np_max = qgemm_tile_mr(path), qgemm_tile_np(path)
    # Whole 4-byte groups per tap: the input is read in place (indirect convolution),
    # no patch matrix at all, only pointers to channel runs
    indirect = (path == QGEMM_VNNI or path == QGEMM_AVX2) and cg % 4 == 0
    if indirect and path == QGEMM_AVX2:
        np_max = P      # one AVX2 kernel call runs every panel of its 4 rows
    if groups * M * K * Ng < (1 << 18):
        num_threads = nt = 1
    # An NCHW input on one thread: bands of bh output rows, as many as fit BAND_BYTES.
    # On several threads the input is converted whole first (nb = 0) and the blocks of
    # pixels below share the work: bands would be few and long (whole images of a
    # batch), and on a busy machine a thread that is preempted late in a long unit
    # makes the other wait.
    nb = 0
    bh = g.Ho
    # the padded row width of a band (indirect kernel): the columns the windows span
    job.Wb = (g.Wo - 1) * sw + (kw - 1) * dw + 1
    job.padded = nchw and nt == 1 and indirect
    if nchw and nt == 1:
        row_bytes = (job.Wb if job.padded else W) * cg
        bh = max(1, ((band_bytes or BAND_BYTES) // max(row_bytes, 1) - (kh - 1) * dh - 1)
                 // sh + 1)
        nb = (g.Ho + bh - 1) // bh
        bh = (g.Ho + nb - 1) // nb          # the same number of bands, evened out
        nb = (g.Ho + bh - 1) // bh
    # one scratch block: per slot the tile's pointers, the row sums, the patch rows
    # (im2col) and the band's input rows; shared the row of Za, a converted input and
    # per group its job, geometry and epilogue
    in_rows = min(H, (bh - 1) * sh + (kh - 1) * dh + 1)
    job.ptrs_stride = mr_max * T if indirect else 1
    job.sums_stride = ROWS
    job.buf_stride = 0 if indirect else _up64(ROWS * lda)
    job.pad_bytes = (_up64(((bh - 1) * sh + (kh - 1) * dh + 1) * job.Wb * cg)
                     if job.padded else 0)
    job.band_stride = job.pad_bytes + _up64(in_rows * W * cg) if nb else 0
    o_ptrs = 0
    o_sums = _up64(o_ptrs + nt * job.ptrs_stride * sizeof(intp_t))
    o_zrow = _up64(o_sums + nt * job.sums_stride * sizeof(int32_t))
    o_bufs = _up64(o_zrow + max(cg, 1))
    o_bands = o_bufs + nt * job.buf_stride
    o_conv = o_bands + nt * job.band_stride
    o_jobs = _up64(o_conv + (N * H * W * C if nchw and not nb else 0))
    total = o_jobs + groups * (sizeof(ConvJob) + sizeof(Geometry) + sizeof(qgemm_epilogue))
    scratch = _scratch_take(total, &got)
    try:
        memset(scratch + o_zrow, a_zp, max(cg, 1))
        job.x, job.g, job.M, job.K, job.Kg, job.Ng, job.P, job.ldc = \
            &x[0, 0, 0, 0], &g, M, K, Kg, Ng, P, ldc
        job.path, job.mr_max, job.np_max, job.indirect, job.any_wzp = \
            path, mr_max, np_max, indirect, any_wzp
        job.zrow = scratch + o_zrow
        job.ptrs = <intp_t *> (scratch + o_ptrs)
        job.sums = <int32_t *> (scratch + o_sums)
        job.bufs, job.bands = scratch + o_bufs, scratch + o_bands
        job.nbands, job.bh = nb, bh
        if not nb and nchw:
            # several threads, short bands: convert the whole input first (one job of
            # blocks of rows), then the channels-last convolution below reads it
            cj.src, cj.dst, cj.C, cj.H, cj.W, cj.HW = &x[0, 0, 0, 0], scratch + o_conv, \
                C, H, W, H * W
            cj.nblk_rows = max(1, min(H, (N * H + UNITS_PER_THREAD * nt - 1)
                                      // (UNITS_PER_THREAD * nt)))
            cj.nblk = (H + cj.nblk_rows - 1) // cj.nblk_rows
            with nogil:
                parallel_for(_transpose_image_block, &cj, N * cj.nblk, num_threads,
                             N * C * H * W)
            job.x = scratch + o_conv
        # One thread: blocks of ROWS.  More: smaller blocks when there are too few to
        # share (a 14x14 output is 196 pixels, 3 blocks of 96), then the height that
        # evens the shares; every tile is still computed whole, so the output is the
        # same.
        job.rows = _block_rows(M, num_threads, groups)
        gj.jobs = <ConvJob *> (scratch + o_jobs)
        geos = <Geometry *> (gj.jobs + groups)
        eps = <qgemm_epilogue *> (geos + groups)
        for gi in range(groups):
            geos[gi] = g
            geos[gi].c0 = c0 + gi * cg
            eps[gi] = qgemm_epilogue_u8(&colsum[gi * Ng], &wzp[gi * Ng], a_zp,
                                        &bias_q[gi * Ng] if bias_q.shape[0] > 0 else NULL,
                                        &mult[gi * Ng], out_zp, lo, hi)
            gj.jobs[gi] = job
            gj.jobs[gi].g, gj.jobs[gi].e = &geos[gi], &eps[gi]
            gj.jobs[gi].packed, gj.jobs[gi].out = &packed[gi * gsize], &out[0, gi * Ng]
            if indirect and path == QGEMM_AVX2 and _needs_exact(x, c0 + gi * cg, cg, a_zp,
                                                                nchw):
                gj.jobs[gi].path = QGEMM_AVX2_EXACT   # eq. (7): an activation or Za > 127
        gj.per = N * nb if nb else (M + job.rows - 1) // job.rows
        with nogil:
            parallel_for(_groups_band if nb else _groups_block, &gj, groups * gj.per,
                         num_threads, groups * M * K * Ng)
    finally:
        _scratch_give(scratch, got)


cdef struct GroupsJob:
    ConvJob *jobs            # one per group
    intp_t per               # work units per group


cdef void _groups_block(void *ctx, long u, int slot) noexcept nogil:
    cdef GroupsJob *j = <GroupsJob *> ctx
    _conv_block(&j.jobs[u // j.per], u % j.per, slot)


cdef void _groups_band(void *ctx, long u, int slot) noexcept nogil:
    cdef GroupsJob *j = <GroupsJob *> ctx
    _conv_band(&j.jobs[u // j.per], u % j.per, slot)


cdef bint _needs_exact(const uint8_t[:, :, :, ::1] x, intp_t c0, intp_t cg,
                       uint8_t a_zp, bint nchw) noexcept:
    """Whether AVX2's vpmaddubsw could saturate on this group's input: some byte of
    channels [c0, c0 + cg), or the zero point the padding holds, exceeds 127 (one pass
    over the group's input, not over the 9x larger patches)."""
    cdef intp_t pixels = x.shape[0] * x.shape[1] * x.shape[2]
    if a_zp > 127:
        return True
    if x.shape[0] == 0 or cg == 0:
        return False
    if nchw:         # per image, the group's planes are one run of cg H W bytes
        pixels = x.shape[2] * x.shape[3]
        if pixels == 0:
            return False
        with nogil:
            return qlearn_qgemm_rowsum_max(&x[0, c0, 0, 0], x.shape[0], cg * pixels,
                                           x.shape[1] * pixels, NULL, 1) > 127
    if pixels == 0:
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
    cdef intp_t p0
    cdef int amax = qlearn_qgemm_rowsum_max(a, rows, K, lda,
                                            rowsum if any_wzp else NULL,
                                            path == QGEMM_AVX2)
    if path == QGEMM_AVX2 and amax > 127:
        path = QGEMM_AVX2_EXACT      # eq. (7): this block holds activations > 127
    e.rowsum = rowsum if any_wzp else NULL
    p0 = 0
    while p0 < P:
        qlearn_qgemm_rows(path, a, lda, 0, rows, mr_max, packed, Ng, Kg, p0,
                          min(np_max, P - p0), &e, out, NULL, ldc)
        p0 += np_max


def depthwise(const uint8_t[:, :, :, ::1] x,   # IN  (N, H, W, C) channels last
              const int32_t[:, ::1] wz,          # IN  (kh kw, C): W - Zw[c], taps (ky, kx)
              int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
              uint8_t a_zp,
              const float32_t[::1] bias_q,       # IN  (C,) or empty
              const float32_t[::1] mult,         # IN  (C,)
              int32_t out_zp, int32_t lo, int32_t hi,
              uint8_t[:, :, :, ::1] out,         # OUT (N, Ho, Wo, C) channels last
              int simd, int num_threads, bint nchw=False):
    """out[n, oy, ox, c] := eq. (6) of
    sum_{ky, kx} (x - Za)[n, oy sh + ky dh - ph, ox sw + kx dw - pw, c // m]
    wz[ky kw + kx, c]

    ``m``, the channel multiplier, is C over the input's channels (a channels-last
    input only; an NCHW one has C): the band copy repeats each input channel m times.

    A work unit is a band of output rows of one image: it copies the input rows the
    band reads into its thread's buffer, padded with ``Za`` (real zero), and runs the
    row kernel over them; the kernel sums ``x wz`` and the epilogue subtracts
    ``Za sum wz`` (eq. (9)).  The padding is thus made in cache, in the same parallel
    job as the arithmetic, instead of in a padded copy of the whole input.
    ``simd`` selects the plain loop (0), the AVX2 kernel with pairs of taps through
    vpmaddwd (1), or the AVX-512 kernel with vpdpwssd and its epilogue in registers
    (2).  With ``nchw`` the input is (N, C, H, W): each input row is transposed straight
    into the band's padded buffer (no channels-last copy of the whole input).
    """
    cdef intp_t N = x.shape[0]
    cdef intp_t H = x.shape[2] if nchw else x.shape[1]
    cdef intp_t W = x.shape[3] if nchw else x.shape[2]
    cdef intp_t Cx = x.shape[1] if nchw else x.shape[3], C = out.shape[3], m = 1
    cdef intp_t Ho = out.shape[1], Wo = out.shape[2], T = kh * kw
    cdef intp_t Wp = W + 2 * pw, span = (kh - 1) * dh + 1, rows_in, t
    cdef intp_t nt = max(num_threads, 1)
    if Cx and C % Cx == 0 and (C == Cx or not nchw):
        m = C // Cx
    elif C or Cx:
        raise ValueError(f"depthwise: `out` has {C} channels, which must be a multiple of "
                         f"the channels-last input's {Cx} (or equal to an NCHW input's)")
    if simd not in (0, 1, 2):
        raise ValueError(f"`simd` must be 0, 1 or 2, got {simd}")
    if simd and not qlearn_cpu_has_avx2():
        raise ValueError("`simd` 1 or 2 needs AVX2, which this CPU lacks")
    if simd == 2 and not qlearn_cpu_has_avx512vnni():
        raise ValueError("`simd=2` needs AVX-512, which this CPU lacks")
    if wz.shape[0] != T or wz.shape[1] != C:
        raise ValueError(f"`wz` must be ({T}, {C}), got ({wz.shape[0]}, {wz.shape[1]})")
    if N == 0 or C == 0 or Ho == 0 or Wo == 0:
        return
    if N * C * Ho * Wo * T < SERIAL_BYTES:
        num_threads = nt = 1
    # Bands: DW_UNITS_PER_THREAD per thread when there are several (a late or
    # preempted thread leaves its share to the others), else as many rows as fit the
    # buffer (_dw_band_rows).  The pool chooses alone or in parallel before the bands
    # are cut (_dw_run), so the scratch holds the split of any thread count up to nt:
    # t buffers of the t-thread bands' input rows.
    rows_in = _dw_rows_in(Ho, Wp, C, sh, span, nt)
    # per thread: the padded input rows and a row of int32 sums; shared: sum_t wz, the
    # tap offsets and the weights packed for the SIMD kernels (all in one kept scratch
    # block, as conv_gemm's)
    cdef intp_t blk = qlearn_qconv_dw_blk(simd)
    # an NCHW input narrower than 16 pixels or channels is transposed as one run of
    # pixels into a slot's tmp rows, then copied into the padded ones
    cdef intp_t o_tmp = _up64(rows_in * Wp * C)
    cdef intp_t o_acc = o_tmp + (_up64(rows_in * W * C) if nchw else 0)
    cdef intp_t o_off = _up64(o_acc + (nt * Wo * C + 2 * C) * sizeof(int32_t))
    cdef intp_t o_wpk = _up64(o_off + T * sizeof(long))
    cdef intp_t n_wpk = max(1, (C // 16) * 16 * ((T + 1) // 2) * 2)   # dw_pack's
    cdef size_t got = 0
    cdef uint8_t *scratch = _scratch_take(o_wpk + n_wpk * sizeof(int16_t), &got)
    cdef int32_t *accp = <int32_t *> (scratch + o_acc)
    cdef long *off = <long *> (scratch + o_off)
    cdef int16_t *wpkp = <int16_t *> (scratch + o_wpk)
    cdef int32_t *wsum = accp + nt * Wo * C
    _tap_offsets(off, T, kw, dh, dw, Wp * C, C)
    try:
        _dw_run(scratch, scratch + o_tmp, accp, wpkp, wsum, off, n_wpk, blk, simd, x, wz,
                sh, sw, ph, pw, span, a_zp, bias_q, mult, out_zp, lo, hi, out, N, H, W, C,
                m, Ho, Wo, Wp, nchw, num_threads)
    finally:
        _scratch_give(scratch, got)


def groupwise(const uint8_t[:, :, :, ::1] x,   # IN  (N, H, W, C) channels last
              const int8_t[::1] wpk,             # IN  pack_groupwise's weights, as bytes
              const int32_t[::1] colsum,         # IN  (C,) sum_{t, c} w[o, c, t]
              int G,                             # channels per group: 4 or 8
              int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
              uint8_t a_zp,
              const float32_t[::1] bias_q,       # IN  (C,) or empty
              const float32_t[::1] mult,         # IN  (C,)
              int32_t out_zp, int32_t lo, int32_t hi,
              uint8_t[:, :, :, ::1] out,         # OUT (N, Ho, Wo, C) channels last
              int simd, int num_threads, bint nchw=False):
    """out[n, oy, ox, G g + j] := eq. (6) of
    sum_{ky, kx, c < G} (x - Za)[n, oy sh + ky dh - ph, ox sw + kx dw - pw, G g + c]
    w[G g + j, c, ky, kx]

    A grouped convolution of G = 4 or 8 input and as many output channels per group
    and a symmetric weight (Zw = 0), on the VNNI path (``simd`` 2,
    ``groupwise_avx512.h``: 64 / G groups per ``vpdpbusd``, int8 weights in blocks of 64
    channels) or the AVX2 path (1, ``groupwise_avx2.h``: 16 / G groups per ``vpmaddwd``,
    int16 weights in blocks of 16).  The work is split and the input padded as
    :func:`depthwise`'s: bands of output rows, each copying the input rows it reads into
    its thread's buffer with ``Za`` around them (transposing an NCHW input's rows, with
    ``nchw``).
    """
    cdef intp_t N = x.shape[0]
    cdef intp_t H = x.shape[2] if nchw else x.shape[1]
    cdef intp_t W = x.shape[3] if nchw else x.shape[2]
    cdef intp_t C = x.shape[1] if nchw else x.shape[3]
    cdef intp_t Ho = out.shape[1], Wo = out.shape[2], T = kh * kw, t, c
    cdef intp_t Wp = W + 2 * pw, span = (kh - 1) * dh + 1, rows_in
    cdef intp_t nt = max(num_threads, 1)
    cdef intp_t blk = 64 if simd == QGEMM_VNNI else 16
    cdef intp_t elem = 1 if simd == QGEMM_VNNI else 2
    cdef DwJob job
    cdef qgemm_epilogue e
    if simd != QGEMM_VNNI and simd != QGEMM_AVX2:
        raise ValueError(f"groupwise: `simd` must be {QGEMM_AVX2} (AVX2) or {QGEMM_VNNI} "
                         f"(VNNI), got {simd}")
    if simd == QGEMM_VNNI and not HAS_VNNI or simd == QGEMM_AVX2 and not HAS_AVX2:
        raise ValueError(f"groupwise: `simd` {simd} needs a SIMD path this CPU lacks")
    if G not in (4, 8):
        raise ValueError(f"groupwise: `G` must be 4 or 8, got {G}")
    if C % G or out.shape[3] != C or colsum.shape[0] != C:
        raise ValueError(f"groupwise: {C} input channels (a multiple of {G}), as many "
                         f"outputs and column sums, got {out.shape[3]} and "
                         f"{colsum.shape[0]}")
    if wpk.shape[0] != (C + blk - 1) // blk * T * G * blk * elem:
        raise ValueError(f"`wpk` must hold {(C + blk - 1) // blk * T * G * blk * elem} "
                         f"bytes, got {wpk.shape[0]}")
    if N == 0 or C == 0 or Ho == 0 or Wo == 0:
        return
    if N * C * Ho * Wo * T * G < SERIAL_BYTES:
        num_threads = nt = 1
    rows_in = _dw_rows_in(Ho, Wp, C, sh, span, nt)
    # per thread: the padded input rows (and tmp rows for a narrow NCHW input);
    # shared: the tap offsets and the zero weight zero points of the epilogue
    cdef intp_t o_tmp = _up64(rows_in * Wp * C)
    cdef intp_t o_off = o_tmp + (_up64(rows_in * W * C) if nchw else 0)
    cdef intp_t o_zw = _up64(o_off + T * sizeof(long))
    cdef size_t got = 0
    cdef uint8_t *scratch = _scratch_take(o_zw + C * sizeof(int32_t), &got)
    cdef long *off = <long *> (scratch + o_off)
    cdef int32_t *zw = <int32_t *> (scratch + o_zw)
    _tap_offsets(off, T, kw, dh, dw, Wp * C, C)
    for c in range(C):
        zw[c] = 0
    e = qgemm_epilogue_u8(&colsum[0], zw, a_zp,
                          &bias_q[0] if bias_q.shape[0] > 0 else NULL, &mult[0], out_zp,
                          lo, hi)
    job.simd, job.x, job.H, job.W, job.C, job.ph, job.pw, job.Wp = \
        simd, &x[0, 0, 0, 0], H, W, C, ph, pw, Wp
    job.nchw, job.G, job.wpk8, job.off, job.T, job.fill = nchw, G, &wpk[0], off, T, a_zp
    job.m = 1
    job.Ho, job.Wo, job.sh, job.sw, job.span, job.e, job.out = \
        Ho, Wo, sh, sw, span, &e, &out[0, 0, 0, 0]
    job.bufs, job.tmps = scratch, scratch + o_tmp
    try:
        with nogil:
            _dw_run_bands(&job, N, num_threads, N * C * Ho * Wo * T * G)
    finally:
        _scratch_give(scratch, got)


cdef void _tap_offsets(long *off, intp_t T, int kw, int dh, int dw, intp_t row,
                       intp_t C) noexcept nogil:
    """off[t] = (ky dh row + kx dw C) for the taps t = ky kw + kx of a window over
    padded rows of ``row`` bytes, ``C`` bytes a pixel (depthwise_generic.h)."""
    cdef intp_t t
    for t in range(T):
        off[t] = (t // kw) * dh * row + (t % kw) * dw * C


cdef void _dw_run(uint8_t *bufs, uint8_t *tmps, int32_t *accp, int16_t *wpkp,
                  int32_t *wsum, const long *off, intp_t n_wpk, intp_t blk, int simd,
                  const uint8_t[:, :, :, ::1] x, const int32_t[:, ::1] wz, int sh,
                  int sw, int ph, int pw, intp_t span, uint8_t a_zp,
                  const float32_t[::1] bias_q, const float32_t[::1] mult, int32_t out_zp,
                  int32_t lo, int32_t hi, uint8_t[:, :, :, ::1] out, intp_t N, intp_t H,
                  intp_t W, intp_t C, intp_t m, intp_t Ho, intp_t Wo, intp_t Wp, bint nchw,
                  int num_threads) noexcept:
    """depthwise on its scratch: sum_t wz and the packed taps, then the bands."""
    cdef DwJob job
    cdef qgemm_epilogue e
    cdef intp_t t, c, T = wz.shape[0]
    with nogil:
        memset(wpkp, 0, n_wpk * sizeof(int16_t))
        for c in range(C):
            wsum[c] = 0
            wsum[C + c] = 0                  # the zero weight zero points
        for t in range(T):
            for c in range(C):
                wsum[c] += wz[t, c]
        qlearn_qconv_dw_pack(&wz[0, 0], C, T, blk, wpkp)
    # raw = acc - Za * sum_t wz[t, c]: the column sums of a GEMM with Zw = 0
    e = qgemm_epilogue_u8(wsum, wsum + C, a_zp,
                          &bias_q[0] if bias_q.shape[0] > 0 else NULL, &mult[0],
                          out_zp, lo, hi)
    job.simd, job.x, job.H, job.W, job.C, job.ph, job.pw, job.Wp = \
        simd, &x[0, 0, 0, 0], H, W, C, ph, pw, Wp
    job.nchw, job.m = nchw, m
    job.wz, job.wpk, job.off, job.T, job.fill = &wz[0, 0], wpkp, off, T, a_zp
    job.Ho, job.Wo, job.sh, job.sw, job.span, job.e, job.out = \
        Ho, Wo, sh, sw, span, &e, &out[0, 0, 0, 0]
    job.bufs, job.tmps, job.acc = bufs, tmps, accp
    job.G = 0
    with nogil:
        _dw_run_bands(&job, N, num_threads, N * Ho * Wo * C * T)


cdef intp_t _dw_rows_in(intp_t Ho, intp_t Wp, intp_t C, int sh, intp_t span,
                        intp_t nt) noexcept nogil:
    """The input rows of the band buffers of every slot, for the split of any thread
    count up to ``nt`` (the pool chooses alone or in parallel before the bands are
    cut): t buffers of the t-thread bands' input rows."""
    cdef intp_t t, rows_in = 0, band
    for t in range(1, nt + 1):
        band = _dw_band_rows(Ho, Wp, C, sh, span, t)
        rows_in = max(rows_in, t * ((band - 1) * sh + span))
    return rows_in


cdef void _dw_run_bands(DwJob *job, intp_t N, int num_threads, intp_t work) noexcept nogil:
    """Cut the bands for the thread count the pool chooses, and run them."""
    cdef qlearn_pool_plan_t plan
    cdef int nt
    _dw_bands(job, _dw_band_rows(job.Ho, job.Wp, job.C, job.sh, job.span, num_threads))
    nt = pool_plan(&plan, _dw_band, N * job.nbands, num_threads, work)
    if nt != num_threads:
        _dw_bands(job, _dw_band_rows(job.Ho, job.Wp, job.C, job.sh, job.span, nt))
    pool_run_plan(&plan, _dw_band, job, N * job.nbands)


cdef intp_t _dw_band_rows(intp_t Ho, intp_t Wp, intp_t C, int sh, intp_t span,
                          int nt) noexcept nogil:
    """Output rows per band of the depthwise kernel on ``nt`` threads: DW_UNITS_PER_THREAD
    bands per thread when there are several, else as many rows as fit the buffer; a band
    of b rows reads (b - 1) sh + span input rows, span = (kh - 1) dh + 1.

    A band copies span - sh rows besides its own b sh, so on several threads it has at
    least 2 (span - sh) / sh rows: those halo rows are then at most half of the copy.
    (Four 2-row bands per thread of a 5x5 window's 14x14 output copied 3 times the
    input rows a single band does: the 240-channel benchmark case ran 1.03 times as
    fast on 2 threads as on 1, and 1.13-1.30 with 8-row bands; 96 channels at 28x28,
    0.99 and 1.35-1.40; a 3x3 window, 256 channels at 14x14, 1.00 and 1.22.  Zen 5,
    VNNI, quiet machine, 1 and 2 threads alternating in 20 ms blocks, medians.)"""
    cdef intp_t band = (Ho + DW_UNITS_PER_THREAD * nt - 1) // (DW_UNITS_PER_THREAD * nt) \
        if nt > 1 else Ho
    if nt > 1:
        band = max(band, (2 * (span - sh) + sh - 1) // sh)
    return max(1, min(band, (DW_BUF_BYTES // (Wp * C) - span) // sh + 1))


cdef void _dw_bands(DwJob *job, intp_t band) noexcept nogil:
    job.band, job.nbands = band, (job.Ho + band - 1) // band
    job.rows_in = (band - 1) * job.sh + job.span


cdef enum:
    # Bands of output rows per thread of the depthwise kernel, and the most bytes of
    # padded input rows a band's buffer holds (it stays in L2 while the band runs).
    DW_UNITS_PER_THREAD = 4
    DW_BUF_BYTES = 1 << 17


cdef struct DwJob:
    int simd, sh, sw
    bint nchw                # x is (N, C, H, W): rows are transposed into the buffer
    intp_t m                 # channels-last x has C / m channels, each repeated m times
    uint8_t fill             # Za: the padding
    const uint8_t *x
    intp_t H, W, C, ph, pw, Wp, Ho, Wo, band, nbands, rows_in, span, T
    const int32_t *wz
    const int16_t *wpk
    int G                    # > 0: groupwise, G channels per group (weights wpk8:
                             # int8, or int16 on AVX2)
    const int8_t *wpk8
    const long *off          # the T tap offsets in the padded rows
    const qgemm_epilogue *e
    uint8_t *bufs            # slot s: bufs + s * rows_in * Wp * C
    uint8_t *tmps            # slot s: tmps + s * rows_in * W * C (nchw)
    int32_t *acc             # slot s: acc + s * Wo * C
    uint8_t *out


cdef void _dw_band(void *ctx, long u, int slot) noexcept nogil:
    """Band u (image n, output rows oy0 .. oy1-1) of depthwise on slot's buffers: the
    input rows it reads, padded with Za, then each output row."""
    cdef DwJob *j = <DwJob *> ctx
    cdef intp_t n = u // j.nbands, oy0 = (u % j.nbands) * j.band
    cdef intp_t oy1 = min(j.Ho, oy0 + j.band), oy
    cdef intp_t iy0 = oy0 * j.sh - j.ph, rows = (oy1 - 1 - oy0) * j.sh + j.span
    cdef intp_t y0 = max(iy0, 0), ye = min(iy0 + rows, j.H)
    cdef uint8_t *buf = j.bufs + slot * j.rows_in * j.Wp * j.C
    if j.nchw:
        qlearn_qconv_nchw_band_padded(j.x + n * j.C * j.H * j.W, j.H, j.W, 0, j.C, iy0,
                                      rows, j.pw, j.Wp, j.fill,
                                      j.tmps + slot * j.rows_in * j.W * j.C, buf)
    else:
        qlearn_qconv_pad_band_repeat(j.x + (n * j.H + y0) * j.W * (j.C // j.m), y0 - iy0,
                                     max(ye - y0, 0), rows, j.W, j.C // j.m, j.m, j.pw,
                                     j.Wp, j.fill, buf)
    for oy in range(oy0, oy1):
        if j.G:
            qlearn_qconv_gw_row(j.simd, buf, j.Wp, j.C, j.G, j.wpk8, j.off, j.T, oy - oy0,
                                j.Wo, j.sh, j.sw, j.e, j.out + (n * j.Ho + oy) * j.Wo * j.C,
                                j.C)
        else:
            qlearn_qconv_dw_row(j.simd, buf, j.Wp, j.C, j.wz, j.wpk, j.off, j.T, oy - oy0,
                                j.Wo, j.sh, j.sw, j.acc + slot * j.Wo * j.C, j.e,
                                j.out + (n * j.Ho + oy) * j.Wo * j.C, j.C)


# ---- quantized average pooling ---------------------------------------------------------
cdef struct AvgPoolJob:
    const uint8_t *x         # (P, D, H, W) planes
    uint8_t *y               # (P, OD, OH, OW)
    intp_t D, H, W, OD, OH, OW
    const intp_t *bounds[3]  # per axis, per output o: lo, hi (inside the input), pool
    float32_t z
    int32_t zi
    bint include_pad
    float32_t inv_override   # 1 / divisor_override in float32, when has_override
    bint has_override
    int64_t *scratch         # slot s: scratch + s * per, the window sums of one plane
    intp_t per


cdef void _avg_pool_plane(void *ctx, long u, int slot) noexcept nogil:
    """Plane u of avg_pool_u8.  The window sums are separable (integers: exact in any
    order; int64, as a window may hold more than 2**31 / 255 elements): along W into
    s1 (D, H, OW), along H into s2 (D, OH, OW), then along D per output row; the last
    two passes add whole rows (vectorized).  s1 and s2 are the slot's scratch."""
    cdef AvgPoolJob *j = <AvgPoolJob *> ctx
    cdef const uint8_t *x = j.x + u * j.D * j.H * j.W
    cdef uint8_t *y = j.y + u * j.OD * j.OH * j.OW
    cdef intp_t D = j.D, H = j.H, W = j.W, OD = j.OD, OH = j.OH, OW = j.OW
    cdef const intp_t *bd = j.bounds[0]
    cdef const intp_t *bh = j.bounds[1]
    cdef const intp_t *bw = j.bounds[2]
    cdef intp_t od, oh, ow, d, h, w, n
    cdef int64_t t
    cdef const uint8_t *row
    cdef int64_t *s1 = j.scratch + slot * j.per
    cdef int64_t *s2 = s1 + D * H * OW
    cdef int64_t *acc
    cdef int64_t *o1
    for d in range(D):
        for h in range(H):
            row = x + (d * H + h) * W
            o1 = s1 + (d * H + h) * OW
            for ow in range(OW):
                t = 0
                for w in range(bw[3 * ow], bw[3 * ow + 1]):
                    t += row[w]
                o1[ow] = t
    for d in range(D):
        for oh in range(OH):
            acc = s2 + (d * OH + oh) * OW
            memset(acc, 0, OW * sizeof(int64_t))
            for h in range(bh[3 * oh], bh[3 * oh + 1]):
                _add_row(acc, s1 + (d * H + h) * OW, OW)
    acc = s2 + D * OH * OW          # one output row's sums
    for od in range(OD):
        for oh in range(OH):
            memset(acc, 0, OW * sizeof(int64_t))
            for d in range(bd[3 * od], bd[3 * od + 1]):
                _add_row(acc, s2 + (d * OH + oh) * OW, OW)
            n = (bd[3 * od + 1] - bd[3 * od]) * (bh[3 * oh + 1] - bh[3 * oh])
            for ow in range(OW):
                y[(od * OH + oh) * OW + ow] = _avg_out(
                    j, acc[ow], n * (bw[3 * ow + 1] - bw[3 * ow]),
                    bd[3 * od + 2] * bh[3 * oh + 2] * bw[3 * ow + 2])


cdef inline void _add_row(int64_t *acc, const int64_t *r, intp_t n) noexcept nogil:
    cdef intp_t i
    for i in range(n):
        acc[i] += r[i]


cdef inline uint8_t _avg_out(const AvgPoolJob *j, int64_t total, intp_t n,
                             intp_t pool) noexcept nogil:
    """One output from its window sum: float32 steps in PyTorch's order (the zero point
    added before the rounding), then clamped to [0, 255]."""
    cdef float32_t inv, v
    if j.has_override:
        inv = j.inv_override
    elif j.include_pad:
        inv = (<float32_t> 1) / <float32_t> pool
    else:
        inv = (<float32_t> 1) / <float32_t> n
    v = nearbyint32((<float32_t> total - <float32_t> (j.zi * n)) * inv + j.z)
    return <uint8_t> (0 if v < 0 else 255 if v > 255 else v)


def avg_pool_u8(const uint8_t[:, :, :, ::1] x,   # IN  (P, D, H, W): planes of the input
                uint8_t[:, :, :, ::1] y,         # OUT (P, OD, OH, OW)
                tuple kernel, tuple stride, tuple padding, int32_t zero_point,
                bint count_include_pad, divisor_override, int num_threads):
    """y[p, od, oh, ow] := the quantized mean of x[p] over window (od, oh, ow): see
    ``qlearn.reference.avg_pool_u8_ref`` for the equation.  One work unit a plane.

    Window o along an axis of length L starts at o s - p and is cut at L + p (as
    PyTorch's): its elements are [max(start, 0), min(stop, L)), its size with the
    padding stop - start; these bounds are formed here, once for every plane."""
    cdef AvgPoolJob job
    cdef int a
    cdef intp_t[:, ::1] bnd
    if y.size == 0:
        return
    sizes = (x.shape[1], x.shape[2], x.shape[3])
    outs = (y.shape[1], y.shape[2], y.shape[3])
    tables = []                     # kept alive until the job is done
    for a in range(3):
        start = np.arange(outs[a], dtype=np.intp) * stride[a] - padding[a]
        stop = np.minimum(start + kernel[a], sizes[a] + padding[a])
        bnd = np.ascontiguousarray(np.stack([np.maximum(start, 0),
                                             np.minimum(stop, sizes[a]), stop - start], 1),
                                   dtype=np.intp)
        tables.append(bnd)
        job.bounds[a] = &bnd[0, 0]
    job.x, job.y = &x[0, 0, 0, 0], &y[0, 0, 0, 0]
    job.D, job.H, job.W = sizes
    job.OD, job.OH, job.OW = outs
    job.zi, job.z = zero_point, <float32_t> zero_point
    job.include_pad = count_include_pad
    job.has_override = divisor_override is not None
    job.inv_override = ((<float32_t> 1) / <float32_t> (<int64_t> divisor_override)
                        if job.has_override else 0)
    cdef long work = y.size * kernel[0] * kernel[1] * kernel[2]
    cdef int nt = max(num_threads, 1)
    job.per = job.D * job.H * job.OW + (job.D * job.OH + 1) * job.OW
    cdef int64_t[::1] scratch = np.empty(nt * job.per, dtype=np.int64)
    job.scratch = &scratch[0]
    with nogil:
        parallel_for(_avg_pool_plane, &job, y.shape[0], nt, work)
