"""Fake quantization and Distiller-quantizer throughput: qlearn vs PyTorch vs NumPy.

    python benchmarks/bench_fake_quant.py           # 1M and 16M elements, 1 and 2 threads
    python benchmarks/bench_fake_quant.py --quick   # 1M only

Forward: fake_quantize_per_tensor_affine / per_channel (output + STE mask in one pass),
PACT; forward+backward: fake quant with the STE gradient.  NumPy's row is the plain
two-line transcription (forward only).  Medians of alternating rounds (see _timing.py).
"""
import argparse
import os
import warnings

# Idle thread pools (qlearn's and PyTorch's libgomp, OpenBLAS) must sleep promptly, or
# on 2 cores one contender's spinning workers steal the next one's second core (see
# bench_int8.py); set before the libraries load, values in the environment win.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

import numpy as np  # noqa: E402
from _timing import markdown_table, time_alternating, write_results

import qlearn as ql
from qlearn.quantizers import pact_quantize

try:
    import torch
    warnings.filterwarnings("ignore", category=UserWarning)
except ImportError:
    torch = None


def numpy_fake_quant(x, s, z, lo, hi):
    t = np.rint(x * np.float32(1 / s)) + z
    return (np.clip(t, lo, hi) - z) * np.float32(s), (t >= lo) & (t <= hi)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sizes = [1 << 20] if args.quick else [1 << 20, 1 << 24]
    rng = np.random.default_rng(0)
    rows, records = [], []
    for n in sizes:
        x = rng.standard_normal(n).astype(np.float32)
        xc = x.reshape(64, -1)
        scales = rng.uniform(0.01, 0.05, 64).astype(np.float32)
        zps = rng.integers(0, 256, 64).astype(np.int32)
        g = np.ones(n, np.float32)
        for threads in (1, 2):
            ql.set_num_threads(threads)
            if torch is not None:
                torch.set_num_threads(threads)
            cases = {
                "fake_quant per-tensor": {
                    "qlearn": lambda: ql.fake_quantize_per_tensor_affine(x, 0.02, 128, 0, 255),
                    "numpy": lambda: numpy_fake_quant(x, 0.02, 128, 0, 255)},
                "fake_quant per-channel": {
                    "qlearn": lambda: ql.fake_quantize_per_channel_affine(
                        xc, scales, zps, 0, 0, 255)},
                "fake_quant fwd+bwd": {
                    "qlearn": lambda: ql.fake_quantize_per_tensor_affine(
                        ql.tensor(x, requires_grad=True), 0.02, 128, 0, 255).backward(g)},
                "PACT 4-bit fwd": {"qlearn": lambda: pact_quantize(x, 4, 3.0)},
            }
            if torch is not None:
                xt, st, zt = torch.from_numpy(x), torch.from_numpy(scales), torch.from_numpy(zps)
                xct = torch.from_numpy(xc)
                cases["fake_quant per-tensor"]["torch"] = \
                    lambda: torch.fake_quantize_per_tensor_affine(xt, 0.02, 128, 0, 255)
                cases["fake_quant per-channel"]["torch"] = \
                    lambda: torch.fake_quantize_per_channel_affine(xct, st, zt, 0, 0, 255)
                gt = torch.from_numpy(g)

                def torch_fwd_bwd():
                    xg = xt.clone().requires_grad_()
                    torch.fake_quantize_per_tensor_affine(xg, 0.02, 128, 0, 255).backward(gt)
                cases["fake_quant fwd+bwd"]["torch"] = torch_fwd_bwd
            for name, contenders in cases.items():
                t = time_alternating(contenders, rounds=3 if args.quick else 7)
                base = t["qlearn"]
                for who, sec in t.items():
                    rows.append([name, f"{n:,}", str(threads), who,
                                 f"{n / sec / 1e6:.0f}", f"{sec / base:.2f}"])
                    records.append(dict(case=name, n=n, threads=threads, impl=who,
                                        seconds=sec))
    table = markdown_table(["case", "elements", "threads", "impl", "Melem/s",
                            "time / qlearn"], rows)
    print(table)
    write_results("fake_quant", table, records)


if __name__ == "__main__":
    main()
