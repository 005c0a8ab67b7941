"""The sections of the demonstration, in the order it tells them.

Each function prints its part through ``log`` and returns what it measured (plain
numbers and arrays) for the report.  Everything quantized here is built with the
workflow functions of :mod:`qlearn.quantization` and the model-level quantizers of
:mod:`qlearn.quantizers`; this module only calls them and measures.
"""
import contextlib
import copy
import io
import time

import numpy as np

from .. import nn, optim
from .. import quantization as tq
from .._config import get_num_threads, set_num_threads
from ..dtypes import qint8, quint8
from ..qtensor import quantize_per_channel, quantize_per_tensor
from ..quantization import quantize_fx, sensitivity
from ..quantizers import PACTQuantizer
from ..serialization import save
from ..utils.progress import progress
from .models import FUSE, DigitsNet, _bar_enabled, accuracy, fit, sgd_schedule
from .text import format_table, heading

__all__ = ["affine_map", "calibration", "float_model", "compare", "sensitivity_tables"]


# --- 1. the affine map --------------------------------------------------------------------
def affine_map(log=print):
    r"""Quantize a few numbers by hand, :math:`q = \operatorname{clamp}(\operatorname{round}
    (x / S) + Z, 0, 255)`, then a weight per tensor and per channel.

    >>> from qlearn.demo.story import affine_map
    >>> r = affine_map(log=lambda text: None)
    >>> r["zero_point"], bool(r["max_error"] <= r["scale"] / 2)
    (104, True)
    """
    log(heading(1, "The affine map"))
    log("  quantize:   q = clamp(round(x / S) + Z, 0, 255)     (quint8)\n"
        "  dequantize: x ~ S (q - Z)\n"
        "  S (scale) and Z (zero point) map the range [min, max] onto the 256 integers,\n"
        "  with real 0 exactly representable.")
    x = np.array([-1.8, -0.5, 0.0, 0.03, 0.7, 2.6], np.float32)
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (hi - lo) / 255
    zero_point = int(np.clip(round(-lo / scale), 0, 255))
    q = quantize_per_tensor(x, scale, zero_point, quint8)
    back = q.dequantize()
    log(f"\n  x in [{lo:.2f}, {hi:.2f}]:  S = ({hi:.2f} - ({lo:.2f})) / 255 = {scale:.5f},  "
        f"Z = round({-lo:.2f} / S) = {zero_point}\n")
    rows = [[f"{v:+.3f}", str(int(i)), f"{b:+.5f}", f"{abs(b - v):.5f}"]
            for v, i, b in zip(x, q.int_repr(), back)]
    log(format_table(["x", "q", "S (q - Z)", "|error|"], rows, indent=4))
    err = float(np.abs(back - x).max())
    log(f"\n  largest error {err:.5f} <= S / 2 = {scale / 2:.5f}; one byte per value "
        f"instead of four")

    # the figure: the staircase over a range wider than the calibrated one (clamping)
    grid = np.linspace(-3.0, 4.0, 1401).astype(np.float32)
    grid_back = quantize_per_tensor(grid, scale, zero_point, quint8).dequantize()
    zoom = np.linspace(-6 * scale, 6 * scale, 601).astype(np.float32)
    zoom_back = quantize_per_tensor(zoom, scale, zero_point, quint8).dequantize()

    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 16)).astype(np.float32) * \
        np.array([[0.05], [1.0], [8.0]], np.float32)
    per_tensor = quantize_per_tensor(w, float(np.abs(w).max() / 127), 0, qint8)
    per_channel = quantize_per_channel(w, np.abs(w).max(axis=1) / 127,
                                       np.zeros(3, np.int64), 0, qint8)
    rel = {name: np.abs(qq.dequantize() - w).mean(axis=1) / np.abs(w).mean(axis=1)
           for name, qq in (("per-tensor", per_tensor), ("per-channel", per_channel))}
    log("\n  A weight whose rows differ 160-fold, symmetric qint8, one scale for the\n"
        "  tensor or one per output channel (mean relative error of each row):\n")
    log(format_table(["row", "max |w|", "per-tensor", "per-channel"],
                     [[str(r), f"{np.abs(w[r]).max():.2f}", f"{100 * rel['per-tensor'][r]:.2f} %",
                       f"{100 * rel['per-channel'][r]:.2f} %"] for r in range(3)], indent=4))
    return {"x": x, "q": q.int_repr(), "scale": scale, "zero_point": zero_point,
            "max_error": err, "grid": grid, "grid_back": grid_back, "zoom": zoom,
            "zoom_back": zoom_back, "rows": rows,
            "per_channel_rows": [[r, float(np.abs(w[r]).max()), float(rel["per-tensor"][r]),
                                  float(rel["per-channel"][r])] for r in range(3)]}


