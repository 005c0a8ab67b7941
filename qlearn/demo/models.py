"""The demonstration's models and training loop, on the 8x8 digits.

:func:`digits_cnn` is the small plain CNN the docs pages train (conv-bn-relu twice,
pooling, a linear head, in an ``nn.Sequential``).  :class:`DigitsNet` is the model the
demonstration quantizes: the same blocks with the stubs of eager mode placed and a
residual add through a :class:`~qlearn.nn.quantized.FloatFunctional`, so that one
model goes through every workflow unchanged.
"""
import sys
import time

import numpy as np

from .. import autograd, nn, optim
from ..autograd import no_grad
from ..datasets import DataLoader
from ..nn import functional as F
from ..nn.intrinsic import qat as nniqat
from ..nn.quantized import FloatFunctional
from ..quantization import DeQuantStub, QuantStub
from ..utils.progress import progress

__all__ = ["digits_cnn", "DigitsNet", "FUSE", "train", "fit", "accuracy", "predict"]


def digits_cnn():
    """The docs' plain digits CNN: conv-bn-relu (1->16), conv-bn-relu (16->32), 2x2 max
    pooling, flatten, linear (512->10), as one ``nn.Sequential`` (fusable as
    ``[["0", "1", "2"], ["3", "4", "5"]]``).

    >>> from qlearn.demo import digits_cnn
    >>> model = digits_cnn()
    >>> [type(m).__name__ for m in model][:3], model(np.zeros((2, 1, 8, 8), np.float32)).shape
    (['Conv2d', 'BatchNorm2d', 'ReLU'], (2, 10))
    """
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 10))


#: The conv-bn-relu runs of :class:`DigitsNet` that ``fuse_modules`` fuses.
FUSE = [["conv1", "bn1", "relu1"], ["conv2", "bn2", "relu2"]]


class DigitsNet(nn.Module):
    """The demonstration's residual CNN for 8x8 digits.

    ``quant`` -> conv-bn-relu (1->c) -> conv-bn-relu (c->c) added to its input by
    ``skip`` (a ``FloatFunctional``, so the add gets an observer and becomes an int8
    add) -> relu -> 2x2 max pooling -> flatten -> linear (16c->10) -> ``dequant``.
    The ReLU after the add is a module of its own, so that PACT can learn its clip
    value too.

    Parameters
    ----------
    width : int
        The channels ``c`` of both convolutions.

    Examples
    --------
    >>> from qlearn.demo import DigitsNet
    >>> net = DigitsNet(width=8).eval()
    >>> net(np.zeros((3, 1, 8, 8), np.float32)).shape
    (3, 10)
    """

    def __init__(self, width=32):
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
            raise ValueError(f"`width` must be a positive integer, got {width!r}")
        c = int(width)
        self.quant = QuantStub()
        self.conv1, self.bn1, self.relu1 = nn.Conv2d(1, c, 3, padding=1), \
            nn.BatchNorm2d(c), nn.ReLU()
        self.conv2, self.bn2, self.relu2 = nn.Conv2d(c, c, 3, padding=1), \
            nn.BatchNorm2d(c), nn.ReLU()
        self.skip = FloatFunctional()
        self.relu3 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c * 16, 10)
        self.dequant = DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu3(self.skip.add(x, self.relu2(self.bn2(self.conv2(x)))))
        x = self.fc(self.flatten(self.pool(x)))
        return self.dequant(x)


def _bar_enabled(show):
    """Bars only on a terminal unless asked: a log file gets no carriage returns."""
    return sys.stderr.isatty() if show is None else bool(show)


def predict(model, x, batch_size=256):
    """Class predictions of ``model`` (eval mode, no autograd) for images ``x``,
    ``batch_size`` at a time.

    >>> from qlearn import nn
    >>> from qlearn.demo.models import predict
    >>> m = nn.Linear(3, 2)
    >>> m.weight.data[:] = [[1, 0, 0], [0, 1, 0]]
    >>> predict(m, np.array([[1.0, 0, 0], [0, 2.0, 0], [3.0, 0, 0]], np.float32), 2)
    array([0, 1, 0])
    """
    model.eval()
    with no_grad():
        out = [np.asarray(getattr(o, "data", o))
               for o in (model(x[i:i + batch_size]) for i in range(0, len(x), batch_size))]
    return np.concatenate(out).argmax(1)


