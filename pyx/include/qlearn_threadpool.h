/* qlearn's thread pool: a parallel-for in which the calling thread claims work too.
 *
 * Why not OpenMP: an OpenMP parallel region ends in a barrier that waits for every
 * thread of the team, including one that got no work.  On a shared machine a thread
 * of the team is often not running (the other core is busy), and the barrier then
 * waits for a whole scheduler slice, milliseconds, for a kernel that takes
 * microseconds.  Here completion means "every *claimed* item is done", never "every
 * thread has arrived": a worker that starts late finds nothing left to claim and goes
 * back to waiting, and the caller never waits for it.
 *
 * The claiming protocol
 * ---------------------
 * One 64-bit word, `state`, describes the current job:
 *
 *     state = epoch << 32 | lo << 16 | hi
 *
 * `epoch` numbers the jobs (it only grows); the units nobody has claimed yet are
 * [lo, hi), initially [0, n) with n <= 65535.  The caller claims k units from the
 * front (a compare-and-swap of the whole word to lo + k, k shrinking as units run out),
 * a worker one from the back (to hi - 1; see qlearn_pool_work); the
 * swap fails if anyone claimed first *or if the job is not the one the thread was
 * invited to* (the epoch differs), so a worker waking up after its job has ended
 * cannot claim a unit of the next one by mistake.  The job's description (function,
 * context, unit size, n) is plain memory written before `state` is published
 * (release) and read by a worker only after a successful claim (acquire): the job
 * cannot end while one of its units is claimed and not done, so the description is
 * still valid.
 * Each finished unit increments `done`; the caller returns when done == n.
 *
 *   caller (holds `submit`)                worker w (slot w + 1)
 *   write fn, ctx, stride; done = 0
 *   state = e << 32 | 0 << 16 | n          wait until ticket[w] changes (spin, then
 *   ticket[w] = e for the workers it wants   sleep on the condition variable)
 *   wake sleepers (only if there are any)  e = ticket[w]
 *   claim and run units from the front     claim and run units of epoch e from the back
 *   until none is left; wait until         until none is left (or state's epoch != e),
 *   done == n                              go back
 *
 * Waiting.  A worker spins for 50 microseconds (qlearn_pool_set_spin_us) after a
 * job, so that back-to-back kernel calls find it awake, then sleeps on a condition
 * variable: an idle pool costs no CPU.  The caller, once no unit is left, spins
 * briefly (20 us) for units still running, then sleeps on `finished` until the worker
 * that finishes the last unit signals it: if that worker was preempted, perhaps onto
 * the caller's own CPU, sleeping lets it run (sched_yield would hand the CPU to another
 * process for a whole slice).  A caller that has slept 100 us for a placed worker's
 * unit lends that worker its own CPU until the job ends: see qlearn_pool_lend.
 *
 * Alone or in parallel: see qlearn_pool_plan, which times both for each kind of job
 * and runs the faster (on a busy machine a second thread only adds hand-offs).
 *
 * Where the workers run: see qlearn_pool_place, which keeps them off the caller's CPU
 * once one was seen there (Linux; a busy neighbour otherwise leaves both of our
 * threads on one core).
 *
 * One job at a time: `submit` is taken with trylock, and a caller that does not get it
 * (another Python thread is running a parallel kernel, or a kernel called from inside
 * a job) runs its job alone, on its own thread, as slot 0.  So concurrent callers never
 * deadlock and never share a slot's scratch memory (slots index per-call scratch).
 *
 * Results never depend on the split: a unit is a fixed piece of the output, computed
 * whole by whichever thread claims it, in the same order of operations.
 *
 * Fork: a child process has only the forking thread.  pthread_atfork handlers hold
 * the pool's locks across fork() and, in the child, forget the workers (new ones are
 * started by the child's first parallel call).  Exit: qlearn_pool_shutdown() (called
 * at interpreter exit) wakes every worker, tells it to return and joins it.
 *
 * Include this file in exactly one module (qlearn._ext._openmp); the others reach
 * qlearn_pool_run through it, so that there is one pool, not one per module.
 */
#ifndef QLEARN_THREADPOOL_H
#define QLEARN_THREADPOOL_H

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define QLEARN_POOL_MAX_WORKERS 255
#define QLEARN_POOL_MAX_UNITS 65535
#define QLEARN_POOL_WAIT_SPIN_NS 20000
#define QLEARN_POOL_LEND_NS 100000       /* a wait this long lends the caller's CPU */

/* Worker placement needs sched_getcpu and pthread_setaffinity_np (glibc, _GNU_SOURCE,
 * which Python.h defines before any system header); elsewhere the pool does without. */
#if defined(__linux__) && defined(_GNU_SOURCE) && defined(CPU_SET)
#define QLEARN_POOL_CAN_PLACE 1
#else
#define QLEARN_POOL_CAN_PLACE 0
#endif

#include "qlearn_pool_plan.h"