# --- 2. calibration -----------------------------------------------------------------------
OBSERVERS = ("MinMaxObserver", "HistogramObserver", "PercentileObserver", "MSEObserver",
             "EntropyObserver")


def calibration(log=print, show_progress=None, batches=8, size=16384):
    """Five observers calibrate on heavy-tailed data; the range each picks, and the
    quantization error it gives."""
    log(heading(2, "Calibration: observers choose S and Z"))
    log("  Each observer watches 8 batches of activations and returns (S, Z); the error\n"
        "  is that of quantizing all of them with it.  MinMax keeps every outlier and\n"
        "  pays for it with a coarse step; Histogram (PyTorch's x86 default) and MSE\n"
        "  search for the clipping with the least squared error; Percentile (99.99 %)\n"
        "  clips a fixed share of the values, Entropy (TensorRT's) the range whose\n"
        "  histogram is closest in KL divergence, which is not the squared error.\n")
    rng = np.random.default_rng(1)
    dists = {"Laplace": lambda: rng.laplace(size=size),
             "Student-t(3)": lambda: rng.standard_t(3, size=size)}
    data = {name: [draw().astype(np.float32) for _ in range(batches)]
            for name, draw in dists.items()}
    results = {name: {} for name in dists}
    jobs = [(d, o) for d in dists for o in OBSERVERS]
    for dist, obs_name in progress(jobs, desc="calibrating", leave=False,
                                   disable=not _bar_enabled(show_progress)):
        obs = getattr(tq, obs_name)()
        for batch in data[dist]:
            obs(batch)
        (scale,), (zp,) = obs.calculate_qparams()
        everything = np.concatenate(data[dist])
        q = quantize_per_tensor(everything, float(scale), int(zp), quint8)
        results[dist][obs_name] = {
            "range": (float(scale * (0 - zp)), float(scale * (255 - zp))),
            "mse": float(np.mean((q.dequantize() - everything) ** 2))}
    header = ["observer"] + [h for d in dists for h in (f"{d} range", "MSE")]
    rows = []
    for obs_name in OBSERVERS:
        row = [obs_name]
        for d in dists:
            r = results[d][obs_name]
            row += [f"[{r['range'][0]:6.2f}, {r['range'][1]:5.2f}]", f"{r['mse']:.2e}"]
        rows.append(row)
    log(format_table(header, rows, indent=4))
    best = {d: min(OBSERVERS, key=lambda o: results[d][o]["mse"]) for d in dists}
    log("\n  lowest error: " + ", ".join(f"{best[d]} on {d}" for d in dists))
    return {"results": results, "samples": {d: np.concatenate(v) for d, v in data.items()},
            "header": header, "rows": rows}


# --- 3. the float model -------------------------------------------------------------------
def float_model(data, epochs, width=32, lr=0.01, random_state=0, log=print,
                show_progress=None):
    """Train :class:`~qlearn.demo.models.DigitsNet` in float32 with qlearn's autograd
    (initial weights and batch order drawn from NumPy generators made from
    ``random_state``)."""
    from ..autograd.random import get_generator
    log(heading(3, "A float CNN on the 8x8 digits"))
    get_generator().bit_generator.state = np.random.default_rng(random_state).bit_generator.state
    model = DigitsNet(width)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"  {len(data.y_train)} training and {len(data.y_test)} test images, 10 classes.\n"
        f"  quant -> conv-bn-relu (1->{width}) -> conv-bn-relu ({width}->{width}) + residual "
        f"add\n  (FloatFunctional) -> relu -> maxpool 2x2 -> linear ({16 * width}->10) -> "
        f"dequant\n  {n_params:,} parameters; SGD, momentum 0.9, lr {lr} on a cosine, "
        f"{epochs} epochs\n")
    opt, sched = sgd_schedule(model, lr, epochs)
    history = fit(model, opt, data, epochs, "float", scheduler=sched,
                  random_state=random_state, show_progress=show_progress, log=log)
    return model, history


