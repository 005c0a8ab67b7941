"""The torch.ao.quantization names added to close the API gaps: fixed-qparams and
embedding factories, the embedding mappings, the qconfig dicts, QuantType, the pattern
helpers and the observer state dict, each against torch 2.13."""
import warnings

import numpy as np
import pytest

import qlearn.quantization as tq
from qlearn import nn


def torch_repr(obj):
    return repr(obj).replace("torch.ao.quantization", "qlearn.quantization") \
        .replace("torch.", "qlearn.")


def short_name(cls):
    """``nnqat.EmbeddingBag`` for either library's class (the alias a reader writes)."""
    mod = cls.__module__
    for prefix, alias in (("nn.quantized.dynamic", "nnqd"), ("nn.quantized", "nnq"),
                          ("nn.intrinsic.quantized", "nniq"), ("nn.intrinsic.qat", "nniqat"),
                          ("nn.intrinsic", "nni"), ("nn.qat", "nnqat"),
                          ("quantization", "tq"), ("nn", "nn")):
        for root in ("torch.ao.", "torch.", "qlearn."):
            if mod.startswith(root + prefix):
                return f"{alias}.{cls.__name__}"
    return f"{mod}.{cls.__name__}"


def named(mapping):
    return {short_name(k): short_name(v) for k, v in mapping.items()}


@pytest.mark.parametrize("name", ["default_affine_fixed_qparams_observer",
                                  "default_symmetric_fixed_qparams_observer",
                                  "default_affine_fixed_qparams_fake_quant",
                                  "default_symmetric_fixed_qparams_fake_quant",
                                  "default_embedding_fake_quant"])
def test_factories_print_like_torch(name, torch_mod):
    assert repr(getattr(tq, name)) == torch_repr(getattr(torch_mod.ao.quantization, name))


@pytest.mark.parametrize("name", ["default_affine_fixed_qparams_fake_quant",
                                  "default_symmetric_fixed_qparams_fake_quant"])
def test_fixed_qparams_fake_quant_values(name, torch_mod):
    x = np.linspace(-1.5, 1.5, 41, dtype=np.float32)
    ours = getattr(tq, name)()(x).numpy()
    theirs = getattr(torch_mod.ao.quantization, name)()(torch_mod.from_numpy(x))
    np.testing.assert_array_equal(ours, theirs.detach().numpy())


def test_embedding_fake_quant_values(torch_mod):
    w = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    ours = tq.default_embedding_fake_quant()
    theirs = torch_mod.ao.quantization.default_embedding_fake_quant()
    np.testing.assert_allclose(ours(w).numpy(), theirs(torch_mod.from_numpy(w)).detach().numpy(),
                               rtol=0, atol=1e-6)
    s, z = ours.calculate_qparams()
    ts, tz = theirs.calculate_qparams()
    np.testing.assert_allclose(s, ts.numpy(), rtol=1e-6)
    np.testing.assert_allclose(z, tz.numpy(), rtol=1e-6, atol=1e-6)


def test_embedding_qat_mapping_like_torch(torch_mod):
    ours = named(tq.get_embedding_qat_module_mappings())
    theirs = named(torch_mod.ao.quantization.get_embedding_qat_module_mappings())
    # every entry qlearn has is torch's; torch's extra keys are layers qlearn lacks
    assert {k: v for k, v in theirs.items() if k in ours} == ours
    assert ours["nn.Embedding"] == "nnqat.Embedding"
    assert ours["nn.EmbeddingBag"] == "nnqat.EmbeddingBag"
    base = named(tq.get_default_qat_module_mappings())
    assert set(ours) - set(base) == {"nn.Embedding", "nn.EmbeddingBag"}


def test_embedding_static_mapping_like_torch(torch_mod):
    ours = named(tq.get_embedding_static_quant_module_mappings())
    theirs = named(torch_mod.ao.quantization.get_embedding_static_quant_module_mappings())
    assert ours["nnqat.Embedding"] == theirs["nnqat.Embedding"] == "nnq.Embedding"
    assert ours["nnqat.EmbeddingBag"] == theirs["nnqat.EmbeddingBag"] == "nnq.EmbeddingBag"
    base = named(tq.get_default_static_quant_module_mappings())
    assert {k: v for k, v in ours.items() if k in base} == base


def test_embedding_qat_then_convert():
    m = nn.Sequential(nn.Embedding(10, 4))
    m.qconfig = tq.QConfig(activation=tq.NoopObserver,
                           weight=tq.default_embedding_fake_quant)
    p = tq.prepare_qat(m, mapping=tq.get_embedding_qat_module_mappings())
    assert type(p[0]).__name__ == "Embedding" and "qat" in type(p[0]).__module__
    p(np.array([1, 2, 3]))
    q = tq.convert(p.eval(), mapping=tq.get_embedding_static_quant_module_mappings())
    assert short_name(type(q[0])) == "nnq.Embedding"
    assert q(np.array([1, 2])).shape == (2, 4)


