"""ql.save / ql.load: round trips, no pickle, clear errors on foreign or corrupted files."""
import contextlib
import io
import json
import zipfile

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import qlearn as ql


@pytest.fixture
def path(tmp_path):
    return tmp_path / "obj.qlearn"


def test_round_trip_per_tensor_and_per_channel(path, rng):
    x = rng.standard_normal((4, 3, 2)).astype(np.float32)
    objs = {
        "a": ql.quantize_per_tensor(x, 0.05, 128, ql.quint8),
        "b": ql.quantize_per_channel(x, [0.1, 0.2, 0.3], [0, -3, 5], 1, ql.qint8),
        "c": ql.quantize_per_tensor(x, 0.001, 0, ql.qint32),
        "scalar": ql.quantize_per_tensor(np.float32(1.0), 0.5, 0, ql.quint8),
        "array": x, "zero_d": np.array(3.5), "n": 3, "f": 0.25, "s": "hi", "none": None,
        "nested": [1, (2.0, "x"), {"k": np.arange(3)}],
    }
    ql.save(objs, path)
    back = ql.load(path)
    assert list(back) == list(objs)
    for k in ("a", "b", "c", "scalar"):
        assert back[k] == objs[k], k
        assert back[k].qscheme() is objs[k].qscheme() and back[k].dtype is objs[k].dtype
    assert_array_equal(back["array"], x)
    assert back["zero_d"].shape == () and back["zero_d"] == 3.5
    assert back["n"] == 3 and back["f"] == 0.25 and back["s"] == "hi" and back["none"] is None
    assert back["nested"][1] == (2.0, "x")
    assert_array_equal(back["nested"][2]["k"], np.arange(3))


def test_round_trip_to_file_object():
    buf = io.BytesIO()
    q = ql.quantize_per_tensor([0.5], 0.5, 0, ql.quint8)
    ql.save(q, buf)
    buf.seek(0)
    assert ql.load(buf) == q


def test_round_trip_tensor(path):
    t = ql.tensor([1.0, 2.0], requires_grad=True)
    ql.save({"w": t}, path)
    back = ql.load(path)["w"]
    assert isinstance(back, ql.Tensor) and back.requires_grad
    assert_array_equal(back.data, t.data)


def test_file_is_a_plain_npz_with_a_json_header(path):
    ql.save(ql.quantize_per_tensor([0.5, 1.0], 0.5, 0, ql.quint8), path)
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(bytes(z["__qlearn__"]).decode())
    assert header["format"] == "qlearn" and header["version"] == 1
    assert header["root"]["type"] == "qtensor" and header["root"]["scale"] == 0.5


def test_unsaveable_objects_are_refused(path):
    with pytest.raises(TypeError, match="cannot save an object of type object"):
        ql.save(object(), path)
    with pytest.raises(TypeError, match="object array"):
        ql.save(np.array([None, 1], dtype=object), path)


def test_foreign_and_corrupted_files(path, tmp_path):
    path.write_bytes(b"this is not a zip file at all")
    with pytest.raises(ValueError, match="is not a qlearn file"):
        ql.load(path)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.arange(3))
    with pytest.raises(ValueError, match="no __qlearn__ member"):
        ql.load(other)
    npy = tmp_path / "a.npy"
    np.save(npy, np.arange(3))
    with pytest.raises(ValueError, match="not an archive"):
        ql.load(npy)
    ql.save(ql.quantize_per_tensor([0.5], 0.5, 0, ql.quint8), path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 40] = b"\x00" * 40
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="qlearn file"):
        ql.load(path)
    with pytest.raises(FileNotFoundError):
        ql.load(tmp_path / "missing.qlearn")


def test_tampered_header_is_rejected(tmp_path):
    p = tmp_path / "t.qlearn"
    header = {"format": "qlearn", "version": 1,
              "root": {"type": "qtensor", "dtype": "quint8", "qscheme": "per_tensor_affine",
                       "int": "a0", "scale": 0.5, "zero_point": 0}}
    with zipfile.ZipFile(p, "w"):
        pass
    with p.open("wb") as f:
        np.savez(f, a0=np.arange(3, dtype=np.int8),  # wrong storage type
                 __qlearn__=np.frombuffer(json.dumps(header).encode(), np.uint8))
    with pytest.raises(ValueError, match="expected uint8"):
        ql.load(p)
    header["version"] = 99
    with p.open("wb") as f:
        np.savez(f, a0=np.arange(3, dtype=np.uint8),
                 __qlearn__=np.frombuffer(json.dumps(header).encode(), np.uint8))
    with pytest.raises(ValueError, match="version 99"):
        ql.load(p)


