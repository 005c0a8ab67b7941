"""Observer speed: qlearn against PyTorch on the same data, in one process.

For each case the two contenders run alternately (qlearn, torch, qlearn, torch, ...)
so that a busy machine slows both alike; the medians and their ratio are printed, and
the ratio of the best times (on a loaded machine the medians mostly measure waiting for
a core; the best times measure the kernels).

    python benchmarks/bench_observer.py            # 16M float32 elements, 1 and 2 threads
    python benchmarks/bench_observer.py --quick    # 1M elements, a few repeats (seconds)
"""
import argparse
import os
import statistics
import time
import warnings

# Idle thread pools (qlearn's and PyTorch's libgomp, OpenBLAS) must sleep promptly, or
# on 2 cores one contender's spinning workers steal the next one's second core (see
# bench_int8.py); set before the libraries load, values in the environment win.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

import numpy as np  # noqa: E402

import qlearn as ql
from qlearn.quantization import observer as O

try:
    import torch
    from torch.ao.quantization import observer as T
except ImportError:  # torch is optional: qlearn's times are still printed
    torch = None


def cases(n, rng):
    """(name, make_qlearn_observer, make_torch_observer, data) for n elements."""
    x = rng.standard_normal(n).astype(np.float32)
    w = rng.standard_normal((4096, n // 4096)).astype(np.float32)       # weight, ch_axis=0
    a = rng.standard_normal((n // (256 * 256), 256, 16, 16)).astype(np.float32)  # NCHW
    t = rng.standard_normal((n // 512, 512)).astype(np.float32)          # (tokens, features)
    out = [
        ("MinMax", O.MinMaxObserver, lambda: T.MinMaxObserver(), x),
        ("MovingAverageMinMax", O.MovingAverageMinMaxObserver,
         lambda: T.MovingAverageMinMaxObserver(), x),
        ("PerChannel weight (4096, K) axis 0", O.PerChannelMinMaxObserver,
         lambda: T.PerChannelMinMaxObserver(), w),
        ("PerChannel NCHW axis 1", lambda: O.PerChannelMinMaxObserver(ch_axis=1),
         lambda: T.PerChannelMinMaxObserver(ch_axis=1), a),
        ("PerChannel (N, 512) axis 1", lambda: O.PerChannelMinMaxObserver(ch_axis=1),
         lambda: T.PerChannelMinMaxObserver(ch_axis=1), t),
        ("Histogram update", O.HistogramObserver, lambda: T.HistogramObserver(), x),
    ]
    return out


def time_update(make, data, repeats, to_input):
    """Median time of one forward on a fresh observer primed with a first batch (so the
    histogram case measures the steady-state update, range growth included)."""
    times = []
    inp = to_input(data)
    prime = to_input(data * 0.5)
    for _ in range(repeats):
        obs = make()
        obs(prime)
        t0 = time.perf_counter()
        obs(inp)
        times.append(time.perf_counter() - t0)
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1M elements, 3 rounds")
    p.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2")
    p.add_argument("--rounds", type=int, default=None)
    args = p.parse_args()
    n = (1 << 20) if args.quick else (1 << 24)
    rounds = args.rounds or (3 if args.quick else 7)
    rng = np.random.default_rng(0)
    warnings.simplefilter("ignore")
    print(f"observer update on {n:,} float32 elements; median of {rounds} alternating rounds")
    print(f"{'case':38s} {'thr':>3s} {'qlearn ms':>10s} {'torch ms':>10s} {'torch/qlearn':>12s}"
          f" {'best q/t ms':>14s} {'best ratio':>10s}")
    for threads in [int(s) for s in args.threads.split(",")]:
        ql.set_num_threads(threads)
        if torch is not None:
            torch.set_num_threads(threads)
        for name, make_q, make_t, data in cases(n, rng):
            tq, tt = [], []
            for _ in range(rounds):
                tq += time_update(make_q, data, 1, lambda a: a)
                if torch is not None:
                    tt += time_update(make_t, data, 1, torch.from_numpy)
            mq = statistics.median(tq) * 1e3
            if torch is not None:
                mt = statistics.median(tt) * 1e3
                bq, bt = min(tq) * 1e3, min(tt) * 1e3
                print(f"{name:38s} {threads:3d} {mq:10.2f} {mt:10.2f} {mt / mq:12.2f}"
                      f" {bq:6.2f}/{bt:<7.2f} {bt / bq:10.2f}")
            else:
                print(f"{name:38s} {threads:3d} {mq:10.2f} {'-':>10s} {'-':>12s}")


if __name__ == "__main__":
    main()