typedef struct {
    /* the job: written by the caller before `state` is published */
    qlearn_pool_fn fn;
    void *ctx;
    long items;                       /* items of the job */
    long stride;                      /* items per unit (when items > MAX_UNITS) */
    long units;                       /* units of the job */
    _Atomic int job_threads;          /* threads invited to the job, the caller included */
    /* each on its own cache line: every claim writes `state`, every finished unit
     * `done`, and neither should evict the job's description or the tickets */
    _Alignas(64) _Atomic uint64_t state;   /* epoch << 32 | lo << 16 | hi */
    _Alignas(64) _Atomic long done;        /* units finished */
    _Alignas(64) _Atomic uint32_t epoch;   /* the last job's epoch */
    _Atomic uint32_t ticket[QLEARN_POOL_MAX_WORKERS];  /* epoch each worker may join */
    _Atomic int sleepers;             /* workers waiting on `wake` */
    _Atomic int stop;                 /* workers must return */
    _Atomic int caller_waiting;       /* the caller sleeps on `finished` */
    pthread_mutex_t submit;           /* held by the caller running a job */
    pthread_mutex_t lock;             /* guards `wake` */
    pthread_cond_t wake;
    pthread_mutex_t done_lock;        /* guards `finished` */
    pthread_cond_t finished;          /* signalled when the last unit is done */
    /* statistics (only the `submit` holder writes them): see qlearn_pool_stats */
    long stat_jobs, stat_serial, stat_waits, stat_long_waits, stat_worker_units;
    long stat_wait_us, stat_serial_units, stat_placements, stat_lends;
    /* placement (qlearn_pool_place): the CPU each worker ran its first unit of the
     * current job on (-1: it ran none), and the CPU every worker's affinity leaves out
     * (-1: the workers were never placed and may run anywhere the process may) */
    _Atomic int worker_cpu[QLEARN_POOL_MAX_WORKERS];
    _Atomic int holding[QLEARN_POOL_MAX_WORKERS];   /* worker w holds unfinished units */
    _Atomic int lent[QLEARN_POOL_MAX_WORKERS];      /* worker w runs on the caller's CPU */
    int placed_off;
    int placement;                    /* 0: never place (qlearn_pool_set_placement) */
    int lending;                      /* 0: never lend (qlearn_pool_set_lending) */
#if QLEARN_POOL_CAN_PLACE
    cpu_set_t placed_mask;            /* the workers' affinity once placed */
#endif
    pthread_t threads[QLEARN_POOL_MAX_WORKERS];
    uint32_t born[QLEARN_POOL_MAX_WORKERS];   /* the epoch when each worker started */
    int nworkers;                     /* workers started (only the `submit` holder) */
    long spin_ns;                     /* how long an idle worker spins before sleeping */
    int atfork_done;
} qlearn_pool_t;

static qlearn_pool_t qlearn_pool = {
    .submit = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done_lock = PTHREAD_MUTEX_INITIALIZER,
    .finished = PTHREAD_COND_INITIALIZER,
    .spin_ns = -1,
    .placed_off = -1,
    .placement = 1,
    .lending = 1,
};

static inline void qlearn_pool_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static inline long qlearn_pool_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Claim and run units of job `epoch` until none is left; `slot` names the thread's
 * scratch.  The caller (slot 0) claims from the front, workers from the back: on two
 * threads each then computes about the same half of the output on every call, and
 * finds the half of the operands it read last time still in its own L2 (an M = 1
 * GEMM is bound by reading the weight: which half a core streams matters).  The
 * caller's claim takes 1 / (2 threads) of the units left (guided self-scheduling):
 * every claim and every `done` update moves a cache line between the cores, ~0.1-0.2
 * us each, which a 10 us job split in 16 units would pay 32 times.  A worker claims
 * one unit at a time: a worker preempted while it holds units makes the caller wait,
 * and with guided chunks it could hold a quarter of a 5 ms GEMM.  Returns the number
 * of units this thread ran. */
static long qlearn_pool_work(qlearn_pool_t *p, uint32_t epoch, int slot) {
    long ran = 0;
    uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(s >> 32) != epoch) return ran;
        uint32_t lo = (uint32_t)(s >> 16) & 0xFFFF, hi = (uint32_t)s & 0xFFFF;
        if (lo >= hi) return ran;
        /* (a stale job_threads only sizes a claim that then fails: the epoch changed) */
        uint32_t k = slot != 0 ? 1 : (hi - lo) / (2u * (uint32_t)atomic_load_explicit(
                                               &p->job_threads, memory_order_relaxed));
        if (k < 1) k = 1;
        uint32_t u0 = slot == 0 ? lo : hi - k;
        uint64_t claimed = slot == 0 ? s + ((uint64_t)k << 16) : s - k;
        if (!atomic_compare_exchange_weak_explicit(&p->state, &s, claimed,
                                                   memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;                 /* s now holds the current word: retry */
        /* units [u0, u0 + k) of job `epoch` are ours: the job's description is valid
         * until `done` counts them (read everything needed before that) */
        long units = p->units;
        if (slot != 0)
            atomic_store_explicit(&p->holding[slot - 1], 1, memory_order_relaxed);
#if QLEARN_POOL_CAN_PLACE
        if (slot != 0 && ran == 0)    /* (vDSO: tens of ns) */
            atomic_store_explicit(&p->worker_cpu[slot - 1], sched_getcpu(),
                                  memory_order_relaxed);
#endif
        long i0 = (long)u0 * p->stride, i1 = (long)(u0 + k) * p->stride;
        if (i1 > p->items) i1 = p->items;
        for (long i = i0; i < i1; i++) p->fn(p->ctx, i, slot);
        ran += k;
        if (slot != 0)
            atomic_store_explicit(&p->holding[slot - 1], 0, memory_order_relaxed);
        long done = atomic_fetch_add(&p->done, (long)k) + (long)k;     /* seq_cst */
        if (done == units && slot != 0 && atomic_load(&p->caller_waiting)) {
            pthread_mutex_lock(&p->done_lock);
            pthread_cond_signal(&p->finished);
            pthread_mutex_unlock(&p->done_lock);
        }
        s = atomic_load_explicit(&p->state, memory_order_acquire);
    }
}

