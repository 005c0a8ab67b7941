"""The results tables of docs/int8.rst, written from a bench_int8.py run.

    python benchmarks/bench_int8.py --docs docs/_generated          # the native path
    QLEARN_SIMD=avx2 python benchmarks/bench_int8.py --docs docs/_generated

Each run writes ``int8_results_<path>.inc`` (``<path>`` is qlearn's SIMD path: vnni,
avx2 or generic; reStructuredText, named ``.inc`` so that Sphinx does not take it for a
page of its own) into the folder given; docs/int8.rst includes both files, so the
tables there are always the numbers of a real run, with the machine, the path, the
measured peak, the date and the load average under which they were taken.  Also
usable on a saved run: ``python benchmarks/int8_docs_table.py results.json out_dir``.
"""
import datetime
import json
import os
import platform
import sys

PEERS = ("numpy", "torch", "ort")
NAMES = {"numpy": "NumPy", "torch": "PyTorch", "ort": "ORT"}


def cpu_model():
    """The CPU's model name and x86 family and model numbers (Linux; they tell the
    core generation, which the name of a cloud CPU does not: family 25 is AMD Zen 3
    and 4, 26 Zen 5), else the platform's processor string."""
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model") and key not in fields:
                    fields[key] = value.strip()
                if not line.strip() and fields:
                    break
    except OSError:
        pass
    if "model name" not in fields:
        return platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        return f"{fields['model name']} (family {fields['cpu family']}, model {fields['model']})"
    return fields["model name"]


def _table(header, rows):
    """An RST simple table (columns as wide as their widest cell)."""
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    rule = " ".join("=" * w for w in widths)
    fmt = " ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(line.rstrip() for line in
                     [rule, fmt.format(*header), rule] + [fmt.format(*r) for r in rows]
                     + [rule])


def _same_isa_peers(meta, case):
    """The peers of ``case`` that ran on qlearn's instruction set: all of them on the
    CPU's best path; with PyTorch capped (``torch_isa_cap``: qlearn's AVX2 path on a VNNI
    CPU) PyTorch in GEMMs only (fbgemm's convolutions ignore its ISA switch, and ONNX
    Runtime has none)."""
    if not meta.get("torch_isa_cap"):
        return ("torch", "ort")
    return ("torch",) if case.startswith("GEMM") else ()


def _faster_peer(r, names):
    """qlearn's speed over the faster of the peers ``names`` (None if none ran)."""
    peers = [r["gops"][p] for p in names if p in r["gops"]]
    return r["gops"]["qlearn"] / max(peers) if peers else None


def _cell(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


def rst(data):
    """The RST text of one run (``data`` as bench_int8.py writes it to JSON)."""
    meta, results = data["meta"], data["results"]
    path = meta.get("qlearn_path", "?")
    peers = [p for p in PEERS if results and p in results[0]["gops"]]
    header = (["case", "qlearn"] + [NAMES[p] for p in peers]
              + [f"qlearn/{NAMES[p]}" for p in peers] + ["qlearn/best peer", "qlearn/peak",
                                                  "same rounds"])
    date = meta.get("date") or datetime.date.today().isoformat()
    peak = meta.get("peak_gops")
    lines = [
        f"Path ``{path}``, {cpu_model()} (SIMD the CPU has: "
        f"{meta.get('cpu_isa', 'not recorded')}), measured on {date} with "
        f"``{meta.get('command', 'python benchmarks/bench_int8.py')}`` "
        f"(PyTorch {meta.get('torch')}, ONNX Runtime {meta.get('onnxruntime')}, "
        f"NumPy {meta.get('numpy')}; 1-minute load average {meta.get('loadavg_before')} "
        f"before, {meta.get('loadavg_after')} after"
        + ("; one competing busy process" if meta.get("contended") else "") + ").  "
        + (f"The int8 peak of one core on this path, measured, is {peak:.0f} GOP/s; "
           "qlearn/peak is a 1-thread speed over it, a 2-thread speed over twice it; "
           "same rounds is qlearn/peak with the peak chains timed in each case's own "
           "rounds, for the same work per core, so that both saw the same load.  "
           if peak else "")
        + (f"PyTorch ran on {meta['torch_isa_cap']} in GEMMs, the CPU's best in "
           "convolutions (``FBGEMM_ENABLE_INSTRUCTIONS`` caps its GEMMs; its convolutions "
           "ignore it), ONNX Runtime on the CPU's best instructions (it has no such "
           "switch): qlearn/best peer is over the peers that ran on qlearn's "
           "instructions, ``-`` where none did, and there qlearn/peak is the measure.  "
           if meta.get("torch_isa_cap") else "")
        + "Speeds in GOP/s; ratios above 1 mean qlearn is faster.",
        "",
    ]
    for threads in sorted({r["threads"] for r in results}):
        rows = []
        for r in results:
            if r["threads"] != threads:
                continue
            rows.append([r["case"], f"{r['gops']['qlearn']:.0f}"]
                        + [f"{r['gops'][p]:.0f}" if r["gops"][p] >= 10
                           else f"{r['gops'][p]:.1f}" for p in peers]
                        + [_cell(r["ratio"][p]) for p in peers]
                        + [_cell(_faster_peer(r, _same_isa_peers(meta, r["case"]))),
                           _cell(r.get("qlearn_over_peak")),
                           _cell(r.get("qlearn_over_peak_rounds"))])
        word = "One thread" if threads == 1 else f"{threads} threads"
        lines += [f"**{word}** (path ``{path}``)", "", _table(header, rows), ""]
    one = {r["case"]: r["gops"]["qlearn"] for r in results if r["threads"] == 1}
    scaling = [f"{r['case']} {r['gops']['qlearn'] / one[r['case']]:.2f}"
               for r in results if r["threads"] == 2 and r["case"] in one]
    rounds = [f"{r['case']} {r['ratio']['qlearn_1t']:.2f}" for r in results
              if r["threads"] == 2 and "qlearn_1t" in r.get("ratio", {})]
    twins = [r["twin_over_1t"] for r in results if "twin_over_1t" in r]
    if scaling:
        lines += ["qlearn's 2-thread speed over its 1-thread speed, same run: "
                  + ", ".join(scaling) + "."
                  + (" In the same rounds (the 1-thread layer timed beside the 2-thread "
                     "one, under the same load): " + ", ".join(rounds) + "." if rounds
                     else "")
                  + (f" Two identical 1-thread layers timed in the same rounds, a ratio "
                     f"that should read 1, read {min(twins):.2f}-{max(twins):.2f}: the "
                     f"noise floor of those ratios." if twins else ""), ""]
    return "\n".join(lines)


def write(data, out_dir):
    """Write ``int8_results_<path>.inc`` for ``data`` into ``out_dir``; its path."""
    os.makedirs(out_dir, exist_ok=True)
    name = f"int8_results_{data['meta'].get('qlearn_path', 'unknown')}"
    if data["meta"].get("contended"):
        name += "_contended"
    target = os.path.join(out_dir, name + ".inc")
    with open(target, "w", encoding="utf-8") as f:
        f.write(".. Written by benchmarks/int8_docs_table.py from a bench_int8.py run; "
                "do not edit.\n\n" + rst(data))
    return target


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as fh:
        print(write(json.load(fh), sys.argv[2]))
