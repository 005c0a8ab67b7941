/* Int8 GEMM micro-kernels: uint8 activations x packed int8 weights -> int32 -> output.
 *
 * C[i, j] = sum_k (A[i, k] - Za) (W[j, k] - Zw[j])                       eq. (3) of int8.rst
 *         = sum_k A W  - Za colsum'[j]  - Zw[j] rowsum[i]                 eq. (4)
 * with colsum'[j] = sum_k W[j, k] - K Zw[j] (computed when the weight is packed) and
 * rowsum[i] = sum_k A[i, k] (computed once per call).  The int32 tile is then
 * requantized (eq. (6), FBGEMM's ReQuantizeOutput, float32):
 *     y = clamp(nearbyint(((float)C + bias_q[j]) * mult[j]) + Zo, lo, 255)
 * or converted to float for dynamic quantization (eq. (8)):
 *     y = (float)C * scale[j] + bias[j]    (then max(y, 0) with fused ReLU).
 *
 * Packed weight layout (shared by every ISA, eq. (5)): the N output columns are cut in
 * panels of 16; K is cut in groups of 4 (zero padded).  Panel p, group g is 64 bytes:
 *     byte 4*c + t  =  W[16 p + c, 4 g + t]      (c < 16 columns, t < 4 depth)
 * so one 512-bit register (or two 256-bit ones) holds 16 columns x 4 depth, which is
 * what vpdpbusd / vpmaddubsw consume against the broadcast A[i, 4g : 4g + 4].
 *
 * A is read in rows of 4*Kg bytes (Kg = ceil(K/4)); the caller guarantees that much is
 * readable.  The padded weights are zero, so whatever sits in A's padding contributes 0.
 *
 * Three fast paths, chosen at run time by the caller:
 *   QGEMM_AVX2       vpmaddubsw + vpmaddwd.  vpmaddubsw adds two u8*s8 products in
 *                    int16 with saturation; exact only if max(A) <= 127 (7-bit
 *                    activations, "reduce_range").  The caller scans A and uses
 *   QGEMM_AVX2_EXACT otherwise: A = lo + 128 hi, lo = A & 127, hi = A >> 7, two
 *                    vpmaddubsw that cannot saturate (eq. (7)).
 *   QGEMM_VNNI       AVX512-VNNI vpdpbusd: four u8*s8 products summed in int32, exact.
 *
 * Tiles: AVX2 4 rows x 16 columns (8 ymm accumulators, stored as an int32 tile, then the
 * AVX2 epilogue); VNNI 6 rows x 64 columns (24 zmm accumulators, requantized straight
 * from the registers by qgemm_vnni_out).  The VNNI kernel also has an *indirect* form
 * for convolution, whose rows read each tap from a pointer (qgemm_tile_vnni_ind_body).
 * Accumulators are named variables instantiated per tile shape by macros: GCC keeps
 * them in registers (an array of vectors made it spill to the stack every iteration).
 */
#ifndef QLEARN_QGEMM_KERNELS_H
#define QLEARN_QGEMM_KERNELS_H

#include <stdint.h>
#include <string.h>
#include <math.h>
#include "qlearn_cpu.h"

/* GEMM paths: the SIMD paths of qlearn_cpu.h, plus AVX2_EXACT, the AVX2 kernel's exact
 * 8-bit variant (not a SIMD path: AVX2 switches to it for a block with activations > 127). */
enum { QGEMM_GENERIC = QLEARN_SIMD_GENERIC, QGEMM_AVX2 = QLEARN_SIMD_AVX2,
       QGEMM_VNNI = QLEARN_SIMD_VNNI, QGEMM_AVX2_EXACT = 3 };
enum { QGEMM_NR = 16 };          /* columns per packed panel */
enum { QGEMM_MAX_TILE = 6 * 4 * QGEMM_NR };   /* int32 cells in the largest tile */

/* Everything the epilogue needs, per output column j (arrays of length N). */
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

