# The SIMD path argument every kernel with SIMD variants takes (``int simd``): a value
# of qlearn.kernels.simd.Simd, which chooses it (from the CPU and QLEARN_SIMD).  The
# kernels only check that this CPU can run it: an illegal instruction would kill the
# interpreter.
cdef extern from "qlearn_cpu.h":
    enum:
        QLEARN_SIMD_GENERIC
        QLEARN_SIMD_AVX2
        QLEARN_SIMD_VNNI
    int qlearn_cpu_supports_simd(int simd) noexcept nogil


cdef inline bint simd_avx2(int simd) except -1:
    """Whether ``simd`` selects the AVX2 loops (AVX2 and VNNI do); ``ValueError`` for a
    path this CPU cannot run or an unknown value."""
    if not qlearn_cpu_supports_simd(simd):
        if 0 <= simd <= QLEARN_SIMD_VNNI:
            raise ValueError(f"`simd` = {simd} selects instructions this CPU lacks")
        raise ValueError(f"`simd` must be 0 (generic), 1 (avx2) or 2 (vnni), got {simd}")
    return simd >= QLEARN_SIMD_AVX2
