"""QConfig, the default qconfigs (printed like PyTorch's) and the quantized engine."""
import numpy as np
import pytest

import qlearn as ql
from qlearn.quantization import observer as O
from qlearn.quantization import qconfig as Q


def torch_repr(torch, obj):
    return repr(obj).replace("torch.ao.quantization", "qlearn.quantization") \
        .replace("torch.", "qlearn.")


@pytest.mark.parametrize("name", ["default_qconfig", "default_per_channel_qconfig",
                                  "default_dynamic_qconfig", "per_channel_dynamic_qconfig",
                                  "default_debug_qconfig", "default_symmetric_qnnpack_qconfig",
                                  "default_per_channel_symmetric_qnnpack_qconfig",
                                  "default_quint8_weight_qconfig",
                                  "default_reuse_input_qconfig"])
def test_default_qconfigs_print_like_torch(name, torch_mod):
    tq = getattr(torch_mod.ao.quantization.qconfig, name)
    assert repr(getattr(Q, name)) == torch_repr(torch_mod, tq)


@pytest.mark.parametrize("backend", ["x86", "fbgemm", "qnnpack", "onednn"])
def test_get_default_qconfig_like_torch(backend, torch_mod):
    tq = torch_mod.ao.quantization.qconfig.get_default_qconfig(backend)
    assert repr(Q.get_default_qconfig(backend)) == torch_repr(torch_mod, tq)
    assert str(Q.get_default_qconfig(backend)) == torch_repr(torch_mod, tq)


def test_reduce_range_per_backend():
    for backend, rr in [("x86", True), ("fbgemm", True), ("qnnpack", False),
                        ("onednn", False)]:
        act = Q.get_default_qconfig(backend).activation()
        assert isinstance(act, O.HistogramObserver)
        assert act.reduce_range is rr
        assert (act.quant_min, act.quant_max) == ((0, 127) if rr else (0, 255))


def test_default_factories_build_observers():
    a = Q.default_qconfig.activation()
    w = Q.default_per_channel_qconfig.weight()
    assert isinstance(a, O.MinMaxObserver) and (a.quant_min, a.quant_max) == (0, 127)
    assert isinstance(w, O.PerChannelMinMaxObserver) and w.dtype is ql.qint8
    assert w.qscheme is ql.per_channel_symmetric
    d = Q.default_dynamic_qconfig.activation()
    assert isinstance(d, O.PlaceholderObserver) and d.is_dynamic


def test_qconfig_refuses_instances():
    with pytest.raises(ValueError, match="observer instance"):
        Q.QConfig(activation=O.MinMaxObserver(), weight=O.MinMaxObserver)
    with pytest.raises(ValueError, match="observer instance"):
        Q.QConfig(activation=O.MinMaxObserver, weight=O.MinMaxObserver())
    with pytest.raises(TypeError, match="factory"):
        Q.QConfig(activation=3, weight=None)
    q = Q.QConfig(activation=O.MinMaxObserver, weight=None)
    assert q.activation is O.MinMaxObserver and q._fields == ("activation", "weight")


def test_seed_000_custom_qconfig(torch_mod):
    T = torch_mod.ao.quantization
    mine = Q.QConfig(
        activation=O.MovingAverageMinMaxObserver.with_args(qscheme=ql.per_tensor_affine,
                                                           dtype=ql.quint8),
        weight=O.MovingAveragePerChannelMinMaxObserver.with_args(
            qscheme=ql.per_channel_symmetric))
    theirs = T.qconfig.QConfig(
        activation=T.observer.MovingAverageMinMaxObserver.with_args(
            qscheme=torch_mod.per_tensor_affine, dtype=torch_mod.quint8),
        weight=T.observer.MovingAveragePerChannelMinMaxObserver.with_args(
            qscheme=torch_mod.per_channel_symmetric))
    assert repr(mine) == torch_repr(torch_mod, theirs)


def test_backend_errors():
    with pytest.raises(ValueError, match="backend"):
        Q.get_default_qconfig("cuda")
    with pytest.raises(ValueError, match="version"):
        Q.get_default_qconfig("x86", version=1)
    with pytest.raises(ValueError, match="backend"):
        Q.get_default_qat_qconfig("tpu")


def test_qconfig_equals():
    assert Q.qconfig_equals(Q.get_default_qconfig("x86"), Q.get_default_qconfig("fbgemm"))
    assert not Q.qconfig_equals(Q.get_default_qconfig("x86"), Q.get_default_qconfig("qnnpack"))
    assert Q.qconfig_equals(None, None)


def _fake_quantize_module():
    try:
        from qlearn.quantization import fake_quantize
    except ImportError as exc:
        pytest.skip(f"qlearn.quantization.fake_quantize is not available yet ({exc})")
    return fake_quantize


@pytest.mark.parametrize("backend", ["x86", "fbgemm", "qnnpack", "onednn"])
@pytest.mark.parametrize("version", [0, 1])
def test_get_default_qat_qconfig_like_torch(backend, version, torch_mod):
    _fake_quantize_module()
    try:
        mine = Q.get_default_qat_qconfig(backend, version)
    except AttributeError as exc:
        pytest.skip(f"fake_quantize lacks a default: {exc}")
    theirs = torch_mod.ao.quantization.qconfig.get_default_qat_qconfig(backend, version)
    assert repr(mine) == torch_repr(torch_mod, theirs)


def test_engine():
    assert ql.backends.quantized.engine == "x86"
    try:
        ql.backends.quantized.engine = "qnnpack"
        assert ql.backends.quantized.engine == "qnnpack"
        with pytest.raises(ValueError, match="engine"):
            ql.backends.quantized.engine = "cuda"
        assert ql.backends.quantized.engine == "qnnpack"
    finally:
        ql.backends.quantized.engine = "x86"
    assert "fbgemm" in ql.backends.quantized.supported_engines


def test_observer_from_qconfig_runs():
    obs = Q.get_default_qconfig("x86").activation()
    obs(np.linspace(-1, 1, 100, dtype=np.float32))
    s, z = obs.calculate_qparams()
    assert s.shape == (1,) and 0 <= z[0] <= 127


@pytest.mark.parametrize("name", ["default_qat_qconfig", "default_dynamic_qat_qconfig",
                                  "default_qat_qconfig_v2",
                                  "default_symmetric_qnnpack_qat_qconfig",
                                  "default_per_channel_symmetric_qnnpack_qat_qconfig"])
def test_qat_qconfigs_like_torch(name, torch_mod):
    _fake_quantize_module()
    try:
        mine = getattr(Q, name)
    except AttributeError as exc:
        pytest.skip(f"fake_quantize lacks a default: {exc}")
    assert repr(mine) == torch_repr(torch_mod, getattr(torch_mod.ao.quantization.qconfig, name))


def test_float16_qconfigs():
    obs = Q.float16_dynamic_qconfig.activation()
    assert obs.dtype is np.float16 and obs.is_dynamic
    assert Q.float16_static_qconfig.weight().dtype is np.float16
    with pytest.raises(AttributeError, match="no attribute"):
        Q.not_a_qconfig  # noqa: B018
