"""PrepareCustomConfig / ConvertCustomConfig / FuseCustomConfig in the FX workflow,
against torch 2.13's: printed form, dict form, preserved attributes, custom modules and
quantized graph inputs / outputs."""
import copy
import warnings

import numpy as np
import pytest

import qlearn as ql
import qlearn.nn.quantized as nnq
import qlearn.quantization as tq
from qlearn import nn
from qlearn.quantization import quantize_fx
from qlearn.quantization.quantize_fx import (
    ConvertCustomConfig,
    FuseCustomConfig,
    PrepareCustomConfig,
    attach_preserved_attrs_to_model,
)


def tnames(text):
    return text.replace("torch.nn.modules.linear.", "").replace("torch.nn.modules.activation.",
                                                              "")


def qnames(text):
    return text.replace("qlearn.nn.modules.linear.", "").replace(
        "qlearn.nn.modules.activation.", "")


def test_configs_print_and_dict_like_torch(torch_mod):
    from torch.ao.quantization.fx import custom_config as T
    tc = (T.PrepareCustomConfig().set_non_traceable_module_names(["a", "b"])
          .set_non_traceable_module_classes([torch_mod.nn.ReLU])
          .set_float_to_observed_mapping(torch_mod.nn.Linear, torch_mod.nn.ReLU)
          .set_input_quantized_indexes([0]).set_output_quantized_indexes([0, 1])
          .set_preserved_attributes(["x"]))
    qc = (PrepareCustomConfig().set_non_traceable_module_names(["a", "b"])
          .set_non_traceable_module_classes([nn.ReLU])
          .set_float_to_observed_mapping(nn.Linear, nn.ReLU)
          .set_input_quantized_indexes([0]).set_output_quantized_indexes([0, 1])
          .set_preserved_attributes(["x"]))
    assert qnames(repr(qc)) == tnames(repr(tc))
    assert qnames(repr(qc.to_dict())) == tnames(repr(tc.to_dict()))
    assert PrepareCustomConfig.from_dict(qc.to_dict()).to_dict() == qc.to_dict()
    tcc = T.ConvertCustomConfig().set_observed_to_quantized_mapping(
        torch_mod.nn.ReLU, torch_mod.nn.Linear).set_preserved_attributes(["y"])
    qcc = ConvertCustomConfig().set_observed_to_quantized_mapping(
        nn.ReLU, nn.Linear).set_preserved_attributes(["y"])
    assert qnames(repr(qcc)) == tnames(repr(tcc))
    assert qnames(repr(qcc.to_dict())) == tnames(repr(tcc.to_dict()))
    assert ConvertCustomConfig.from_dict(qcc.to_dict()).to_dict() == qcc.to_dict()
    assert repr(FuseCustomConfig()) == repr(T.FuseCustomConfig()) == "FuseCustomConfig({})"
    f = FuseCustomConfig.from_dict({"preserved_attributes": ["z"]})
    assert repr(f) == repr(T.FuseCustomConfig.from_dict({"preserved_attributes": ["z"]}))
    assert f.to_dict() == {"preserved_attributes": ["z"]}


def test_standalone_entries_round_trip():
    qm = tq.QConfigMapping().set_global(tq.default_qconfig)
    c = PrepareCustomConfig().set_standalone_module_name("sub", qm, (1,), None, None)
    d = c.to_dict()
    assert d["standalone_module_name"][0][0] == "sub"
    back = PrepareCustomConfig.from_dict(d)
    assert back.standalone_module_names["sub"].example_inputs == (1,)
    with pytest.raises(ValueError, match="does not support standalone modules"):
        quantize_fx.prepare_fx(nn.Sequential(nn.Linear(2, 2)).eval(), qm,
                               prepare_custom_config=c)


def test_config_errors():
    with pytest.raises(ValueError, match="`quant_type` must be QuantType.STATIC"):
        PrepareCustomConfig().set_float_to_observed_mapping(nn.Linear, nn.ReLU,
                                                            tq.QuantType.DYNAMIC)
    with pytest.raises(TypeError, match="`float_class` must be a class, got 3"):
        PrepareCustomConfig().set_float_to_observed_mapping(3, nn.ReLU)
    with pytest.raises(ValueError, match="`indexes` must be a list of non-negative int"):
        PrepareCustomConfig().set_input_quantized_indexes([-1])
    with pytest.raises(TypeError, match="`module_names` must be a list of str"):
        PrepareCustomConfig().set_non_traceable_module_names([nn.Linear])
    with pytest.raises(ValueError, match=r"unsupported keys \['bogus'\]"):
        ConvertCustomConfig.from_dict({"bogus": 1})
    with pytest.raises(TypeError, match="`prepare_custom_config` must be a "
                                        "PrepareCustomConfig or a dict, got int"):
        quantize_fx.prepare_fx(nn.Sequential(nn.Linear(2, 2)).eval(),
                               {"": tq.default_qconfig}, prepare_custom_config=3)
    with pytest.raises(TypeError, match="`preserved_attrs` must be a dict"):
        attach_preserved_attrs_to_model(nn.Linear(2, 2), ["a"])


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.relu = nn.ReLU()
        self.version = "v2"
        self.threshold = 0.5

    def forward(self, x):
        return self.relu(self.fc(x))


