"""Quantized modules with packed weights survive pickle (as torch's do): the copy
repacks its integers and computes exactly what the original computes."""
import pickle

import numpy as np
import pytest

import qlearn as ql
import qlearn.nn.quantized as nnq
import qlearn.nn.quantized.dynamic as nnqd


def _qinput(shape, rng):
    return ql.quantize_per_tensor(rng.normal(size=shape).astype(np.float32), 0.05, 64,
                                  ql.quint8)


def _with_random_weight(m, rng):
    w = m.weight()
    fw = rng.normal(size=w.shape).astype(np.float32) * 0.1
    m.set_weight_bias(ql.quantize_per_tensor(fw, 0.01, 0, ql.qint8),
                      rng.normal(size=w.shape[0]).astype(np.float32))
    return m


CASES = {
    "Linear": (lambda: nnq.Linear(20, 7), (3, 20)),
    "Conv2d": (lambda: nnq.Conv2d(4, 6, 3, padding=1), (2, 4, 9, 9)),
    "Conv2d depthwise": (lambda: nnq.Conv2d(8, 8, 3, groups=8, padding=1), (1, 8, 7, 7)),
    "Conv1d": (lambda: nnq.Conv1d(3, 5, 3), (2, 3, 11)),
    "Conv3d": (lambda: nnq.Conv3d(2, 3, 3), (1, 2, 5, 5, 5)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_static_module_pickles_and_computes_the_same(name, rng):
    make, shape = CASES[name]
    m = _with_random_weight(make(), rng)
    m.scale, m.zero_point = 0.07, 60
    x = _qinput(shape, rng)
    copy = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(copy(x).int_repr(), m(x).int_repr())
    np.testing.assert_array_equal(copy.weight().int_repr(), m.weight().int_repr())


@pytest.mark.parametrize("make,shape", [(lambda: nnqd.Linear(20, 7), (3, 20)),
                                        (lambda: nnqd.LSTM(6, 4), (5, 2, 6))],
                         ids=["Linear", "LSTM"])
def test_dynamic_module_pickles_and_computes_the_same(make, shape, rng):
    m = make()
    x = rng.normal(size=shape).astype(np.float32)
    copy = pickle.loads(pickle.dumps(m))
    a, b = m(x), copy(x)
    a, b = (a[0], b[0]) if isinstance(a, tuple) else (a, b)
    np.testing.assert_array_equal(np.asarray(getattr(b, "data", b)),
                                  np.asarray(getattr(a, "data", a)))
