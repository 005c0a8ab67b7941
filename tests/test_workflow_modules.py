"""The quantized modules the workflow swaps in, against torch: ReLU / ReLU6 on quint8
and qint8, Dropout, and the state dicts of Quantize / QFunctional."""
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import qlearn as ql
import qlearn.nn.quantized as nnq
import qlearn.nn.quantized.functional as qF

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.mark.parametrize("dtype,zero_point", [("quint8", 0), ("quint8", 128),
                                              ("quint8", 255), ("qint8", -128),
                                              ("qint8", 0), ("qint8", -3), ("qint8", 127)])
def test_relu_and_relu6_match_torch_on_both_dtypes(torch_mod, rng, dtype, zero_point):
    torch = torch_mod
    x = (rng.normal(size=(3, 17)) * 4).astype(np.float32)
    scale = 0.07
    tx = torch.quantize_per_tensor(torch.from_numpy(x), scale, zero_point,
                                   getattr(torch, dtype))
    qx = ql.quantize_per_tensor(x, scale, zero_point, getattr(ql, dtype))
    assert_array_equal(qx.int_repr(), tx.int_repr().numpy())
    for q_out, t_out in ((nnq.ReLU()(qx), torch.nn.functional.relu(tx)),
                         (qF.relu(qx), torch.nn.ReLU()(tx)),
                         (nnq.ReLU6()(qx), torch.ao.nn.quantized.ReLU6()(tx))):
        assert q_out.dtype is qx.dtype
        assert (q_out.q_scale(), q_out.q_zero_point()) == (scale, zero_point)
        assert_array_equal(q_out.int_repr(), t_out.int_repr().numpy())


def test_relu_rejects_float_and_per_channel():
    with pytest.raises(TypeError, match="QuantStub"):
        nnq.ReLU()(np.ones(3, np.float32))
    pc = ql.quantize_per_channel(np.ones((2, 2)), np.array([0.1, 0.2]), np.array([0, 0]),
                                 0, ql.qint8)
    with pytest.raises(ValueError, match="per tensor"):
        qF.relu(pc)


def test_dropout_is_the_identity():
    q = ql.quantize_per_tensor(np.arange(6.0).reshape(2, 3), 0.5, 1, ql.quint8)
    d = nnq.Dropout.from_float(ql.nn.Dropout(0.3))
    assert d(q) is q and d.p == 0.3
    with pytest.raises(TypeError):
        d(np.ones(3, np.float32))


def test_quantize_and_qfunctional_state_dicts():
    qz = nnq.Quantize(0.25, 3, ql.quint8)
    assert dict(qz.state_dict()) == {"scale": 0.25, "zero_point": 3}
    other = nnq.Quantize(1.0, 0, ql.quint8)
    other.load_state_dict(qz.state_dict())
    assert (other.scale, other.zero_point) == (0.25, 3)
    f = nnq.QFunctional()
    f.scale, f.zero_point = 0.5, 7
    g = nnq.QFunctional()
    g.load_state_dict(f.state_dict())
    assert (g.scale, g.zero_point) == (0.5, 7)
    with pytest.raises(RuntimeError, match="missing keys: scale, zero_point"):
        g.load_state_dict({})


def test_quantize_repr_matches_torch(torch_mod):
    t = torch_mod.ao.nn.quantized.Quantize(0.0078701, 5, torch_mod.quint8)
    assert repr(nnq.Quantize(0.0078701, 5, ql.quint8)) == repr(t).replace("torch.",
                                                                         "qlearn.")