# -- untrusted files: only ValueError leaves load(), nothing big is allocated -----------------
def _write(p, header, **arrays):
    arrays["__qlearn__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    with open(p, "wb") as fh:
        np.savez(fh, **arrays)


def _qt_header(**kw):
    node = {"type": "qtensor", "dtype": "quint8", "qscheme": "per_tensor_affine",
            "int": "a0", "scale": 0.5, "zero_point": 0}
    node.update(kw)
    return {"format": "qlearn", "version": 1, "root": node}


@pytest.mark.parametrize("kw,match", [
    (dict(scale=float("nan")), "`scale` must be a positive finite"),
    (dict(scale=-1.0), "`scale` must be a positive finite"),
    (dict(scale=1e39), "`scale` must be at most the float32 maximum"),
    (dict(scale="0.5"), "scale must be a number"),
    (dict(zero_point=300), r"`zero_point` must be in \[0, 255\]"),
    (dict(zero_point=2 ** 70), r"`zero_point` must be in"),
    (dict(zero_point=True), "zero_point must be a number"),
    (dict(dtype="float32"), "unknown dtype"),
    (dict(qscheme="per_channel_affine", scales="a1", zero_points="a2", axis=3),
     "`axis` must be in"),
    (dict(qscheme="per_channel_affine", scales="a1", zero_points="a2", axis=0.5),
     "axis must be an integer"),
    (dict(int="a9"), "no array member 'a9'"),
    (dict(int=["a0"]), "must be a string"),
])
def test_bad_qparams_in_a_file_are_value_errors(tmp_path, kw, match):
    p = tmp_path / "bad.qlearn"
    _write(p, _qt_header(**kw), a0=np.arange(3, dtype=np.uint8),
           a1=np.array([1.0, 1.0]), a2=np.array([0, 0]))
    with pytest.raises(ValueError, match=match):
        ql.load(p)


def test_per_channel_counts_must_match_shape(tmp_path):
    p = tmp_path / "bad.qlearn"
    _write(p, _qt_header(qscheme="per_channel_affine", scales="a1", zero_points="a2", axis=0),
           a0=np.zeros((3, 2), np.uint8), a1=np.array([1.0, 1.0]), a2=np.array([0, 0]))
    with pytest.raises(ValueError, match="one entry per channel"):
        ql.load(p)


@pytest.mark.parametrize("root,match", [
    ({"type": "ndarray", "key": "a0"}, "dtype object"),
])
def test_object_arrays_in_a_file_are_refused(tmp_path, root, match):
    p = tmp_path / "obj.qlearn"
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array([None, 1], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("a0.npy", buf.getvalue())
        z.writestr("__qlearn__.npy", _npy(json.dumps({"format": "qlearn", "version": 1,
                                                        "root": root}).encode()))
    with pytest.raises(ValueError, match=match):
        ql.load(p)


def _npy(header_bytes):
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(header_bytes, np.uint8))
    return buf.getvalue()


def _npy_claiming(shape, dtype="<f4", payload=b""):
    """An .npy member whose header claims ``shape`` but holds only ``payload``."""
    return _raw_npy({"descr": dtype, "fortran_order": False, "shape": shape}, payload)


def _raw_npy(head, payload):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, head)     # magic string included
    return buf.getvalue() + payload


def test_shape_larger_than_the_stored_bytes_is_refused_before_allocating(tmp_path):
    p = tmp_path / "huge.qlearn"
    root = {"type": "ndarray", "key": "a0"}
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("a0.npy", _npy_claiming((10 ** 6, 10 ** 6), payload=b"\0" * 16))
        z.writestr("__qlearn__.npy", _npy(json.dumps({"format": "qlearn", "version": 1,
                                                        "root": root}).encode()))
    with pytest.raises(ValueError, match="needs 4000000000000 bytes"):
        ql.load(p)


def test_zip_bomb_is_refused(tmp_path):
    p = tmp_path / "bomb.qlearn"
    root = {"type": "ndarray", "key": "a0"}
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("a0.npy", _raw_npy({"descr": "|u1", "fortran_order": False,
                                       "shape": (64 << 20,)}, b"\0" * (64 << 20)))
        z.writestr("__qlearn__.npy", _npy(json.dumps({"format": "qlearn", "version": 1,
                                                        "root": root}).encode()))
    assert p.stat().st_size < 1 << 20
    with pytest.raises(ValueError, match="more than"):
        ql.load(p)


def test_deep_nesting_and_repeated_references(tmp_path):
    p = tmp_path / "deep.qlearn"
    n = 100_000                     # json.loads itself would hit the recursion limit
    text = ('{"format": "qlearn", "version": 1, "root": '
            + '{"type": "list", "items": [' * n + '{"type": "ndarray", "key": "a0"}'
            + ']}' * n + '}')
    with open(p, "wb") as fh:
        np.savez(fh, a0=np.arange(3), __qlearn__=np.frombuffer(text.encode(), np.uint8))
    with pytest.raises(ValueError, match="nests too deeply|deeper than"):
        ql.load(p)
    root = {"type": "list", "items": [{"type": "ndarray", "key": "a0"}] * 3}
    _write(p, {"format": "qlearn", "version": 1, "root": root}, a0=np.arange(3))
    with pytest.raises(ValueError, match="referred to twice"):
        ql.load(p)


def test_every_truncation_and_byte_flip_is_a_value_error(tmp_path):
    src = tmp_path / "ok.qlearn"
    ql.save({"w": ql.quantize_per_channel(np.ones((3, 2)), [0.1, 0.2, 0.3], [0, 1, 2], 0,
                                          ql.qint8), "b": np.arange(4.0)}, src)
    data = src.read_bytes()
    p = tmp_path / "bad.qlearn"
    rng = np.random.default_rng(0)
    cases = [data[:n] for n in range(0, len(data), 7)]
    for _ in range(300):
        d = bytearray(data)
        for i in rng.integers(0, len(d), rng.integers(1, 4)):
            d[i] = int(rng.integers(0, 256))
        cases.append(bytes(d))
    for case in cases:
        p.write_bytes(case)
        with contextlib.suppress(ValueError):
            ql.load(p)
