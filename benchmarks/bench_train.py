"""Train a small CNN on the 8x8 digits with qlearn, and the same model with PyTorch.

    python benchmarks/bench_train.py [--epochs 12] [--threads 1] [--batch-size 32]

NumPy's BLAS gets the same number of threads as qlearn's kernels and torch (through
``OPENBLAS_NUM_THREADS``, set before NumPy loads unless already set).

The model is conv(1->16, 3x3, pad 1)-BN-ReLU, conv(16->32, 3x3, pad 1)-BN-ReLU,
2x2 max pooling, flatten, linear(512->10), trained with SGD (momentum 0.9, weight
decay 5e-4) under a cosine learning-rate schedule.  Both libraries start from the same
weights and see the same minibatches in the same order; their epochs alternate (the
machine is shared, so the median epoch time is reported).  The script prints the test
accuracy after every epoch, the median time per epoch of each library and their ratio,
and writes ``benchmarks/results/bench_train.{md,json}``.
"""
import argparse
import os
import sys
import time


def _threads_from_argv(argv):
    """The --threads value, read before NumPy loads so that its BLAS uses as many."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "1"


# NumPy's BLAS (OpenBLAS) sizes its thread pool when it loads; on small matrices extra
# threads cost more than they give, and torch is held to the same count below.
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _threads_from_argv(sys.argv))

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import qlearn as ql  # noqa: E402
from qlearn import nn, optim  # noqa: E402
from qlearn.datasets import DataLoader, load_digits  # noqa: E402
from qlearn.nn import functional as F  # noqa: E402
from qlearn.utils import progress  # noqa: E402

try:
    import torch
except ImportError:  # PyTorch is only the point of comparison
    torch = None


def build_qlearn_model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 10))


def build_torch_model():
    tnn = torch.nn
    return tnn.Sequential(
        tnn.Conv2d(1, 16, 3, padding=1), tnn.BatchNorm2d(16), tnn.ReLU(),
        tnn.Conv2d(16, 32, 3, padding=1), tnn.BatchNorm2d(32), tnn.ReLU(),
        tnn.MaxPool2d(2), tnn.Flatten(), tnn.Linear(32 * 4 * 4, 10))


def qlearn_epoch(model, opt, batches):
    model.train()
    for xb, yb in batches:
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
    return loss.item()


def qlearn_accuracy(model, x, y):
    model.eval()
    with ql.no_grad():
        return float((model(x).argmax(1) == y).mean())


def torch_epoch(model, opt, batches):
    model.train()
    for xb, yb in batches:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
    return loss.item()


def torch_accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--quick", action="store_true", help="3 epochs (a smoke run for CI)")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs = 3

    ql.set_num_threads(args.threads)
    ql.autograd.manual_seed(args.seed)
    data = load_digits(random_state=args.seed)
    loader = DataLoader(data.x_train, data.y_train, batch_size=args.batch_size,
                        shuffle=True, random_state=args.seed)
    epochs_batches = [list(loader) for _ in range(args.epochs)]   # the same for both

    qmodel = build_qlearn_model()
    qopt = optim.SGD(qmodel.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    qsched = optim.lr_scheduler.CosineAnnealingLR(qopt, T_max=args.epochs)
    use_torch = torch is not None and not args.no_torch
    if use_torch:
        torch.set_num_threads(args.threads)
        tmodel = build_torch_model()
        tmodel.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in
                                qmodel.state_dict().items()})
        topt = torch.optim.SGD(tmodel.parameters(), lr=args.lr, momentum=0.9,
                               weight_decay=5e-4)
        tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=args.epochs)
        tx_test, ty_test = torch.tensor(data.x_test), torch.tensor(data.y_test)
        tbatches = [[(torch.tensor(x), torch.tensor(y)) for x, y in b] for b in epochs_batches]

    times = {"qlearn": [], "torch": []}
    accs = {"qlearn": [], "torch": []}
    bar = progress(range(args.epochs), desc="epochs")
    for epoch in bar:
        t0 = time.perf_counter()
        qloss = qlearn_epoch(qmodel, qopt, epochs_batches[epoch])
        times["qlearn"].append(time.perf_counter() - t0)
        qsched.step()
        accs["qlearn"].append(qlearn_accuracy(qmodel, data.x_test, data.y_test))
        line = (f"epoch {epoch + 1:2d}  qlearn: loss {qloss:.4f} acc {accs['qlearn'][-1]:.4f}"
                f" {times['qlearn'][-1]:.3f}s")
        if use_torch:
            t0 = time.perf_counter()
            tloss = torch_epoch(tmodel, topt, tbatches[epoch])
            times["torch"].append(time.perf_counter() - t0)
            tsched.step()
            accs["torch"].append(torch_accuracy(tmodel, tx_test, ty_test))
            line += (f"   torch: loss {tloss:.4f} acc {accs['torch'][-1]:.4f}"
                     f" {times['torch'][-1]:.3f}s")
        bar.write(line)

    # the first epoch includes one-off warm-up in both libraries: leave it out
    med = {k: float(np.median(v[1:] if len(v) > 1 else v)) for k, v in times.items() if v}
    print(f"\nthreads={args.threads} batch_size={args.batch_size} epochs={args.epochs}")
    print(f"qlearn: test accuracy {accs['qlearn'][-1]:.4f}, median {med['qlearn']:.3f} s/epoch")
    records = {"args": vars(args), "times": times, "accuracy": accs, "median_s": med}
    rows = [["qlearn", f"{accs['qlearn'][-1]:.4f}", f"{med['qlearn']:.3f}", "1.00"]]
    if use_torch:
        ratio = med["qlearn"] / med["torch"]
        print(f"torch : test accuracy {accs['torch'][-1]:.4f}, median {med['torch']:.3f} s/epoch")
        print(f"qlearn / torch time per epoch: {ratio:.2f}x")
        records["ratio"] = ratio
        rows[0][3] = f"{ratio:.2f}"
        rows.append(["torch", f"{accs['torch'][-1]:.4f}", f"{med['torch']:.3f}", ""])
    try:
        from _timing import markdown_table, write_results
        table = markdown_table(["library", "test accuracy", "s / epoch (median)",
                                "qlearn / torch"], rows)
        write_results(f"bench_train_{args.threads}t", table, records)
    except ImportError:
        pass
    return accs, med


if __name__ == "__main__":
    main()
