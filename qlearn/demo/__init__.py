"""qlearn's main demonstration: ``python -m qlearn.demo``.

It walks the path the docs teach, on real data, and prints what happens at each step:
quantize a tensor and measure the error, calibrate observers on heavy-tailed data, train
a small CNN on handwritten digits, fine-tune it at 4 bits with DoReFa and PACT, and run
an int8 linear layer against NumPy's float32.
"""
import sys
import time

import numpy as np

import qlearn as ql


def section(title):
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)))


def demo_quantized_tensor():
    section("1. The affine map  q = round(x / S + Z),  x ~ S (q - Z)")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    scale = float((x.max() - x.min()) / 255)
    zero_point = int(round(-x.min() / scale))
    q = ql.quantize_per_tensor(x, scale, zero_point, ql.quint8)
    print(q)
    err = np.abs(q.dequantize() - x)
    print(f"max |x - S(q - Z)| = {err.max():.5f}  (<= S/2 = {scale / 2:.5f})")
    print(f"memory: float32 {x.nbytes} bytes -> quint8 {q.nbytes} bytes "
          f"({x.nbytes // q.nbytes}x smaller)")

    section("Per-channel quantization of a weight with uneven rows")
    w = rng.standard_normal((3, 8)).astype(np.float32) * np.array([[0.1], [1.0], [10.0]],
                                                                  np.float32)
    s_t = float(np.abs(w).max() / 127)
    qt = ql.quantize_per_tensor(w, s_t, 0, ql.qint8)
    s_c = np.abs(w).max(axis=1) / 127
    qc = ql.quantize_per_channel(w, s_c, np.zeros(3, np.int64), 0, ql.qint8)
    for name, qq in (("per-tensor ", qt), ("per-channel", qc)):
        rel = np.abs(qq.dequantize() - w).mean(axis=1) / np.abs(w).mean(axis=1)
        print(f"{name}: mean relative error by row = {np.array2string(rel, precision=4)}")


def demo_observers():
    from qlearn.quantization import (
        EntropyObserver,
        HistogramObserver,
        MinMaxObserver,
        MSEObserver,
        PercentileObserver,
    )
    section("2. Calibration: observers choose S and Z from data")
    print("Heavy-tailed activations in 8 batches; each observer's (S, Z) quantizes them all.")
    print("The searching observers (Histogram, MSE) adapt to the tail; fixed clipping rules")
    print("(Percentile, Entropy) help on Laplace data and hurt when the tail is fat:")
    rng = np.random.default_rng(1)
    for name, draw in (("Laplace", lambda: rng.laplace(size=16384)),
                       ("Student-t(3)", lambda: rng.standard_t(3, size=16384))):
        batches = [draw().astype(np.float32) for _ in range(8)]
        data = np.concatenate(batches)
        print(f"  {name}:")
        for obs in (MinMaxObserver(), HistogramObserver(), PercentileObserver(),
                    MSEObserver(), EntropyObserver()):
            for b in batches:
                obs(b)
            scale, zp = obs.calculate_qparams()
            q = ql.quantize_per_tensor(data, float(scale[0]), int(zp[0]), ql.quint8)
            mse = float(np.mean((q.dequantize() - data) ** 2))
            lo, hi = scale[0] * (0 - zp[0]), scale[0] * (255 - zp[0])
            print(f"  {type(obs).__name__:>20}: range [{lo:7.2f}, {hi:6.2f}]  "
                  f"quantization MSE {mse:.2e}")


def digits_cnn():
    from qlearn import nn
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 10))