#if QLEARN_HAVE_X86_SIMD
#include <immintrin.h>
/* vpsadbw against zero sums 8 bytes into a 64-bit lane; vpmaxub keeps the maximum. */
__attribute__((target("avx2,fma"))) static int qlearn_qgemm_rowsum_max_avx2(
        const uint8_t *a, long M, long K, long lda, int32_t *rowsum, int want_max) {
    const __m256i zero = _mm256_setzero_si256();
    __m256i vmax = zero;
    int amax = 0;
    long K32 = K & ~31L;
    for (long i = 0; i < M; i++) {
        const uint8_t *r = a + i * lda;
        __m256i vs = zero;
        for (long k = 0; k < K32; k += 32) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(r + k));
            if (rowsum) vs = _mm256_add_epi64(vs, _mm256_sad_epu8(v, zero));
            if (want_max) vmax = _mm256_max_epu8(vmax, v);
        }
        int64_t s = _mm256_extract_epi64(vs, 0) + _mm256_extract_epi64(vs, 1)
                  + _mm256_extract_epi64(vs, 2) + _mm256_extract_epi64(vs, 3);
        for (long k = K32; k < K; k++) {
            s += r[k];
            amax = r[k] > amax ? r[k] : amax;
        }
        if (rowsum) rowsum[i] = (int32_t)s;
    }
    if (want_max) {
        uint8_t buf[32];
        _mm256_storeu_si256((__m256i *)buf, vmax);
        for (int t = 0; t < 32; t++) amax = buf[t] > amax ? buf[t] : amax;
    }
    return amax;
}
#endif

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

/* ---- epilogue: int32 tile -> output (scalar; the reference the SIMD one matches) ---- */
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

#if QLEARN_HAVE_X86_SIMD
#include <immintrin.h>
#define QGEMM_AVX2_FN __attribute__((target("avx2,fma")))
#define QGEMM_VNNI_FN __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")))
#define QGEMM_INLINE static inline __attribute__((always_inline))

/* ---- AVX2 epilogue: 8 columns at a time, same float operations as the scalar one ----- */
QGEMM_AVX2_FN static void qgemm_epilogue_avx2(
        const int32_t *tile, long ldt, long i0, long mr, long j0, long nc,
        const qgemm_epilogue *e, uint8_t *out_u8, float *out_f, long ldc) {
    const __m256i za = _mm256_set1_epi32(e->a_zp);
    long c8 = nc & ~7L;
    for (long r = 0; r < mr; r++) {
        long i = i0 + r;
        const __m256i rs = _mm256_set1_epi32(e->rowsum ? e->rowsum[i] : 0);
        for (long c = 0; c < c8; c += 8) {
            long j = j0 + c;
            __m256i acc = _mm256_loadu_si256((const __m256i *)(tile + r * ldt + c));
            __m256i raw = _mm256_sub_epi32(acc, _mm256_mullo_epi32(
                za, _mm256_loadu_si256((const __m256i *)(e->colsum + j))));
            if (e->rowsum)
                raw = _mm256_sub_epi32(raw, _mm256_mullo_epi32(
                    rs, _mm256_loadu_si256((const __m256i *)(e->wzp + j))));
            __m256 x = _mm256_cvtepi32_ps(raw);
            if (out_u8) {
                if (e->bias_q) x = _mm256_add_ps(x, _mm256_loadu_ps(e->bias_q + j));
                x = _mm256_mul_ps(x, _mm256_loadu_ps(e->mult + j));
                x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-1e9f)),
                                  _mm256_set1_ps(1e9f));
                __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(x),
                                             _mm256_set1_epi32(e->out_zp));
                q = _mm256_min_epi32(_mm256_max_epi32(q, _mm256_set1_epi32(e->lo)),
                                     _mm256_set1_epi32(e->hi));
                /* 8 int32 in [0,255] -> 8 bytes */
                __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q),
                                              _mm256_extracti128_si256(q, 1));
                __m128i q8 = _mm_packus_epi16(q16, q16);
                _mm_storel_epi64((__m128i *)(out_u8 + i * ldc + j), q8);
            } else {
                __m256 y = _mm256_mul_ps(x, _mm256_loadu_ps(e->fscale + j));
                if (e->fbias) y = _mm256_add_ps(y, _mm256_loadu_ps(e->fbias + j));
                if (e->relu) y = _mm256_max_ps(y, _mm256_setzero_ps());
                _mm256_storeu_ps(out_f + i * ldc + j, y);
            }
        }
    }
    if (c8 < nc)
        qgemm_epilogue_scalar(tile + c8, ldt, i0, mr, j0 + c8, nc - c8, e, out_u8, out_f,
                              ldc);
}

/* ---- AVX-512 epilogue (VNNI paths): 16 columns at a time, the same float operations as
 * the scalar one; vpmovusdb packs the clamped int32 to bytes. */