static void *qlearn_pool_worker(void *arg) {
    qlearn_pool_t *p = &qlearn_pool;
    int w = (int)(intptr_t)arg;
    uint32_t seen = p->born[w];       /* (pthread_create orders this read) */
    for (;;) {
        uint32_t t = seen;
        /* (a worker lent the caller's CPU sleeps at once: the caller wants it back) */
        long deadline = qlearn_pool_now_ns()
                        + (atomic_load_explicit(&p->lent[w], memory_order_relaxed)
                           ? 0 : p->spin_ns);
        for (unsigned k = 0;; k++) {
            t = atomic_load_explicit(&p->ticket[w], memory_order_acquire);
            if (t != seen || atomic_load_explicit(&p->stop, memory_order_relaxed)) break;
            qlearn_pool_relax();
            if ((k & 63) == 63 && qlearn_pool_now_ns() > deadline) {
                pthread_mutex_lock(&p->lock);
                atomic_fetch_add(&p->sleepers, 1);        /* seq_cst: see the caller */
                while ((t = atomic_load(&p->ticket[w])) == seen && !atomic_load(&p->stop))
                    pthread_cond_wait(&p->wake, &p->lock);
                atomic_fetch_sub(&p->sleepers, 1);
                pthread_mutex_unlock(&p->lock);
                break;
            }
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = t;
        qlearn_pool_work(p, t, w + 1);
    }
}

/* Across fork(): no job runs (submit) and no worker is inside either lock. */
static void qlearn_pool_atfork_prepare(void) {
    pthread_mutex_lock(&qlearn_pool.submit);
    pthread_mutex_lock(&qlearn_pool.lock);
    pthread_mutex_lock(&qlearn_pool.done_lock);
}

static void qlearn_pool_atfork_parent(void) {
    pthread_mutex_unlock(&qlearn_pool.done_lock);
    pthread_mutex_unlock(&qlearn_pool.lock);
    pthread_mutex_unlock(&qlearn_pool.submit);
}

static void qlearn_pool_atfork_child(void) {
    qlearn_pool_t *p = &qlearn_pool;
    /* the workers did not survive fork(); their wait state is reset with them */
    p->nworkers = 0;
    p->placed_off = -1;
    atomic_store(&p->sleepers, 0);
    atomic_store(&p->stop, 0);
    atomic_store(&p->caller_waiting, 0);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->finished, NULL);
    pthread_mutex_unlock(&p->done_lock);
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&p->submit);
}

/* Start workers until there are `want` (the caller holds `submit`). */
static void qlearn_pool_grow(qlearn_pool_t *p, int want) {
    if (want > QLEARN_POOL_MAX_WORKERS) want = QLEARN_POOL_MAX_WORKERS;
    if (p->spin_ns < 0) p->spin_ns = 50 * 1000L;   /* qlearn_pool_set_spin_us can change it */
    if (!p->atfork_done) {
        pthread_atfork(qlearn_pool_atfork_prepare, qlearn_pool_atfork_parent,
                       qlearn_pool_atfork_child);
        p->atfork_done = 1;
    }
    while (p->nworkers < want) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 1 << 20);   /* kernels use little stack */
        int w = p->nworkers;
        p->born[w] = atomic_load(&p->epoch);
        atomic_store(&p->ticket[w], p->born[w]);
        int rc = pthread_create(&p->threads[w], &attr, qlearn_pool_worker,
                                (void *)(intptr_t)w);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;          /* fewer threads: the caller does the rest */
#if QLEARN_POOL_CAN_PLACE
        if (p->placed_off >= 0)      /* the others were placed: this one joins them */
            pthread_setaffinity_np(p->threads[w], sizeof p->placed_mask, &p->placed_mask);
#endif
        p->nworkers++;
    }
}

#if QLEARN_POOL_CAN_PLACE
/* Every worker's CPUs := m. */
static void qlearn_pool_set_affinity(qlearn_pool_t *p, const cpu_set_t *m) {
    for (int w = 0; w < p->nworkers; w++)
        pthread_setaffinity_np(p->threads[w], sizeof *m, m);
}
#endif

/* Keep the workers off the caller's CPU (after a job; the caller holds `submit`).
 *
 * On a 2-core machine with one other busy process, three threads want two CPUs.  The
 * scheduler wakes a worker on its waker's CPU when that looks cheap (wake-affine), and
 * there the worker can only run by preempting the caller: measured, conv 3x3 64ch
 * 56x56 on the pool took 0.83-1.2 times its 1-thread time while the worker shared the
 * caller's CPU and 0.5 times it once the worker was on the busy process's CPU, where
 * a thread that sleeps between jobs preempts a CPU hog at once and loses little.  So
 * once a worker is seen running a unit on the caller's CPU, every worker's affinity
 * becomes the caller's minus the caller's CPU, and from then on follows the caller:
 * after a job on a CPU other than the one left out, the workers are placed again
 * (else, on 2 CPUs, a caller that moved would find the worker confined to its own
 * CPU).  A caller confined to one CPU leaves the workers alone (they inherited that
 * confinement; it costs a look at the caller's affinity per job).  The cost is one
 * affinity call per worker each time the caller migrates; nothing on a machine where
 * the caller and the workers never meet. */
static void qlearn_pool_place(qlearn_pool_t *p, int nw) {
#if QLEARN_POOL_CAN_PLACE
    if (!p->placement) return;
    int c = sched_getcpu();
    if (c < 0) return;
    int place = 0;
    if (p->placed_off >= 0)
        place = c != p->placed_off;
    else
        for (int w = 0; w < nw; w++)
            place |= atomic_load_explicit(&p->worker_cpu[w], memory_order_relaxed) == c;
    if (!place) return;
    cpu_set_t m;
    if (pthread_getaffinity_np(pthread_self(), sizeof m, &m) != 0 || !CPU_ISSET(c, &m))
        return;
    CPU_CLR(c, &m);
    if (CPU_COUNT(&m) == 0) return;  /* confined to one CPU: nowhere else to go */
    qlearn_pool_set_affinity(p, &m);
    p->placed_mask = m;
    p->placed_off = c;
    p->stat_placements++;
#else
    (void)p; (void)nw;
#endif
}

