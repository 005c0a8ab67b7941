"""The demonstration's HTML report: its tables, and its figures as PNG files beside it.

The figures need matplotlib (the ``demo`` extra); without it the report is written
with the tables only and says so.  Figures are drawn on ``matplotlib.figure.Figure``
objects with the Agg canvas, so no GUI backend and no global pyplot state is touched.
"""
import json
import os
import time
from html import escape

import numpy as np

from .text import html_table

__all__ = ["write_report", "FIGURES"]

#: The figures of the report: file name -> caption.
FIGURES = {
    "affine.png": "The affine map of section 1: S (q - Z) against x, and the error, "
                  "within S/2 inside the range and growing outside it (clamping).",
    "calibration.png": "The data of section 2 and the range each observer chose.",
    "training.png": "Training: float epochs, then the QAT and the 4-bit fine-tuning.",
    "comparison.png": "The comparison of section 4: accuracy, size and latency.",
    "sensitivity.png": "Section 5: one layer quantized at a time, int8 and 4 bits.",
}

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
     border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.92rem; }
th, td { padding: 0.25rem 0.7rem; border-bottom: 1px solid #e4e4e4; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
img { max-width: 100%; } figure { margin: 1rem 0; }
figcaption { font-size: 0.9rem; color: #555; }
pre { background: #f6f6f6; padding: 0.6rem; overflow-x: auto; font-size: 0.85rem; }
.note { color: #555; font-size: 0.92rem; }
"""


def _figure(nrows=1, ncols=1, size=(8, 3.2)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols)


def _plot_affine(r, path):
    fig, (a, b) = _figure(1, 2)
    grid, back = r["grid"], r["grid_back"]
    a.plot(grid, grid, color="grey", lw=0.8, label="x")
    a.plot(grid, back, color="tab:blue", lw=1.2, label="S (q - Z)")
    a.set_xlabel("x")
    a.set_title(f"quint8, S = {r['scale']:.4f}, Z = {r['zero_point']}")
    a.legend(loc="upper left")
    b.plot(grid, back - grid, color="tab:red", lw=0.8)
    b.axhline(r["scale"] / 2, color="grey", ls="--", lw=0.8)
    b.axhline(-r["scale"] / 2, color="grey", ls="--", lw=0.8)
    b.set_ylim(-4 * r["scale"], 4 * r["scale"])
    b.set_xlabel("x")
    b.set_title("error S (q - Z) - x  (dashed: +-S/2)")
    fig.savefig(path, dpi=110)


def _plot_calibration(r, path):
    dists = list(r["samples"])
    fig, axes = _figure(1, len(dists), size=(9, 3.2))
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for ax, dist in zip(np.atleast_1d(axes), dists):
        x = r["samples"][dist]
        lim = np.percentile(np.abs(x), 99.99) * 1.6
        ax.hist(np.clip(x, -lim, lim), bins=200, color="lightgrey", log=True)
        for (name, res), color in zip(r["results"][dist].items(), colors):
            lo, hi = res["range"]
            ax.axvline(max(lo, -lim), color=color, lw=1.2, label=name.replace("Observer", ""))
            ax.axvline(min(hi, lim), color=color, lw=1.2)
        ax.set_title(f"{dist}: each observer's range")
        ax.set_xlabel("activation value")
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="upper left")
    fig.savefig(path, dpi=110)


def _plot_training(float_history, qat_history, fourbit_history, path):
    fig, (a, b) = _figure(1, 2)
    start = len(float_history)
    for hist, label, offset, color in ((float_history, "float", 0, "tab:blue"),
                                       (qat_history, "QAT int8", start, "tab:green"),
                                       (fourbit_history, "4-bit PACT", start, "tab:red")):
        ep = [offset + h["epoch"] for h in hist]
        a.plot(ep, [h["loss"] for h in hist], "o-", color=color, label=label, ms=3)
        b.plot(ep, [100 * h["accuracy"] for h in hist], "o-", color=color, label=label,
               ms=3)
    a.set_xlabel("epoch")
    a.set_ylabel("training loss")
    a.set_yscale("log")
    b.set_xlabel("epoch")
    b.set_ylabel("test accuracy (%)")
    b.legend()
    fig.savefig(path, dpi=110)


def _plot_comparison(records, path):
    fig, axes = _figure(1, 3, size=(10, 3.4))
    names = list(records)
    y = np.arange(len(names))
    colors = ["tab:grey"] + ["tab:blue"] * (len(names) - 1)
    for ax, key, label, scale in ((axes[0], "accuracy", "test accuracy (%)", 100),
                                  (axes[1], "bytes", "size (KiB)", 1 / 1024),
                                  (axes[2], "seconds", "ms per batch, 1 thread", 1e3)):
        ax.barh(y, [records[n][key] * scale for n in names], color=colors)
        ax.set_yticks(y)
        ax.set_yticklabels(names if ax is axes[0] else [""] * len(names))
        ax.invert_yaxis()
        ax.set_xlabel(label)
    lo = min(100 * r["accuracy"] for r in records.values())
    axes[0].set_xlim(max(0, lo - 5), 100)
    fig.savefig(path, dpi=110)


def _plot_sensitivity(int8, four, path):
    fig, axes = _figure(1, 2, size=(10, 3.4))
    for ax, table, title in ((axes[0], int8, "int8 (x86 qconfig)"),
                             (axes[1], four, "4 bits (fake quantized)")):
        table.plot(ax=ax)
        ax.set_title(f"one layer at a time: {title}")
    fig.savefig(path, dpi=110)


def draw_figures(out_dir, results):
    """Draw the report's PNGs into ``out_dir``; returns ``(written, problem)`` where
    ``problem`` is None or why some figures are missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return [], "matplotlib is not installed (pip install matplotlib): no figures"
    cmp = results["compare"]
    jobs = {
        "affine.png": lambda p: _plot_affine(results["affine"], p),
        "calibration.png": lambda p: _plot_calibration(results["calibration"], p),
        "training.png": lambda p: _plot_training(results["float_history"],
                                                 cmp["qat_history"], cmp["fourbit_history"], p),
        "comparison.png": lambda p: _plot_comparison(cmp["records"], p),
        "sensitivity.png": lambda p: _plot_sensitivity(results["sensitivity"]["int8"],
                                                       results["sensitivity"]["four"], p),
    }
    written, failed = [], []
    for name, draw in jobs.items():
        try:
            draw(os.path.join(out_dir, name))
            written.append(name)
        except Exception as exc:       # a broken matplotlib must not lose the report
            failed.append(f"{name} ({type(exc).__name__}: {exc})")
    return written, ("could not draw " + "; ".join(failed)) if failed else None


def _json_ready(results):
    cmp = results["compare"]
    sens = results["sensitivity"]
    return {
        "config": results["config"], "args": results["args"],
        "seconds": results["seconds"],
        "affine": {k: results["affine"][k] for k in ("scale", "zero_point", "max_error")},
        "calibration": results["calibration"]["results"],
        "float_history": results["float_history"],
        "qat_history": cmp["qat_history"], "fourbit_history": cmp["fourbit_history"],
        "comparison": cmp["records"], "pact_alphas": cmp["alphas"],
        "sensitivity": {"int8": list(sens["int8"]), "four_bit": list(sens["four"]),
                        "float_metric": sens["int8"].float_metric,
                        "int8_all": sens["int8"].quantized_metric,
                        "four_bit_all": sens["four"].quantized_metric},
    }


def write_report(out_dir, results):
    """Write ``index.html``, ``results.json`` and the figures into ``out_dir``
    (created if needed); returns the path of ``index.html`` and the note about missing
    figures (or None)."""
    os.makedirs(out_dir, exist_ok=True)
    figures, problem = draw_figures(out_dir, results)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(_json_ready(results), f, indent=1, default=float)

    def fig(name):
        if name not in figures:
            return ""
        return (f'<figure><img src="{name}" alt="{escape(name)}">'
                f"<figcaption>{escape(FIGURES[name])}</figcaption></figure>")

    aff, cal, cmp, sens = (results["affine"], results["calibration"], results["compare"],
                           results["sensitivity"])
    hist = results["float_history"]
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        "<title>qlearn demonstration</title>", f"<style>{_CSS}</style></head><body>",
        "<h1>qlearn: quantizing a digits CNN, end to end</h1>",
        f'<p class="note">Written {escape(time.strftime("%Y-%m-%d %H:%M"))} by '
        f"<code>{escape(results['command'])}</code> in {results['seconds']:.0f} s.</p>",
        f"<pre>{escape(results['config'])}</pre>",
        f'<p class="note">{escape(problem)}</p>' if problem else "",
        "<h2>1. The affine map</h2>",
        "<p>q = clamp(round(x / S) + Z, 0, 255), x &asymp; S (q - Z); here "
        f"S = {aff['scale']:.5f}, Z = {aff['zero_point']}, largest error "
        f"{aff['max_error']:.5f} &le; S/2.</p>",
        html_table(["x", "q", "S (q - Z)", "|error|"], aff["rows"]),
        fig("affine.png"),
        "<p>Per-tensor against per-channel scales on a weight whose rows differ "
        "160-fold (mean relative error per row):</p>",
        html_table(["row", "max |w|", "per-tensor", "per-channel"],
                   [[r, f"{m:.2f}", f"{100 * t:.2f} %", f"{100 * c:.2f} %"]
                    for r, m, t, c in aff["per_channel_rows"]]),
        "<h2>2. Calibration</h2>",
        "<p>Ranges and quantization MSE chosen by each observer on heavy-tailed "
        "data.</p>",
        html_table(cal["header"], cal["rows"]), fig("calibration.png"),
        "<h2>3. The float CNN</h2>",
        html_table(["epoch", "loss", "test accuracy"],
                   [[h["epoch"], f"{h['loss']:.3f}", f"{100 * h['accuracy']:.2f} %"]
                    for h in hist]),
        fig("training.png"),
        "<h2>4. fp32 vs dynamic vs static vs QAT vs 4-bit</h2>",
        f"<p>Latency: one batch of {cmp['batch_size']} test images at one thread, "
        "median of alternating rounds.</p>",
        html_table(cmp["header"], cmp["rows"]),
        "<ul>" + "".join(f"<li><b>{escape(n)}</b>: {escape(r['recipe'])}</li>"
                         for n, r in cmp["records"].items()) + "</ul>",
        '<p class="note">Size: the state_dict saved by <code>qlearn.save</code>; * with '
        "the 4-bit weights counted packed two to a byte: qlearn has no 4-bit kernel, so "
        "that model runs as fake quantization in float32 (hence its latency).</p>",
        fig("comparison.png"),
        "<h2>5. Sensitivity: one layer at a time</h2>",
        "<p>Output SQNR against the float model and change in test accuracy (points) "
        f"with only that layer quantized. Float {100 * sens['int8'].float_metric:.2f} %, "
        f"every layer int8 {100 * sens['int8'].quantized_metric:.2f} %, every layer "
        f"4-bit {100 * sens['four'].quantized_metric:.2f} %.</p>",
        html_table(sens["header"], sens["rows"]), fig("sensitivity.png"),
        "</body></html>",
    ]
    path = os.path.join(out_dir, "index.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(p for p in parts if p))
    return path, problem
