/* Int8 GEMM, the parts every ISA shares: the epilogue, the packed weight, the row sums.
 *
 * C[i, j] = sum_k (A[i, k] - Za) (W[j, k] - Zw[j])                       eq. (3) of int8.rst
 *         = sum_k A W  - Za colsum'[j]  - Zw[j] rowsum[i]                 eq. (4)
 * with colsum'[j] = sum_k W[j, k] - K Zw[j] (computed when the weight is packed) and
 * rowsum[i] = sum_k A[i, k] (computed once per call).  The int32 tile is then
 * requantized (eq. (6), FBGEMM's ReQuantizeOutput, float32):
 *     y = clamp(nearbyint(((float)C + bias_q[j]) * mult[j]) + Zo, lo, 255)
 * or converted to float for dynamic quantization (eq. (8)):
 *     y = (float)C * scale[j] + bias[j]    (then max(y, 0) with fused ReLU).
 * The scalar epilogue below is the reference every SIMD epilogue matches bit for bit.
 *
 * Packed weight layout (shared by every ISA, eq. (5)): the N output columns are cut in
 * panels of 16; K is cut in groups of 4 (zero padded).  Panel p, group g is 64 bytes:
 *     byte 4*c + t  =  W[16 p + c, 4 g + t]      (c < 16 columns, t < 4 depth)
 * so one 512-bit register (or two 256-bit ones) holds 16 columns x 4 depth, which is
 * what vpdpbusd / vpmaddubsw consume against the broadcast A[i, 4g : 4g + 4].
 *
 * A is read in rows of 4*Kg bytes (Kg = ceil(K/4)); the caller guarantees that much is
 * readable.  The padded weights are zero, so whatever sits in A's padding contributes 0.
 */
#ifndef QLEARN_QGEMM_COMMON_H
#define QLEARN_QGEMM_COMMON_H

#include <stdint.h>
#include <string.h>
#include <math.h>
#include "qlearn_cpu.h"

/* The micro-kernel a tile runs on (see dispatch.h): the SIMD paths of qlearn_cpu.h, plus
 * AVX2_EXACT, the AVX2 kernel's exact 8-bit variant (not a SIMD path: AVX2 switches to it
 * for a block with activations > 127). */
enum { QGEMM_GENERIC = QLEARN_SIMD_GENERIC, QGEMM_AVX2 = QLEARN_SIMD_AVX2,
       QGEMM_VNNI = QLEARN_SIMD_VNNI, QGEMM_AVX2_EXACT = 3 };
enum { QGEMM_NR = 16 };          /* columns per packed panel */
enum { QGEMM_MAX_TILE = 6 * 4 * QGEMM_NR };   /* int32 cells in the largest tile */

/* Everything the epilogue needs, per output column j (arrays of length N).  Built by
 * qgemm_epilogue_u8 or qgemm_epilogue_f32 only; the driver sets rowsum per call. */
typedef struct {
    const int32_t *colsum;   /* colsum'[j] = sum_k W[j,k] - K Zw[j]                    */
    const int32_t *wzp;      /* Zw[j]                                                  */
    const int32_t *rowsum;   /* rowsum[i] = sum_k A[i,k] (NULL when every Zw is 0)    */
    int32_t a_zp;            /* Za                                                     */
    /* requantized output (uint8) */
    const float *bias_q;     /* bias[j] / (Sa Sw[j]) as FBGEMM forms it, or NULL       */
    const float *mult;       /* Sa Sw[j] / So                                          */
    int32_t out_zp, lo, hi;  /* Zo, clamp range ([Zo, 255] with fused ReLU)           */
    /* float output (dynamic quantization) */
    const float *fscale;     /* Sa Sw[j]                                               */
    const float *fbias;      /* bias[j] or NULL                                        */
    int relu;
} qgemm_epilogue;

/* eq. (6): uint8 output, y = clamp(nearbyint((C + bias_q[j]) mult[j]) + Zo, lo, hi). */
static inline qgemm_epilogue qgemm_epilogue_u8(const int32_t *colsum, const int32_t *wzp,
                                               int32_t a_zp, const float *bias_q,
                                               const float *mult, int32_t out_zp,
                                               int32_t lo, int32_t hi) {
    qgemm_epilogue e;
    e.colsum = colsum; e.wzp = wzp; e.rowsum = NULL; e.a_zp = a_zp;
    e.bias_q = bias_q; e.mult = mult; e.out_zp = out_zp; e.lo = lo; e.hi = hi;
    e.fscale = NULL; e.fbias = NULL; e.relu = 0;
    return e;
}

/* eq. (8): float output, y = C fscale[j] + fbias[j], then max(y, 0) if relu. */
static inline qgemm_epilogue qgemm_epilogue_f32(const int32_t *colsum, const int32_t *wzp,
                                                int32_t a_zp, const float *fscale,
                                                const float *fbias, int relu) {
    qgemm_epilogue e;
    e.colsum = colsum; e.wzp = wzp; e.rowsum = NULL; e.a_zp = a_zp;
    e.bias_q = NULL; e.mult = NULL; e.out_zp = 0; e.lo = 0; e.hi = 255;
    e.fscale = fscale; e.fbias = fbias; e.relu = relu;
    return e;
}

