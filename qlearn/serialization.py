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

Loading never unpickles, so a file can never run code, and it checks everything it
reads before building anything (a file is untrusted input):

* the archive: members stored or deflated, their declared sizes within
  ``MAX_EXPANSION`` times the file's size (no zip bomb, no huge allocation from a small
  file), at most ``MAX_HEADER_BYTES`` of JSON nested at most ``MAX_DEPTH`` deep;
* every array: an ``.npy`` header with a dtype from an allowlist (booleans, integers,
  floats, complex; never objects or records) and a shape whose size equals the bytes
  stored, each array referred to once;
* every QTensor: storage dtype, finite positive scales representable in float32, zero
  points in the dtype's range, an axis and per-channel counts that match the shape (the
  checks of the :class:`~qlearn.QTensor` constructor).

Whatever is wrong, :func:`load` raises ``ValueError`` (``FileNotFoundError`` only when
the path does not exist).
"""
import json
import os
import zipfile

import numpy as np

from .dtypes import DTYPES, QSCHEMES
from .qtensor import QTensor

__all__ = ["save", "load"]

FORMAT, VERSION, HEADER = "qlearn", 1, "__qlearn__"


def _is_tensor(obj):
    # qlearn.Tensor lives in a layer above this one; recognise it by duck type.
    return type(obj).__name__ in ("Tensor", "Parameter") and hasattr(obj, "requires_grad")


def _encode(obj, arrays, depth=0):
    # save() writes only what load() accepts: the same depth bound and dtype allowlist
    if depth > MAX_DEPTH:
        raise ValueError(f"`obj` is nested deeper than {MAX_DEPTH} levels (or holds a "
                         f"reference cycle); a qlearn file holds trees at most "
                         f"{MAX_DEPTH} deep")

    def store(a):
        a = np.asarray(a, order="C")
        if a.dtype.kind not in _ALLOWED_KINDS:
            raise TypeError(f"cannot save an array of dtype {a.dtype}: a qlearn file holds "
                            f"booleans, integers, floats and complex numbers only")
        key = f"a{len(arrays)}"
        arrays[key] = a
        return key

    if isinstance(obj, QTensor):
        node = {"type": "qtensor", "dtype": obj.dtype.name, "qscheme": obj.qscheme().name,
                # the values one a byte (quint4x2's int_repr() is PyTorch's packed bytes)
                "int": store(obj._int)}
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
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(f"dictionary keys must be str or int to be saved, got {k!r}")
        return {"type": "dict", "items": [[k, _encode(v, arrays, depth + 1)]
                                          for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"type": type(obj).__name__,
                "items": [_encode(v, arrays, depth + 1) for v in obj]}
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
    if not (isinstance(f, (str, bytes)) or hasattr(f, "__fspath__")
            or callable(getattr(f, "write", None))):
        raise TypeError(f"`f` must be a path or a writable binary file, got "
                        f"{type(f).__name__}")
    arrays = {}
    root = _encode(obj, arrays)
    header = json.dumps({"format": FORMAT, "version": VERSION, "root": root})
    arrays[HEADER] = np.frombuffer(header.encode("utf-8"), dtype=np.uint8)
    if isinstance(f, str) or hasattr(f, "__fspath__"):
        with open(f, "wb") as fh:  # np.savez would append ".npz" to a path
            np.savez(fh, **arrays)
    else:
        np.savez(f, **arrays)


# Bounds on what a file may make load() allocate (see the module docstring).
MAX_EXPANSION = 64          # declared uncompressed bytes per byte of file (+ 1 MiB)
MAX_HEADER_BYTES = 16 << 20
MAX_DEPTH = 64
_ALLOWED_KINDS = "biufc"    # bool, signed, unsigned, float, complex


def _not_qlearn(f, why):
    return ValueError(f"{f!r} is not a qlearn file ({why})")


class _Corrupt(ValueError):
    """Raised inside the reader; load() turns it into its one error message."""


def _file_size(f):
    if isinstance(f, (str, bytes)) or hasattr(f, "__fspath__"):
        return os.stat(f).st_size          # FileNotFoundError for a missing path
    pos = f.tell()
    end = f.seek(0, os.SEEK_END)
    f.seek(pos)
    return end - pos


def load(f):
    """Load what :func:`save` wrote.  Raises ``ValueError`` for any other file.

    ``f`` is a path or a seekable binary file.  Nothing in the file is trusted: see the
    module docstring for what is checked before any object is built.
    """
    if not (isinstance(f, (str, bytes)) or hasattr(f, "__fspath__")
            or all(callable(getattr(f, m, None)) for m in ("read", "seek", "tell"))):
        raise TypeError(f"`f` must be a path or a seekable binary file, got "
                        f"{type(f).__name__}")
    size = _file_size(f)
    try:
        zf = zipfile.ZipFile(f)
    except FileNotFoundError:
        raise
    except Exception as exc:   # BadZipFile, EOFError, OSError, struct.error, ...
        if _looks_like_npy(f):
            raise _not_qlearn(f, "a single .npy array, not an archive") from None
        raise _not_qlearn(f, f"{type(exc).__name__}: {exc}") from None
    with zf:
        try:
            reader = _Reader(zf, size)
            header = reader.header()
        except _Corrupt as exc:
            raise _not_qlearn(f, str(exc)) from None
        except RecursionError:
            raise _not_qlearn(f, "the header nests too deeply") from None
        except Exception as exc:
            raise _not_qlearn(f, f"unreadable header: {type(exc).__name__}: {exc}") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise _not_qlearn(f, "wrong format tag")
        if header.get("version") != VERSION:
            raise ValueError(f"{f!r} is a qlearn file of version {header.get('version')!r}; "
                             f"this qlearn reads version {VERSION}")
        try:
            root = header["root"]
            reader.check(root, 0)           # the whole tree and every array header first
            return reader.decode(root)
        except RecursionError:
            raise _not_qlearn(f, "the header nests too deeply") from None
        except Exception as exc:    # KeyError, TypeError, ValueError, zlib.error, ...
            raise _not_qlearn(f, f"corrupted content: {type(exc).__name__}: {exc}") from None


def _looks_like_npy(f):
    try:
        if isinstance(f, (str, bytes)) or hasattr(f, "__fspath__"):
            with open(f, "rb") as fh:
                return fh.read(6) == b"\x93NUMPY"
        pos = f.tell()
        magic = f.read(6)
        f.seek(pos)
        return magic == b"\x93NUMPY"
    except Exception:
        return False


class _Reader:
    """Reads one archive, checking sizes and headers before it allocates."""

    def __init__(self, zf, file_size):
        self.zf = zf
        infos = {}
        total = 0
        for info in zf.infolist():
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise _Corrupt(f"member {info.filename!r} uses an unsupported compression")
            if info.flag_bits & 0x1:
                raise _Corrupt(f"member {info.filename!r} is encrypted")
            if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
                raise _Corrupt(f"member {info.filename!r} declares {info.file_size} bytes "
                               f"but stores {info.compress_size}")
            total += info.file_size
            infos[info.filename] = info
        limit = MAX_EXPANSION * file_size + (1 << 20)
        if total > limit:
            raise _Corrupt(f"its members declare {total} bytes, more than {limit} for a "
                           f"file of {file_size} bytes")
        self.infos = infos
        self.headers = {}      # key -> (shape, fortran, dtype, offset)
        self.used = set()

    def _info(self, key):
        if not isinstance(key, str):
            raise _Corrupt(f"an array reference must be a string, got {key!r}")
        info = self.infos.get(key + ".npy")
        if info is None:
            raise _Corrupt(f"no array member {key!r}")
        return info

    def header(self):
        info = self.infos.get(HEADER + ".npy")
        if info is None:
            raise _Corrupt(f"no {HEADER} member")
        if info.file_size > MAX_HEADER_BYTES:
            raise _Corrupt(f"a {info.file_size}-byte header (at most {MAX_HEADER_BYTES})")
        data = self.array(HEADER, allow_reuse=True)
        if data.dtype != np.uint8 or data.ndim != 1:
            raise _Corrupt("the header is not a 1-d uint8 array")
        return json.loads(data.tobytes().decode("utf-8"))

    def array_header(self, key):
        """(shape, fortran_order, dtype, data offset) of member ``key``, checked."""
        info = self._info(key)
        if key in self.headers:
            return self.headers[key]
        with self.zf.open(info) as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise _Corrupt(f"array {key!r} has .npy version {version}")
            offset = fh.tell()
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None \
                or dtype.kind not in _ALLOWED_KINDS:
            raise _Corrupt(f"array {key!r} has dtype {dtype}; a qlearn file holds booleans, "
                           f"integers, floats and complex numbers only")
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            raise _Corrupt(f"array {key!r} has shape {shape}")
        count = 1
        for d in shape:
            count *= d
        if count * dtype.itemsize != info.file_size - offset:
            raise _Corrupt(f"array {key!r} of shape {shape} and dtype {dtype} needs "
                           f"{count * dtype.itemsize} bytes, the file holds "
                           f"{info.file_size - offset}")
        self.headers[key] = (tuple(shape), bool(fortran), dtype, offset)
        return self.headers[key]

    def array(self, key, allow_reuse=False):
        """The array ``key``, read into memory allocated after its header was checked."""
        if not allow_reuse:
            if key in self.used:   # each array once: no file referring a big one 1000 times
                raise _Corrupt(f"array {key!r} is referred to twice")
            self.used.add(key)
        shape, fortran, dtype, offset = self.array_header(key)
        out = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
        buf = memoryview(out.reshape(-1, order="A").view(np.uint8)) if out.size else None
        with self.zf.open(self._info(key)) as fh:
            fh.read(offset)
            got = 0
            while buf is not None and got < len(buf):
                n = fh.readinto(buf[got:])
                if not n:
                    raise _Corrupt(f"array {key!r} is truncated")
                got += n
        if not dtype.isnative:
            out = out.astype(dtype.newbyteorder("="))
        return out

    # -- the tree: checked whole (check), then built (decode) ------------------------------
    def check(self, node, depth):
        if depth > MAX_DEPTH:
            raise _Corrupt(f"the object tree is deeper than {MAX_DEPTH}")
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            raise _Corrupt(f"a node must be an object with a 'type', got {node!r:.80}")
        kind = node["type"]
        if kind in ("ndarray", "tensor"):
            self.array_header(node["key"])
            if kind == "tensor" and not isinstance(node.get("requires_grad"), bool):
                raise _Corrupt("a tensor's 'requires_grad' must be true or false")
        elif kind == "qtensor":
            if node.get("dtype") not in DTYPES or node.get("qscheme") not in QSCHEMES:
                raise _Corrupt(f"unknown dtype or qscheme {node.get('dtype')!r}, "
                               f"{node.get('qscheme')!r}")
            self.array_header(node["int"])
            if QSCHEMES[node["qscheme"]].is_per_channel:
                self.array_header(node["scales"])
                self.array_header(node["zero_points"])
                if isinstance(node.get("axis"), bool) or not isinstance(node.get("axis"), int):
                    raise _Corrupt(f"a per-channel axis must be an integer, got "
                                   f"{node.get('axis')!r}")
            else:
                for name, types in (("scale", (int, float)), ("zero_point", (int,))):
                    v = node.get(name)
                    if isinstance(v, bool) or not isinstance(v, types):
                        raise _Corrupt(f"a QTensor's {name} must be a number, got {v!r:.40}")
        elif kind == "value":
            v = node.get("value", ())
            if v is not None and not isinstance(v, (bool, int, float, str)):
                raise _Corrupt(f"a value must be null, a boolean, a number or a string, "
                               f"got {type(v).__name__}")
        elif kind in ("dict", "list", "tuple"):
            items = node.get("items")
            if not isinstance(items, list):
                raise _Corrupt(f"a {kind} node needs a list of items")
            for item in items:
                if kind == "dict":
                    if not (isinstance(item, list) and len(item) == 2
                            and isinstance(item[0], (str, int))
                            and not isinstance(item[0], bool)):
                        raise _Corrupt("a dict item must be a [key, node] pair with a str "
                                       "or int key")
                    item = item[1]
                self.check(item, depth + 1)
        else:
            raise _Corrupt(f"unknown node type {kind!r}")

    def decode(self, node):
        kind = node["type"]
        if kind == "ndarray":
            return self.array(node["key"])
        if kind == "qtensor":
            dtype, qscheme = DTYPES[node["dtype"]], QSCHEMES[node["qscheme"]]
            data = self.array(node["int"])
            if data.dtype != dtype.storage:
                raise _Corrupt(f"integers stored as {data.dtype}, expected {dtype.storage}")
            if qscheme.is_per_channel:
                return QTensor(data, dtype, qscheme, 1.0, 0, self.array(node["scales"]),
                               self.array(node["zero_points"]), node["axis"])
            return QTensor(data, dtype, qscheme, node["scale"], node["zero_point"])
        if kind == "tensor":
            from .autograd import tensor  # the layer above, imported only when needed
            return tensor(self.array(node["key"]), requires_grad=node["requires_grad"])
        if kind == "value":
            return node["value"]
        if kind == "dict":
            return {k: self.decode(v) for k, v in node["items"]}
        items = [self.decode(v) for v in node["items"]]
        return items if kind == "list" else tuple(items)
