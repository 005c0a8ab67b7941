"""Fake quantization and its straight-through gradient, against a NumPy transcription of
the equation and against torch.fake_quantize_per_{tensor,channel}_affine / LSQ."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import qlearn as ql
from qlearn.fake_quant import (
    _fake_quantize_learnable_per_channel_affine,
    _fake_quantize_learnable_per_tensor_affine,
)
from qlearn.kernels import simd as simd_paths
from qlearn.reference import fake_quantize_per_tensor_ref as ref_fake_quant

RANGES = [(0, 255), (-128, 127), (0, 15), (-8, 7), (-2 ** 31, 2 ** 31 - 1)]


def near_ties(rng, scale, n):
    """Values at and one or two float32 ulps around (k + 1/2) S: where rounding decides."""
    k = rng.integers(-300, 300, n)
    x = ((k + 0.5) * np.float64(np.float32(scale))).astype(np.float32)
    steps = rng.integers(-2, 3, n)
    for _ in range(2):
        x = np.where(steps > 0, np.nextafter(x, np.inf), x)
        x = np.where(steps < 0, np.nextafter(x, -np.inf), x)
        steps = steps - np.sign(steps)
    return x.astype(np.float32)


@pytest.fixture(params=[True, False], ids=["simd", "generic"])
def simd(request):
    with simd_paths.use(simd_paths.available()[-1] if request.param else "generic") as p:
        yield p


@pytest.mark.parametrize("qmin,qmax", RANGES)
@pytest.mark.parametrize("n", [1, 7, 33, 40_001, 70_000])
def test_per_tensor_matches_reference(qmin, qmax, n, num_threads, simd, rng):
    scale = 0.0371
    for zp in sorted({qmin, qmax, 0 if qmin <= 0 <= qmax else qmin, min(qmin + 3, qmax)}):
        x = np.concatenate([near_ties(rng, scale, n), rng.normal(0, 20, n)])
        x = x.astype(np.float32)
        got = ql.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax)
        want, _ = ref_fake_quant(x, scale, zp, qmin, qmax)
        assert_array_equal(got.numpy(), want, err_msg=f"zp={zp} n={n}")


def test_thread_count_does_not_change_results(rng):
    x = rng.normal(0, 3, (3, 70_001)).astype(np.float32)
    outs = []
    for nt in (1, 2):
        ql.set_num_threads(nt)
        xt = ql.tensor(x, requires_grad=True)
        y = ql.fake_quantize_per_channel_affine(xt, [0.1, 0.02, 0.3], [3, 0, -5], 0, -8, 7)
        y.backward(np.ones(x.shape, np.float32))
        outs.append((y.numpy(), xt.grad.numpy()))
    assert_array_equal(outs[0][0], outs[1][0])
    assert_array_equal(outs[0][1], outs[1][1])


@pytest.mark.parametrize("qmin,qmax", RANGES[:4])
def test_per_tensor_matches_torch(torch_mod, qmin, qmax, num_threads, simd, rng):
    torch = torch_mod
    for scale in (0.1, 0.0371, 0.013, 0.3, 1e-3):
        for zp in {qmin, qmax, (qmin + qmax) // 2 | 1}:     # odd zero points included
            x = np.concatenate([near_ties(rng, scale, 30_000),
                                rng.normal(0, 100 * scale, 30_000).astype(np.float32)])
            xt = torch.from_numpy(x).requires_grad_()
            yt = torch.fake_quantize_per_tensor_affine(xt, scale, zp, qmin, qmax)
            g = rng.normal(size=x.shape).astype(np.float32)
            yt.backward(torch.from_numpy(g))
            xq = ql.tensor(x, requires_grad=True)
            yq = ql.fake_quantize_per_tensor_affine(xq, scale, zp, qmin, qmax)
            yq.backward(g)
            assert_array_equal(yq.numpy(), yt.detach().numpy(), err_msg=f"S={scale} Z={zp}")
            assert_array_equal(xq.grad.numpy(), xt.grad.numpy())


def test_tensor_qparams_match_torch(torch_mod, rng):
    """FakeQuantize hands torch one-element tensors for scale and zero point."""
    torch = torch_mod
    x = near_ties(rng, 0.05, 5000)
    want = torch.fake_quantize_per_tensor_affine(
        torch.from_numpy(x), torch.tensor([0.05]), torch.tensor([7], dtype=torch.int32),
        0, 255).numpy()
    got = ql.fake_quantize_per_tensor_affine(x, np.float32([0.05]), np.int32([7]), 0, 255)
    assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("shape,axis", [((5, 7), 0), ((5, 7), 1), ((2, 3, 4, 5), 1),
                                        ((2, 3, 4, 5), -1), ((4, 9000), 0), ((11,), 0)])
def test_per_channel_matches_torch(torch_mod, shape, axis, num_threads, simd, rng):
    torch = torch_mod
    C = shape[axis]
    scales = rng.uniform(0.01, 0.5, C).astype(np.float32)
    zps = rng.integers(-128, 128, C).astype(np.int32)
    x = (rng.integers(-200, 200, shape) + 0.5).astype(np.float32)
    x *= np.expand_dims(scales, tuple(i for i in range(len(shape)) if i != axis % len(shape)))
    x[..., ::3] += rng.normal(0, 0.3, x[..., ::3].shape).astype(np.float32)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    yt = torch.fake_quantize_per_channel_affine(xt, torch.from_numpy(scales),
                                                torch.from_numpy(zps), axis % len(shape),
                                                -128, 127)
    g = rng.normal(size=shape).astype(np.float32)
    yt.backward(torch.from_numpy(g))
    xq = ql.tensor(x, requires_grad=True)
    yq = ql.fake_quantize_per_channel_affine(xq, scales, zps, axis, -128, 127)
    yq.backward(g)
    assert_array_equal(yq.numpy(), yt.detach().numpy())
    assert_array_equal(xq.grad.numpy(), xt.grad.numpy())


def test_gradient_is_the_ste_mask(rng):
    x = rng.normal(0, 2, 1000).astype(np.float32)
    xt = ql.tensor(x, requires_grad=True)
    g = rng.normal(size=x.shape).astype(np.float32)
    ql.fake_quantize_per_tensor_affine(xt, 0.1, 3, 0, 15).backward(g)
    _, mask = ref_fake_quant(x, 0.1, 3, 0, 15)
    assert_array_equal(xt.grad.numpy(), g * mask)
    assert 0 < mask.sum() < mask.size


def test_accepts_float64_arrays_and_noncontiguous_tensors(rng):
    x = rng.normal(size=(4, 6))
    a = ql.fake_quantize_per_tensor_affine(x, 0.1, 0, -8, 7)
    b = ql.fake_quantize_per_tensor_affine(ql.tensor(x).T, 0.1, 0, -8, 7)
    assert a.dtype == np.float32 and not a.requires_grad
    assert_array_equal(a.numpy().T, b.numpy())


def test_round_then_add_differs_from_quantize_per_tensor_at_ties():
    """The docs' example: x / S = 0.5 exactly, Z = 3 (odd)."""
    x = np.float32([0.05])
    fq = ql.fake_quantize_per_tensor_affine(x, 0.1, 3, 0, 255).numpy()    # round(0.5)+3 = 3
    q = ql.quantize_per_tensor(x, 0.1, 3, ql.quint8)                      # round(3.5) = 4
    assert fq[0] == np.float32(0.0)
    assert q.int_repr()[0] == 4 and q.dequantize()[0] == np.float32(0.1)