def test_preserved_attributes_through_fuse_prepare_convert():
    m = _Net().eval()
    p = quantize_fx.prepare_fx(m, {"": tq.get_default_qconfig("x86")},
                               prepare_custom_config=PrepareCustomConfig()
                               .set_preserved_attributes(["version"]))
    assert p.version == "v2" and not hasattr(p, "threshold")
    p(np.ones((2, 4), np.float32))
    q = quantize_fx.convert_fx(p, convert_custom_config={"preserved_attributes":
                                                         ["threshold"]})
    # convert keeps what its own config lists, from the prepared model: not "version"
    # (not listed again), not "threshold" (the prepared model has none), as PyTorch
    assert not hasattr(q, "version") and not hasattr(q, "threshold")
    assert q.meta["_user_preserved_attributes"] == {}
    q2 = quantize_fx.convert_fx(p, convert_custom_config=ConvertCustomConfig()
                                .set_preserved_attributes(["version"]))
    assert q2.version == "v2"
    f = quantize_fx.fuse_fx(m, FuseCustomConfig().set_preserved_attributes(["threshold"]))
    assert f.threshold == 0.5
    assert copy.deepcopy(f).threshold == 0.5


def test_preserved_attributes_like_torch(torch_mod):
    class TNet(torch_mod.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch_mod.nn.Linear(4, 3)
            self.version = "v2"
            self.threshold = 0.5

        def forward(self, x):
            return self.fc(x)

    from torch.ao.quantization import quantize_fx as tfx
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tp = tfx.prepare_fx(TNet().eval(), {"": torch_mod.ao.quantization.default_qconfig},
                            (torch_mod.ones(1, 4),),
                            prepare_custom_config={"preserved_attributes": ["version"]})
        tp(torch_mod.ones(1, 4))
        tq_ = tfx.convert_fx(tp, convert_custom_config={"preserved_attributes":
                                                        ["threshold"]})
    m = _Net().eval()
    p = quantize_fx.prepare_fx(m, {"": tq.default_qconfig},
                               prepare_custom_config={"preserved_attributes": ["version"]})
    p(np.ones((1, 4), np.float32))
    q = quantize_fx.convert_fx(p, convert_custom_config={"preserved_attributes": ["threshold"]})
    for name in ("version", "threshold"):
        assert hasattr(q, name) == hasattr(tq_, name), name
        assert hasattr(p, name) == hasattr(tp, name), name


# -- custom modules ------------------------------------------------------------------------
def _custom_classes(lib_nn, lib_nnq):
    class Custom(lib_nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = lib_nn.Linear(4, 3)

        def forward(self, x):
            return self.lin(x)

    class ObservedCustom(lib_nn.Module):
        def __init__(self, lin):
            super().__init__()
            self.lin = lin

        def forward(self, x):
            return self.lin(x)

        @classmethod
        def from_float(cls, mod):
            new = cls(mod.lin)
            new.qconfig = mod.qconfig
            return new

    class QuantizedCustom(lib_nn.Module):
        def __init__(self, qlin):
            super().__init__()
            self.qlin = qlin

        def forward(self, x):
            return self.qlin(x)

        @classmethod
        def from_observed(cls, mod):
            lin = mod.lin
            lin.qconfig = mod.qconfig
            lin.activation_post_process = mod.activation_post_process
            return cls(lib_nnq.Linear.from_float(lin))

    return Custom, ObservedCustom, QuantizedCustom


def test_custom_module_like_torch(torch_mod):
    rng = np.random.default_rng(7)
    w = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    x = rng.standard_normal((16, 4)).astype(np.float32)

    def build(lib_nn, lib_nnq):
        Custom, Obs, Q = _custom_classes(lib_nn, lib_nnq)

        class Net(lib_nn.Module):
            def __init__(self):
                super().__init__()
                self.custom = Custom()
                self.relu = lib_nn.ReLU()

            def forward(self, x):
                return self.relu(self.custom(x))
        net = Net().eval()
        return net, Custom, Obs, Q

    tnet, TC, TO, TQ = build(torch_mod.nn, torch_mod.ao.nn.quantized)
    with torch_mod.no_grad():
        tnet.custom.lin.weight.copy_(torch_mod.from_numpy(w))
        tnet.custom.lin.bias.copy_(torch_mod.from_numpy(b))
    qnet, QC, QO, QQ = build(nn, nnq)
    qnet.custom.lin.weight.data[...] = w
    qnet.custom.lin.bias.data[...] = b

    from torch.ao.quantization import quantize_fx as tfx
    from torch.ao.quantization.fx.custom_config import (
        ConvertCustomConfig as TConvert,
    )
    from torch.ao.quantization.fx.custom_config import (
        PrepareCustomConfig as TPrepare,
    )
    tqc = torch_mod.ao.quantization.get_default_qconfig("x86")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tp = tfx.prepare_fx(tnet, {"": tqc}, (torch_mod.from_numpy(x),),
                            prepare_custom_config=TPrepare().set_float_to_observed_mapping(
                                TC, TO))
        tp(torch_mod.from_numpy(x))
        tconv = tfx.convert_fx(tp, convert_custom_config=TConvert()
                               .set_observed_to_quantized_mapping(TO, TQ))
        tout = tconv(torch_mod.from_numpy(x)).numpy()
    p = quantize_fx.prepare_fx(qnet, {"": tq.get_default_qconfig("x86")},
                               prepare_custom_config=PrepareCustomConfig()
                               .set_float_to_observed_mapping(QC, QO))
    assert type(p.custom) is QO
    p(x)
    with pytest.raises(ValueError, match="has no quantized class"):
        quantize_fx.convert_fx(p)
    conv = quantize_fx.convert_fx(p, convert_custom_config={
        "observed_to_quantized_custom_module_class": {"static": {QO: QQ}}})
    assert type(conv.custom) is QQ and type(conv.custom.qlin) is nnq.Linear
    assert type(tconv.custom).__name__ == "QuantizedCustom"
    out = np.asarray(conv(x))
    np.testing.assert_allclose(out, tout, rtol=0, atol=1e-6)


# -- quantized inputs and outputs ----------------------------------------------------------
def test_quantized_input_and_output_indexes_like_torch(torch_mod):
    rng = np.random.default_rng(11)
    w = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    x = rng.standard_normal((16, 4)).astype(np.float32)
    tm = torch_mod.nn.Sequential(torch_mod.nn.Linear(4, 3)).eval()
    with torch_mod.no_grad():
        tm[0].weight.copy_(torch_mod.from_numpy(w))
        tm[0].bias.copy_(torch_mod.from_numpy(b))
    qm = nn.Sequential(nn.Linear(4, 3)).eval()
    qm[0].weight.data[...] = w
    qm[0].bias.data[...] = b
    cfg = {"input_quantized_idxs": [0], "output_quantized_idxs": [0]}
    from torch.ao.quantization import quantize_fx as tfx
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tp = tfx.prepare_fx(tm, {"": torch_mod.ao.quantization.get_default_qconfig("x86")},
                            (torch_mod.from_numpy(x),), prepare_custom_config=cfg)
        tp(torch_mod.from_numpy(x))
        tc = tfx.convert_fx(tp)
        tqx = torch_mod.quantize_per_tensor(torch_mod.from_numpy(x), 0.02, 120,
                                            torch_mod.quint8)
        tout = tc(tqx)
    p = quantize_fx.prepare_fx(qm, {"": tq.get_default_qconfig("x86")},
                               prepare_custom_config=PrepareCustomConfig.from_dict(cfg))
    p(x)
    c = quantize_fx.convert_fx(p)
    assert "quantize_per_tensor" not in c.code and "dequantize" not in c.code
    out = c(ql.quantize_per_tensor(x, 0.02, 120, ql.quint8))
    assert tout.is_quantized and isinstance(out, ql.QTensor)
    assert out.q_scale() == pytest.approx(tout.q_scale(), rel=1e-6)
    assert out.q_zero_point() == tout.q_zero_point()
    np.testing.assert_array_equal(out.int_repr(), tout.int_repr().numpy())


def test_non_traceable_modules_by_config_object():
    class Branchy(nn.Module):
        def forward(self, x):
            return x if float(np.asarray(getattr(x, "data", x)).sum()) > 0 else -x

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.branchy = Branchy()

        def forward(self, x):
            return self.branchy(self.fc(x))

    qconfig = {"": tq.get_default_qconfig("x86")}
    for conf in (PrepareCustomConfig().set_non_traceable_module_names(["branchy"]),
                 PrepareCustomConfig().set_non_traceable_module_classes([Branchy])):
        p = quantize_fx.prepare_fx(Net().eval(), qconfig, prepare_custom_config=conf)
        assert [n.target for n in p.graph.nodes if n.op == "call_module"
                and not n.target.startswith("activation_post_process")] == ["fc", "branchy"]
        p(np.ones((2, 3), np.float32))
        c = quantize_fx.convert_fx(p)
        assert "dequantize" in c.code and c(np.ones((2, 3), np.float32)).shape == (2, 3)
