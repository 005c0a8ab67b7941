"""Observers, fake quantization and dynamic quantization on ranges reaching the float32
maximum (3.4e38, finite).

torch 2.13 there: where its scale is finite and every range end quantizes to a finite
level, qlearn gives torch's (scale, zero_point) to the bit.  Elsewhere torch gives
garbage: ``scale = inf`` (the float32 width ``beta - alpha`` overflows; its fused
fake-quant op then outputs NaN), or a finite scale whose outermost level
``S (Q_min - Z)`` lies beyond the float32 maximum, so the data at that end dequantizes
to -inf.  There qlearn returns qparams under which every observed value (and every
finite float32, for a clipped range) quantizes to a finite level within S/2 of it.
qlearn used to lower the scale until all 256 levels were finite, which clipped the
other end of a symmetric [-3.4e38, 3.4e38] range by a whole S (twice the rounding
bound)."""
import numpy as np
import pytest

import qlearn as ql
from qlearn.nn.quantized.packed_params import choose_qparams_dynamic
from qlearn.quantization import observer as qo
from qlearn.quantization.qparams import calculate_qparams_fused

F32 = np.float32
M = float(np.finfo(F32).max)
RANGES = {"pm_max": [-M, M], "zero_max": [0.0, M], "min_zero": [-M, 0.0],
          "pm_3e38": [-3e38, 3e38], "pm_1.7e38": [-1.7e38, 1.7e38], "min_0.65max": [-M, 0.65 * M],
          "m1_max": [-1.0, M], "1e38_max": [1e38, M], "min_m1e38": [-M, -1e38]}
OBSERVERS = {
    "minmax": ({}, {}),
    "minmax_sym": (dict(qscheme="per_tensor_symmetric"), {}),
    "minmax_qint8": (dict(dtype="qint8"), {}),
    "minmax_sym_qint8": (dict(dtype="qint8", qscheme="per_tensor_symmetric"), {}),
    "minmax_rr": (dict(reduce_range=True), {}),
    "moving": ({}, dict(moving=True)),
    "perchannel": ({}, dict(per_channel=True)),
    "perchannel_sym_qint8": (dict(dtype="qint8", qscheme="per_channel_symmetric"),
                             dict(per_channel=True)),
}


def _kw(lib, kw):
    out = {}
    for k, v in kw.items():
        out[k] = getattr(lib, v) if isinstance(v, str) else v
    return out


def _observer(lib, kw, how):
    mod = lib.ao.quantization.observer if hasattr(lib, "ao") else qo
    if how.get("per_channel"):
        return mod.PerChannelMinMaxObserver(ch_axis=0, **_kw(lib, kw))
    if how.get("moving"):
        return mod.MovingAverageMinMaxObserver(**_kw(lib, kw))
    return mod.MinMaxObserver(**_kw(lib, kw))


def _dequantized(x, scale, zp, dtype, per_channel):
    if per_channel:
        return ql.quantize_per_channel(x, scale, zp, 0, dtype).dequantize()
    return ql.quantize_per_tensor(x, float(scale[0]), int(zp[0]), dtype).dequantize()


def _torch_usable(torch, x, ts, tz, dtype, per_channel):
    tdt = getattr(torch, dtype.name if hasattr(dtype, "name") else str(dtype))
    if not np.isfinite(ts.numpy()).all():
        return False
    t = torch.from_numpy(x)
    q = (torch.quantize_per_channel(t, ts.double(), tz, 0, tdt) if per_channel
         else torch.quantize_per_tensor(t, float(ts[0]), int(tz[0]), tdt))
    return bool(np.isfinite(q.dequantize().numpy()).all())


def _assert_covers(x, d, scale):
    assert np.isfinite(d).all(), (x, d, scale)
    s = np.asarray(scale, np.float64).reshape(-1, 1) if d.ndim == 2 else float(scale[0])
    err = np.abs(d.astype(np.float64) - x) / s
    assert err.max() <= 0.5 * (1 + 1e-5), (x, d, scale, err)


