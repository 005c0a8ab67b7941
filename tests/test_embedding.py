"""nn.Embedding / nn.EmbeddingBag and their quantized versions, against PyTorch 2.13."""
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import qlearn as ql
import qlearn.nn.functional as F
import qlearn.nn.quantized as nnq
import qlearn.quantization as tq
from qlearn import nn
from qlearn import reference as ref

FQ = ql.per_channel_affine_float_qparams


def _bag_case(rng, mode, trial):
    """Random weights, indices and offsets (empty bags, padding, weights)."""
    n, d = int(rng.integers(2, 30)), int(rng.integers(1, 40))
    w = rng.standard_normal((n, d)).astype(np.float32)
    length = int(rng.integers(0, 60))
    idx = rng.integers(0, n, length)
    off = np.sort(rng.integers(0, length + 1, int(rng.integers(1, 6))))
    off[0] = 0
    kw = dict(mode=mode, include_last_offset=trial % 3 == 0,
              padding_idx=int(rng.integers(0, n)) if trial % 4 == 0 else None)
    if kw["include_last_offset"]:
        off = np.append(off, length)
    psw = rng.standard_normal(length).astype(np.float32) \
        if mode == "sum" and trial % 2 == 0 else None
    return w, idx, off, psw, kw


# -- float modules -------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_equals_torch(mode, torch_mod, rng):
    torch = torch_mod
    for trial in range(40):
        w, idx, off, psw, kw = _bag_case(rng, mode, trial)
        wt = torch.from_numpy(w.copy()).requires_grad_(True)
        pt = None if psw is None else torch.from_numpy(psw.copy()).requires_grad_(True)
        yt = torch.nn.functional.embedding_bag(torch.from_numpy(idx), wt, torch.from_numpy(off),
                                               per_sample_weights=pt, **kw)
        g = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
        yt.backward(torch.from_numpy(g))
        wq = ql.tensor(w.copy(), requires_grad=True)
        pq = None if psw is None else ql.tensor(psw.copy(), requires_grad=True)
        yq = F.embedding_bag(idx, wq, off, per_sample_weights=pq, **kw)
        yq.backward(ql.tensor(g))
        # forward: the same float32 operations in the same order, so the same bits
        assert_array_equal(yq.numpy(), yt.detach().numpy())
        # backward: the same terms; PyTorch's BLAS axpy may fuse and order them
        # differently, so to float32 rounding
        assert_allclose(wq.grad.numpy(), wt.grad.numpy(), rtol=1e-5, atol=1e-6)
        if psw is not None:
            assert_allclose(pq.grad.numpy(), pt.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_embedding_bag_2d_input_equals_torch(torch_mod, rng):
    torch = torch_mod
    w = rng.standard_normal((12, 7)).astype(np.float32)
    idx = rng.integers(0, 12, (5, 4))
    for mode in ("sum", "mean", "max"):
        theirs = torch.nn.functional.embedding_bag(torch.from_numpy(idx), torch.from_numpy(w),
                                                   mode=mode)
        assert_array_equal(F.embedding_bag(idx, w, mode=mode).numpy(), theirs.numpy())


def test_embedding_equals_torch_with_gradient(torch_mod, rng):
    torch = torch_mod
    w = rng.standard_normal((9, 5)).astype(np.float32)
    idx = rng.integers(0, 9, (3, 4, 2))
    for padding_idx, freq in ((None, False), (2, False), (-1, True), (None, True)):
        wt = torch.from_numpy(w.copy()).requires_grad_(True)
        yt = torch.nn.functional.embedding(torch.from_numpy(idx), wt, padding_idx=padding_idx,
                                           scale_grad_by_freq=freq)
        g = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
        yt.backward(torch.from_numpy(g))
        wq = ql.tensor(w.copy(), requires_grad=True)
        yq = F.embedding(idx, wq, padding_idx=padding_idx, scale_grad_by_freq=freq)
        yq.backward(ql.tensor(g))
        assert_array_equal(yq.numpy(), yt.detach().numpy())
        assert_allclose(wq.grad.numpy(), wt.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_embedding_max_norm_renormalises_like_torch(torch_mod, rng):
    torch = torch_mod
    w = (rng.standard_normal((6, 4)) * 2).astype(np.float32)
    idx = np.array([0, 2, 2, 5])
    for norm_type in (2.0, 1.0):
        wt = torch.from_numpy(w.copy())
        yt = torch.nn.functional.embedding(torch.from_numpy(idx), wt, max_norm=1.5,
                                           norm_type=norm_type)
        wq = ql.tensor(w.copy())
        yq = F.embedding(idx, wq, max_norm=1.5, norm_type=norm_type)
        assert_allclose(wq.numpy(), wt.numpy(), rtol=1e-6)     # rows 0, 2, 5 only
        assert_allclose(yq.numpy(), yt.numpy(), rtol=1e-6)
        assert_array_equal(wq.numpy()[[1, 3, 4]], w[[1, 3, 4]])


def test_embedding_bag_scale_grad_by_freq_divides_by_each_rows_count():
    # each row's gradient is divided by its count in the input, as F.embedding does
    # (PyTorch 2.13's embedding_bag divides some rows by another row's count)
    w = ql.tensor(np.ones((4, 2), np.float32), requires_grad=True)
    y = F.embedding_bag([0, 0, 1, 0, 2], w, [0, 2], mode="sum", scale_grad_by_freq=True)
    y.sum().backward()
    assert_allclose(w.grad.numpy(), [[1, 1], [1, 1], [1, 1], [0, 0]])


def test_embedding_bag_gradient_by_finite_differences(rng):
    w0 = rng.standard_normal((5, 3))
    idx, off = np.array([0, 3, 3, 1, 4, 0]), np.array([0, 2, 2, 5])
    psw0 = rng.standard_normal(6)
    g = rng.standard_normal((4, 3))           # four bags, one empty
    for mode in ("sum", "mean", "max"):
        psw = ql.tensor(psw0.astype(np.float32), requires_grad=True) if mode == "sum" \
            else None
        w = ql.tensor(w0.astype(np.float32), requires_grad=True)
        (F.embedding_bag(idx, w, off, mode=mode, per_sample_weights=psw) * ql.tensor(g)) \
            .sum().backward()

        def loss(wv, pv, mode=mode):
            y = F.embedding_bag(idx, wv.astype(np.float32), off, mode=mode,
                                per_sample_weights=None if pv is None
                                else pv.astype(np.float32))
            return float((y.numpy().astype(np.float64) * g).sum())
        eps = 1e-3
        num = np.zeros_like(w0)
        for k in np.ndindex(*w0.shape):
            e = np.zeros_like(w0)
            e[k] = eps
            num[k] = (loss(w0 + e, psw0 if psw is not None else None)
                      - loss(w0 - e, psw0 if psw is not None else None)) / (2 * eps)
        assert_allclose(w.grad.numpy(), num, atol=2e-3)
        if psw is not None:
            nump = [(loss(w0, psw0 + eps * np.eye(6)[k]) - loss(w0, psw0 - eps * np.eye(6)[k]))
                    / (2 * eps) for k in range(6)]
            assert_allclose(psw.grad.numpy(), nump, atol=2e-3)


def test_modules_print_and_initialise_as_torch(torch_mod):
    torch = torch_mod
    pairs = [(nn.Embedding(10, 3), torch.nn.Embedding(10, 3)),
             (nn.Embedding(10, 3, padding_idx=-2, max_norm=1.0, norm_type=1.0,
                           scale_grad_by_freq=True),
              torch.nn.Embedding(10, 3, padding_idx=-2, max_norm=1.0, norm_type=1.0,
                                 scale_grad_by_freq=True)),
             (nn.EmbeddingBag(10, 3), torch.nn.EmbeddingBag(10, 3)),
             (nn.EmbeddingBag(10, 3, mode="max", padding_idx=1, max_norm=2.0),
              torch.nn.EmbeddingBag(10, 3, mode="max", padding_idx=1, max_norm=2.0))]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        assert ours.padding_idx == theirs.padding_idx
    emb = nn.Embedding(50, 8, padding_idx=3)
    assert_array_equal(emb.weight.data[3], 0)
    assert abs(float(emb.weight.data.std()) - 1) < 0.15          # N(0, 1)
    pre = nn.Embedding.from_pretrained(np.eye(3, dtype=np.float32), padding_idx=0)
    assert not pre.weight.requires_grad and pre.padding_idx == 0
    assert nn.EmbeddingBag.from_pretrained(np.eye(3, dtype=np.float32),
                                           freeze=False).weight.requires_grad


def test_embedding_trains(rng):
    emb = nn.Embedding(6, 2)
    opt = ql.optim.SGD(emb.parameters(), lr=3.0)   # mse over 12: step 1/2
    target = rng.standard_normal((6, 2)).astype(np.float32)
    for _ in range(60):
        opt.zero_grad()
        loss = F.mse_loss(emb(np.arange(6)), ql.tensor(target))
        loss.backward()
        opt.step()
    assert_allclose(emb.weight.data, target, atol=1e-3)


@pytest.mark.parametrize("call,exc,match", [
    (lambda w: F.embedding([1.0], w), TypeError, "integer indices"),
    (lambda w: F.embedding([5], w), IndexError, r"\[0, 5\), got 5"),
    (lambda w: F.embedding([-1], w), IndexError, r"got -1"),
    (lambda w: F.embedding([1], w, padding_idx=5), ValueError, "padding_idx"),
    (lambda w: F.embedding([1], w, padding_idx=1.0), TypeError, "padding_idx"),
    (lambda w: F.embedding([1], w, sparse=True), NotImplementedError, "sparse"),
    (lambda w: F.embedding([1], w, max_norm=-1.0), ValueError, "max_norm"),
    (lambda w: F.embedding([1], w[0]), ValueError, "2-d"),
    (lambda w: F.embedding_bag([1, 2], w), ValueError, "`offsets` must be a 1-d"),
    (lambda w: F.embedding_bag([[1, 2]], w, [0]), ValueError, "`offsets` must be None"),
    (lambda w: F.embedding_bag([[[1]]], w, None), ValueError, "1-d .* or 2-d"),
    (lambda w: F.embedding_bag([1, 2], w, [1]), ValueError, r"offsets\[0\]` must be 0"),
    (lambda w: F.embedding_bag([1, 2], w, [0, 3]), ValueError, "at most len"),
    (lambda w: F.embedding_bag([1, 2, 3], w, [0, 2, 1]), ValueError, "non-decreasing"),
    (lambda w: F.embedding_bag([1, 2], w, [0.0]), TypeError, "integers"),
    (lambda w: F.embedding_bag([1, 2], w, [0], mode="prod"), ValueError, "`mode`"),
    (lambda w: F.embedding_bag([1, 2], w, [0], mode="mean",
                               per_sample_weights=np.ones(2, np.float32)),
     ValueError, "only supported for mode='sum'"),
    (lambda w: F.embedding_bag([1, 2], w, [0], mode="sum",
                               per_sample_weights=np.ones(3, np.float32)),
     ValueError, "shape of `input`"),
    (lambda w: F.embedding_bag([1, 2], w, [0], mode="max", scale_grad_by_freq=True),
     ValueError, "scale_grad_by_freq"),
    (lambda w: F.embedding_bag([1, 2], w, [], include_last_offset=True), ValueError,
     "must not be empty"),
    (lambda w: nn.Embedding(-1, 2), ValueError, "num_embeddings"),
    (lambda w: nn.EmbeddingBag(4, 2, mode="median"), ValueError, "`mode`"),
    (lambda w: nn.Embedding(4, 2, sparse=True), NotImplementedError, "sparse"),
    (lambda w: nn.Embedding(4, 2, _weight=np.ones((3, 2))), ValueError, r"\(4, 2\)"),
])
def test_float_embeddings_reject_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call(np.ones((5, 3), np.float32))


# -- quantized modules ---------------------------------------------------------------------------

def _torch_quantized(torch, cls_name, w, **kw):
    import torch.ao.nn.quantized as tnnq
    import torch.ao.quantization as ttq
    float_cls = getattr(torch.nn, cls_name)
    m = float_cls(*w.shape, **kw)
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(w))
    m.qconfig = ttq.float_qparams_weight_only_qconfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(tnnq, cls_name).from_float(m)


def _ours_quantized(cls_name, w, **kw):
    m = getattr(nn, cls_name)(*w.shape, _weight=w, **kw)
    m.qconfig = tq.float_qparams_weight_only_qconfig
    return getattr(nnq, cls_name).from_float(m)


def test_quantized_embedding_equals_torch_bit_for_bit(torch_mod, rng):
    torch = torch_mod
    for n, d in ((10, 4), (37, 19), (5, 1), (200, 64)):
        w = (rng.standard_normal((n, d)) * rng.uniform(0.01, 3, (n, 1))).astype(np.float32)
        w[0] = 0.25                                   # a constant row: scale 1 (eps rule)
        ours, theirs = _ours_quantized("Embedding", w), _torch_quantized(torch, "Embedding", w)
        assert repr(ours) == repr(theirs).replace("torch.", "qlearn.")
        qw, tw = ours.weight(), theirs.weight()
        assert qw.qscheme() is FQ
        assert_array_equal(qw.int_repr(), tw.int_repr().numpy())
        assert_array_equal(qw.q_per_channel_scales(), tw.q_per_channel_scales().numpy())
        assert_array_equal(qw.q_per_channel_zero_points(),
                           tw.q_per_channel_zero_points().numpy())
        idx = rng.integers(0, n, (3, 7))
        assert_array_equal(ours(idx).numpy(), theirs(torch.from_numpy(idx)).numpy())
        # the lookup is PyTorch's fma(S, q, -Z S), not dequantize()'s (q - Z) S
        assert_allclose(ours(np.arange(n)).numpy(), qw.dequantize(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("include_last_offset", [False, True])
def test_quantized_embedding_bag_sum_equals_torch_bit_for_bit(weighted, include_last_offset,
                                                              torch_mod, rng):
    torch = torch_mod
    w = rng.standard_normal((50, 37)).astype(np.float32)
    kw = dict(mode="sum", include_last_offset=include_last_offset)
    ours, theirs = _ours_quantized("EmbeddingBag", w, **kw), \
        _torch_quantized(torch, "EmbeddingBag", w, **kw)
    for _ in range(10):
        idx = rng.integers(0, 50, 40)
        off = np.sort(rng.integers(0, 41, 5))
        off[0] = 0
        if include_last_offset:
            off = np.append(off, 40)
        psw = rng.standard_normal(40).astype(np.float32) if weighted else None
        got = ours(idx, off, psw).numpy()
        want = theirs(torch.from_numpy(idx), torch.from_numpy(off),
                      None if psw is None else torch.from_numpy(psw)).numpy()
        assert_array_equal(got, want)
    idx2 = rng.integers(0, 50, (6, 5))
    if not include_last_offset:
        assert_array_equal(ours(idx2).numpy(), theirs(torch.from_numpy(idx2)).numpy())


def test_quantized_embedding_bag_mean_and_max_reduce_as_the_float_module(torch_mod, rng):
    torch = torch_mod
    w = rng.standard_normal((30, 9)).astype(np.float32)
    idx, off = rng.integers(0, 30, 25), np.array([0, 4, 4, 11, 24])
    for mode in ("mean", "max"):
        ours = _ours_quantized("EmbeddingBag", w, mode=mode)
        deq = ours.weight().dequantize()
        float_bag = torch.nn.functional.embedding_bag(
            torch.from_numpy(idx), torch.from_numpy(deq), torch.from_numpy(off), mode=mode)
        assert_allclose(ours(idx, off).numpy(), float_bag.numpy(), rtol=1e-5, atol=1e-6)
        # PyTorch 2.13's quantized bag sums whatever its mode (the documented difference)
        theirs = _torch_quantized(torch, "EmbeddingBag", w, mode=mode)
        summed = _ours_quantized("EmbeddingBag", w, mode="sum")
        assert_array_equal(theirs(torch.from_numpy(idx), torch.from_numpy(off)).numpy(),
                           summed(idx, off).numpy())


def test_quantized_embedding_bag_leaves_padding_out(rng):
    w = rng.standard_normal((8, 3)).astype(np.float32)
    q = _ours_quantized("EmbeddingBag", w, mode="mean", padding_idx=2)
    full = _ours_quantized("EmbeddingBag", w, mode="mean")
    assert_array_equal(q([2, 5, 2, 6], [0, 1]).numpy(),
                       np.stack([np.zeros(3, np.float32), full([5, 6], [0]).numpy()[0]]))


def test_prepare_convert_swaps_embeddings_as_torch(torch_mod, rng):
    torch = torch_mod
    import torch.ao.quantization as ttq

    class Ours(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 6)
            self.bag = nn.EmbeddingBag(20, 6, mode="sum")
            self.lin = nn.Linear(6, 2)

        def forward(self, x, bag_idx, off):
            return self.lin(self.emb(x).sum(0) + self.bag(bag_idx, off))

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(20, 6)
            self.bag = torch.nn.EmbeddingBag(20, 6, mode="sum")
            self.lin = torch.nn.Linear(6, 2)

        def forward(self, x, bag_idx, off):
            return self.lin(self.emb(x).sum(0) + self.bag(bag_idx, off))

    ours, theirs = Ours(), Theirs()
    with torch.no_grad():
        for name in ("emb", "bag"):
            getattr(theirs, name).weight.copy_(torch.from_numpy(getattr(ours, name).weight.data))
        theirs.lin.weight.copy_(torch.from_numpy(ours.lin.weight.data))
        theirs.lin.bias.copy_(torch.from_numpy(ours.lin.bias.data))
    for m, q in ((ours, tq), (theirs, ttq)):
        m.emb.qconfig = q.float_qparams_weight_only_qconfig
        m.bag.qconfig = q.float_qparams_weight_only_qconfig
    tq.prepare(ours, inplace=True)
    ttq.prepare(theirs, inplace=True)
    assert type(ours.emb.activation_post_process).__name__ == "PlaceholderObserver"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tq.convert(ours, inplace=True)
        ttq.convert(theirs, inplace=True)
    assert repr(ours).replace("qlearn.", "torch.").split("\n")[1:] == \
        repr(theirs).split("\n")[1:]
    assert type(ours.emb) is nnq.Embedding and type(ours.bag) is nnq.EmbeddingBag
    x, bi, off = rng.integers(0, 20, (4, 3)), rng.integers(0, 20, 10), np.array([0, 3, 3])
    got = ours(x, bi, off).numpy()
    want = theirs(torch.from_numpy(x), torch.from_numpy(bi), torch.from_numpy(off))
    assert_allclose(got, want.detach().numpy(), rtol=1e-6, atol=1e-6)   # Linear in float
    assert_array_equal(ours.emb(x).numpy(), theirs.emb(torch.from_numpy(x)).numpy())


def test_quantized_state_dict_round_trip(tmp_path, rng):
    w = rng.standard_normal((7, 5)).astype(np.float32)
    q = _ours_quantized("EmbeddingBag", w, mode="max")
    ql.save(q.state_dict(), tmp_path / "e.qlearn")
    other = nnq.EmbeddingBag(7, 5, mode="max")
    other.load_state_dict(ql.load(tmp_path / "e.qlearn"))
    assert other.weight() == q.weight()
    idx, off = rng.integers(0, 7, 9), np.array([0, 4])
    assert_array_equal(other(idx, off).numpy(), q(idx, off).numpy())


def test_quantized_from_float_requires_the_float_qparams_qconfig(rng):
    emb = nn.Embedding(4, 3)
    with pytest.raises(ValueError, match="has no `qconfig`"):
        nnq.Embedding.from_float(emb)
    emb.qconfig = tq.default_qconfig
    with pytest.raises(ValueError, match="only supported with float_qparams_weight_only"):
        nnq.Embedding.from_float(emb)
    emb.qconfig = None           # as PyTorch: None means float_qparams_weight_only_qconfig
    assert nnq.Embedding.from_float(emb).weight().qscheme() is FQ
    bag = nn.EmbeddingBag(4, 3)
    bag.qconfig = tq.QConfig(activation=tq.PlaceholderObserver,
                             weight=tq.PerChannelMinMaxObserver.with_args(
                                 dtype=ql.qint8, qscheme=FQ))
    with pytest.raises(ValueError, match="qlearn.quint8"):
        nnq.EmbeddingBag.from_float(bag)
    with pytest.raises(TypeError, match="expects a"):
        nnq.Embedding.from_float(bag)


def test_quantized_modules_reject_bad_input(rng):
    m = nnq.EmbeddingBag(4, 3, mode="mean")
    with pytest.raises(TypeError, match="per_channel_affine_float_qparams"):
        m.set_weight(ql.quantize_per_channel(np.ones((4, 3)), [1.0] * 4, [0] * 4, 0,
                                             ql.quint8))
    with pytest.raises(ValueError, match=r"shape \(4, 3\)"):
        m.set_weight(ql.quantize_per_channel(np.ones((5, 3)), [1.0] * 5,
                                             np.zeros(5, np.float32), 0, ql.quint8))
    with pytest.raises(IndexError, match=r"\[0, 4\)"):
        m([4], [0])
    with pytest.raises(ValueError, match="only supported for mode='sum'"):
        m([1], [0], np.ones(1, np.float32))
    with pytest.raises(ValueError, match=r"offsets\[0\]"):
        m([1, 2], [1])
    with pytest.raises(ValueError, match="qlearn.quint8"):
        nnq.Embedding(4, 3, dtype=ql.qint8)
    with pytest.raises(NotImplementedError, match="compressed_indices_mapping"):
        m([1], [0], None, np.arange(4))
    from qlearn.float_qparams import embedding_bag_byte
    qw = m.weight()
    with pytest.raises(IndexError):
        embedding_bag_byte(qw, np.array([7]), np.array([0, 1]))
    with pytest.raises(ValueError, match="bounds"):
        embedding_bag_byte(qw, np.array([1]), np.array([0, 2]))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_quantized_lookup_avx2_equals_portable_loop(mode, num_threads, rng):
    from qlearn.kernels import simd
    w = (rng.standard_normal((300, 45)) * 3).astype(np.float32)   # D = 45: lanes and a tail
    q = _ours_quantized("EmbeddingBag", w, mode=mode)
    idx, off = rng.integers(0, 300, 4000), np.sort(rng.integers(0, 4000, 64))
    off[0] = 0
    psw = rng.standard_normal(4000).astype(np.float32) if mode == "sum" else None
    fast = q(idx, off, psw).numpy()
    with simd.use("generic"):
        plain = q(idx, off, psw).numpy()
    assert_array_equal(fast, plain)


# -- quantization-aware training -----------------------------------------------------------------

def test_embedding_fake_quant_equals_torch(torch_mod, rng):
    torch = torch_mod
    import torch.ao.quantization.fake_quantize as tfq

    from qlearn.quantization.fake_quantize import default_embedding_fake_quant
    for _ in range(10):
        w = rng.standard_normal((int(rng.integers(1, 30)), int(rng.integers(1, 20)))) \
            .astype(np.float32)
        ours, theirs = default_embedding_fake_quant(), tfq.default_embedding_fake_quant()
        for k in range(3):
            x = w * np.float32(1 + 0.3 * k)
            xq, xt = ql.tensor(x, requires_grad=True), torch.from_numpy(x).requires_grad_(True)
            yq, yt = ours(xq), theirs(xt)
            g = rng.standard_normal(x.shape).astype(np.float32)
            yq.backward(ql.tensor(g))
            yt.backward(torch.from_numpy(g))
            assert_array_equal(yq.numpy(), yt.detach().numpy())
            assert_array_equal(xq.grad.numpy(), xt.grad.numpy())
            assert ours.zero_point.dtype == np.float32
            assert_array_equal(ours.zero_point, theirs.zero_point.numpy())
            assert_array_equal(ours.scale, theirs.scale.numpy())


@pytest.mark.parametrize("cls_name", ["Embedding", "EmbeddingBag"])
def test_qat_embedding_trains_and_converts_as_torch(cls_name, torch_mod, rng):
    torch = torch_mod
    import torch.ao.nn.qat as tnnqat
    import torch.ao.nn.quantized as tnnq
    import torch.ao.quantization as ttq

    import qlearn.nn.qat as nnqat
    from qlearn.quantization.qconfig import default_embedding_qat_qconfig
    w = rng.standard_normal((12, 5)).astype(np.float32)
    kw = dict(mode="sum") if cls_name == "EmbeddingBag" else {}
    ours = getattr(nn, cls_name)(12, 5, _weight=w, **kw)
    theirs = getattr(torch.nn, cls_name)(12, 5, _weight=torch.from_numpy(w.copy()), **kw)
    ours.qconfig = default_embedding_qat_qconfig
    theirs.qconfig = ttq.default_embedding_qat_qconfig
    qo = getattr(nnqat, cls_name).from_float(ours)
    qt = getattr(tnnqat, cls_name).from_float(theirs)
    idx = rng.integers(0, 12, (4, 3))
    yo, yt = qo(idx), qt(torch.from_numpy(idx))
    assert_array_equal(yo.numpy(), yt.detach().numpy())
    yo.sum().backward()
    yt.sum().backward()
    assert_allclose(qo.weight.grad.numpy(), qt.weight.grad.numpy(), rtol=1e-6, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        co = getattr(nnq, cls_name).from_float(qo)
        ct = getattr(tnnq, cls_name).from_float(qt)
    assert_array_equal(co.weight().int_repr(), ct.weight().int_repr().numpy())
    assert_array_equal(co(idx).numpy(), ct(torch.from_numpy(idx)).numpy())
    back = qo.to_float()
    assert type(back) is getattr(nn, cls_name)
    assert_array_equal(back.weight.data, qo.weight.data)


def test_qat_embedding_needs_the_float_qparams_qconfig():
    import qlearn.nn.qat as nnqat
    with pytest.raises(ValueError, match="`qconfig` must be given"):
        nnqat.Embedding(4, 2)
    with pytest.raises(ValueError, match="per_channel_affine_float_qparams"):
        nnqat.EmbeddingBag(4, 2, qconfig=tq.get_default_qat_qconfig("x86"))


def test_prepare_qat_and_convert_with_explicit_mappings(rng):
    # as in PyTorch, the default eager mappings leave QAT embeddings out: name them
    import qlearn.nn.qat as nnqat
    from qlearn.quantization.qconfig import default_embedding_qat_qconfig
    m = nn.Sequential(nn.EmbeddingBag(10, 4, mode="sum"))
    m[0].qconfig = default_embedding_qat_qconfig
    tq.prepare_qat(m, mapping={nn.EmbeddingBag: nnqat.EmbeddingBag}, inplace=True)
    assert type(m[0]) is nnqat.EmbeddingBag
    idx, off = rng.integers(0, 10, 8), np.array([0, 5])
    trained = m[0](idx, off).numpy()
    m.eval()
    tq.convert(m, mapping={nnqat.EmbeddingBag: nnq.EmbeddingBag}, inplace=True)
    assert type(m[0]) is nnq.EmbeddingBag
    assert_allclose(m[0](idx, off).numpy(), trained, rtol=1e-5, atol=1e-5)


def test_bag_kernel_equals_its_numpy_twin(num_threads, rng):
    from qlearn.nn.functional_embedding import bag_reduce
    w = rng.standard_normal((40, 33)).astype(np.float32)
    for _ in range(6):
        length = int(rng.integers(0, 3000))
        idx = rng.integers(0, 40, length)
        bag_of = np.sort(rng.integers(0, 70, length))
        bounds = np.searchsorted(bag_of, np.arange(71))
        psw = rng.standard_normal(length).astype(np.float32)
        for weights in (None, psw):
            for fused in (True, False):
                got, _ = bag_reduce(w, idx, bag_of, 70, weights, "sum", fused)
                assert_array_equal(got, ref.embedding_bag_forward_ref(w, idx, bounds,
                                                                      weights, 0, fused))
        got, win = bag_reduce(w, idx, bag_of, 70, mode="max")
        want, want_win = ref.embedding_bag_forward_ref(w, idx, bounds, mode=2)
        assert_array_equal(got, want)
        assert_array_equal(win, want_win)