@pytest.mark.parametrize("fn", ["get_default_qconfig_dict", "get_default_qat_qconfig_dict"])
@pytest.mark.parametrize("backend", ["x86", "qnnpack"])
def test_qconfig_dicts_like_torch(fn, backend, torch_mod):
    with pytest.warns(FutureWarning):
        ours = getattr(tq, fn)(backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = getattr(torch_mod.ao.quantization, fn)(backend)
    assert list(ours) == list(theirs)
    assert repr(ours[""]) == torch_repr(theirs[""])
    # the object types qlearn has: same qconfig as torch for the same name
    def key(t):
        return t if isinstance(t, str) else t.__name__
    theirs_ot = {key(t): torch_repr(q) for t, q in theirs["object_type"]}
    ours_ot = {key(t): repr(q) for t, q in ours["object_type"]}
    for name in ("reshape", "sigmoid", "tanh", "Sigmoid", "Tanh", "Softmax"):
        if name in ours_ot:
            assert ours_ot[name] == theirs_ot[name], name
    assert "sigmoid" in ours_ot and "tanh" in ours_ot
    for k in ("module_name_regex", "module_name", "module_name_object_type_order"):
        assert ours[k] == theirs[k] == []


def test_qconfig_dict_round_trips():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        d = tq.get_default_qconfig_dict()
    assert tq.QConfigMapping.from_dict(d).to_dict() == d


def test_default_custom_config_dict_keys(torch_mod):
    ours = tq.get_default_custom_config_dict()
    assert list(ours) == list(torch_mod.ao.quantization.get_default_custom_config_dict())
    assert all(v == {} for v in ours.values())
    ours["float_to_observed_custom_module_class"][int] = float
    assert tq.get_default_custom_config_dict()["float_to_observed_custom_module_class"] == {}


def test_quant_type_like_torch(torch_mod):
    theirs = torch_mod.ao.quantization.QuantType
    assert [(q.name, q.value) for q in tq.QuantType] == [(q.name, q.value) for q in theirs]
    from torch.ao.quantization.quant_type import _get_quant_type_to_str as t_str

    from qlearn.quantization.quant_type import _get_quant_type_to_str, _quant_type_from_str
    for q in tq.QuantType:
        assert _get_quant_type_to_str(q) == t_str(theirs(q.value))
        assert _quant_type_from_str(_get_quant_type_to_str(q)) is q
    with pytest.raises(ValueError, match="`quant_type` name must be one of"):
        _quant_type_from_str("int4")


def test_type_aliases():
    from typing import get_args
    assert set(get_args(tq.QConfigAny)) == {tq.QConfig, type(None)}
    assert set(get_args(tq.ObserverOrFakeQuantize)) == {tq.ObserverBase, tq.FakeQuantizeBase}
    from qlearn.quantization import utils
    assert utils.MatchAllNode is tq.MatchAllNode and utils.Pattern is tq.Pattern


def test_get_combined_dict(torch_mod):
    from torch.ao.quantization.utils import get_combined_dict as t_comb
    a, b = {1: "a", 2: "b"}, {2: "c", 3: "d"}
    assert tq.get_combined_dict(a, b) == t_comb(a, b)
    assert a == {1: "a", 2: "b"}
    with pytest.raises(TypeError, match="`additional_dict` must be a dict, got list"):
        tq.get_combined_dict(a, [])


def test_get_fuser_method_new_wildcards(torch_mod):
    from torch.ao.quantization.fuser_method_mappings import _get_valid_patterns

    from qlearn.quantization.fuser_method_mappings import _valid_patterns
    from qlearn.quantization.utils import MatchAllNode
    tm = torch_mod.ao.quantization.utils.MatchAllNode
    theirs = _get_valid_patterns(("add", ("relu", "conv")))
    ours = _valid_patterns(("add", ("relu", "conv")))
    swap = {tm: MatchAllNode}

    def conv(p):
        return tuple(conv(x) for x in p) if isinstance(p, tuple) else swap.get(p, p)
    assert ours == [conv(p) for p in theirs]
    table = {(nn.ReLU, (nn.BatchNorm2d, MatchAllNode)): "bn-relu after anything"}
    assert tq.get_fuser_method_new((nn.ReLU, (nn.BatchNorm2d, nn.Conv2d)), table) \
        == "bn-relu after anything"
    fuse = tq.get_fuser_method_new((nn.Linear, nn.ReLU), tq.get_default_fusion_patterns())
    assert type(fuse(False, nn.Linear(2, 2), nn.ReLU())).__name__ == "LinearReLU"
    with pytest.raises(ValueError, match=r"`op_pattern` \(Linear, Sigmoid\) has no fuser"):
        tq.get_fuser_method_new((nn.Linear, nn.Sigmoid), table)
    with pytest.raises(TypeError, match="`fuser_method_mapping` must be a dict"):
        tq.get_fuser_method_new((nn.Linear, nn.ReLU), [])


def _prepared_pair(torch):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((3, 4)).astype(np.float32)
    ours = tq.QuantWrapper(nn.Sequential(nn.Linear(4, 3), nn.ReLU())).eval()
    ours.module[0].weight.data[...] = w
    ours.module[0].bias.data[...] = 0.25
    ours.qconfig = tq.get_default_qconfig("x86")
    ours = tq.prepare(ours)
    tm = torch.ao.quantization.QuantWrapper(
        torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())).eval()
    tm.qconfig = torch.ao.quantization.get_default_qconfig("x86")
    tm = torch.ao.quantization.prepare(tm)
    return ours, tm


