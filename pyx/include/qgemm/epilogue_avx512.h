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
 * Where one 16-column accumulator of the tile goes (it started from eq. (4)'s column
 * term, qgemm_vnni_zinit): the row term if any Zw != 0, then
 * eq. (6) (uint8) or eq. (8) (float), the same float operations as the scalar epilogue;
 * columns past N are masked off. */
typedef struct {
    const qgemm_epilogue *e;
    long i0, j0, nc, ldc;        /* first row / column of the tile, its valid columns */
    uint8_t *out_u8;
    float *out_f;
} qgemm_outctx;

/* The columns [j0 + 16 p, j0 + 16 p + 16) of the tile that exist: a mask of nc - 16 p. */
QGEMM_INLINE QGEMM_VNNI_FN __mmask16 qgemm_vnni_colmask(const qgemm_outctx *oc, long p) {
    const long ncols = oc->nc - 16 * p;
    return ncols >= 16 ? (__mmask16)0xFFFF
         : ncols <= 0 ? (__mmask16)0 : (__mmask16)((1u << ncols) - 1u);
}

/* eq. (4)'s column term -Za colsum'[j] of panel p (0 in the columns past N).  The
 * accumulators start from it instead of 0 (int32 arithmetic wraps alike in either
 * order), which takes one subtraction per accumulator out of the epilogue. */
QGEMM_INLINE QGEMM_VNNI_FN __m512i qgemm_vnni_zinit(const qgemm_outctx *oc, long p) {
    const qgemm_epilogue *e = oc->e;
    return _mm512_mullo_epi32(_mm512_set1_epi32(-e->a_zp),
                              _mm512_maskz_loadu_epi32(qgemm_vnni_colmask(oc, p),
                                                       e->colsum + oc->j0 + 16 * p));
}
/* the tile's accumulators, named c<r><p>, each starting from its panel's zinit */
#define QGEMM_VNNI_ZCOLS                                                                 \
    const __m512i z0_ = qgemm_vnni_zinit(oc, 0);                                         \
    const __m512i z1_ = NP > 1 ? qgemm_vnni_zinit(oc, 1) : z0_;                          \
    const __m512i z2_ = NP > 2 ? qgemm_vnni_zinit(oc, 2) : z0_;                          \
    const __m512i z3_ = NP > 3 ? qgemm_vnni_zinit(oc, 3) : z0_;
#define QGEMM_VNNI_INIT(r) __m512i c##r##0 = z0_, c##r##1 = z1_, c##r##2 = z2_, c##r##3 = z3_;
/* The empty asm with a memory clobber makes GCC read oc->e again after the loop instead
 * of keeping e live through it: kept, it took a general register the loop's addresses
 * need (one of them then went to a vector register and came back every iteration, 3 %
 * of the 6x64 tile). */
#define QGEMM_VNNI_INIT_ALL                                                              \
    QGEMM_VNNI_ZCOLS                                                                     \
    QGEMM_VNNI_INIT(0) QGEMM_VNNI_INIT(1) QGEMM_VNNI_INIT(2)                             \
    QGEMM_VNNI_INIT(3) QGEMM_VNNI_INIT(4) QGEMM_VNNI_INIT(5)                             \
    __asm__ __volatile__("" ::: "memory");

/* The per-column constants of one 16-column panel, loaded once per tile and panel (the
 * byte stores of the outputs may alias them, so the compiler could not hoist them). */
typedef struct {
    __mmask16 m;                 /* valid columns */
    long j;                      /* first column */
    __m512i wzp;                 /* Zw[j] */
    __m512 scale, bias;          /* mult[j] / fscale[j], bias_q[j] / fbias[j] */
} qgemm_panel;

QGEMM_INLINE QGEMM_VNNI_FN int qgemm_vnni_panel(long p, const qgemm_outctx *oc,
                                               qgemm_panel *pc) {
    const qgemm_epilogue *e = oc->e;
    if (oc->nc <= 16 * p) return 0;
    pc->m = qgemm_vnni_colmask(oc, p);
    pc->j = oc->j0 + 16 * p;
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
    __m512i raw = acc;                                   /* -Za colsum'[j] included */
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

/* Float output (eq. (8)), panel by panel, row by row: each accumulator is converted
 * once, and is dead after. */
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

/* ---- uint8 output (eq. (6)) row by row: one 64-byte store per row of the tile -------
 * The accumulators already hold -Za colsum'[j] (QGEMM_VNNI_INIT_ALL); the tile's other
 * per-column constants (Zw[j], eq. (6)'s bias_q[j] and mult[j]) are formed once per
 * tile into qgemm_u8cols; each accumulator then takes the float steps of qgemm_vnni_out,
 *     q = cvtps2dq(min(1e9, ((float)(acc [- rowsum[i] Zw[j]]) + bias_q[j]) mult[j]))
 * and a row's (up to) four are narrowed together with saturation: vpackssdw to int16,
 * + Zo (vpaddsw), vpackuswb to [0, 255], one vpermd to undo the packs' 128-bit lanes,
 * then max(lo) and min(hi).  Saturating at 16 bits first gives the same bytes as
 * clamp(q + Zo, lo, hi) in int32 (QGEMM_CLAMP_NOTE: q >= INT32_MIN, 0 <= Zo <= 255,
 * 0 <= lo <= hi <= 255): a q beyond int16 saturates to +-32767/-32768, which stays
 * beyond [0, 255] on the same side after + Zo.
 * Zen 4 runs float add, min and conversions on two of its four vector pipes and
 * multiplies (with vpdpbusd) on the other two: the bias is added as fma(x, 1, bias_q),
 * which rounds x + bias_q once, exactly as vaddps does, on the multiply pipes. */
typedef struct {
    __m512i wzp[4];              /* Zw[j] */
    __m512 bias[4], scale[4];    /* bias_q[j], mult[j] */
    __m512i ozp16;               /* Zo in every int16 */
    __m512i lo8, hi8;            /* lo, hi in every byte */
    __mmask64 m;                 /* valid bytes of a row */
    const int32_t *rowsum;       /* eq. (4)'s rowsum from the tile's first row, or NULL */
    uint8_t *out;                /* the tile's first output byte */
    long ldc;
    int has_bias, clamp_lo, clamp_hi;
} qgemm_u8cols;

QGEMM_INLINE QGEMM_VNNI_FN void qgemm_vnni_u8cols(const qgemm_outctx *oc, const int NP,
                                                 qgemm_u8cols *k) {
    const qgemm_epilogue *e = oc->e;
    for (int p = 0; p < NP; p++) {
        const long j = oc->j0 + 16 * p;
        const __mmask16 m = qgemm_vnni_colmask(oc, p);
        k->wzp[p] = e->rowsum ? _mm512_maskz_loadu_epi32(m, e->wzp + j)
                              : _mm512_setzero_si512();
        k->bias[p] = e->bias_q ? _mm512_maskz_loadu_ps(m, e->bias_q + j)
                               : _mm512_setzero_ps();
        k->scale[p] = _mm512_maskz_loadu_ps(m, e->mult + j);
    }
    k->ozp16 = _mm512_set1_epi16((short)e->out_zp);
    k->lo8 = _mm512_set1_epi8((char)e->lo);
    k->hi8 = _mm512_set1_epi8((char)e->hi);
    k->m = oc->nc >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << oc->nc) - 1);
    k->rowsum = e->rowsum ? e->rowsum + oc->i0 : NULL;
    k->out = oc->out_u8 + oc->i0 * oc->ldc + oc->j0;
    k->ldc = oc->ldc;
    k->has_bias = e->bias_q != NULL;
    k->clamp_lo = e->lo > 0;
    k->clamp_hi = e->hi < 255;
}

