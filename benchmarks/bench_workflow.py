"""The eager quantization workflow end to end on a residual digits CNN.

    python benchmarks/bench_workflow.py [--epochs 10] [--qat-epochs 3] [--batch-size 128]
                                        [--quick]

The float model: QuantStub, conv-bn-relu (1->32), a residual block (conv-bn-relu,
conv-bn, added to its input through ``FloatFunctional.add_relu``), 2x2 max pooling,
flatten, linear (512->10), DeQuantStub; trained with SGD (momentum 0.9, cosine schedule)
on the 8x8 digits.  From its trained weights the script builds

* **fp32**: the float model (batch norms as layers, eval mode), and the same with the
  batch norms folded by ``fuse_modules`` (what fusion alone gives);
* **dynamic**: ``quantize_dynamic(model, {nn.Linear})`` (int8 weights, float activations);
* **static**: ``fuse_modules`` -> ``prepare`` -> calibration on 256 training images ->
  ``convert``, with four calibrators: per-tensor MinMax, per-channel MinMax, Histogram
  (PyTorch's x86 default) and Entropy (KL divergence, TensorRT's; with 2048 and with 512
  histogram bins), all with 7-bit activations
  (``reduce_range``) and symmetric qint8 weights;
* **QAT**: ``fuse_modules_qat`` -> ``prepare_qat`` (x86 QAT qconfig) -> fine-tuning from
  the float weights (batch-norm statistics frozen for the last epoch) -> ``convert``;

and prints, for each: test accuracy, the size of its ``state_dict`` saved with
``qlearn.save``, the latency of one test batch at one thread (contenders timed
alternately, medians over rounds, see ``_timing.py``; the best of ``--repeats`` such
runs, as the machine is shared) and the speedup over fp32.  The table goes to
``benchmarks/results/bench_workflow.{md,json}`` and, with the command line, to
``docs/results/bench_workflow.txt`` (shown on the docs' fusion page); ``--quick`` (CI)
trains less, times fewer rounds and writes nothing.
"""
import argparse
import copy
import io
import os
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):   # before NumPy loads
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import markdown_table, time_alternating, write_results  # noqa: E402

import qlearn as ql  # noqa: E402
import qlearn.nn.quantized as nnq  # noqa: E402
import qlearn.quantization as tq  # noqa: E402
from qlearn import nn, optim  # noqa: E402
from qlearn.datasets import DataLoader, load_digits  # noqa: E402
from qlearn.nn import functional as F  # noqa: E402
from qlearn.nn.intrinsic import qat as nniqat  # noqa: E402
from qlearn.quantization.observer import (  # noqa: E402
    MinMaxObserver,
    PerChannelMinMaxObserver,
    default_weight_observer,
)

WIDTH = 32
DOCS_TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs",
                          "results", "bench_workflow.txt")
FUSE = [["conv1", "bn1", "relu1"], ["block.conv_a", "block.bn_a", "block.relu_a"],
        ["block.conv_b", "block.bn_b"]]


class Residual(nn.Module):
    """relu(x + bn(conv(relu(bn(conv(x)))))), the add through a FloatFunctional."""

    def __init__(self, c):
        super().__init__()
        self.conv_a, self.bn_a, self.relu_a = nn.Conv2d(c, c, 3, padding=1), \
            nn.BatchNorm2d(c), nn.ReLU()
        self.conv_b, self.bn_b = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.skip_add = nnq.FloatFunctional()

    def forward(self, x):
        y = self.relu_a(self.bn_a(self.conv_a(x)))
        return self.skip_add.add_relu(x, self.bn_b(self.conv_b(y)))


class DigitsNet(nn.Module):
    def __init__(self, c=WIDTH):
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv1, self.bn1, self.relu1 = nn.Conv2d(1, c, 3, padding=1), \
            nn.BatchNorm2d(c), nn.ReLU()
        self.block = Residual(c)
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c * 16, 10)
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        x = self.block(self.relu1(self.bn1(self.conv1(x))))
        x = self.fc(self.flatten(self.pool(x)))
        return self.dequant(x)


def train(model, data, epochs, lr, seed, batch_size=32, freeze_bn_at=None):
    loader = DataLoader(data.x_train, data.y_train, batch_size=batch_size, shuffle=True,
                        random_state=seed)
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    for epoch in range(epochs):
        model.train()                  # a frozen batch norm stays in eval mode
        if freeze_bn_at is not None and epoch >= freeze_bn_at:
            model.apply(nniqat.freeze_bn_stats)
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(model(ql.tensor(xb)), yb).backward()
            opt.step()
        sched.step()
    return model.eval()


