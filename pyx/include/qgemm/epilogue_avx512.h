/* AVX-512 epilogues: eqs. (4), (6), (8), 16 columns at a time, the same float operations
 * as qgemm_epilogue_scalar (bit-exact).  qgemm_epilogue_avx512 reads an int32 tile in
 * memory (the depthwise kernel's rows); qgemm_vnni_out requantizes one accumulator
 * register of a VNNI tile (QGEMM_VNNI_OUT_ALL: the whole MR x NP tile, panel by panel). */
#ifndef QLEARN_QGEMM_EPILOGUE_AVX512_H
#define QLEARN_QGEMM_EPILOGUE_AVX512_H

#include "common.h"
#include "epilogue_avx2.h"

#if QLEARN_HAVE_X86_SIMD
/* ---- AVX-512 epilogue (VNNI paths): 16 columns at a time, the same float operations as
 * the scalar one; vpmovusdb packs the clamped int32 to bytes. */
QGEMM_VNNI_FN static void qgemm_epilogue_avx512(
        const int32_t *tile, long ldt, long i0, long mr, long j0, long nc,
        const qgemm_epilogue *e, uint8_t *out_u8, float *out_f, long ldc) {
    const __m512i za = _mm512_set1_epi32(e->a_zp);
    const __m512 hi_f = _mm512_set1_ps(1e9f);
    const __m512i ozp = _mm512_set1_epi32(e->out_zp);
    const __m512i lo = _mm512_set1_epi32(e->lo), hi = _mm512_set1_epi32(e->hi);
    long c16 = nc & ~15L;
    for (long c = 0; c < c16; c += 16) {
        long j = j0 + c;
        const __m512i zcol = _mm512_mullo_epi32(za, _mm512_loadu_si512(e->colsum + j));
        const __m512i wzp = e->rowsum ? _mm512_loadu_si512(e->wzp + j)
                                      : _mm512_setzero_si512();
        if (out_u8) {
            const __m512 bq = e->bias_q ? _mm512_loadu_ps(e->bias_q + j)
                                        : _mm512_setzero_ps();
            const __m512 m = _mm512_loadu_ps(e->mult + j);
            for (long r = 0; r < mr; r++) {
                __m512i raw = _mm512_sub_epi32(
                    _mm512_loadu_si512(tile + r * ldt + c), zcol);
                if (e->rowsum)
                    raw = _mm512_sub_epi32(raw, _mm512_mullo_epi32(
                        _mm512_set1_epi32(e->rowsum[i0 + r]), wzp));
                __m512 x = _mm512_cvtepi32_ps(raw);
                if (e->bias_q) x = _mm512_add_ps(x, bq);
                x = _mm512_mul_ps(x, m);
                x = _mm512_min_ps(hi_f, x);                 /* see QGEMM_CLAMP_NOTE */
                __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(x), ozp);
                q = _mm512_max_epi32(q, lo);
                if (e->hi < 255) q = _mm512_min_epi32(q, hi);
                _mm_storeu_si128((__m128i *)(out_u8 + (i0 + r) * ldc + j),
                                 _mm512_cvtusepi32_epi8(q));
            }
        } else {
            const __m512 fs = _mm512_loadu_ps(e->fscale + j);
            const __m512 fb = e->fbias ? _mm512_loadu_ps(e->fbias + j) : _mm512_setzero_ps();
            for (long r = 0; r < mr; r++) {
                __m512i raw = _mm512_sub_epi32(
                    _mm512_loadu_si512(tile + r * ldt + c), zcol);
                if (e->rowsum)
                    raw = _mm512_sub_epi32(raw, _mm512_mullo_epi32(
                        _mm512_set1_epi32(e->rowsum[i0 + r]), wzp));
                __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(raw), fs);
                if (e->fbias) y = _mm512_add_ps(y, fb);
                if (e->relu) y = _mm512_max_ps(y, _mm512_setzero_ps());
                _mm512_storeu_ps(out_f + (i0 + r) * ldc + j, y);
            }
        }
    }
    if (c16 < nc)
        qgemm_epilogue_avx2(tile + c16, ldt, i0, mr, j0 + c16, nc - c16, e, out_u8, out_f,
                            ldc);
}

/* ---- VNNI epilogue straight from the accumulator registers ----------------------------
 * Where one 16-column accumulator of the tile goes: eq. (4)'s zero-point terms, then
 * eq. (6) (uint8) or eq. (8) (float), the same float operations as the scalar epilogue;
 * columns past N are masked off. */
typedef struct {
    const qgemm_epilogue *e;
    long i0, j0, nc, ldc;        /* first row / column of the tile, its valid columns */
    uint8_t *out_u8;
    float *out_f;
} qgemm_outctx;

