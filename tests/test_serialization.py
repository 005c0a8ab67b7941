"""ql.save / ql.load: round trips, no pickle, clear errors on foreign or corrupted files."""
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
    np.savez(p.open("wb"), a0=np.arange(3, dtype=np.int8),  # wrong storage type
             __qlearn__=np.frombuffer(json.dumps(header).encode(), np.uint8))
    with pytest.raises(ValueError, match="expected uint8"):
        ql.load(p)
    header["version"] = 99
    np.savez(p.open("wb"), a0=np.arange(3, dtype=np.uint8),
             __qlearn__=np.frombuffer(json.dumps(header).encode(), np.uint8))
    with pytest.raises(ValueError, match="version 99"):
        ql.load(p)
