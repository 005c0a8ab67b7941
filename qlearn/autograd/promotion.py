"""Which dtype an operation on tensors of several dtypes returns: PyTorch's rules.

The kinds are ordered bool < integer < floating point.  The result has the highest kind
among the operands; within that kind, tensors with at least one dimension decide before
0-d tensors, which decide before Python numbers.  So ``int8 tensor + 1`` stays int8,
``int64 tensor / float32 0-d tensor`` is float32, and ``int tensor * 2.5`` is float32
(the default float dtype).  Two tensors of the same kind promote as NumPy does
(``uint8`` with ``int8`` gives ``int16``), except that an integer with a float gives that
float.

One deliberate difference from PyTorch: a NumPy *float* array (or scalar) given to an
operation counts as float32, so float64 data coming from NumPy never turns a float32
computation into a float64 one (qlearn's layers are float32).

>>> import qlearn as ql
>>> from qlearn.autograd.promotion import result_type
>>> result_type(ql.tensor([1, 2], dtype=ql.int8), 1)
qlearn.int8
>>> result_type(ql.tensor([1, 2]), ql.tensor(2.0))
qlearn.float32
>>> result_type(ql.tensor([1.0], dtype=ql.float64), ql.tensor(2.0))
qlearn.float64
"""
import numbers

import numpy as np

from ..dtypes import PLAIN_DTYPES, DType, QDType, bool_, float32, int64

__all__ = ["result_type", "as_dtype", "kind_rank", "supported_numpy_dtype"]

_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}


def kind_rank(dtype):
    """0 for bool, 1 for integers, 2 for floating point."""
    return _RANK[np.dtype(dtype).kind]


def as_dtype(dtype, name="dtype"):
    """``dtype`` (a qlearn dtype, a NumPy dtype or its name) as a :class:`DType`.

    >>> import numpy as np
    >>> from qlearn.autograd.promotion import as_dtype
    >>> as_dtype(np.int8), as_dtype("float64")
    (qlearn.int8, qlearn.float64)
    """
    if isinstance(dtype, DType):
        return dtype
    if isinstance(dtype, QDType):
        raise TypeError(f"`{name}` must be a plain dtype such as qlearn.int8; {dtype!r} is "
                        f"a quantized dtype (use qlearn.quantize_per_tensor)")
    try:
        found = PLAIN_DTYPES.get(np.dtype(dtype)) if dtype is not None else None
    except TypeError:
        found = None
    if found is None:
        raise TypeError(f"`{name}` must be one of {', '.join(map(repr, PLAIN_DTYPES.values()))}"
                        f", got {dtype!r}")
    return found


def supported_numpy_dtype(arr):
    """The :class:`DType` a Tensor built from ndarray ``arr`` keeps, or None when qlearn
    has no such tensor dtype (wider unsigned ints, complex, strings, objects)."""
    return PLAIN_DTYPES.get(arr.dtype)


def _promote_pair(a, b):
    """Promote two NumPy dtypes of tensors."""
    if a == b:
        return a
    ra, rb = kind_rank(a), kind_rank(b)
    if ra != rb:
        return a if ra > rb else b
    return np.promote_types(a, b)


def _operand_class(x):
    """(priority, NumPy dtype) of an operand: 2 tensor with dims, 1 0-d tensor, 0 number."""
    from .tensor import Tensor
    if isinstance(x, Tensor):
        return (2 if x.data.ndim else 1), x.data.dtype
    if isinstance(x, (bool, np.bool_)):
        return 0, np.dtype(np.bool_)
    if isinstance(x, (numbers.Integral, np.integer)):
        return 0, np.dtype(np.int64)
    if isinstance(x, (numbers.Real, np.floating)):
        return 0, np.dtype(np.float32)
    arr = np.asarray(x)
    if arr.dtype.kind == "f":
        return (2 if arr.ndim else 1), np.dtype(np.float32)
    if arr.dtype.kind not in "biu":
        raise TypeError(f"expected a Tensor, an array or a number, got {type(x).__name__}"
                        f" of dtype {arr.dtype}")
    return (2 if arr.ndim else 1), arr.dtype


def result_type(*operands):
    """The dtype PyTorch gives an operation on ``operands`` (see the module docstring)."""
    best = [None, None, None]   # promoted dtype per priority: number, 0-d, dims
    for x in operands:
        prio, dt = _operand_class(x)
        best[prio] = dt if best[prio] is None else _promote_pair(best[prio], dt)
    result = None
    for dt in (best[2], best[1], best[0]):
        if dt is None:
            continue
        if result is None or kind_rank(dt) > kind_rank(result):
            # a number of a higher kind takes the default dtype of its kind
            result = dt
    found = PLAIN_DTYPES.get(np.dtype(result))
    return found if found is not None else (float32 if kind_rank(result) == 2 else
                                            bool_ if kind_rank(result) == 0 else int64)
