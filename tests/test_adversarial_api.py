"""Adversarial arguments to the public API that once crashed, hung, ran out of memory or
raised an error naming nothing.  Each test says what used to happen.

Cases that could take the interpreter down run in a child process with a memory limit
(``_run_isolated``), so that a regression is a failed test, not a dead test run.
"""
import copy
import os
import pickle
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import qlearn as ql
from qlearn.quantization import calibrators
from qlearn.quantization import fake_quantize as qfq
from qlearn.quantization import observer as qobs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(ql.__file__)))


def _run_isolated(code, mem_mb=2048, timeout=120):
    """Run ``code`` in a fresh interpreter under RLIMIT_AS; return the CompletedProcess."""
    prelude = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, ({mem_mb} << 20, {mem_mb} << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    """)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="2")
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _q(shape=(2, 3, 4)):
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) / 10
    return ql.quantize_per_tensor(x, 0.1, 3, ql.quint8)


# --- QTensor methods: sizes beyond memory or beyond int64 --------------------------------
def test_chunk_of_an_empty_axis_into_2_63_pieces_is_refused():
    # was: a tuple of 2**63 empty views, built until the process was killed (OOM)
    r = _run_isolated("""
        import numpy as np, qlearn as ql
        q = ql.quantize_per_tensor(np.zeros((0, 3), np.float32), 0.1, 3, ql.quint8)
        for n in (2 ** 63, 2 ** 40, 2 ** 21):
            try:
                q.chunk(n)
            except ValueError as e:
                assert "`chunks`" in str(e), e
            else:
                raise SystemExit(f"chunk({n}) accepted")
        assert len(q.chunk(5)) == 5       # torch: `chunks` empty pieces
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_repeat_beyond_int64_names_sizes():
    # was: OverflowError from inside np.tile
    with pytest.raises(ValueError, match="`sizes`"):
        _q().repeat(2 ** 63, 1, 1)
    with pytest.raises(ValueError, match="`sizes`"):
        _q((2,)).repeat(2 ** 62)
    assert _q((0, 3)).repeat(2 ** 40, 1).shape == (0, 3)   # no elements: fine


@pytest.mark.parametrize("key", [2 ** 63, -2 ** 64, (0, 2 ** 70), 2 ** 70])
def test_index_beyond_int64_is_an_index_error(key):
    # was: OverflowError for 2**63 (NumPy's "Python int too large to convert to C long"),
    # and for 2**70 NumPy's "only integers, slices ... are valid indices"
    huge = key[1] if isinstance(key, tuple) else key
    with pytest.raises(IndexError, match=f"^index {huge} is out of range for a tensor of "
                                         r"shape \("):
        _q()[key]


@pytest.mark.parametrize("key, dim, size", [(5, 0, 2), ((0, 7), 1, 3),
                                            ((slice(None), -4), 1, 3), ([0, 5], 0, 2)])
def test_index_out_of_bounds_says_dimension_as_torch(torch_mod, key, dim, size):
    q = ql.quantize_per_tensor(np.arange(6, dtype=np.float32).reshape(2, 3), 0.1, 0,
                               ql.quint8)
    t = torch_mod.quantize_per_tensor(torch_mod.arange(6.).reshape(2, 3), 0.1, 0,
                                      torch_mod.quint8)
    f = ql.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    tk = torch_mod.tensor(key) if isinstance(key, list) else key
    for ours_t, theirs_t in ((q, t), (f, torch_mod.arange(6.).reshape(2, 3))):
        with pytest.raises(IndexError) as ours:
            ours_t[key]
        with pytest.raises(IndexError) as theirs:
            theirs_t[tk]
        assert str(ours.value) == str(theirs.value)
        assert f"for dimension {dim} with size {size}" in str(ours.value)


@pytest.mark.parametrize("dim,exc", [(True, TypeError), (slice(None), TypeError),
                                     ("1", TypeError), (3, IndexError), (-4, IndexError)])
def test_size_dim_is_checked(torch_mod, dim, exc):
    # was: size(True) gave shape[1], size(slice(None)) the whole shape
    with pytest.raises(exc, match="`dim`"):
        _q().size(dim)
    with pytest.raises((TypeError, IndexError)):
        torch_mod.zeros(2, 3, 4).size(dim)
    assert _q().size(-1) == 4 and _q().size(np.int64(1)) == 3


# --- constructors: errors that name the argument -------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: qfq.FakeQuantize(quant_min="4", quant_max=255),
    lambda: qfq.FakeQuantize(quant_min=0, quant_max="4"),
    lambda: qfq.FusedMovingAvgObsFakeQuantize(quant_min=0, quant_max=2.0),
    lambda: qfq.LearnableFakeQuantize(qobs.MovingAverageMinMaxObserver, quant_min=0,
                                      quant_max=None),
    lambda: qfq.LearnableFakeQuantize(qobs.MovingAverageMinMaxObserver, quant_min=0,
                                      quant_max=float("nan")),
])
def test_fake_quantize_range_must_be_integers(make):
    # was: "'>' not supported between instances of 'str' and 'int'", "cannot convert
    # float NaN to integer"
    with pytest.raises(TypeError, match="`quant_m(in|ax)` must be an integer"):
        make()


