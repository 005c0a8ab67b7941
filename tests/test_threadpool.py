"""The int8 kernels' thread pool (pyx/include/qlearn_threadpool.h) and what it promises.

* every item of a job runs exactly once, on a slot below the thread count, for any
  item count (including more items than the pool's 65535 claimable units);
* a job started from inside a job, or from several Python threads at once, runs
  (alone) instead of deadlocking, and gives the serial results;
* a forked child process (pytest-xdist, multiprocessing) gets a working pool;
* the pool stops at shutdown and starts again on the next call;
* results are bit-identical at 1 and 2 threads on every GEMM path, for awkward shapes
  (M = 1, N not a multiple of 16, K not a multiple of 4, tiny convolutions, groups,
  depthwise, float output), the adaptive 1-or-2-thread choice switched off so that
  every 2-thread call really goes through the pool;
* the adaptive alone-or-pool policy, fed simulated timings (``_pool_simulate``: no
  clock), stays on the pool on a quiet machine, runs alone on a busy one, and comes
  back to the pool after short bursts of load.
No timing is asserted anywhere.
"""
import multiprocessing
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import qlearn as ql
import qlearn.nn.quantized as nnq
import qlearn.nn.quantized.functional as qF
from qlearn._ext import _openmp
from qlearn.kernels import int8 as int8_kernels
from qlearn.kernels import simd
from qlearn.nn.quantized import packed_params

PATHS = [p.name.lower() for p in simd.available()]


@pytest.fixture(autouse=True)
def always_parallel():
    """Every job asked for several threads goes to the pool (no adaptive choice)."""
    before = _openmp.set_pool_adaptive(False)
    threads = ql.get_num_threads()
    yield
    _openmp.set_pool_adaptive(before)
    ql.set_num_threads(threads)


@pytest.fixture(params=PATHS)
def path(request):
    with simd.use(request.param):
        yield request.param


# ---- the pool itself -------------------------------------------------------------------
@pytest.mark.parametrize("items", [0, 1, 2, 3, 17, 1000, 70_001])
@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_every_item_runs_once_on_a_valid_slot(items, threads):
    count, slot = _openmp._pool_selftest(items, threads, spin=200)
    assert_array_equal(count, np.ones(items, np.intc))
    assert slot.min(initial=0) >= 0 and slot.max(initial=0) < threads
    if threads == 1:
        assert_array_equal(slot, np.zeros(items, np.intc))


def test_nested_job_runs_alone():
    """A kernel whose work calls a parallel kernel: the inner job runs on the calling
    thread (the pool is busy), it does not wait for the pool."""
    count, _ = _openmp._pool_selftest(64, 2, spin=2000, nested=True)
    assert_array_equal(count, np.ones(64, np.intc))


def test_shutdown_and_restart():
    _openmp._pool_selftest(100, 2)
    _openmp._shutdown_pool()
    assert _openmp.pool_workers() == 0
    count, _ = _openmp._pool_selftest(100, 2)
    assert_array_equal(count, np.ones(100, np.intc))
    assert _openmp.pool_workers() >= 1


def test_stats_count_jobs():
    before = _openmp.pool_stats()
    _openmp._pool_selftest(50, 2, spin=5000)
    after = _openmp.pool_stats()
    assert after["jobs"] == before["jobs"] + 1
    assert set(after) == {"jobs", "serial", "waits", "long_waits", "worker_units",
                          "wait_us", "serial_units", "placements", "lends"}


