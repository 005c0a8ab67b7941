"""Small real data sets for examples and tests.

:func:`load_digits` gives the 1,797 8x8 handwritten digits that scikit-learn ships
(the UCI optical digits test set), as float32 images shaped (N, 1, 8, 8) in [0, 1],
split into a training and a test set by a reproducible shuffle.  scikit-learn is an
optional dependency used only to read the file it ships.  :class:`DataLoader` yields
minibatches.
"""
from collections import namedtuple

import numpy as np

__all__ = ["load_digits", "Digits", "DataLoader"]

Digits = namedtuple("Digits", ["x_train", "y_train", "x_test", "y_test"])
Digits.__doc__ = """What :func:`load_digits` returns: images (N, 1, 8, 8) and labels (N,).

>>> from qlearn.datasets import Digits
>>> Digits._fields
('x_train', 'y_train', 'x_test', 'y_test')
"""


def load_digits(test_size=0.2, seed=0, stratify=True):
    """The 8x8 digits as ``Digits(x_train, y_train, x_test, y_test)``.

    Images are float32 (N, 1, 8, 8) scaled from 0..16 to [0, 1]; labels are int64.
    The split takes ``test_size`` (a fraction) of each class (``stratify=True``) or of
    the whole set, chosen by a NumPy generator seeded with ``seed``.

    >>> from qlearn.datasets import load_digits
    >>> d = load_digits()
    >>> d.x_train.shape, d.x_test.shape, d.x_train.dtype, d.y_train.dtype
    ((1438, 1, 8, 8), (359, 1, 8, 8), dtype('float32'), dtype('int64'))
    """
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError:
        raise ImportError("qlearn.datasets.load_digits needs scikit-learn, which ships the "
                          "digits data: pip install scikit-learn (or pip install "
                          "'qlearn[demo]')") from None
    if not 0 < test_size < 1:
        raise ValueError(f"`test_size` must be a fraction in (0, 1), got {test_size!r}")
    raw = _sk_load_digits()
    x = (raw.data.reshape(-1, 1, 8, 8) / 16.0).astype(np.float32)
    y = raw.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    if stratify:
        test = []
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            test.extend(idx[:int(round(test_size * idx.size))])
        test = np.sort(np.asarray(test))
    else:
        test = np.sort(rng.permutation(y.size)[:int(round(test_size * y.size))])
    train = np.setdiff1d(np.arange(y.size), test)
    train = rng.permutation(train)
    return Digits(x[train], y[train], x[test], y[test])


class DataLoader:
    """Minibatches ``(x[idx], y[idx])`` of ``batch_size`` over arrays of equal length.

    With ``shuffle`` each pass (each ``iter()``) draws a new order from one generator:
    ``generator`` (a ``numpy.random.Generator``, as PyTorch's DataLoader takes a
    ``torch.Generator``) or, without one, a generator made from ``seed``; either way a
    run is reproducible.  ``drop_last`` drops a final short batch.

    >>> import numpy as np
    >>> from qlearn.datasets import DataLoader
    >>> loader = DataLoader(np.arange(10.0), np.arange(10), batch_size=4)
    >>> [len(xb) for xb, yb in loader], len(loader)
    ([4, 4, 2], 3)
    """

    def __init__(self, *arrays, batch_size=32, shuffle=False, drop_last=False, seed=None,
                 generator=None):
        if not arrays:
            raise ValueError("DataLoader needs at least one array")
        n = len(arrays[0])
        if any(len(a) != n for a in arrays):
            raise ValueError(f"arrays must have the same length, got "
                             f"{[len(a) for a in arrays]}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}")
        self.arrays, self.n = arrays, n
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(f"`generator` must be a numpy.random.Generator, got "
                            f"{type(generator).__name__}")
        self._rng = generator if generator is not None else np.random.default_rng(seed)

    def __len__(self):
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self):
        order = self._rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        for k in range(len(self)):
            idx = order[k * self.batch_size:(k + 1) * self.batch_size]
            batch = tuple(a[idx] for a in self.arrays)
            yield batch if len(batch) > 1 else batch[0]
