# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""Int8 GEMM: uint8 activations x int8 weights -> int32 -> uint8 (or float32).

The only caller is :mod:`qlearn.nn.quantized.functional`, which validates every argument
(shapes, dtypes, zero points, ``K`` small enough that int32 cannot overflow) before
calling in, so the kernels run with bounds checking off.

Equation numbers refer to ``docs/int8.rst``:

* eq. (3)  ``C[i, j] = sum_k (A[i, k] - Za) (W[j, k] - Zw[j])``, exact in int32;
* eq. (4)  the same sum expanded, ``sum A W - Za colsum'[j] - Zw[j] rowsum[i]``;
* eq. (6)  requantization ``clamp(nearbyint((C + bias_q[j]) * mult[j]) + Zo, lo, hi)``;
* eq. (8)  the float output of dynamic quantization ``C * fscale[j] + fbias[j]``.

Two implementations compute them: :func:`gemm_ref`, a plain loop over the unpacked
weight that reads like eq. (3), and :func:`gemm`, which runs the packed micro-kernels of
``pyx/include/qgemm/`` (``qgemm_u8s8_6x64_vnni``, ``qgemm_u8s8_4x16_avx2``) over output
tiles in parallel.
Both give the same integers, at any thread count.
"""
cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.math cimport nearbyintf, fminf, fmaxf
from libc.stdlib cimport free, malloc

from _parallel cimport pool_plan_t, pool_run_plan_t, pool_run_t, qlearn_pool_plan_t
from _typedefs cimport float32_t, int8_t, int32_t, int64_t, intp_t, uint8_t

from _qgemm_decl cimport (QGEMM_AVX2, QGEMM_AVX2_EXACT, QGEMM_GENERIC, QGEMM_NR,
                          QGEMM_VNNI, qgemm_epilogue, qgemm_epilogue_f32,
                          qgemm_epilogue_u8, qgemm_tile_mr, qgemm_tile_np,
                          qlearn_cpu_has_avx2, qlearn_cpu_has_avx512vnni, qlearn_qgemm_pack,
                          qlearn_qgemm_peak, qlearn_qgemm_rowsum_max, qlearn_qgemm_rows)

#: Columns per packed panel (the micro-kernels' width).
NR = QGEMM_NR
#: Path codes accepted by :func:`gemm`: the SIMD enum of :mod:`qlearn.kernels.simd`
#: (GENERIC 0, AVX2 1, VNNI 2), plus AVX2_EXACT (3), AVX2's exact 8-bit variant.
GENERIC, AVX2, AVX2_EXACT, VNNI = QGEMM_GENERIC, QGEMM_AVX2, QGEMM_AVX2_EXACT, QGEMM_VNNI

cnp.import_array()

from ._openmp import pool_capsule, pool_plan_capsule, pool_run_plan_capsule

# The process's thread pool (pyx/include/qlearn_threadpool.h): the caller claims work
# units too, and returns once every claimed unit is done, never waiting for a worker
# that has not started.
cdef pool_run_t parallel_for = <pool_run_t> PyCapsule_GetPointer(pool_capsule,
                                                                 b"qlearn_pool_run")
cdef pool_plan_t pool_plan = <pool_plan_t> PyCapsule_GetPointer(pool_plan_capsule,
                                                                b"qlearn_pool_plan")
cdef pool_run_plan_t pool_run_plan = <pool_run_plan_t> PyCapsule_GetPointer(
    pool_run_plan_capsule, b"qlearn_pool_run_plan")

cdef enum:
    # Below this many multiply-adds a GEMM runs on one thread: waking a worker costs
    # more than it saves.
    SERIAL_MACS = 1 << 18
    # Work units per thread the GEMM is cut into: enough that a thread that starts late
    # or is preempted leaves its share to the others, few enough that each unit streams
    # a weight panel block for several row tiles.
    UNITS_PER_THREAD = 8
    # Activations larger than this (bytes) do not stay in one core's L2 beside a
    # panel block of the weight: the threads then split the rows (see _gemm_run).
    A_L2_BYTES = 1 << 19


cdef bint HAS_AVX2 = qlearn_cpu_has_avx2()
cdef bint HAS_VNNI = HAS_AVX2 and qlearn_cpu_has_avx512vnni()


cpdef int check_path(int simd) except -1:
    """``simd`` as the GEMM path to run; ``ValueError`` unless this CPU can run it (an
    illegal instruction would kill the interpreter).  :func:`qlearn.kernels.simd.active`
    chooses the path (and honours ``QLEARN_SIMD``); this is only the safety check."""
    if simd == QGEMM_VNNI and not HAS_VNNI:
        raise ValueError("`simd` VNNI needs AVX512-VNNI, which this CPU lacks")
    if simd in (QGEMM_AVX2, QGEMM_AVX2_EXACT) and not HAS_AVX2:
        raise ValueError("`simd` AVX2 needs AVX2, which this CPU lacks")
    if simd not in (QGEMM_AVX2, QGEMM_AVX2_EXACT, QGEMM_VNNI):
        raise ValueError(f"`simd` must be a GEMM path: AVX2 ({QGEMM_AVX2}), AVX2_EXACT "
                         f"({QGEMM_AVX2_EXACT}) or VNNI ({QGEMM_VNNI}), got {simd}")
    return simd


def peak_gops(int path, double seconds=0.2):
    """The int8 peak of one core on ``path`` (:data:`AVX2` or :data:`VNNI`), in GOP/s.

    Runs independent chains of exactly the instructions of the micro-kernel's inner loop
    (``vpmaddubsw`` + ``vpmaddwd`` + ``vpaddd`` on ``ymm`` for AVX2, ``vpdpbusd`` on
    ``zmm`` for VNNI; ``pyx/include/qgemm/peak.h``) for about ``seconds`` on the calling
    thread, and returns the best of many short timings of
    :math:`2 \\cdot \\text{multiply-adds} / \\text{time}`: what a GEMM tile could reach
    with no loads, stores or epilogue.  The time is the thread's CPU time, so that
    other processes taking the core away do not lower the peak (a benchmark's wall-clock
    fraction of it then shows what they cost).  Benchmarks report a kernel's speed as a
    fraction of it.
    """
    import time
    cdef int64_t macs = 0, check = 0
    cdef long steps = 1 << 10
    cdef double dt, best = 0.0, t_end
    if path == QGEMM_AVX2_EXACT:
        path = QGEMM_AVX2
    check_path(path)
    while True:                                 # steps for about 1/50 of the time
        t0 = time.thread_time()
        with nogil:
            check = check + qlearn_qgemm_peak(path, steps, &macs)
        dt = time.thread_time() - t0
        if dt >= seconds / 50 or steps >= (1 << 40):
            break
        steps *= 2
    t_end = time.perf_counter() + seconds
    while True:
        t0 = time.thread_time()
        with nogil:
            check = check + qlearn_qgemm_peak(path, steps, &macs)
        dt = time.thread_time() - t0
        if dt > 0:
            best = max(best, 2.0 * macs / dt / 1e9)
        if time.perf_counter() >= t_end:
            break
    return best if check != 1 else best    # the checksum keeps the chains live


def peak_run(int path, double ops):
    """Run the peak chains of ``path`` (those of :func:`peak_gops`) for at least ``ops``
    operations (2 per multiply-add) on the calling thread; returns the operations done.

    Timed by the caller, alternately with a kernel doing the same number of operations,
    it gives the peak under the conditions the kernel saw, not only at its best moment.
    """
    cdef int64_t macs = 0, per_step, check = 0
    cdef long steps
    if path == QGEMM_AVX2_EXACT:
        path = QGEMM_AVX2
    check_path(path)
    with nogil:
        qlearn_qgemm_peak(path, 1, &per_step)     # multiply-adds of one step
    steps = max(1, <long>(ops / (2.0 * per_step)) + 1)
    with nogil:
        check = qlearn_qgemm_peak(path, steps, &macs)
    return 2 * macs if check != 1 else 2 * macs


def packed_size(intp_t N, intp_t K):
    """Bytes of the packed weight: ``ceil(N/16)`` panels x ``ceil(K/4)`` groups x 64."""
    return ((N + QGEMM_NR - 1) // QGEMM_NR) * ((K + 3) // 4) * 64


def empty_packed(intp_t N, intp_t K):
    """An uninitialized int8 array of :func:`packed_size` ``(N, K)`` bytes that starts on
    a 64-byte boundary, for :func:`pack_weight`.

    NumPy aligns its arrays to 16 bytes only; the VNNI tile loads the packed weight 64
    bytes at a time, and from a 16-byte offset every load straddles two cache lines.  A
    one-row GEMM (1x1024x1024), which streams the weight, then takes about 7 % longer
    (thread CPU time, interleaved); the tiles that reuse the weight barely notice.
    """
    import numpy as np
    size = packed_size(N, K)
    buf = np.empty(size + 63, dtype=np.int8)
    off = -buf.ctypes.data % 64
    return buf[off:off + size]


def pack_weight(const int8_t[:, ::1] w,   # IN  (N, K) int8, PyTorch's layout
                int8_t[::1] out):         # OUT packed_size(N, K) bytes
    """out := w cut in panels of 16 columns x groups of 4 depth (eq. (5)), zero padded"""
    with nogil:
        qlearn_qgemm_pack(&w[0, 0], w.shape[0], w.shape[1], &out[0])


cdef inline uint8_t _requantize(int32_t raw, float32_t bias_q, float32_t mult,
                                int32_t out_zp, int32_t lo, int32_t hi) noexcept nogil:
    """eq. (6): y = clamp(nearbyint((raw + bias_q) * mult) + Zo, lo, hi), in float32"""
    cdef float32_t x = <float32_t> raw
    x = x + bias_q
    x = x * mult
    x = fminf(fmaxf(x, -1e9), 1e9)      # keeps the conversion to int defined
    cdef int32_t q = <int32_t> nearbyintf(x) + out_zp
    return <uint8_t> (lo if q < lo else (hi if q > hi else q))


def gemm_ref(const uint8_t[:, ::1] a,        # IN  (M, >= K) activations
             const int8_t[:, ::1] w,         # IN  (N, K) weights
             const int32_t[::1] wzp,         # IN  (N,) weight zero points Zw[j]
             int32_t a_zp,                   # Za
             const float32_t[::1] bias_q,    # IN  (N,) bias / (Sa Sw[j]) (zeros: none)
             const float32_t[::1] mult,      # IN  (N,) Sa Sw[j] / So
             int32_t out_zp, int32_t lo, int32_t hi,
             uint8_t[:, :] out,              # OUT (M, N)
             int num_threads):
    """out[i, j] := clamp(nearbyint((C[i, j] + bias_q[j]) mult[j]) + Zo, lo, hi),
    C[i, j] = sum_k (a[i, k] - Za)(w[j, k] - Zw[j])

    The reference: eq. (3) as a triple loop, then eq. (6).  No packing, no SIMD.
    """
    cdef RefJob job
    _ref_job(&job, a, w, wzp, a_zp, num_threads)
    job.bias_q, job.mult = &bias_q[0], &mult[0]
    job.out_zp, job.lo, job.hi = out_zp, lo, hi
    job.o8, job.ldc, job.ldcc = &out[0, 0], out.strides[0], out.strides[1]
    with nogil:
        parallel_for(_ref_row, &job, job.M, job.nt, job.M * job.N * job.K)


cdef struct RefJob:
    const uint8_t *a
    const int8_t *w
    const int32_t *wzp
    intp_t M, N, K, lda, ldc, ldcc
    int32_t a_zp, out_zp, lo, hi
    const float32_t *bias_q
    const float32_t *mult
    const float32_t *fscale
    const float32_t *fbias
    bint relu
    uint8_t *o8
    float32_t *of
    int nt


cdef int _ref_job(RefJob *job, const uint8_t[:, ::1] a, const int8_t[:, ::1] w,
                  const int32_t[::1] wzp, int32_t a_zp, int num_threads) except -1:
    job.M, job.N, job.K = a.shape[0], w.shape[0], w.shape[1]
    job.lda = a.shape[1]
    job.a = &a[0, 0] if job.M and job.K else NULL
    job.w = &w[0, 0] if job.N and job.K else NULL
    job.wzp = &wzp[0] if job.N else NULL
    job.a_zp = a_zp
    job.nt = 1 if job.M * job.N * job.K < SERIAL_MACS else num_threads
    return 0


cdef void _ref_row(void *ctx, long i, int slot) noexcept nogil:
    """Row i of the reference GEMM: eq. (3), then eq. (6) or eq. (8)."""
    cdef RefJob *j = <RefJob *> ctx
    cdef intp_t c, k
    cdef int32_t acc
    cdef float32_t y
    for c in range(j.N):
        acc = 0
        for k in range(j.K):
            acc = acc + ((<int32_t> j.a[i * j.lda + k] - j.a_zp)
                         * (<int32_t> j.w[c * j.K + k] - j.wzp[c]))
        if j.o8 != NULL:
            j.o8[i * j.ldc + c * j.ldcc] = _requantize(acc, j.bias_q[c], j.mult[c], j.out_zp,
                                              j.lo, j.hi)
        else:
            y = (<float32_t> acc) * j.fscale[c]
            y = y + j.fbias[c]
            j.of[i * j.ldc + c * j.ldcc] = 0 if (j.relu and y < 0) else y


def gemm_ref_float(const uint8_t[:, ::1] a, const int8_t[:, ::1] w,
                   const int32_t[::1] wzp, int32_t a_zp,
                   const float32_t[::1] fscale,   # IN  (N,) Sa Sw[j]
                   const float32_t[::1] fbias,    # IN  (N,) bias (zeros: none)
                   bint relu,
                   float32_t[:, :] out,           # OUT (M, N) float32
                   int num_threads):
    """out[i, j] := sum_k (a[i,k]-Za)(w[j,k]-Zw[j]) * fscale[j] + fbias[j]  (eq. (8))"""
    cdef RefJob job
    _ref_job(&job, a, w, wzp, a_zp, num_threads)
    job.fscale, job.fbias, job.relu = &fscale[0], &fbias[0], relu
    job.o8, job.of = NULL, &out[0, 0]
    job.ldc = out.strides[0] // sizeof(float32_t)
    job.ldcc = out.strides[1] // sizeof(float32_t)
    with nogil:
        parallel_for(_ref_row, &job, job.M, job.nt, job.M * job.N * job.K)


cdef int _gemm_run(int path, const uint8_t *a, intp_t M, intp_t lda, intp_t K,
                   const int8_t *packed, intp_t N, qgemm_epilogue *e, bint any_wzp,
                   uint8_t *o8, float *of, intp_t ldc, int num_threads) noexcept nogil:
    """The tiled GEMM (eq. (4)) with its epilogue ``e``; returns the path that ran."""
    cdef intp_t Kg = (K + 3) // 4, P = (N + QGEMM_NR - 1) // QGEMM_NR
    cdef intp_t mtiles, ptiles
    cdef int mr_max, np_max, amax, nt
    cdef int32_t *rowsum = NULL
    if any_wzp:
        rowsum = <int32_t *> malloc(M * sizeof(int32_t))
    # row sums only when some Zw != 0 (eq. (4)); the maximum only for AVX2, whose
    # vpmaddubsw is exact only for activations <= 127 (eq. (7))
    amax = qlearn_qgemm_rowsum_max(a, M, K, lda, rowsum, path == QGEMM_AVX2)
    if path == QGEMM_AVX2 and amax > 127:
        path = QGEMM_AVX2_EXACT
    e.rowsum = rowsum
    mr_max = qgemm_tile_mr(path)
    np_max = qgemm_tile_np(path)
    if M == 1 and path != QGEMM_VNNI:
        # a one-row GEMM is bound by reading the weight: AVX2's one-row tile reads four
        # panels at once (qgemm_u8s8_1x64_avx2), as VNNI's does
        np_max = 4
    mtiles = (M + mr_max - 1) // mr_max
    ptiles = (P + np_max - 1) // np_max
    if M * N * K < SERIAL_MACS:
        num_threads = 1
    # A work unit is one panel block (the columns of one tile) x a run of row tiles
    # (_gemm_split).  The pool chooses alone or in parallel first, so that a GEMM it
    # runs alone is split as a 1-thread call (qlearn_pool_plan.h).
    cdef GemmJob job
    cdef qlearn_pool_plan_t plan
    job.path, job.a, job.lda, job.M, job.packed, job.N, job.Kg, job.P = \
        path, a, lda, M, packed, N, Kg, P
    job.mr_max, job.np_max, job.e, job.o8, job.of, job.ldc = mr_max, np_max, e, o8, of, ldc
    _gemm_split(&job, mtiles, ptiles, K, num_threads)
    nt = pool_plan(&plan, _gemm_unit, job.mchunks * ptiles, num_threads, M * N * K)
    if nt != num_threads:
        _gemm_split(&job, mtiles, ptiles, K, nt)
    pool_run_plan(&plan, _gemm_unit, &job, job.mchunks * ptiles)
    free(rowsum)
    return path


cdef struct GemmJob:
    int path, mr_max, np_max
    const uint8_t *a
    intp_t lda, M, N, Kg, P, ldc, tiles_per_unit, mchunks, ptiles
    bint by_rows
    const int8_t *packed
    const qgemm_epilogue *e
    uint8_t *o8
    float *of


cdef void _gemm_split(GemmJob *job, intp_t mtiles, intp_t ptiles, intp_t K,
                     int num_threads) noexcept nogil:
    """Cut the GEMM into work units for ``num_threads`` threads.  Units are numbered so
    that the pool's caller, which claims from the front, and its worker, which claims
    from the back, each compute about half of the output, the same half on every call:

    * usually the threads split N: a unit is every row of one panel block, and each
      thread streams only its half of the weight (an M = 1 or 16 GEMM is bound by
      reading it, and that half stays in the thread's L2 from call to call); runs of
      row tiles are cut only when panel blocks alone are too few for the threads;
    * when the activations are too large to stay in L2 (M K > A_L2_BYTES), a unit
      streaming every row would fetch them again from L3 for each panel block; the
      threads then split M instead: units run over the panel blocks of one run of
      row tiles (``by_rows``), so each thread's rows stay in its L2 and only the weight
      streams.

    Each tile is computed whole by one thread: the result never depends on the split."""
    job.by_rows = 0
    job.tiles_per_unit = mtiles
    if num_threads > 1 and job.M * K > A_L2_BYTES and mtiles >= 2 * num_threads:
        job.by_rows = 1
        job.tiles_per_unit = (mtiles + num_threads - 1) // num_threads
    elif num_threads > 1 and ptiles < UNITS_PER_THREAD * num_threads:
        job.tiles_per_unit = max(1, (mtiles * ptiles) // (UNITS_PER_THREAD * num_threads))
    job.mchunks = (mtiles + job.tiles_per_unit - 1) // job.tiles_per_unit
    job.ptiles = ptiles


cdef void _gemm_unit(void *ctx, long u, int slot) noexcept nogil:
    """Work unit u of _gemm_run: the row tiles of one run in one panel block.  Split by
    columns, units u .. u + mchunks - 1 share a panel block (its weight in cache); split
    by rows (``by_rows``), units u .. u + ptiles - 1 share a run of rows."""
    cdef GemmJob *j = <GemmJob *> ctx
    cdef intp_t pb = u % j.ptiles if j.by_rows else u // j.mchunks
    cdef intp_t mc = u // j.ptiles if j.by_rows else u % j.mchunks
    cdef intp_t p0 = pb * j.np_max
    cdef intp_t i0 = mc * j.tiles_per_unit * j.mr_max
    cdef intp_t i1 = min(j.M, i0 + j.tiles_per_unit * j.mr_max)
    qlearn_qgemm_rows(j.path, j.a, j.lda, i0, i1, j.mr_max, j.packed, j.N, j.Kg, p0,
                      min(j.np_max, j.P - p0), j.e, j.o8, j.of, j.ldc)


cdef class PackedGemm:
    """A packed weight ready for :meth:`requant` / :meth:`to_float` calls.

    Holds the arrays that do not change between calls (packed bytes, ``colsum'``,
    ``Zw``) as typed views, so that a call converts only the per-call arguments.
    """
    cdef const int8_t[::1] packed
    cdef const int32_t[::1] colsum
    cdef const int32_t[::1] wzp
    cdef readonly intp_t N, K
    cdef readonly bint any_wzp

    def __init__(self, const int8_t[::1] packed, const int32_t[::1] colsum,
                 const int32_t[::1] wzp, intp_t N, intp_t K):
        self.packed, self.colsum, self.wzp = packed, colsum, wzp
        self.N, self.K = N, K
        self.any_wzp = any(wzp[j] != 0 for j in range(N))

    def requant(self, int simd,
                cnp.ndarray a,                 # IN  (M, lda) uint8, C-contiguous
                int32_t a_zp,
                cnp.ndarray bias_q,            # IN  (N,) float32, or empty
                cnp.ndarray mult,              # IN  (N,) float32
                int32_t out_zp, int32_t lo, int32_t hi,
                cnp.ndarray out,               # OUT (M, >= N) uint8, unit column stride
                int num_threads):
        """out := eq. (6) of eq. (4); returns the path that ran.

        Arrays are taken as ndarrays and checked with a few flag tests instead of
        acquiring typed memoryviews: this call is on every forward, and for a small
        layer the buffer acquisitions would cost as much as the arithmetic.
        """
        cdef qgemm_epilogue e
        cdef int path = check_path(simd)
        self._check_a(a, "a")
        cdef intp_t M = cnp.PyArray_DIM(a, 0)
        _check_vec(bias_q, cnp.NPY_FLOAT32, self.N, True, "bias_q")
        _check_vec(mult, cnp.NPY_FLOAT32, self.N, False, "mult")
        _check_out(out, cnp.NPY_UINT8, M, self.N, "out")
        if M == 0 or self.N == 0:
            return path
        e = qgemm_epilogue_u8(&self.colsum[0], &self.wzp[0], a_zp,
                              <float *> cnp.PyArray_DATA(bias_q)
                              if cnp.PyArray_DIM(bias_q, 0) else NULL,
                              <float *> cnp.PyArray_DATA(mult), out_zp, lo, hi)
        cdef const uint8_t *pa = <const uint8_t *> cnp.PyArray_DATA(a)
        cdef uint8_t *po = <uint8_t *> cnp.PyArray_DATA(out)
        cdef intp_t lda = cnp.PyArray_DIM(a, 1), ldc = cnp.PyArray_STRIDE(out, 0)
        with nogil:
            path = _gemm_run(path, pa, M, lda, self.K, &self.packed[0], self.N, &e,
                             self.any_wzp, po, NULL, ldc, num_threads)
        return path

    cdef int _check_a(self, cnp.ndarray a, str name) except -1:
        if (cnp.PyArray_TYPE(a) != cnp.NPY_UINT8 or cnp.PyArray_NDIM(a) != 2
                or not cnp.PyArray_IS_C_CONTIGUOUS(a)
                or cnp.PyArray_DIM(a, 1) < 4 * ((self.K + 3) // 4)):
            raise ValueError(f"`{name}` must be a C-contiguous uint8 (M, >= "
                             f"{4 * ((self.K + 3) // 4)}) array")
        return 0

    def to_float(self, int simd,
                 cnp.ndarray a, int32_t a_zp,
                 cnp.ndarray fscale,            # IN  (N,) float32: Sa Sw[j]
                 cnp.ndarray fbias,             # IN  (N,) float32, or empty
                 bint relu,
                 cnp.ndarray out,               # OUT (M, N) float32, C-contiguous
                 int num_threads):
        """out := eq. (8) of eq. (4); returns the path that ran."""
        cdef qgemm_epilogue e
        cdef int path = check_path(simd)
        self._check_a(a, "a")
        cdef intp_t M = cnp.PyArray_DIM(a, 0)
        _check_vec(fscale, cnp.NPY_FLOAT32, self.N, False, "fscale")
        _check_vec(fbias, cnp.NPY_FLOAT32, self.N, True, "fbias")
        _check_out(out, cnp.NPY_FLOAT32, M, self.N, "out")
        if not cnp.PyArray_IS_C_CONTIGUOUS(out) or cnp.PyArray_DIM(out, 1) != self.N:
            raise ValueError(f"`out` must be a C-contiguous float32 ({M}, {self.N}) array")
        if M == 0 or self.N == 0:
            return path
        e = qgemm_epilogue_f32(&self.colsum[0], &self.wzp[0], a_zp,
                               <float *> cnp.PyArray_DATA(fscale),
                               <float *> cnp.PyArray_DATA(fbias)
                               if cnp.PyArray_DIM(fbias, 0) else NULL, relu)
        cdef const uint8_t *pa = <const uint8_t *> cnp.PyArray_DATA(a)
        cdef float *po = <float *> cnp.PyArray_DATA(out)
        cdef intp_t lda = cnp.PyArray_DIM(a, 1)
        with nogil:
            path = _gemm_run(path, pa, M, lda, self.K, &self.packed[0], self.N, &e,
                             self.any_wzp, NULL, po, self.N, num_threads)
        return path


cdef int _check_vec(cnp.ndarray v, int typenum, intp_t n, bint may_be_empty,
                    str name) except -1:
    """A contiguous 1-d array of ``n`` elements of ``typenum`` (or empty, if allowed)."""
    if (cnp.PyArray_TYPE(v) != typenum or cnp.PyArray_NDIM(v) != 1
            or not cnp.PyArray_IS_C_CONTIGUOUS(v)
            or not (cnp.PyArray_DIM(v, 0) == n
                    or (may_be_empty and cnp.PyArray_DIM(v, 0) == 0))):
        raise ValueError(f"`{name}` must be a contiguous 1-d array of {n} elements of the "
                         f"expected dtype")
    return 0


cdef int _check_out(cnp.ndarray o, int typenum, intp_t m, intp_t n, str name) except -1:
    """A 2-d array of ``typenum`` with at least (m, n) and unit column stride."""
    if (cnp.PyArray_TYPE(o) != typenum or cnp.PyArray_NDIM(o) != 2
            or cnp.PyArray_DIM(o, 0) != m or cnp.PyArray_DIM(o, 1) < n
            or (n > 1 and cnp.PyArray_STRIDE(o, 1) != cnp.PyArray_ITEMSIZE(o))
            or not cnp.PyArray_ISWRITEABLE(o)):
        raise ValueError(f"`{name}` must be a writeable ({m}, >= {n}) array of the expected "
                         f"dtype with contiguous rows")
    return 0


def gemm(int simd,
         const uint8_t[:, ::1] a,        # IN  (M, lda) activations, lda >= 4 ceil(K/4)
         intp_t K,
         const int8_t[::1] packed,       # IN  pack_weight(w)
         intp_t N,
         const int32_t[::1] colsum,      # IN  (N,) sum_k w[j, k] - K Zw[j]
         const int32_t[::1] wzp,         # IN  (N,) Zw[j]
         bint any_wzp,                   # some Zw[j] != 0: row sums are needed
         int32_t a_zp,
         const float32_t[::1] bias_q,    # IN  (N,) or empty: no bias
         const float32_t[::1] mult,      # IN  (N,) or empty (float output)
         int32_t out_zp, int32_t lo, int32_t hi,
         const float32_t[::1] fscale,    # IN  (N,) or empty (uint8 output)
         const float32_t[::1] fbias,     # IN  (N,) or empty
         bint relu,
         uint8_t[:, :] out_u8,           # OUT (M, >= N) row stride ldc, or None
         float32_t[:, :] out_f,          # OUT (M, >= N), or None
         int num_threads):
    """out[i, j] := eq. (6) (or eq. (8)) of eq. (4), with the packed micro-kernels.

    ``simd`` is :data:`AVX2` or :data:`VNNI`; :data:`AVX2` switches itself to
    :data:`AVX2_EXACT` when some activation exceeds 127 (vpmaddubsw would saturate).
    Returns the path that ran.  (:class:`PackedGemm` is the same with the weight's
    arrays bound once.)
    """
    cdef intp_t M = a.shape[0]
    cdef qgemm_epilogue e
    cdef uint8_t *o8 = NULL
    cdef float *of = NULL
    cdef intp_t ldc
    cdef int path = check_path(simd)
    if M == 0 or N == 0:
        return path
    if out_u8 is not None:
        e = qgemm_epilogue_u8(&colsum[0], &wzp[0], a_zp,
                              &bias_q[0] if bias_q.shape[0] > 0 else NULL,
                              &mult[0] if mult.shape[0] > 0 else NULL, out_zp, lo, hi)
        o8 = &out_u8[0, 0]
        ldc = out_u8.strides[0]
    else:
        e = qgemm_epilogue_f32(&colsum[0], &wzp[0], a_zp,
                               &fscale[0] if fscale.shape[0] > 0 else NULL,
                               &fbias[0] if fbias.shape[0] > 0 else NULL, relu)
        of = &out_f[0, 0]
        ldc = out_f.strides[0] // 4
    with nogil:
        path = _gemm_run(path, &a[0, 0], M, a.shape[1], K, &packed[0], N, &e, any_wzp,
                         o8, of, ldc, num_threads)
    return path
