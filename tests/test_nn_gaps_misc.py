"""The smaller torch.ao names: ``qF.avg_pool3d`` / ``qF.adaptive_avg_pool3d``,
``nnq.FXFloatFunctional`` and ``nnqat.dynamic.Linear``, against torch 2.13 and a NumPy
reference."""
import itertools

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import qlearn as ql
import qlearn.nn.qat as nnqat
import qlearn.nn.quantized as nnq
import qlearn.nn.quantized.dynamic as nnqd
import qlearn.nn.quantized.functional as qF
import qlearn.quantization as tq
from qlearn import nn
from qlearn.quantization import quantize_fx as qfx


def _qt(q, scale, zp):
    return ql.quantize_per_tensor((q.astype(np.float32) - zp) * np.float32(scale), scale, zp,
                                  ql.quint8)


def _torch_q(torch, q, scale, zp):
    return torch._make_per_tensor_quantized_tensor(torch.from_numpy(q.copy()), scale, zp)


def avg_pool3d_ref(q, z, k, s, p, ceil, count_include_pad, divisor):
    """One window at a time, the formula of the docstring written out."""
    def size(n, kk, ss, pp):
        o = (n + 2 * pp - kk + (ss - 1 if ceil else 0)) // ss + 1
        return o - 1 if ceil and (o - 1) * ss >= n + pp else o
    L = q.shape[-3:]
    osize = [size(n, kk, ss, pp) for n, kk, ss, pp in zip(L, k, s, p)]
    out = np.empty(q.shape[:-3] + tuple(osize), np.uint8)
    for idx in itertools.product(*map(range, osize)):
        box, padded = [], 1
        for i, n, kk, ss, pp in zip(idx, L, k, s, p):
            st = i * ss - pp
            en = min(st + kk, n + pp)
            padded *= en - st
            box.append(slice(max(st, 0), min(en, n)))
        win = q[(Ellipsis,) + tuple(box)].astype(np.int64)
        n = win.shape[-1] * win.shape[-2] * win.shape[-3]
        d = divisor or (padded if count_include_pad else n)
        v = np.float32(win.sum(axis=(-3, -2, -1)) - n * z) * np.float32(1 / d) + np.float32(z)
        out[(Ellipsis,) + idx] = np.clip(np.rint(v), 0, 255)
    return out


@pytest.mark.parametrize("seed", range(24))
def test_avg_pool3d_bit_equal_to_torch_and_reference(torch_mod, seed):
    torch = torch_mod
    rng = np.random.default_rng(seed)
    k = tuple(int(v) for v in rng.integers(1, 4, 3))
    s = tuple(int(v) for v in rng.integers(1, 3, 3))
    p = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
    ceil, cip = bool(seed % 2), bool(seed // 2 % 2)
    div = 5 if seed % 7 == 0 else None
    z = [0, 3, 128, 255][seed % 4]
    shape = (2, 3, 5, 4, 6) if seed % 3 else (3, 4, 3, 5)
    q = rng.integers(0, 256, shape).astype(np.uint8)
    x = _qt(q, 0.1, z)
    assert_array_equal(x.int_repr(), q)
    y = qF.avg_pool3d(x, k, s, p, ceil, cip, div)
    # torch's avg_pool3d takes 5-d input only (qlearn also an unbatched 4-d one)
    tq5 = _torch_q(torch, q if q.ndim == 5 else q[None], 0.1, z)
    ty = torch.ao.nn.quantized.functional.avg_pool3d(tq5, k, s, p, ceil, cip, div)
    assert_array_equal(y.int_repr(), ty.int_repr().numpy().reshape(y.shape))
    assert_array_equal(y.int_repr(), avg_pool3d_ref(q, z, k, s, p, ceil, cip, div))
    assert (y.q_scale(), y.q_zero_point()) == (x.q_scale(), x.q_zero_point())


@pytest.mark.parametrize("seed", range(12))
def test_adaptive_avg_pool3d_bit_equal_to_torch(torch_mod, seed):
    torch = torch_mod
    rng = np.random.default_rng(100 + seed)
    out = tuple(int(v) for v in rng.integers(1, 5, 3))
    if seed % 4 == 3:
        out = (None, out[1], out[2])
    z = [0, 3, 127, 255][seed % 4]
    q = rng.integers(0, 256, (2, 3, 5, 4, 7) if seed % 2 else (3, 5, 4, 7)).astype(np.uint8)
    y = qF.adaptive_avg_pool3d(_qt(q, 0.1, z), out)
    ty = torch.ao.nn.quantized.functional.adaptive_avg_pool3d(_torch_q(torch, q, 0.1, z), out)
    assert_array_equal(y.int_repr(), ty.int_repr().numpy())
    # one bin by hand: the float32 mean of its integers, rounded to even
    whole = qF.adaptive_avg_pool3d(_qt(q, 0.1, z), 1).int_repr()
    n = q.shape[-1] * q.shape[-2] * q.shape[-3]
    want = np.rint(np.float32(q.astype(np.int64).sum(axis=(-3, -2, -1))) * np.float32(1 / n))
    assert_array_equal(whole.reshape(want.shape), want)


def test_pool3d_bad_input():
    x = ql.quantize_per_tensor(np.ones((1, 2, 3, 3)), 0.1, 0, ql.quint8)
    with pytest.raises(ValueError, match="`input` must be 5-d"):
        qF.avg_pool3d(ql.quantize_per_tensor(np.ones((2, 3, 3)), 0.1, 0, ql.quint8), 2)
    with pytest.raises(TypeError, match="expects a quantized `input`"):
        qF.avg_pool3d(np.ones((1, 1, 2, 2, 2), np.float32), 2)
    with pytest.raises(ValueError, match="`padding` must be at most half"):
        qF.avg_pool3d(x, 2, padding=(0, 2, 0))
    with pytest.raises(ValueError, match="`kernel_size` must be an int or a tuple of 3"):
        qF.avg_pool3d(x, (2, 2))
    with pytest.raises(ValueError, match="`divisor_override` must be a non-zero"):
        qF.avg_pool3d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match="too small"):
        qF.avg_pool3d(x, (3, 1, 1), stride=1)
    with pytest.raises(ValueError, match="`output_size` must be positive"):
        qF.adaptive_avg_pool3d(x, (0, 1, 1))
    with pytest.raises(ValueError, match="`output_size` must be an int or a tuple of 3"):
        qF.adaptive_avg_pool3d(x, (1, 1))


