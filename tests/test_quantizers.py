"""DoReFa, PACT and WRPN against NumPy transcriptions of their equations (seed 002),
their gradients against finite differences / the STE rule, and against Distiller's
formulas written in torch."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import qlearn as ql
from qlearn import reference as ref
from qlearn.quantizers import (
    PACTReLU,
    dorefa_quantize_activation,
    dorefa_quantize_weight,
    pact_quantize,
    wrpn_quantize_activation,
    wrpn_quantize_weight,
    wrpn_width,
)

BITS = [1, 2, 3, 4, 8]


@pytest.fixture(params=[True, False], ids=["simd", "generic"])
def simd(request):
    """Run with the AVX2 loops and with their plain Cython twins."""
    from qlearn.kernels import simd as simd_paths
    with simd_paths.use(simd_paths.available()[-1] if request.param else "generic") as p:
        yield p


# -- the documented equations, from the NumPy oracle (qlearn.reference): round(n y / unit)
# unit / n, with n = 2^k - 1, evaluated in float64 (y n is exact there), rounded once ------

def _levels(y, n, unit=1.0):
    return ref.clip_round_ref(y, -np.inf, np.inf, unit, n)


def quantize_k(x, k):
    """quantize_k(x) = round((2^k - 1) x) / (2^k - 1)."""
    return _levels(x, 2.0 ** k - 1)


def ref_dorefa_act(a, k):
    return ref.clip_round_ref(a, 0, 1, 1.0, 2.0 ** k - 1)


def ref_dorefa_weight(w, k):
    return ref.dorefa_weight_forward_ref(w, 2.0 ** k - 1)[0]


def ref_pact(x, alpha, k):
    return ref.clip_round_ref(x, 0, alpha, np.float32(alpha), 2.0 ** k - 1)


def ref_wrpn_weight(w, k):
    return ref.clip_round_ref(w, -1, 1, 1.0, 2.0 ** (k - 1) - 1)


@pytest.mark.parametrize("k", BITS)
def test_dorefa_activation_matches_equation_and_ste(k, num_threads, simd, rng):
    a = np.concatenate([rng.uniform(-0.5, 1.5, 40_000),
                        (np.arange(2 ** k) + 0.5) / (2 ** k - 1)]).astype(np.float32)
    at = ql.tensor(a, requires_grad=True)
    y = dorefa_quantize_activation(at, k)
    assert_array_equal(y.numpy(), ref_dorefa_act(a, k))
    assert len(np.unique(y.numpy())) <= 2 ** k
    g = rng.normal(size=a.shape).astype(np.float32)
    y.backward(g)
    assert_array_equal(at.grad.numpy(), g * ((a >= 0) & (a <= 1)))


@pytest.mark.parametrize("k", BITS[1:])
def test_dorefa_weight_matches_equation(k, num_threads, rng):
    w = rng.normal(0, 0.5, (70, 1000)).astype(np.float32)
    y = dorefa_quantize_weight(w, k).numpy()
    assert_array_equal(y, ref_dorefa_weight(w, k))
    assert np.abs(y).max() == 1 and len(np.unique(y)) <= 2 ** k


def test_dorefa_weight_gradient_matches_finite_differences(rng):
    """STE through the rounding: the gradient is that of 2 f(w) - 1 with
    f(w) = tanh(w) / (2 max|tanh w|) + 1/2, max included."""
    w = rng.normal(0, 0.7, 40)
    g = rng.normal(size=w.shape)

    def surrogate(v):
        t = np.tanh(v)
        return float(np.sum(g * (2 * (t / (2 * np.abs(t).max()) + 0.5) - 1)))

    h = 1e-6
    fd = np.array([(surrogate(w + h * e) - surrogate(w - h * e)) / (2 * h)
                   for e in np.eye(w.size)])
    wt = ql.tensor(w, requires_grad=True)
    dorefa_quantize_weight(wt, 4).backward(g.astype(np.float32))
    assert_allclose(wt.grad.numpy(), fd, rtol=1e-4, atol=1e-5)


def test_dorefa_weight_gradient_matches_distiller_in_torch(torch_mod, rng):
    torch = torch_mod
    w = rng.normal(0, 0.5, (16, 9)).astype(np.float32)
    w[3, 3] = -w.__abs__().max()          # two tied maxima of |tanh w|
    g = rng.normal(size=w.shape).astype(np.float32)
    wt = torch.from_numpy(w).requires_grad_()
    t = wt.tanh()
    f = t / (2 * t.abs().max()) + 0.5
    q = f + (torch.round(f * 15) / 15 - f).detach()      # Distiller's LinearQuantizeSTE
    (2 * q - 1).backward(torch.from_numpy(g))
    wq = ql.tensor(w, requires_grad=True)
    dorefa_quantize_weight(wq, 4).backward(g)
    assert_allclose(wq.grad.numpy(), wt.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_dorefa_binary_weights():
    w = ql.tensor([-2.0, 0.0, 0.5, 1.5], requires_grad=True)
    y = dorefa_quantize_weight(w, 1)
    assert_array_equal(y.numpy(), np.float32([-1, 1, 1, 1]) * np.float32(1.0))
    y.backward(np.float32([1, 2, 3, 4]))
    assert_array_equal(w.grad.numpy(), [1, 2, 3, 4])


@pytest.mark.parametrize("k", BITS)
@pytest.mark.parametrize("alpha", [0.7, 3.0, 8.0])
def test_pact_matches_equation_and_gradients(k, alpha, num_threads, simd, rng):
    x = np.concatenate([rng.normal(alpha / 2, alpha, 50_000),
                        [0.0, alpha, -0.0, np.float32(alpha) * 1.5]]).astype(np.float32)
    xt = ql.tensor(x, requires_grad=True)
    at = ql.tensor([alpha], requires_grad=True)
    y = pact_quantize(xt, k, at)
    assert_array_equal(y.numpy(), ref_pact(x, alpha, k))
    g = rng.normal(size=x.shape).astype(np.float32)
    y.backward(g)
    a32 = np.float32(alpha)
    assert_array_equal(xt.grad.numpy(), g * ((x >= 0) & (x < a32)))      # [0, alpha)
    assert_allclose(at.grad.numpy()[0], g[x >= a32].astype(np.float64).sum(), rtol=1e-6)


def test_pact_alpha_gradient_matches_finite_differences(rng):
    """Where x >= alpha the output is alpha itself, so dL/dalpha = sum of the gradients
    there; a central difference of L in alpha agrees."""
    x = rng.uniform(2.0, 5.0, 100).astype(np.float32)
    g = rng.normal(size=x.shape)
    alpha, h = 1.5, 1e-3

    def loss(a):
        return float(np.sum(g * ref_pact(x, a, 4).astype(np.float64)))

    fd = (loss(alpha + h) - loss(alpha - h)) / (2 * h)
    at = ql.tensor([alpha], requires_grad=True)
    pact_quantize(x, 4, at).backward(g.astype(np.float32))
    assert_allclose(at.grad.numpy()[0], fd, rtol=1e-3)


def test_pact_matches_distiller_in_torch(torch_mod, rng):
    """Distiller computes round(y * (n / alpha)) / (n / alpha); qlearn round(y / S) S with
    S = alpha / n.  Values agree to float32 rounding; the gradients agree exactly except
    at x == 0 (Distiller: 0, PACT paper and qlearn: 1)."""
    torch = torch_mod
    x = rng.normal(1, 2, 10_000).astype(np.float32)
    alpha, n = 3.0, 15
    xt = torch.from_numpy(x).requires_grad_()
    at = torch.tensor([alpha], requires_grad=True)
    s = n / at.detach()
    y = torch.clamp(xt, 0, alpha)
    y = y + (torch.round(y * s) / s - y).detach()
    y = torch.where(xt >= at, at.expand_as(xt), y)       # d/dalpha = 1 where x >= alpha
    g = rng.normal(size=x.shape).astype(np.float32)
    y.backward(torch.from_numpy(g))
    xq = ql.tensor(x, requires_grad=True)
    aq = ql.tensor([alpha], requires_grad=True)
    yq = pact_quantize(xq, 4, aq)
    yq.backward(g)
    assert_allclose(yq.numpy(), y.detach().numpy(), rtol=0, atol=1e-6)
    assert_array_equal(xq.grad.numpy(), xt.grad.numpy())
    assert_allclose(aq.grad.numpy(), at.grad.numpy(), rtol=1e-5)


def test_pact_relu_module_trains_alpha():
    act = PACTReLU(num_bits=4, alpha_init=2.0)
    assert [n for n, _ in act.named_parameters()] == ["alpha"]
    x = np.float32([-1.0, 0.5, 3.0, 4.0])
    act(x).sum().backward()
    assert act.alpha.grad.numpy()[0] == 2.0
    with pytest.raises(ValueError, match="alpha"):
        PACTReLU(4, alpha_init=-1.0)
    with pytest.raises(ValueError, match="num_bits"):
        PACTReLU(0)


@pytest.mark.parametrize("k", [2, 3, 4, 8])
def test_wrpn_weight_matches_equation(k, num_threads, simd, rng):
    w = rng.uniform(-1.5, 1.5, 70_000).astype(np.float32)
    wt = ql.tensor(w, requires_grad=True)
    y = wrpn_quantize_weight(wt, k)
    assert_array_equal(y.numpy(), ref_wrpn_weight(w, k))
    assert len(np.unique(y.numpy())) == 2 ** k - 1      # k-1 magnitude bits and a sign
    y.backward(np.ones(w.shape, np.float32))
    assert_array_equal(wt.grad.numpy(), ((w >= -1) & (w <= 1)).astype(np.float32))


@pytest.mark.parametrize("k", BITS)
def test_wrpn_activation_is_dorefa_activation(k, rng):
    a = rng.uniform(-0.5, 1.5, 1000).astype(np.float32)
    assert_array_equal(wrpn_quantize_activation(a, k).numpy(), ref_dorefa_act(a, k))


def test_quantizers_are_fake_quantize_with_z0_off_ties(rng):
    """Each quantizer is fake_quantize_per_tensor_affine of the clipped input, Z = 0, to
    within float32 rounding; away from ties of the equation the integer is the same."""
    x = rng.normal(0.5, 1, 5000).astype(np.float32)
    n = 15
    for y, unit in ((dorefa_quantize_activation(x, 4), 1.0), (pact_quantize(x, 4, 2.5), 2.5)):
        fq = ql.fake_quantize_per_tensor_affine(np.clip(x, 0, unit), unit / n, 0, 0, n)
        assert_allclose(y.numpy(), fq.numpy(), rtol=0, atol=2e-7 * unit)


@pytest.mark.parametrize("k", [3, 4, 6, 8, 12])
def test_ties_round_half_to_even_as_the_equation(k, simd):
    """At exact ties of round(n y) (y = (j + 1/2) / n, n odd) the level is the even one.

    Multiplying by float32(1 / float32(1/n)) (!= n for these k) moved such values by a
    whole step; the quantizers now evaluate the documented equation."""
    n = 2 ** k - 1
    y = np.float32([0.5, 0.25, 0.75, 1.0 / 3])    # 0.5 n = (n - 1) / 2 + 1/2 is a tie
    want = quantize_k(y, k)
    assert want[0] == np.float32((n // 2 + (n // 2) % 2) / np.float64(n))
    assert_array_equal(dorefa_quantize_activation(y, k).numpy(), want)
    assert_array_equal(wrpn_quantize_activation(y, k).numpy(), want)
    assert_array_equal(pact_quantize(y, k, 1.0).numpy(), want)
    w = np.float32([0.5, -0.5, 0.25])
    assert_array_equal(wrpn_quantize_weight(w, k).numpy(), ref_wrpn_weight(w, k))


@pytest.mark.parametrize("alpha", [1e-30, 1e-38, 1e-45, 3e38])
def test_pact_extreme_alpha(alpha, simd):
    """A tiny alpha made S = alpha / (2^k - 1) underflow and 1 / S overflow: NaN out."""
    a = np.float32(alpha)
    x = np.float32([-1.0, 0.0, a * np.float32(0.3), a * np.float32(0.5), a,
                    np.nextafter(a, np.float32(np.inf)), 1.0])
    for k in (1, 4, 8, 16):
        y = pact_quantize(x, k, alpha).numpy()
        assert np.isfinite(y).all()
        assert_array_equal(y, ref_pact(x, alpha, k))


def test_results_do_not_depend_on_thread_count(simd, rng):
    w = rng.normal(size=(300, 400)).astype(np.float32)
    outs = []
    for nt in (1, 2):
        ql.set_num_threads(nt)
        wt = ql.tensor(w, requires_grad=True)
        at = ql.tensor([1.0], requires_grad=True)
        (dorefa_quantize_weight(wt, 3) + pact_quantize(wt, 3, at)).sum().backward()
        outs.append((wt.grad.numpy().copy(), at.grad.numpy().copy()))
    assert_array_equal(outs[0][0], outs[1][0])
    assert_array_equal(outs[0][1], outs[1][1])


def test_errors():
    with pytest.raises(ValueError, match="num_bits"):
        dorefa_quantize_activation([0.5], 0)
    with pytest.raises(ValueError, match="num_bits"):
        wrpn_quantize_weight([0.5], 1)
    with pytest.raises(TypeError, match="num_bits"):
        pact_quantize([0.5], 2.5, 1.0)
    with pytest.raises(ValueError, match="alpha"):
        pact_quantize([0.5], 4, 0.0)
    with pytest.raises(ValueError, match="finite"):
        dorefa_quantize_weight([0.5, np.nan], 4)
    with pytest.raises(ValueError, match="finite"):
        pact_quantize([np.inf], 4, 1.0)
    with pytest.raises(ValueError, match="width_multiplier"):
        wrpn_width(8, 0)
    assert wrpn_width(16, 2) == 32


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(k=st.integers(1, 16), n=st.integers(1, 300), seed=st.integers(0, 2 ** 16),
       alpha=st.floats(0.01, 100.0))
def test_property_quantizers_match_equations(k, n, seed, alpha):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 2 * alpha, n).astype(np.float32)
    assert_array_equal(dorefa_quantize_activation(x, k).numpy(), ref_dorefa_act(x, k))
    assert_array_equal(pact_quantize(x, k, alpha).numpy(), ref_pact(x, alpha, k))
    if k >= 2:
        assert_array_equal(dorefa_quantize_weight(x, k).numpy(), ref_dorefa_weight(x, k))
        assert_array_equal(wrpn_quantize_weight(x, k).numpy(), ref_wrpn_weight(x, k))
