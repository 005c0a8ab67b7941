# The thread pool of pyx/include/qlearn_threadpool.h as the kernel modules see it.  The
# pool lives in qlearn._ext._openmp (one pool per process, not one per module); a kernel
# module fetches its entry point once, at import:
#
#     from cpython.pycapsule cimport PyCapsule_GetPointer
#     from ._openmp import pool_capsule
#     cdef pool_run_t parallel_for = <pool_run_t> PyCapsule_GetPointer(
#         pool_capsule, b"qlearn_pool_run")
#
# parallel_for(fn, ctx, items, num_threads, work) runs fn(ctx, i, slot) for i in
# [0, items) on up to num_threads threads, the caller included, and returns when all are
# done; slot (0 .. num_threads - 1) names the thread's scratch.  `work` (the job's
# multiply-adds or bytes) tells jobs of one function and size apart: the pool times
# each kind alone and in parallel and runs the faster (see qlearn_threadpool.h).  Each item must be a fixed piece
# of the output, computed whole, so that the result does not depend on the split.
#
# A kernel whose best split depends on the thread count plans first (the pool then
# chooses alone or in parallel before the split, see qlearn_pool_plan.h):
#
#     cdef pool_plan_t pool_plan = <pool_plan_t> PyCapsule_GetPointer(
#         pool_plan_capsule, b"qlearn_pool_plan")
#     cdef pool_run_plan_t pool_run_plan = <pool_run_plan_t> PyCapsule_GetPointer(
#         pool_run_plan_capsule, b"qlearn_pool_run_plan")
#     nt = pool_plan(&plan, fn, units_at_num_threads, num_threads, work)
#     ... split for nt threads ...
#     pool_run_plan(&plan, fn, ctx, items)        # always, right after

ctypedef void (*pool_fn)(void *ctx, long item, int slot) noexcept nogil
ctypedef int (*pool_run_t)(pool_fn fn, void *ctx, long items, int num_threads,
                           long work) noexcept nogil

cdef extern from "qlearn_pool_plan.h":
    ctypedef struct qlearn_pool_plan_t:
        int threads
        int locked

ctypedef int (*pool_plan_t)(qlearn_pool_plan_t *plan, pool_fn fn, long units,
                            int num_threads, long work) noexcept nogil
ctypedef void (*pool_run_plan_t)(qlearn_pool_plan_t *plan, pool_fn fn, void *ctx,
                                 long items) noexcept nogil
