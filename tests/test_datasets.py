"""qlearn.datasets (digits, DataLoader) and the optional progress bar."""
import builtins
import sys

import numpy as np
import pytest

from qlearn.datasets import DataLoader, load_digits
from qlearn.utils import progress


def test_load_digits_shapes_split_and_seed():
    pytest.importorskip("sklearn")
    d = load_digits()
    assert d.x_train.shape == (1438, 1, 8, 8) and d.x_test.shape == (359, 1, 8, 8)
    assert d.x_train.dtype == np.float32 and d.y_test.dtype == np.int64
    assert d.x_train.min() >= 0.0 and d.x_train.max() == 1.0
    assert set(np.unique(d.y_test)) == set(range(10))
    counts = np.bincount(d.y_test)
    assert counts.min() >= 35 and counts.max() <= 37            # stratified
    again = load_digits()
    np.testing.assert_array_equal(d.x_test, again.x_test)
    np.testing.assert_array_equal(d.y_train, again.y_train)
    other = load_digits(random_state=1, stratify=False, test_size=0.5)
    assert other.x_test.shape[0] == 898 and not np.array_equal(other.y_train[:50], d.y_train[:50])
    # no image is in both sets
    train = {x.tobytes() + bytes([y]) for x, y in zip(d.x_train, d.y_train)}
    assert sum(x.tobytes() + bytes([y]) in train for x, y in zip(d.x_test, d.y_test)) < 5
    with pytest.raises(ValueError, match="`test_size`"):
        load_digits(test_size=2)


def test_load_digits_without_sklearn_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("no sklearn")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    monkeypatch.delitem(sys.modules, "sklearn.datasets", raising=False)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        load_digits()


def test_dataloader_batches_shuffle_and_drop_last():
    x, y = np.arange(10.0)[:, None], np.arange(10)
    batches = list(DataLoader(x, y, batch_size=3))
    assert [len(b[0]) for b in batches] == [3, 3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    loader = DataLoader(x, y, batch_size=3, shuffle=True, drop_last=True, random_state=0)
    assert len(loader) == 3
    first = np.concatenate([b[1] for b in loader])
    second = np.concatenate([b[1] for b in loader])
    assert len(first) == 9 and len(set(first)) == 9 and not np.array_equal(first, second)
    again = DataLoader(x, y, batch_size=3, shuffle=True, drop_last=True, random_state=0)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in again]), first)
    assert [len(b) for b in DataLoader(y, batch_size=4)] == [4, 4, 2]
    with pytest.raises(ValueError, match="same length"):
        DataLoader(x, y[:5])
    with pytest.raises(ValueError, match="`batch_size`"):
        DataLoader(x, batch_size=0)


def test_progress_falls_back_silently_without_tqdm(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)   # import fails
    bar = progress(range(4), desc="x")
    assert list(bar) == [0, 1, 2, 3] and len(bar) == 4
    bar.set_postfix(loss=1.0)
    bar.update()
    bar.close()
    with progress(total=3) as p:
        p.update(3)
    assert capsys.readouterr().err == ""


def test_progress_uses_tqdm_when_installed():
    tqdm = pytest.importorskip("tqdm")
    with open("/dev/null", "w") as devnull:
        bar = progress(range(2), disable=False, file=devnull)
        assert isinstance(bar, tqdm.tqdm) and list(bar) == [0, 1]


def test_dataloader_generator_gives_the_same_order_as_the_same_seed():
    import numpy as np

    from qlearn.datasets import DataLoader
    x = np.arange(20.0)
    y = np.arange(20)
    by_seed = [xb.tolist() for xb, _ in DataLoader(x, y, batch_size=6, shuffle=True,
                                                   random_state=3)]
    by_gen = [xb.tolist() for xb, _ in DataLoader(x, y, batch_size=6, shuffle=True,
                                                  generator=np.random.default_rng(3))]
    assert by_seed == by_gen
    assert sorted(sum(by_gen, [])) == x.tolist()


def test_dataloader_generator_must_be_a_numpy_generator():
    import numpy as np
    import pytest

    from qlearn.datasets import DataLoader
    with pytest.raises(TypeError, match="`generator` must be a numpy.random.Generator"):
        DataLoader(np.arange(4.0), generator=3)


def test_random_state_takes_an_int_or_a_generator():
    x = np.arange(20.0)
    by_int = [xb.tolist() for xb in DataLoader(x, batch_size=6, shuffle=True, random_state=3)]
    by_gen = [xb.tolist() for xb in DataLoader(x, batch_size=6, shuffle=True,
                                               random_state=np.random.default_rng(3))]
    assert by_int == by_gen
    with pytest.raises(TypeError, match="`random_state` must be None, an int or"):
        DataLoader(x, random_state=1.5)
    with pytest.raises(TypeError, match="`random_state`"):
        DataLoader(x, random_state=True)
    with pytest.raises(ValueError, match="`random_state` must be a non-negative int, got -1"):
        DataLoader(x, random_state=-1)
    pytest.importorskip("sklearn")
    a, b = load_digits(random_state=5), load_digits(random_state=np.random.default_rng(5))
    np.testing.assert_array_equal(a.y_train, b.y_train)
    with pytest.raises(TypeError, match="`random_state`"):
        load_digits(random_state="0")