/* Lend the caller's CPU to the workers that hold unfinished units (the caller holds
 * `submit` and `done_lock`, and is about to sleep until the last unit is done); returns
 * how many it moved (marked in `lent`), whose affinity qlearn_pool_unlend gives back.
 *
 * With one other busy process on two CPUs, the placed worker shares its CPU with that
 * process, and when the scheduler preempts it in the middle of a unit the caller,
 * having done the rest, waits for the busy process's slice to end: milliseconds, for
 * a job of tens or hundreds of microseconds.  Meanwhile the caller's own CPU is idle,
 * but the worker's affinity (qlearn_pool_place) keeps it off that CPU, and the kernel
 * would not pull a task that ran a moment ago anyway (it is cache-hot).  So after
 * QLEARN_POOL_LEND_NS of sleeping, each worker still holding a unit is confined to
 * the caller's CPU, which moves it there at once; the caller sleeps, the worker runs
 * its unit, and its placed affinity comes back when the job is done.  Only placed
 * workers are lent (otherwise nothing keeps them off the idle CPU).  (A worker that
 * finishes between the look at `holding` and the move may spin on the caller's CPU
 * for a while before the caller gives it back its CPUs: rare, and bounded by the
 * spin.) */
static int qlearn_pool_lend(qlearn_pool_t *p, int nw) {
#if QLEARN_POOL_CAN_PLACE
    if (!p->lending || p->placed_off < 0) return 0;
    int c = sched_getcpu();
    if (c < 0) return 0;
    cpu_set_t m;
    CPU_ZERO(&m);
    CPU_SET(c, &m);
    int n = 0;
    for (int w = 0; w < nw; w++) {
        if (atomic_load_explicit(&p->holding[w], memory_order_relaxed)
                && pthread_setaffinity_np(p->threads[w], sizeof m, &m) == 0) {
            atomic_store(&p->lent[w], 1);           /* it sleeps, not spins, after */
            n++;
        }
    }
    p->stat_lends += n;
    return n;
#else
    (void)p; (void)nw;
    return 0;
#endif
}

/* Give the lent workers their placed affinity back (after the job). */
static void qlearn_pool_unlend(qlearn_pool_t *p, int nw) {
#if QLEARN_POOL_CAN_PLACE
    for (int w = 0; w < nw; w++)
        if (atomic_load(&p->lent[w])) {
            pthread_setaffinity_np(p->threads[w], sizeof p->placed_mask, &p->placed_mask);
            atomic_store(&p->lent[w], 0);
        }
#else
    (void)p; (void)nw;
#endif
}

/* Run one job on the caller and nw workers (the caller holds `submit`). */
static void qlearn_pool_dispatch(qlearn_pool_t *p, qlearn_pool_fn fn, void *ctx,
                                 long items, int nw) {
    long units = items, stride = 1;
    if (units > QLEARN_POOL_MAX_UNITS) {
        stride = (items + QLEARN_POOL_MAX_UNITS - 1) / QLEARN_POOL_MAX_UNITS;
        units = (items + stride - 1) / stride;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->items = items;
    p->stride = stride;
    p->units = units;
    atomic_store_explicit(&p->job_threads, nw + 1, memory_order_relaxed);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    for (int w = 0; w < nw; w++)
        atomic_store_explicit(&p->worker_cpu[w], -1, memory_order_relaxed);
    uint32_t e = atomic_load_explicit(&p->epoch, memory_order_relaxed) + 1;
    if (e == 0) e = 1;
    atomic_store_explicit(&p->epoch, e, memory_order_relaxed);
    atomic_store_explicit(&p->state, (uint64_t)e << 32 | (uint64_t)units,
                          memory_order_release);
    for (int w = 0; w < nw; w++) atomic_store(&p->ticket[w], e);   /* seq_cst */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
    p->stat_jobs++;
    p->stat_worker_units += units - qlearn_pool_work(p, e, 0);
    /* Every unit is claimed; wait only for those still running.  Spin a little (the
     * worker is on the other core, finishing), then sleep until the last one signals:
     * if the worker was preempted, perhaps onto this very core, sleeping lets it run
     * (sched_yield would hand this core to another process for a whole slice). */
    if (atomic_load_explicit(&p->done, memory_order_acquire) < units) {
        long t0 = qlearn_pool_now_ns();
        p->stat_waits++;
        for (unsigned k = 1; atomic_load_explicit(&p->done, memory_order_acquire) < units;
             k++) {
            qlearn_pool_relax();
            if ((k & 63) == 0 && qlearn_pool_now_ns() - t0 > QLEARN_POOL_WAIT_SPIN_NS) {
                int nlent = 0;
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);     /* the condition's clock */
                until.tv_nsec += QLEARN_POOL_LEND_NS;
                if (until.tv_nsec >= 1000000000L) {
                    until.tv_sec++;
                    until.tv_nsec -= 1000000000L;
                }
                pthread_mutex_lock(&p->done_lock);
                atomic_store(&p->caller_waiting, 1);                   /* seq_cst */
                while (atomic_load(&p->done) < units && !nlent)
                    if (pthread_cond_timedwait(&p->finished, &p->done_lock, &until)
                            == ETIMEDOUT) {
                        if (atomic_load(&p->done) < units)
                            nlent = qlearn_pool_lend(p, nw);
                        if (!nlent) break;    /* nothing to lend: wait as before */
                    }
                while (atomic_load(&p->done) < units)
                    pthread_cond_wait(&p->finished, &p->done_lock);
                atomic_store(&p->caller_waiting, 0);
                pthread_mutex_unlock(&p->done_lock);
                if (nlent) qlearn_pool_unlend(p, nw);
                break;
            }
        }
        long waited = qlearn_pool_now_ns() - t0;
        if (waited > 100000) p->stat_long_waits++;
        p->stat_wait_us += waited / 1000;
    }
    /* (done == units was read with acquire: every worker's worker_cpu store is seen) */
    qlearn_pool_place(p, nw);
}

