"""nnq.Linear's per-call path (checked once at pack time, a direct kernel call per
forward) gives the same integers as the general path on every shape and SIMD path, and
still refuses bad input with the same errors."""
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import qlearn as ql
import qlearn.nn.intrinsic.quantized as nniq
import qlearn.nn.quantized as nnq
from qlearn.kernels import simd
from qlearn.reference import gemm_u8_ref


def _linear(rng, k, n, relu=False):
    m = (nniq.LinearReLU if relu else nnq.Linear)(k, n)
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    m.set_weight_bias(ql.QTensor(w, ql.qint8, ql.per_tensor_affine, 0.01, 0),
                      rng.standard_normal(n).astype(np.float32))
    m.scale, m.zero_point = 0.5, 64
    return m, w


def _expected(m, w, xi):
    pw = m._packed_params
    bias_q, mult = pw.requant_constants(0.02, 0.5)
    lo = 64 if isinstance(m, nniq.LinearReLU) else 0
    a = xi.reshape(-1, w.shape[1])
    return gemm_u8_ref(a, w, 10, pw.w_zp, bias_q, mult, 64, lo, 255).reshape(
        xi.shape[:-1] + (w.shape[0],))


@pytest.mark.parametrize("path", [p.name.lower() for p in simd.available()])
@pytest.mark.parametrize("shape", [(1, 64), (3, 64), (64,), (2, 3, 64), (1, 6), (5, 7),
                                   (0, 64)])
@pytest.mark.parametrize("relu", [False, True])
def test_fast_and_general_paths_agree(rng, path, shape, relu):
    k = shape[-1]
    m, w = _linear(rng, k, 37, relu)
    xi = rng.integers(0, 256, shape).astype(np.uint8)
    x = ql.QTensor(xi, ql.quint8, ql.per_tensor_affine, 0.02, 10)
    with simd.use(path):
        y = m(x)
        yt = m(ql.QTensor(np.asfortranarray(xi), ql.quint8, ql.per_tensor_affine, 0.02,
                          10))      # not C-contiguous: the general path
    assert y.shape == shape[:-1] + (37,)
    assert (y.q_scale(), y.q_zero_point(), y.dtype) == (0.5, 64, ql.quint8)
    assert_array_equal(y.int_repr(), _expected(m, w, xi))
    assert_array_equal(yt.int_repr(), y.int_repr())


def test_symmetric_input_takes_the_checked_path(rng):
    m, w = _linear(rng, 8, 4)
    xi = rng.integers(0, 256, (2, 8)).astype(np.uint8)
    x = ql.QTensor(xi, ql.quint8, ql.per_tensor_symmetric, 0.02, 10)
    assert_array_equal(m(x).int_repr(), _expected(m, w, xi))


def test_bad_input_still_refused(rng):
    m, _ = _linear(rng, 8, 4)
    with pytest.raises(TypeError, match="quantize it first"):
        m(np.zeros((1, 8), np.float32))
    with pytest.raises(TypeError, match="must be quint8"):
        m(ql.quantize_per_tensor(np.zeros((1, 8)), 0.1, 0, ql.qint8))
    with pytest.raises(ValueError, match="per tensor"):
        m(ql.quantize_per_channel(np.zeros((1, 8)), [0.1], [0], 0, ql.quint8))
    with pytest.raises(ValueError, match="8 features"):
        m(ql.quantize_per_tensor(np.zeros((1, 9)), 0.1, 0, ql.quint8))
    with pytest.raises(ValueError, match="8 features"):
        m(ql.quantize_per_tensor(np.float32(1.0), 0.1, 0, ql.quint8))
    x = ql.quantize_per_tensor(np.zeros((1, 8)), 0.1, 0, ql.quint8)
    m.scale = -1.0
    with pytest.raises(ValueError, match="scale"):
        m(x)
    m.scale, m.zero_point = 0.5, 300
    with pytest.raises(ValueError, match="zero_point"):
        m(x)
