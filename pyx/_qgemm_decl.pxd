# The int8 GEMM micro-kernels of pyx/include/qgemm/ (dispatch.h chooses the tile:
# qgemm_u8s8_6x64_vnni, its indirect form, qgemm_u8s8_4x16_avx2), declared once for the
# modules that drive them (_qgemm: matrix multiply; _qconv: convolution as blocked /
# indirect GEMM).
from _typedefs cimport int8_t, int32_t, int64_t, uint8_t

cdef extern from "qgemm/dispatch.h":
    # What a tile needs to turn its int32 accumulators into outputs (docs/int8.rst,
    # eqs. (4)-(7)): the zero-point terms, the bias, the multiplier and the clamp.
    ctypedef struct qgemm_epilogue:
        const int32_t *colsum
        const int32_t *wzp
        const int32_t *rowsum
        int32_t a_zp
        const float *bias_q
        const float *mult
        int32_t out_zp, lo, hi
        const float *fscale
        const float *fbias
        int relu
    # The one constructor of each epilogue kind (rowsum is NULL; the driver sets it):
    # eq. (6), uint8 output; bias_q may be NULL
    qgemm_epilogue qgemm_epilogue_u8(const int32_t *colsum, const int32_t *wzp,
                                     int32_t a_zp, const float *bias_q, const float *mult,
                                     int32_t out_zp, int32_t lo, int32_t hi) noexcept nogil
    # eq. (8), float output; fbias may be NULL
    qgemm_epilogue qgemm_epilogue_f32(const int32_t *colsum, const int32_t *wzp,
                                      int32_t a_zp, const float *fscale, const float *fbias,
                                      int relu) noexcept nogil
    int QGEMM_GENERIC, QGEMM_AVX2, QGEMM_AVX2_EXACT, QGEMM_VNNI, QGEMM_NR
    int qlearn_cpu_has_avx2() noexcept nogil
    int qlearn_cpu_has_avx512vnni() noexcept nogil
    void qlearn_qgemm_pack(const int8_t *w, long N, long K, int8_t *out) noexcept nogil
    int qlearn_qgemm_rowsum_max(const uint8_t *a, long M, long K, long lda,
                                int32_t *rowsum, int want_max) noexcept nogil
    int qgemm_tile_mr(int path) noexcept nogil
    int qgemm_tile_np(int path) noexcept nogil
    void qlearn_qgemm_tile(int path, const uint8_t *a, long lda, long i0, long mr,
                           const int8_t *packed, long N, long Kg, long p0, long npanels,
                           const qgemm_epilogue *e, uint8_t *out_u8, float *out_f,
                           long ldc) noexcept nogil
    void qlearn_qgemm_rows(int path, const uint8_t *a, long lda, long i0, long i1,
                           long mr_max, const int8_t *packed, long N, long Kg, long p0,
                           long npanels, const qgemm_epilogue *e, uint8_t *out_u8,
                           float *out_f, long ldc) noexcept nogil
    void qlearn_qgemm_tile_indirect(int path, const uint8_t *const *ptrs, long T,
                                    long gpt, long i0, long mr, const int8_t *packed,
                                    long N, long Kg, long p0, long npanels,
                                    const qgemm_epilogue *e, uint8_t *out_u8,
                                    long ldc) noexcept nogil
    int64_t qlearn_qgemm_peak(int path, long steps, int64_t *macs) noexcept nogil