@pytest.mark.parametrize("bad", ["99", True, None, [99.0]])
def test_percentile_must_be_a_number(bad):
    # was: "99" and True accepted (float() reads them), None a bare float() TypeError
    with pytest.raises(TypeError, match="`percentile`"):
        calibrators.PercentileObserver(percentile=bad)


def test_per_channel_observer_on_0d_input_names_x():
    with pytest.raises(ValueError, match="`x` must have at least 1 dimension"):
        qobs.PerChannelMinMaxObserver()(np.float32(1.0))


# --- load_state_dict with wrong types and shapes -----------------------------------------
def _fq_modules():
    return {
        "FakeQuantize": qfq.FakeQuantize(),
        "FusedMovingAvgObsFakeQuantize": qfq.FusedMovingAvgObsFakeQuantize(),
        "FakeQuantize per channel": qfq.FakeQuantize(
            observer=qobs.MovingAveragePerChannelMinMaxObserver, quant_min=-128,
            quant_max=127, dtype=ql.qint8, qscheme=ql.per_channel_symmetric, ch_axis=0),
        "LearnableFakeQuantize": qfq.LearnableFakeQuantize(
            qobs.MovingAverageMinMaxObserver, quant_min=0, quant_max=255),
    }


@pytest.mark.parametrize("name", list(_fq_modules()))
@pytest.mark.parametrize("bad", ["abc", object(), np.array(["x"]), np.zeros((3, 3))])
def test_fake_quantize_load_state_dict_refuses_unusable_entries(name, bad):
    # was: a string or an object replaced the buffer, and the next forward raised
    # AttributeError ("'str' object has no attribute 'shape'")
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    mod = _fq_modules()[name]
    mod(x)
    want = mod(x)
    sd = mod.state_dict()
    keys = [k for k in sd if k.split(".")[-1] in qfq.FakeQuantizeBase._SWITCHES + (
        "scale", "zero_point") and "." not in k]
    assert keys
    for key in keys:
        target = copy.deepcopy(mod)
        if isinstance(bad, np.ndarray) and bad.dtype.kind == "f" and key in ("scale",
                                                                              "zero_point"):
            continue        # a 2-d qparam: checked below
        with pytest.raises(RuntimeError, match=key):
            target.load_state_dict({**sd, key: bad})
    with pytest.raises(RuntimeError, match="scale"):
        copy.deepcopy(mod).load_state_dict({**sd, "scale": np.zeros((3, 3), np.float32)})
    ok = copy.deepcopy(mod)
    ok.load_state_dict(sd)
    np.testing.assert_array_equal(np.asarray(ok(x).data), np.asarray(want.data))


def test_fixed_qparams_observer_refuses_a_state_dict_of_another_shape():
    obs = qobs.FixedQParamsObserver(1 / 256.0, 0)
    with pytest.raises(RuntimeError, match="size mismatch for scale"):
        obs.load_state_dict({"scale": np.ones(3, np.float32), "zero_point": np.zeros(1)})
    with pytest.raises(RuntimeError, match="zero_point"):
        obs.load_state_dict({"scale": np.full(1, 1 / 256, np.float32), "zero_point": "z"})
    np.testing.assert_array_equal(obs.calculate_qparams()[0], [1 / 256.0])