def _thread_cpu(tid):
    """The CPU a thread of this process last ran on (/proc: field 39 of its stat)."""
    with open(f"/proc/self/task/{tid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[36])


@pytest.fixture
def fresh_workers():
    """The pool restarted with its workers born on the caller's CPU only (they inherit
    the creating thread's affinity), then the caller's affinity given back: a worker
    and the caller that meet on one CPU, on purpose.  Yields (worker tids, the caller's
    affinity); the caller's affinity and the placement setting are restored after."""
    if not (_openmp.pool_can_place() and hasattr(os, "sched_setaffinity")):
        pytest.skip("no worker placement on this platform")
    mine = os.sched_getaffinity(0)
    if len(mine) < 2:
        pytest.skip("the process may run on one CPU only")
    before = _openmp.set_pool_placement(True)
    _openmp._shutdown_pool()
    tasks = set(os.listdir("/proc/self/task"))
    try:
        os.sched_setaffinity(0, {min(mine)})
        _openmp._pool_selftest(64, 2, spin=2000)        # starts one worker, on min(mine)
        workers = [int(t) for t in set(os.listdir("/proc/self/task")) - tasks]
        assert len(workers) == _openmp.pool_workers() == 1
        assert os.sched_getaffinity(workers[0]) == {min(mine)}
        os.sched_setaffinity(0, mine)
        yield workers, mine
    finally:
        os.sched_setaffinity(0, mine)
        _openmp.set_pool_placement(before)
        _openmp._shutdown_pool()


def test_workers_leave_the_callers_cpu(fresh_workers):
    """A worker seen running on the caller's CPU is moved off it: every worker's
    affinity becomes the caller's minus the CPU the caller is on (and follows the
    caller when it moves); turning placement off gives them the caller's back."""
    workers, mine = fresh_workers
    placed0 = _openmp.pool_stats()["placements"]
    for _ in range(50):
        # the caller is moved to the worker's CPU (and may go on running anywhere), then
        # runs a job long enough for the worker to get that CPU: unless the scheduler
        # moved the caller away in the meantime, they met
        os.sched_setaffinity(0, {min(mine)})
        os.sched_setaffinity(0, mine)
        count, _ = _openmp._pool_selftest(64, 2, spin=20000)
        assert_array_equal(count, np.ones(64, np.intc))
        if _openmp.pool_stats()["placements"] > placed0:
            break
    assert _openmp.pool_stats()["placements"] > placed0
    for _ in range(20):      # placed: the worker's CPUs are the caller's but its own
        _openmp._pool_selftest(64, 2, spin=2000)
        here = _thread_cpu(threading.get_native_id())
        allowed = os.sched_getaffinity(workers[0])
        if allowed == mine - {here}:
            break
    assert allowed == mine - {here}
    assert _openmp.set_pool_placement(False) is True
    assert os.sched_getaffinity(workers[0]) == mine
    _openmp._pool_selftest(64, 2, spin=2000)
    assert os.sched_getaffinity(workers[0]) == mine    # and they are left alone


def _place(mine, placed0):
    """Make the caller and the worker meet until the pool places the worker."""
    for _ in range(50):
        os.sched_setaffinity(0, {min(mine)})
        os.sched_setaffinity(0, mine)
        _openmp._pool_selftest(64, 2, spin=20000)
        if _openmp.pool_stats()["placements"] > placed0:
            return True
    return False


def test_a_waiting_caller_lends_its_cpu(fresh_workers):
    """A placed worker that still holds a unit after the caller has waited 100 us for
    it (here: its units take ~1000 times longer) is moved onto the caller's CPU until
    the job ends, then gets its placed affinity back; every item still runs once.
    With lending off the caller just waits."""
    workers, mine = fresh_workers
    assert _place(mine, _openmp.pool_stats()["placements"])
    for _ in range(20):          # placed off the CPU the caller is on
        _openmp._pool_selftest(64, 2, spin=2000)
        here = _thread_cpu(threading.get_native_id())
        if os.sched_getaffinity(workers[0]) == mine - {here}:
            break
    placed = mine - {here}
    assert os.sched_getaffinity(workers[0]) == placed
    assert _openmp.set_pool_lending(True) is True
    try:
        # the caller kept on its CPU: the pool neither re-places the worker after the
        # job nor lets it meet the caller but by lending
        os.sched_setaffinity(0, {here})
        lends0 = _openmp.pool_stats()["lends"]
        for _ in range(20):
            count, slot = _openmp._pool_selftest(64, 2, spin=20000, worker_spin=20000000)
            assert_array_equal(count, np.ones(64, np.intc))
            if _openmp.pool_stats()["lends"] > lends0:
                break
        assert _openmp.pool_stats()["lends"] > lends0
        assert (slot == 1).any()
        assert os.sched_getaffinity(workers[0]) == placed      # given back
        assert _openmp.set_pool_lending(False) is True
        lends1 = _openmp.pool_stats()["lends"]
        for _ in range(3):
            count, _ = _openmp._pool_selftest(64, 2, spin=20000, worker_spin=20000000)
            assert_array_equal(count, np.ones(64, np.intc))
        assert _openmp.pool_stats()["lends"] == lends1
    finally:
        os.sched_setaffinity(0, mine)
        _openmp.set_pool_lending(True)


def test_placement_off_leaves_workers_where_they_were_born(fresh_workers):
    workers, _ = fresh_workers
    _openmp.set_pool_placement(False)
    placed0 = _openmp.pool_stats()["placements"]
    for _ in range(20):
        _openmp._pool_selftest(64, 2, spin=2000)
    assert _openmp.pool_stats()["placements"] == placed0
    assert os.sched_getaffinity(workers[0]) == {min(os.sched_getaffinity(0))}


def test_adaptive_choice_still_runs_everything():
    _openmp.set_pool_adaptive(True)
    for _ in range(200):    # warm-up, explorations and exploitation of one job kind
        count, slot = _openmp._pool_selftest(30, 2, spin=3000)
        assert_array_equal(count, np.ones(30, np.intc))
        assert slot.max() <= 1
    kinds = [k for k in _openmp._pool_choices() if k[5] == 30 and k[6] == 30 * 3000]
    assert len(kinds) == 1
    est_alone, est_pool, stall_alone, stall_pool, backoff = kinds[0][:5]
    assert est_alone > 0 and est_pool > 0 and stall_alone >= 0 and stall_pool >= 0
    assert backoff in (1, 2, 4)



# ---- the adaptive choice's policy, on simulated timings (no clock involved) ------------
def _times(rng, calls, alone_us, pool_us, p_stall=0.0, stall_us=0.0):
    """(calls, 2) nanoseconds: each call alone / on the pool, +-3 % noise, and a stall
    (exponential, mean ``stall_us``) in a fraction ``p_stall`` of the pool's calls."""
    t = np.empty((calls, 2))
    t[:, 0] = alone_us * (1 + 0.03 * rng.random(calls))
    t[:, 1] = pool_us * (1 + 0.03 * rng.random(calls))
    t[:, 1] += (rng.random(calls) < p_stall) * stall_us * rng.exponential(1, calls)
    return t * 1e3


def _taken(t, modes, switch=None):
    """The time the chosen modes took, with what each change of mode cost."""
    x = t[np.arange(len(t)), modes]
    if switch is not None:
        run = np.zeros(len(modes), np.intp)     # calls since the mode last changed
        for i in range(1, len(modes)):
            run[i] = run[i - 1] + 1 if modes[i] == modes[i - 1] else 0
        near = run < len(switch)
        x = x + np.where(near, switch[np.minimum(run, len(switch) - 1), modes], 0.0)
    return x.sum()


QUIET = (580, 310, 0.005, 2000)      # a 3x3 conv: 2-thread speed-up 1.87, rare stalls
BUSY = (580, 620, 0.25, 2000)        # another process busy: no speed-up, many stalls
# What a change of mode costs (ns; row j: the j-th call after the change, columns alone,
# pool): the first parallel call after alone ones finds the worker asleep (it sleeps
# 50 us after its last job) and its caches cold, the next ones still a little; going
# alone, the caller fetches the half of the operands the worker had.  Measured with
# benchmarks/bench_pool_switch.py on the 2-vCPU VNNI machine, quiet (load 0.1):
# 1-thread calls, then 2-thread ones, the adaptive choice off, medians of 25 (the
# first / second parallel call over the steady ones: +76-130 / +0-35 us on the 0.3-1 ms
# convolutions, +98 / +22 / +2 us on GEMM 16x1024x1024; the first alone call after
# parallel ones +5-25 us).
SWITCH = np.array([[15e3, 100e3], [5e3, 30e3], [0, 10e3]])
NO_SWITCH = None


@pytest.mark.parametrize("switch", [NO_SWITCH, SWITCH], ids=["free switch", "switch cost"])
@pytest.mark.parametrize("seed", range(5))
def test_policy_quiet_machine_stays_on_the_pool(seed, switch):
    t = _times(np.random.default_rng(seed), 1000, *QUIET)
    modes = _openmp._pool_simulate(t, switch)
    assert set(np.unique(modes)) <= {0, 1}
    assert _taken(t, modes, switch) <= 1.04 * t[:, 1].sum()


@pytest.mark.parametrize("switch", [NO_SWITCH, SWITCH], ids=["free switch", "switch cost"])
@pytest.mark.parametrize("seed", range(5))
def test_policy_busy_machine_runs_alone(seed, switch):
    t = _times(np.random.default_rng(seed), 1000, *BUSY)
    modes = _openmp._pool_simulate(t, switch)
    assert modes.mean() < 0.1
    assert _taken(t, modes, switch) <= 1.08 * t[:, 0].sum()


@pytest.mark.parametrize("switch", [NO_SWITCH, SWITCH], ids=["free switch", "switch cost"])
@pytest.mark.parametrize("seed", range(7))
def test_policy_comes_back_after_bursts_of_load(seed, switch):
    """Three short bursts of stalls (another process starting, ~10 ms each) in a quiet
    run of a 0.55 ms convolution: the job goes alone during a burst and comes back to
    the pool after it.  (The policy before the stalls of the unchosen mode faded took
    1.14-1.40 times the best mode's time on these; one seed stayed alone to the end.
    With the switch cost, the policy that warmed a new kind up alternately, each pool
    call after an alone one and so finding the worker asleep, took more than 1.15
    times it on seeds 1 and 2.)"""
    rng = np.random.default_rng(seed)
    quiet, burst = (540, 320, 0.005, 3000), (540, 560, 0.3, 3000)
    parts = []
    for _ in range(3):
        parts += [_times(rng, 200, *quiet), _times(rng, 20, *burst)]
    parts.append(_times(rng, 500, *quiet))
    t = np.concatenate(parts)
    modes = _openmp._pool_simulate(t, switch)
    best = sum(part.sum(axis=0).min() for part in parts)
    assert _taken(t, modes, switch) <= 1.15 * best
    assert modes[-300:].mean() > 0.9


@pytest.mark.parametrize("switch", [NO_SWITCH, SWITCH], ids=["free switch", "switch cost"])
@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("start", [(100, 600, 0.2, 1000), (30, 400, 0.3, 500)],
                         ids=["100-slow-calls", "30-stalled-calls"])
def test_policy_forgets_a_noisy_start(seed, start, switch):
    """A GEMM 64x1024x1024 (268 us alone, 150 us on the pool) whose first pool calls
    met a busy machine, then a quiet one: the first fast exploring call brings the job
    back.  (When an exploring call only moved the pool's estimate halfway, a noisy start
    kept such a job alone for hundreds of calls: 1.16 and 1.33 times the best modes'
    time at worst on these seeds; seen in a quiet bench_int8.py run as 4 % of a GEMM
    64x1024x1024's 2-thread calls on the pool, against 99 % in the run before.)"""
    rng = np.random.default_rng(seed)
    parts = [_times(rng, start[0], 268, *start[1:]), _times(rng, 1500, 268, 150, 0.005, 2000)]
    t = np.concatenate(parts)
    modes = _openmp._pool_simulate(t, switch)
    best = sum(part.sum(axis=0).min() for part in parts)
    assert _taken(t, modes, switch) <= 1.10 * best


def test_policy_simulation_checks_its_input():
    with pytest.raises(ValueError, match="`ns` must have shape"):
        _openmp._pool_simulate(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="`switch` must have shape"):
        _openmp._pool_simulate(np.zeros((4, 2)), np.zeros(3))
    assert len(_openmp._pool_simulate(np.zeros((0, 2)))) == 0


def test_policy_simulation_charges_the_switch():
    """A change of mode costs what ``switch`` says, on the calls after the change: the
    simulated choice sees it (here, equal modes but for a costly switch to the pool:
    after the warm-up the job stays alone)."""
    t = np.full((400, 2), 500e3)
    modes = _openmp._pool_simulate(t, np.array([[0.0, 400e3]] * 8))
    assert modes[:4].all() and not modes[4:8].any()        # the warm-up: pool, alone
    assert modes[8:].mean() < 0.1

def _linear(rng, m=7, k=203, n=129):
    lin = nnq.Linear(k, n)
    w = ql.QTensor(rng.integers(-128, 128, (n, k)).astype(np.int8), ql.qint8,
                   ql.per_tensor_affine, 0.01, 0)
    lin.set_weight_bias(w, rng.standard_normal(n).astype(np.float32))
    lin.scale, lin.zero_point = 0.3, 60
    return lin


def _qx(rng, shape, qmax=255, zp=17):
    return ql.QTensor(rng.integers(0, qmax + 1, shape).astype(np.uint8), ql.quint8,
                      ql.per_tensor_affine, 0.02, zp)


def test_concurrent_python_threads_match_serial(rng):
    """Several Python threads call parallel kernels at once (the GIL is released):
    one gets the pool, the others run alone; nothing deadlocks, results are serial's."""
    ql.set_num_threads(2)
    lin = _linear(rng, k=1024, n=512)
    conv = nnq.Conv2d(16, 24, 3, padding=1)
    conv.set_weight_bias(ql.QTensor(rng.integers(-128, 128, (24, 16, 3, 3)).astype(np.int8),
                                    ql.qint8, ql.per_tensor_affine, 0.01, 0), None)
    xs = [_qx(rng, (16, 1024)) for _ in range(12)]
    cs = [_qx(rng, (1, 16, 20, 20)) for _ in range(12)]
    want_l = [lin(x).int_repr() for x in xs]
    want_c = [conv(x).int_repr() for x in cs]
    with ThreadPoolExecutor(4) as ex:
        got_l = list(ex.map(lambda x: lin(x).int_repr(), xs * 3))
        got_c = list(ex.map(lambda x: conv(x).int_repr(), cs * 3))
    for i, g in enumerate(got_l):
        assert_array_equal(g, want_l[i % 12])
    for i, g in enumerate(got_c):
        assert_array_equal(g, want_c[i % 12])


def _child(conn, a, w, b):
    # The layer is built at 1 thread: its constructor quantizes a default weight with
    # an OpenMP kernel, and libgomp's own pool does not survive fork() (a 2-thread
    # OpenMP region in a child of a parent that used one hangs).  The forward runs
    # on qlearn's pool only, at 2 threads.
    ql.set_num_threads(1)
    lin = nnq.Linear(w.shape[1], w.shape[0])
    lin.set_weight_bias(ql.QTensor(w, ql.qint8, ql.per_tensor_affine, 0.01, 0), b)
    lin.scale, lin.zero_point = 0.3, 60
    x = ql.QTensor(a, ql.quint8, ql.per_tensor_affine, 0.02, 17)
    ql.set_num_threads(2)
    _openmp.set_pool_adaptive(False)
    out = lin(x).int_repr()
    conn.send((out, _openmp.pool_workers()))
    conn.close()


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                    reason="no fork on this platform")
def test_fork_child_has_a_working_pool(rng):
    ql.set_num_threads(2)
    _openmp._pool_selftest(200, 2, spin=2000)         # the parent's workers exist
    a = rng.integers(0, 256, (33, 300)).astype(np.uint8)
    w = rng.integers(-128, 128, (200, 300)).astype(np.int8)
    b = rng.standard_normal(200).astype(np.float32)
    lin = nnq.Linear(300, 200)
    lin.set_weight_bias(ql.QTensor(w, ql.qint8, ql.per_tensor_affine, 0.01, 0), b)
    lin.scale, lin.zero_point = 0.3, 60
    want = lin(ql.QTensor(a, ql.quint8, ql.per_tensor_affine, 0.02, 17)).int_repr()
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_child, args=(child, a, w, b))
    p.start()
    got, workers = parent.recv() if parent.poll(60) else (None, None)
    p.join(60)
    if p.exitcode is None:
        p.kill()
    assert p.exitcode == 0
    assert workers >= 1          # the child started its own worker
    assert_array_equal(got, want)


