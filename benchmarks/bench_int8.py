"""Int8 GEMM and conv throughput: qlearn vs NumPy float32, PyTorch int8, ONNX Runtime.

    python benchmarks/bench_int8.py              # full run (about a minute)
    python benchmarks/bench_int8.py --quick      # a few seconds, fewer repeats
    python benchmarks/bench_int8.py --contended  # with one competing busy process

Every contender runs the same shape in the same process, at 1 and 2 threads; within a
shape the contenders are timed alternately (round-robin, so that a noisy neighbour
hurts all of them alike) and the median of the rounds is reported.  Throughput is
GOP/s = 2 * multiply-adds / time.  Ratios are qlearn's speed over each peer's (> 1:
qlearn is faster).  Results go to benchmarks/results/bench_int8.{md,json} and stdout.
The header also gives the int8 peak of one core on qlearn's active path, measured
(``qlearn.kernels.int8.peak_gops``: independent chains of the micro-kernel's own multiply
instructions, vpmaddubsw + vpmaddwd + vpaddd on AVX2, vpdpbusd on VNNI), and the
"qlearn/peak" column each 1-thread case's fraction of it (2 threads: of twice it).
The 1-minute load average before and after is recorded: on a shared 2-core machine any
other busy process makes the 2-thread numbers of every OpenMP-based contender collapse
(a parallel region waits for its descheduled thread), so compare runs made at low load.

``--contended`` measures exactly that on purpose: it starts one busy process (a Python
loop, which dies with the benchmark) before the first case and stops it after the last,
and writes bench_int8_contended.{md,json}.  At 2 threads qlearn is also timed at 1
thread in the same rounds (``qlearn_1t``), so that the 2-thread / 1-thread table compares
runs made under the same load, and so is a second, identical 1-thread layer
(``qlearn_1t_twin``): its ratio to ``qlearn_1t`` is what that comparison reads when
nothing differs, the noise floor of the 2-thread / 1-thread ratios.  That table also
says, per case, which share of the 2-thread calls' pool jobs ran in parallel (the rest
ran alone: the pool's adaptive choice, see docs/int8.rst, Threads) and how many waits
for a worker took over 100 us.

Contenders
  qlearn   nnq.Linear / nnq.Conv2d forward (weights packed once; input a quint8 QTensor)
  numpy    float32: ``x @ w.T``; conv as im2col (stride tricks) + one matmul
  torch    torch.ops.quantized.linear / conv2d, engine x86, prepacked weights; on
           qlearn's AVX2 path (QLEARN_SIMD=avx2) of a VNNI CPU capped at AVX2 too
  ort      ONNX Runtime QLinearMatMul / QLinearConv (uint8 x int8), one session per
           thread count
Activations are 7-bit (values <= 127, PyTorch's reduce_range), so every contender is
exact.  Peers that are not installed are skipped.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from functools import partial

# Each contender has its own thread pool (qlearn's and PyTorch's libgomp, OpenBLAS, ONNX
# Runtime), and an idle pool keeps spinning for a while after its call: OpenBLAS by
# default for ~2**28 cycles.  Timed alternately on 2 cores, one contender's spinning
# worker would steal the core the next contender's second thread needs.  So every pool
# is told to go to sleep promptly when idle (set before the libraries load; values
# already in the environment win).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

# this tree's qlearn, not an installed one (benchmarking a worktree)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import qlearn as ql  # noqa: E402
import qlearn.nn.quantized as nnq  # noqa: E402
from qlearn.kernels import int8 as int8_kernels  # noqa: E402
from qlearn.kernels import simd  # noqa: E402

# qlearn's AVX2 path on a CPU with VNNI is compared with PyTorch on AVX2 too: fbgemm reads
# FBGEMM_ENABLE_INSTRUCTIONS when it first picks its kernels (set before torch loads; a
# value already in the environment wins).  ONNX Runtime's MLAS picks its kernels from
# CPUID alone and has no such switch, so its column stays on the best ISA of the CPU; and
# fbgemm's convolutions ignore the switch (measured: 350 GOP/s on one Zen 4 core under it,
# above the AVX2 peak of 236), so only PyTorch's GEMMs are an AVX2 peer.
TORCH_ISA = None
if simd.active() == simd.Simd.AVX2 and simd.Simd.VNNI in simd.cpu_paths():
    TORCH_ISA = os.environ.setdefault("FBGEMM_ENABLE_INSTRUCTIONS", "AVX2")

try:
    import torch
    torch.backends.quantized.engine = "x86"
except ImportError:
    torch = None
try:
    import onnxruntime as ort
    from onnx import TensorProto, helper
except ImportError:
    ort = None
try:
    from threadpoolctl import threadpool_limits
except ImportError:
    threadpool_limits = None

warnings.filterwarnings("ignore")

GEMMS = [(1, 1024, 1024), (16, 1024, 1024), (64, 1024, 1024), (256, 1024, 1024),
         (256, 4096, 1024)]
# name, N, C, H, W, O, k, stride, pad, groups
CONVS = [("3x3 64->64 56x56", 1, 64, 56, 56, 64, 3, 1, 1, 1),
         ("3x3 64->64 56x56 N=8", 8, 64, 56, 56, 64, 3, 1, 1, 1),
         ("3x3 256->256 14x14", 1, 256, 14, 14, 256, 3, 1, 1, 1),
         ("7x7/2 3->64 224x224", 1, 3, 224, 224, 64, 7, 2, 3, 1),
         ("dw 3x3 128 56x56", 1, 128, 56, 56, 128, 3, 1, 1, 128),
         ("dw 5x5 240 14x14", 1, 240, 14, 14, 240, 5, 1, 2, 240),
         ("3x3 128->128 28x28 g32", 1, 128, 28, 28, 128, 3, 1, 1, 32),
         ("3x3 256->256 14x14 g32", 1, 256, 14, 14, 256, 3, 1, 1, 32)]


# ---- contenders: each returns a zero-argument callable -----------------------------------
def qlearn_linear(a_u8, w_i8, bias):
    m = nnq.Linear(w_i8.shape[1], w_i8.shape[0])
    m.set_weight_bias(ql.QTensor(w_i8, ql.qint8, ql.per_tensor_affine, 0.01, 0), bias)
    m.scale, m.zero_point = 0.5, 64
    x = ql.QTensor(a_u8, ql.quint8, ql.per_tensor_affine, 0.02, 10)
    return lambda: m(x)


def qlearn_conv(a_u8, w_i8, bias, stride, pad, groups):
    o, cg, k, _ = w_i8.shape
    m = nnq.Conv2d(cg * groups, o, k, stride=stride, padding=pad, groups=groups)
    scales = np.full(o, 0.01)
    m.set_weight_bias(ql.QTensor(w_i8, ql.qint8, ql.per_channel_affine, 1.0, 0, scales,
                                 np.zeros(o, np.int64), 0), bias)
    m.scale, m.zero_point = 0.5, 64
    x = ql.QTensor(a_u8, ql.quint8, ql.per_tensor_affine, 0.02, 10)
    return lambda: m(x)


def numpy_linear(a_u8, w_i8, bias):
    x = a_u8.astype(np.float32)
    wt = np.ascontiguousarray(w_i8.astype(np.float32).T)
    return lambda: x @ wt + bias


def numpy_conv(a_u8, w_i8, bias, stride, pad, groups):
    x = a_u8.astype(np.float32)
    w = w_i8.astype(np.float32)
    n, c = x.shape[:2]
    o, cg, k, _ = w.shape
    og = o // groups
    wg = [w[g * og:(g + 1) * og].reshape(og, -1).T.copy() for g in range(groups)]

    def run():
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))
        win = win[:, :, ::stride, ::stride]              # (n, c, ho, wo, k, k)
        ho, wo = win.shape[2], win.shape[3]
        if groups == c == o:                              # depthwise: no GEMM to use
            return np.einsum("nchwij,cij->nchw", win, w[:, 0]) + bias[:, None, None]
        outs = []
        for g in range(groups):
            cols = win[:, g * cg:(g + 1) * cg].transpose(0, 2, 3, 1, 4, 5).reshape(
                n * ho * wo, cg * k * k)
            outs.append(cols @ wg[g])
        return np.concatenate(outs, axis=1) + bias
    return run


def torch_linear(a_u8, w_i8, bias):
    x = torch._make_per_tensor_quantized_tensor(torch.from_numpy(a_u8), 0.02, 10)
    w = torch._make_per_tensor_quantized_tensor(torch.from_numpy(w_i8), 0.01, 0)
    packed = torch.ops.quantized.linear_prepack(w, torch.from_numpy(bias))
    return lambda: torch.ops.quantized.linear(x, packed, 0.5, 64)


def torch_conv(a_u8, w_i8, bias, stride, pad, groups):
    x = torch._make_per_tensor_quantized_tensor(torch.from_numpy(a_u8), 0.02, 10)
    o = w_i8.shape[0]
    w = torch._make_per_channel_quantized_tensor(
        torch.from_numpy(w_i8), torch.full((o,), 0.01, dtype=torch.float64),
        torch.zeros(o, dtype=torch.int64), 0)
    packed = torch.ops.quantized.conv2d_prepack(w, torch.from_numpy(bias), [stride] * 2,
                                                [pad] * 2, [1, 1], groups)
    return lambda: torch.ops.quantized.conv2d(x, packed, 0.5, 64)


def _ort_session(graph, threads):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def _scalars(names_values):
    out = []
    for name, value, dtype in names_values:
        out.append(helper.make_tensor(name, dtype, [], [value]))
    return out


def ort_linear(a_u8, w_i8, bias, threads):
    m, k = a_u8.shape
    n = w_i8.shape[0]
    inits = [helper.make_tensor("B", TensorProto.INT8, (k, n),
                                np.ascontiguousarray(w_i8.T).tobytes(), raw=True)]
    inits += _scalars([("a_s", 0.02, TensorProto.FLOAT), ("a_z", 10, TensorProto.UINT8),
                       ("b_s", 0.01, TensorProto.FLOAT), ("b_z", 0, TensorProto.INT8),
                       ("y_s", 0.5, TensorProto.FLOAT), ("y_z", 64, TensorProto.UINT8)])
    node = helper.make_node("QLinearMatMul", ["A", "a_s", "a_z", "B", "b_s", "b_z", "y_s",
                                              "y_z"], ["Y"])
    graph = helper.make_graph(
        [node], "qmm", [helper.make_tensor_value_info("A", TensorProto.UINT8, (m, k))],
        [helper.make_tensor_value_info("Y", TensorProto.UINT8, (m, n))], inits)
    sess = _ort_session(graph, threads)
    feed = {"A": a_u8}
    return lambda: sess.run(None, feed)


def ort_conv(a_u8, w_i8, bias, stride, pad, groups, threads):
    o, _, k, _ = w_i8.shape
    qbias = np.round(bias / (0.02 * 0.01)).astype(np.int32)
    inits = [helper.make_tensor("W", TensorProto.INT8, w_i8.shape, w_i8.tobytes(), raw=True),
             helper.make_tensor("Bq", TensorProto.INT32, (o,), qbias.tobytes(), raw=True)]
    inits += _scalars([("x_s", 0.02, TensorProto.FLOAT), ("x_z", 10, TensorProto.UINT8),
                       ("w_s", 0.01, TensorProto.FLOAT), ("w_z", 0, TensorProto.INT8),
                       ("y_s", 0.5, TensorProto.FLOAT), ("y_z", 64, TensorProto.UINT8)])
    node = helper.make_node("QLinearConv", ["X", "x_s", "x_z", "W", "w_s", "w_z", "y_s",
                                            "y_z", "Bq"], ["Y"], kernel_shape=[k, k],
                            strides=[stride] * 2, pads=[pad] * 4, group=groups)
    graph = helper.make_graph(
        [node], "qconv", [helper.make_tensor_value_info("X", TensorProto.UINT8,
                                                        a_u8.shape)],
        [helper.make_tensor_value_info("Y", TensorProto.UINT8, None)], inits)
    sess = _ort_session(graph, threads)
    feed = {"X": a_u8}
    return lambda: sess.run(None, feed)


# ---- the int8 peak of the active path -----------------------------------------------------
def measure_peak(path, seconds=0.5):
    """One core's int8 peak in GOP/s on ``path`` ("avx2" or "vnni"; None for generic).

    The best of a few timings of independent chains of the micro-kernel's multiply
    instructions (``qlearn.kernels.int8.peak_gops``).
    """
    if path not in ("avx2", "vnni"):
        return None
    return max(int8_kernels.peak_gops(path, seconds / 3) for _ in range(3))


def add_peak_fraction(results, peak):
    """Each row's qlearn GOP/s over the peak of its thread count (None without one)."""
    for r in results:
        r["qlearn_over_peak"] = (r["gops"]["qlearn"] / (peak * r["threads"])
                                 if peak else None)


