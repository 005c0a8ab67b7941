"""Run fuzz targets in this process, under resource limits; report to a JSON file.

    python tests/fuzz/fuzz_worker.py --targets T1,T2 --examples N --seed S \
        --log LOG --out OUT [--mem-mb M] [--cpu-s C]

Limits are set before qlearn is imported.  Each case is written to ``LOG`` before it
runs (see fuzz_targets.note), so that when a case kills the process the parent names it.
"""
import argparse
import json
import os
import resource
import sys
import time
import traceback


def _limit(mem_mb, cpu_s):
    # AddressSanitizer reserves terabytes of address space: no RLIMIT_AS under it
    asan = "asan" in os.environ.get("LD_PRELOAD", "") or "ASAN_OPTIONS" in os.environ
    if mem_mb and not asan:
        b = mem_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (b, b))
    if cpu_s:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--targets", required=True)
    p.add_argument("--examples", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--mem-mb", type=int, default=3072)
    p.add_argument("--cpu-s", type=int, default=600)
    args = p.parse_args()
    _limit(args.mem_mb, args.cpu_s)

    import warnings

    import fuzz_targets
    import numpy as np
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis import strategies as st
    from hypothesis.reporting import with_reporter

    np.seterr(all="ignore")
    warnings.simplefilter("ignore")
    fuzz_targets.LOG_FD = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    results = {}
    def make_run(fn, count):
        @settings(max_examples=args.examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), print_blob=False,
                  phases=[Phase.explicit, Phase.generate, Phase.shrink])
        @seed(args.seed)
        @given(st.data())
        def run(data):
            count[0] += 1
            fn(data)
        return run

    for name in args.targets.split(","):
        count = [0]
        lines = []
        run = make_run(fuzz_targets.TARGETS[name], count)

        start = time.perf_counter()
        failure = None
        with with_reporter(lines.append):
            try:
                run()
            except BaseException:   # noqa: BLE001 (a failing case, whatever it raised)
                failure = "\n".join(map(str, lines)) + "\n" + traceback.format_exc(limit=-8)
        results[name] = {"cases": count[0], "failure": failure,
                         "seconds": round(time.perf_counter() - start, 2)}
        with open(args.out, "w") as f:         # rewritten after each target
            json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