/* The per-column constants of one 16-column panel, loaded once per tile and panel (the
 * byte stores of the outputs may alias them, so the compiler could not hoist them). */
typedef struct {
    __mmask16 m;                 /* valid columns */
    long j;                      /* first column */
    __m512i zcol, wzp;           /* Za colsum'[j], Zw[j] */
    __m512 scale, bias;          /* mult[j] / fscale[j], bias_q[j] / fbias[j] */
} qgemm_panel;

QGEMM_INLINE QGEMM_VNNI_FN int qgemm_vnni_panel(long p, const qgemm_outctx *oc,
                                               qgemm_panel *pc) {
    const qgemm_epilogue *e = oc->e;
    long ncols = oc->nc - 16 * p;
    if (ncols <= 0) return 0;
    pc->m = ncols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << ncols) - 1u);
    pc->j = oc->j0 + 16 * p;
    pc->zcol = _mm512_mullo_epi32(_mm512_set1_epi32(e->a_zp),
                                  _mm512_maskz_loadu_epi32(pc->m, e->colsum + pc->j));
    pc->wzp = e->rowsum ? _mm512_maskz_loadu_epi32(pc->m, e->wzp + pc->j)
                        : _mm512_setzero_si512();
    const float *sc = oc->out_u8 ? e->mult : e->fscale;
    const float *bi = oc->out_u8 ? e->bias_q : e->fbias;
    pc->scale = _mm512_maskz_loadu_ps(pc->m, sc + pc->j);
    pc->bias = bi ? _mm512_maskz_loadu_ps(pc->m, bi + pc->j) : _mm512_setzero_ps();
    return 1;
}

QGEMM_INLINE QGEMM_VNNI_FN void qgemm_vnni_out(__m512i acc, long r, const qgemm_panel *pc,
                                              const qgemm_outctx *oc) {
    const qgemm_epilogue *e = oc->e;
    long i = oc->i0 + r;
    __m512i raw = _mm512_sub_epi32(acc, pc->zcol);
    if (e->rowsum)
        raw = _mm512_sub_epi32(raw, _mm512_mullo_epi32(_mm512_set1_epi32(e->rowsum[i]),
                                                       pc->wzp));
    __m512 x = _mm512_cvtepi32_ps(raw);
    if (oc->out_u8) {
        if (e->bias_q) x = _mm512_add_ps(x, pc->bias);
        x = _mm512_mul_ps(x, pc->scale);
        x = _mm512_min_ps(_mm512_set1_ps(1e9f), x);        /* see QGEMM_CLAMP_NOTE */
        __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(x), _mm512_set1_epi32(e->out_zp));
        q = _mm512_max_epi32(q, _mm512_set1_epi32(e->lo));
        if (e->hi < 255) q = _mm512_min_epi32(q, _mm512_set1_epi32(e->hi));
        _mm512_mask_cvtusepi32_storeu_epi8(oc->out_u8 + i * oc->ldc + pc->j, pc->m, q);
    } else {
        __m512 y = _mm512_mul_ps(x, pc->scale);
        if (e->fbias) y = _mm512_add_ps(y, pc->bias);
        if (e->relu) y = _mm512_max_ps(y, _mm512_setzero_ps());
        _mm512_mask_storeu_ps(oc->out_f + i * oc->ldc + pc->j, pc->m, y);
    }
}

/* Panel by panel, row by row: each accumulator is requantized once, and is dead after. */
#define QGEMM_VNNI_OUT_PANEL(p)                                                          \
    if (NP > p) {                                                                        \
        qgemm_panel pc_;                                                                 \
        if (qgemm_vnni_panel(p, oc, &pc_)) {                                             \
            if (MR > 0) qgemm_vnni_out(c0##p, 0, &pc_, oc);                              \
            if (MR > 1) qgemm_vnni_out(c1##p, 1, &pc_, oc);                              \
            if (MR > 2) qgemm_vnni_out(c2##p, 2, &pc_, oc);                              \
            if (MR > 3) qgemm_vnni_out(c3##p, 3, &pc_, oc);                              \
            if (MR > 4) qgemm_vnni_out(c4##p, 4, &pc_, oc);                              \
            if (MR > 5) qgemm_vnni_out(c5##p, 5, &pc_, oc);                              \
        }                                                                                \
    }
#define QGEMM_VNNI_OUT_ALL                                                               \
    QGEMM_VNNI_OUT_PANEL(0) QGEMM_VNNI_OUT_PANEL(1) QGEMM_VNNI_OUT_PANEL(2)             \
    QGEMM_VNNI_OUT_PANEL(3)
#endif  /* QLEARN_HAVE_X86_SIMD */

#endif