/* The adaptive choice between running a job alone and on the pool.
 *
 * Whether a second thread helps depends on the machine at that moment, not on the job
 * alone: on a quiet 2-core machine it nearly halves the time, but when other processes
 * keep the cores busy our two threads share one core, every hand-off costs, and a
 * worker preempted while it holds a unit makes the caller wait for it, now and then
 * for milliseconds.  So the pool measures: for each kind of job (its function, unit
 * count, thread count and the caller's `work` estimate) it keeps a running estimate of
 * the wall time alone and on the pool (a typical call, plus the mean of what stalls
 * add: qlearn_pool_learn), runs the faster, and looks at the other now and then (an
 * exploration: a few calls, qlearn_pool_decide).
 *
 * The budget.  An exploration starts after at least EXPLORE_CALLS calls, once the time
 * spent in the chosen mode since the last one is RATIO x backoff times what the
 * exploration is expected to cost: its calls times the explored mode's expected excess
 * over the chosen one (at least a quarter of a chosen call).  Exploring thus costs ~2 %
 * of the time in that kind of job (backoff 1) down to ~0.5 % (backoff 4: each
 * exploration whose mode lost clearly doubles it, one whose mode won resets it).
 * (Budgeting by the time the last exploration took, as measured, as an earlier version
 * did, let one stalled exploration postpone the next for seconds.)  Time is counted in
 * the job, not on the clock: a program that calls a layer in bursts, like a round-robin
 * benchmark, would otherwise explore at the start of every burst.
 *
 * Forgetting.  The stalls of the mode not chosen fade as time is spent in the chosen
 * one (to nothing over FORGET_NS): they say how busy the machine was, and a burst of
 * load from another process ends.  Without that, a job sent alone by a 50 ms burst of
 * stalls (another engineer's compile starting) stayed alone on the quiet machine that
 * followed: its pool time looked slow because of stalls only explorations could
 * unlearn, and explorations were rare because the pool time looked slow (simulated,
 * tests/test_threadpool.py: a 0.55 ms convolution with a 2-thread speed-up of 1.7 and
 * three short bursts ran 1.21 times the best mode's time, 1.11 with forgetting; at a
 * steady busy machine the cost is ~1 % more re-tried parallel calls). */
#define QLEARN_POOL_SLOTS 256
#define QLEARN_POOL_EXPLORE_CALLS 16
#define QLEARN_POOL_EXPLORE_RATIO 50.0f
#define QLEARN_POOL_WARMUP 4        /* calls of each mode before choosing (1 not learned) */
#define QLEARN_POOL_EXPLORE_NS 200000.0f   /* an exploration lasts about this long */
#define QLEARN_POOL_FORGET_NS 1e8f  /* the other mode's stalls fade over this (in the job) */

typedef struct {
    qlearn_pool_fn fn;
    long items, work;
    int threads;
    unsigned long last_use;  /* the pool's call count at this kind's last call */
    float est[2];          /* ns: [0] alone, [1] on the pool (a typical call) */
    float stall[2];        /* ns: mean time above 1.5 est per call (preemption) */
    int n[2];              /* samples of each (counted up to WARMUP) */
    long calls;            /* calls since the other mode was last measured */
    int burst, burst_mode; /* calls left in the current exploration, and its mode */
    int burst_skip;        /* of those, calls still not learned from */
    float spent;           /* ns spent in this kind of job since the last exploration */
    int backoff;           /* explorations are RATIO x backoff apart (1, 2, 4) */
} qlearn_pool_choice_t;

static qlearn_pool_choice_t qlearn_pool_choices[QLEARN_POOL_SLOTS];
static unsigned long qlearn_pool_uses;   /* adaptive calls so far (the LRU clock) */
static int qlearn_pool_adaptive = -1;     /* QLEARN_POOL_ADAPTIVE=0 turns it off */
/* Every new kind of job is warmed up in both modes: WARMUP calls on the pool, then
 * WARMUP alone (the first of each not learned from).  (An earlier version warmed a new
 * kind up in the mode a machine-wide running ratio favoured and inferred the other
 * mode's time from it: measured on a quiet 2-vCPU machine, that kept large GEMMs and
 * convolutions alone at 0.99 of their 1-thread speed after small jobs had set the
 * ratio, where both modes measured give them 1.6-1.96.  The next one alternated the
 * modes, so that every pool call of the warm-up came after an alone one and found the
 * worker asleep, its caches cold, and charged the pool with that: measured, quiet
 * (benchmarks/bench_pool_switch.py), the first parallel call after alone ones takes
 * 80-130 us more than the next ones on a 0.3-1 ms convolution; simulated with that
 * cost, tests/test_threadpool.py, the alternating warm-up took over 1.15 times the
 * best mode's time with bursts of load.) */

static void qlearn_pool_choice_reset(qlearn_pool_choice_t *c, qlearn_pool_fn fn,
                                     long items, long work, int threads) {
    qlearn_pool_choice_t fresh = {0};
    fresh.fn = fn; fresh.items = items; fresh.work = work; fresh.threads = threads;
    fresh.backoff = 1;
    *c = fresh;
}