def test_observer_state_dict_from_torch_still_loads(torch_mod):
    ours, theirs = qobs.MinMaxObserver(), torch_mod.ao.quantization.MinMaxObserver()
    theirs(torch_mod.tensor([-1.0, 3.0]))
    ours.load_state_dict(theirs.state_dict())
    np.testing.assert_array_equal(ours.calculate_qparams()[0],
                                  theirs.calculate_qparams()[0].numpy())


# --- pickle and deepcopy of every observer and fake quantize ------------------------------
MODULES = {
    "MinMaxObserver": qobs.MinMaxObserver,
    "MovingAverageMinMaxObserver": qobs.MovingAverageMinMaxObserver,
    "PerChannelMinMaxObserver": qobs.PerChannelMinMaxObserver,
    "MovingAveragePerChannelMinMaxObserver": qobs.MovingAveragePerChannelMinMaxObserver,
    "HistogramObserver": qobs.HistogramObserver,
    "FixedQParamsObserver": lambda: qobs.FixedQParamsObserver(1 / 256.0, 0),
    "PercentileObserver": calibrators.PercentileObserver,
    "MSEObserver": calibrators.MSEObserver,
    "EntropyObserver": calibrators.EntropyObserver,
    **{k: (lambda k=k: _fq_modules()[k]) for k in _fq_modules()},
}


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
@pytest.mark.parametrize("name", list(MODULES))
def test_pickle_and_deepcopy_keep_the_state(name, how):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 3)) * 5
    a = MODULES[name]()
    a(x)
    b = pickle.loads(pickle.dumps(a)) if how == "pickle" else copy.deepcopy(a)
    out_a, out_b = a(y.astype(np.float32)), b(y.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(getattr(out_a, "data", out_a)),
                                  np.asarray(getattr(out_b, "data", out_b)))
    for u, v in zip(a.calculate_qparams(), b.calculate_qparams()):
        np.testing.assert_array_equal(u, v)
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        np.testing.assert_array_equal(np.asarray(getattr(sa[k], "data", sa[k])),
                                      np.asarray(getattr(sb[k], "data", sb[k])), err_msg=k)