def test_observer_state_dict_keys_like_torch(torch_mod):
    ours, theirs = _prepared_pair(torch_mod)
    x = np.random.default_rng(4).standard_normal((8, 4)).astype(np.float32)
    ours(x)
    theirs(torch_mod.from_numpy(x))
    o = tq.get_observer_state_dict(ours)
    t = torch_mod.ao.quantization.get_observer_state_dict(theirs)
    # qlearn's quantized ReLU keeps its input's qparams: no observer after nn.ReLU
    assert [k for k in t if k in o] == list(o)
    assert all(k.startswith(("quant.", "module.0.")) for k in o)
    np.testing.assert_array_equal(o["quant.activation_post_process.min_val"],
                                  t["quant.activation_post_process.min_val"].numpy())


def test_load_observer_state_dict_restores_calibration(torch_mod):
    a, _ = _prepared_pair(torch_mod)
    b, _ = _prepared_pair(torch_mod)
    x = np.random.default_rng(5).standard_normal((16, 4)).astype(np.float32)
    a(x)
    sd = tq.get_observer_state_dict(a)
    tq.load_observer_state_dict(b, sd)
    qa, qb = tq.convert(a), tq.convert(b)
    np.testing.assert_array_equal(qa(x), qb(x))
    # also from torch's observer state dict, by the same keys
    _, t = _prepared_pair(torch_mod)
    t(torch_mod.from_numpy(x))
    c, _ = _prepared_pair(torch_mod)
    t_sd = {k: v.numpy() for k, v in
            torch_mod.ao.quantization.get_observer_state_dict(t).items() if k in sd}
    tq.load_observer_state_dict(c, t_sd)
    for k in ("quant.activation_post_process.max_val", "quant.activation_post_process.min_val"):
        np.testing.assert_array_equal(c.state_dict()[k], sd[k])


def test_load_observer_state_dict_errors():
    a = tq.prepare(_qw())
    with pytest.raises(RuntimeError, match="`obs_dict` has no entry for observer key"):
        tq.load_observer_state_dict(a, {})
    with pytest.raises(TypeError, match="`obs_dict` must be a dict, got list"):
        tq.load_observer_state_dict(a, [])
    with pytest.raises(TypeError, match="`mod` must be an nn.Module, got int"):
        tq.get_observer_state_dict(3)


def _qw():
    m = tq.QuantWrapper(nn.Linear(2, 2)).eval()
    m.qconfig = tq.default_qconfig
    return m


def test_numeric_suite_names_like_torch(torch_mod):
    import torch.ao.ns._numeric_suite as tns

    import qlearn.quantization.numeric_suite as ns
    assert ns.get_default_compare_output_module_list is tq.get_default_compare_output_module_list
    assert sorted(map(short_name, ns.NON_LEAF_MODULE_TO_ADD_OBSERVER_ALLOW_LIST)) == \
        sorted(map(short_name, tns.NON_LEAF_MODULE_TO_ADD_OBSERVER_ALLOW_LIST))
    ours = set(map(short_name, ns.get_default_compare_output_module_list()))
    theirs = set(map(short_name, tns.get_default_compare_output_module_list()))
    # every class of torch's list that qlearn has is in qlearn's list
    import qlearn.nn.intrinsic as nni
    import qlearn.nn.intrinsic.qat as nniqat
    import qlearn.nn.intrinsic.quantized as nniq
    import qlearn.nn.qat as nnqat
    import qlearn.nn.quantized as nnq
    import qlearn.nn.quantized.dynamic as nnqd
    pkgs = {"nn": nn, "nnq": nnq, "nnqd": nnqd, "nni": nni, "nniq": nniq, "nnqat": nnqat,
            "nniqat": nniqat, "tq": tq}
    have = {n for n in theirs if "." in n and n.split(".")[0] in pkgs
            and hasattr(pkgs[n.split(".")[0]], n.split(".")[1])}
    assert {"nnqd.LSTMCell", "nniq.LinearTanh", "nn.GRUCell"} <= have
    # nnq.ELU / nnq.Hardswish exist, but their float modules (and so their mapping
    # entries) come with the float activations, added elsewhere
    assert have - ours <= {"nnq.ELU", "nnq.Hardswish"}


