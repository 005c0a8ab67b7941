/* The AVX2 epilogue: eqs. (4), (6), (8), 8 columns at a time, the same float operations
 * as qgemm_epilogue_scalar (bit-exact).  Two forms: qgemm_epilogue_avx2 reads an int32
 * tile in memory (any width, uint8 or float output); qgemm_avx2_finish, run by the
 * 4x16 micro-kernels on their accumulator registers, requantizes a full 16-column panel
 * to uint8 there (no tile round trip, the column constants loaded once for all rows)
 * and hands any other tile to qgemm_epilogue_avx2. */
#ifndef QLEARN_QGEMM_EPILOGUE_AVX2_H
#define QLEARN_QGEMM_EPILOGUE_AVX2_H

#include "common.h"

#if QLEARN_HAVE_X86_SIMD
/* ---- AVX2 epilogue: 8 columns at a time, same float operations as the scalar one ----- */
/* Eight columns of one row: acc their int32 sums; cs, wz, bq, m, fs, fb point at the
 * columns' colsum', Zw, bias_q, mult, fscale and fbias (those the output needs); 8
 * bytes or 8 floats are stored at o. */
QGEMM_INLINE QGEMM_AVX2_FN void qgemm_epilogue_avx2_8(
        __m256i acc, __m256i rs, const int32_t *cs, const int32_t *wz, const float *bq,
        const float *m, const float *fs, const float *fb, const qgemm_epilogue *e,
        int to_u8, void *o) {
    __m256i raw = _mm256_sub_epi32(acc, _mm256_mullo_epi32(
        _mm256_set1_epi32(e->a_zp), _mm256_loadu_si256((const __m256i *)cs)));
    if (e->rowsum)
        raw = _mm256_sub_epi32(raw, _mm256_mullo_epi32(
            rs, _mm256_loadu_si256((const __m256i *)wz)));
    __m256 x = _mm256_cvtepi32_ps(raw);
    if (to_u8) {
        if (e->bias_q) x = _mm256_add_ps(x, _mm256_loadu_ps(bq));
        x = _mm256_mul_ps(x, _mm256_loadu_ps(m));
        x = _mm256_min_ps(_mm256_set1_ps(1e9f), x);  /* see QGEMM_CLAMP_NOTE */
        __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(x), _mm256_set1_epi32(e->out_zp));
        q = _mm256_max_epi32(q, _mm256_set1_epi32(e->lo));
        if (e->hi < 255) q = _mm256_min_epi32(q, _mm256_set1_epi32(e->hi));
        /* 8 int32 in [0,255] -> 8 bytes */
        __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q),
                                      _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)o, _mm_packus_epi16(q16, q16));
    } else {
        __m256 y = _mm256_mul_ps(x, _mm256_loadu_ps(fs));
        if (e->fbias) y = _mm256_add_ps(y, _mm256_loadu_ps(fb));
        if (e->relu) y = _mm256_max_ps(y, _mm256_setzero_ps());
        _mm256_storeu_ps((float *)o, y);
    }
}

