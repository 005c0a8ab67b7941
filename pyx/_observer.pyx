# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""Observer kernels: min/max reductions, the histogram, and HistogramObserver's search.

Arguments are validated by :mod:`qlearn.quantization.observer`, the only caller: arrays
are C-contiguous float32, ranges are finite with ``left <= right``, output arrays have
the right length.  Every parallel kernel splits its input into fixed blocks whose
partial results are combined in block order; min, max and integer counts do not depend
on that order either, so results are identical at any thread count.  Blocks are handed
out dynamically, so that on a busy machine a descheduled thread does not hold up the
others.

``simd`` (a :class:`qlearn.kernels.simd.Simd` value) 0 selects the plain C loops of
``observer_simd.h`` (the reference twins of the SSE2 loops); any other, the SSE2 loops.
"""
import numpy as np

from cython.parallel cimport prange
from libc.math cimport floorf, fmodf, copysignf, log, INFINITY
from libc.stdlib cimport malloc, free

from libc.stdint cimport uint32_t

from _simd cimport QLEARN_SIMD_GENERIC, simd_avx2
from _typedefs cimport float32_t, float64_t, int64_t, intp_t

cdef extern from "observer_simd.h":
    int qlearn_minmax_f32(const float *x, long n, float *mn, float *mx) noexcept nogil
    int qlearn_minmax_f32_ref(const float *x, long n, float *mn, float *mx) noexcept nogil
    int qlearn_minmax_accum_f32(const float *x, long k, float *mn, float *mx) noexcept nogil
    int qlearn_minmax_accum_f32_ref(const float *x, long k, float *mn,
                                    float *mx) noexcept nogil
    void qlearn_histc_f32(const float *x, long n, float left, float right, long nbins,
                          uint32_t *counts) noexcept nogil
    void qlearn_histc_f32_ref(const float *x, long n, float left, float right,
                              long nbins, uint32_t *counts) noexcept nogil

cdef enum:
    # Work is split into blocks of this many elements; below it a kernel runs serially.
    BLOCK = 65536
    # The histogram keeps one partial count array per chunk; at most this many chunks.
    MAX_HIST_CHUNKS = 64


cdef inline bint _generic(int simd) except -1:
    """Whether ``simd`` selects the plain loops (``ValueError`` for a path this CPU lacks)."""
    simd_avx2(simd)
    return simd == QLEARN_SIMD_GENERIC


cdef inline int _minmax_run(const float32_t *x, intp_t n, float32_t *mn, float32_t *mx,
                            bint generic) noexcept nogil:
    if generic:
        return qlearn_minmax_f32_ref(x, n, mn, mx)
    return qlearn_minmax_f32(x, n, mn, mx)


def minmax(const float32_t[::1] x,   # IN  n floats, n >= 1
           int simd, int num_threads):
    """(min, max, has_nan) := (min_i x[i], max_i x[i], any_i isnan(x[i]))  (NaN skipped)"""
    cdef bint generic = _generic(simd)
    cdef intp_t n = x.shape[0], nblocks = (n + BLOCK - 1) // BLOCK, b, start
    cdef float32_t[::1] bmin = np.full(nblocks, np.inf, np.float32)
    cdef float32_t[::1] bmax = np.full(nblocks, -np.inf, np.float32)
    cdef int[::1] bnan = np.zeros(nblocks, np.intc)
    if nblocks <= 1:
        num_threads = 1
    with nogil:
        for b in prange(nblocks, num_threads=num_threads, schedule="dynamic"):
            start = b * BLOCK
            bnan[b] = _minmax_run(&x[start], min(BLOCK, n - start), &bmin[b],
                                  &bmax[b], generic)
    cdef float32_t lo = INFINITY, hi = -INFINITY
    cdef int nan = 0
    for b in range(nblocks):          # combine in block order
        lo = bmin[b] if bmin[b] < lo else lo
        hi = bmax[b] if bmax[b] > hi else hi
        nan |= bnan[b]
    return float(lo), float(hi), bool(nan)


def minmax_per_channel(const float32_t[:, :, ::1] x,   # IN  (outer, C, inner), size > 0
                       float32_t[::1] out_min,          # OUT (C,)
                       float32_t[::1] out_max,          # OUT (C,)
                       int simd, int num_threads):
    """out_min[c] := min_{o,i} x[o, c, i],  out_max[c] := max_{o,i} x[o, c, i]

    Returns True if some element is NaN (NaN are skipped by the reduction).  The work is
    split one of three ways, by shape (any split gives the same result):

    * long rows, many channels: each task owns a block of channels and writes them;
    * long rows, few channels: each task reduces a piece of a row, pieces are combined;
    * short rows (channels last): each task owns a block of columns of the (outer,
      C * inner) matrix and takes element-wise min/max down the rows; with few columns,
      row chunks keep partial results that are combined.
    """
    cdef bint generic = _generic(simd)
    cdef intp_t outer = x.shape[0], C = x.shape[1], inner = x.shape[2]
    cdef intp_t c, o, i, t, k, K, lo_row, hi_row, c0, c1, cols
    cdef intp_t ntasks, per_row, nchunks, rows_per_chunk, task_chunk, cpt
    cdef int nan = 0, failed = 0
    cdef float32_t lo, hi
    cdef float32_t *bmin
    cdef float32_t *bmax
    cdef float32_t[::1] tmin, tmax
    cdef float32_t[:, ::1] pmin, pmax
    cdef int[::1] tnan
    for c in range(C):
        out_min[c] = INFINITY
        out_max[c] = -INFINITY
    if outer * C * inner < BLOCK:
        num_threads = 1
    if inner >= 16 and (num_threads == 1 or C >= 4 * num_threads):
        # Blocks of whole channels per task, written directly (no partial results).
        # Within a task, rows are read in memory order: x[o, c0:c1, :] is contiguous.
        cpt = max(1, BLOCK // inner)
        if num_threads > 1:
            cpt = min(cpt, C // (4 * num_threads))
        ntasks = (C + cpt - 1) // cpt
        tnan = np.zeros(ntasks, np.intc)
        with nogil:
            for t in prange(ntasks, num_threads=num_threads, schedule="dynamic"):
                c0 = t * cpt
                c1 = min(c0 + cpt, C)
                for o in range(outer):
                    for c in range(c0, c1):
                        tnan[t] |= _minmax_run(&x[o, c, 0], inner, &out_min[c],
                                               &out_max[c], generic)
            for t in range(ntasks):
                nan |= tnan[t]
        return bool(nan)
    if inner >= 16:
        # Few channels: split rows into BLOCK-long pieces so that they parallelise,
        # then combine the pieces per channel.
        per_row = (inner + BLOCK - 1) // BLOCK
        ntasks = outer * C * per_row
        task_chunk = max(1, BLOCK // min(inner, BLOCK))   # about BLOCK elements a chunk
        tmin = np.full(ntasks, np.inf, np.float32)
        tmax = np.full(ntasks, -np.inf, np.float32)
        tnan = np.zeros(ntasks, np.intc)
        with nogil:
            for t in prange(ntasks, num_threads=num_threads, schedule="dynamic",
                            chunksize=task_chunk):
                k = (t % per_row) * BLOCK
                c = (t // per_row) % C
                tnan[t] = _minmax_run(&x[(t // per_row) // C, c, k],
                                      min(BLOCK, inner - k), &tmin[t], &tmax[t],
                                      generic)
            for t in range(ntasks):   # task t belongs to channel (t // per_row) % C
                c = (t // per_row) % C
                out_min[c] = tmin[t] if tmin[t] < out_min[c] else out_min[c]
                out_max[c] = tmax[t] if tmax[t] > out_max[c] else out_max[c]
                nan |= tnan[t]
        return bool(nan)
    # Short rows (channels last, e.g. (N, C) activations): x is an (outer, K) matrix.
    K = C * inner
    cpt = max(1, 1024 // inner)                     # channels per column block
    ntasks = (C + cpt - 1) // cpt
    if num_threads == 1 or ntasks >= 2 * num_threads:
        # column blocks: each task runs down all rows of its columns
        tnan = np.zeros(ntasks, np.intc)
        with nogil:
            for t in prange(ntasks, num_threads=num_threads, schedule="dynamic"):
                c0 = t * cpt
                c1 = min(c0 + cpt, C)
                cols = (c1 - c0) * inner
                bmin = <float32_t *> malloc(cols * sizeof(float32_t))
                bmax = <float32_t *> malloc(cols * sizeof(float32_t))
                if bmin == NULL or bmax == NULL:
                    failed += 1
                else:
                    for k in range(cols):
                        bmin[k] = INFINITY
                        bmax[k] = -INFINITY
                    for o in range(outer):
                        if generic:
                            tnan[t] |= qlearn_minmax_accum_f32_ref(&x[o, c0, 0], cols,
                                                                   bmin, bmax)
                        else:
                            tnan[t] |= qlearn_minmax_accum_f32(&x[o, c0, 0], cols,
                                                               bmin, bmax)
                    for c in range(c0, c1):
                        lo = INFINITY
                        hi = -INFINITY
                        for i in range(inner):
                            k = (c - c0) * inner + i
                            lo = bmin[k] if bmin[k] < lo else lo
                            hi = bmax[k] if bmax[k] > hi else hi
                        out_min[c] = lo
                        out_max[c] = hi
                free(bmin)
                free(bmax)
            for t in range(ntasks):
                nan |= tnan[t]
        if failed:
            raise MemoryError("minmax_per_channel: out of memory for a column block")
        return bool(nan)
    # few columns: chunks of rows keep (nchunks, K) partial results, combined after
    rows_per_chunk = max(1, BLOCK // K)
    nchunks = (outer + rows_per_chunk - 1) // rows_per_chunk
    pmin = np.full((nchunks, K), np.inf, np.float32)
    pmax = np.full((nchunks, K), -np.inf, np.float32)
    tnan = np.zeros(nchunks, np.intc)
    with nogil:
        for t in prange(nchunks, num_threads=num_threads, schedule="dynamic"):
            lo_row = t * rows_per_chunk
            hi_row = min(lo_row + rows_per_chunk, outer)
            for o in range(lo_row, hi_row):
                if generic:
                    tnan[t] |= qlearn_minmax_accum_f32_ref(&x[o, 0, 0], K,
                                                           &pmin[t, 0], &pmax[t, 0])
                else:
                    tnan[t] |= qlearn_minmax_accum_f32(&x[o, 0, 0], K, &pmin[t, 0],
                                                       &pmax[t, 0])
        for t in range(nchunks):
            nan |= tnan[t]
            for c in range(C):
                for i in range(inner):
                    k = c * inner + i
                    if pmin[t, k] < out_min[c]:
                        out_min[c] = pmin[t, k]
                    if pmax[t, k] > out_max[c]:
                        out_max[c] = pmax[t, k]
    return bool(nan)


def histc(const float32_t[::1] x,        # IN  n floats
          float32_t left, float32_t right,  # the range, left < right
          int64_t[::1] counts,          # IN/OUT (nbins,): counts are added here
          int simd, int num_threads):
    """counts[b] += #{i : left <= x[i] <= right, bin(x[i]) = b}, as torch.histc:

    bin(x) = min(floor((x - left) * nbins / (right - left)), nbins - 1), in float32;
    in float64 when (right - left) * nbins overflows float32 (see observer_simd.h).
    """
    cdef bint generic = _generic(simd)
    cdef intp_t n = x.shape[0], nbins = counts.shape[0], t, b, k, start, stop
    cdef intp_t nchunks = min(<intp_t> MAX_HIST_CHUNKS, (n + BLOCK - 1) // BLOCK)
    # each chunk counts in uint32: keep chunks below 2**32 elements
    nchunks = max(nchunks, (n + (1 << 31) - 1) // (1 << 31))
    if nchunks < 1:
        return
    cdef intp_t chunk = (n + nchunks - 1) // nchunks
    chunk = (chunk + 3) // 4 * 4   # keep the i % 4 copy assignment of a single pass
    cdef uint32_t[:, ::1] part = np.zeros((nchunks, 4 * nbins), np.uint32)
    if nchunks <= 1:
        num_threads = 1
    with nogil:
        for t in prange(nchunks, num_threads=num_threads, schedule="dynamic"):
            start = t * chunk
            stop = min(start + chunk, n)
            if start < stop:
                if generic:
                    qlearn_histc_f32_ref(&x[start], stop - start, left, right, nbins,
                                         &part[t, 0])
                else:
                    qlearn_histc_f32(&x[start], stop - start, left, right, nbins,
                                     &part[t, 0])
        for t in range(nchunks):        # integer sums: any order gives the same counts
            for k in range(4):
                for b in range(nbins):
                    counts[b] += part[t, k * nbins + b]


# --- HistogramObserver's L2 search (torch/ao/quantization/observer.py) -------------------
# Written in float32 with the operations in the order PyTorch's tensor code applies them,
# so that the same histogram gives the same clipping range.

cdef inline float32_t _div_floor(float32_t a, float32_t b) noexcept nogil:
    """a // b for floats, as Python and torch.div(rounding_mode='floor') compute it."""
    cdef float32_t mod, div, floordiv
    if b == 0:
        return a / b
    mod = fmodf(a, b)
    div = (a - mod) / b
    if mod != 0 and ((b < 0) != (mod < 0)):
        div -= 1
    if div != 0:
        floordiv = floorf(div)
        if div - floordiv > 0.5:
            floordiv += 1
    else:
        floordiv = copysignf(0, a / b)
    return floordiv