/* The state of a kind of job: two slots may hold it (a kind whose slot another kind
 * keeps taking, say the input transpose of every call of a convolution, would
 * otherwise be warmed up afresh on every call); a new kind takes the one used less
 * recently. */
static qlearn_pool_choice_t *qlearn_pool_choice(qlearn_pool_fn fn, long items, long work,
                                                int threads) {
    uint64_t h = (uint64_t)(uintptr_t)fn * 0x9E3779B97F4A7C15ull
                 ^ (uint64_t)items * 0xC2B2AE3D27D4EB4Full
                 ^ (uint64_t)work * 0x165667B19E3779F9ull ^ (uint64_t)threads;
    unsigned s = (unsigned)((h >> 40) % QLEARN_POOL_SLOTS);
    qlearn_pool_choice_t *a = &qlearn_pool_choices[s];
    qlearn_pool_choice_t *b = &qlearn_pool_choices[s ^ 1];
    qlearn_pool_choice_t *c;
    if (a->fn == fn && a->items == items && a->work == work && a->threads == threads)
        c = a;
    else if (b->fn == fn && b->items == items && b->work == work && b->threads == threads)
        c = b;
    else {
        c = !a->fn ? a : !b->fn ? b : a->last_use <= b->last_use ? a : b;
        qlearn_pool_choice_reset(c, fn, items, work, threads);
    }
    c->last_use = ++qlearn_pool_uses;
    return c;
}

/* What a call of `mode` is expected to take, stalls included (ns). */
static float qlearn_pool_expected(const qlearn_pool_choice_t *c, int mode) {
    return c->est[mode] + c->stall[mode];
}

/* Fold one timing into the estimate of `mode`.  The first call of each mode is not
 * learned from (the first parallel one may start the worker threads, or find them
 * asleep); an exploring call, made after a long time in the other mode, counts for
 * more than a routine one.  A slow call counts in the typical time `est` as at most 1.5
 * times it: with 3 times, one preempted parallel call raised the estimate by half and
 * sent a 0.7 ms convolution alone for the next hundred calls (quiet machine, 2-thread
 * speed-up 1.14 in bench_int8.py; 1.82 with 1.5).  What it took beyond that goes to
 * `stall`, a slow running mean (over ~100 calls, so that one stall on a quiet machine
 * does not send a job alone, while stalls that keep coming do; an exploring call, a
 * fresh look at a mode not run for a while, counts for a quarter, so that a job sent
 * alone by a burst of stalls comes back once they stop): on a busy machine a
 * worker preempted while it holds a unit makes the caller wait for it, now and then,
 * for milliseconds, and a choice made on typical times alone kept a 0.1 ms depthwise
 * convolution in parallel at 0.85 of its 1-thread speed. */
static void qlearn_pool_learn(qlearn_pool_choice_t *c, int mode, float x, int exploring) {
    float e = c->est[mode];
    if (c->n[mode] < QLEARN_POOL_WARMUP) c->n[mode]++;
    if (c->n[mode] == 1) return;
    if (c->n[mode] == 2 || (c->n[mode] < QLEARN_POOL_WARMUP && x < e)) {
        c->est[mode] = x;      /* warming up: the fastest call (a slow one is noise) */
        return;
    }
    float excess = x > 1.5f * e ? x - 1.5f * e : 0.0f;
    if (excess > 0) x = 1.5f * e;              /* one preempted call is not the machine */
    /* an exploring call well under the estimate replaces it: noise only slows a call
     * down, so a fast look is what the mode can do now (moving halfway, a job whose pool
     * estimate a noisy start had raised from 133 to 362 us needed several explorations,
     * each up to 4 x 50 calls apart, to come back: a quiet bench_int8.py run then kept
     * a 1.7x-faster-in-parallel GEMM 64x1024x1024 alone for 96 % of its calls) */
    c->est[mode] = exploring && x < 0.67f * e ? x
                   : e + (x - e) * (exploring ? 0.5f : 0.25f);
        c->stall[mode] += (excess - c->stall[mode]) * (exploring ? 0.25f : 0.01f);
}

/* The mode of the next call of kind c (0 alone, 1 on the pool); *learn says whether to
 * learn from its time, *exploring whether it is part of an exploration.  An exploration
 * is two calls, or as many as take ~200 us (up to 16), and learns from its second half:
 * the first calls find an idle worker asleep, which back-to-back parallel calls would
 * not, and a worker takes tens of microseconds to wake (a 10 us GEMM explored with two
 * calls looked no faster in parallel, and stayed alone at 0.99 of its 1-thread speed
 * where parallel calls gave 1.5). */
static int qlearn_pool_decide(qlearn_pool_choice_t *c, int *learn, int *exploring) {
    *learn = 1;
    *exploring = 0;
    if (c->n[0] < QLEARN_POOL_WARMUP || c->n[1] < QLEARN_POOL_WARMUP)
        return c->n[1] < QLEARN_POOL_WARMUP;  /* warm-up: the pool's calls, then alone */
    if (c->burst > 0) {                      /* a later call of an exploration */
        c->burst--;
        *exploring = 1;
        if (c->burst_skip > 0) {
            c->burst_skip--;
            *learn = 0;
        }
        return c->burst_mode;
    }
    float t0 = qlearn_pool_expected(c, 0), t1 = qlearn_pool_expected(c, 1);
    int mode = t1 < t0;
    if (++c->calls < QLEARN_POOL_EXPLORE_CALLS) return mode;
    float other = c->est[!mode] > 1000.0f ? c->est[!mode] : 1000.0f;
    int calls = (int)(QLEARN_POOL_EXPLORE_NS / other) + 1;
    if (calls < 2) calls = 2;
    if (calls > 16) calls = 16;
    float chosen = mode ? t1 : t0, excess = (mode ? t0 : t1) - chosen;
    if (excess < 0.25f * chosen) excess = 0.25f * chosen;
    if (c->spent < QLEARN_POOL_EXPLORE_RATIO * (float)c->backoff * (float)calls * excess)
        return mode;
    c->burst_mode = !mode;
    c->burst = calls - 1;
    c->burst_skip = calls / 2 - 1;
    c->calls = 0;
    c->spent = 0;
    *learn = 0;
    *exploring = 1;
    return !mode;
}

