"""qlearn's main demonstration: ``python -m qlearn.demo``.

It walks the path the docs teach, on real data, and prints what happens at each step:
quantize a tensor and measure the error, calibrate observers, and (when the other parts
of qlearn are present) train a small CNN on handwritten digits and quantize it.
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
    try:
        from qlearn.quantization.observer import HistogramObserver, MinMaxObserver
    except ImportError:
        return
    section("2. Calibration: observers choose S and Z from data")
    rng = np.random.default_rng(1)
    batches = [np.concatenate([rng.standard_normal(4096), rng.standard_normal(8) * 30])
               .astype(np.float32) for _ in range(4)]
    data = np.concatenate(batches)
    for obs in (MinMaxObserver(), HistogramObserver()):
        for b in batches:
            obs(b)
        scale, zp = obs.calculate_qparams()
        q = ql.quantize_per_tensor(data, float(scale[0]), int(zp[0]), ql.quint8)
        mse = float(np.mean((q.dequantize() - data) ** 2))
        print(f"{type(obs).__name__:>18}: scale={float(scale[0]):.5f} zero_point={int(zp[0]):3d}"
              f"  quantization MSE={mse:.6f}")


def demo_training():
    try:
        import qlearn.nn.functional as F
        from qlearn import nn, optim
        from qlearn.datasets import load_digits
    except ImportError:
        return
    try:
        data = load_digits()
    except ImportError as exc:
        print(f"(skipping the training demo: {exc})")
        return
    section("3. Train a small CNN on 8x8 digits with qlearn's autograd")
    x_train, y_train, x_test, y_test = data
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 10))
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)
    for epoch in range(5):
        t0 = time.perf_counter()
        model.train()
        order = rng.permutation(len(x_train))
        for i in range(0, len(order), 64):
            idx = order[i:i + 64]
            loss = F.cross_entropy(model(ql.tensor(x_train[idx])), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with ql.no_grad():
            acc = float((model(ql.tensor(x_test)).data.argmax(1) == y_test).mean())
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}  test accuracy {acc:.3f}  "
              f"({time.perf_counter() - t0:.2f} s)")


def main():
    print(f"qlearn {ql.__version__}: quantization from scratch")
    ql.show_config()
    demo_quantized_tensor()
    demo_observers()
    demo_training()
    return 0


if __name__ == "__main__":
    sys.exit(main())