cdef inline float32_t _clampf(float32_t v, float32_t lo, float32_t hi) noexcept nogil:
    return lo if v < lo else (hi if v > hi else v)


cdef float64_t _quantization_error(const float32_t *hist, intp_t bins,
                                   float64_t bin_width,
                                   intp_t start_bin, intp_t end_bin,
                                   intp_t dst_nbins) noexcept nogil:
    r"""L2 error of quantizing the histogram with range [start_bin, end_bin + 1) bins.

    Each source bin holds density h / w spread uniformly; a destination bin of width
    D maps its content to its centre, so a piece [a, b] (relative to that centre) costs
    density * (b^3 - a^3) / 3.  Summed over the begin piece, the whole destination bins
    in between and the end piece of every source bin.
    """
    cdef float64_t dst_bin_width = bin_width * (end_bin - start_bin + 1) / dst_nbins
    if dst_bin_width == 0.0:
        return 0.0
    cdef float32_t bw = <float32_t> bin_width, dw = <float32_t> dst_bin_width
    cdef float32_t half = <float32_t> (dst_bin_width / 2)
    cdef float32_t neg_half = <float32_t> (-dst_bin_width / 2)
    cdef float32_t top = <float32_t> (dst_nbins - 1)
    cdef float32_t mid = (half * half * half - neg_half * neg_half * neg_half) / 3
    cdef float32_t src_begin, src_end, dob, doe, dob_center, doe_center, density, db, de
    cdef float32_t norm
    cdef float64_t total = 0.0
    cdef intp_t i
    for i in range(bins):
        src_begin = <float32_t> (i - start_bin) * bw
        src_end = src_begin + bw
        dob = _clampf(_div_floor(src_begin, dw), 0, top)
        dob_center = (dob + 0.5) * dw
        doe = _clampf(_div_floor(src_end, dw), 0, top)
        density = hist[i] / bw
        db = src_begin - dob_center
        norm = density * ((half * half * half - db * db * db) / 3)   # begin piece
        norm = norm + (doe - dob - 1) * (density * mid)              # whole bins between
        doe_center = doe * dw + half
        de = src_end - doe_center
        norm = norm + density * ((de * de * de - neg_half * neg_half * neg_half) / 3)
        total += norm
    return <float32_t> total


