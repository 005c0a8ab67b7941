"""Model-level quantizers (Distiller's DorefaQuantizer / PACTQuantizer / WRPNQuantizer)
and a quantization-aware training run on the digits CNN."""
import time

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import qlearn as ql
import qlearn.nn as nn
import qlearn.nn.functional as F
import qlearn.optim as optim
from qlearn.quantizers import (
    ClippedLinearQuantization,
    DorefaQuantizer,
    PACTQuantizer,
    PACTReLU,
    WRPNQuantizer,
    dorefa_quantize_weight,
    wrpn_quantize_weight,
)


def digits_cnn(seed=0):
    """conv-bn-relu x2, pool, linear: the digits CNN of the training tutorial."""
    ql.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 16, 10))


def test_prepare_model_rewrites_weights_and_activations():
    model = digits_cnn()
    opt = optim.SGD(model.parameters(), lr=0.1)
    q = PACTQuantizer(model, opt, bits_activations=4, bits_weights=4, act_clip_init_val=3.0)
    assert q.prepare_model() is model
    # first and last weighted layers at 8 bits, the middle one at 4
    assert q.module_qbits["0"]["bits_weights"] == 8
    assert q.module_qbits["3"]["bits_weights"] == 4
    assert q.module_qbits["8"]["bits_weights"] == 8
    assert "1" not in q.module_qbits and "weight" in dict(model[1].named_parameters())
    assert isinstance(model[2], PACTReLU) and isinstance(model[5], PACTReLU)
    assert model[2].num_bits == 4 and model[2].alpha.data[0] == 3.0
    # the alphas joined the optimizer; the float copies are the same Parameter objects
    assert any(any(p is model[2].alpha for p in g["params"]) for g in opt.param_groups)
    names = dict(model.named_parameters())
    assert "3.float_weight" in names and "3.weight" not in names and "3.bias" in names
    x = np.random.default_rng(0).uniform(0, 1, (4, 1, 8, 8)).astype(np.float32)
    out = model(ql.tensor(x))
    assert_array_equal(model[3].weight.numpy(),
                       dorefa_quantize_weight(model[3].float_weight, 4).numpy())
    assert len(np.unique(model[3].weight.numpy())) <= 16
    F.cross_entropy(out, np.arange(4)).backward()
    assert model[3].float_weight.grad is not None and model[2].alpha.grad is not None
    sd = model.state_dict()
    assert "3.float_weight" in sd and "2.alpha" in sd
    with pytest.raises(RuntimeError, match="already"):
        q.prepare_model()
    opt2 = optim.SGD(digits_cnn().parameters(), lr=0.1)
    model2 = digits_cnn()
    PACTQuantizer(model2, opt2, bits_activations=4, act_clip_decay=5e-4).prepare_model()
    assert opt2.param_groups[-1]["weight_decay"] == 5e-4
    assert opt2.param_groups[-1]["params"][0] is model2[2].alpha


def test_overrides_and_keep_first_last():
    model = digits_cnn()
    q = DorefaQuantizer(model, bits_activations=3, bits_weights=2, bits_bias=6,
                        overrides={r"[03]": {"bits_weights": 5},
                                   r"5": {"bits_activations": None}},
                        keep_first_last=None)
    q.prepare_model()
    assert q.module_qbits["0"] == {"bits_weights": 5, "bits_bias": 6}
    assert q.module_qbits["8"] == {"bits_weights": 2, "bits_bias": 6}
    assert isinstance(model[2], ClippedLinearQuantization) and isinstance(model[5], nn.ReLU)
    model(np.zeros((1, 1, 8, 8), np.float32))
    assert len(np.unique(model[8].weight.numpy())) <= 4
    assert "8.float_bias" in dict(model.named_parameters())
    quantized = q.quantize_params()
    assert set(quantized["8"]) == {"weight", "bias"}
    with pytest.raises(ValueError, match="override"):
        DorefaQuantizer(digits_cnn(), overrides={"0": {"bits": 4}})
    with pytest.raises(ValueError, match="bits_weights"):
        DorefaQuantizer(digits_cnn(), bits_weights=0)


def test_wrpn_quantizer():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    WRPNQuantizer(model, bits_activations=4, bits_weights=3, keep_first_last=None).prepare_model()
    model(np.ones((2, 4), np.float32))
    assert_array_equal(model[0].weight.numpy(),
                       wrpn_quantize_weight(model[0].float_weight, 3).numpy())
    with pytest.raises(ValueError, match="bits_weights"):
        WRPNQuantizer(nn.Sequential(nn.Linear(2, 2)), bits_weights=1)


def _accuracy(model, x, y):
    model.eval()
    with ql.no_grad():
        pred = model(ql.tensor(x)).numpy().argmax(1)
    model.train()
    return float((pred == y).mean())


def _train(model, opt, data, epochs, seed, gamma=1.0):
    from qlearn.datasets import DataLoader
    loader = DataLoader(data.x_train, data.y_train, batch_size=64, shuffle=True,
                        random_state=seed)
    sched = optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(model(ql.tensor(xb)), yb).backward()
            opt.step()
        sched.step()


def test_qat_digits_4bit_dorefa_weights_4bit_pact_activations(capsys):
    """Float training (3 epochs), then QAT (2 epochs, learning rate halved after the
    first) with every weight 4-bit DoReFa
    (first and last layers included) and every activation 4-bit PACT: >= 95% test
    accuracy.  See examples/qat_digits.py for the longer run and its numbers."""
    pytest.importorskip("sklearn", reason="load_digits reads the data scikit-learn ships")
    from qlearn.datasets import load_digits
    t0 = time.perf_counter()
    data = load_digits()
    model = digits_cnn(seed=0)
    _train(model, optim.Adam(model.parameters(), lr=3e-3), data, epochs=3, seed=0)
    float_acc = _accuracy(model, data.x_test, data.y_test)
    PACTQuantizer(model, bits_activations=4, bits_weights=4, act_clip_init_val=3.0,
                  keep_first_last=None).prepare_model()
    _train(model, optim.Adam(model.parameters(), lr=1e-3), data, epochs=2, seed=10, gamma=0.5)
    qat_acc = _accuracy(model, data.x_test, data.y_test)
    with capsys.disabled():
        print(f"\n[digits CNN] float {float_acc:.4f}  4-bit DoReFa/PACT QAT {qat_acc:.4f}  "
              f"({time.perf_counter() - t0:.1f} s)")
    w = model[3].weight.numpy()
    assert len(np.unique(w)) <= 16
    assert float_acc >= 0.95
    assert qat_acc >= 0.95
