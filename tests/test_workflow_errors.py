"""What bad use of the eager workflow gets: an error naming the module by its qualified
name and saying what to do."""
import numpy as np
import pytest

import qlearn as ql
import qlearn.nn.functional as F
import qlearn.nn.quantized as nnq
import qlearn.quantization as tq
from qlearn import nn

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

X = np.random.default_rng(0).normal(size=(2, 3, 8, 8)).astype(np.float32)


class Features(nn.Module):
    """``features`` is a Sequential whose second half the user forgot to re-quantize."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(tq.QuantStub(), nn.Conv2d(3, 4, 3), nn.ReLU(),
                                      tq.DeQuantStub(), nn.Conv2d(4, 4, 3), nn.ReLU())

    def forward(self, x):
        return self.features(x)


def calibrated_and_converted(model, *inputs):
    model.qconfig = tq.default_qconfig
    p = tq.prepare(model)
    p(*inputs)
    return tq.convert(p)


def test_float_array_reaching_a_quantized_module_names_it():
    q = calibrated_and_converted(Features(), X)
    with pytest.raises(TypeError, match=r"^`features\.4` \(nnq\.Conv2d\) got a float array: "
                                         r"add a QuantStub before it"):
        q(X)


def test_qtensor_reaching_a_float_module_names_it():
    m = nn.Sequential(tq.QuantStub(), nn.Linear(4, 4), nn.Linear(4, 2), tq.DeQuantStub())
    m[2].qconfig = None
    q = calibrated_and_converted(m, np.ones((2, 4), np.float32))
    with pytest.raises(TypeError, match=r"^`2` \(nn\.Linear\) got a QTensor: add a "
                                         r"DeQuantStub before it"):
        q(np.ones((2, 4), np.float32))


def test_qtensor_reaching_a_float_function():
    x = ql.quantize_per_tensor(np.ones((2, 4)), 0.1, 0, ql.quint8)
    for fn in (lambda: F.linear(x, np.ones((2, 4), np.float32)), lambda: F.relu(x),
               lambda: nn.Conv2d(1, 1, 1)(x.reshape(2, 1, 2, 2))):
        with pytest.raises(TypeError, match="is a QTensor.*DeQuantStub"):
            fn()
    # shape-only layers pass QTensors through, as torch's
    assert F.flatten(x.reshape(2, 2, 2)).shape == (2, 4)
    assert nn.Identity()(x) is x


class ReusedReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
        self.conv1, self.conv2 = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.relu(self.conv1(self.quant(x)))
        return self.dequant(self.relu(self.conv2(x)))


class ReusedAdd(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
        self.block = nn.Sequential(nn.Linear(4, 4))
        self.block.add = nnq.FloatFunctional()

    def forward(self, x):
        x = self.quant(x)
        y = self.block.add.add(x, self.block[0](x))
        return self.dequant(self.block.add.add(y, x))


def test_a_relu_reused_at_two_call_sites_is_caught_in_calibration():
    m = ReusedReLU()
    m.qconfig = tq.default_qconfig
    p = tq.prepare(m)
    with pytest.raises(RuntimeError, match=r"^`relu` \(nn\.ReLU\) was called twice in one "
                                           r"forward pass.*its own module"):
        p(X)
    # the float model itself is fine, and so is a submodule called on its own
    m(X)
    p.relu(X)
    p.relu(X)


def test_a_float_functional_reused_is_caught_in_calibration():
    m = ReusedAdd()
    m.qconfig = tq.default_qconfig
    p = tq.prepare(m)
    with pytest.raises(RuntimeError, match=r"^`block\.add` \(nnq\.FloatFunctional\) was "
                                           r"called twice in one forward pass"):
        p(np.ones((2, 4), np.float32))


def test_separate_modules_and_repeated_passes_are_fine():
    class TwoReLUs(ReusedReLU):
        def __init__(self):
            super().__init__()
            self.relu2 = nn.ReLU()

        def forward(self, x):
            x = self.relu(self.conv1(self.quant(x)))
            return self.dequant(self.relu2(self.conv2(x)))

    m = TwoReLUs()
    m.qconfig = tq.default_qconfig
    p = tq.prepare(m)
    for _ in range(3):      # one call per pass, pass after pass
        p(X)
    q = tq.convert(p)
    assert q(X).shape == (2, 4, 4, 4)


def test_module_type_with_no_mapping():
    m = nn.Sequential(tq.QuantStub(), nn.Linear(3, 3), nn.Tanh(), tq.DeQuantStub())
    m.qconfig = tq.default_qconfig
    p = tq.prepare(m, allow_list={tq.QuantStub, nn.Linear, nn.Tanh})
    p(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"^`2` \(nn\.Tanh\) was observed but has no entry "
                                         r"in the mapping: add `nn\.Tanh: <quantized "
                                         r"class>` to `mapping`"):
        tq.convert(p)
    # a mapping without Linear: the observed Linear is reported
    mapping = tq.get_default_static_quant_module_mappings()
    del mapping[nn.Linear]
    p = tq.prepare(m)
    p(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"`1` \(nn\.Linear\) was observed"):
        tq.convert(p, mapping=mapping)


def test_convert_before_calibration():
    m = Features()
    m.qconfig = tq.default_qconfig
    p = tq.prepare(m)
    with pytest.raises(RuntimeError, match=r"^`features\.0` \(tq\.QuantStub\): its observer "
                                           r"MinMaxObserver saw no data; run calibration"):
        tq.convert(p)
    # a branch that calibration never reached
    p = tq.prepare(m)
    p.features[0](X)
    with pytest.raises(RuntimeError, match=r"`features\.1` \(nn\.Conv2d\): its observer"):
        tq.convert(p)


def test_prepare_qat_needs_training_mode_and_arguments_are_checked():
    m = nn.Sequential(nn.Linear(2, 2)).eval()
    m.qconfig = tq.get_default_qat_qconfig()
    with pytest.raises(ValueError, match="must be in training mode; call model.train()"):
        tq.prepare_qat(m)
    with pytest.raises(TypeError, match="`model` must be an nn.Module, got int"):
        tq.prepare(3)
    with pytest.raises(TypeError, match="`run_fn` must be callable"):
        tq.quantize(m, None, [])
    with pytest.warns(UserWarning, match="no module has a qconfig"):
        tq.prepare(nn.Sequential(nn.Linear(2, 2)))


def test_from_float_checks_types():
    lin = nn.Linear(2, 2)
    lin.qconfig = tq.default_qconfig
    with pytest.raises(TypeError, match=r"Conv2d.from_float expects a qlearn\.nn\.Conv2d"):
        nnq.Conv2d.from_float(lin)
    with pytest.raises(ValueError, match="activation_post_process"):
        nnq.Linear.from_float(lin)


def test_quantize_receiving_a_qtensor():
    q = calibrated_and_converted(nn.Sequential(tq.QuantStub(), tq.DeQuantStub()),
                                 np.ones(3, np.float32))
    with pytest.raises(TypeError, match="Quantize expects a float input, got a QTensor"):
        q[0](q[0](np.ones(3, np.float32)))