# --- 4. the comparison --------------------------------------------------------------------
def model_bytes(model):
    """Bytes of ``model.state_dict()`` saved with :func:`qlearn.save`.

    >>> from qlearn import nn
    >>> from qlearn.demo.story import model_bytes
    >>> small, big = model_bytes(nn.Linear(10, 10)), model_bytes(nn.Linear(100, 100))
    >>> big - small > 4 * (100 * 100 - 10 * 10)        # four bytes per float32 weight
    True
    """
    buf = io.BytesIO()
    save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def _packed_bytes(model, saved):
    """``saved`` bytes with every quantized parameter stored at its bit width instead
    of as float32 (what a packed 4-bit file would hold; qlearn has no 4-bit format)."""
    bits = sum(getattr(m, "float_" + name).numel() * (32 - nbits)
               for m in model.modules() for name, nbits in getattr(m, "quantized_params", ()))
    return saved - bits // 8


def _calibrate(model, x, batch_size=64, show_progress=None, desc="calibrating"):
    from ..autograd import no_grad
    with no_grad():
        for i in progress(range(0, len(x), batch_size), desc=desc, leave=False,
                          disable=not _bar_enabled(show_progress)):
            model(x[i:i + batch_size])
    return model


def _one_blas_thread():
    """NumPy's BLAS (the float convolutions' matrix products) limited to one thread, so
    that "1 thread" holds for fp32 too: threadpoolctl (which scikit-learn installs)
    when present, else nothing (returns False)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext(False)
    return threadpool_limits(limits=1, user_api="blas")


def latency(models, x, rounds, repeats=1, show_progress=None, min_seconds=0.05):
    """Seconds per call of each model on the batch ``x``, at one thread.

    The models run in turn, round after round (each enough times to last
    ``min_seconds``), so that a burst of load on a shared machine hits them all; each
    model's median over the rounds is kept, and of ``repeats`` such runs the best.
    """
    from ..autograd import no_grad
    threads = get_num_threads()
    set_num_threads(1)
    samples = {name: [[] for _ in range(repeats)] for name in models}
    try:
        with no_grad(), _one_blas_thread():
            counts = {}
            for name, m in models.items():
                m(x)                                   # warm up
                t0 = time.perf_counter()
                m(x)
                counts[name] = max(1, int(min_seconds / max(time.perf_counter() - t0, 1e-6)))
            for r in progress(range(rounds * repeats), desc="timing", leave=False,
                              disable=not _bar_enabled(show_progress)):
                for name, m in models.items():
                    t0 = time.perf_counter()
                    for _ in range(counts[name]):
                        m(x)
                    samples[name][r // rounds].append((time.perf_counter() - t0) /
                                                      counts[name])
    finally:
        set_num_threads(threads)
    return {name: float(min(np.median(s) for s in runs)) for name, runs in samples.items()}


#: How each row of the comparison is made, printed under the table.
RECIPES = {
    "fp32": "the trained float model (batch norms as layers)",
    "dynamic int8": "quantize_dynamic(model, {nn.Linear}): the head only, int8 weights",
    "static int8 (eager)": "fuse_modules -> prepare -> calibrate -> convert, x86 qconfig",
    "static int8 (FX)": "prepare_fx -> calibrate -> convert_fx, x86 qconfig, no stubs needed",
    "QAT int8": "fuse_modules_qat -> prepare_qat -> fine-tune -> convert",
    "4-bit DoReFa/PACT": "PACTQuantizer(bits_weights=4, bits_activations=4) -> fine-tune",
}


def compare(model, data, qat_epochs, fourbit_epochs, float_lr=0.01, rounds=7, repeats=2,
            batch_size=128, random_state=0, calib_size=256, log=print,
            show_progress=None):
    """The float model and five quantized versions of it: accuracy, size, latency."""
    log(heading(4, "fp32 vs dynamic vs static vs QAT vs 4-bit"))
    calib = data.x_train[:calib_size]
    qconfig = tq.get_default_qconfig("x86")
    models = {"fp32": model}
    models["dynamic int8"] = tq.quantize_dynamic(model, {nn.Linear}, dtype=qint8)

    eager = tq.fuse_modules(copy.deepcopy(model).eval(), FUSE)
    eager.qconfig = qconfig
    tq.prepare(eager, inplace=True)
    _calibrate(eager, calib, show_progress=show_progress, desc="calibrating (eager)")
    models["static int8 (eager)"] = tq.convert(eager)

    prepared = quantize_fx.prepare_fx(model, tq.QConfigMapping().set_global(qconfig),
                                      (calib[:1],))
    _calibrate(prepared, calib, show_progress=show_progress, desc="calibrating (FX)")
    models["static int8 (FX)"] = quantize_fx.convert_fx(prepared)
    log(f"  The x86 qconfig: HistogramObserver on activations (quint8, 7 bits) and\n"
        f"  per-channel symmetric qint8 weights.  Static: calibrated on {len(calib)} "
        f"training images.")

    # "Practical Quantization in PyTorch": fine-tune for about 10% of the float schedule
    # at about 1% of its initial learning rate; batch norms frozen for a last epoch
    qat = tq.fuse_modules_qat(copy.deepcopy(model).train(), FUSE)
    qat.qconfig = tq.get_default_qat_qconfig("x86")
    tq.prepare_qat(qat, inplace=True)
    opt, sched = sgd_schedule(qat, float_lr / 100, qat_epochs)
    qat_history = fit(qat, opt, data, qat_epochs, "QAT", scheduler=sched,
                      random_state=random_state + 1,
                      freeze_bn_at=qat_epochs - 1 if qat_epochs > 1 else None,
                      show_progress=show_progress, log=log)
    models["QAT int8"] = tq.convert(qat.eval())

    fourbit = copy.deepcopy(model)
    quantizer = PACTQuantizer(fourbit, bits_activations=4, bits_weights=4,
                              act_clip_init_val=4.0, keep_first_last=None)
    quantizer.prepare_model()
    before = accuracy(fourbit, data)
    opt = optim.Adam(fourbit.parameters(), lr=1e-3)
    sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    fourbit_history = fit(fourbit, opt, data, fourbit_epochs, "4-bit", scheduler=sched,
                          random_state=random_state + 2,
                          show_progress=show_progress, log=log)
    alphas = [round(float(m.alpha.data[0]), 2) for m in fourbit.modules()
              if hasattr(m, "alpha")]
    models["4-bit DoReFa/PACT"] = fourbit
    log(f"  4-bit: test accuracy {100 * before:.2f} % before fine-tuning; PACT's learned "
        f"clip values {alphas}")

    xb = np.ascontiguousarray(data.x_test[:batch_size])
    log(f"  timing one batch of {len(xb)} test images at 1 thread ({repeats} x {rounds} "
        f"alternating rounds) ...")
    times = latency(models, xb, rounds, repeats, show_progress=show_progress)

    records = {}
    for name, m in models.items():
        nbytes = model_bytes(m)
        packed = name.startswith("4-bit")
        if packed:
            nbytes = _packed_bytes(m, nbytes)
        records[name] = {"accuracy": accuracy(m, data), "bytes": nbytes, "packed": packed,
                         "seconds": times[name], "speedup": times["fp32"] / times[name],
                         "recipe": RECIPES[name]}
    header, rows = comparison_rows(records)
    log("")
    log(format_table(header, rows))
    st, fp = records["static int8 (eager)"], records["fp32"]
    change = 100 * (st["accuracy"] - fp["accuracy"])
    log(f"\n  In short: static int8 is {fp['bytes'] / st['bytes']:.1f}x smaller and "
        f"{st['speedup']:.1f}x faster than fp32 at\n  {change:+.2f} points of accuracy, "
        f"on this machine now.\n")
    log("  " + "\n  ".join(f"{name + ':':<21}{r['recipe']}" for name, r in records.items()))
    log("  size: the state_dict saved by qlearn.save; * with the 4-bit weights counted\n"
        "  packed two to a byte: qlearn has no 4-bit kernel, so that model runs as fake\n"
        "  quantization in float32 (hence its latency).")
    return {"records": records, "header": header, "rows": rows, "qat_history": qat_history,
            "fourbit_history": fourbit_history, "alphas": alphas, "models": models,
            "batch_size": len(xb)}


def comparison_rows(records):
    """The comparison table (header, rows) from ``compare``'s records.

    >>> from qlearn.demo.story import comparison_rows
    >>> rec = {"fp32": dict(accuracy=0.97, bytes=4096, packed=False, seconds=0.004,
    ...                     speedup=1.0),
    ...        "int8": dict(accuracy=0.965, bytes=1024, packed=False, seconds=0.001,
    ...                     speedup=4.0)}
    >>> comparison_rows(rec)[1][1]
    ['int8', '96.50', '-0.50', '1.0 ', '1.00', '4.00x']
    """
    fp32 = records["fp32"]
    header = ["model", "accuracy %", "vs fp32", "size KiB", "ms / batch", "speedup"]
    rows = []
    for name, r in records.items():
        rows.append([name, f"{100 * r['accuracy']:.2f}",
                     f"{100 * (r['accuracy'] - fp32['accuracy']):+.2f}",
                     f"{r['bytes'] / 1024:.1f}" + ("*" if r["packed"] else " "),
                     f"{1e3 * r['seconds']:.2f}", f"{r['speedup']:.2f}x"])
    return header, rows


# --- 5. sensitivity ---------------------------------------------------------------------------
def sensitivity_tables(model, data, calib_size=256, log=print, show_progress=None):
    """One layer quantized at a time (the rest float), at int8 and at 4 bits."""
    log(heading(5, "Sensitivity: one layer quantized at a time"))
    calib = data.x_train[:calib_size]

    def calibrate(m):
        m(calib)

    def acc(m):
        return accuracy(m, data)

    bar = _bar_enabled(show_progress)
    int8 = sensitivity.sensitivity_analysis(model, tq.get_default_qconfig("x86"), calibrate,
                                            acc, progress=bar)
    four = sensitivity.sensitivity_analysis(model, sensitivity.fake_quant_qconfig(4),
                                            calibrate, acc, progress=bar)
    header = ["layer", "type", "int8 SQNR", "int8 acc", "4-bit SQNR", "4-bit acc", "rank"]
    rows = [[a["layer"], a["type"], f"{a['sqnr']:.1f} dB", f"{100 * a['delta']:+.2f}",
             f"{b['sqnr']:.1f} dB", f"{100 * b['delta']:+.2f}", str(b["rank"])]
            for a, b in zip(int8, four)]
    log("  The output SQNR (dB, vs the float model) and the change in test accuracy\n"
        "  (points) with only that layer quantized; rank 1 is the most sensitive at 4 bits.\n")
    log(format_table(header, rows))
    log(f"\n  test accuracy: float {100 * int8.float_metric:.2f} %, every layer int8 "
        f"{100 * int8.quantized_metric:.2f} %,\n  every layer at 4 bits (calibrated, not "
        f"fine-tuned) {100 * four.quantized_metric:.2f} %")
    worst = four.ranked()[0]
    log(f"  At 4 bits `{worst['layer']}` is the most sensitive ({100 * worst['delta']:+.2f} "
        f"points, {worst['sqnr']:.1f} dB):\n  the first to keep at 8 bits or in float "
        f"(sensitivity.mixed_precision chooses\n  for a target accuracy).")
    return {"int8": int8, "four": four, "header": header, "rows": rows}
