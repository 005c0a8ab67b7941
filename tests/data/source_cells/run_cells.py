"""Run the code cells of one source document as a notebook would, printing a JSON
record of what each cell printed.

``python run_cells.py torch|qlearn document.json results.json``

The cells of a document share one namespace and run in order; a cell whose last
statement is an expression also shows its value, as a notebook shows it (a small
version of IPython's display: sequences that do not fit on a line break after each
element).  A cell that raises records the exception and the next cell runs.

Random numbers: in ``torch`` mode the standard draws behind ``Normal(...).sample``,
``torch.rand`` and ``torch.randn`` are recorded (the small ones: their values); in
``qlearn`` mode qlearn's generator hands those same values back, in the same order, so
cells that print statistics of random data can be compared number for number.  Draws
not recorded come from a seeded generator.
"""
import ast
import contextlib
import io
import json
import os
import sys
import traceback
import warnings

RECORD_LIMIT = 256   # draws with more elements are not stored (no cell prints them)


def display(obj):
    """The text a notebook shows for the value of a cell's last expression."""
    if isinstance(obj, type):
        mod = obj.__module__
        return obj.__qualname__ if mod == "builtins" else f"{mod}.{obj.__qualname__}"
    if type(obj) in (list, tuple):
        opened, closed = ("[", "]") if type(obj) is list else ("(", ")")
        parts = [display(x) for x in obj]
        if type(obj) is tuple and len(parts) == 1:
            parts[0] += ","
        flat = opened + ", ".join(parts) + closed
        if "\n" not in flat and len(flat) <= 79:
            return flat
        # one element per line, each continuation line indented past the bracket
        return opened + ",\n ".join(p.replace("\n", "\n ") for p in parts) + closed
    return repr(obj)


def run_cell(source, namespace):
    """(stdout text, error text or None) of one cell."""
    out = io.StringIO()
    error = None
    with contextlib.redirect_stdout(out):
        try:
            tree = ast.parse(source)
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                last = ast.Expression(tree.body.pop().value)
            exec(compile(tree, "<cell>", "exec"), namespace)
            if last is not None:
                value = eval(compile(last, "<cell>", "eval"), namespace)
                if value is not None:
                    print(display(value))
        except BaseException as exc:   # a cell's error is a result, as in a notebook
            if isinstance(exc, KeyboardInterrupt):
                raise
            lines = traceback.format_exception_only(type(exc), exc)
            error = lines[-1].strip()
    return out.getvalue(), error


# -- torch: record the draws ---------------------------------------------------------------
def _install_torch_recorder(draws):
    import torch
    from torch.distributions import normal, pareto

    def keep(kind, sample, standard):
        entry = {"kind": kind, "shape": list(sample.shape)}
        if sample.numel() <= RECORD_LIMIT:
            entry["values"] = standard.double().reshape(-1).tolist()
        draws.append(entry)
        return sample

    normal_sample = normal.Normal.sample

    def normal_recorded(self, sample_shape=()):
        s = normal_sample(self, torch.Size(sample_shape))
        # the standard normal draw z with s = loc + scale z
        z = (s.double() - self.loc.double()) / self.scale.double()
        return keep("standard_normal", s, z)

    pareto_sample = pareto.Pareto.sample

    def pareto_recorded(self, sample_shape=()):
        s = pareto_sample(self, torch.Size(sample_shape))
        e = (s.double() / self.scale.double()).log() * self.alpha.double()
        return keep("standard_exponential", s, e)

    normal.Normal.sample = normal_recorded
    pareto.Pareto.sample = pareto_recorded
    rand, randn, rand_like = torch.rand, torch.randn, torch.rand_like
    torch.rand = lambda *a, **k: (lambda s: keep("random", s, s))(rand(*a, **k))
    torch.randn = lambda *a, **k: (lambda s: keep("standard_normal", s, s))(randn(*a, **k))
    torch.rand_like = lambda *a, **k: (lambda s: keep("random", s, s))(rand_like(*a, **k))
    torch.manual_seed(0)


# -- qlearn: replay them -------------------------------------------------------------------
class _Replay:
    """A NumPy generator whose standard draws come from a recorded list first."""

    def __init__(self, fallback):
        self.queue, self._fallback = [], fallback

    def _next(self, kind, shape, dtype):
        import numpy as np
        shape = (shape,) if isinstance(shape, int) else tuple(shape or ())
        if self.queue and self.queue[0]["kind"] == kind and \
                tuple(self.queue[0]["shape"]) == shape:
            entry = self.queue.pop(0)
            if "values" in entry:
                return np.asarray(entry["values"], np.float64).reshape(shape).astype(dtype)
        return getattr(self._fallback, kind)(shape, dtype=dtype)

    def standard_normal(self, size=None, dtype=None):
        import numpy as np
        return self._next("standard_normal", size, dtype or np.float64)

    def random(self, size=None, dtype=None):
        import numpy as np
        return self._next("random", size, dtype or np.float64)

    def standard_exponential(self, size=None, dtype=None):
        import numpy as np
        return self._next("standard_exponential", size, dtype or np.float64)

    def __getattr__(self, name):
        return getattr(self._fallback, name)


def _install_qlearn_replay():
    import numpy as np

    from qlearn.autograd import random
    random._generator = _Replay(np.random.default_rng(0))
    return random._generator


def main():
    mode, source, target = sys.argv[1:4]
    with open(source, encoding="utf-8") as f:
        doc = json.load(f)
    os.environ.setdefault("MPLBACKEND", "Agg")
    warnings.simplefilter("ignore")
    draws = []
    if mode == "torch":
        _install_torch_recorder(draws)
    else:
        replay = _install_qlearn_replay()
    namespace = {"__name__": "__main__"}
    results = []
    for cell in doc["cells"]:
        start = len(draws)
        if mode != "torch":   # the draws PyTorch made in this cell, in order
            replay.queue = list(cell.get("draws", []))
        text, error = run_cell(cell[mode], namespace)
        results.append({"output": text, "error": error, "draws": draws[start:]})
    with open(target, "w", encoding="utf-8") as f:
        json.dump({"results": results}, f)


if __name__ == "__main__":
    main()