QGEMM_AVX2_FN static void qgemm_epilogue_avx2(
        const int32_t *tile, long ldt, long i0, long mr, long j0, long nc,
        const qgemm_epilogue *e, uint8_t *out_u8, float *out_f, long ldc) {
    const long c8 = nc & ~7L, nt = nc - c8;
    const int to_u8 = out_u8 != NULL;
    for (long r = 0; r < mr; r++) {
        long i = i0 + r;
        const __m256i rs = _mm256_set1_epi32(e->rowsum ? e->rowsum[i] : 0);
        for (long c = 0; c < c8; c += 8) {
            long j = j0 + c;
            qgemm_epilogue_avx2_8(_mm256_loadu_si256((const __m256i *)(tile + r * ldt + c)),
                                  rs, e->colsum + j, e->wzp + j,
                                  e->bias_q ? e->bias_q + j : NULL,
                                  to_u8 ? e->mult + j : NULL, to_u8 ? NULL : e->fscale + j,
                                  e->fbias ? e->fbias + j : NULL, e, to_u8,
                                  to_u8 ? (void *)(out_u8 + i * ldc + j)
                                        : (void *)(out_f + i * ldc + j));
        }
    }
    if (nt) {
        /* the last nc % 8 columns through the same 8-wide code, on copies padded with
         * zeros (the scalar epilogue's libm fminf / fmaxf / nearbyintf calls took 40 % of
         * a grouped convolution of 4 channels per group on AVX2, 4 columns per GEMM) */
        int32_t cs[8] = {0}, wz[8] = {0}, acc[8] = {0};
        float bq[8] = {0}, m[8] = {0}, fs[8] = {0}, fb[8] = {0}, of[8];
        uint8_t o8[8];
        const long j = j0 + c8;
        for (long c = 0; c < nt; c++) {
            cs[c] = e->colsum[j + c];
            wz[c] = e->wzp[j + c];
            if (e->bias_q) bq[c] = e->bias_q[j + c];
            if (to_u8) m[c] = e->mult[j + c];
            else fs[c] = e->fscale[j + c];
            if (e->fbias) fb[c] = e->fbias[j + c];
        }
        for (long r = 0; r < mr; r++) {
            long i = i0 + r;
            for (long c = 0; c < nt; c++) acc[c] = tile[r * ldt + c8 + c];
            qgemm_epilogue_avx2_8(_mm256_loadu_si256((const __m256i *)acc),
                                  _mm256_set1_epi32(e->rowsum ? e->rowsum[i] : 0), cs, wz,
                                  bq, m, fs, fb, e, to_u8, to_u8 ? (void *)o8 : (void *)of);
            if (to_u8) memcpy(out_u8 + i * ldc + j, o8, (size_t)nt);
            else memcpy(out_f + i * ldc + j, of, (size_t)nt * sizeof(float));
        }
    }
}

/* Where a 4x16 AVX2 tile goes: rows [i0, i0 + MR), columns [j0, j0 + nc), nc <= 16;
 * exactly one of out_u8 / out_f is non-NULL. */
typedef struct {
    const qgemm_epilogue *e;
    long i0, j0, nc, ldc;
    uint8_t *out_u8;
    float *out_f;
} qgemm_avx2_outctx;

/* The register epilogue (qgemm_avx2_finish_u8) takes a full 16-column panel with uint8
 * output; its accumulators start from eq. (4)'s column term -Za colsum'[j] instead of
 * 0 (int32 arithmetic wraps alike in either order), one subtraction per accumulator
 * fewer.  Every other tile starts from 0 and goes through qgemm_epilogue_avx2. */
QGEMM_INLINE QGEMM_AVX2_FN int qgemm_avx2_in_registers(const qgemm_avx2_outctx *o) {
    return o->out_u8 != NULL && o->nc == QGEMM_NR;
}

/* -Za colsum'[j] for the 8 columns from j of a register-epilogue panel, else 0. */
QGEMM_INLINE QGEMM_AVX2_FN __m256i qgemm_avx2_zinit(const qgemm_avx2_outctx *o, int half) {
    if (!qgemm_avx2_in_registers(o)) return _mm256_setzero_si256();
    return _mm256_mullo_epi32(_mm256_set1_epi32(-o->e->a_zp), _mm256_loadu_si256(
        (const __m256i *)(o->e->colsum + o->j0 + 8 * half)));
}

/* The column constants of one panel half (8 columns from j), for qgemm_avx2_requant8. */
typedef struct {
    __m256i wzp;             /* Zw[j] */
    __m256 bias, mult;       /* bias_q[j] (0 if none), mult[j] */
} qgemm_avx2_cols;

QGEMM_INLINE QGEMM_AVX2_FN qgemm_avx2_cols qgemm_avx2_load_cols(const qgemm_epilogue *e,
                                                              long j, const int ROWSUM) {
    qgemm_avx2_cols k;
    k.wzp = ROWSUM ? _mm256_loadu_si256((const __m256i *)(e->wzp + j))
                   : _mm256_setzero_si256();
    k.bias = e->bias_q ? _mm256_loadu_ps(e->bias_q + j) : _mm256_setzero_ps();
    k.mult = _mm256_loadu_ps(e->mult + j);
    return k;
}

/* eqs. (4), (6) on 8 accumulators of row i (-Za colsum'[j] already in), up to the
 * rounding: nearbyint of
 * ((float)raw + bias_q) mult as int32, without Zo (added after the narrowing, see
 * qgemm_avx2_pack2rows).  Adding a zero bias when there is none changes nothing
 * (x + 0.0f == x, and (float)raw is never -0.0).  rs: rowsum[i] broadcast (ROWSUM). */