@pytest.mark.parametrize("bad,exc,match", [
    (dict(scale=-0.1), ValueError, "scale"),
    (dict(scale=0.0), ValueError, "scale"),
    (dict(zero_point=300), ValueError, r"zero_point.*\[0, 255\].*300"),
    (dict(zero_point=1.5), TypeError, "zero_point"),
    (dict(quant_min=10, quant_max=2), ValueError, "quant_min"),
    (dict(quant_max=2 ** 40), ValueError, "quant_max"),
    (dict(quant_min=0.5), TypeError, "quant_min"),
])
def test_errors_name_the_argument(bad, exc, match):
    kw = dict(scale=0.1, zero_point=0, quant_min=0, quant_max=255)
    kw.update(bad)
    with pytest.raises(exc, match=match):
        ql.fake_quantize_per_tensor_affine(np.zeros(3, np.float32), **kw)


def test_errors_per_channel_and_nonfinite():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="one entry per channel"):
        ql.fake_quantize_per_channel_affine(x, [0.1, 0.1], [0, 0], 0, 0, 255)
    with pytest.raises(ValueError, match="axis"):
        ql.fake_quantize_per_channel_affine(x, [0.1] * 3, [0] * 3, 2, 0, 255)
    with pytest.raises(ValueError, match="zero_point"):
        ql.fake_quantize_per_channel_affine(x, [0.1] * 3, [0, 0, 256], 0, 0, 255)
    with pytest.raises(TypeError, match="floating-point"):
        ql.fake_quantize_per_tensor_affine(np.zeros(3, np.int64), 0.1, 0, 0, 255)
    for v in (np.nan, np.inf):
        with pytest.raises(ValueError, match="finite"):
            ql.fake_quantize_per_tensor_affine(np.float32([0, v]), 0.1, 0, 0, 255)
        with pytest.raises(ValueError, match="finite"):
            ql.fake_quantize_per_channel_affine(np.float32([[0, v]]), [0.1], [0], 0, 0, 255)


