/* Grouped int8 convolution with G = 4 or 8 input and as many output channels per
 * group, direct, AVX2 (groupwise_avx512.h has the VNNI kernel and the equation).
 *
 * vpmaddubsw would saturate on 8-bit activations, so the 16 input channels of one pixel
 * are widened to int16 (one vpmovzxbw) and multiplied with vpmaddwd, which is exact:
 * |x w| <= 255 * 128 and a pair's sum fits int32.  Dword lane l of the product with
 * weight vector j of a tap holds channels 2l, 2l+1 of the 16, of group 2l / G:
 *     acc_j[l] += x[p + off_t, 2l] w[G g + j, 2l % G, t] + (the same for 2l + 1)
 * (g: the group of lane l), so a group's output j is the sum of its G / 2 lanes of
 * acc_j.  vphaddd adds neighbouring lanes; the unpacks and one 128-bit permute that
 * follow put the 16 outputs in channel order, and the epilogue (eqs. (4), (6), the
 * 4x16 GEMM tile's) subtracts Za colsum (the padding of the band holds Za) and
 * requantizes them in registers.
 *
 * Weights (qlearn.kernels.int8.pack_groupwise with the AVX2 layout): per block of
 * 16 / G groups, per tap t and output j, 16 int16: element G l + c =
 * w[G (16 / G b + l) + j, c, t], zero past the last group. */
#ifndef QLEARN_QCONV_GROUPWISE_AVX2_H
#define QLEARN_QCONV_GROUPWISE_AVX2_H

#include <stdint.h>
#include "../qgemm/common.h"
#include "../qgemm/epilogue_avx2.h"

#if QLEARN_HAVE_X86_SIMD
/* The 16 outputs j of the block's 16 / G groups in channel order (r[0]: channels 0-7,
 * r[1]: 8-15), from the G accumulators. */
QGEMM_INLINE QGEMM_AVX2_FN void qconv_gw_order_avx2(const __m256i *acc, const int G,
                                                    __m256i *r) {
    if (G == 4) {
        /* 128-bit lane L of acc_j: groups 2L (dwords 0, 1) and 2L+1 (2, 3) */
        const __m256i h01 = _mm256_hadd_epi32(acc[0], acc[1]);  /* g0j0 g1j0 g0j1 g1j1 */
        const __m256i h23 = _mm256_hadd_epi32(acc[2], acc[3]);  /* g0j2 g1j2 g0j3 g1j3 */
        const __m256i lo = _mm256_unpacklo_epi32(h01, h23);     /* g0j0 g0j2 g1j0 g1j2 */
        const __m256i hi = _mm256_unpackhi_epi32(h01, h23);     /* g0j1 g0j3 g1j1 g1j3 */
        const __m256i a = _mm256_unpacklo_epi32(lo, hi);        /* g0j0 .. g0j3 */
        const __m256i b = _mm256_unpackhi_epi32(lo, hi);        /* g1j0 .. g1j3 */
        r[0] = _mm256_permute2x128_si256(a, b, 0x20);
        r[1] = _mm256_permute2x128_si256(a, b, 0x31);
    } else {
        /* 128-bit lane L of acc_j: group L, its 8 channels in the 4 dwords */
        const __m256i q0 = _mm256_hadd_epi32(_mm256_hadd_epi32(acc[0], acc[1]),
                                             _mm256_hadd_epi32(acc[2], acc[3]));
        const __m256i q1 = _mm256_hadd_epi32(_mm256_hadd_epi32(acc[4], acc[5]),
                                             _mm256_hadd_epi32(acc[6], acc[7]));
        r[0] = _mm256_permute2x128_si256(q0, q1, 0x20);         /* group 0: j0 .. j7 */
        r[1] = _mm256_permute2x128_si256(q0, q1, 0x31);         /* group 1 */
    }
}

/* A mask of 8 dwords, set in lanes i < n (for vpmaskmovd). */
QGEMM_INLINE QGEMM_AVX2_FN __m256i qconv_gw_mask_avx2(long n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx);
}

/* A block's epilogue constants (eqs. (4), (6)): -Za colsum for its two halves of 8
 * channels, and their bias and multipliers. */
typedef struct {
    __m256i zc0, zc1;
    qgemm_avx2_cols k0, k1;
} qconv_gw_cols_avx2;

/* P output pixels, ps bytes apart in the band, of the 16-channel block at xb, of which
 * nc (a multiple of 4) are channels, requantized into out (pixel stride ldc) at the
 * block's channel cb.  A full block's epilogue runs in registers (k); a last block of
 * nc < 16 channels goes through qgemm_epilogue_avx2 on its sums. */
