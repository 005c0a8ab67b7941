"""How a :class:`~qlearn.Tensor` prints: the layout PyTorch uses, so printed results
can be compared with PyTorch's line by line.

The rules (PyTorch's defaults: 4 digits, 80 columns, summaries above 1000 elements):

* a float tensor whose finite non-zero values are all whole numbers prints them as
  ``1.``; otherwise with 4 decimals (``1.0000``), or in scientific notation
  (``1.0000e-05``) when the largest magnitude is over 1000 times the smallest, over
  1e8, or the smallest is under 1e-4;
* integer and bool tensors print their values as Python prints them;
* every element is right-aligned to the widest one, and rows wrap at 80 columns;
* the dtype is named unless it is float32, int64 or bool (the defaults).

>>> import qlearn as ql
>>> ql.tensor([-10.0, -5.0, 0.0, 5.0, 10.0])
tensor([-10.,  -5.,   0.,   5.,  10.])
>>> ql.tensor([[0.5827, 0.8619], [0.3827, -0.1982]])
tensor([[ 0.5827,  0.8619],
        [ 0.3827, -0.1982]])
>>> ql.tensor([-127, 0, 127], dtype=ql.int8)
tensor([-127,    0,  127], dtype=qlearn.int8)
"""
import math

import numpy as np

__all__ = ["format_array", "qtensor_repr", "tensor_repr"]

PRECISION = 4
THRESHOLD = 1000
EDGEITEMS = 3
LINEWIDTH = 80
_DEFAULT_DTYPES = (np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_))


class _Formatter:
    """Chooses one notation and one width for all the elements of an array."""

    def __init__(self, values):
        self.is_float = values.dtype.kind == "f"
        self.int_mode, self.sci_mode, self.width = True, False, 1
        flat = values.reshape(-1)
        if not self.is_float:
            self.width = max([1] + [len(str(v)) for v in flat.tolist()])
            return
        finite = flat[np.isfinite(flat) & (flat != 0)].astype(np.float64)
        if finite.size == 0:
            # only zeros, inf and nan: each printed by format() at width 1
            self.width = 1
            return
        mags = np.abs(finite)
        lo, hi = float(mags.min()), float(mags.max())
        self.int_mode = bool(np.all(finite == np.ceil(finite)))
        self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
        vals = finite.tolist()
        if self.sci_mode:
            self.width = max(len(f"{v:.{PRECISION}e}") for v in vals)
        elif self.int_mode:
            self.width = max(len(f"{v:.0f}") + 1 for v in vals)
        else:
            self.width = max(len(f"{v:.{PRECISION}f}") for v in vals)

    def format(self, value):
        if not self.is_float:
            text = str(value)
        elif self.sci_mode:
            text = f"{value:.{PRECISION}e}"
        elif self.int_mode:
            text = f"{value:.0f}"
            if not (math.isinf(value) or math.isnan(value)):
                text += "."
        else:
            text = f"{value:.{PRECISION}f}"
        return text.rjust(self.width)


def _summary(values):
    """The corner elements that a summarized print shows (for choosing the format)."""
    if values.ndim == 0:
        return values
    if values.shape[0] > 2 * EDGEITEMS:
        values = np.concatenate([values[:EDGEITEMS], values[-EDGEITEMS:]])
    return np.stack([_summary(v) for v in values]) if values.ndim > 1 else values


