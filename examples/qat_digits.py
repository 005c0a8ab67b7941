"""Quantization-aware training of the digits CNN with Distiller's quantizers.

Trains the float CNN (conv-bn-relu x2, pool, linear), then fine-tunes copies of it with
4-bit DoReFa weights and 4-bit PACT activations (PACTQuantizer; Adam, learning rate
1e-3 halved after each epoch), once with every layer at 4 bits and once with the default
of 8-bit first and last layers, and prints the test accuracies next to the float
model's.

    python examples/qat_digits.py [--float-epochs 8] [--qat-epochs 4] [--seed 0]
"""
import argparse
import copy
import time

import qlearn as ql
import qlearn.nn as nn
import qlearn.nn.functional as F
import qlearn.optim as optim
from qlearn.datasets import DataLoader, load_digits
from qlearn.quantizers import PACTQuantizer


def digits_cnn(seed):
    ql.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 16, 10))


def train(model, opt, data, epochs, seed, gamma=1.0):
    """Adam over shuffled minibatches of 64; the learning rate times ``gamma`` after
    each epoch (QAT fine-tuning halves it: the rounding makes late steps noisy)."""
    loader = DataLoader(data.x_train, data.y_train, batch_size=64, shuffle=True,
                        random_state=seed)
    sched = optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(model(ql.tensor(xb)), yb).backward()
            opt.step()
        sched.step()


def accuracy(model, x, y):
    model.eval()
    with ql.no_grad():
        pred = model(ql.tensor(x)).numpy().argmax(1)
    model.train()
    return float((pred == y).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--float-epochs", type=int, default=8)
    ap.add_argument("--qat-epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = load_digits()
    t0 = time.perf_counter()
    model = digits_cnn(args.seed)
    train(model, optim.Adam(model.parameters(), lr=3e-3), data, args.float_epochs, args.seed)
    print(f"float32                                  test accuracy "
          f"{accuracy(model, data.x_test, data.y_test):.4f}")
    for label, keep in (("4-bit everywhere", None), ("4-bit, first/last layers 8-bit", 8)):
        qmodel = copy.deepcopy(model)
        quantizer = PACTQuantizer(qmodel, bits_activations=4, bits_weights=4,
                                  act_clip_init_val=3.0, keep_first_last=keep)
        quantizer.prepare_model()
        before = accuracy(qmodel, data.x_test, data.y_test)
        train(qmodel, optim.Adam(qmodel.parameters(), lr=1e-3), data, args.qat_epochs,
              args.seed + 10, gamma=0.5)
        alphas = [round(float(m.alpha.data[0]), 3) for m in qmodel.modules()
                  if hasattr(m, "alpha")]
        print(f"DoReFa W4 / PACT A4, {label:<31} test accuracy "
              f"{accuracy(qmodel, data.x_test, data.y_test):.4f} (before QAT {before:.4f}, "
              f"PACT alphas {alphas})")
    print(f"({time.perf_counter() - t0:.1f} s, {ql.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
