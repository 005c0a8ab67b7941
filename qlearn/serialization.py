"""``qlearn.save`` / ``qlearn.load``: a documented file format with no pickle.

A qlearn file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays).  The member
``__qlearn__`` holds UTF-8 JSON describing the saved object as a tree; every array in
the tree is stored as its own member ``a0``, ``a1``, ... and referred to by name::

    {"format": "qlearn", "version": 1, "root": NODE}

    NODE := {"type": "ndarray", "key": "a0"}
          | {"type": "qtensor", "dtype": "quint8", "qscheme": "per_tensor_affine",
             "int": "a1", "scale": 0.1, "zero_point": 3}          (per-tensor)
          | {"type": "qtensor", ..., "int": "a2", "scales": "a3",
             "zero_points": "a4", "axis": 0}                       (per-channel)
          | {"type": "tensor", "key": "a5", "requires_grad": false}   (qlearn.Tensor)
          | {"type": "value", "value": 1.5}       (None, bool, int, float, str)
          | {"type": "dict", "items": [[KEY, NODE], ...]}   (order kept)
          | {"type": "list", "items": [NODE, ...]} | {"type": "tuple", "items": [...]}

Loading uses ``allow_pickle=False`` throughout, so a file can never run code.
"""
import json
import zipfile

import numpy as np

from ._ext._qtensor import QTensor
from .dtypes import DTYPES, QSCHEMES

__all__ = ["save", "load"]

FORMAT, VERSION, HEADER = "qlearn", 1, "__qlearn__"


def _is_tensor(obj):
    # qlearn.Tensor lives in a layer above this one; recognise it by duck type.
    return type(obj).__name__ in ("Tensor", "Parameter") and hasattr(obj, "requires_grad")


def _encode(obj, arrays):
    def store(a):
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(a, order="C")
        return key

    if isinstance(obj, QTensor):
        node = {"type": "qtensor", "dtype": obj.dtype.name, "qscheme": obj.qscheme().name,
                "int": store(obj.int_repr())}
        if obj._axis < 0:
            node.update(scale=obj.q_scale(), zero_point=obj.q_zero_point())
        else:
            node.update(scales=store(obj.q_per_channel_scales()),
                        zero_points=store(obj.q_per_channel_zero_points()),
                        axis=obj.q_per_channel_axis())
        return node
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError("cannot save an object array: a qlearn file holds numbers only")
        return {"type": "ndarray", "key": store(obj)}
    if _is_tensor(obj):
        return {"type": "tensor", "key": store(np.asarray(obj.data)),
                "requires_grad": bool(obj.requires_grad)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"type": "value", "value": obj}
    if isinstance(obj, np.generic):
        return {"type": "value", "value": obj.item()}
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, (str, int)):
                raise TypeError(f"dictionary keys must be str or int to be saved, got {k!r}")
        return {"type": "dict", "items": [[k, _encode(v, arrays)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"type": type(obj).__name__, "items": [_encode(v, arrays) for v in obj]}
    raise TypeError(f"cannot save an object of type {type(obj).__name__}; a qlearn file "
                    f"holds QTensors, arrays, tensors, numbers, strings and dicts/lists "
                    f"of them (save a module's state_dict())")


def save(obj, f):
    """Save ``obj`` (a QTensor, array, state dict, ...) to the path or file ``f``.

    >>> import qlearn as ql, tempfile, os
    >>> q = ql.quantize_per_tensor([0.5, -1.0], 0.1, 3, ql.qint8)
    >>> path = os.path.join(tempfile.mkdtemp(), "q.qlearn")
    >>> ql.save({"weight": q, "step": 3}, path)
    >>> ql.load(path)["weight"] == q
    True
    """
    arrays = {}
    root = _encode(obj, arrays)
    header = json.dumps({"format": FORMAT, "version": VERSION, "root": root})
    arrays[HEADER] = np.frombuffer(header.encode("utf-8"), dtype=np.uint8)
    if isinstance(f, str) or hasattr(f, "__fspath__"):
        with open(f, "wb") as fh:  # np.savez would append ".npz" to a path
            np.savez(fh, **arrays)
    else:
        np.savez(f, **arrays)


def _not_qlearn(f, why):
    return ValueError(f"{f!r} is not a qlearn file ({why})")


def load(f):
    """Load what :func:`save` wrote.  Raises ``ValueError`` for any other file."""
    try:
        archive = np.load(f, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise _not_qlearn(f, f"{type(exc).__name__}: {exc}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _not_qlearn(f, "a single .npy array, not an archive")
    with archive:
        try:
            header = json.loads(bytes(archive[HEADER]).decode("utf-8"))
        except KeyError:
            raise _not_qlearn(f, f"no {HEADER} member") from None
        except (ValueError, zipfile.BadZipFile, OSError) as exc:
            raise _not_qlearn(f, f"unreadable header: {exc}") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise _not_qlearn(f, "wrong format tag")
        if header.get("version") != VERSION:
            raise ValueError(f"{f!r} is a qlearn file of version {header.get('version')}; "
                             f"this qlearn reads version {VERSION}")
        try:
            return _decode(header["root"], archive)
        except (KeyError, TypeError, ValueError, zipfile.BadZipFile, OSError) as exc:
            raise _not_qlearn(f, f"corrupted content: {type(exc).__name__}: {exc}") from None


def _decode(node, archive):
    kind = node["type"]
    if kind == "ndarray":
        return archive[node["key"]]
    if kind == "qtensor":
        dtype, qscheme = DTYPES[node["dtype"]], QSCHEMES[node["qscheme"]]
        data = archive[node["int"]]
        if data.dtype != dtype.storage:
            raise ValueError(f"integers stored as {data.dtype}, expected {dtype.storage}")
        if "axis" in node:
            scales = archive[node["scales"]].astype(np.float64)
            zps = archive[node["zero_points"]].astype(np.int64)
            axis = int(node["axis"])
            if not (0 <= axis < data.ndim and scales.shape == zps.shape == (data.shape[axis],)):
                raise ValueError("per-channel parameters do not match the data's shape")
            return QTensor(data, dtype, qscheme, 1.0, 0, scales, zps, axis)
        return QTensor(data, dtype, qscheme, float(node["scale"]), int(node["zero_point"]))
    if kind == "tensor":
        from .autograd import tensor  # the layer above, imported only when needed
        return tensor(archive[node["key"]], requires_grad=node["requires_grad"])
    if kind == "value":
        return node["value"]
    if kind == "dict":
        return {k: _decode(v, archive) for k, v in node["items"]}
    if kind in ("list", "tuple"):
        items = [_decode(v, archive) for v in node["items"]]
        return items if kind == "list" else tuple(items)
    raise ValueError(f"unknown node type {kind!r}")