def train(model, opt, data, epochs, desc):
    import qlearn.nn.functional as F
    from qlearn.datasets import DataLoader
    from qlearn.utils.progress import progress
    loader = DataLoader(data.x_train, data.y_train, batch_size=64, shuffle=True, seed=0)
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        bar = progress(loader, desc=f"{desc} epoch {epoch + 1}", leave=False,
                       disable=not sys.stderr.isatty())  # no bars in logs
        for xb, yb in bar:
            loss = F.cross_entropy(model(ql.tensor(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"  {desc} epoch {epoch + 1}: loss {loss.item():.3f}  test accuracy "
              f"{accuracy(model, data):.3f}  ({time.perf_counter() - t0:.2f} s)")


def accuracy(model, data):
    model.eval()
    with ql.no_grad():
        pred = model(ql.tensor(data.x_test)).numpy().argmax(1)
    return float((pred == data.y_test).mean())


def demo_training_and_qat():
    import copy

    from qlearn import optim
    from qlearn.datasets import load_digits
    from qlearn.quantizers import PACTQuantizer
    try:
        data = load_digits()
    except ImportError as exc:  # scikit-learn ships the digits; the demo extra installs it
        print(f"(skipping training: {exc})")
        return
    section("3. Train a small CNN on 8x8 digits with qlearn's autograd")
    ql.autograd.manual_seed(0)
    model = digits_cnn()
    train(model, optim.Adam(model.parameters(), lr=3e-3), data, 5, "float")
    float_acc = accuracy(model, data)

    section("4. Quantization-aware training: 4-bit DoReFa weights, 4-bit PACT activations")
    qmodel = copy.deepcopy(model)
    PACTQuantizer(qmodel, bits_activations=4, bits_weights=4, act_clip_init_val=3.0,
                  keep_first_last=None).prepare_model()
    print(f"  right after quantizing to 4 bits: test accuracy {accuracy(qmodel, data):.3f}")
    train(qmodel, optim.Adam(qmodel.parameters(), lr=1e-3), data, 2, "QAT")
    alphas = [round(float(m.alpha.data[0]), 2) for m in qmodel.modules() if hasattr(m, "alpha")]
    print(f"  float32 {float_acc:.3f} -> 4-bit {accuracy(qmodel, data):.3f} "
          f"(learned PACT clip values {alphas})")
    return model, data


def demo_int8():
    import qlearn.nn.quantized as nnq
    from qlearn.quantization import MinMaxObserver, PerChannelMinMaxObserver
    section("5. Int8 inference: a 1024 x 1024 linear layer, uint8 x int8 -> int32")
    rng = np.random.default_rng(2)
    w = (rng.standard_normal((1024, 1024)) / 32).astype(np.float32)
    b = (rng.standard_normal(1024) / 10).astype(np.float32)
    x = np.maximum(rng.standard_normal((256, 1024)), 0).astype(np.float32)  # ReLU outputs
    y = x @ w.T + b

    # calibrate: per-channel symmetric weights, affine 7-bit activations (reduce_range),
    # as the x86 default qconfig does
    w_obs = PerChannelMinMaxObserver(dtype=ql.qint8, qscheme=ql.per_channel_symmetric)
    a_obs, o_obs = MinMaxObserver(reduce_range=True), MinMaxObserver()
    w_obs(w), a_obs(x), o_obs(y)
    ws, wz = w_obs.calculate_qparams()
    (sa,), (za,) = a_obs.calculate_qparams()
    (so,), (zo,) = o_obs.calculate_qparams()
    qlin = nnq.Linear(1024, 1024)
    qlin.set_weight_bias(ql.quantize_per_channel(w, ws, wz, 0, ql.qint8), b)
    qlin.scale, qlin.zero_point = float(so), int(zo)
    qx = ql.quantize_per_tensor(x, float(sa), int(za), ql.quint8)

    y_q = qlin(qx).dequantize()
    rel = np.linalg.norm(y_q - y) / np.linalg.norm(y)
    sqnr = 20 * np.log10(np.linalg.norm(y) / np.linalg.norm(y_q - y))
    t_f = min(_seconds(lambda: x @ w.T + b) for _ in range(5))
    t_q = min(_seconds(lambda: qlin(qx)) for _ in range(5))
    gops = 2 * 256 * 1024 * 1024 / 1e9
    print(f"  relative error {rel:.4f} (SQNR {sqnr:.1f} dB); weights {w.nbytes >> 10} KiB -> "
          f"{qlin.weight().nbytes >> 10} KiB")
    print(f"  NumPy float32: {gops / t_f:6.1f} GOP/s   qlearn int8: {gops / t_q:6.1f} GOP/s   "
          f"({t_f / t_q:.1f}x, {ql.get_num_threads()} threads)")


def _seconds(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    print(f"qlearn {ql.__version__}: quantization from scratch")
    ql.show_config()
    demo_quantized_tensor()
    demo_observers()
    demo_training_and_qat()
    demo_int8()
    return 0


if __name__ == "__main__":
    sys.exit(main())