/* After a call of kind c in `mode` that took ns. */
static void qlearn_pool_record(qlearn_pool_choice_t *c, int mode, long ns, int learn,
                               int exploring) {
    if (learn) qlearn_pool_learn(c, mode, (float)ns, exploring);
    if (!exploring) {
        c->spent += (float)ns;
        /* stalls seen in the other mode age: they said how busy the machine was */
        float keep = 1.0f - (float)ns / QLEARN_POOL_FORGET_NS;
        c->stall[!mode] *= keep > 0 ? keep : 0.0f;
    } else if (c->burst == 0) {              /* the exploration's last call */
        /* the explored mode won: it is the mode now, and looks are frequent again;
         * it lost clearly: look again later, up to 4 times later */
        float explored = qlearn_pool_expected(c, mode);
        float chosen = qlearn_pool_expected(c, !mode);
        if (explored < chosen) c->backoff = 1;
        else if (explored > 1.25f * chosen && c->backoff < 4) c->backoff *= 2;
    }
}

/* Plan a job of `units` units of kind (fn, units, num_threads, work): choose whether it
 * runs alone or on the pool, before the caller splits it (qlearn_pool_plan.h).  Returns
 * the threads it will run on (1: alone); qlearn_pool_run_plan must follow.  `work`
 * tells jobs of the same function and size apart (the caller passes, say, its
 * multiply-add count). */
static int qlearn_pool_plan(qlearn_pool_plan_t *pl, qlearn_pool_fn fn, long units,
                            int num_threads, long work) {
    qlearn_pool_t *p = &qlearn_pool;
    pl->choice = NULL;
    pl->threads = 1;
    pl->locked = 0;
    pl->learn = pl->exploring = 0;
    if (units <= 1 || num_threads <= 1 || pthread_mutex_trylock(&p->submit) != 0)
        return 1;
    pl->locked = 1;
    if (units > QLEARN_POOL_MAX_UNITS) units = QLEARN_POOL_MAX_UNITS;
    int nw = num_threads - 1;
    if (nw > units - 1) nw = (int)(units - 1);
    if (p->nworkers < nw) qlearn_pool_grow(p, nw);
    if (nw > p->nworkers) nw = p->nworkers;
    if (nw <= 0) return 1;
    if (qlearn_pool_adaptive < 0) qlearn_pool_adaptive = 1;
    if (qlearn_pool_adaptive == 2) return 1;   /* every job alone (tests) */
    int mode = 1;
    if (qlearn_pool_adaptive) {
        qlearn_pool_choice_t *c = qlearn_pool_choice(fn, units, work, num_threads);
        mode = qlearn_pool_decide(c, &pl->learn, &pl->exploring);
        pl->choice = c;
    }
    pl->threads = mode ? nw + 1 : 1;
    return pl->threads;
}

/* Run the planned job: fn(ctx, i, slot) for every i in [0, items), on the plan's
 * threads (the caller is slot 0, workers 1 .. threads - 1); returns when every item is
 * done.  The time it took teaches the plan's kind of job. */
static void qlearn_pool_run_plan(qlearn_pool_plan_t *pl, qlearn_pool_fn fn, void *ctx,
                                 long items) {
    qlearn_pool_t *p = &qlearn_pool;
    if (!pl->locked) {
        for (long i = 0; i < items; i++) fn(ctx, i, 0);
        return;
    }
    int mode = pl->threads > 1 && items > 1;
    long t0 = qlearn_pool_now_ns();
    if (mode) {
        long units = items < QLEARN_POOL_MAX_UNITS ? items : QLEARN_POOL_MAX_UNITS;
        int nw = pl->threads - 1;
        qlearn_pool_dispatch(p, fn, ctx, items, nw < units - 1 ? nw : (int)(units - 1));
    } else {
        p->stat_serial++;
        p->stat_serial_units += items;
        for (long i = 0; i < items; i++) fn(ctx, i, 0);
    }
    if (pl->choice)
        qlearn_pool_record((qlearn_pool_choice_t *)pl->choice, mode,
                           qlearn_pool_now_ns() - t0, pl->learn, pl->exploring);
    pl->locked = 0;
    pthread_mutex_unlock(&p->submit);
}

/* Run fn(ctx, i, slot) for every i in [0, items) on up to num_threads threads, the
 * caller included: a job whose split does not depend on the thread count, planned and
 * run at once.  Returns the number of threads it ran on (1: alone). */
static int qlearn_pool_run(qlearn_pool_fn fn, void *ctx, long items, int num_threads,
                           long work) {
    qlearn_pool_plan_t pl;
    if (items <= 0) return 1;
    qlearn_pool_plan(&pl, fn, items, num_threads, work);
    qlearn_pool_run_plan(&pl, fn, ctx, items);
    return pl.threads;
}

