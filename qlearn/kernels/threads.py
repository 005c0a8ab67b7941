"""The thread count of the parallel kernels (the only importer of ``qlearn._ext._openmp``).

Kernels take ``num_threads`` as a plain int; the wrappers of :mod:`qlearn.kernels`
pass :func:`resolve`, so one setting (:func:`set_num_threads`, else
``OMP_NUM_THREADS`` as it was at import, else every core OpenMP sees) governs them all.
Results never depend on it.

Examples
--------
>>> from qlearn.kernels import threads
>>> threads.resolve(1)
1
>>> threads.resolve() == threads.get_num_threads()
True
"""
import numbers
import os
import warnings

from .._ext import _openmp

__all__ = ["get_num_threads", "set_num_threads", "resolve", "resolve_openmp", "pool_stats",
           "MAX_NUM_THREADS", "OPENMP_ENABLED"]

#: Whether the kernels were built with OpenMP (else every count resolves to 1).
OPENMP_ENABLED = _openmp.OPENMP_ENABLED
#: The largest count accepted: ``max(64, 4 * os.cpu_count())``.
MAX_NUM_THREADS = _openmp.MAX_NUM_THREADS

#: The number of threads parallel kernels use (``set_num_threads`` wins).
get_num_threads = _openmp.get_num_threads


def set_num_threads(n):
    """Use ``n`` threads in every parallel kernel, ``1 <= n <= MAX_NUM_THREADS``.

    Raises ``TypeError`` for a non-integer, ``ValueError`` outside the range.
    """
    _openmp.set_num_threads(n)


def resolve(num_threads=None):
    """The thread count to hand a kernel: ``num_threads``, or :func:`get_num_threads`.

    Raises
    ------
    TypeError, ValueError
        If ``num_threads`` is not an integer in ``[1, MAX_NUM_THREADS]``.
    """
    if num_threads is None:
        return get_num_threads()
    if isinstance(num_threads, bool) or not isinstance(num_threads, numbers.Integral):
        raise TypeError(f"`num_threads` must be an integer, got {num_threads!r}")
    if not 1 <= num_threads <= MAX_NUM_THREADS:
        raise ValueError(f"`num_threads` must be in [1, {MAX_NUM_THREADS}], got "
                         f"{num_threads}")
    return int(num_threads) if OPENMP_ENABLED else 1


# libgomp's worker threads do not survive fork(): in the child of a process that ran an
# OpenMP region on several threads, the next such region waits forever for workers that
# no longer exist.  PyTorch's DataLoader workers set one thread for this reason; here a
# forked child runs the OpenMP kernels on one thread by itself (the int8 kernels' own
# pool starts new workers in the child and keeps the thread count).
_openmp_team_started = False    # this process ran an OpenMP kernel on several threads
_openmp_forked = False          # this process is a fork() child of such a process


def resolve_openmp(num_threads=None):
    """:func:`resolve` for a kernel parallelized with OpenMP (every kernel module but the
    int8 GEMM and convolution, which run on their own pool).

    The same count, except in a process made by ``fork()`` from one that had run an
    OpenMP kernel on several threads: there it is 1, because libgomp's threads do not
    exist in the child and a parallel region would wait for them forever (results do
    not depend on the count).

    >>> from qlearn.kernels import threads
    >>> threads.resolve_openmp(1)
    1
    """
    global _openmp_team_started
    n = resolve(num_threads)
    if n > 1:
        if _openmp_forked:
            return 1
        _openmp_team_started = True
    return n


def _after_fork_in_child():
    global _openmp_forked
    _openmp_forked = _openmp_forked or _openmp_team_started


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def pool_stats():
    """Counters of the int8 kernels' thread pool since start-up (a dict; benchmarks and
    tests): ``jobs`` run on several threads, ``serial`` jobs that ran alone, ``waits``
    (the caller waited for a worker's unit at the end), ``long_waits`` (over 100 us),
    ``worker_units`` (units run by workers), ``wait_us`` (microseconds spent in
    those waits), ``serial_units`` (the units of the ``serial`` jobs),
    ``placements`` (times the workers were moved off the caller's CPU) and ``lends``
    (workers moved onto the waiting caller's CPU to finish a unit)."""
    return _openmp.pool_stats()


def _configure_pool_from_environment():
    """The int8 pool's three knobs, read here once at import (the C code reads no
    environment): ``QLEARN_POOL_ADAPTIVE=0`` makes every job asked for several threads
    use them (otherwise the pool picks one or several by measured time),
    ``QLEARN_POOL_SPIN_US`` is how long an idle worker spins before it sleeps (default
    50), ``QLEARN_POOL_PLACE=0`` leaves the workers' CPU affinity alone (otherwise,
    on Linux, a worker seen running on the caller's CPU moves all workers off it), and
    ``QLEARN_POOL_LEND=0`` makes a caller wait for a preempted worker's unit where the
    worker is (otherwise, after 100 us, the worker is moved onto the caller's CPU)."""
    if os.environ.get("QLEARN_POOL_ADAPTIVE", "").strip() == "0":
        _openmp.set_pool_adaptive(False)
    if os.environ.get("QLEARN_POOL_PLACE", "").strip() == "0":
        _openmp.set_pool_placement(False)
    if os.environ.get("QLEARN_POOL_LEND", "").strip() == "0":
        _openmp.set_pool_lending(False)
    spin = os.environ.get("QLEARN_POOL_SPIN_US", "").strip()
    if spin:
        try:
            _openmp.set_pool_spin_us(int(spin))
        except ValueError:
            warnings.warn(f"QLEARN_POOL_SPIN_US={spin!r} is not an integer number of "
                          f"microseconds; ignoring it", RuntimeWarning, stacklevel=2)


_configure_pool_from_environment()
