"""What this CPU supports: the raw feature checks behind :mod:`qlearn.kernels.simd`.

These report the hardware (and the OS's support for its registers) only.  Which path
the kernels take, ``QLEARN_SIMD`` included, is decided in :mod:`qlearn.kernels.simd`,
the only importer of this module.
"""
cdef extern from "qlearn_cpu.h":
    enum:
        QLEARN_SIMD_GENERIC
        QLEARN_SIMD_AVX2
        QLEARN_SIMD_VNNI
    int qlearn_cpu_has_avx2() noexcept nogil
    int qlearn_cpu_has_avx512vnni() noexcept nogil

#: The C enum's values (``qlearn.kernels.simd.Simd`` must mirror them).
SIMD_GENERIC, SIMD_AVX2, SIMD_VNNI = QLEARN_SIMD_GENERIC, QLEARN_SIMD_AVX2, QLEARN_SIMD_VNNI


def has_avx2():
    """Whether the CPU runs AVX2 and FMA instructions."""
    return bool(qlearn_cpu_has_avx2())


def has_avx512vnni():
    """Whether the CPU runs AVX-512 F/BW/VL and VNNI instructions."""
    return bool(qlearn_cpu_has_avx512vnni())
