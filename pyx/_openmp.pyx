# cython: boundscheck=False, wraparound=False
"""Thread count and build facts shared by every kernel.

Kernels take ``num_threads`` as an argument; Python-level wrappers get it from
:func:`get_num_threads`, so one setting (``qlearn.set_num_threads`` or the
``OMP_NUM_THREADS`` environment variable) governs all of them.  Without OpenMP every
count resolves to 1.
"""
import os

cdef extern from "qlearn_cpu.h":
    int qlearn_cpu_has_avx2() noexcept nogil
    int qlearn_openmp_enabled() noexcept nogil
    int qlearn_omp_max_threads() noexcept nogil

OPENMP_ENABLED = bool(qlearn_openmp_enabled())

cdef int _requested = 0   # 0: not set by the user, use the OpenMP default


def set_num_threads(int n):
    """Use ``n`` threads in every parallel kernel (``n >= 1``)."""
    global _requested
    if n < 1:
        raise ValueError(f"`n` must be a positive number of threads, got {n}")
    _requested = n


def get_num_threads():
    """The number of threads parallel kernels use.

    ``set_num_threads(n)`` wins; otherwise ``OMP_NUM_THREADS``; otherwise every core
    OpenMP sees.  Always 1 when qlearn was built without OpenMP.
    """
    if not OPENMP_ENABLED:
        return 1
    if _requested > 0:
        return _requested
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.strip().isdigit() and int(env) > 0:
        return int(env)
    return qlearn_omp_max_threads()


def simd_path():
    """``"avx2"`` when the AVX2 micro-kernels are used, else ``"generic"``."""
    return "avx2" if qlearn_cpu_has_avx2() else "generic"