def accuracy(model, data):
    """The test accuracy of ``model`` on ``data`` (a :class:`~qlearn.datasets.Digits`),
    a fraction in [0, 1]; leaves the model in eval mode.

    >>> from qlearn import nn
    >>> from qlearn.datasets import Digits
    >>> from qlearn.demo import accuracy
    >>> m = nn.Linear(2, 2)
    >>> m.weight.data[:] = np.eye(2)
    >>> x = np.array([[1.0, 0], [0, 1.0], [1.0, 0]], np.float32)
    >>> accuracy(m, Digits(x, None, x, np.array([0, 1, 1])))
    0.6666666666666666
    """
    return float((predict(model, data.x_test) == data.y_test).mean())


def fit(model, opt, data, epochs, desc, scheduler=None, freeze_bn_at=None, random_state=0,
        batch_size=64, show_progress=None, log=print):
    """Train ``model`` with cross entropy for ``epochs`` passes over ``data.x_train``.

    One progress bar per epoch (over minibatches of ``batch_size``); after each epoch
    ``log`` gets a line with the mean loss, the test accuracy and the time.
    ``scheduler`` (a learning-rate scheduler) steps once per epoch; from epoch
    ``freeze_bn_at`` on, the QAT batch norms use their running statistics
    (:func:`qlearn.nn.intrinsic.qat.freeze_bn_stats`).

    Returns
    -------
    list of dict
        Per epoch: ``epoch``, ``loss`` (mean over batches), ``accuracy``, ``seconds``.

    Examples
    --------
    >>> import qlearn as ql
    >>> from qlearn import nn, optim
    >>> from qlearn.datasets import Digits
    >>> from qlearn.demo import fit
    >>> from qlearn.autograd.random import get_generator
    >>> get_generator().bit_generator.state = np.random.default_rng(0).bit_generator.state
    >>> x = np.random.default_rng(0).random((64, 4)).astype(np.float32)
    >>> y = (x[:, 0] > 0.5).astype(np.int64)
    >>> m = nn.Linear(4, 2)
    >>> hist = fit(m, optim.SGD(m.parameters(), lr=0.5), Digits(x, y, x, y), 20, "toy",
    ...            log=None, show_progress=False)
    >>> hist[-1]["loss"] < hist[0]["loss"], hist[-1]["accuracy"] > 0.8
    (True, True)
    """
    loader = DataLoader(data.x_train, data.y_train, batch_size=batch_size, shuffle=True,
                        generator=np.random.default_rng(random_state))
    history = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        if freeze_bn_at is not None and epoch >= freeze_bn_at:
            model.apply(nniqat.freeze_bn_stats)
        losses = []
        bar = progress(loader, desc=f"{desc} {epoch + 1}/{epochs}", leave=False,
                       disable=not _bar_enabled(show_progress))
        for xb, yb in bar:
            loss = F.cross_entropy(model(autograd.tensor(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if scheduler is not None:
            scheduler.step()
        acc = accuracy(model, data)
        seconds = time.perf_counter() - t0
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "accuracy": acc,
                        "seconds": seconds})
        if log is not None:
            log(f"  {desc:<6} epoch {epoch + 1:>2}/{epochs}   loss {np.mean(losses):.3f}   "
                f"test accuracy {100 * acc:5.2f} %   {seconds:5.1f} s")
    model.eval()
    return history


def train(model, opt, data, epochs, desc):
    """Train ``model`` with ``opt`` for ``epochs`` epochs on the digits, printing a line
    per epoch (the docs pages' short form of :func:`fit`: batches of 64, no schedule)."""
    fit(model, opt, data, epochs, desc)


def sgd_schedule(model, lr, epochs):
    r"""SGD with momentum 0.9 and weight decay 5e-4, the learning rate annealed from
    ``lr`` to 0 over ``epochs`` epochs on a cosine,
    :math:`\eta_t = \tfrac{\eta_0}{2}\big(1 + \cos(\pi t / T)\big)`; returns
    ``(optimizer, scheduler)``.

    >>> from qlearn import nn
    >>> from qlearn.demo.models import sgd_schedule
    >>> opt, sched = sgd_schedule(nn.Linear(2, 2), 0.1, 4)
    >>> for _ in range(2):
    ...     opt.step(); sched.step()
    >>> round(opt.param_groups[0]["lr"], 6)             # half way: lr / 2
    0.05
    """
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    return opt, optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(int(epochs), 1))
