"""The one SIMD enum (qlearn.kernels.simd): QLEARN_SIMD, the CPU, use(), and the kernels'
own guard against paths the CPU lacks."""
import os
import subprocess
import sys

import numpy as np
import pytest

import qlearn as ql
from qlearn._ext import _quantize
from qlearn.kernels import simd, threads
from qlearn.kernels.simd import Simd


def _run(code, value):
    env = dict(os.environ)
    env.pop("QLEARN_SIMD", None)
    if value is not None:
        env["QLEARN_SIMD"] = value
    return subprocess.run([sys.executable, "-W", "always", "-c", code], env=env,
                          capture_output=True, text=True, check=True)


CODE = ("from qlearn.kernels import simd;"
        "print(' '.join(p.name for p in simd.available()), simd.active().name)")


def test_enum_mirrors_c_and_is_ordered():
    assert [int(p) for p in Simd] == [0, 1, 2]
    assert simd.available()[0] is Simd.GENERIC
    assert list(simd.available()) == sorted(simd.available())
    assert set(simd.available()) <= set(simd.cpu_paths())
    assert simd.active() == simd.available()[-1]


@pytest.mark.parametrize("value,want", [("generic", ["GENERIC"]), ("avx2", ["GENERIC", "AVX2"]),
                                        ("vnni", None), ("", None), (None, None),
                                        (" AVX2 ", ["GENERIC", "AVX2"])])
def test_environment_caps_the_path(value, want):
    cpu = [p.name for p in simd.cpu_paths()]
    if want is None:
        want = cpu
    want = [p for p in want if p in cpu]
    out = _run(CODE, value).stdout.split()
    assert out[:-1] == want            # QLEARN_SIMD=avx2 hides VNNI
    assert out[-1] == want[-1]


def test_unknown_environment_value_warns_and_is_ignored():
    r = _run(CODE, "avx512")
    assert "QLEARN_SIMD='avx512' is not one of generic, avx2, vnni" in r.stderr
    assert r.stdout.split()[:-1] == [p.name for p in simd.cpu_paths()]


def test_environment_asking_for_missing_instructions_warns():
    if Simd.VNNI in simd.cpu_paths():
        pytest.skip("this CPU has every path")
    r = _run(CODE, "vnni")
    assert "which this CPU lacks" in r.stderr


def test_use_switches_and_restores():
    before = simd.active()
    with simd.use("generic") as p:
        assert p is Simd.GENERIC and simd.active() is Simd.GENERIC
        with simd.use(simd.available()[-1]):
            assert simd.active() is simd.available()[-1]
        assert simd.active() is Simd.GENERIC
    assert simd.active() is before
    with pytest.raises(RuntimeError), simd.use(0):
        raise RuntimeError("restored even on error")
    assert simd.active() is before


@pytest.mark.parametrize("bad,exc,match", [("sse", ValueError, "must be one of"),
                                           (7, ValueError, "must be one of"),
                                           (True, TypeError, "Simd value"),
                                           (1.0, TypeError, "Simd value")])
def test_use_refuses_unknown_paths(bad, exc, match):
    with pytest.raises(exc, match=match), simd.use(bad):
        pass


def test_use_refuses_paths_not_available():
    missing = [p for p in Simd if p not in simd.available()]
    if not missing:
        pytest.skip("every path is available here")
    with pytest.raises(ValueError, match="not available"), simd.use(missing[0]):
        pass


def test_kernels_refuse_a_path_the_cpu_lacks():
    x = np.zeros(4, np.float32)
    out = np.empty(4, np.uint8)
    with pytest.raises(ValueError, match="simd"):
        _quantize.quantize_per_tensor(x, out, 1.0, 0, 0, 255, True, 9, 1)
    missing = [p for p in Simd if p not in simd.cpu_paths()]
    if missing:
        with pytest.raises(ValueError, match="lacks"):
            _quantize.quantize_per_tensor(x, out, 1.0, 0, 0, 255, True, int(missing[0]), 1)


def test_every_path_gives_the_same_bits(rng):
    x = (rng.standard_normal(70_001) * 3).astype(np.float32)
    outs = []
    for p in simd.available():
        with simd.use(p):
            q = ql.quantize_per_tensor(x, 0.02, 3, ql.qint8)
            outs.append((q.int_repr(), q.dequantize(),
                         ql.fake_quantize_per_tensor_affine(x, 0.02, 3, -128, 127).numpy()))
    for o in outs[1:]:
        for a, b in zip(o, outs[0], strict=True):
            np.testing.assert_array_equal(a, b)


def test_threads_resolve():
    assert threads.resolve() == threads.get_num_threads() == ql.get_num_threads()
    assert threads.resolve(1) == 1
    for bad, exc in [(0, ValueError), (threads.MAX_NUM_THREADS + 1, ValueError),
                     (1.5, TypeError), (True, TypeError)]:
        with pytest.raises(exc, match="num_threads"):
            threads.resolve(bad)


def test_show_config_names_the_paths(capsys):
    text = ql.show_config()
    assert capsys.readouterr().out.strip() == text
    assert f"simd          {simd.active().name.lower()}" in text
    assert "QLEARN_SIMD" in text
