/* Int8 GEMM dispatch: which micro-kernel computes a tile, chosen by the caller's path.
 *
 *   QGEMM_AVX2        qgemm_u8s8_4x16_avx2.h, vpmaddubsw + vpmaddwd; exact only if
 *                     max(A) <= 127, which the caller checks (qlearn_qgemm_rowsum_max);
 *                     a one-row tile of several panels runs qgemm_u8s8_1x64_avx2.h
 *   QGEMM_AVX2_EXACT  the same tiles with A = lo + 128 hi (eq. (7)), otherwise
 *   QGEMM_VNNI        qgemm_u8s8_6x64_vnni.h, vpdpbusd
 *   QGEMM_GENERIC     no tile here: the caller runs the reference loops
 *
 * For convolution both tiles also have an indirect form (..._indirect.h), whose rows
 * read each tap through a pointer.
 * The epilogue, the packing and the scalar reference are in common.h.
 */
#ifndef QLEARN_QGEMM_DISPATCH_H
#define QLEARN_QGEMM_DISPATCH_H

#include "common.h"
#include "rowsum_avx2.h"
#include "epilogue_avx2.h"
#include "epilogue_avx512.h"
#include "qgemm_u8s8_4x16_avx2.h"
#include "qgemm_u8s8_4x16_avx2_indirect.h"
#include "qgemm_u8s8_1x64_avx2.h"
#include "qgemm_u8s8_6x64_vnni.h"
#include "qgemm_u8s8_6x64_vnni_indirect.h"
#include "peak.h"

static int qlearn_qgemm_rowsum_max(const uint8_t *a, long M, long K, long lda,
                                   int32_t *rowsum, int want_max) {
    if (!rowsum && !want_max) return 0;
#if QLEARN_HAVE_X86_SIMD
    static int has_avx2 = -1;     /* the CPU does not change: ask once */
    if (has_avx2 < 0) has_avx2 = qlearn_cpu_has_avx2();
    if (has_avx2) return qlearn_qgemm_rowsum_max_avx2(a, M, K, lda, rowsum, want_max);
#endif
    return qlearn_qgemm_rowsum_max_generic(a, M, K, lda, rowsum, want_max);
}

/* Tile shapes of each path: rows per tile (MR) and panels of 16 columns per tile (NP):
 * qgemm_u8s8_6x64_vnni is 6 x 4, qgemm_u8s8_4x16_avx2 4 x 1 (its indirect form takes
 * any number of panels per call, one after the other: the convolution passes all).
 * On AVX2, qlearn_qgemm_tile also takes np > 1: a one-row tile then runs
 * qgemm_u8s8_1x64_avx2 on up to 4 panels at once (the GEMM driver passes 4 when
 * M = 1), any other the 4x16 tile panel after panel. */
static inline int qgemm_tile_mr(int path) { return path == QGEMM_VNNI ? 6 : 4; }
static inline int qgemm_tile_np(int path) { return path == QGEMM_VNNI ? 4 : 1; }

/* After a tile, back in code compiled for baseline x86-64: clear the upper halves of
 * the vector registers.  GCC leaves them dirty on some returns of the target("avx2")
 * epilogues (their vzeroupper is missing on the main path), and the first legacy-SSE
 * instruction of the caller then stalled: 6-7 % of a 256 x 1024 x 1024 AVX2 GEMM on an
 * AMD Zen 3 sat on it (sampled with perf).  Any CPU with an AVX path has vzeroupper. */
#define QGEMM_ZEROUPPER() __asm__ volatile("vzeroupper")

/* Compute and write one output tile: rows [i0, i0+mr), panels [p0, p0+np).
 * packed: the whole packed weight; N, Kg: problem sizes.  Exactly one of out_u8 /
 * out_f is non-NULL.  Returns nothing; every cell of the tile is written. */