# -- the mappings, key by key ------------------------------------------------------------------
# Entries torch's mappings have and qlearn's do not, each for a reason:
_TORCH_ONLY_KEYS = {
    # the out_proj of nn.MultiheadAttention, which qlearn does not have
    "nn.NonDynamicallyQuantizableLinear",
    # oneDNN's conv + add fusion (a two-input fused module), which qlearn does not have
    "nni.ConvAdd2d", "nni.ConvAddReLU2d",
}
# Entries qlearn's mappings have and torch's do not:
_QLEARN_ONLY_STATIC = {
    # torch's float ReLU / max pooling / adaptive pooling run on quantized tensors as they
    # are; qlearn's float modules take float arrays, so these map to their nnq twins
    "nn.ReLU", "nn.MaxPool2d", "nn.AdaptiveAvgPool2d", "nn.MaxPool1d", "nn.AdaptiveAvgPool1d",
    # nnqat.Conv1d / nniqat.ConvReLU1d exist for custom QAT mappings and graph mode
    # (torch's eager QAT mapping never produces them); qlearn's static mapping converts them
    "nnqat.Conv1d", "nniqat.ConvReLU1d",
}
# the reference modules of torch that qlearn does not have (recurrent layers)
_TORCH_ONLY_REFERENCE = {"nn.GRUCell", "nn.LSTMCell", "nn.RNNCell", "nn.LSTM"}


def _reference_named(mapping):
    """Like :func:`named`, keeping the reference package apart (``nnqr.Conv1d``)."""
    def name(cls):
        if ".reference" in cls.__module__:
            return f"nnqr.{cls.__name__}"
        return short_name(cls)
    return {short_name(k): name(v) for k, v in mapping.items()}


@pytest.mark.parametrize("fn, qlearn_only, torch_only", [
    ("get_default_static_quant_module_mappings", _QLEARN_ONLY_STATIC, _TORCH_ONLY_KEYS),
    ("get_default_qat_module_mappings", set(), _TORCH_ONLY_KEYS),
    ("get_default_dynamic_quant_module_mappings", set(), _TORCH_ONLY_KEYS),
    ("get_embedding_qat_module_mappings", set(), _TORCH_ONLY_KEYS),
    ("get_embedding_static_quant_module_mappings", _QLEARN_ONLY_STATIC, _TORCH_ONLY_KEYS),
    ("get_default_static_quant_reference_module_mappings", set(),
     _TORCH_ONLY_KEYS | _TORCH_ONLY_REFERENCE),
])
def test_mappings_key_by_key_like_torch(torch_mod, fn, qlearn_only, torch_only):
    import torch.ao.quantization.quantization_mappings as tmap
    ours = _reference_named(getattr(tq, fn)())
    theirs = _reference_named(getattr(tmap, fn)())
    assert set(theirs) - set(ours) <= torch_only
    assert set(ours) - set(theirs) == qlearn_only
    assert {k: v for k, v in ours.items() if k in theirs} == \
        {k: v for k, v in theirs.items() if k in ours}


def test_operator_mapping_like_torch(torch_mod):
    import torch.ao.quantization.quantization_mappings as tmap
    theirs = {f.__name__: op._qualified_op_name for f, op in
              tmap.get_default_float_to_quantized_operator_mappings().items()}
    ours = {f.__name__: (f, op) for f, op in
            tq.get_default_float_to_quantized_operator_mappings().items()}
    # every one of torch's but dropout (qlearn has no quantized dropout function)
    assert set(theirs) - set(ours) == {"dropout"}
    for name in theirs:
        if name in ours:
            f, op = ours[name]
            assert op.__module__.startswith("qlearn.nn.quantized.functional")
            assert op.__name__ == theirs[name].split("::")[1] == name
            assert tq.get_quantized_operator(f) is op
    # the others keep their input's qparams: torch runs them on quantized tensors as
    # they are, so its mapping needs no entry for them
    assert set(ours) - set(theirs) == {"relu", "relu6", "max_pool2d", "avg_pool2d",
                                       "adaptive_avg_pool2d", "max_pool1d", "avg_pool1d",
                                       "adaptive_avg_pool1d", "interpolate"}
