"""benchmarks/qconv_driver_bench.c still builds against the kernel headers (and runs,
where the CPU has AVX-512 VNNI): a harness that rots would mislead the next
measurement."""
import pathlib
import platform
import re
import shutil
import subprocess

import pytest

from qlearn.kernels import simd

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("gcc") is None or platform.machine() != "x86_64",
                    reason="needs gcc on x86-64")
def test_qconv_driver_bench_builds_and_runs(tmp_path):
    exe = tmp_path / "qconv_driver_bench"
    subprocess.run(["gcc", "-O1", "-Werror=implicit-function-declaration",
                    "-I", str(ROOT / "pyx" / "include"),
                    str(ROOT / "benchmarks" / "qconv_driver_bench.c"), "-o", str(exe), "-lm"],
                   check=True, capture_output=True)
    bad = subprocess.run([str(exe), "15", "8"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr + bad.stdout or \
        "no AVX-512 VNNI" in bad.stderr
    if simd.Simd.VNNI not in simd.available():
        pytest.skip("the harness runs the VNNI driver only")
    run = subprocess.run([str(exe), "16", "8", "1"], capture_output=True, text=True,
                         check=True)
    m = re.fullmatch(r"conv 3x3 16->16 8x8, VNNI driver: (\d+\.\d+) of the peak "
                     r"\(median of 1 rounds, max \d+\.\d+\)\n", run.stdout)
    assert m and float(m.group(1)) > 0, run.stdout
