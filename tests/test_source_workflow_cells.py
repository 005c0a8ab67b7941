"""The dynamic, static (PTQ) and QAT cells of "Practical Quantization in PyTorch", run on
qlearn with only the names changed, and compared with the same cells run on torch 2.13
with the same weights and inputs.

Each cell is kept as the source writes it (``TORCH_CELLS``); :func:`to_qlearn` makes the
qlearn version by renaming (``torch.quantization`` / ``torch.ao.quantization`` ->
``ql.quantization``, ``from torch import nn`` -> ``from qlearn import nn``, ``torch.`` ->
``ql.``).  The one change that is not a rename: the dynamic cell's
``nn.Conv2d(2, 64, (8,))`` (a one-element kernel size, which torch accepts only because
the layer is never run) is written ``nn.Conv2d(2, 64, 8)``.

To feed both libraries the same data, the test records what ``torch.rand`` /
``torch.rand_like`` return in the torch run and replays it from ``ql.rand`` /
``ql.rand_like`` in the qlearn run; after the cell that builds the model, the torch
model's weights are copied into the qlearn one.
"""
import re

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import qlearn as ql

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::UserWarning", "ignore::FutureWarning")

# ---- the cells, as the source writes them -------------------------------------------------
DYNAMIC = [
    """
import torch
from torch import nn

# a small model
def create_model():
  m = nn.Sequential(
  nn.Conv2d(2, 64, (8,)),
  nn.ReLU(),
  nn.Linear(16,10),
  nn.LSTM(10, 10))

  m.eval()
  return m
m = create_model()
""",
    """
from torch.ao.quantization.quantize import quantize_dynamic

model_quantized = quantize_dynamic(
    model=m, qconfig_spec={nn.LSTM, nn.Linear}, dtype=torch.qint8, inplace=False
)
""",
]

STATIC = [
    """
from torch.quantization import quantize_fx
import torch
from torch import nn

backend = "fbgemm"  # running on an x86 CPU; use "qnnpack" on ARM

m = nn.Sequential(
    nn.Conv2d(2, 64, 3),
    nn.ReLU(),
    nn.Conv2d(64, 128, 3),
    nn.ReLU()
)
""",
    """
# fuse first Conv-ReLU pair
torch.quantization.fuse_modules(m, ['0', '1'], inplace=True)
# fuse second Conv-ReLU pair
torch.quantization.fuse_modules(m, ['2', '3'], inplace=True)
""",
    """
m = nn.Sequential(torch.quantization.QuantStub(),
                  *m,
                  torch.quantization.DeQuantStub())
""",
    """
m.qconfig = torch.quantization.get_default_qconfig(backend)
torch.quantization.prepare(m, inplace=True)
""",
    """
with torch.no_grad():
    for _ in range(10):
        x = torch.rand(1, 2, 28, 28)
        m(x)
""",
    """
torch.quantization.convert(m, inplace=True)
""",
    """
# 1 byte instead of FP32's 4
print(m[1].weight().element_size())
""",
]

QAT = [
    """
import torch
from torch import nn

backend = "fbgemm"  # running on an x86 CPU; use "qnnpack" on ARM

m = nn.Sequential(
    nn.Conv2d(2, 64, 8),
    nn.ReLU(),
    nn.Conv2d(64, 128, 8),
    nn.ReLU()
)
""",
    """
torch.quantization.fuse_modules(m, ['0','1'], inplace=True) # fuse the first Conv-ReLU pair
torch.quantization.fuse_modules(m, ['2','3'], inplace=True) # fuse the second Conv-ReLU pair
""",
    """
m = nn.Sequential(torch.quantization.QuantStub(),
                  *m,
                  torch.quantization.DeQuantStub())
""",
    """
m.train()
m.qconfig = torch.quantization.get_default_qconfig(backend)
torch.quantization.prepare_qat(m, inplace=True)
""",
    """
n_epochs = 10
opt = torch.optim.SGD(m.parameters(), lr=0.1)
def loss_fn(out, tgt): return torch.pow(tgt-out, 2).mean()


for epoch in range(n_epochs):
  x = torch.rand(10, 2, 24, 24)
  out = m(x)
  loss = loss_fn(out, torch.rand_like(out))
  opt.zero_grad()
  loss.backward()
  opt.step()
""",
    """
m.eval()
torch.quantization.convert(m, inplace=True)
""",
]

