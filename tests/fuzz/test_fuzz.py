"""The fuzz suite: every public entry point, random (valid and invalid) arguments.

Each group of targets runs in its own worker process (fuzz_worker.py) with a memory and
CPU-time limit, so that a crash or a runaway allocation is a reported failure naming
the case, not a dead test run.  Targets and their checks: fuzz_targets.py.

Environment: ``QLEARN_FUZZ_EXAMPLES`` (cases per target, default 150: under a minute in
all), ``QLEARN_FUZZ_SEED`` (default 0; CI is reproducible, set it to explore),
``QLEARN_FUZZ_MEM_MB`` (default 3072).
"""
import json
import os
import signal
import subprocess
import sys

import pytest

import qlearn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fuzz_targets import TARGETS  # noqa: E402

EXAMPLES = int(os.environ.get("QLEARN_FUZZ_EXAMPLES", "150"))
SEED = int(os.environ.get("QLEARN_FUZZ_SEED", "0"))
MEM_MB = int(os.environ.get("QLEARN_FUZZ_MEM_MB", "3072"))
TIMEOUT = max(300, 10 * EXAMPLES)

_names = list(TARGETS)
GROUPS = {
    "quantize": _names[:3],
    "qtensor": _names[3:6],
    "observers": [n for n in _names if "Observer" in n],
    "fake_quant": [n for n in _names if "ake" in n or "quantizers" in n],
    "int8": [n for n in _names if n.startswith(("qF", "nnq"))],
    "load": ["ql.load (mutated files)"],
    "api": ["QTensor methods (adversarial arguments)",
            "module state (pickle / deepcopy / load_state_dict)"],
}
assert sorted(sum(GROUPS.values(), [])) == sorted(_names), "every target in one group"


@pytest.mark.parametrize("group", list(GROUPS))
def test_fuzz(group, tmp_path, request):
    log, out = tmp_path / "cases.log", tmp_path / "result.json"
    env = dict(os.environ)
    # the worker imports the same qlearn as this process (a worktree, the ASan build)
    root = os.path.dirname(os.path.dirname(os.path.abspath(qlearn.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root, HERE, env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "2")
    cmd = [sys.executable, os.path.join(HERE, "fuzz_worker.py"),
           "--targets", ",".join(GROUPS[group]), "--examples", str(EXAMPLES),
           "--seed", str(SEED), "--log", str(log), "--out", str(out),
           "--mem-mb", str(MEM_MB), "--cpu-s", str(TIMEOUT)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT + 60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"fuzz worker {group} timed out; last case: {_last_case(log)}")
    results = json.loads(out.read_text()) if out.exists() else {}
    counts = request.config.__dict__.setdefault("_qlearn_fuzz_counts", {})
    for name, r in results.items():
        counts[name] = (r["cases"], r["seconds"])
    if proc.returncode != 0:
        how = (f"killed by {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
               else f"exit status {proc.returncode}")
        pytest.fail(f"fuzz worker {group} {how} on the case\n  {_last_case(log)}\n"
                    f"stderr:\n{proc.stderr[-3000:]}")
    failures = {n: r["failure"] for n, r in results.items() if r["failure"]}
    missing = set(GROUPS[group]) - set(results)
    assert not missing, f"targets not run: {missing}"
    if failures:
        pytest.fail("\n\n".join(f"== {n} ==\n{f}" for n, f in failures.items()))


def _last_case(log):
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no case logged)"
    return lines[-1] if lines else "(no case logged)"