QGEMM_INLINE QGEMM_AVX2_FN __m256i qgemm_avx2_requant8(__m256i acc, __m256i rs,
                                                     const qgemm_avx2_cols *k,
                                                     const int ROWSUM) {
    __m256i raw = acc;
    if (ROWSUM) raw = _mm256_sub_epi32(raw, _mm256_mullo_epi32(rs, k->wzp));
    __m256 x = _mm256_add_ps(_mm256_cvtepi32_ps(raw), k->bias);
    x = _mm256_mul_ps(x, k->mult);
    x = _mm256_min_ps(_mm256_set1_ps(1e9f), x);         /* see QGEMM_CLAMP_NOTE */
    return _mm256_cvtps_epi32(x);
}

/* Rows a and b of a panel (each as its two 8-column halves of nearbyint values) to 16
 * bytes each, clamp(q + Zo, lo, hi) as the scalar epilogue: the signed-saturating
 * narrowing to int16 and the saturating add of Zo change no value that ends in
 * [0, 255] (|Zo| <= 255, and a saturated value stays beyond the byte range on the same
 * side, as does vcvtps2dq's INT32_MIN), the unsigned-saturating narrowing to bytes
 * is clamp(., 0, 255), and [lo, hi] lies inside [0, 255].  The lanes are then put
 * back in column order. */