# the only change that is not a rename (see the module docstring)
NOT_A_RENAME = {"nn.Conv2d(2, 64, (8,))": "nn.Conv2d(2, 64, 8)"}


def to_qlearn(code):
    """The cell with torch's names changed to qlearn's."""
    for old, new in NOT_A_RENAME.items():
        code = code.replace(old, new)
    code = re.sub(r"\bfrom torch\.(ao\.)?quantization", "from qlearn.quantization", code)
    code = re.sub(r"\btorch\.(ao\.)?quantization\b", "ql.quantization", code)
    code = code.replace("from torch import nn", "from qlearn import nn")
    code = code.replace("import torch\n", "import qlearn as ql\n")
    return re.sub(r"\btorch\.", "ql.", code)


def test_the_translation_is_only_renames():
    for cell in DYNAMIC + STATIC + QAT:
        q = to_qlearn(cell)
        assert "torch" not in q
        back = q.replace("qlearn.quantization", "torch.quantization")
        back = back.replace("ql.quantization", "torch.quantization")
        back = back.replace("from qlearn import nn", "from torch import nn")
        back = back.replace("import qlearn as ql\n", "import torch\n")
        back = re.sub(r"\bql\.", "torch.", back)
        orig = re.sub(r"torch\.ao\.quantization", "torch.quantization", cell)
        for old, new in NOT_A_RENAME.items():
            orig = orig.replace(old, new)
        assert back == orig


# ---- running a notebook twice, in step -------------------------------------------------
def tree(model):
    """(qualified name, class name) of each module; torch's packed weights are child
    modules (``_packed_params``, ``_all_weight_values``), qlearn's are attributes."""
    return [(name, type(m).__name__) for name, m in model.named_modules()
            if "_packed_params" not in name and "_all_weight_values" not in name]


class Replay:
    """Records what torch's random factories return; qlearn's replay it."""

    def __init__(self, torch):
        self.torch, self.arrays = torch, []
        self._rand, self._rand_like = torch.rand, torch.rand_like

    def torch_rand(self, *size, **kw):
        t = self._rand(*size, **kw)
        self.arrays.append(t.numpy().copy())
        return t

    def torch_rand_like(self, x, **kw):
        t = self._rand_like(x, **kw)
        self.arrays.append(t.numpy().copy())
        return t

    def ql_rand(self, *size, **kw):
        a = self.arrays.pop(0)
        assert a.shape == tuple(np.atleast_1d(size[0] if len(size) == 1 else size))
        return ql.tensor(a)

    def ql_rand_like(self, x, **kw):
        return ql.tensor(self.arrays.pop(0))


def run_both(torch, monkeypatch, cells, capsys=None):
    """Run each cell on torch then on qlearn; returns both namespaces and the module
    trees of ``m`` after every cell."""
    torch.manual_seed(0)
    torch.backends.quantized.engine = "x86"
    replay = Replay(torch)
    monkeypatch.setattr(torch, "rand", replay.torch_rand)
    monkeypatch.setattr(torch, "rand_like", replay.torch_rand_like)
    monkeypatch.setattr(ql, "rand", replay.ql_rand)
    monkeypatch.setattr(ql, "rand_like", replay.ql_rand_like)
    tns, qns, trees = {}, {}, []
    for i, cell in enumerate(cells):
        exec(compile(cell, f"<torch cell {i}>", "exec"), tns)
        exec(compile(to_qlearn(cell), f"<qlearn cell {i}>", "exec"), qns)
        if i == 0:          # the model is built: give qlearn torch's weights
            qsd = qns["m"].state_dict()
            # (the dynamic cell's conv has torch's (64, 2, 8) weight, qlearn's is
            # (64, 2, 8, 8): it is never run nor quantized, so it keeps its own)
            qns["m"].load_state_dict({k: v.detach().numpy()
                                      for k, v in tns["m"].state_dict().items()
                                      if tuple(v.shape) == qsd[k].shape}, strict=False)
        trees.append((tree(tns["m"]), tree(qns["m"])))
    assert not replay.arrays
    return tns, qns, trees


