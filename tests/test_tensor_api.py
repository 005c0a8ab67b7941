"""The tensor API of the torch namespace (dtypes, promotion, factories, functions,
printing, distributions) against PyTorch 2.13."""
import numpy as np
import pytest

import qlearn as ql

VALUES = [0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 127.9, 128.0, 200.5, 255.7, 256.0, 300.7,
          -129.5, -200.3, -1.0, 1e10, -1e10, 3e9, 0.0, -0.0]
INT_DTYPES = ["int8", "uint8", "int16", "int32", "int64", "bool"]


def _same(t, q):
    """qlearn tensor ``q`` equals torch tensor ``t``: values, dtype and shape."""
    assert str(q.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    np.testing.assert_array_equal(q.numpy(), t.numpy())


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_float_to_integer_conversion_as_torch(torch_mod, dtype):
    # truncation toward zero, then the low bits (wrap), as PyTorch on the CPU
    t = torch_mod.tensor(VALUES).to(getattr(torch_mod, dtype))
    q = ql.tensor(VALUES).to(getattr(ql, dtype))
    _same(t, q)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16"])
def test_integer_to_integer_conversion_wraps(torch_mod, dtype):
    data = [300, -1, -129, 1000000, 255, 128]
    _same(torch_mod.tensor(data).to(getattr(torch_mod, dtype)),
          ql.tensor(data).to(getattr(ql, dtype)))


def test_round_is_half_to_even(torch_mod):
    data = [0.5, 1.5, 2.5, -0.5, -2.5, 3.5, 1.2345, -7.5]
    _same(torch_mod.round(torch_mod.tensor(data)), ql.round(ql.tensor(data)))
    _same(torch_mod.round(torch_mod.tensor(data), decimals=2),
          ql.round(ql.tensor(data), decimals=2))


@pytest.mark.parametrize("a,b", [([-7, 7, 5, -5], 2), ([-7, 7, 5, -5], -3),
                                 ([9, -9, 1], [2, 4, -5])])
def test_integer_division_and_remainder(torch_mod, a, b):
    tb = torch_mod.tensor(b) if isinstance(b, list) else b
    qb = ql.tensor(b) if isinstance(b, list) else b
    ta, qa = torch_mod.tensor(a), ql.tensor(a)
    _same(ta // tb, qa // qb)
    _same(ta % tb, qa % qb)
    _same(ta / tb, qa / qb)          # true division gives float32
    _same(ta * tb, qa * qb)


def test_integer_division_by_zero_is_an_error():
    with pytest.raises(ZeroDivisionError):
        ql.tensor([1, 2]) // 0
    np.testing.assert_array_equal((ql.tensor([1.0, -1.0]) / 0).numpy(), [np.inf, -np.inf])


def test_int8_arithmetic_wraps_as_torch(torch_mod):
    _same(torch_mod.tensor([100, -100], dtype=torch_mod.int8) * 2,
          ql.tensor([100, -100], dtype=ql.int8) * 2)
    _same(torch_mod.tensor([200], dtype=torch_mod.uint8) + torch_mod.tensor([100],
                                                                            dtype=torch_mod.uint8),
          ql.tensor([200], dtype=ql.uint8) + ql.tensor([100], dtype=ql.uint8))


@pytest.mark.parametrize("make", [
    lambda m: m.tensor([1, 2], dtype=m.int8) + 1,
    lambda m: m.tensor([1, 2], dtype=m.int8) + m.tensor(1000),
    lambda m: m.tensor([1, 2], dtype=m.uint8) + m.tensor([1, 2], dtype=m.int8),
    lambda m: m.tensor([1, 2]) / m.tensor(2.0),
    lambda m: m.tensor([1, 2]) * 2.5,
    lambda m: m.tensor([1.0, 2.0], dtype=m.float64) + m.tensor(1.0),
    lambda m: m.tensor([1, 2]) + m.tensor(1.5, dtype=m.float64),
    lambda m: m.tensor([True, False]) + 1,
    lambda m: m.tensor([True, False]) * 1.5,
    lambda m: m.tensor([1, 2], dtype=m.int32) + m.tensor([1], dtype=m.int64),
    lambda m: m.tensor([1.0, 2.0], dtype=m.float16) + m.tensor([1.0]),
    lambda m: m.clamp(m.tensor([-200, 5, 300]), -128, 127),
    lambda m: m.clamp(m.tensor([-2, 5]), 0.5, 1.5),
    lambda m: m.where(m.tensor([0, 2]) == 0, 0, 100 * m.tensor([1.0, 2.0]) / m.tensor([0, 2])),
    lambda m: m.tensor([1, 2], dtype=m.int8).sum(),
    lambda m: m.tensor([True, False, True]).sum(),
    lambda m: m.abs(m.tensor([-3, 4], dtype=m.int16)),
    lambda m: m.sqrt(m.tensor([1, 4])),
    lambda m: m.pow(m.tensor([2, 3]), 2),
    lambda m: m.pow(m.tensor([2, 3]), 0.5),
    lambda m: m.max(m.tensor(2.0), m.tensor([1.0, 3.0])),
    lambda m: m.max(m.tensor([3, 9, 2], dtype=m.uint8)),
    lambda m: m.min(m.tensor([3, 9, 2], dtype=m.uint8)),
    lambda m: m.tensor([1.0, 2.0, 3.0])[m.tensor([1.0, 2.0, 3.0]) >= 2],
    lambda m: m.tensor([[1, 2], [3, 4]])[m.tensor([[True, False], [False, True]])],
    lambda m: (m.tensor([1, 2, 3]) > 1) & (m.tensor([1, 2, 3]) < 3),
    lambda m: ~(m.tensor([1.0, 0.0]) == 0),
    lambda m: m.arange(5),
    lambda m: m.arange(0, 1, 0.1),
    lambda m: m.arange(1, 10, 3),
    lambda m: m.arange(-1.5, 2.5, 0.5),
    lambda m: m.linspace(0, 1, 7),
    lambda m: m.linspace(-3, 3, 10),
    lambda m: m.linspace(2, 2, 1),
    lambda m: m.full((2, 2), 7),
    lambda m: m.full((2,), True),
    lambda m: m.zeros(2, 3, dtype=m.int8),
    lambda m: m.ones((2,), dtype=m.float64),
    lambda m: m.zeros_like(m.tensor([1, 2], dtype=m.int16)),
    lambda m: m.norm(m.tensor([[3.0, 4.0], [1.0, 2.0]])),
    lambda m: m.log10(m.tensor([1.0, 10.0, 1000.0, 0.5])),
    lambda m: m.tensor([1.345, 2.087, 3.453]).mean(),
])
def test_values_and_dtypes_as_torch(torch_mod, make):
    _same(make(torch_mod), make(ql))


@pytest.mark.parametrize("make", [
    lambda m: m.tensor([-10.0, -5.0, 0.0, 5.0, 10.0]),
    lambda m: m.tensor([0, 1, 9, 10, 1000]),
    lambda m: m.tensor([-127, -64, 0, 64, 127], dtype=m.int8),
    lambda m: m.tensor([0.0, 0.0, 7.8431, 11.7647, 1000.0]),
    lambda m: m.tensor([1e-5, 1.0, 3e5]),
    lambda m: m.tensor([1e9, 2.0]),
    lambda m: m.tensor([float("nan"), float("inf"), -float("inf"), 1.5]),
    lambda m: m.tensor([0.0, -0.0]),
    lambda m: m.tensor(0.0784),
    lambda m: m.tensor(-162.7016),
    lambda m: m.tensor(3),
    lambda m: m.tensor(True),
    lambda m: m.tensor([True, False]),
    lambda m: m.tensor([1.5, 2.0], dtype=m.float64),
    lambda m: m.tensor([1, 2], dtype=m.uint8),
    lambda m: m.tensor([]),
    lambda m: m.zeros(0, 3),
    lambda m: m.zeros(0, dtype=m.int64),
    lambda m: m.arange(30) * 1.5,
    lambda m: m.arange(2000),
    lambda m: m.arange(2000).reshape(40, 50) * 0.5,
    lambda m: m.arange(24).reshape(2, 3, 4),
    lambda m: m.arange(3000.0).reshape(10, 3, 100) / 7,
    lambda m: m.tensor([[0.5827, 0.8619], [0.3827, -0.1982], [-0.8213, 0.6351]]),
    lambda m: m.tensor([1.0, 2.0], requires_grad=True),
    lambda m: m.tensor([[1e-3] * 30]),
    lambda m: m.zeros(3, 2).size(),
    lambda m: m.iinfo(m.int8),
    lambda m: m.iinfo(m.uint8),
    lambda m: m.finfo(m.float32),
    lambda m: m.finfo(m.float64),
    lambda m: m.finfo(m.float16),
    lambda m: m.int8,
    lambda m: m.float64,
])
def test_repr_as_torch(torch_mod, make):
    assert repr(make(ql)) == repr(make(torch_mod)).replace("torch", "qlearn")


def test_item_tolist_and_builtins():
    t = ql.tensor([-10.0, -5.0, 0.0, 5.0, 10.0])
    assert (min(t).item(), max(t).item()) == (-10.0, 10.0)
    assert isinstance(ql.tensor([3]).item(), int) and ql.tensor([[1, 2]]).tolist() == [[1, 2]]
    assert f"{ql.tensor(0.12345):.2f}" == "0.12"
    assert list(range(ql.tensor(3))) == [0, 1, 2]
    with pytest.raises(TypeError, match="0-d"):
        iter(ql.tensor(1.0))
    with pytest.raises(ValueError, match="one-element"):
        ql.tensor([1.0, 2.0]).item()


def test_comparisons_give_masks_not_a_single_bool():
    t = ql.tensor([0, 1, 9])
    m = t == 0
    assert isinstance(m, ql.Tensor) and m.dtype == ql.bool
    np.testing.assert_array_equal(m.numpy(), [True, False, False])
    np.testing.assert_array_equal((t != 0).numpy(), [False, True, True])
    assert (t == None) is False and (t != None) is True  # noqa: E711
    x = ql.tensor([1.0, -2.0, 3.0])
    x[x < 0] = 0
    np.testing.assert_array_equal(x.numpy(), [1.0, 0.0, 3.0])


def test_autograd_stays_float_only():
    with pytest.raises(RuntimeError, match="floating-point"):
        ql.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating-point"):
        ql.zeros(2, dtype=ql.int8).requires_grad_()
    w = ql.tensor([1.0, 2.0], requires_grad=True)
    q = w.to(ql.int8)
    assert not q.requires_grad and q.grad_fn is None
    # float32 -> float64 -> loss: the gradient reaches the float32 leaf, in its dtype
    (w.to(ql.float64) * ql.tensor([3.0, 4.0], dtype=ql.float64)).sum().backward()
    assert w.grad.dtype == ql.float32
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 4.0])
    # an int tensor times a float leaf promotes to float and differentiates
    w.grad = None
    (w * ql.tensor([2, 5])).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 5.0])


