"""Timing helpers shared by the benchmarks: contenders alternate, medians are kept.

The machine is shared and noisy, so every contender is run once per round, in turn, for
several rounds; a contender's time is the median over rounds.  Ratios between contenders
timed this way are far steadier than their absolute figures.
"""
import json
import os
import time

import numpy as np


def time_alternating(contenders, rounds=7, min_seconds=0.02):
    """Median seconds per call of each ``name -> fn()``, timed alternately.

    Each round calls every contender enough times to last ``min_seconds`` (the count is
    fixed per contender after one calibration call, so rounds are comparable).
    """
    counts = {}
    for name, fn in contenders.items():
        fn()  # warm up: first-touch page faults, lazy initialisation
        t0 = time.perf_counter()
        fn()
        dt = max(time.perf_counter() - t0, 1e-7)
        counts[name] = max(1, int(min_seconds / dt))
    samples = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            n = counts[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - t0) / n)
    return {name: float(np.median(s)) for name, s in samples.items()}


def markdown_table(header, rows):
    """Format rows (lists of str) under ``header`` as a GitHub Markdown table."""
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep] + [line(r) for r in rows])


def write_results(name, table, records):
    """Write ``benchmarks/results/<name>.md`` and ``.json``; return the directory."""
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{name}.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(records, f, indent=2)
    return out
