"""A fork() child of a process that ran OpenMP kernels on several threads computes.

libgomp's workers do not exist in a forked child, and the child's next multi-thread
OpenMP region waits for them forever (multiprocessing's default start method on Linux,
a DataLoader with workers, pytest-xdist).  :func:`qlearn.kernels.threads.resolve_openmp`
runs the OpenMP kernels of such a child on one thread; the results are the same.
"""
import multiprocessing

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import qlearn as ql
from qlearn.kernels import threads

pytestmark = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods() or not threads.OPENMP_ENABLED,
    reason="needs fork() and an OpenMP build")


def _work(x):
    """One call each of the OpenMP kernel families: quantize, dequantize, fake quant,
    an observer, per-channel quantize."""
    q = ql.quantize_per_tensor(x, 0.01, 3, ql.quint8)
    fq = ql.fake_quantize_per_tensor_affine(x, 0.02, 5, 0, 255)
    obs = ql.quantization.MinMaxObserver()
    obs(x)
    scale, zp = obs.calculate_qparams()
    pc = ql.quantize_per_channel(x.reshape(64, -1), np.linspace(0.01, 0.02, 64),
                                 np.zeros(64, np.int64), 0, ql.qint8)
    return [q.int_repr(), np.asarray(q.dequantize()), np.asarray(fq), np.asarray(scale),
            np.asarray(zp), pc.int_repr()]


def _child(conn, x):
    conn.send((threads.resolve_openmp(), threads.resolve(), _work(x)))
    conn.close()


def test_forked_child_runs_openmp_kernels_after_a_parallel_parent():
    x = np.random.default_rng(0).standard_normal(1 << 20).astype(np.float32)
    ql.set_num_threads(2)
    want = _work(x)                 # OpenMP regions on 2 threads in this process
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_child, args=(child, x))
    p.start()
    got = parent.recv() if parent.poll(60) else None
    p.join(10)
    if p.exitcode is None:
        p.kill()
    assert got is not None, "the forked child hung in an OpenMP region"
    omp_threads, pool_threads, arrays = got
    assert omp_threads == 1         # OpenMP kernels alone in the child ...
    assert pool_threads == 2        # ... the int8 pool keeps the count
    for g, w in zip(arrays, want):
        assert_array_equal(g, w)


def test_resolve_openmp_checks_like_resolve():
    with pytest.raises(ValueError, match="num_threads"):
        threads.resolve_openmp(0)
    with pytest.raises(TypeError, match="num_threads"):
        threads.resolve_openmp(1.5)
    assert threads.resolve_openmp(1) == 1