def test_dynamic_cell(torch_mod, monkeypatch):
    tns, qns, trees = run_both(torch_mod, monkeypatch, DYNAMIC)
    tq_, qq = tns["model_quantized"], qns["model_quantized"]
    assert tree(qq) == tree(tq_)
    assert [type(c).__name__ for c in qq] == ["Conv2d", "ReLU", "Linear", "LSTM"]
    assert type(qq[2]).__module__.startswith("qlearn.nn.quantized.dynamic")
    assert type(qns["m"][2]).__module__ == "qlearn.nn.modules.linear"   # inplace=False
    x = np.random.default_rng(0).normal(size=(5, 3, 16)).astype(np.float32)
    ty = tq_[3](tq_[2](torch_mod.from_numpy(x)))[0].detach().numpy()
    qy = qq[3](qq[2](x))[0]
    np.testing.assert_allclose(qy, ty, atol=2e-6)


def test_static_ptq_cell(torch_mod, monkeypatch, capsys):
    tns, qns, trees = run_both(torch_mod, monkeypatch, STATIC)
    for t, q in trees:
        assert q == t
    out = capsys.readouterr().out.split()
    assert out == ["1", "1"]          # torch's print, then qlearn's: 1 byte per weight
    tm, qm = tns["m"], qns["m"]
    assert [type(c).__name__ for c in qm] == ["Quantize", "ConvReLU2d", "Identity",
                                              "ConvReLU2d", "Identity", "DeQuantize"]
    for i in (0, 1, 3):
        assert qm[i].scale == pytest.approx(tm[i].scale, rel=1e-6)
        assert qm[i].zero_point == tm[i].zero_point
    for i in (1, 3):
        assert_array_equal(qm[i].weight().int_repr(), tm[i].weight().int_repr().numpy())
    x = np.random.default_rng(1).random((2, 2, 28, 28), dtype=np.float32)
    ti = tm[:-1](torch_mod.from_numpy(x)).int_repr().numpy().astype(int)
    qi = qm[:-1](x).int_repr().astype(int)
    # the same integers but where the requantization of one int32 sum sits at a
    # rounding tie that FBGEMM's float32 arithmetic breaks the other way (1 of the
    # 147456 outputs here)
    assert np.abs(qi - ti).max() <= 1 and (qi != ti).sum() <= 3
    assert_array_equal(qm[:2](x).int_repr(), tm[:2](torch_mod.from_numpy(x)).int_repr())


def test_qat_cell(torch_mod, monkeypatch):
    tns, qns, trees = run_both(torch_mod, monkeypatch, QAT)
    for t, q in trees:
        assert q == t
    tm, qm = tns["m"], qns["m"]
    assert [type(c).__name__ for c in qm] == ["Quantize", "ConvReLU2d", "Identity",
                                              "ConvReLU2d", "Identity", "DeQuantize"]
    # ten float32 SGD steps at lr 0.1: the weights agree to float32 rounding
    for i in (1, 3):
        assert qm[i].scale == pytest.approx(tm[i].scale, rel=1e-4)
        assert qm[i].zero_point == tm[i].zero_point
        diff = qm[i].weight().int_repr().astype(int) - tm[i].weight().int_repr().numpy()
        assert np.abs(diff).max() <= 1 and (diff != 0).mean() < 1e-3
    x = np.random.default_rng(2).random((2, 2, 24, 24), dtype=np.float32)
    ti = tm[:-1](torch_mod.from_numpy(x)).int_repr().numpy().astype(int)
    qi = qm[:-1](x).int_repr().astype(int)
    assert np.abs(qi - ti).max() <= 1 and (qi != ti).mean() < 0.01