QGEMM_VNNI_FN static void qgemm_epilogue_avx512(
        const int32_t *tile, long ldt, long i0, long mr, long j0, long nc,
        const qgemm_epilogue *e, uint8_t *out_u8, float *out_f, long ldc) {
    const __m512i za = _mm512_set1_epi32(e->a_zp);
    const __m512 lo_f = _mm512_set1_ps(-1e9f), hi_f = _mm512_set1_ps(1e9f);
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
                x = _mm512_min_ps(_mm512_max_ps(x, lo_f), hi_f);
                __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(x), ozp);
                q = _mm512_min_epi32(_mm512_max_epi32(q, lo), hi);
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

/* ---- AVX2 micro-kernel: MR rows x 16 columns, vpmaddubsw + vpmaddwd ------------------ */
/* EXACT selects eq. (7): A = lo + 128 hi so that no int16 pair sum saturates.
 * Accumulators are named variables (not an array) so that GCC keeps them in registers;
 * the `if (MR > r)` tests are resolved at compile time in each instantiation. */
static inline __attribute__((always_inline)) int32_t qgemm_load4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

#define QGEMM_AVX2_ROW(r)                                                                \
    if (MR > r) {                                                                        \
        __m256i av = _mm256_set1_epi32(qgemm_load4(a + r * lda + 4 * g));                \
        if (!EXACT) {                                                                    \
            c##r##0 = _mm256_add_epi32(c##r##0,                                          \
                _mm256_madd_epi16(_mm256_maddubs_epi16(av, b0), ones));                  \
            c##r##1 = _mm256_add_epi32(c##r##1,                                          \
                _mm256_madd_epi16(_mm256_maddubs_epi16(av, b1), ones));                  \
        } else {                                                                         \
            __m256i lo = _mm256_and_si256(av, m7f);                                      \
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(av, 7), m01);                \
            c##r##0 = _mm256_add_epi32(c##r##0, _mm256_add_epi32(                       \
                _mm256_madd_epi16(_mm256_maddubs_epi16(lo, b0), ones),                   \
                _mm256_madd_epi16(_mm256_maddubs_epi16(hi, b0), w128)));                 \
            c##r##1 = _mm256_add_epi32(c##r##1, _mm256_add_epi32(                       \
                _mm256_madd_epi16(_mm256_maddubs_epi16(lo, b1), ones),                   \
                _mm256_madd_epi16(_mm256_maddubs_epi16(hi, b1), w128)));                 \
        }                                                                                \
    }
#define QGEMM_AVX2_STORE(r)                                                              \
    if (MR > r) {                                                                        \
        _mm256_storeu_si256((__m256i *)(tile + r * QGEMM_NR), c##r##0);                  \
        _mm256_storeu_si256((__m256i *)(tile + r * QGEMM_NR + 8), c##r##1);              \
    }

QGEMM_INLINE QGEMM_AVX2_FN void qgemm_tile_avx2_body(const uint8_t *a, long lda,
                                                     const int8_t *bp, long Kg,
                                                     int32_t *tile, const int MR,
                                                     const int EXACT) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i w128 = _mm256_set1_epi16(128);
    const __m256i m7f = _mm256_set1_epi8(0x7f);
    const __m256i m01 = _mm256_set1_epi8(1);
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00;
    __m256i c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    for (long g = 0; g < Kg; g++) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(bp + g * 64));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(bp + g * 64 + 32));
        QGEMM_AVX2_ROW(0) QGEMM_AVX2_ROW(1) QGEMM_AVX2_ROW(2) QGEMM_AVX2_ROW(3)
    }
    QGEMM_AVX2_STORE(0) QGEMM_AVX2_STORE(1) QGEMM_AVX2_STORE(2) QGEMM_AVX2_STORE(3)
}

#define QGEMM_AVX2_INST(MR, EX) \
QGEMM_AVX2_FN static void qgemm_tile_avx2_##MR##_##EX(const uint8_t *a, long lda, \
        const int8_t *bp, long Kg, int32_t *tile) { \
    qgemm_tile_avx2_body(a, lda, bp, Kg, tile, MR, EX); }
QGEMM_AVX2_INST(1, 0) QGEMM_AVX2_INST(2, 0) QGEMM_AVX2_INST(3, 0) QGEMM_AVX2_INST(4, 0)
QGEMM_AVX2_INST(1, 1) QGEMM_AVX2_INST(2, 1) QGEMM_AVX2_INST(3, 1) QGEMM_AVX2_INST(4, 1)