/* ---- packing (plain C, once per weight) ----------------------------------------------- */
/* w: N x K int8 row-major (PyTorch's weight layout).  out: ceil(N/16) * Kg * 64 bytes. */
static void qlearn_qgemm_pack(const int8_t *w, long N, long K, int8_t *out) {
    long Kg = (K + 3) / 4, P = (N + QGEMM_NR - 1) / QGEMM_NR;
    memset(out, 0, (size_t)(P * Kg * 64));
    for (long j = 0; j < N; j++) {
        long p = j / QGEMM_NR, c = j % QGEMM_NR;
        for (long k = 0; k < K; k++)
            out[(p * Kg + k / 4) * 64 + 4 * c + (k % 4)] = w[j * K + k];
    }
}

/* ---- one pass over A: row sums (if rowsum != NULL) and the largest value (if want_max) */
static int qlearn_qgemm_rowsum_max_generic(const uint8_t *a, long M, long K, long lda,
                                           int32_t *rowsum, int want_max) {
    int amax = 0;
    for (long i = 0; i < M; i++) {
        const uint8_t *r = a + i * lda;
        int32_t s = 0;
        uint8_t m = 0;
        if (rowsum) for (long k = 0; k < K; k++) s += r[k];
        if (want_max) for (long k = 0; k < K; k++) m = r[k] > m ? r[k] : m;
        if (rowsum) rowsum[i] = s;
        amax = m > amax ? m : amax;
    }
    return amax;
}

/* ---- epilogue: int32 tile -> output (scalar; the reference the SIMD ones match) ---- */
static inline int32_t qgemm_raw(int32_t acc, long i, long j, const qgemm_epilogue *e) {
    /* eq. (4): fold the zero-point terms in (int32, exact) */
    int32_t raw = acc - e->a_zp * e->colsum[j];
    if (e->rowsum) raw -= e->wzp[j] * e->rowsum[i];
    return raw;
}

static inline uint8_t qgemm_requant_one(int32_t raw, long j, const qgemm_epilogue *e) {
    /* eq. (6): FBGEMM's float32 requantization, round half to even */
    float x = (float)raw;
    if (e->bias_q) x = x + e->bias_q[j];
    x = x * e->mult[j];
    x = fminf(fmaxf(x, -1e9f), 1e9f);   /* keep the int conversion defined */
    int32_t q = (int32_t)nearbyintf(x) + e->out_zp;
    return (uint8_t)(q < e->lo ? e->lo : (q > e->hi ? e->hi : q));
}

static inline float qgemm_float_one(int32_t raw, long j, const qgemm_epilogue *e) {
    /* eq. (8): dynamic quantization's float output */
    float y = (float)raw * e->fscale[j];
    if (e->fbias) y = y + e->fbias[j];
    return (e->relu && y < 0.0f) ? 0.0f : y;
}

/* QGEMM_CLAMP_NOTE.  The SIMD epilogues compute the same integers as qgemm_requant_one
 * with two fewer operations.  (1) The scalar clamp of x to [-1e9, 1e9] keeps C's float
 * to int conversion defined; vcvtps2dq is defined everywhere (x < -2^31, -inf and NaN
 * give INT32_MIN), so only the upper bound is kept, as min(1e9, x), which returns x
 * when x is NaN: any x < -1e9 or NaN then gives at most -1e9 + Zo, and the scalar path
 * -1e9 + Zo, both clamped to lo (lo >= 0, 0 <= Zo <= 255: INT32_MIN + Zo cannot wrap).
 * (2) After max(q, lo) with lo >= 0, the unsigned saturating narrowing to bytes
 * (vpmovusdb, packus) is min(q, 255): the min with hi is needed only when hi < 255. */

/* Write rows [i0, i0+mr) x cols [j0, j0+nc) from the tile (row stride ldt). */
static void qgemm_epilogue_scalar(const int32_t *tile, long ldt, long i0, long mr, long j0,
                                  long nc, const qgemm_epilogue *e, uint8_t *out_u8,
                                  float *out_f, long ldc) {
    for (long r = 0; r < mr; r++)
        for (long c = 0; c < nc; c++) {
            int32_t raw = qgemm_raw(tile[r * ldt + c], i0 + r, j0 + c, e);
            if (out_u8) out_u8[(i0 + r) * ldc + j0 + c] = qgemm_requant_one(raw, j0 + c, e);
            else out_f[(i0 + r) * ldc + j0 + c] = qgemm_float_one(raw, j0 + c, e);
        }
}

/* Four activation bytes as one int32, for a broadcast (any alignment). */
static inline __attribute__((always_inline)) int32_t qgemm_load4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

#if QLEARN_HAVE_X86_SIMD
#include <immintrin.h>
#define QGEMM_AVX2_FN __attribute__((target("avx2,fma")))
#define QGEMM_VNNI_FN __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")))
#define QGEMM_INLINE static inline __attribute__((always_inline))
#endif

#endif
