"""The main demonstration (``python -m qlearn.demo``): one short run checked end to end,
its pieces on their own, and that it works without tqdm and matplotlib."""
import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import qlearn as ql
from qlearn import demo
from qlearn.demo import report, story
from qlearn.demo.text import format_table, heading, html_table

MODELS = ["fp32", "dynamic int8", "static int8 (eager)", "static int8 (FX)", "QAT int8",
          "4-bit DoReFa/PACT"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One quick run (2 float epochs, one of each fine-tuning): its output and results."""
    pytest.importorskip("sklearn")
    out = tmp_path_factory.mktemp("demo") / "report"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        results = demo.run_demo(["--quick", "--epochs", "2", "--no-progress",
                                 "--out", str(out)])
    return buf.getvalue(), results, out


def test_prints_every_section(run):
    text, _, out = run
    for n, title in enumerate(["The affine map", "Calibration", "A float CNN",
                               "fp32 vs dynamic", "Sensitivity", "Report"], 1):
        assert f"\n{n}  {title}" in text
    assert str(out) in text                        # names the report folder at the end
    assert "done in" in text.splitlines()[-1]
    assert "\r" not in text                        # no progress bars in a captured run


def test_comparison_table(run):
    text, results, _ = run
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["model", "accuracy"])
    rows = lines[start + 2:start + 2 + len(MODELS)]
    assert [r[2:21].strip() for r in rows] == MODELS
    header = lines[start]
    for col in ("accuracy %", "vs fp32", "size KiB", "ms / batch", "speedup"):
        assert col in header
    # numbers right-aligned: each row ends at the header's width, with "x" last
    assert all(r.rstrip().endswith("x") and len(r) == len(header) for r in rows)
    rec = results["compare"]["records"]
    assert list(rec) == MODELS
    fp32 = rec["fp32"]
    for r in rec.values():
        assert r["seconds"] > 0 and np.isclose(r["speedup"], fp32["seconds"] / r["seconds"])
        assert 0.0 <= r["accuracy"] <= 1.0
    assert fp32["accuracy"] > 0.8                  # two epochs are enough for the digits
    for name in ("static int8 (eager)", "static int8 (FX)", "QAT int8"):
        assert abs(rec[name]["accuracy"] - fp32["accuracy"]) < 0.03, name
        assert rec[name]["bytes"] < 0.5 * fp32["bytes"], name      # int8 weights
    assert rec["dynamic int8"]["bytes"] < fp32["bytes"]
    assert rec["4-bit DoReFa/PACT"]["packed"] and not rec["fp32"]["packed"]


def test_sensitivity_section(run):
    _, results, _ = run
    sens = results["sensitivity"]
    assert [r["layer"] for r in sens["int8"]] == ["conv1", "conv2", "fc"]
    assert sorted(r["rank"] for r in sens["four"]) == [1, 2, 3]
    # 4 bits lose about 4 x 6 dB of SQNR against 8 bits on every layer
    for a, b in zip(sens["int8"], sens["four"]):
        assert a["sqnr"] > b["sqnr"] + 10, a["layer"]


def test_report_files(run):
    _, results, out = run
    assert results["report"] == str(out / "index.html")
    page = (out / "index.html").read_text(encoding="utf-8")
    for name in MODELS:
        assert f"<tr><td>{name}</td>" in page
    saved = json.loads((out / "results.json").read_text())
    assert list(saved["comparison"]) == MODELS
    assert saved["sensitivity"]["float_metric"] == results["sensitivity"]["int8"].float_metric
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in page
    else:
        for png in report.FIGURES:
            assert (out / png).stat().st_size > 1000, png
            assert f'src="{png}"' in page


def test_report_without_matplotlib(run, tmp_path, monkeypatch):
    _, results, _ = run
    monkeypatch.setitem(sys.modules, "matplotlib", None)       # import fails
    path, problem = report.write_report(str(tmp_path / "r"), results)
    assert "matplotlib is not installed" in problem
    with open(path, encoding="utf-8") as f:
        page = f.read()
    assert "matplotlib is not installed" in page and "<img" not in page
    assert "static int8 (FX)" in page
    assert not [f for f in os.listdir(tmp_path / "r") if f.endswith(".png")]


def test_report_survives_a_failing_figure(run, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    _, results, _ = run

    def broken(*args):
        raise RuntimeError("no fonts")
    monkeypatch.setattr(report, "_plot_sensitivity", broken)
    path, problem = report.write_report(str(tmp_path), results)
    assert "sensitivity.png (RuntimeError: no fonts)" in problem
    assert os.path.exists(tmp_path / "affine.png") and os.path.exists(path)


def test_sections_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    lines = []
    res = story.calibration(log=lines.append, show_progress=True, batches=2, size=512)
    assert set(res["results"]["Laplace"]) == set(story.OBSERVERS)
    text = "\n".join(lines)
    assert "MinMaxObserver" in text and "lowest error" in text


def test_affine_map_numbers():
    lines = []
    r = story.affine_map(log=lines.append)
    x = r["x"]
    lo, hi = min(x.min(), 0), max(x.max(), 0)
    assert np.isclose(r["scale"], (hi - lo) / 255)
    assert r["zero_point"] == round(-lo / r["scale"])
    expected = np.clip(np.round(x / r["scale"]) + r["zero_point"], 0, 255)
    np.testing.assert_array_equal(r["q"], expected.astype(np.uint8))
    assert r["max_error"] <= r["scale"] / 2 + 1e-7
    # per channel is never worse than per tensor, and much better on the small row
    rows = r["per_channel_rows"]
    assert rows[0][2] > 10 * rows[0][3]
    assert all(c <= t + 1e-6 for _, _, t, c in rows)


def test_latency_restores_threads_and_times_each_model():
    from qlearn import nn
    before = ql.get_num_threads()
    models = {"a": nn.Linear(8, 4).eval(), "b": nn.Sequential(nn.Linear(8, 4)).eval()}
    x = np.ones((3, 8), np.float32)
    t = story.latency(models, x, rounds=2, repeats=2, show_progress=False,
                      min_seconds=0.001)
    assert set(t) == {"a", "b"} and all(v > 0 for v in t.values())
    assert ql.get_num_threads() == before


def test_packed_bytes_counts_four_bits_per_weight():
    from qlearn import nn
    from qlearn.quantizers import PACTQuantizer
    m = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    PACTQuantizer(m, bits_activations=4, bits_weights=4, keep_first_last=None).prepare_model()
    saved = story.model_bytes(m)
    assert story._packed_bytes(m, saved) == saved - (30 + 15) * 28 // 8


def test_digits_models():
    x = np.zeros((2, 1, 8, 8), np.float32)
    assert demo.digits_cnn()(x).shape == (2, 10)
    import qlearn.quantization as tq
    fused = tq.fuse_modules(demo.digits_cnn().eval(), [["0", "1", "2"], ["3", "4", "5"]])
    assert type(fused[0]).__name__ == "ConvReLU2d"
    net = demo.DigitsNet(width=4).eval()
    assert net(x).shape == (2, 10)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="`width` must be a positive integer"):
            demo.DigitsNet(width=bad)


def test_text_tables():
    assert heading(2, "Calibration").splitlines() == ["", "2  Calibration",
                                                      "-" * len("2  Calibration")]
    t = format_table(["name", "value"], [["a", "1.5 %"], ["long name", "12.25 %"]], indent=0)
    assert t.splitlines() == ["name         value", "---------  -------",
                              "a            1.5 %", "long name  12.25 %"]
    with pytest.raises(ValueError, match="every row must have 2 cells"):
        format_table(["a", "b"], [["only one"]])
    assert "&lt;b&gt;" in html_table(["h"], [["<b>"]])


def test_bad_arguments(tmp_path, capsys):
    for argv, msg in ((["--epochs", "0"], "--epochs must be at least 1, got 0"),
                      (["--fourbit-epochs", "-1"], "--fourbit-epochs must be at least 1"),
                      (["--out", __file__], "--out must be a folder")):
        with pytest.raises(SystemExit) as exc:
            demo.main(argv)
        assert exc.value.code == 2
        assert msg in capsys.readouterr().err


def test_module_runs_from_the_command_line():
    res = subprocess.run([sys.executable, "-m", "qlearn.demo", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--out DIR" in res.stdout and "--quick" in res.stdout