def _body(values, fmt, indent, summarize):
    if values.ndim == 0:
        return fmt.format(values.item())
    n = values.shape[0]
    cut = summarize and n > 2 * EDGEITEMS
    rows = list(range(EDGEITEMS)) + [None] + list(range(n - EDGEITEMS, n)) if cut \
        else list(range(n))
    if values.ndim == 1:
        items = [" ..." if i is None else fmt.format(values[i].item()) for i in rows]
        per_line = max(1, (LINEWIDTH - indent) // (fmt.width + 2))
        lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    parts = ["..." if i is None else _body(values[i], fmt, indent + 1, summarize)
             for i in rows]
    return "[" + ("," + "\n" * (values.ndim - 1) + " " * (indent + 1)).join(parts) + "]"


def format_array(values, indent=0):
    """The bracketed body PyTorch prints for an array of these values.

    ``indent`` is the column where the body starts (7 after ``tensor(``).

    >>> import numpy as np
    >>> from qlearn._printing import format_array
    >>> format_array(np.array([1e-5, 1.0], np.float32))
    '[1.0000e-05, 1.0000e+00]'
    >>> format_array(np.array(3.9216, np.float32))
    '3.9216'
    """
    values = np.asarray(values)
    if values.size == 0:
        return "[]"
    summarize = values.size > THRESHOLD
    fmt = _Formatter(_summary(values) if summarize else values)
    return _body(values, fmt, indent, summarize)


def tensor_repr(values, suffixes=(), prefix="tensor(", dtype_name=None):
    """``tensor(<body>, <suffixes>)`` with the dtype suffix PyTorch adds; a suffix
    that would pass the 80th column goes on its own line.

    >>> import numpy as np
    >>> from qlearn._printing import tensor_repr
    >>> tensor_repr(np.array([1.5, 2.0]), dtype_name="qlearn.float64")
    'tensor([1.5000, 2.0000], dtype=qlearn.float64)'
    """
    values = np.asarray(values)
    suffixes = list(suffixes)
    indent = len(prefix)
    extra = []
    if values.size == 0 and values.ndim != 1:
        extra.append(f"size={tuple(values.shape)}")
    if dtype_name is not None and (values.dtype not in _DEFAULT_DTYPES
                                   or (values.size == 0 and values.dtype != np.float32)):
        extra.append(f"dtype={dtype_name}")
    return _with_suffixes(prefix + format_array(values, indent), extra + suffixes, indent)


def _with_suffixes(text, suffixes, indent):
    """``text, suffix, ...)``: a suffix that would pass the 80th column starts a line."""
    last = len(text) - text.rfind("\n") + 1
    out = [text]
    for suffix in suffixes:
        if last + len(suffix) + 2 > LINEWIDTH:
            out.append(",\n" + " " * indent + suffix)
            last = indent + len(suffix)
        else:
            out.append(", " + suffix)
            last += len(suffix) + 2
    return "".join(out) + ")"


def qtensor_repr(values, shape, dtype, qscheme, scale, zero_point, axis=None):
    """How a :class:`~qlearn.QTensor` prints: its dequantized ``values`` in the tensor
    layout, then the size, dtype, scheme and parameters, as PyTorch prints a quantized
    tensor (per-channel parameters print as tensors, the scales in float64).

    >>> import numpy as np
    >>> import qlearn as ql
    >>> from qlearn._printing import qtensor_repr
    >>> print(qtensor_repr(np.array([1.0, 2.0, 3.0], np.float32), (3,), ql.quint8,
    ...                    ql.per_tensor_affine, 0.1, 0))
    tensor([1., 2., 3.], size=(3,), dtype=qlearn.quint8,
           quantization_scheme=qlearn.per_tensor_affine, scale=0.1, zero_point=0)
    """
    suffixes = [f"size={tuple(shape)}", f"dtype={dtype!r}", f"quantization_scheme={qscheme!r}"]
    if axis is None:
        suffixes += [f"scale={scale!r}", f"zero_point={zero_point!r}"]
    else:
        # float qparams (per_channel_affine_float_qparams) keep their float32 arrays,
        # which print without a dtype, as PyTorch's do
        float_qparams = getattr(qscheme, "is_float_qparams", False)
        scales = np.asarray(scale, np.float32 if float_qparams else np.float64)
        zero_points = np.asarray(zero_point, np.float32 if float_qparams else np.int64)
        suffixes += [f"scale={tensor_repr(scales, dtype_name='qlearn.float64')}",
                     f"zero_point={tensor_repr(zero_points)}",
                     f"axis={axis}"]
    prefix = "tensor("
    return _with_suffixes(prefix + format_array(values, len(prefix)), suffixes, len(prefix))