def test_empty_input():
    assert ql.fake_quantize_per_tensor_affine(np.zeros((0, 3)), 0.1, 0, 0, 255).shape == (0, 3)


# -- LSQ ----------------------------------------------------------------------------------

@pytest.mark.parametrize("zp", [0.0, 2.5, 3.5, 2.6, -3.7, 250.7])
@pytest.mark.parametrize("qmin,qmax", [(0, 255), (-128, 127), (0, 15)])
@pytest.mark.parametrize("grad_factor", [1.0, 0.37])
def test_lsq_per_tensor_matches_torch(torch_mod, zp, qmin, qmax, grad_factor, num_threads,
                                      rng):
    torch = torch_mod
    x = rng.normal(0, 3, 50_000).astype(np.float32)
    g = rng.normal(size=x.shape).astype(np.float32)
    st = torch.tensor([0.05], requires_grad=True)
    zt = torch.tensor([zp], requires_grad=True)
    xt = torch.from_numpy(x).requires_grad_()
    yt = torch._fake_quantize_learnable_per_tensor_affine(xt, st, zt, qmin, qmax,
                                                          grad_factor)
    yt.backward(torch.from_numpy(g))
    xq = ql.tensor(x, requires_grad=True)
    sq = ql.tensor([0.05], requires_grad=True)
    zq = ql.tensor([zp], requires_grad=True)
    yq = _fake_quantize_learnable_per_tensor_affine(xq, sq, zq, qmin, qmax, grad_factor)
    yq.backward(g)
    assert_array_equal(yq.numpy(), yt.detach().numpy())
    assert_array_equal(xq.grad.numpy(), xt.grad.numpy())
    # torch sums float32 vectors, qlearn sums in float64: float32 tolerance
    assert_allclose(sq.grad.numpy(), st.grad.numpy(), rtol=2e-5, atol=1e-4)
    assert_allclose(zq.grad.numpy(), zt.grad.numpy(), rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("shape,axis", [((5, 3, 7), 1), ((6, 4), 0), ((2, 3, 8, 8), 1),
                                        ((64, 3000), 0)])
def test_lsq_per_channel_matches_torch(torch_mod, shape, axis, num_threads, rng):
    torch = torch_mod
    C = shape[axis]
    x = rng.normal(0, 3, shape).astype(np.float32)
    g = rng.normal(size=shape).astype(np.float32)
    s = rng.uniform(0.05, 0.3, C).astype(np.float32)
    z = rng.choice(np.float32([2.5, -3.5, 7.6, 0.0, -8.0]), C)
    st = torch.tensor(s, requires_grad=True)
    zt = torch.tensor(z, requires_grad=True)
    xt = torch.from_numpy(x).requires_grad_()
    yt = torch._fake_quantize_learnable_per_channel_affine(xt, st, zt, axis, -8, 7, 0.5)
    yt.backward(torch.from_numpy(g))
    xq, sq, zq = (ql.tensor(v, requires_grad=True) for v in (x, s, z))
    yq = _fake_quantize_learnable_per_channel_affine(xq, sq, zq, axis, -8, 7, 0.5)
    yq.backward(g)
    assert_array_equal(yq.numpy(), yt.detach().numpy())
    assert_array_equal(xq.grad.numpy(), xt.grad.numpy())
    assert_allclose(sq.grad.numpy(), st.grad.numpy(), rtol=2e-5, atol=1e-4)
    assert_allclose(zq.grad.numpy(), zt.grad.numpy(), rtol=2e-5, atol=1e-5)


def test_lsq_gradients_match_the_equations(rng):
    """Esser et al.: d x_hat / d S = round(x/S) - x/S inside [q_min, q_max] (the STE
    through round), q_min - Z below it, q_max - Z above it; d x_hat / d Z = -S outside,
    0 inside; both times grad_factor, summed with the upstream gradient."""
    x = rng.uniform(-1.2, 1.2, 500).astype(np.float32)
    w = rng.normal(size=x.shape).astype(np.float32)
    S, Z, qmin, qmax, gf = 0.1, 2, -8, 7, 0.25
    v = x.astype(np.float64) / S + Z
    q = np.rint(v)
    inside = (q >= qmin) & (q <= qmax)
    d_s = np.where(inside, (q - Z) - (v - Z), np.where(q < qmin, qmin - Z, qmax - Z))
    d_z = np.where(inside, 0.0, -S)
    xq = ql.tensor(x, requires_grad=True)
    sq = ql.tensor([S], requires_grad=True)
    zq = ql.tensor([float(Z)], requires_grad=True)
    _fake_quantize_learnable_per_tensor_affine(xq, sq, zq, qmin, qmax, gf).backward(w)
    assert_allclose(sq.grad.numpy()[0], gf * np.sum(w * d_s), rtol=1e-4)
    assert_allclose(zq.grad.numpy()[0], gf * np.sum(w * d_z), rtol=1e-4)
    assert_array_equal(xq.grad.numpy(), w * inside)


def test_lsq_errors():
    x = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="one element"):
        _fake_quantize_learnable_per_tensor_affine(x, [0.1, 0.2], [0.0], 0, 255)
    with pytest.raises(ValueError, match="scale"):
        _fake_quantize_learnable_per_tensor_affine(x, [-0.1], [0.0], 0, 255)
    with pytest.raises(ValueError, match="one entry per channel"):
        _fake_quantize_learnable_per_channel_affine(x.reshape(2, 2), [0.1], [0.0], 0, 0, 255)


