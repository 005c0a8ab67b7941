"""Reference quantized modules (nnqr.Linear / Conv2d), the reference mapping and
convert_to_reference_fx, against torch 2.13."""
import warnings

import numpy as np
import pytest

import qlearn as ql
import qlearn.nn.quantized.reference as nnqr
import qlearn.quantization as tq
from qlearn import nn
from qlearn.quantization import quantize_fx


def _qparams(torch, per_channel, n):
    if per_channel:
        scale = np.linspace(0.01, 0.03, n).astype(np.float32)
        zp = np.zeros(n, np.int64)
        return ({"qscheme": torch.per_channel_affine, "dtype": torch.qint8,
                 "scale": torch.from_numpy(scale), "zero_point": torch.from_numpy(zp),
                 "axis": 0},
                {"qscheme": ql.per_channel_affine, "dtype": ql.qint8, "scale": scale,
                 "zero_point": zp, "axis": 0})
    return ({"qscheme": torch.per_tensor_affine, "dtype": torch.qint8, "scale": 0.0173,
             "zero_point": 3},
            {"qscheme": ql.per_tensor_affine, "dtype": ql.qint8, "scale": 0.0173,
             "zero_point": 3})


@pytest.mark.parametrize("per_channel", [False, True])
def test_reference_linear_like_torch(per_channel, torch_mod):
    rng = np.random.default_rng(1)
    tl = torch_mod.nn.Linear(6, 5)
    ql_ = nn.Linear(6, 5)
    for p in ("weight", "bias"):
        getattr(ql_, p).data[...] = getattr(tl, p).detach().numpy()
    tqp, qqp = _qparams(torch_mod, per_channel, 5)
    tr = torch_mod.ao.nn.quantized.reference.Linear.from_float(tl, tqp)
    qr = nnqr.Linear.from_float(ql_, qqp)
    assert repr(qr) == repr(tr)
    np.testing.assert_array_equal(qr.get_weight(), tr.get_weight().detach().numpy())
    np.testing.assert_array_equal(qr.get_quantized_weight().int_repr(),
                                  tr.get_quantized_weight().int_repr().numpy())
    x = rng.standard_normal((3, 6)).astype(np.float32)
    np.testing.assert_allclose(qr(x).numpy(), tr(torch_mod.from_numpy(x)).detach().numpy(),
                               rtol=1e-6, atol=1e-6)
    assert set(qr.state_dict()) == set(tr.state_dict())