def _peak_cell(r, key="qlearn_over_peak"):
    frac = r.get(key)
    return "-" if frac is None else f"{frac:.2f}"


# ---- timing -------------------------------------------------------------------------------
def set_threads(n):
    ql.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)


def time_round_robin(fns, rounds, min_time, settle=0.01):
    """Median seconds per call of each callable; contenders alternate every round.

    ``settle`` seconds of sleep precede each contender's turn (0 for none)."""
    per_call = {name: [] for name in fns}
    reps = {}
    for name, fn in fns.items():            # warm up and pick calls per round
        fn()
        t0 = time.perf_counter()
        fn()
        dt = max(time.perf_counter() - t0, 1e-7)
        reps[name] = max(1, int(min_time / dt))
    for _ in range(rounds):
        for name, fn in fns.items():
            # let the previous contender's idle worker threads stop spinning (each
            # runtime has its own pool; a spinning pool steals the second core)
            if settle:
                time.sleep(settle)
            if hasattr(fn, "before"):        # e.g. qlearn's thread count, untimed
                fn.before()
            t0 = time.perf_counter()
            for _ in range(reps[name]):
                fn()
            per_call[name].append((time.perf_counter() - t0) / reps[name])
    return {name: statistics.median(ts) for name, ts in per_call.items()}