# -- properties ---------------------------------------------------------------------------
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=4),
       bits=st.integers(2, 16), signed=st.booleans(),
       scale=st.floats(1e-4, 10.0), zp_frac=st.floats(0, 1), seed=st.integers(0, 2 ** 16),
       threads=st.sampled_from([1, 2]), per_channel=st.booleans(), dtype=st.sampled_from(
           [np.float32, np.float64]))
def test_property_fake_quant_equals_reference(shape, bits, signed, scale, zp_frac, seed,
                                              threads, per_channel, dtype):
    qmin, qmax = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    zp = int(qmin + round(zp_frac * (qmax - qmin)))
    rng = np.random.default_rng(seed)
    x = (rng.normal(0, scale * (qmax - qmin) / 4, shape)
         + rng.integers(-3, 4, shape) * 0.5 * scale).astype(dtype)
    before = ql.get_num_threads()
    ql.set_num_threads(threads)
    try:
        if per_channel:
            axis = int(rng.integers(0, len(shape)))
            C = shape[axis]
            scales = rng.uniform(scale / 2, scale * 2, C).astype(np.float32)
            zps = np.full(C, zp)
            got = ql.fake_quantize_per_channel_affine(x, scales, zps, axis, qmin, qmax)
            bshape = [1] * len(shape)
            bshape[axis] = C
            want, _ = ref_fake_quant(x, scales.reshape(bshape), zp, qmin, qmax)
        else:
            got = ql.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax)
            want, _ = ref_fake_quant(x, scale, zp, qmin, qmax)
    finally:
        ql.set_num_threads(before)
    assert got.dtype == np.float32 and got.shape == tuple(shape)
    assert_array_equal(got.numpy(), want)
