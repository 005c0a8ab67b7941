# cython: boundscheck=False, wraparound=False
"""Thread count, the int8 kernels' thread pool, and build facts shared by every kernel.

Kernels take ``num_threads`` as an argument; Python-level wrappers get it from
:func:`get_num_threads`, so one setting (``qlearn.set_num_threads`` or the
``OMP_NUM_THREADS`` environment variable) governs all of them.  Without OpenMP every
count resolves to 1.

The int8 GEMM and convolution kernels do not use OpenMP's parallel regions: they run
on the pool of ``pyx/include/qlearn_threadpool.h``, whose caller claims work itself
and never waits for a worker that has not started (see that file).  The pool is
included here only, so that the process has one; the kernel modules get its entry
point from :data:`pool_capsule`.
"""
import atexit
import os

cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_New

import numpy as np

cdef extern from "qlearn_threadpool.h":
    ctypedef void (*qlearn_pool_fn)(void *ctx, long item, int slot) noexcept nogil
    ctypedef struct qlearn_pool_plan_t:
        pass
    int qlearn_pool_plan(qlearn_pool_plan_t *pl, qlearn_pool_fn fn, long units,
                         int num_threads, long work) noexcept nogil
    void qlearn_pool_run_plan(qlearn_pool_plan_t *pl, qlearn_pool_fn fn, void *ctx,
                              long items) noexcept nogil
    int qlearn_pool_run(qlearn_pool_fn fn, void *ctx, long items, int num_threads,
                        long work) noexcept nogil
    void qlearn_pool_shutdown() noexcept nogil
    int qlearn_pool_workers() noexcept nogil
    void qlearn_pool_stats(long *out) noexcept nogil
    int qlearn_pool_set_adaptive(int on) noexcept nogil
    int qlearn_pool_set_placement(int on) noexcept nogil
    int qlearn_pool_can_place() noexcept nogil
    int qlearn_pool_set_lending(int on) noexcept nogil
    long qlearn_pool_set_spin_us(long us) noexcept nogil
    int qlearn_pool_choice_state(int i, double *out) noexcept nogil
    void qlearn_pool_simulate(const double *ns, long calls, int *modes,
                              const double *switch_ns, long nswitch) noexcept nogil

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


#: ``qlearn_pool_run`` of ``qlearn_threadpool.h`` for the kernel modules (see _parallel.pxd).
pool_capsule = PyCapsule_New(<void *> qlearn_pool_run, b"qlearn_pool_run", NULL)
#: ``qlearn_pool_plan`` and ``qlearn_pool_run_plan``: a job whose split depends on the
#: thread count asks first how many threads it gets (see qlearn_pool_plan.h).
pool_plan_capsule = PyCapsule_New(<void *> qlearn_pool_plan, b"qlearn_pool_plan", NULL)
pool_run_plan_capsule = PyCapsule_New(<void *> qlearn_pool_run_plan,
                                      b"qlearn_pool_run_plan", NULL)


def pool_workers():
    """Worker threads the int8 pool has started (they start at the first parallel call)."""
    return qlearn_pool_workers()


def pool_stats():
    """Counters of the int8 pool since start-up (a dict), for benchmarks and tests.

    ``jobs``: jobs run on several threads; ``serial``: jobs asked for several threads
    that ran alone; ``waits``: jobs whose caller had to wait for a worker's unit at the
    end; ``long_waits``: such waits over 100 us; ``worker_units``: units run by workers;
    ``wait_us``: microseconds the caller spent in those waits; ``serial_units``: the
    units of the ``serial`` jobs; ``placements``: times the workers were moved off the
    caller's CPU (see :func:`set_pool_placement`); ``lends``: workers that held a unit
    while the caller had waited 100 us for it, and were moved onto the caller's CPU
    until the job ended (see :func:`set_pool_lending`).
    """
    cdef long out[9]
    qlearn_pool_stats(out)
    return dict(zip(("jobs", "serial", "waits", "long_waits", "worker_units", "wait_us",
                     "serial_units", "placements", "lends"), [out[i] for i in range(9)]))


def set_pool_adaptive(bint on):
    """Let the int8 pool choose between 1 thread and several by measured time (``True``,
    the default; ``QLEARN_POOL_ADAPTIVE=0`` starts with ``False``, see
    :mod:`qlearn.kernels.threads`), or always use the
    threads asked for (``False``: tests, to run every parallel path).  Returns the
    previous setting."""
    cdef int before
    with nogil:
        before = qlearn_pool_set_adaptive(on)
    return bool(before)


def _set_pool_alone(bint on):
    """Run every job alone (``True``; tests: a job the pool runs alone must be split as
    a 1-thread call), or go back to the adaptive choice (``False``)."""
    with nogil:
        qlearn_pool_set_adaptive(2 if on else 1)


def set_pool_placement(bint on):
    """Let the int8 pool keep its workers off the caller's CPU once one ran there
    (``True``, the default; ``QLEARN_POOL_PLACE=0`` starts with ``False``), or never
    set their CPU affinity (``False``: workers already placed get the caller's affinity
    back).  Returns the previous setting.  Linux only: elsewhere this is a no-op."""
    cdef int before
    with nogil:
        before = qlearn_pool_set_placement(on)
    return bool(before)


