"""Quantize and dequantize throughput: qlearn vs PyTorch, in one process.

    python benchmarks/bench_quantize.py           # 1M and 16M elements, 1 and 2 threads
    python benchmarks/bench_quantize.py --quick   # 1M only, fewer rounds

Throughput counts the bytes a pass must move: quantize reads 4 and writes 1 byte per
element (uint8), dequantize reads 1 and writes 4.
"""
import argparse
import os
import sys
import warnings

# Idle thread pools (qlearn's and PyTorch's libgomp, OpenBLAS) must sleep promptly, or
# on 2 cores one contender's spinning workers steal the next one's second core (see
# bench_int8.py); set before the libraries load, values in the environment win.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

import numpy as np  # noqa: E402
from _timing import markdown_table, time_alternating, write_results

import qlearn as ql

try:
    import torch
    warnings.filterwarnings("ignore", category=UserWarning)
except ImportError:
    torch = None


def cases(n, rng):
    x = rng.standard_normal(n).astype(np.float32)
    C = 256
    xc = x.reshape(C, -1)
    scales = rng.uniform(0.01, 0.05, C)
    zps = rng.integers(0, 256, C)
    q = ql.quantize_per_tensor(x, 0.02, 128, ql.quint8)
    qc = ql.quantize_per_channel(xc, scales, zps, 0, ql.quint8)
    yield ("quantize per-tensor", 5 * n,
           lambda: ql.quantize_per_tensor(x, 0.02, 128, ql.quint8), None)
    yield ("quantize per-channel", 5 * n,
           lambda: ql.quantize_per_channel(xc, scales, zps, 0, ql.quint8), None)
    xl = x.reshape(-1, C)  # channels last: each channel's run is one element long
    yield ("quantize per-channel, axis last", 5 * n,
           lambda: ql.quantize_per_channel(xl, scales, zps, 1, ql.quint8), None)
    yield "dequantize per-tensor", 5 * n, q.dequantize, None
    yield "dequantize per-channel", 5 * n, qc.dequantize, None
    if torch is not None:
        tx, txc = torch.from_numpy(x), torch.from_numpy(xc)
        ts, tz = torch.from_numpy(scales), torch.from_numpy(zps)
        tq = torch.quantize_per_tensor(tx, 0.02, 128, torch.quint8)
        tqc = torch.quantize_per_channel(txc, ts, tz, 0, torch.quint8)
        peers = {
            "quantize per-tensor": lambda: torch.quantize_per_tensor(tx, 0.02, 128, torch.quint8),
            "quantize per-channel": lambda: torch.quantize_per_channel(
                txc, ts, tz, 0, torch.quint8),
            "quantize per-channel, axis last": lambda: torch.quantize_per_channel(
                tx.reshape(-1, C), ts, tz, 1, torch.quint8),
            "dequantize per-tensor": tq.dequantize,
            "dequantize per-channel": tqc.dequantize,
        }
    else:
        peers = {}
    return peers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M elements, fewer rounds")
    args = parser.parse_args(argv)
    sizes = [1 << 20] if args.quick else [1 << 20, 1 << 24]
    rounds = 3 if args.quick else 9
    rng = np.random.default_rng(0)
    rows, records = [], []
    for threads in (1, 2):
        ql.set_num_threads(threads)
        if torch is not None:
            torch.set_num_threads(threads)
        for n in sizes:
            gen = cases(n, rng)
            ours = []
            try:
                while True:
                    ours.append(next(gen))
            except StopIteration as stop:
                peers = stop.value
            for name, nbytes, fn, _ in ours:
                contenders = {"qlearn": fn}
                if name in peers:
                    contenders["torch"] = peers[name]
                t = time_alternating(contenders, rounds=rounds)
                gbs = {k: nbytes / v / 1e9 for k, v in t.items()}
                ratio = gbs["qlearn"] / gbs["torch"] if "torch" in gbs else float("nan")
                rows.append([name, f"{n / 2**20:.0f}M", str(threads), f"{gbs['qlearn']:.2f}",
                             f"{gbs.get('torch', float('nan')):.2f}", f"{ratio:.2f}"])
                records.append(dict(op=name, n=n, threads=threads, qlearn_gbs=gbs["qlearn"],
                                    torch_gbs=gbs.get("torch"), ratio=ratio))
    header = ["operation", "elements", "threads", "qlearn GB/s", "torch GB/s", "qlearn / torch"]
    table = markdown_table(header, rows)
    print(table)
    out = write_results("quantize", table, records)
    peer = torch.__version__ if torch is not None else "not installed"
    print(f"\n(written to {out}/quantize.md and .json; torch {peer})", file=sys.stderr)


if __name__ == "__main__":
    main()
