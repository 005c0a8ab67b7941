"""Quantized dtypes and quantization schemes.

A quantized dtype names the integer type that stores ``q`` and its range
``[quant_min, quant_max]``; a qscheme says whether one ``(scale, zero_point)`` pair
covers the whole tensor or one pair per channel, and whether the range was chosen
symmetric around zero.  Both are singletons compared by identity, as in PyTorch.
"""
import numpy as np

__all__ = ["QDType", "QScheme", "quint8", "qint8", "qint32", "quint4x2", "per_tensor_affine",
           "per_tensor_symmetric", "per_channel_affine", "per_channel_symmetric",
           "per_channel_affine_float_qparams",
           "DType", "float16", "float32", "float64", "int8", "uint8", "int16", "int32",
           "int64", "bool_", "half", "double", "short", "long"]


class QDType:
    """A quantized dtype: storage type, bits per value and integer range.

    ``bits`` is the width of one value: 8 or 32, or 4 for :data:`quint4x2`, whose
    values ``0..15`` are stored one per byte in a QTensor and two per byte in what
    ``int_repr()`` returns (PyTorch's packed layout).

    >>> import qlearn as ql
    >>> ql.quint4x2.bits, ql.quint4x2.quant_min, ql.quint4x2.quant_max, ql.quint8.bits
    (4, 0, 15, 8)
    """

    def __init__(self, name, storage, bits=None):
        self.name = name
        self.storage = np.dtype(storage)
        info = np.iinfo(self.storage)
        self.bits = 8 * self.storage.itemsize if bits is None else int(bits)
        if self.bits < 8 * self.storage.itemsize:       # sub-byte: unsigned 0..2^bits-1
            self.quant_min, self.quant_max = 0, 2 ** self.bits - 1
        else:
            self.quant_min, self.quant_max = int(info.min), int(info.max)
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
        # per_channel_affine_float_qparams: float zero points, added before rounding
        self.is_float_qparams = name.endswith("float_qparams")

    def __repr__(self):
        return f"qlearn.{self.name}"

    def __reduce__(self):
        return self.name


quint8 = QDType("quint8", np.uint8)
qint8 = QDType("qint8", np.int8)
qint32 = QDType("qint32", np.int32)
#: Unsigned 4-bit values 0..15, two per byte (PyTorch's ``torch.quint4x2``), for
#: embedding tables quantized with ``per_channel_affine_float_qparams``.
quint4x2 = QDType("quint4x2", np.uint8, bits=4)

per_tensor_affine = QScheme("per_tensor_affine")
per_tensor_symmetric = QScheme("per_tensor_symmetric")
per_channel_affine = QScheme("per_channel_affine")
per_channel_symmetric = QScheme("per_channel_symmetric")
#: Per channel with float scales *and* float zero points (PyTorch's scheme for embedding
#: tables: ``Z_c = -min_c / S_c`` need not be an integer).
per_channel_affine_float_qparams = QScheme("per_channel_affine_float_qparams")

DTYPES = {d.name: d for d in (quint8, qint8, qint32, quint4x2)}
QSCHEMES = {s.name: s for s in (per_tensor_affine, per_tensor_symmetric,
                                per_channel_affine, per_channel_symmetric,
                                per_channel_affine_float_qparams)}


class DType:
    """A plain element type of :class:`qlearn.Tensor` (``torch.float32``, ``torch.int8``...).

    Each wraps one NumPy dtype (``numpy_dtype``) and is a singleton compared by
    identity; it also compares equal to that NumPy dtype, and NumPy accepts it wherever
    a dtype is expected (``np.zeros(3, ql.int8)``), through its ``dtype`` attribute.

    >>> import numpy as np, qlearn as ql
    >>> ql.int8, ql.int8.is_signed, ql.int8.itemsize, ql.float64.is_floating_point
    (qlearn.int8, True, 1, True)
    >>> ql.float32 == np.float32, np.zeros(2, ql.uint8).dtype
    (True, dtype('uint8'))
    """

    def __init__(self, name, numpy_dtype):
        self.name = name
        self.numpy_dtype = np.dtype(numpy_dtype)
        self.is_floating_point = self.numpy_dtype.kind == "f"
        self.is_signed = self.numpy_dtype.kind in "fi"
        self.itemsize = self.numpy_dtype.itemsize
        self.is_complex = False

    @property
    def dtype(self):
        """The NumPy dtype (the attribute NumPy reads to convert this object)."""
        return self.numpy_dtype

    def __eq__(self, other):
        if isinstance(other, DType):
            return other is self
        if other is None or isinstance(other, (QDType, QScheme)):
            return False
        try:
            return np.dtype(other) == self.numpy_dtype
        except TypeError:
            return False

    def __hash__(self):
        return hash(self.numpy_dtype)

    def __repr__(self):
        return f"qlearn.{self.name}"

    def __reduce__(self):
        return self.name


float16 = DType("float16", np.float16)
float32 = DType("float32", np.float32)
float64 = DType("float64", np.float64)
int8 = DType("int8", np.int8)
uint8 = DType("uint8", np.uint8)
int16 = DType("int16", np.int16)
int32 = DType("int32", np.int32)
int64 = DType("int64", np.int64)
bool_ = DType("bool", np.bool_)   # exported as qlearn.bool (not shadowing builtins here)
half, double, short, long = float16, float64, int16, int64   # torch's aliases

PLAIN_DTYPES = {d.numpy_dtype: d for d in (float16, float32, float64, int8, uint8, int16,
                                           int32, int64, bool_)}
