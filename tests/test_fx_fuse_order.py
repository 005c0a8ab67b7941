"""Graph-mode fusion picks the same runs as torch 2.13's ``fuse_fx``: it walks the graph
from the last node back and tries each node as the last layer of a pattern (longest
first), inner nodes must have one user, and only ``F.relu`` / ``nn.ReLU`` count as a
ReLU (``x.relu()`` and ``torch.relu`` are left alone)."""
import pytest

import qlearn.nn as nn
import qlearn.nn.functional as F
from qlearn.quantization.quantize_fx import fuse_fx

KINDS = ["method", "F", "F_inplace_kw", "F_inplace_pos", "bn_two_users", "conv_two_users",
         "convt_bn_relu", "convt_bn", "conv_bn_relu", "bn_relu_bn_relu", "linear_relu_twice"]


def _model(N, F_, kind, torch_relu=None):
    class M(N.Module):
        def __init__(self):
            super().__init__()
            self.c = N.Conv2d(2, 2, 1)
            self.t = N.ConvTranspose2d(2, 2, 3, stride=2)
            self.bn = N.BatchNorm2d(2)
            self.bn2 = N.BatchNorm2d(2)
            self.r = N.ReLU()
            self.r2 = N.ReLU()
            self.fc = N.Linear(2, 2)

        def forward(self, x):
            if kind == "linear_relu_twice":
                return F_.relu(F_.relu(self.fc(x)))
            if kind.startswith("convt"):
                y = self.bn(self.t(x))
                return self.r(y) if kind == "convt_bn_relu" else y
            y = self.c(x)
            if kind == "method":
                return y.relu()
            if kind == "F":
                return F_.relu(y)
            if kind == "F_inplace_kw":
                return F_.relu(y, inplace=True)
            if kind == "F_inplace_pos":
                return F_.relu(y, True)
            if kind == "bn_two_users":
                z = self.bn(y)
                return F_.relu(z) + z
            if kind == "conv_two_users":
                return F_.relu(self.bn(y)) + y
            if kind == "conv_bn_relu":
                return self.r(self.bn(y))
            return self.r2(self.bn2(self.r(self.bn(y))))
    return M()


def _summary(gm):
    mods = dict(gm.named_modules())
    out = []
    for n in gm.graph.nodes:
        if n.op == "call_module":
            out.append(f"{n.target}:{type(mods[n.target]).__name__}")
        elif n.op in ("call_function", "call_method"):
            out.append(getattr(n.target, "__name__", str(n.target)))
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_fuse_fx_picks_torchs_runs(torch_mod, kind):
    torch = torch_mod
    from torch.ao.quantization.quantize_fx import fuse_fx as t_fuse_fx
    theirs = t_fuse_fx(_model(torch.nn, torch.nn.functional, kind).eval())
    ours = fuse_fx(_model(nn, F, kind).eval())
    assert _summary(ours) == _summary(theirs)