# --- threads ------------------------------------------------------------------------------
def test_concurrent_kernels_from_python_threads_agree_with_serial_results():
    rng = np.random.default_rng(2)
    xs = [(rng.normal(size=50_000) * (i + 1)).astype(np.float32) for i in range(8)]
    want_q = [ql.quantize_per_tensor(x, 0.05, 128, ql.quint8).int_repr() for x in xs]
    want_f = [ql.fake_quantize_per_tensor_affine(x, 0.05, 128, 0, 255).numpy() for x in xs]
    want_c = [ql.quantize_per_channel(x.reshape(100, -1), np.full(100, 0.05), np.zeros(100),
                                      0, ql.qint8).int_repr() for x in xs]
    errors = []

    def work(i):
        try:
            for _ in range(3):
                for j in range(i, 8, 4):
                    np.testing.assert_array_equal(
                        ql.quantize_per_tensor(xs[j], 0.05, 128, ql.quint8).int_repr(),
                        want_q[j])
                    np.testing.assert_array_equal(
                        ql.fake_quantize_per_tensor_affine(xs[j], 0.05, 128, 0, 255).numpy(),
                        want_f[j])
                    np.testing.assert_array_equal(
                        ql.quantize_per_channel(xs[j].reshape(100, -1), np.full(100, 0.05),
                                                np.zeros(100), 0, ql.qint8).int_repr(),
                        want_c[j])
        except Exception as exc:    # noqa: BLE001 (reported below, with its thread)
            errors.append(f"thread {i}: {exc!r}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


# --- save: never write a file load() refuses ----------------------------------------------
def _cyclic():
    a = []
    a.append(a)
    return a


def _deep(n):
    root = cur = []
    for _ in range(n):
        cur.append([])
        cur = cur[0]
    return root


@pytest.mark.parametrize("obj", [_cyclic(), _deep(5000), _deep(65)], ids=["cycle", "5000",
                                                                          "65"])
def test_save_refuses_cycles_and_deep_nesting(obj, tmp_path):
    # was: RecursionError (a cycle, 5000 levels) or a file load() refused (65 levels)
    with pytest.raises(ValueError, match="`obj` is nested deeper than 64"):
        ql.save(obj, tmp_path / "x.qlearn")
    ql.save(_deep(63), tmp_path / "ok.qlearn")
    ql.load(tmp_path / "ok.qlearn")


@pytest.mark.parametrize("obj", [np.array(["ab"]), np.zeros(2, [("a", "f4")]),
                                 np.array(["2020-01-01"], "datetime64[D]"), {True: 1}],
                         ids=["str", "record", "datetime", "bool-key"])
def test_save_refuses_what_load_would_refuse(obj, tmp_path):
    # was: saved, then load() said "is not a qlearn file"
    with pytest.raises(TypeError, match="cannot save|keys must be"):
        ql.save(obj, tmp_path / "x.qlearn")


def test_save_load_round_trip_of_awkward_but_valid_values(tmp_path):
    obj = {"f16": np.ones(3, np.float16), "neg": np.arange(6.0).reshape(2, 3)[:, ::-1],
           "b": np.broadcast_to(np.float32(2), (2, 2)), "c": np.array([1 + 2j]),
           "big": 2 ** 100, "nan": float("nan"), 7: (1, [None, True])}
    ql.save(obj, tmp_path / "x.qlearn")
    back = ql.load(tmp_path / "x.qlearn")
    for k in ("f16", "neg", "b", "c"):
        np.testing.assert_array_equal(back[k], obj[k])
        assert back[k].dtype == obj[k].dtype
    assert back["big"] == 2 ** 100 and np.isnan(back["nan"]) and back[7] == (1, [None, True])


def test_tensor_index_beyond_int64_is_an_index_error():
    with pytest.raises(IndexError, match="out of range"):
        ql.tensor([1.0, 2.0], requires_grad=True)[2 ** 63]


@pytest.mark.parametrize("sizes", [(2 ** 63, -1), (2 ** 32, 2 ** 32, -1), (2 ** 40, 2 ** 40)])
def test_unflatten_sizes_beyond_int64_are_refused_by_name(sizes):
    # was: OverflowError from np.prod (or an int64 product that wrapped)
    with pytest.raises(ValueError, match="`sizes` must multiply to"):
        _q((4, 6)).unflatten(1, sizes)
    with pytest.raises(ValueError, match="`sizes`"):
        _q((4, 0)).unflatten(1, sizes[:2] if -1 not in sizes[:2] else (2 ** 40, 2 ** 40))


@pytest.mark.parametrize("make,key,value", [
    (qobs.MinMaxObserver, "eps", np.zeros(0, np.float32)),
    (qobs.PerChannelMinMaxObserver, "min_val", np.float32(2.0)),
    (qobs.PerChannelMinMaxObserver, "max_val", np.zeros((2, 2), np.float32)),
    (lambda: qobs.HistogramObserver(bins=64), "histogram", np.ones(7)),
])
def test_observer_buffers_keep_their_dimensions(make, key, value):
    # was: loaded as given, then IndexError in calculate_qparams / forward
    obs = make()
    x = np.random.default_rng(3).normal(size=(3, 4)).astype(np.float32)
    obs(x)
    want = obs.calculate_qparams()
    with pytest.raises(RuntimeError, match=f"size mismatch for {key}"):
        obs.load_state_dict({**obs.state_dict(), key: value})
    for u, v in zip(obs.calculate_qparams(), want):
        np.testing.assert_array_equal(u, v)
    obs(x)      # still usable


def test_observer_loads_one_element_buffers_of_either_rank():
    obs = qobs.MinMaxObserver()
    obs.load_state_dict({"eps": np.float32(1e-6), "min_val": np.array([-1.0]),
                         "max_val": np.array(2.0)})
    assert obs.min_val.shape == () and obs.eps.shape == (1,)
    np.testing.assert_allclose(obs.calculate_qparams()[0], [3 / 255], rtol=1e-6)


def test_ragged_tensor_data_is_named():
    # was: NumPy's "setting an array element with a sequence" naming no argument
    with pytest.raises(ValueError, match="`data` must be a rectangular"):
        ql.tensor([[1.0], [2.0, 3.0]])