@pytest.mark.parametrize("per_channel", [False, True])
def test_reference_conv2d_like_torch(per_channel, torch_mod):
    rng = np.random.default_rng(2)
    tc = torch_mod.nn.Conv2d(3, 4, 3, stride=2, padding=1)
    qc = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    for p in ("weight", "bias"):
        getattr(qc, p).data[...] = getattr(tc, p).detach().numpy()
    tqp, qqp = _qparams(torch_mod, per_channel, 4)
    tr = torch_mod.ao.nn.quantized.reference.Conv2d.from_float(tc, tqp)
    qr = nnqr.Conv2d.from_float(qc, qqp)
    assert repr(qr) == repr(tr)
    np.testing.assert_array_equal(qr.get_weight(), tr.get_weight().detach().numpy())
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    np.testing.assert_allclose(qr(x).numpy(), tr(torch_mod.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-5)


def test_reference_mapping_like_torch(torch_mod):
    theirs = {k.__name__: v.__name__ for k, v in
              torch_mod.ao.quantization.get_default_static_quant_reference_module_mappings()
              .items()}
    ours = tq.get_default_static_quant_reference_module_mappings()
    for k, v in ours.items():
        assert theirs[k.__name__] == v.__name__
    assert ours[nn.Linear] is nnqr.Linear and ours[nn.Conv2d] is nnqr.Conv2d
    assert tq.get_static_quant_module_class(nn.Linear, is_reference=True) is nnqr.Linear


class _Net:
    @staticmethod
    def build(lib):
        class Net(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = lib.nn.Conv2d(2, 4, 3, padding=1)
                self.relu = lib.nn.ReLU()
                self.pool = lib.nn.MaxPool2d(2)
                self.fc = lib.nn.Linear(4 * 3 * 3, 5)

            def forward(self, x):
                y = self.pool(self.relu(self.conv(x)))
                y = y + y
                return self.fc(y.flatten(1))
        return Net().eval()


def test_convert_to_reference_fx_like_torch(torch_mod):
    rng = np.random.default_rng(3)
    tm = _Net.build(torch_mod)
    qm = _Net.build(ql)
    for name in ("conv", "fc"):
        for p in ("weight", "bias"):
            getattr(getattr(qm, name), p).data[...] = \
                getattr(getattr(tm, name), p).detach().numpy()
    x = rng.standard_normal((4, 2, 6, 6)).astype(np.float32)
    from torch.ao.quantization import quantize_fx as tfx
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tp = tfx.prepare_fx(tm, {"": torch_mod.ao.quantization.get_default_qconfig("x86")},
                            (torch_mod.from_numpy(x),))
        tp(torch_mod.from_numpy(x))
        tref = tfx.convert_to_reference_fx(tp)
        tout = tref(torch_mod.from_numpy(x)).detach().numpy()
    p = quantize_fx.prepare_fx(qm, {"": tq.get_default_qconfig("x86")})
    p(x)
    ref = quantize_fx.convert_to_reference_fx(p)
    assert p.activation_post_process_0 is not None      # the prepared model is unchanged
    names = {n: type(m).__name__ for n, m in ref.named_children()}
    tnames = {n: type(m).__name__ for n, m in tref.named_children()}
    assert names["conv"] == tnames["conv"] == "ConvReLU2d"
    assert type(ref.conv[0]) is nnqr.Conv2d
    assert repr(ref.fc) == repr(tref.fc)
    ours = np.asarray(ref(x).numpy())
    assert ours.shape == tout.shape
    # the same quantize-dequantize points: equal up to float rounding (a rare step)
    close = np.isclose(ours, tout, rtol=1e-5, atol=1e-5)
    assert close.mean() >= 0.97
    # and the reference model agrees with the int8 model to within a step or so
    q = quantize_fx.convert_fx(p)
    assert np.abs(np.asarray(q(x)) - ours).max() <= 2.01 * q.fc.scale


def test_reference_errors():
    m = nn.Sequential(nn.Linear(3, 3)).eval()
    p = quantize_fx.prepare_fx(m, {"": tq.default_dynamic_qconfig})
    p(np.ones((1, 3), np.float32))
    with pytest.raises(ValueError, match="dynamic quantization"):
        quantize_fx.convert_to_reference_fx(p)
    with pytest.raises(TypeError, match="returned by prepare_fx"):
        quantize_fx.convert_to_reference_fx(m)
    with pytest.raises(ValueError, match="`weight_qparams\\['qscheme'\\]` must be one of"):
        nnqr.Linear(2, 2, weight_qparams={"qscheme": "bogus"})
    with pytest.raises(ValueError, match="must give `axis`"):
        nnqr.Linear(2, 2, weight_qparams={"qscheme": ql.per_channel_affine,
                                          "dtype": ql.qint8, "scale": [1.0, 1.0],
                                          "zero_point": [0, 0]})


def test_reference_state_dict_saves_and_loads(tmp_path):
    w = {"qscheme": ql.per_channel_symmetric, "dtype": ql.qint8,
         "scale": np.float32([0.1, 0.2]), "zero_point": np.zeros(2, np.int64), "axis": 0}
    r = nnqr.Linear(3, 2, weight_qparams=w)
    r.weight.data[...] = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    ql.save(r.state_dict(), tmp_path / "ref.ql")
    back = nnqr.Linear(3, 2)
    back.load_state_dict(ql.load(tmp_path / "ref.ql"))
    assert back.weight_qscheme is ql.per_channel_affine and back.weight_dtype is ql.qint8
    np.testing.assert_array_equal(back.get_weight(), r.get_weight())
    with pytest.raises(RuntimeError, match="unknown name 'bogus'"):
        nnqr.Linear(3, 2).load_state_dict({**r.state_dict(), "weight_dtype": "bogus"})
