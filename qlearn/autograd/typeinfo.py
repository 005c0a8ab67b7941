"""``ql.iinfo`` and ``ql.finfo``: the limits of the integer and float dtypes, as
``torch.iinfo`` / ``torch.finfo`` report them.

>>> import qlearn as ql
>>> ql.iinfo(ql.int8)
iinfo(min=-128, max=127, dtype=int8)
>>> ql.iinfo(ql.uint8).max, ql.finfo(ql.float32).eps
(255, 1.1920928955078125e-07)
"""
import numpy as np

from ..dtypes import QDType
from .promotion import as_dtype

__all__ = ["iinfo", "finfo"]


class iinfo:  # noqa: N801 (torch.iinfo)
    """Range of an integer dtype: ``min``, ``max``, ``bits`` and ``dtype`` (its name).

    A quantized dtype (``ql.qint8``) reports the range of the integers it stores.

    >>> import qlearn as ql
    >>> info = ql.iinfo(ql.qint8)
    >>> info.min, info.max, info.bits
    (-128, 127, 8)
    """

    def __init__(self, type):  # noqa: A002 (torch's argument name)
        storage = type.storage if isinstance(type, QDType) else as_dtype(type, "type").numpy_dtype
        if storage.kind not in "iu":
            raise TypeError(f"`type` must be an integer dtype, got {type!r}")
        info = np.iinfo(storage)
        self.min, self.max, self.bits = int(info.min), int(info.max), int(info.bits)
        self.dtype = type.name if isinstance(type, QDType) else storage.name

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


class finfo:  # noqa: N801 (torch.finfo)
    r"""Limits of a float dtype: ``eps`` (the gap above 1), ``min``, ``max``, ``tiny``
    (= ``smallest_normal``), ``resolution`` (:math:`10^{-\text{digits}}`) and ``bits``.

    >>> import qlearn as ql
    >>> info = ql.finfo(ql.float16)
    >>> info.resolution, info.max, info.eps
    (0.001, 65504.0, 0.0009765625)
    """

    def __init__(self, type=None):  # noqa: A002 (torch's argument name)
        storage = np.dtype(np.float32) if type is None else as_dtype(type, "type").numpy_dtype
        if storage.kind != "f":
            raise TypeError(f"`type` must be a floating-point dtype, got {type!r}")
        info = np.finfo(storage)
        self.bits = int(info.bits)
        self.eps, self.min, self.max = float(info.eps), float(info.min), float(info.max)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -int(info.precision)
        self.dtype = storage.name

    def __repr__(self):
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
                f"tiny={self.tiny:g}, dtype={self.dtype})")