typedef void (*qgemm_avx2_fn)(const uint8_t *, long, const int8_t *, long, int32_t *);
static const qgemm_avx2_fn QGEMM_AVX2_TABLE[2][4] = {
    {qgemm_tile_avx2_1_0, qgemm_tile_avx2_2_0, qgemm_tile_avx2_3_0, qgemm_tile_avx2_4_0},
    {qgemm_tile_avx2_1_1, qgemm_tile_avx2_2_1, qgemm_tile_avx2_3_1, qgemm_tile_avx2_4_1}};

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
        x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-1e9f)), _mm512_set1_ps(1e9f));
        __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(x), _mm512_set1_epi32(e->out_zp));
        q = _mm512_min_epi32(_mm512_max_epi32(q, _mm512_set1_epi32(e->lo)),
                             _mm512_set1_epi32(e->hi));
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

/* ---- AVX512-VNNI micro-kernel: MR rows x NP panels of 16 columns, vpdpbusd ---------- */
#define QGEMM_VNNI_ROW_FMA(r)                                                            \
    if (MR > r) {                                                                        \
        __m512i av = _mm512_set1_epi32(qgemm_load4(a + r * lda + 4 * g));                \
        c##r##0 = _mm512_dpbusd_epi32(c##r##0, av, b0);                                  \
        if (NP > 1) c##r##1 = _mm512_dpbusd_epi32(c##r##1, av, b1);                      \
        if (NP > 2) c##r##2 = _mm512_dpbusd_epi32(c##r##2, av, b2);                      \
        if (NP > 3) c##r##3 = _mm512_dpbusd_epi32(c##r##3, av, b3);                      \
    }
#define QGEMM_VNNI_ZERO(r) __m512i c##r##0 = _mm512_setzero_si512(), c##r##1 = c##r##0, \
    c##r##2 = c##r##0, c##r##3 = c##r##0;

QGEMM_INLINE QGEMM_VNNI_FN void qgemm_tile_vnni_body(const uint8_t *a, long lda,
                                                     const int8_t *bp, long Kg,
                                                     long panel_stride,
                                                     const qgemm_outctx *oc,
                                                     const int MR, const int NP) {
    QGEMM_VNNI_ZERO(0) QGEMM_VNNI_ZERO(1) QGEMM_VNNI_ZERO(2)
    QGEMM_VNNI_ZERO(3) QGEMM_VNNI_ZERO(4) QGEMM_VNNI_ZERO(5)
    for (long g = 0; g < Kg; g++) {
        const int8_t *bg = bp + g * 64;
        __m512i b0 = _mm512_loadu_si512((const void *)bg), b1 = b0, b2 = b0, b3 = b0;
        if (NP > 1) b1 = _mm512_loadu_si512((const void *)(bg + panel_stride));
        if (NP > 2) b2 = _mm512_loadu_si512((const void *)(bg + 2 * panel_stride));
        if (NP > 3) b3 = _mm512_loadu_si512((const void *)(bg + 3 * panel_stride));
        QGEMM_VNNI_ROW_FMA(0) QGEMM_VNNI_ROW_FMA(1) QGEMM_VNNI_ROW_FMA(2)
        QGEMM_VNNI_ROW_FMA(3) QGEMM_VNNI_ROW_FMA(4) QGEMM_VNNI_ROW_FMA(5)
    }
    QGEMM_VNNI_OUT_ALL
}

#define QGEMM_VNNI_INST(MR, NP) \
QGEMM_VNNI_FN static void qgemm_tile_vnni_##MR##_##NP(const uint8_t *a, long lda, \
        const int8_t *bp, long Kg, long ps, const qgemm_outctx *oc) { \
    qgemm_tile_vnni_body(a, lda, bp, Kg, ps, oc, MR, NP); }
#define QGEMM_VNNI_ROW(MR) QGEMM_VNNI_INST(MR, 1) QGEMM_VNNI_INST(MR, 2) \
    QGEMM_VNNI_INST(MR, 3) QGEMM_VNNI_INST(MR, 4)
QGEMM_VNNI_ROW(1) QGEMM_VNNI_ROW(2) QGEMM_VNNI_ROW(3) QGEMM_VNNI_ROW(4) QGEMM_VNNI_ROW(5)
QGEMM_VNNI_ROW(6)

typedef void (*qgemm_vnni_fn)(const uint8_t *, long, const int8_t *, long, long,
                              const qgemm_outctx *);
