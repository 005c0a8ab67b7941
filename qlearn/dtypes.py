"""Quantized dtypes and quantization schemes.

A quantized dtype names the integer type that stores ``q`` and its range
``[quant_min, quant_max]``; a qscheme says whether one ``(scale, zero_point)`` pair
covers the whole tensor or one pair per channel, and whether the range was chosen
symmetric around zero.  Both are singletons compared by identity, as in PyTorch.
"""
import numpy as np

__all__ = ["QDType", "QScheme", "quint8", "qint8", "qint32", "per_tensor_affine",
           "per_tensor_symmetric", "per_channel_affine", "per_channel_symmetric"]


class QDType:
    """A quantized dtype: storage type and integer range."""

    def __init__(self, name, storage):
        self.name = name
        self.storage = np.dtype(storage)
        info = np.iinfo(self.storage)
        self.quant_min, self.quant_max = int(info.min), int(info.max)
        self.bits = 8 * self.storage.itemsize
        self.is_signed = self.quant_min < 0

    def __repr__(self):
        return f"qlearn.{self.name}"

    def __reduce__(self):  # copies and deep copies keep the singleton
        return self.name


class QScheme:
    """A quantization scheme: per-tensor or per-channel, affine or symmetric."""

    def __init__(self, name):
        self.name = name
        self.is_per_channel = name.startswith("per_channel")
        self.is_symmetric = name.endswith("symmetric")

    def __repr__(self):
        return f"qlearn.{self.name}"

    def __reduce__(self):
        return self.name


quint8 = QDType("quint8", np.uint8)
qint8 = QDType("qint8", np.int8)
qint32 = QDType("qint32", np.int32)

per_tensor_affine = QScheme("per_tensor_affine")
per_tensor_symmetric = QScheme("per_tensor_symmetric")
per_channel_affine = QScheme("per_channel_affine")
per_channel_symmetric = QScheme("per_channel_symmetric")

DTYPES = {d.name: d for d in (quint8, qint8, qint32)}
QSCHEMES = {s.name: s for s in (per_tensor_affine, per_tensor_symmetric,
                                per_channel_affine, per_channel_symmetric)}