QGEMM_INLINE QGEMM_AVX2_FN void qconv_gw_block_avx2(const uint8_t *xb, long ps, long nc,
                                                    const __m256i *wq, const long *off,
                                                    int T, const int G, const int P,
                                                    const qconv_gw_cols_avx2 *k,
                                                    const qgemm_epilogue *e, long cb,
                                                    uint8_t *out, long ldc) {
    __m256i acc[2][8], q[2][2];
    const __m128i mx = _mm256_castsi256_si128(qconv_gw_mask_avx2(nc / 4));
    for (int p = 0; p < P; p++)
        for (int j = 0; j < G; j++) acc[p][j] = _mm256_setzero_si256();
    const int full = nc == 16;
    for (int t = 0; t < T; t++) {
        const __m256i *wt = wq + t * G;
        for (int p = 0; p < P; p++) {
            const uint8_t *s = xb + p * ps + off[t];
            const __m256i x = _mm256_cvtepu8_epi16(
                full ? _mm_loadu_si128((const __m128i *)s)
                     : _mm_maskload_epi32((const int *)s, mx));
            for (int j = 0; j < G; j++)
                acc[p][j] = _mm256_add_epi32(acc[p][j],
                                             _mm256_madd_epi16(x, _mm256_loadu_si256(wt + j)));
        }
    }
    for (int p = 0; p < P; p++) {
        __m256i r[2];
        qconv_gw_order_avx2(acc[p], G, r);
        if (nc < 16) {
            int32_t sums[16];
            _mm256_storeu_si256((__m256i *)sums, r[0]);
            _mm256_storeu_si256((__m256i *)(sums + 8), r[1]);
            qgemm_epilogue_avx2(sums, 16, 0, 1, cb, nc, e, out + p * ldc, NULL, 0);
            continue;
        }
        const __m256i zero = _mm256_setzero_si256();
        q[p][0] = qgemm_avx2_requant8(_mm256_add_epi32(r[0], k->zc0), zero, &k->k0, 0);
        q[p][1] = qgemm_avx2_requant8(_mm256_add_epi32(r[1], k->zc1), zero, &k->k1, 0);
    }
    if (nc < 16) return;
    const __m256i zo16 = _mm256_set1_epi16((short)e->out_zp);
    const __m256i lo8 = _mm256_set1_epi8((char)e->lo), hi8 = _mm256_set1_epi8((char)e->hi);
    const int b = P - 1;                   /* one pixel: packed twice, half 0 stored */
    const __m256i v = qgemm_avx2_pack2rows(q[0][0], q[0][1], q[b][0], q[b][1], zo16, lo8,
                                           hi8, e);
    _mm_storeu_si128((__m128i *)(out + cb), _mm256_castsi256_si128(v));
    if (P > 1) _mm_storeu_si128((__m128i *)(out + ldc + cb), _mm256_extracti128_si256(v, 1));
}

QGEMM_INLINE QGEMM_AVX2_FN void qconv_gw_row_avx2_body(const uint8_t *xrow, long C,
                                                       const int16_t *wpk, const long *off,
                                                       int T, const int G, long Wo, int sw,
                                                       const qgemm_epilogue *e,
                                                       uint8_t *out, long ldc) {
    const long ps = sw * C;
    const int P = G == 4 ? 2 : 1;
    for (long cb = 0; cb < C; cb += 16) {
        const long nc = C - cb < 16 ? C - cb : 16;
        const __m256i *wq = (const __m256i *)(wpk + (cb / 16) * T * G * 16);
        qconv_gw_cols_avx2 k = {0};
        if (nc == 16) {
            const __m256i za = _mm256_set1_epi32(-e->a_zp);
            k.zc0 = _mm256_mullo_epi32(za, _mm256_loadu_si256((const __m256i *)(e->colsum + cb)));
            k.zc1 = _mm256_mullo_epi32(za, _mm256_loadu_si256(
                (const __m256i *)(e->colsum + cb + 8)));
            k.k0 = qgemm_avx2_load_cols(e, cb, 0);
            k.k1 = qgemm_avx2_load_cols(e, cb + 8, 0);
        }
        long ox = 0;
        if (nc == 16)         /* the common case: its own instance (nc a constant) */
            for (; ox + P <= Wo; ox += P)
                qconv_gw_block_avx2(xrow + ox * ps + cb, ps, 16, wq, off, T, G, P, &k, e,
                                    cb, out + ox * ldc, ldc);
        for (; ox + P <= Wo; ox += P)
            qconv_gw_block_avx2(xrow + ox * ps + cb, ps, nc, wq, off, T, G, P, &k, e, cb,
                                out + ox * ldc, ldc);
        for (; ox < Wo; ox++)
            qconv_gw_block_avx2(xrow + ox * ps + cb, ps, nc, wq, off, T, G, 1, &k, e, cb,
                                out + ox * ldc, ldc);
    }
}

/* Output row oy of the band (as qconv_gw_row_avx512's) requantized into out (Wo, ldc);
 * 16-channel blocks are the outer loop, so a block's weights stay in L1 along the row. */
QGEMM_AVX2_FN static void qconv_gw_row_avx2(const uint8_t *xp, long Wp, long C, int G,
                                            const int16_t *wpk, const long *off, int T,
                                            long oy, long Wo, int sh, int sw,
                                            const qgemm_epilogue *e, uint8_t *out,
                                            long ldc) {
    const uint8_t *xrow = xp + oy * sh * Wp * C;
    if (T == 9) {
        /* the 3x3 window: its own instance, the tap loop unrolled and the offsets in
         * a local copy (in registers: see qconv_dw_row_avx2) */
        long off9[9];
        for (int t = 0; t < 9; t++) off9[t] = off[t];
        if (G == 4)
            qconv_gw_row_avx2_body(xrow, C, wpk, off9, 9, 4, Wo, sw, e, out, ldc);
        else
            qconv_gw_row_avx2_body(xrow, C, wpk, off9, 9, 8, Wo, sw, e, out, ldc);
    } else if (G == 4)
        qconv_gw_row_avx2_body(xrow, C, wpk, off, T, 4, Wo, sw, e, out, ldc);
    else
        qconv_gw_row_avx2_body(xrow, C, wpk, off, T, 8, Wo, sw, e, out, ldc);
}
#endif  /* QLEARN_HAVE_X86_SIMD */

#endif