def bench_case(label, ops, make, threads, rounds, min_time, numpy_threads):
    set_threads(threads)
    fns = {"qlearn": _with_threads(make["qlearn"](), threads)}
    if threads > 1:     # the same layer at 1 thread, in the same rounds: the scaling
        fns["qlearn_1t"] = _with_threads(make["qlearn"](), 1)
    fns["numpy"] = make["numpy"]()
    if torch is not None:
        fns["torch"] = make["torch"]()
    if ort is not None:
        fns["ort"] = make["ort"](threads)
    path = simd.active().name.lower()
    if path in ("avx2", "vnni"):
        # the peak chains for this case's work on one core (its share at 2 threads),
        # timed in the same rounds: the peak under the load the kernels saw
        fns["peak"] = partial(int8_kernels.peak_run, path, ops / threads)
    if threads > 1:     # the same comparison where nothing differs: the noise floor
        fns["qlearn_1t_twin"] = _with_threads(make["qlearn"](), 1)
    limit = (threadpool_limits(limits=threads, user_api="blas") if threadpool_limits
             else None)
    stats0 = ql.kernels.threads.pool_stats()
    try:
        # At 1 thread no contender has a worker that could spin, and a sleep before
        # each turn only lets the vCPU go idle, after which the host may have run
        # other work on the core: measured on a Zen 4 VM (conv 3x3 64->64 56x56,
        # VNNI, 15 rounds), qlearn's fraction of the peak chains timed in the same
        # rounds was 0.86-0.89 with the sleeps (0.82-0.83 with the other contenders
        # left out, so more sleeping), 0.88-0.89 without (either way), and 0.91 in a
        # loop of back-to-back calls.  So the sleeps are kept only where they serve.
        secs = time_round_robin(fns, rounds, min_time, settle=0.01 if threads > 1 else 0)
    finally:
        if limit is not None:
            limit.restore_original_limits()
    stats1 = ql.kernels.threads.pool_stats()
    row = {"case": label, "threads": threads,
           "gops": {k: ops / v / 1e9 for k, v in secs.items()},
           "ms": {k: v * 1e3 for k, v in secs.items()},
           # what qlearn's pool did in this case (its jobs, the layout conversions
           # included): jobs run in parallel and alone, waits for a worker over 100 us
           "qlearn_pool": {k: stats1[k] - stats0[k] for k in stats1}}
    row["ratio"] = {k: secs[k] / secs["qlearn"] for k in secs if k != "qlearn"}
    if "peak" in secs:      # qlearn's fraction of the peak measured in its rounds
        row["qlearn_over_peak_rounds"] = row["ratio"].pop("peak")
        del row["gops"]["peak"], row["ms"]["peak"]
    if "qlearn_1t_twin" in secs:     # two identical 1-thread layers, same rounds
        row["twin_over_1t"] = secs["qlearn_1t"] / secs["qlearn_1t_twin"]
        del row["ratio"]["qlearn_1t_twin"]
    return row