def quantization_error(const float32_t[::1] hist, float64_t bin_width,
                       intp_t start_bin, intp_t end_bin, intp_t dst_nbins):
    """The L2 quantization error of clipping the histogram to [start_bin, end_bin]."""
    return _quantization_error(&hist[0], hist.shape[0], bin_width, start_bin, end_bin,
                               dst_nbins)


def non_linear_param_search(const float32_t[::1] hist, float64_t bin_width,
                            intp_t dst_nbins):
    """(start_bin, end_bin) of PyTorch's HistogramObserver._non_linear_param_search.

    Moves the lower or upper quantile bound inward in steps of 1e-5 of the total mass
    (whichever side frees more bins), and stops when the L2 quantization error of the
    clipped range stops decreasing.
    """
    cdef intp_t bins = hist.shape[0], i, lo_bin, hi_bin
    cdef intp_t start_bin = 0, end_bin = bins - 1, next_start_bin, next_end_bin
    cdef float32_t[::1] csum = np.empty(bins, np.float32)
    cdef float64_t acc = 0.0, total, alpha = 0.0, beta = 1.0, stepsize = 1e-5
    cdef float64_t next_alpha, next_beta, norm, norm_min = INFINITY
    cdef float32_t lo_mass, hi_mass
    with nogil:
        for i in range(bins):      # torch.cumsum accumulates in double, stores float32
            acc += hist[i]
            csum[i] = <float32_t> acc
        total = <float32_t> acc
        while alpha < beta:
            next_alpha = alpha + stepsize
            next_beta = beta - stepsize
            lo_mass = <float32_t> (next_alpha * total)
            hi_mass = <float32_t> (next_beta * total)
            lo_bin = start_bin
            hi_bin = end_bin
            while lo_bin < end_bin and csum[lo_bin] < lo_mass:
                lo_bin += 1
            while hi_bin > start_bin and csum[hi_bin] > hi_mass:
                hi_bin -= 1
            next_start_bin = start_bin
            next_end_bin = end_bin
            if (lo_bin - start_bin) > (end_bin - hi_bin):
                next_start_bin = lo_bin
                alpha = next_alpha
            else:
                next_end_bin = hi_bin
                beta = next_beta
            if next_start_bin == start_bin and next_end_bin == end_bin:
                continue
            norm = _quantization_error(&hist[0], bins, bin_width, next_start_bin,
                                       next_end_bin, dst_nbins)
            if norm > norm_min:
                break
            norm_min = norm
            start_bin = next_start_bin
            end_bin = next_end_bin
    return int(start_bin), int(end_bin)


