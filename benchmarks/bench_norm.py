"""Quantized normalisations and element-wise maps: qlearn's kernels vs their NumPy twins
vs PyTorch's ``quantized::`` operators, in one process.

    python benchmarks/bench_norm.py           # 1 and 2 threads, 7 rounds
    python benchmarks/bench_norm.py --quick   # 1 thread, 3 rounds

Cases (quint8): layer norm over the last 768 of 32 x 128 x 768 (a BERT-base layer's
activations), group norm of 8 x 64 x 56 x 56 in 32 groups, instance norm of the same,
batch norm 2d of the same, hard swish of the same.  "numpy" is the twin in
:mod:`qlearn.reference` (the code qF ran before the kernels), called on the same
integers.  Every contender's output integers are checked equal to qlearn's first.
Medians of alternating rounds, wall clock (see _timing.py); the load average is written
next to the table.
"""
import argparse
import os
import warnings

# Idle thread pools (qlearn's and PyTorch's libgomp) must sleep promptly, or on 2 cores
# one contender's spinning workers steal the next one's second core (see bench_int8.py);
# set before the libraries load, values in the environment win.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

import numpy as np  # noqa: E402
from _timing import markdown_table, time_alternating, write_results  # noqa: E402

import qlearn as ql  # noqa: E402
import qlearn.nn.quantized.functional as qF  # noqa: E402
from qlearn import reference as ref  # noqa: E402
from qlearn.kernels import simd  # noqa: E402
from qlearn.nn.quantized.modules.batchnorm import quantized_batch_norm  # noqa: E402
from qlearn.qtensor import QTensor  # noqa: E402

try:
    import torch
    warnings.filterwarnings("ignore", category=UserWarning)
except ImportError:
    torch = None

XS, XZ, YS, YZ, EPS = 0.05, 128, 0.03, 128, 1e-5


def _cases(rng):
    """name -> (shape, {contender: fn}), each fn returning the output integers."""
    lq = rng.integers(0, 256, (32, 128, 768)).astype(np.uint8)
    gq = rng.integers(0, 256, (8, 64, 56, 56)).astype(np.uint8)
    lw, lb = (rng.standard_normal(768).astype(np.float32) for _ in range(2))
    gw, gb = (rng.standard_normal(64).astype(np.float32) for _ in range(2))
    mean, var = rng.uniform(-1, 1, 64).astype(np.float32), rng.uniform(0.5, 2, 64).astype(
        np.float32)
    lx = QTensor(lq, ql.quint8, ql.per_tensor_affine, XS, XZ)
    gx = QTensor(gq, ql.quint8, ql.per_tensor_affine, XS, XZ)
    cases = {
        "layer norm [768]": (lq.shape, {
            "qlearn": lambda: qF.layer_norm(lx, (768,), lw, lb, EPS, YS, YZ).int_repr(),
            "numpy": lambda: ref.layer_norm_ref(lq.reshape(-1, 768), lw, lb, XS, XZ, EPS,
                                                YS, YZ, 0, 255).reshape(lq.shape)}),
        "group norm, 32 groups": (gq.shape, {
            "qlearn": lambda: qF.group_norm(gx, 32, gw, gb, EPS, YS, YZ).int_repr(),
            "numpy": lambda: ref.group_norm_ref(gq.reshape(256, 2, -1), gw, gb, 32, False,
                                                False, XS, XZ, EPS, YS, YZ, 0,
                                                255).reshape(gq.shape)}),
        "instance norm": (gq.shape, {
            "qlearn": lambda: qF.instance_norm(gx, gw, gb, EPS, YS, YZ).int_repr(),
            "numpy": lambda: ref.group_norm_ref(gq.reshape(512, 1, -1), gw, gb, 64, False,
                                                False, XS, XZ, EPS, YS, YZ, 0,
                                                255).reshape(gq.shape)}),
        "batch norm 2d": (gq.shape, {
            "qlearn": lambda: quantized_batch_norm(gx, gw, gb, mean, var, EPS, YS,
                                                   YZ).int_repr()}),
        "hardswish": (gq.shape, {
            "qlearn": lambda: qF.hardswish(gx, YS, YZ).int_repr()}),
    }
    if torch is not None:
        tl = torch._make_per_tensor_quantized_tensor(torch.from_numpy(lq), XS, XZ)
        tg = torch._make_per_tensor_quantized_tensor(torch.from_numpy(gq), XS, XZ)
        t = {k: torch.from_numpy(v) for k, v in dict(lw=lw, lb=lb, gw=gw, gb=gb, mean=mean,
                                                     var=var).items()}
        ops = torch.ops.quantized
        cases["layer norm [768]"][1]["torch"] = lambda: ops.layer_norm(
            tl, [768], t["lw"], t["lb"], EPS, YS, YZ).int_repr().numpy()
        cases["group norm, 32 groups"][1]["torch"] = lambda: ops.group_norm(
            tg, 32, t["gw"], t["gb"], EPS, YS, YZ).int_repr().numpy()
        cases["instance norm"][1]["torch"] = lambda: ops.instance_norm(
            tg, t["gw"], t["gb"], EPS, YS, YZ).int_repr().numpy()
        cases["batch norm 2d"][1]["torch"] = lambda: ops.batch_norm2d(
            tg, t["gw"], t["gb"], t["mean"], t["var"], EPS, YS, YZ).int_repr().numpy()
        cases["hardswish"][1]["torch"] = lambda: torch.ao.nn.quantized.functional.hardswish(
            tg, YS, YZ).int_repr().numpy()
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    cases = _cases(rng)
    for name, (_, contenders) in cases.items():   # same integers, or the ratios mislead
        want = contenders["qlearn"]()
        for who, fn in contenders.items():
            if not np.array_equal(fn(), want):
                raise SystemExit(f"{name}: {who}'s integers differ from qlearn's")
    rows, records = [], []
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    for threads in (1,) if args.quick else (1, 2):
        ql.set_num_threads(threads)
        if torch is not None:
            torch.set_num_threads(threads)
        for name, (shape, contenders) in cases.items():
            t = time_alternating(contenders, rounds=3 if args.quick else 7)
            base = t["qlearn"]
            n = int(np.prod(shape))
            for who, sec in t.items():
                rows.append([name, "x".join(map(str, shape)), str(threads), who,
                             f"{sec * 1e3:.3f}", f"{n / sec / 1e6:.0f}", f"{sec / base:.2f}"])
                records.append(dict(case=name, shape=list(shape), threads=threads, impl=who,
                                    seconds=sec))
    table = markdown_table(["case", "shape", "threads", "impl", "ms", "Melem/s",
                            "time / qlearn"], rows)
    header = (f"SIMD path {simd.active().name.lower()}, load average {load:.2f} at the "
              f"start{' (--quick)' if args.quick else ''}\n\n")
    print(header + table)
    write_results("bench_norm_quick" if args.quick else "bench_norm", header + table,
                  dict(load=load, simd=simd.active().name.lower(), results=records))


if __name__ == "__main__":
    main()
