"""``Optimizer``: parameter groups, per-parameter state, ``zero_grad`` and ``step``."""
import numpy as np

from ..autograd import Tensor

__all__ = ["Optimizer"]


class Optimizer:
    """Base class (``torch.optim.Optimizer``).

    ``params`` is an iterable of Parameters or of dicts ``{"params": [...], "lr": ...}``
    (parameter groups with their own hyper-parameters; missing ones take ``defaults``).
    Subclasses implement :meth:`step`, updating each ``p.data`` in place from ``p.grad``.

    >>> import numpy as np
    >>> from qlearn import nn, optim
    >>> m = nn.Linear(2, 1)
    >>> opt = optim.SGD([{"params": [m.weight]}, {"params": [m.bias], "lr": 0.0}], lr=0.1)
    >>> [g["lr"] for g in opt.param_groups]
    [0.1, 0.0]
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}            # id(param) -> dict of arrays (momentum buffers, ...)
        self.param_groups = []
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group):
        """Add a dict with ``"params"`` and optional hyper-parameter overrides."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError("a parameter group must be a dict with a 'params' entry")
        group = dict(group)
        ps = group["params"]
        group["params"] = [ps] if isinstance(ps, Tensor) else list(ps)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize qlearn Tensors, got "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's gradient (to None, or to zeros)."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.data[...] = 0

    def step(self, closure=None):
        raise NotImplementedError

    def _state(self, p):
        return self.state.setdefault(id(p), {})

    def state_dict(self):
        """``{"state": {index: {...}}, "param_groups": [...]}`` with parameters replaced by
        their index, as in PyTorch (saveable with :func:`qlearn.save`)."""
        index, groups, k = {}, [], 0
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), k)
                ids.append(index[id(p)])
                k += 1
            groups.append({**{n: v for n, v in g.items() if n != "params"}, "params": ids})
        state = {index[pid]: {n: (v.copy() if isinstance(v, np.ndarray) else v)
                              for n, v in s.items()}
                 for pid, s in self.state.items() if pid in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore what :meth:`state_dict` returned (for the same parameters)."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError("loaded state dict has a different number of parameter groups "
                             "or parameters")
        params = [p for g in self.param_groups for p in g["params"]]
        self.state = {}
        for k, s in state_dict["state"].items():
            p = params[int(k)]
            self.state[id(p)] = {n: (np.array(v, copy=True) if isinstance(v, np.ndarray)
                                     else v) for n, v in s.items()}
        for g, saved in zip(self.param_groups, groups):
            g.update({n: v for n, v in saved.items() if n != "params"})

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params"]
        return "\n".join(lines) + "\n)"