def _busiest_share(m, threads, rows):
    """Pixels of the busiest thread when threads take blocks of ``rows`` in turn."""
    shares = [0] * threads
    for i, r0 in enumerate(range(0, m, rows)):
        shares[i % threads] += min(rows, m - r0)
    return max(shares)


@pytest.mark.parametrize("threads", [2, 3, 4])
def test_conv_blocks_even_the_threads_shares(threads):
    """The fused conv's work unit: 96 pixels on one thread; on more, a multiple of 12
    (both tile heights), at least 4 blocks per thread where the output allows, and no
    multiple of 12 that is not larger would give the busiest thread 2 % less."""
    from qlearn._ext import _qconv
    assert _qconv.block_rows(196, 1) == 96
    assert _qconv.block_rows(196, 2) == 24          # 100 + 96 pixels, not 108 + 88
    for m in list(range(1, 400)) + [784, 3136, 3136 * 8]:
        rows = _qconv.block_rows(m, threads)
        assert rows % 12 == 0 and 12 <= rows <= 96
        per_unit = -(-m // (4 * threads))                     # 4 blocks per thread
        most = min(96, max(12, -(-per_unit // 12) * 12))
        assert rows <= most
        best = _busiest_share(m, threads, rows)
        for r in range(12, most + 1, 12):
            assert _busiest_share(m, threads, r) >= 0.98 * best, (m, rows, r)
    assert _qconv.block_rows(784, 2, groups=32) == 96  # the groups' blocks: as before
    with pytest.raises(ValueError, match="must be >= 1"):
        _qconv.block_rows(0, 2)


# ---- 1 thread == 2 threads, bit for bit --------------------------------------------------
def _at(threads, fn):
    ql.set_num_threads(threads)
    return fn()


# M = 1 and M = 16 split over N panels; N not a multiple of 16; K not a multiple of 4;
# activations too large for L2 (M K > 2**19), split over M at 2 threads
@pytest.mark.parametrize("m,k,n", [(1, 1023, 1000), (16, 1024, 1024), (5, 509, 770),
                                   (97, 255, 129), (300, 64, 17), (2, 3, 5000),
                                   (151, 3600, 70), (40, 13200, 33)])
@pytest.mark.parametrize("wzp", [0, 3])
def test_linear_same_at_1_and_2_threads(path, rng, m, k, n, wzp):
    w = ql.QTensor(rng.integers(-128, 128, (n, k)).astype(np.int8), ql.qint8,
                   ql.per_tensor_affine, 0.01, wzp)
    b = rng.standard_normal(n).astype(np.float32)
    x = _qx(rng, (m, k))
    pw = packed_params.PackedLinearWeight(w, b)
    one = _at(1, lambda: packed_params.linear_apply(x, pw, 0.3, 60).int_repr())
    two = _at(2, lambda: packed_params.linear_apply(x, pw, 0.3, 60).int_repr())
    assert_array_equal(two, one)
    xf = rng.standard_normal((m, k)).astype(np.float32)
    one_f = _at(1, lambda: packed_params.linear_dynamic_apply(xf, pw))
    two_f = _at(2, lambda: packed_params.linear_dynamic_apply(xf, pw))
    assert_array_equal(two_f, one_f)


# name: (N, C, H, W, O, k, stride, pad, dilation, groups)
CONVS = {
    "3x3 14x14 256": (1, 256, 14, 14, 256, 3, 1, 1, 1, 1),   # 196 pixels: small blocks
    "3x3 56x56": (1, 64, 56, 56, 64, 3, 1, 1, 1, 1),
    "tiny 3x3": (1, 8, 3, 3, 8, 3, 1, 1, 1, 1),
    "1x1": (2, 64, 9, 11, 40, 1, 1, 0, 1, 1),
    "stem 7x7/2": (1, 3, 45, 47, 16, 7, 2, 3, 1, 1),
    "groups 2, odd C": (2, 30, 13, 15, 22, 3, 1, 1, 1, 2),
    "dilated 5x5": (1, 12, 25, 23, 20, 5, 1, 4, 2, 1),
    "depthwise": (2, 48, 30, 29, 48, 3, 1, 1, 1, 48),
    "depthwise /2": (1, 32, 33, 31, 32, 3, 2, 1, 1, 32),
}


@pytest.mark.parametrize("cfg", CONVS.values(), ids=CONVS.keys())
@pytest.mark.parametrize("wzp", [0, 2])
def test_conv2d_same_at_1_and_2_threads(path, rng, cfg, wzp):
    n, c, h, wd, o, k, s, p, d, g = cfg
    w = ql.QTensor(rng.integers(-128, 128, (o, c // g, k, k)).astype(np.int8), ql.qint8,
                   ql.per_channel_affine, 1.0, 0, rng.uniform(0.002, 0.02, o),
                   np.full(o, wzp, np.int64), 0)
    b = rng.standard_normal(o).astype(np.float32)
    x = _qx(rng, (n, c, h, wd), zp=100)

    def run():
        return qF.conv2d(x, w, b, s, p, d, g, scale=0.7, zero_point=9).int_repr()
    assert_array_equal(_at(2, run), _at(1, run))


@pytest.mark.parametrize("shape", [(1, 3, 64, 65), (2, 64, 33, 17), (1, 256, 14, 14)])
def test_channels_last_same_at_1_and_2_threads(rng, shape):
    x = rng.integers(0, 256, shape).astype(np.uint8)
    want = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    assert_array_equal(int8_kernels.channels_last(x, 2), want)
    assert_array_equal(int8_kernels.channels_last(x, 1), want)


# The depthwise kernel's units are bands of output rows, each padding the input rows it
# reads in its own buffer: bands of 1 row (a row too wide for the buffer), bands that
# reach into the top and bottom padding, stride 2 and dilation 2, several images, 5x5
# and 7x7 windows (bands that re-read 4 and 6 rows).
@pytest.mark.parametrize("n,c,h,w,k,stride,pad,dil", [(1, 96, 9, 700, 3, 1, 2, 2),
                                                      (3, 32, 37, 20, 3, 2, 1, 1),
                                                      (2, 48, 17, 23, 3, 1, 2, 2),
                                                      (1, 16, 64, 64, 3, 2, 0, 1),
                                                      (2, 64, 41, 30, 5, 1, 2, 1),
                                                      (1, 32, 29, 400, 7, 2, 3, 1)])
def test_depthwise_bands_match_reference(path, rng, n, c, h, w, k, stride, pad, dil):
    from qlearn import reference
    x = rng.integers(0, 256, (n, c, h, w)).astype(np.uint8)
    wq = rng.integers(-128, 128, (c, 1, k, k)).astype(np.int8)
    wzp = rng.integers(-5, 6, c)
    pc = packed_params.PackedConvWeight(
        ql.QTensor(wq, ql.qint8, ql.per_channel_affine, 1.0, 0, np.full(c, 0.01), wzp, 0),
        None, stride, pad, dil, c)
    bias_q, mult = packed_params._conv_requant(pc, 0.02, 0.3)
    want = reference.depthwise_ref(x, wq, 201, wzp, bias_q, mult, 17, 0, 255, pc.stride,
                                   pc.padding, pc.dilation)
    xi = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    for threads in (1, 2):
        out = np.full((n,) + want.shape[2:] + (c,), 0xA5, np.uint8)
        int8_kernels.depthwise(xi, pc.dw_taps, pc.kernel_size, pc.stride, pc.padding,
                               pc.dilation, 201, bias_q, mult, 17, 0, 255, out, None,
                               threads)
        assert_array_equal(out.transpose(0, 3, 1, 2), want, err_msg=f"{threads} threads")


# ---- a job the pool runs alone is split as a 1-thread call (qlearn_pool_plan.h) ---------
# (the SIMD kernels only: the portable loops split the same way at any thread count)
simd_kernels = pytest.mark.skipif(simd.active() == simd.Simd.GENERIC,
                                  reason="the generic loops' split has no thread count")


@pytest.fixture
def pool_alone():
    _openmp._set_pool_alone(True)
    yield
    _openmp._set_pool_alone(False)


def _int8_layer(m, w):
    m.set_weight_bias(ql.QTensor(w, ql.qint8, ql.per_tensor_affine, 0.01, 0), None)
    m.scale, m.zero_point = 0.5, 64
    return m


def _alone_at_two_threads(m, a):
    """``m``'s output on ``a`` at 2 threads (the pool alone) equals its 1-thread output;
    returns the jobs and units the pool ran alone."""
    x = ql.QTensor(a, ql.quint8, ql.per_tensor_affine, 0.02, 10)
    ql.set_num_threads(1)
    want = m(x).int_repr()
    ql.set_num_threads(2)
    before = _openmp.pool_stats()
    got = m(x).int_repr()
    after = _openmp.pool_stats()
    assert_array_equal(got, want)
    assert after["jobs"] == before["jobs"]          # nothing ran in parallel
    return (after["serial"] - before["serial"],
            after["serial_units"] - before["serial_units"])


@simd_kernels
def test_gemm_run_alone_is_split_as_one_thread(rng, pool_alone):
    """M K > A_L2_BYTES: on 2 threads the rows are split (2 runs of row tiles x the
    panel blocks); run alone, it must be the 1-thread split, one unit per panel block."""
    m, k, n = 256, 4096, 1024
    lin = _int8_layer(nnq.Linear(k, n), rng.integers(-128, 128, (n, k)).astype(np.int8))
    jobs, units = _alone_at_two_threads(lin, rng.integers(0, 128, (m, k)).astype(np.uint8))
    assert units == n // (64 if simd.active() == simd.Simd.VNNI else 16)


@simd_kernels
def test_depthwise_run_alone_is_split_as_one_thread(rng, pool_alone):
    """On 2 threads a 56-row depthwise output is cut in 8 bands (each re-reads 2 halo
    rows); run alone, it must take the 1-thread bands: as many rows as fit the buffer."""
    c, h = 128, 56
    conv = _int8_layer(nnq.Conv2d(c, c, 3, padding=1, groups=c),
                       rng.integers(-128, 128, (c, 1, 3, 3)).astype(np.int8))
    jobs, units = _alone_at_two_threads(
        conv, rng.integers(0, 256, (1, c, h, h)).astype(np.uint8))
    band = (2 ** 17 // ((h + 2) * c) - 3) + 1            # DW_BUF_BYTES, dil 1, stride 1
    assert units == -(-h // band) < 8


def test_planned_jobs_match_one_thread_in_every_mode(rng):
    """Alone, adaptive and always parallel: the same integers as a 1-thread call."""
    x = ql.QTensor(rng.integers(0, 256, (2, 32, 20, 20)).astype(np.uint8), ql.quint8,
                   ql.per_tensor_affine, 0.02, 10)
    layers = [_int8_layer(nnq.Conv2d(32, 48, 3, padding=1),
                          rng.integers(-128, 128, (48, 32, 3, 3)).astype(np.int8)),
              _int8_layer(nnq.Conv2d(32, 32, 3, padding=1, groups=32),
                          rng.integers(-128, 128, (32, 1, 3, 3)).astype(np.int8))]
    ql.set_num_threads(1)
    want = [m(x).int_repr() for m in layers]
    ql.set_num_threads(2)
    for setting in ("alone", "adaptive", "parallel"):
        _openmp._set_pool_alone(setting == "alone")
        _openmp.set_pool_adaptive(setting != "parallel")
        for _ in range(12):          # warm-up and choices of the adaptive pool
            for m, ref in zip(layers, want):
                assert_array_equal(m(x).int_repr(), ref)
    _openmp._set_pool_alone(False)