QGEMM_INLINE QGEMM_AVX2_FN __m256i qgemm_avx2_pack2rows(__m256i a0, __m256i a1, __m256i b0,
                                                      __m256i b1, __m256i zo16,
                                                      __m256i lo8, __m256i hi8,
                                                      const qgemm_epilogue *e) {
    const __m256i wa = _mm256_adds_epi16(_mm256_packs_epi32(a0, a1), zo16);
    const __m256i wb = _mm256_adds_epi16(_mm256_packs_epi32(b0, b1), zo16);
    __m256i v = _mm256_packus_epi16(wa, wb);     /* a0-3 a8-11 b0-3 b8-11 | a4-7 ... */
    if (e->lo > 0) v = _mm256_max_epu8(v, lo8);  /* the narrowing clamped to [0, 255] */
    if (e->hi < 255) v = _mm256_min_epu8(v, hi8);
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

#define QGEMM_AVX2_FIN_ROW(r)                                                            \
    if (MR > r) {                                                                        \
        const __m256i rs = ROWSUM ? _mm256_set1_epi32(e->rowsum[o->i0 + r])              \
                                  : _mm256_setzero_si256();                              \
        q##r##0 = qgemm_avx2_requant8(c##r##0, rs, &k0, ROWSUM);                         \
        q##r##1 = qgemm_avx2_requant8(c##r##1, rs, &k1, ROWSUM);                         \
    }
#define QGEMM_AVX2_FIN_STORE(r, half)                                                    \
    if (MR > r) _mm_storeu_si128((__m128i *)(out + r * o->ldc),                          \
                                 _mm256_extracti128_si256(v, half));

/* A full 16-column panel of rows r < MR to uint8, in registers (accumulators started
 * from qgemm_avx2_zinit). */
QGEMM_INLINE QGEMM_AVX2_FN void qgemm_avx2_finish_u8(
        __m256i c00, __m256i c01, __m256i c10, __m256i c11, __m256i c20, __m256i c21,
        __m256i c30, __m256i c31, const int MR, const qgemm_avx2_outctx *o,
        const int ROWSUM) {
    const qgemm_epilogue *e = o->e;
    /* the constants first: the byte stores below may alias them */
    const qgemm_avx2_cols k0 = qgemm_avx2_load_cols(e, o->j0, ROWSUM);
    const qgemm_avx2_cols k1 = qgemm_avx2_load_cols(e, o->j0 + 8, ROWSUM);
    const __m256i zo16 = _mm256_set1_epi16((short)e->out_zp);
    const __m256i lo8 = _mm256_set1_epi8((char)e->lo), hi8 = _mm256_set1_epi8((char)e->hi);
    uint8_t *out = o->out_u8 + o->i0 * o->ldc + o->j0;
    __m256i q00 = c00, q01 = c00, q10 = c00, q11 = c00;
    __m256i q20 = c00, q21 = c00, q30 = c00, q31 = c00;
    QGEMM_AVX2_FIN_ROW(0) QGEMM_AVX2_FIN_ROW(1) QGEMM_AVX2_FIN_ROW(2) QGEMM_AVX2_FIN_ROW(3)
    __m256i v = qgemm_avx2_pack2rows(q00, q01, q10, q11, zo16, lo8, hi8, e);
    QGEMM_AVX2_FIN_STORE(0, 0) QGEMM_AVX2_FIN_STORE(1, 1)
    if (MR > 2) {
        v = qgemm_avx2_pack2rows(q20, q21, q30, q31, zo16, lo8, hi8, e);
        QGEMM_AVX2_FIN_STORE(2, 0) QGEMM_AVX2_FIN_STORE(3, 1)
    }
}

/* The end of a 4x16 micro-kernel (rows r < MR, accumulators c<r>0 for columns 0-7 and
 * c<r>1 for 8-15): a full panel with uint8 output is finished in registers, any other
 * tile through memory and qgemm_epilogue_avx2. */
QGEMM_INLINE QGEMM_AVX2_FN void qgemm_avx2_finish(
        __m256i c00, __m256i c01, __m256i c10, __m256i c11, __m256i c20, __m256i c21,
        __m256i c30, __m256i c31, const int MR, const qgemm_avx2_outctx *o) {
    const qgemm_epilogue *e = o->e;
    if (qgemm_avx2_in_registers(o)) {
        if (e->rowsum)
            qgemm_avx2_finish_u8(c00, c01, c10, c11, c20, c21, c30, c31, MR, o, 1);
        else
            qgemm_avx2_finish_u8(c00, c01, c10, c11, c20, c21, c30, c31, MR, o, 0);
        return;
    }
    int32_t tile[4 * QGEMM_NR] __attribute__((aligned(32)));
    _mm256_store_si256((__m256i *)tile, c00);
    _mm256_store_si256((__m256i *)(tile + 8), c01);
    if (MR > 1) {
        _mm256_store_si256((__m256i *)(tile + 16), c10);
        _mm256_store_si256((__m256i *)(tile + 24), c11);
    }
    if (MR > 2) {
        _mm256_store_si256((__m256i *)(tile + 32), c20);
        _mm256_store_si256((__m256i *)(tile + 40), c21);
    }
    if (MR > 3) {
        _mm256_store_si256((__m256i *)(tile + 48), c30);
        _mm256_store_si256((__m256i *)(tile + 56), c31);
    }
    qgemm_epilogue_avx2(tile, QGEMM_NR, o->i0, MR, o->j0, o->nc, e, o->out_u8, o->out_f,
                        o->ldc);
}

/* qgemm_avx2_finish_r<MR>: the same, not inlined, the accumulators passed in ymm0-7.
 * Inlined into qgemm_u8s8_4x16_avx2's loop, the epilogue made GCC 12 copy every
 * accumulator and spill one in each step of it (9 extra instructions per group). */
#define QGEMM_AVX2_FINISH_INST(MR)                                                       \
__attribute__((noinline)) QGEMM_AVX2_FN static void qgemm_avx2_finish_r##MR(             \
        __m256i c00, __m256i c01, __m256i c10, __m256i c11, __m256i c20, __m256i c21,    \
        __m256i c30, __m256i c31, const qgemm_avx2_outctx *o) {                          \
    qgemm_avx2_finish(c00, c01, c10, c11, c20, c21, c30, c31, MR, o); }
QGEMM_AVX2_FINISH_INST(1) QGEMM_AVX2_FINISH_INST(2) QGEMM_AVX2_FINISH_INST(3)
QGEMM_AVX2_FINISH_INST(4)
#define QGEMM_AVX2_FINISH_CALL(MR, o)                                                    \
    do {                                                                                 \
        if (MR == 1) qgemm_avx2_finish_r1(c00, c01, c10, c11, c20, c21, c30, c31, o);    \
        else if (MR == 2) qgemm_avx2_finish_r2(c00, c01, c10, c11, c20, c21, c30, c31, o); \
        else if (MR == 3) qgemm_avx2_finish_r3(c00, c01, c10, c11, c20, c21, c30, c31, o); \
        else qgemm_avx2_finish_r4(c00, c01, c10, c11, c20, c21, c30, c31, o);            \
    } while (0)
#endif  /* QLEARN_HAVE_X86_SIMD */

#endif
