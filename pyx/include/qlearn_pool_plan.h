/* A job of qlearn's thread pool planned before its caller splits it into units.
 *
 * Whether a job runs alone or on the pool is the pool's choice, made per kind of job
 * (qlearn_threadpool.h).  A kernel whose best split depends on the thread count (a
 * depthwise convolution's bands re-read 2 halo rows each; a large GEMM split by rows
 * streams the weight once per thread) would, told to run alone after splitting for two
 * threads, run the two-thread split on one thread: slower than a 1-thread call.  So
 * the kernel asks first, qlearn_pool_plan(&plan, fn, units, num_threads, work) with
 * the unit count of its num_threads split, which returns the threads the job will run
 * on (1: alone); it splits for that many and runs qlearn_pool_run_plan(&plan, fn, ctx,
 * items), which must follow (the plan may hold the pool's submit lock).
 *
 * Only the types are here: the kernel modules reach the two functions through capsules
 * of qlearn._ext._openmp (see _parallel.pxd), not by including qlearn_threadpool.h. */
#ifndef QLEARN_POOL_PLAN_H
#define QLEARN_POOL_PLAN_H

typedef void (*qlearn_pool_fn)(void *ctx, long item, int slot);

typedef struct {
    void *choice;        /* the kind of job's adaptive state, or NULL (not learned) */
    int threads;         /* threads the job runs on, the caller included (1: alone) */
    int locked;          /* the plan holds the pool's submit lock */
    int learn, exploring;
} qlearn_pool_plan_t;

#endif