def test_gradients_of_the_new_functions(torch_mod):
    data = [0.3, 1.7, 2.0, 5.0]
    for fn in (lambda m, x: m.norm(x), lambda m, x: m.log10(x).sum(),
               lambda m, x: m.pow(x, 3).sum(), lambda m, x: m.round(x).sum(),
               lambda m, x: m.clamp(x, 0.5, 2.0).sum(), lambda m, x: m.min(x)):
        xt = torch_mod.tensor(data, requires_grad=True)
        xq = ql.tensor(data, requires_grad=True)
        fn(torch_mod, xt).backward()
        fn(ql, xq).backward()
        np.testing.assert_allclose(xq.grad.numpy(), xt.grad.numpy(), rtol=1e-6)


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="`dtype`"):
        ql.zeros(2, dtype="complex64")
    with pytest.raises(TypeError, match="quantized dtype"):
        ql.tensor([1.0]).to(ql.qint8)
    with pytest.raises(ValueError, match="`size`"):
        ql.zeros(-1)
    with pytest.raises(ValueError, match="`step`"):
        ql.arange(0, 1, 0)
    with pytest.raises(TypeError, match="floating-point"):
        ql.tensor([1, 2]).mean()
    with pytest.raises(ValueError, match="`scale`"):
        ql.distributions.Normal(0.0, -1.0)
    with pytest.raises(TypeError, match="integer dtype"):
        ql.iinfo(ql.float32)