@pytest.mark.parametrize("rname", list(RANGES))
@pytest.mark.parametrize("oname", list(OBSERVERS))
def test_observer_qparams_at_the_float32_limit(torch_mod, oname, rname):
    kw, how = OBSERVERS[oname]
    per_channel = how.get("per_channel", False)
    x = np.array(RANGES[rname], F32)
    if per_channel:
        x = np.stack([x, x * F32(0.5), np.array([-1.0, 1.0], F32)])
    theirs, ours = _observer(torch_mod, kw, how), _observer(ql, kw, how)
    theirs(torch_mod.from_numpy(x))
    ours(x)
    ts, tz = theirs.calculate_qparams()
    s, z = ours.calculate_qparams()
    dtype = ours.dtype
    d = _dequantized(x, s, z, dtype, per_channel)
    _assert_covers(x, d, s)
    if _torch_usable(torch_mod, x, ts, tz, dtype, per_channel) and not per_channel:
        np.testing.assert_array_equal(s, ts.numpy())
        np.testing.assert_array_equal(z, tz.numpy())
    elif per_channel:
        for c in range(x.shape[0]):
            ok = _torch_usable(torch_mod, x[c:c + 1], ts[c:c + 1], tz[c:c + 1], dtype, True)
            if ok:
                assert s[c] == ts.numpy()[c] and z[c] == tz.numpy()[c]


def test_symmetric_full_range_keeps_both_ends_within_half_a_step():
    """The case that was clipped: [-M, M] symmetric quint8 (Z = 128).  torch's
    S = M / 127.5 puts -M on level 0, at -128 S = -inf; the old cap S = M / 128 put +M
    on 127 S, one whole S below it.  Now S is torch's raised by one ulp."""
    obs = qo.MinMaxObserver(qscheme=ql.per_tensor_symmetric)
    x = np.array([-M, -1.0, 0.0, 1.0, M], F32)
    obs(x)
    s, z = obs.calculate_qparams()
    assert z[0] == 128 and s[0] == np.nextafter(F32(M) / F32(127.5), F32(np.inf))
    q = ql.quantize_per_tensor(x, float(s[0]), 128, ql.quint8)
    np.testing.assert_array_equal(q.int_repr()[[0, -1]], [1, 255])
    _assert_covers(x, q.dequantize(), s)


@pytest.mark.parametrize("rname", list(RANGES))
@pytest.mark.parametrize("qrange,sym", [((0, 255), False), ((-128, 127), True),
                                        ((0, 127), False), ((-128, 127), False)])
def test_fused_fake_quant_qparams_at_the_float32_limit(torch_mod, rname, qrange, sym):
    """torch.fused_moving_avg_obs_fake_quant (every default QAT qconfig): where its
    output is finite, the same qparams; where it is NaN or +-inf, finite output within
    S/2."""
    torch = torch_mod
    lo, hi = RANGES[rname]
    qmin, qmax = qrange
    s, z = calculate_qparams_fused(lo, hi, qmin, qmax, symmetric=sym)
    x = torch.tensor([lo, hi], dtype=torch.float32)
    one = torch.tensor([1], dtype=torch.uint8)
    ts, tz = torch.tensor([1.0]), torch.tensor([0], dtype=torch.int32)
    y = torch.fused_moving_avg_obs_fake_quant(x, one, one, torch.tensor(float("inf")),
                                              torch.tensor(float("-inf")), ts, tz, 0.01,
                                              qmin, qmax, 0, False, sym)
    if np.isfinite(y.numpy()).all():
        assert s[0] == ts.numpy()[0] and z[0] == tz.numpy()[0]
    fq = ql.fake_quantize_per_tensor_affine(x.numpy(), float(s[0]), int(z[0]), qmin, qmax)
    fq = getattr(fq, "numpy", lambda: fq)()
    _assert_covers(x.numpy().astype(np.float64), np.asarray(fq), s)


@pytest.mark.parametrize("rname", list(RANGES))
@pytest.mark.parametrize("reduce_range", [True, False])
def test_dynamic_qparams_at_the_float32_limit(rname, reduce_range):
    x = np.array(RANGES[rname], F32)
    s, z = choose_qparams_dynamic(x, reduce_range)
    qmax = 127 if reduce_range else 255     # the dynamic kernels clamp to qmax
    q = np.minimum(ql.quantize_per_tensor(x, s, z, ql.quint8).int_repr(), qmax)
    _assert_covers(x, ((q.astype(np.int64) - z) * F32(s)).astype(F32), [s])