#define QGEMM_VNNI_TROW(MR) {qgemm_tile_vnni_##MR##_1, qgemm_tile_vnni_##MR##_2, \
    qgemm_tile_vnni_##MR##_3, qgemm_tile_vnni_##MR##_4}
static const qgemm_vnni_fn QGEMM_VNNI_TABLE[6][4] = {
    QGEMM_VNNI_TROW(1), QGEMM_VNNI_TROW(2), QGEMM_VNNI_TROW(3), QGEMM_VNNI_TROW(4),
    QGEMM_VNNI_TROW(5), QGEMM_VNNI_TROW(6)};

/* ---- AVX512-VNNI indirect micro-kernel (convolution without a patch matrix) ---------
 * Row r of the tile reads tap t of its patch from ptrs[r * T + t]: a run of gpt * 4
 * bytes (a channel run of the channels-last input, or a run of Za for padding).  The
 * packed weight's depth order is (tap, channel), so tap t's groups are consecutive. */
#define QGEMM_IND_ROW_FMA(r)                                                              \
    if (MR > r) {                                                                        \
        __m512i av = _mm512_set1_epi32(qgemm_load4(ar##r + 4 * g));                      \
        c##r##0 = _mm512_dpbusd_epi32(c##r##0, av, b0);                                  \
        if (NP > 1) c##r##1 = _mm512_dpbusd_epi32(c##r##1, av, b1);                      \
        if (NP > 2) c##r##2 = _mm512_dpbusd_epi32(c##r##2, av, b2);                      \
        if (NP > 3) c##r##3 = _mm512_dpbusd_epi32(c##r##3, av, b3);                      \
    }
#define QGEMM_IND_PTR(r) const uint8_t *ar##r = MR > r ? ptrs[r * T + t] : ptrs[t];

QGEMM_INLINE QGEMM_VNNI_FN void qgemm_tile_vnni_ind_body(
        const uint8_t *const *ptrs, long T, long gpt, const int8_t *bp,
        long panel_stride, const qgemm_outctx *oc, const int MR, const int NP) {
    QGEMM_VNNI_ZERO(0) QGEMM_VNNI_ZERO(1) QGEMM_VNNI_ZERO(2)
    QGEMM_VNNI_ZERO(3) QGEMM_VNNI_ZERO(4) QGEMM_VNNI_ZERO(5)
    for (long t = 0; t < T; t++) {
        QGEMM_IND_PTR(0) QGEMM_IND_PTR(1) QGEMM_IND_PTR(2)
        QGEMM_IND_PTR(3) QGEMM_IND_PTR(4) QGEMM_IND_PTR(5)
        const int8_t *bt = bp + t * gpt * 64;
        for (long g = 0; g < gpt; g++) {
            const int8_t *bg = bt + g * 64;
            __m512i b0 = _mm512_loadu_si512((const void *)bg), b1 = b0, b2 = b0, b3 = b0;
            if (NP > 1) b1 = _mm512_loadu_si512((const void *)(bg + panel_stride));
            if (NP > 2) b2 = _mm512_loadu_si512((const void *)(bg + 2 * panel_stride));
            if (NP > 3) b3 = _mm512_loadu_si512((const void *)(bg + 3 * panel_stride));
            QGEMM_IND_ROW_FMA(0) QGEMM_IND_ROW_FMA(1) QGEMM_IND_ROW_FMA(2)
            QGEMM_IND_ROW_FMA(3) QGEMM_IND_ROW_FMA(4) QGEMM_IND_ROW_FMA(5)
        }
    }
    QGEMM_VNNI_OUT_ALL
}

#define QGEMM_IND_INST(MR, NP) \
QGEMM_VNNI_FN static void qgemm_tile_vnni_ind_##MR##_##NP(const uint8_t *const *ptrs, \
        long T, long gpt, const int8_t *bp, long ps, const qgemm_outctx *oc) { \
    qgemm_tile_vnni_ind_body(ptrs, T, gpt, bp, ps, oc, MR, NP); }
#define QGEMM_IND_ROW(MR) QGEMM_IND_INST(MR, 1) QGEMM_IND_INST(MR, 2) \
    QGEMM_IND_INST(MR, 3) QGEMM_IND_INST(MR, 4)
QGEMM_IND_ROW(1) QGEMM_IND_ROW(2) QGEMM_IND_ROW(3) QGEMM_IND_ROW(4) QGEMM_IND_ROW(5)
QGEMM_IND_ROW(6)

typedef void (*qgemm_ind_fn)(const uint8_t *const *, long, long, const int8_t *, long,
                             const qgemm_outctx *);
#define QGEMM_IND_TROW(MR) {qgemm_tile_vnni_ind_##MR##_1, qgemm_tile_vnni_ind_##MR##_2, \
    qgemm_tile_vnni_ind_##MR##_3, qgemm_tile_vnni_ind_##MR##_4}
static const qgemm_ind_fn QGEMM_IND_TABLE[6][4] = {
    QGEMM_IND_TROW(1), QGEMM_IND_TROW(2), QGEMM_IND_TROW(3), QGEMM_IND_TROW(4),
    QGEMM_IND_TROW(5), QGEMM_IND_TROW(6)};
#endif  /* QLEARN_HAVE_X86_SIMD */

/* Tile shapes of each path: rows per tile (MR) and panels per tile (NP). */
static inline int qgemm_tile_mr(int path) { return path == QGEMM_VNNI ? 6 : 4; }
static inline int qgemm_tile_np(int path) { return path == QGEMM_VNNI ? 4 : 1; }

/* Compute and write one output tile: rows [i0, i0+mr), panels [p0, p0+np).
 * packed: the whole packed weight; N, Kg: problem sizes.  Exactly one of out_u8 /
 * out_f is non-NULL.  Returns nothing; every cell of the tile is written. */
static void qlearn_qgemm_tile(int path, const uint8_t *a, long lda, long i0, long mr,
                              const int8_t *packed, long N, long Kg, long p0, long np,
                              const qgemm_epilogue *e, uint8_t *out_u8, float *out_f,
                              long ldc) {
#if QLEARN_HAVE_X86_SIMD
    int32_t tile[QGEMM_MAX_TILE] __attribute__((aligned(64)));
    long panel_stride = Kg * 64;
    const uint8_t *arow = a + i0 * lda;
    const int8_t *bp = packed + p0 * panel_stride;
    long j0 = p0 * QGEMM_NR;
    long nc = np * QGEMM_NR;
    if (j0 + nc > N) nc = N - j0;
    if (path == QGEMM_VNNI) {
        /* the epilogue runs on the accumulator registers: no tile round trip */
        const qgemm_outctx oc = {e, i0, j0, nc, ldc, out_u8, out_f};
        QGEMM_VNNI_TABLE[mr - 1][np - 1](arow, lda, bp, Kg, panel_stride, &oc);
    } else {
        /* AVX2: np panels one after the other */
        for (long p = 0; p < np; p++) {
            long jc = j0 + p * QGEMM_NR;
            long ncp = N - jc < QGEMM_NR ? N - jc : QGEMM_NR;
            QGEMM_AVX2_TABLE[path == QGEMM_AVX2_EXACT][mr - 1](
                arow, lda, bp + p * panel_stride, Kg, tile);
            qgemm_epilogue_avx2(tile, QGEMM_NR, i0, mr, jc, ncp, e, out_u8, out_f, ldc);
        }
    }
#else
    (void)path; (void)a; (void)lda; (void)i0; (void)mr; (void)packed; (void)N; (void)Kg;
    (void)p0; (void)np; (void)e; (void)out_u8; (void)out_f; (void)ldc;
#endif
}

/* One indirect VNNI tile: rows [i0, i0+mr) of the output (their patch pointers at
 * ptrs[(r) * T + t], r < mr), panels [p0, p0+np).  Same epilogue as a GEMM tile. */
static void qlearn_qgemm_tile_indirect(const uint8_t *const *ptrs, long T, long gpt,
                                       long i0, long mr, const int8_t *packed, long N,
                                       long Kg, long p0, long np, const qgemm_epilogue *e,
                                       uint8_t *out_u8, long ldc) {
#if QLEARN_HAVE_X86_SIMD
    long panel_stride = Kg * 64;
    long j0 = p0 * QGEMM_NR, nc = np * QGEMM_NR;
    if (j0 + nc > N) nc = N - j0;
    const qgemm_outctx oc = {e, i0, j0, nc, ldc, out_u8, NULL};
    QGEMM_IND_TABLE[mr - 1][np - 1](ptrs, T, gpt, packed + p0 * panel_stride,
                                    panel_stride, &oc);
#else
    (void)ptrs; (void)T; (void)gpt; (void)i0; (void)mr; (void)packed; (void)N; (void)Kg;
    (void)p0; (void)np; (void)e; (void)out_u8; (void)ldc;
#endif
}

#endif