def predict(model, x, batch_size):
    with ql.no_grad():
        out = [np.asarray(model(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
    return np.concatenate(out).argmax(1)


def accuracy(model, data, batch_size):
    return float((predict(model, data.x_test, batch_size) == data.y_test).mean())


def model_bytes(model):
    buf = io.BytesIO()
    ql.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def static_quantize(fp32, activation, weight, calib):
    model = tq.fuse_modules(copy.deepcopy(fp32).eval(), FUSE)
    model.qconfig = tq.QConfig(activation=activation, weight=weight)
    tq.prepare(model, inplace=True)
    with ql.no_grad():
        for i in range(0, len(calib), 64):
            model(calib[i:i + 64])
    return tq.convert(model)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--qat-epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128, help="the timed test batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs; best median kept")
    ap.add_argument("--quick", action="store_true", help="short training, few timing rounds")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.qat_epochs, args.rounds, args.repeats = 3, 1, 3, 1
    t_start = time.perf_counter()
    ql.set_num_threads(1)
    ql.manual_seed(args.seed)
    data = load_digits(random_state=args.seed)
    calib = data.x_train[:256]

    fp32 = train(DigitsNet(), data, args.epochs, 0.05, args.seed)
    reduce7 = dict(reduce_range=True)
    per_channel_w = PerChannelMinMaxObserver.with_args(dtype=ql.qint8,
                                                       qscheme=ql.per_channel_symmetric)
    models = {"fp32": fp32,
              "fp32, BN folded": tq.fuse_modules(fp32, FUSE),
              "dynamic (Linear)": tq.quantize_dynamic(fp32, {nn.Linear}, dtype=ql.qint8)}
    calibrators = {
        "static, per-tensor MinMax": (MinMaxObserver.with_args(**reduce7),
                                      default_weight_observer),
        "static, per-channel MinMax": (MinMaxObserver.with_args(**reduce7), per_channel_w),
        "static, Histogram": (tq.HistogramObserver.with_args(**reduce7), per_channel_w),
        # KL search starts at 128 of the histogram's bins: with 2048 bins it may clip
        # the range 16-fold, which the zero-heavy ReLU outputs of these images invite
        "static, Entropy (2048 bins)": (tq.EntropyObserver.with_args(**reduce7),
                                        per_channel_w),
        "static, Entropy (512 bins)": (tq.EntropyObserver.with_args(bins=512, **reduce7),
                                       per_channel_w),
    }
    for name, (act, wt) in calibrators.items():
        models[name] = static_quantize(fp32, act, wt, calib)

    qat = tq.fuse_modules_qat(copy.deepcopy(fp32).train(), FUSE)
    qat.qconfig = tq.get_default_qat_qconfig("x86")
    tq.prepare_qat(qat, inplace=True)
    train(qat, data, args.qat_epochs, 0.005, args.seed + 1,
          freeze_bn_at=max(args.qat_epochs - 1, 0))
    models["QAT"] = tq.convert(qat.eval())

    xb = np.ascontiguousarray(data.x_test[:args.batch_size])
    runs = {}
    for name, m in models.items():
        def run(m=m):
            with ql.no_grad():
                return m(xb)
        runs[name] = run
    # the machine is shared: of a few alternating runs, keep each contender's best median
    repeats = [time_alternating(runs, rounds=args.rounds,
                                min_seconds=0.02 if args.quick else 0.1)
               for _ in range(args.repeats)]
    times = {name: min(r[name] for r in repeats) for name in runs}
    rows, records = [], {}
    acc_fp32 = accuracy(fp32, data, args.batch_size)
    for name, m in models.items():
        acc = accuracy(m, data, args.batch_size)
        nbytes = model_bytes(m)
        speedup = times["fp32"] / times[name]
        records[name] = dict(accuracy=acc, bytes=nbytes, seconds_per_batch=times[name],
                             speedup=speedup)
        rows.append([name, f"{100 * acc:.2f}", f"{100 * (acc - acc_fp32):+.2f}",
                     f"{nbytes / 1024:.1f}", f"{1e3 * times[name]:.2f}", f"{speedup:.2f}x"])
    table = markdown_table(["model", "test accuracy (%)", "vs fp32 (points)", "state_dict KiB",
                            f"ms / batch of {args.batch_size} (1 thread)",
                            "speedup over fp32"], rows)
    print(table)
    print(f"\n{len(data.y_test)} test images; fp32 trained {args.epochs} epochs, QAT "
          f"{args.qat_epochs}; {time.perf_counter() - t_start:.1f} s in all")
    records["args"] = vars(args)
    if not args.quick:
        write_results("bench_workflow", table, records)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        command = "python benchmarks/bench_workflow.py " + " ".join(
            a for a in (argv if argv is not None else sys.argv[1:]))
        with open(DOCS_TABLE, "w") as f:
            f.write(f"{table}\n\nMeasured with `{command.strip()}` on "
                    f"{time.strftime('%Y-%m-%d')} ({os.cpu_count()} cores, load average "
                    f"{load:.1f}); {len(data.y_test)} test images, fp32 trained "
                    f"{args.epochs} epochs, QAT fine-tuned {args.qat_epochs}.\n")
    return records


if __name__ == "__main__":
    main()