# ---- FXFloatFunctional -------------------------------------------------------------------------
def _residual(lib, torch=None):
    N = torch.nn if lib == "t" else nn
    FF = torch.ao.nn.quantized.FXFloatFunctional if lib == "t" else nnq.FXFloatFunctional

    class Net(N.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = N.Linear(4, 4), N.Linear(4, 4)
            self.ff = FF()

        def forward(self, x):
            a = self.fc1(x)
            y = self.ff.add_relu(a, self.fc2(x))
            y = self.ff.mul(y, a)
            return self.ff.cat([self.ff.add_scalar(y, 0.5), a], 1)

    return Net()


def test_fx_float_functional_graph_mode_bit_equal_to_torch(torch_x86, rng):
    torch = torch_x86
    from torch.ao.quantization import quantize_fx as tfx
    tm, qm = _residual("t", torch).eval(), _residual("q").eval()
    qm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    xs = [rng.standard_normal((5, 4)).astype(np.float32) for _ in range(3)]
    assert_allclose(np.asarray(qm(xs[0]).data), tm(torch.from_numpy(xs[0])).detach().numpy(),
                    rtol=1e-5, atol=1e-6)
    qc_t = torch.ao.quantization.get_default_qconfig("x86")
    pt = tfx.prepare_fx(tm, {"": qc_t}, (torch.from_numpy(xs[0]),))
    pq = qfx.prepare_fx(qm, {"": tq.get_default_qconfig("x86")}, (xs[0],))
    for x in xs:
        pt(torch.from_numpy(x))
        pq(x)
    tsd = pt.state_dict()
    assert sorted(pq.state_dict()) == sorted(tsd)
    pq.load_state_dict({k: v.numpy() for k, v in tsd.items()})  # ulp-equal ranges made equal
    ct, cq = tfx.convert_fx(pt), qfx.convert_fx(pq)
    for x in xs:
        y = cq(x)
        assert_array_equal(getattr(y, "numpy", lambda: y)(), ct(torch.from_numpy(x)).numpy())


def test_fx_float_functional_methods():
    ff = nnq.FXFloatFunctional()
    a, b = np.array([[1.0, -2.0]], np.float32), np.array([[0.5, 0.5]], np.float32)
    assert_array_equal(ff.add(a, b), a + b)
    assert_array_equal(ff.mul(a, b), a * b)
    assert_array_equal(ff.add_scalar(a, 1.0), a + 1)
    assert_array_equal(ff.mul_scalar(a, 2.0), a * 2)
    assert_array_equal(np.asarray(ff.add_relu(a, b).data), np.maximum(a + b, 0))
    assert_array_equal(np.asarray(ff.cat([a, b], 0).data), np.concatenate([a, b]))
    assert_array_equal(ff.matmul(a, b.T), a @ b.T)
    assert not hasattr(ff, "activation_post_process")
    with pytest.raises(RuntimeError, match="not meant to be called"):
        ff(a)


# ---- nnqat.dynamic.Linear ----------------------------------------------------------------------
def _dynamic_qat_qconfig():
    return tq.QConfig(activation=tq.default_dynamic_fake_quant,
                      weight=tq.default_weight_fake_quant)


def test_dynamic_qat_linear_like_torch(torch_mod, rng):
    torch = torch_mod
    ta = torch.ao.quantization
    tqc = ta.QConfig(activation=ta.default_dynamic_fake_quant,
                     weight=ta.default_weight_fake_quant)
    tm = torch.ao.nn.qat.dynamic.Linear(5, 3, qconfig=tqc)
    qm = nnqat.dynamic.Linear(5, 3, qconfig=_dynamic_qat_qconfig())
    qm.weight.data[...] = tm.weight.detach().numpy()
    qm.bias.data[...] = tm.bias.detach().numpy()
    x = rng.standard_normal((4, 5)).astype(np.float32)
    assert_allclose(np.asarray(qm(x).data), tm(torch.from_numpy(x)).detach().numpy(),
                    rtol=1e-6, atol=1e-6)
    td = torch.ao.nn.quantized.dynamic.Linear.from_float(tm)
    qd = nnqd.Linear.from_float(qm)
    assert_array_equal(qd.weight().int_repr(), td.weight().int_repr().numpy())
    assert_allclose(qd(x), td(torch.from_numpy(x)).numpy(), rtol=0, atol=2e-6)
    with pytest.raises(ValueError, match="memoryless activation observer"):
        nnqat.dynamic.Linear(2, 2, qconfig=tq.get_default_qat_qconfig("x86"))
    with pytest.raises(ValueError):
        torch.ao.nn.qat.dynamic.Linear(2, 2, qconfig=ta.get_default_qat_qconfig("x86"))