static void qlearn_qgemm_tile(int path, const uint8_t *a, long lda, long i0, long mr,
                              const int8_t *packed, long N, long Kg, long p0, long np,
                              const qgemm_epilogue *e, uint8_t *out_u8, float *out_f,
                              long ldc) {
#if QLEARN_HAVE_X86_SIMD
    long panel_stride = Kg * 64;
    const uint8_t *arow = a + i0 * lda;
    const int8_t *bp = packed + p0 * panel_stride;
    long j0 = p0 * QGEMM_NR;
    long nc = np * QGEMM_NR;
    if (j0 + nc > N) nc = N - j0;
    if (path == QGEMM_VNNI) {
        /* the epilogue runs on the accumulator registers: no tile round trip */
        const qgemm_outctx oc = {e, i0, j0, nc, ldc, out_u8, out_f};
        if (mr == 6 && np == 4 && Kg >= QGEMM_VNNI_PF_MIN_KG)   /* QGEMM_VNNI_PF_NOTE */
            qgemm_u8s8_6x64_vnni_pf(arow, lda, bp, Kg, panel_stride, &oc);
        else
            QGEMM_U8S8_6X64_VNNI[mr - 1][np - 1](arow, lda, bp, Kg, panel_stride, &oc);
    } else if (mr == 1 && np > 1) {
        /* AVX2, one row: up to 4 panels at once (four streams of the weight) */
        for (long p = 0; p < np; p += 4) {
            long npp = np - p < 4 ? np - p : 4;
            long jc = j0 + p * QGEMM_NR;
            long ncp = N - jc < npp * QGEMM_NR ? N - jc : npp * QGEMM_NR;
            const qgemm_avx2_outctx o = {e, i0, jc, ncp, ldc, out_u8, out_f};
            if (npp == 1)
                QGEMM_U8S8_4X16_AVX2[path == QGEMM_AVX2_EXACT][0](
                    arow, lda, bp + p * panel_stride, Kg, &o);
            else
                QGEMM_U8S8_1X64_AVX2[path == QGEMM_AVX2_EXACT][npp - 2](
                    arow, bp + p * panel_stride, Kg, panel_stride, &o);
        }
    } else {
        /* AVX2: np panels one after the other, each finished by its kernel */
        for (long p = 0; p < np; p++) {
            long jc = j0 + p * QGEMM_NR;
            long ncp = N - jc < QGEMM_NR ? N - jc : QGEMM_NR;
            const qgemm_avx2_outctx o = {e, i0, jc, ncp, ldc, out_u8, out_f};
            QGEMM_U8S8_4X16_AVX2[path == QGEMM_AVX2_EXACT][mr - 1](
                arow, lda, bp + p * panel_stride, Kg, &o);
        }
    }
    QGEMM_ZEROUPPER();
#else
    (void)path; (void)a; (void)lda; (void)i0; (void)mr; (void)packed; (void)N; (void)Kg;
    (void)p0; (void)np; (void)e; (void)out_u8; (void)out_f; (void)ldc;
#endif
}

/* Rows [i0, i1) of panels [p0, p0+np): row tiles of mr_max rows (the last one shorter)
 * down one panel block, whose weight stays in L1; the GEMM and the im2col convolution
 * drivers share it. */
static void qlearn_qgemm_rows(int path, const uint8_t *a, long lda, long i0, long i1,
                              long mr_max, const int8_t *packed, long N, long Kg, long p0,
                              long np, const qgemm_epilogue *e, uint8_t *out_u8,
                              float *out_f, long ldc) {
    for (; i0 < i1; i0 += mr_max)
        qlearn_qgemm_tile(path, a, lda, i0, i1 - i0 < mr_max ? i1 - i0 : mr_max, packed,
                          N, Kg, p0, np, e, out_u8, out_f, ldc);
}

/* One indirect tile: rows [i0, i0+mr) of the output (their patch pointers at
 * ptrs[r * T + t], r < mr), panels [p0, p0+np), on path VNNI (qgemm_u8s8_6x64_vnni_
 * indirect, np <= 4) or AVX2 / AVX2_EXACT (qgemm_u8s8_4x16_avx2_indirect, any np: the
 * panels one after the other in one call, sharing the rows' pointers).  Same epilogue
 * as a GEMM tile. */
static void qlearn_qgemm_tile_indirect(int path, const uint8_t *const *ptrs, long T,
                                       long gpt, long i0, long mr, const int8_t *packed,
                                       long N, long Kg, long p0, long np,
                                       const qgemm_epilogue *e, uint8_t *out_u8, long ldc) {
#if QLEARN_HAVE_X86_SIMD
    long panel_stride = Kg * 64;
    long j0 = p0 * QGEMM_NR, nc = np * QGEMM_NR;
    if (j0 + nc > N) nc = N - j0;
    if (path == QGEMM_VNNI) {
        const qgemm_outctx oc = {e, i0, j0, nc, ldc, out_u8, NULL};
        if (mr == 6 && np == 4 && Kg >= QGEMM_VNNI_PF_MIN_KG)   /* QGEMM_VNNI_PF_NOTE */
            qgemm_u8s8_6x64_vnni_indirect_pf(ptrs, T, gpt, packed + p0 * panel_stride,
                                             panel_stride, &oc);
        else
            QGEMM_U8S8_6X64_VNNI_INDIRECT[mr - 1][np - 1](ptrs, T, gpt,
                                                          packed + p0 * panel_stride,
                                                          panel_stride, &oc);
        QGEMM_ZEROUPPER();
        return;
    }
    const qgemm_avx2_outctx o = {e, i0, j0, nc, ldc, out_u8, NULL};
    QGEMM_U8S8_4X16_AVX2_INDIRECT[path == QGEMM_AVX2_EXACT][mr - 1](
        ptrs, T, gpt, packed + p0 * panel_stride, panel_stride, np, &o);
    QGEMM_ZEROUPPER();
#else
    (void)path; (void)ptrs; (void)T; (void)gpt; (void)i0; (void)mr; (void)packed; (void)N;
    (void)Kg; (void)p0; (void)np; (void)e; (void)out_u8; (void)ldc;
#endif
}

#endif
