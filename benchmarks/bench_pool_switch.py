"""What a change of mode costs the int8 pool: the per-call times that follow a switch.

    python benchmarks/bench_pool_switch.py            # every shape of bench_int8.py
    python benchmarks/bench_pool_switch.py 2 5        # GEMM 256x1024x1024, first conv
    python benchmarks/bench_pool_switch.py --quick    # 3 repetitions (seconds; CI)

The adaptive alone-or-pool choice (pyx/include/qlearn_threadpool.h) is tested on
simulated timings (``_openmp._pool_simulate(ns, switch)``, tests/test_threadpool.py),
whose ``switch`` argument is what this measures.  For each layer of bench_int8.py,
with the adaptive choice off (every 2-thread call on the pool): 20 calls at 1 thread,
then 4 more timed (alone, steady), 8 timed at 2 threads (the first finds the worker
asleep, it sleeps 50 us after its last job, and its caches cold), then 4 timed at 1
thread again (the caller fetching the half of the operands the worker had).  Medians
over 25 repetitions, microseconds of wall time per call; the switch cost of a position
is its time minus the steady time of its mode.  Quiet machine only (say the load).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_int8 as B  # noqa: E402  (its layers and shapes)

import qlearn as ql  # noqa: E402
from qlearn._ext import _openmp  # noqa: E402


def layers(rng):
    """(name, zero-argument layer call) for each shape of bench_int8.py."""
    for (m, k, n) in B.GEMMS:
        a = rng.integers(0, 128, (m, k)).astype(np.uint8)
        w = rng.integers(-128, 128, (n, k)).astype(np.int8)
        yield f"GEMM {m}x{k}x{n}", B.qlearn_linear(a, w, rng.standard_normal(n)
                                                  .astype(np.float32))
    for (name, bn, c, h, wd, o, k, s, p, g) in B.CONVS:
        a = rng.integers(0, 128, (bn, c, h, wd)).astype(np.uint8)
        w = rng.integers(-128, 128, (o, c // g, k, k)).astype(np.int8)
        yield f"conv {name}", B.qlearn_conv(a, w, rng.standard_normal(o)
                                            .astype(np.float32), s, p, g)


def timed(fn, threads, calls):
    ql.set_num_threads(threads)
    out = []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e3)
    return out


def switch_profile(fn, reps=25):
    """Median microseconds of: 4 steady alone calls, 8 pool calls after them, 4 alone
    calls after those."""
    rows = []
    for _ in range(reps):
        timed(fn, 1, 20)
        rows.append(timed(fn, 1, 4) + timed(fn, 2, 8) + timed(fn, 1, 4))
    med = np.median(np.array(rows), axis=0)
    return med[:4], med[4:12], med[12:]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="*", type=int,
                    help="indices of bench_int8.py's shapes (GEMMs first); all if none")
    ap.add_argument("--quick", action="store_true", help="3 repetitions, not 25")
    args = ap.parse_args(argv)
    pick, reps = set(args.cases), 3 if args.quick else 25
    before = _openmp.set_pool_adaptive(False)
    print(f"load {os.getloadavg()[0]:.2f}; us per call; switch cost = call - steady")
    try:
        for i, (name, fn) in enumerate(layers(np.random.default_rng(0))):
            if pick and i not in pick:
                continue
            alone, pool, back = switch_profile(fn, reps)
            steady_a, steady_p = alone[-1], np.median(pool[3:])
            after_a = " ".join(f"{x - steady_p:+.0f}" for x in pool[:3])
            after_p = " ".join(f"{x - steady_a:+.0f}" for x in back[:2])
            print(f"{name:28s} alone {steady_a:7.1f} pool {steady_p:7.1f} | pool calls "
                  f"after alone: {after_a} | alone after pool: {after_p}", flush=True)
    finally:
        _openmp.set_pool_adaptive(before)
    print(f"load {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