def pool_can_place():
    """Whether this build can set the pool workers' CPU affinity (Linux with glibc)."""
    return bool(qlearn_pool_can_place())


def set_pool_lending(bint on):
    """Let the int8 pool's caller, once it has waited 100 us for a unit a placed worker
    holds (that worker preempted by another process), move the worker onto its own idle
    CPU until the job ends (``True``, the default; ``QLEARN_POOL_LEND=0`` starts with
    ``False``), or always wait for the worker where it is (``False``).  Returns the
    previous setting.  Linux only: elsewhere this is a no-op."""
    cdef int before
    with nogil:
        before = qlearn_pool_set_lending(on)
    return bool(before)


def set_pool_spin_us(long us):
    """How long an idle int8-pool worker spins before it sleeps, in microseconds
    (default 50; negative means 0).  Returns the previous value."""
    cdef long before
    with nogil:
        before = qlearn_pool_set_spin_us(us)
    return before


def _shutdown_pool():
    """Stop and join the pool's workers; the next parallel call starts new ones."""
    with nogil:
        qlearn_pool_shutdown()


atexit.register(_shutdown_pool)


ctypedef struct _SelfTest:
    int *count
    int *slot
    long spin
    long worker_spin
    int nested


cdef void _nested_item(void *ctx, long i, int slot) noexcept nogil:
    pass


cdef void _selftest_item(void *ctx, long i, int slot) noexcept nogil:
    cdef _SelfTest *t = <_SelfTest *> ctx
    cdef long k
    cdef volatile long sink = 0
    for k in range(t.spin if slot == 0 else t.worker_spin):
        sink = sink + k
    if t.nested:      # a kernel calling a parallel kernel: runs alone, no deadlock
        qlearn_pool_run(_nested_item, NULL, 4, 2, 4)
    t.count[i] += 1
    t.slot[i] = slot


def _pool_selftest(long items, int num_threads, long spin=1000, bint nested=False,
                   long worker_spin=-1):
    """Run a job of ``items`` items: ``(runs per item, slot that ran each)`` (tests).

    Each item spins ``spin`` steps (``worker_spin`` when a worker runs it, if given);
    with ``nested`` it also runs a small job itself."""
    cdef cnp.ndarray count = np.zeros(max(items, 0), dtype=np.intc)
    cdef cnp.ndarray slot = np.full(max(items, 0), -1, dtype=np.intc)
    cdef _SelfTest t
    t.count = <int *> cnp.PyArray_DATA(count)
    t.slot = <int *> cnp.PyArray_DATA(slot)
    t.spin = spin
    t.worker_spin = spin if worker_spin < 0 else worker_spin
    t.nested = nested
    with nogil:
        qlearn_pool_run(_selftest_item, &t, items, num_threads, items * spin)
    return count, slot


def _pool_choices():
    """The adaptive choice's state per kind of job (debugging): a list of
    ``(est_alone_ns, est_pool_ns, stall_alone_ns, stall_pool_ns, backoff, items, work)``,
    a mode's expected time being its ``est`` plus its ``stall`` (the stalls it is
    expected to add per call)."""
    cdef double out[7]
    rows = []
    for i in range(256):
        if qlearn_pool_choice_state(i, out):
            rows.append(tuple(out[j] for j in range(7)))
    return rows


def _pool_simulate(ns, switch=None):
    """The modes the adaptive choice picks when call ``i`` takes ``ns[i, 0]``
    nanoseconds alone and ``ns[i, 1]`` on the pool (tests: the policy against timing
    patterns, without running anything; the pool's own state is untouched).

    ``switch`` (``(k, 2)`` nanoseconds, optional): what a change of mode costs; the
    ``j``-th call of a run of calls in mode ``m`` (``j = 0``: the first after the other
    mode) takes ``switch[j, m]`` more (a worker waking up, caches refilling)."""
    cdef cnp.ndarray t = np.ascontiguousarray(ns, dtype=np.float64)
    if t.ndim != 2 or t.shape[1] != 2:
        raise ValueError(f"`ns` must have shape (calls, 2), got {np.shape(ns)}")
    cdef cnp.ndarray sw = np.ascontiguousarray(np.zeros((0, 2)) if switch is None
                                               else switch, dtype=np.float64)
    if sw.ndim != 2 or sw.shape[1] != 2:
        raise ValueError(f"`switch` must have shape (k, 2), got {np.shape(switch)}")
    cdef cnp.ndarray modes = np.zeros(t.shape[0], dtype=np.intc)
    cdef long n = t.shape[0], k = sw.shape[0]
    with nogil:
        qlearn_pool_simulate(<const double *> cnp.PyArray_DATA(t), n,
                             <int *> cnp.PyArray_DATA(modes),
                             <const double *> cnp.PyArray_DATA(sw), k)
    return modes
