# cython: boundscheck=False, wraparound=False
"""Thread count and build facts shared by every kernel.

Kernels take ``num_threads`` as an argument; Python-level wrappers get it from
:func:`get_num_threads`, so one setting (``qlearn.set_num_threads`` or the
``OMP_NUM_THREADS`` environment variable) governs all of them.  Without OpenMP every
count resolves to 1.
"""
import os

cdef extern from "qlearn_cpu.h":
    int qlearn_openmp_enabled() noexcept nogil
    int qlearn_omp_max_threads() noexcept nogil

OPENMP_ENABLED = bool(qlearn_openmp_enabled())

cdef int _requested = 0   # 0: not set by the user, use the default below

# Each OpenMP thread costs a stack (MBs of address space) and a kernel thread; a count
# in the millions kills the process inside the OpenMP runtime.  More threads than a few
# per core only adds overhead, so counts are bounded by this (always at least 64).
MAX_NUM_THREADS = max(64, 4 * (os.cpu_count() or 1))


def _default_num_threads():
    # Read once, as OpenMP itself reads OMP_NUM_THREADS once at start-up.  A value above
    # MAX_NUM_THREADS is clamped (with a warning) rather than breaking ``import qlearn``.
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        n = int(env)
        if n > MAX_NUM_THREADS:
            import warnings
            warnings.warn(f"OMP_NUM_THREADS={n} is more than qlearn uses; using "
                          f"{MAX_NUM_THREADS} threads", RuntimeWarning, stacklevel=2)
            n = MAX_NUM_THREADS
        return n
    return min(max(1, qlearn_omp_max_threads()), MAX_NUM_THREADS)


cdef int _default = _default_num_threads() if OPENMP_ENABLED else 1


def set_num_threads(n):
    """Use ``n`` threads in every parallel kernel (``1 <= n <= MAX_NUM_THREADS``)."""
    global _requested
    import numbers
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"`n` must be an integer number of threads, got {n!r}")
    if not 1 <= n <= MAX_NUM_THREADS:
        raise ValueError(f"`n` must be in [1, {MAX_NUM_THREADS}] (threads), got {n}")
    _requested = int(n) if OPENMP_ENABLED else 1


def get_num_threads():
    """The number of threads parallel kernels use.

    ``set_num_threads(n)`` wins; otherwise ``OMP_NUM_THREADS`` as it was when qlearn
    was imported; otherwise every core OpenMP sees.  Always 1 when qlearn was built
    without OpenMP.
    """
    return _requested if _requested > 0 else _default