/* Tests: the adaptive choice fed with given times instead of running anything.  Call i
 * takes ns[2 i] alone or ns[2 i + 1] on the pool; modes[i] gets the mode chosen.  A
 * private state is used (the pool's is untouched), so the policy can be checked
 * against timing patterns (a quiet machine with one stall, a busy one) anywhere.
 * switch_ns (nswitch x 2, may be NULL) is what a change of mode adds: the j-th call of
 * a run of `mode` calls (j = 0 the first after the other mode, or the first call of
 * all) takes switch_ns[2 j + mode] more.  That is the worker waking up (it sleeps
 * after 50 us without a job) and finding its half of the operands gone from its
 * caches, and, going alone, the caller fetching the half the worker had. */
static void qlearn_pool_simulate(const double *ns, long calls, int *modes,
                                 const double *switch_ns, long nswitch) {
    qlearn_pool_choice_t c;
    qlearn_pool_choice_reset(&c, NULL, 0, 0, 0);
    int last = -1;
    long run = 0;                     /* calls of the current mode so far */
    for (long i = 0; i < calls; i++) {
        int learn, exploring;
        int mode = qlearn_pool_decide(&c, &learn, &exploring);
        modes[i] = mode;
        run = mode == last ? run + 1 : 0;
        last = mode;
        double x = ns[2 * i + mode] + (run < nswitch ? switch_ns[2 * run + mode] : 0.0);
        qlearn_pool_record(&c, mode, (long)x, learn, exploring);
    }
}

/* Stop and join every worker (interpreter exit); a later job starts new ones. */
static void qlearn_pool_shutdown(void) {
    qlearn_pool_t *p = &qlearn_pool;
    pthread_mutex_lock(&p->submit);
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int w = 0; w < p->nworkers; w++) pthread_join(p->threads[w], NULL);
    p->nworkers = 0;
    p->placed_off = -1;
    atomic_store(&p->stop, 0);
    pthread_mutex_unlock(&p->submit);
}

static int qlearn_pool_workers(void) { return qlearn_pool.nworkers; }

/* Turn the adaptive choice on (1) or off (0: every job asked for several threads runs
 * on the pool; tests use it); returns the previous setting. */
static int qlearn_pool_set_adaptive(int on) {
    qlearn_pool_t *p = &qlearn_pool;
    pthread_mutex_lock(&p->submit);
    int before = qlearn_pool_adaptive < 0 ? 1 : qlearn_pool_adaptive;
    qlearn_pool_adaptive = on;
    pthread_mutex_unlock(&p->submit);
    return before;
}

/* Let the pool keep its workers off the caller's CPU (1, the default) or never touch
 * their affinity (0; workers already placed get the caller's affinity back); returns
 * the previous setting. */
static int qlearn_pool_set_placement(int on) {
    qlearn_pool_t *p = &qlearn_pool;
    pthread_mutex_lock(&p->submit);
    int before = p->placement;
    p->placement = on != 0;
#if QLEARN_POOL_CAN_PLACE
    if (!on && p->placed_off >= 0) {
        cpu_set_t m;
        if (pthread_getaffinity_np(pthread_self(), sizeof m, &m) == 0)
            qlearn_pool_set_affinity(p, &m);
    }
#endif
    if (!on) p->placed_off = -1;
    pthread_mutex_unlock(&p->submit);
    return before;
}

static int qlearn_pool_can_place(void) { return QLEARN_POOL_CAN_PLACE; }

/* Let a caller that waits long for a placed worker's unit lend it its CPU (1, the
 * default: qlearn_pool_lend) or never (0); returns the previous setting. */
static int qlearn_pool_set_lending(int on) {
    qlearn_pool_t *p = &qlearn_pool;
    pthread_mutex_lock(&p->submit);
    int before = p->lending;
    p->lending = on != 0;
    pthread_mutex_unlock(&p->submit);
    return before;
}

/* How long an idle worker spins before it sleeps, in microseconds (< 0: 0); returns the
 * previous value.  Python sets it from QLEARN_POOL_SPIN_US (qlearn/kernels/threads.py):
 * nothing here reads the environment. */
static long qlearn_pool_set_spin_us(long us) {
    qlearn_pool_t *p = &qlearn_pool;
    pthread_mutex_lock(&p->submit);
    long before = p->spin_ns < 0 ? 50 : p->spin_ns / 1000L;
    p->spin_ns = (us < 0 ? 0 : us) * 1000L;
    pthread_mutex_unlock(&p->submit);
    return before;
}

/* jobs run on several threads, jobs run alone (threads asked for), waits at the end,
 * waits longer than 100 us, units run by workers, microseconds waited, units of the
 * jobs run alone, worker placements, workers lent the caller's CPU */
static void qlearn_pool_stats(long out[9]) {
    qlearn_pool_t *p = &qlearn_pool;
    pthread_mutex_lock(&p->submit);
    out[0] = p->stat_jobs; out[1] = p->stat_serial; out[2] = p->stat_waits;
    out[3] = p->stat_long_waits; out[4] = p->stat_worker_units; out[5] = p->stat_wait_us;
    out[6] = p->stat_serial_units; out[7] = p->stat_placements; out[8] = p->stat_lends;
    pthread_mutex_unlock(&p->submit);
}

/* debugging: the adaptive state of choice slot i (expected ns alone, on the pool, the
 * stall part of each, backoff, items, work); returns 0 for an empty slot */
static int qlearn_pool_choice_state(int i, double out[7]) {
    if (i < 0 || i >= QLEARN_POOL_SLOTS || !qlearn_pool_choices[i].fn) return 0;
    qlearn_pool_choice_t *c = &qlearn_pool_choices[i];
    out[0] = c->est[0]; out[1] = c->est[1];
    out[2] = qlearn_pool_expected(c, 0) - c->est[0];
    out[3] = qlearn_pool_expected(c, 1) - c->est[1];
    out[4] = c->backoff; out[5] = (double)c->items; out[6] = (double)c->work;
    return 1;
}

#endif
