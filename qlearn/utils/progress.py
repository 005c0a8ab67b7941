"""A tqdm-style progress bar that is optional: ``tqdm`` when installed, else silence.

>>> from qlearn.utils import progress
>>> total = 0
>>> for i in progress(range(3), desc="epoch", disable=True):
...     total += i
>>> total
3
"""
__all__ = ["progress"]


class _Silent:
    """Stands in for a tqdm bar: iterates, and ignores every call a loop makes."""

    def __init__(self, iterable=None, **kwargs):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable if self.iterable is not None else ())

    def __len__(self):
        return len(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_postfix(self, *args, **kwargs):
        """Does nothing (tqdm shows the values after the bar)."""
        pass

    def set_description(self, *args, **kwargs):
        """Does nothing (tqdm sets the bar's label)."""
        pass

    def update(self, n=1):
        """Does nothing (tqdm advances the bar by ``n``)."""
        pass

    def write(self, s):
        """Print ``s`` (tqdm prints it above the bar)."""
        print(s)

    def close(self):
        """Does nothing (tqdm closes the bar)."""
        pass


def progress(iterable=None, desc=None, total=None, leave=True, disable=False, **kwargs):
    """Wrap ``iterable`` in a ``tqdm`` progress bar if tqdm is installed.

    Without tqdm (an optional dependency: ``pip install tqdm``), or with
    ``disable=True``, the iterable is returned in an object with the same methods
    (``set_postfix``, ``update``, ``close``, ...) that do nothing.

    >>> from qlearn.utils import progress
    >>> bar = progress(range(2), disable=True)
    >>> bar.set_postfix(loss=0.1); list(bar)
    [0, 1]
    """
    if not disable:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            return tqdm(iterable, desc=desc, total=total, leave=leave, **kwargs)
    return _Silent(iterable)