# --- EntropyObserver's KL search (TensorRT's entropy calibration) --------------------------

cdef bint _smooth(const float64_t *v, intp_t n, float64_t eps,
                  float64_t *out) noexcept nogil:
    """out := v with empty bins set to eps and eps * n_zero / n_nonzero taken from the
    others; False if that leaves a bin <= 0 (the candidate is then skipped)."""
    cdef intp_t j, n_zero = 0
    cdef float64_t eps1
    for j in range(n):
        n_zero += v[j] == 0
    if n_zero == n:
        return False
    eps1 = eps * n_zero / (n - n_zero)
    for j in range(n):
        out[j] = eps if v[j] == 0 else v[j] - eps1
        if out[j] <= 0:
            return False
    return True


def entropy_search(const float64_t[::1] hist, intp_t levels, intp_t start):
    """argmin_i KL(P_i || Q_i) over i in [start, bins] (see EntropyObserver).

    P_i: the first i bins, the mass beyond added to bin i - 1.  Q_i: the first i bins
    merged into ``levels`` groups (bin j in group min(j * levels // i, levels - 1)),
    each group's mass spread evenly over its nonzero bins.  Both smoothed (eps 1e-4).
    Returns ``bins`` when no candidate can be evaluated.
    """
    cdef intp_t bins = hist.shape[0], i, j, g
    cdef intp_t best_i = bins
    cdef float64_t best_kl = INFINITY, kl, ps, qs, pj, qj, tail
    cdef float64_t[::1] suffix = np.zeros(bins + 1)
    cdef float64_t[::1] p = np.empty(bins), q = np.empty(bins)
    cdef float64_t[::1] sp = np.empty(bins), sq = np.empty(bins)
    cdef float64_t[::1] mass = np.empty(levels), count = np.empty(levels)
    with nogil:
        for j in range(bins - 1, -1, -1):
            suffix[j] = suffix[j + 1] + hist[j]
        for i in range(max(start, 1), bins + 1):
            for g in range(levels):
                mass[g] = 0
                count[g] = 0
            for j in range(i):
                p[j] = hist[j]
                g = min(j * levels // i, levels - 1)
                mass[g] += hist[j]
                count[g] += hist[j] != 0
            tail = suffix[i]
            p[i - 1] += tail                     # clipped mass lands in the last bin
            for j in range(i):
                g = min(j * levels // i, levels - 1)
                q[j] = mass[g] / count[g] if hist[j] != 0 else 0.0
            if not _smooth(&p[0], i, 1e-4, &sp[0]) or not _smooth(&q[0], i, 1e-4, &sq[0]):
                continue
            ps = 0
            qs = 0
            for j in range(i):
                ps += sp[j]
                qs += sq[j]
            kl = 0
            for j in range(i):
                pj = sp[j] / ps
                qj = sq[j] / qs
                kl += pj * log(pj / qj)
            if kl < best_kl:
                best_kl = kl
                best_i = i
    return int(best_i)


# --- HistogramObserver's re-binning when the range grows ---------------------------------

cdef inline float32_t _linspace_at(float32_t start, float32_t end, float32_t step,
                                   intp_t steps, intp_t i) noexcept nogil:
    """Entry i of torch.linspace(start, end, steps) in float32 (its scalar formula)."""
    if i < steps // 2:
        return start + step * <float32_t> i
    return end - step * <float32_t> (steps - i - 1)


def upscale_histogram(const float64_t[::1] hist,      # IN  (bins,) over [orig_min, orig_max]
                      float32_t orig_min, float32_t orig_max,
                      float32_t update_min, float32_t update_max,
                      intp_t rate,
                      float64_t[::1] out):            # OUT (bins,) over [update_min, update_max]
    """out[b] := sum of hist[k // rate] / rate over the pieces k whose centre falls in new
    bin b (PyTorch's _upscale_histogram: bins * rate equal pieces, centres bucketed into
    the bins of the wider range, clamped to the end bins)."""
    cdef intp_t bins = hist.shape[0], nb = out.shape[0], npieces = bins * rate
    cdef intp_t k, lo, hi, mid_i, b
    cdef float32_t bin_size = (orig_max - orig_min) / <float32_t> npieces
    cdef float32_t half = <float32_t> 0.5 * bin_size
    cdef float32_t ostep = (orig_max - orig_min) / <float32_t> npieces
    cdef float32_t[::1] bounds = np.empty(nb + 1, np.float32)
    cdef float32_t nstep = (update_max - update_min) / <float32_t> nb
    cdef float32_t m
    with nogil:
        for b in range(nb + 1):
            bounds[b] = _linspace_at(update_min, update_max, nstep, nb + 1, b)
        for b in range(nb):
            out[b] = 0
        for k in range(npieces):
            m = _linspace_at(orig_min, orig_max, ostep, npieces + 1, k) + half
            lo = 0                      # upper_bound: first boundary > m
            hi = nb + 1
            while lo < hi:
                mid_i = (lo + hi) // 2
                if bounds[mid_i] <= m:
                    lo = mid_i + 1
                else:
                    hi = mid_i
            b = lo - 1
            b = 0 if b < 0 else (nb - 1 if b > nb - 1 else b)
            out[b] += hist[k // rate] / rate