QGEMM_INLINE QGEMM_VNNI_FN __m512i qgemm_vnni_u8q(__m512i acc, const qgemm_u8cols *k,
                                                 int p, __m512i rs) {
    __m512i raw = acc;                                   /* -Za colsum'[j] included */
    if (k->rowsum) raw = _mm512_sub_epi32(raw, _mm512_mullo_epi32(rs, k->wzp[p]));
    __m512 x = _mm512_cvtepi32_ps(raw);
    if (k->has_bias) x = _mm512_fmadd_ps(x, _mm512_set1_ps(1.0f), k->bias[p]);
    x = _mm512_mul_ps(x, k->scale[p]);
    x = _mm512_min_ps(_mm512_set1_ps(1e9f), x);            /* see QGEMM_CLAMP_NOTE */
    return _mm512_cvtps_epi32(x);
}

QGEMM_INLINE QGEMM_VNNI_FN void qgemm_vnni_u8row(__m512i q0, __m512i q1, __m512i q2,
                                                __m512i q3, long r, const qgemm_u8cols *k) {
    const __m512i lanes = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7,
                                            11, 15);
    const __m512i w01 = _mm512_adds_epi16(_mm512_packs_epi32(q0, q1), k->ozp16);
    const __m512i w23 = _mm512_adds_epi16(_mm512_packs_epi32(q2, q3), k->ozp16);
    __m512i b = _mm512_permutexvar_epi32(lanes, _mm512_packus_epi16(w01, w23));
    if (k->clamp_lo) b = _mm512_max_epu8(b, k->lo8);
    if (k->clamp_hi) b = _mm512_min_epu8(b, k->hi8);
    _mm512_mask_storeu_epi8(k->out + r * k->ldc, k->m, b);
}

/* Row r of the tile; panels past NP repeat panel 0 (their bytes are masked off). */
#define QGEMM_VNNI_U8_ROW(r)                                                             \
    if (MR > r) {                                                                        \
        const __m512i rs_ = k_.rowsum ? _mm512_set1_epi32(k_.rowsum[r])                  \
                                      : _mm512_setzero_si512();                          \
        const __m512i q0_ = qgemm_vnni_u8q(c##r##0, &k_, 0, rs_);                        \
        const __m512i q1_ = NP > 1 ? qgemm_vnni_u8q(c##r##1, &k_, 1, rs_) : q0_;         \
        const __m512i q2_ = NP > 2 ? qgemm_vnni_u8q(c##r##2, &k_, 2, rs_) : q0_;         \
        const __m512i q3_ = NP > 3 ? qgemm_vnni_u8q(c##r##3, &k_, 3, rs_) : q0_;         \
        qgemm_vnni_u8row(q0_, q1_, q2_, q3_, r, &k_);                                    \
    }
#define QGEMM_VNNI_OUT_ALL                                                               \
    if (oc->out_u8) {                                                                    \
        qgemm_u8cols k_;                                                                 \
        qgemm_vnni_u8cols(oc, NP, &k_);                                                  \
        QGEMM_VNNI_U8_ROW(0) QGEMM_VNNI_U8_ROW(1) QGEMM_VNNI_U8_ROW(2)                   \
        QGEMM_VNNI_U8_ROW(3) QGEMM_VNNI_U8_ROW(4) QGEMM_VNNI_U8_ROW(5)                   \
    } else {                                                                             \
        QGEMM_VNNI_OUT_PANEL(0) QGEMM_VNNI_OUT_PANEL(1) QGEMM_VNNI_OUT_PANEL(2)         \
        QGEMM_VNNI_OUT_PANEL(3)                                                          \
    }
#endif  /* QLEARN_HAVE_X86_SIMD */

#endif