def _with_threads(fn, threads):
    def call():
        return fn()
    call.before = partial(ql.set_num_threads, threads)
    return call


def busy_process():
    """Start one competing busy process; it also exits when this process dies."""
    loop = ("import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n"
            "    for _ in range(100000):\n        pass\n")
    return subprocess.Popen([sys.executable, "-c", loop])


def run(quick, peak=None):
    rng = np.random.default_rng(0)
    rounds, min_time = (3, 0.002) if quick else (15, 0.02)
    results = []
    for threads in (1, 2):
        for (m, k, n) in GEMMS:
            a = rng.integers(0, 128, (m, k)).astype(np.uint8)
            w = rng.integers(-128, 128, (n, k)).astype(np.int8)
            b = rng.standard_normal(n).astype(np.float32)
            make = {"qlearn": partial(qlearn_linear, a, w, b),
                    "numpy": partial(numpy_linear, a, w, b),
                    "torch": partial(torch_linear, a, w, b),
                    "ort": partial(ort_linear, a, w, b)}
            results.append(bench_case(f"GEMM {m}x{k}x{n}", 2 * m * k * n, make, threads,
                                      rounds, min_time, threads))
            add_peak_fraction(results[-1:], peak)
            print(_line(results[-1]), flush=True)
        for (name, bn, c, h, wd, o, k, s, p, g) in CONVS:
            a = rng.integers(0, 128, (bn, c, h, wd)).astype(np.uint8)
            w = rng.integers(-128, 128, (o, c // g, k, k)).astype(np.int8)
            b = rng.standard_normal(o).astype(np.float32)
            ho, wo = (h + 2 * p - k) // s + 1, (wd + 2 * p - k) // s + 1
            ops = 2 * bn * o * ho * wo * (c // g) * k * k
            make = {"qlearn": partial(qlearn_conv, a, w, b, s, p, g),
                    "numpy": partial(numpy_conv, a, w, b, s, p, g),
                    "torch": partial(torch_conv, a, w, b, s, p, g),
                    "ort": partial(ort_conv, a, w, b, s, p, g)}
            results.append(bench_case(f"conv {name}", ops, make, threads, rounds,
                                      min_time, threads))
            add_peak_fraction(results[-1:], peak)
            print(_line(results[-1]), flush=True)
    return results


# ---- per-call overhead: nnq.Linear on one row (``--overhead``) ------------------------------
OVERHEAD_SHAPES = [(1, 64, 64), (1, 64, 256)]


def overhead(quick, shapes=OVERHEAD_SHAPES):
    """Microseconds per call of a tiny Linear (M = 1), at 1 thread: the fixed cost of
    one call (argument checks, output allocation, the kernel's start) rather than
    throughput.  qlearn's nnq.Linear, torch.ops.quantized.linear and an ONNX Runtime
    session running QLinearMatMul (``sess.run`` with a prebuilt feed) alternate in one
    process; the median of the rounds is reported, with ratios peer / qlearn (> 1:
    qlearn's call is cheaper)."""
    rng = np.random.default_rng(0)
    rounds, min_time = (5, 0.01) if quick else (41, 0.05)
    rows = []
    for (m, k, n) in shapes:
        a = rng.integers(0, 128, (m, k)).astype(np.uint8)
        w = rng.integers(-128, 128, (n, k)).astype(np.int8)
        b = rng.standard_normal(n).astype(np.float32)
        set_threads(1)
        fns = {"qlearn": qlearn_linear(a, w, b)}
        if torch is not None:
            fns["torch"] = torch_linear(a, w, b)
        if ort is not None:
            fns["ort"] = ort_linear(a, w, b, 1)
        secs = time_round_robin(fns, rounds, min_time)
        us = {name: t * 1e6 for name, t in secs.items()}
        rows.append({"case": f"Linear {m}x{k} -> {n} call", "us": us,
                     "ratio": {p: us[p] / us["qlearn"] for p in us if p != "qlearn"}})
        peers = "  ".join(f"{p} {us[p]:6.2f}" for p in ("torch", "ort") if p in us)
        ratios = "  ".join(f"{p}/qlearn {r:.2f}" for p, r in rows[-1]["ratio"].items())
        print(f"{rows[-1]['case']:<28} t=1  qlearn {us['qlearn']:6.2f}  {peers}  us/call"
              f"  ({ratios})", flush=True)
    return rows


def _line(r):
    g = r["gops"]
    peers = "  ".join(f"{k} {g[k]:7.1f}" for k in ("qlearn_1t", "numpy", "torch", "ort")
                      if k in g)
    return (f"{r['case']:<28} t={r['threads']}  qlearn {g['qlearn']:7.1f}  {peers}  GOP/s"
            f"  qlearn/peak {_peak_cell(r)} (same rounds "
            f"{_peak_cell(r, 'qlearn_over_peak_rounds')})")


def markdown(results, meta):
    peers = [p for p in ("numpy", "torch", "ort") if p in results[0]["gops"]]
    head = ("| case | threads | qlearn GOP/s | " + " | ".join(f"{p} GOP/s" for p in peers)
            + " | " + " | ".join(f"qlearn/{p}" for p in peers)
            + " | qlearn/peak | qlearn/peak, same rounds |")
    lines = [head, "|" + "---|" * (5 + 2 * len(peers))]
    for r in results:
        lines.append(f"| {r['case']} | {r['threads']} | {r['gops']['qlearn']:.1f} | "
                     + " | ".join(f"{r['gops'][p]:.1f}" for p in peers) + " | "
                     + " | ".join(f"{r['ratio'][p]:.2f}" for p in peers)
                     + f" | {_peak_cell(r)} | {_peak_cell(r, 'qlearn_over_peak_rounds')} |")
    # 2-thread scaling of qlearn: against its 1-thread speed in the same rounds
    # (qlearn_1t), and against the 1-thread part of the run
    one = {r["case"]: r["gops"]["qlearn"] for r in results if r["threads"] == 1}
    lines.append("")
    lines.append("| case | qlearn 2 threads / 1 thread, same rounds | same run | "
                 "1 thread / 1 thread, two layers, same rounds (noise floor) | "
                 "qlearn/ort at 2 threads | pool jobs in parallel | waits > 100 us |")
    lines.append("|---|---|---|---|---|---|---|")
    for r in results:
        if r["threads"] == 2 and r["case"] in one:
            same = r["ratio"].get("qlearn_1t", float("nan"))
            pool = r.get("qlearn_pool", {})
            asked = pool.get("jobs", 0) + pool.get("serial", 0)
            share = f"{pool['jobs'] / asked:.2f}" if asked else "-"
            lines.append(f"| {r['case']} | {same:.2f} | "
                         f"{r['gops']['qlearn'] / one[r['case']]:.2f} | "
                         f"{r.get('twin_over_1t', float('nan')):.2f} | "
                         f"{r['ratio'].get('ort', float('nan')):.2f} | {share} | "
                         f"{pool.get('long_waits', '-')} |")
    info = ", ".join(f"{k}={v}" for k, v in meta.items())
    peak = meta.get("peak_gops")
    peak_line = (f"int8 peak of one core on path {meta['qlearn_path']}: {peak:.0f} GOP/s "
                 "(qlearn/peak: 1 thread against it, 2 threads against twice it; "
                 "same rounds: against the peak chains timed in the case's own rounds, "
                 "for the same work on each core).\n\n"
                 if peak else "")
    return (f"Measured with `{meta['command']}` ({info}).\n\n" + peak_line
            + "\n".join(lines) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few repeats (a few seconds)")
    ap.add_argument("--overhead", action="store_true",
                    help="only the per-call overhead of a 1x64 Linear (us per call)")
    ap.add_argument("--contended", action="store_true",
                    help="run with one competing busy process")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    ap.add_argument("--docs", metavar="DIR",
                    help="also write DIR/int8_results_<path>.inc, the tables docs/int8.rst "
                         "includes (see int8_docs_table.py)")
    args = ap.parse_args(argv)
    if args.overhead:
        overhead(args.quick)
        return 0
    meta = {"command": "python benchmarks/bench_int8.py" + (" --quick" if args.quick else "")
            + (" --contended" if args.contended else ""),
            "contended": args.contended, "threads": [1, 2],
            "OPENBLAS_THREAD_TIMEOUT": os.environ["OPENBLAS_THREAD_TIMEOUT"],
            "GOMP_SPINCOUNT": os.environ["GOMP_SPINCOUNT"],
            "qlearn_path": simd.active().name.lower(),
            "cpu_isa": "+".join(p.name for p in simd.cpu_paths()[1:]) or "baseline x86-64",
            "cpu": platform.processor() or platform.machine(),
            "torch": getattr(torch, "__version__", None),
            "torch_isa_cap": TORCH_ISA,
            "onnxruntime": getattr(ort, "__version__", None), "numpy": np.__version__,
            "date": datetime.date.today().isoformat()}
    meta["loadavg_before"] = round(os.getloadavg()[0], 2)
    peak = measure_peak(meta["qlearn_path"], 0.3 if args.quick else 1.0)
    meta["peak_gops"] = None if peak is None else round(peak, 1)
    print(f"qlearn path {meta['qlearn_path']}, int8 peak of one core: "
          + ("n/a" if peak is None else f"{peak:.0f} GOP/s"), flush=True)
    busy = busy_process() if args.contended else None
    try:
        results = run(args.quick, peak)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    meta["loadavg_after"] = round(os.getloadavg()[0], 2)
    # how often qlearn's pool ran jobs alone / in parallel (see docs/int8.rst)
    meta["qlearn_pool"] = ql.kernels.threads.pool_stats()
    os.makedirs(args.out, exist_ok=True)
    md = markdown(results, meta)
    name = "bench_int8_contended" if args.contended else "bench_int8"
    with open(os.path.join(args.out, name + ".md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.out, name + ".json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    print()
    print(md)
    if args.docs:
        import int8_docs_table  # next to this file
        print("wrote", int8_docs_table.write({"meta": meta, "results": results}, args.docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
