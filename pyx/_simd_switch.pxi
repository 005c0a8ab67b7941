# The run-time SIMD switch each kernel module with an AVX2 path includes: the module's
# loops test USE_AVX2, and the tests flip it to compare the AVX2 and portable paths in
# one process.  (QLEARN_SIMD=generic in the environment turns AVX2 off at import.)
cdef extern from "qlearn_cpu.h":
    int qlearn_cpu_has_avx2() noexcept nogil

cdef bint USE_AVX2 = qlearn_cpu_has_avx2()


def set_simd_enabled(bint enabled):
    """Use this module's AVX2 micro-kernels when ``enabled`` and the CPU has them;
    returns whether AVX2 is now in use."""
    global USE_AVX2
    USE_AVX2 = enabled and qlearn_cpu_has_avx2()
    return USE_AVX2