def test_dtypes_work_with_numpy():
    assert ql.float32 == np.float32 and ql.int8 != np.int16 and ql.int8 != ql.qint8
    assert np.zeros(2, ql.uint8).dtype == np.uint8
    assert ql.tensor([1.0]).dtype == np.float32     # old comparisons keep working
    assert {ql.int8: 1}[ql.int8] == 1


@pytest.mark.parametrize("dist,check", [
    (lambda m: m.distributions.normal.Normal(1.0, 2.0), (1.0, 2.0)),
    (lambda m: m.distributions.uniform.Uniform(-1.0, 3.0), (1.0, 4 / np.sqrt(12))),
    (lambda m: m.distributions.exponential.Exponential(2.0), (0.5, 0.5)),
    (lambda m: m.distributions.pareto.Pareto(1.0, 10.0), (10 / 9, np.sqrt(10 / 81 / 8))),
])
def test_distributions_sample_the_same_law(torch_mod, dist, check):
    ql.manual_seed(0)
    x = dist(ql).sample((20000,)).numpy()
    t = dist(torch_mod).sample((20000,)).numpy()
    assert x.dtype == np.float32 and x.shape == t.shape == (20000,)
    mean, std = check
    for sample in (x, t):
        assert abs(sample.mean() - mean) < 0.05 * max(std, 0.1) * 4
        assert abs(sample.std() - std) < 0.05 * std + 0.01


def test_conv2d_one_element_kernel_tuple():
    m = ql.nn.Conv2d(2, 64, (8,))
    assert m.kernel_size == (8, 8) and m.weight.shape == (64, 2, 8, 8)
    assert m(ql.rand(1, 2, 10, 10)).shape == (1, 64, 3, 3)
