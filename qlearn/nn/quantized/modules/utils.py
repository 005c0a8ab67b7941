"""Helpers shared by the quantized modules: weight quantization from an observer and
the checks ``from_float`` makes."""
import copy

import numpy as np

from ....dtypes import per_channel_affine, per_channel_symmetric, qint8, quint8
from ....qtensor import quantize_per_channel, quantize_per_tensor
from ...modules.module import Module

_WEIGHT_STATE = ("weight", "bias", "scale", "zero_point")


def deepcopy_sharing(module, memo, shared):
    """A deep copy of ``module`` whose attributes named in ``shared`` are the same
    objects: packed weights are immutable once built (``set_weight_bias`` replaces them
    whole) and hold compiled kernel plans that cannot be copied."""
    new = type(module).__new__(type(module))
    memo[id(module)] = new
    for key, value in module.__dict__.items():
        if key in shared:
            new.__dict__[key] = copy.copy(value) if isinstance(value, dict) else value
        else:
            new.__dict__[key] = copy.deepcopy(value, memo)
    return new


class QuantizedWeightModule(Module):
    """What quantized Linear and Conv2d share: a PyTorch-style repr and a state dict of
    ``weight`` (a QTensor), ``bias``, ``scale`` and ``zero_point`` (the output's), read
    back through ``set_weight_bias`` so the weight is packed again."""

    _NAME = "QuantizedModule"

    def __deepcopy__(self, memo):
        return deepcopy_sharing(self, memo, ("_packed_params",))

    def weight(self):
        """The qint8 weight, a QTensor ((out, in) for Linear, (O, C/groups, kh, kw) for
        Conv2d), as it was given to ``set_weight_bias``."""
        return self._packed_params.qweight

    def bias(self):
        """The float32 bias of shape (out,), or None."""
        return self._packed_params.bias

    def _weight_bias(self):
        return self.weight(), self.bias()

    def __repr__(self):
        return f"{self._NAME}({self.extra_repr()})"

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "weight"] = self.weight()
        destination[prefix + "bias"] = self.bias()
        destination[prefix + "scale"] = np.float64(self.scale)
        destination[prefix + "zero_point"] = np.int64(self.zero_point)

    def _load_from_state_dict(self, state_dict, prefix, missing, unexpected, errors):
        super()._load_from_state_dict(state_dict, prefix, missing, unexpected, errors)
        keys = [prefix + k for k in _WEIGHT_STATE]
        missing.extend(k for k in keys if k not in state_dict)
        if all(k in state_dict for k in keys):
            self.set_weight_bias(state_dict[keys[0]], state_dict[keys[1]])
            self.scale = float(state_dict[keys[2]])
            self.zero_point = int(state_dict[keys[3]])

    def _extra_state_keys(self, prefix):
        return tuple(prefix + k for k in _WEIGHT_STATE)


def float_data(x):
    """The float32 ndarray behind a Parameter / Tensor / ndarray (``None`` stays)."""
    if x is None:
        return None
    data = getattr(x, "data", x)
    return np.asarray(data, dtype=np.float32)


def quantize_weight(w, observer):
    """Quantize the float weight ``w`` with ``observer``'s parameters (qint8)."""
    dtype = getattr(observer, "dtype", qint8)
    if dtype is not qint8:
        raise ValueError(f"quantized modules need qint8 weights, the weight observer "
                         f"has dtype {dtype!r}")
    scale, zero_point = observer.calculate_qparams()
    scale, zero_point = np.asarray(scale), np.asarray(zero_point)
    if getattr(observer, "qscheme", None) in (per_channel_affine, per_channel_symmetric):
        return quantize_per_channel(w, scale.astype(np.float64),
                                    zero_point.astype(np.int64),
                                    getattr(observer, "ch_axis", 0), qint8)
    return quantize_per_tensor(w, float(scale.reshape(-1)[0]),
                               int(zero_point.reshape(-1)[0]), qint8)


def activation_qparams(mod, who):
    """``(scale, zero_point)`` of the observed output of ``mod`` (quint8)."""
    obs = getattr(mod, "activation_post_process", None)
    if obs is None:
        raise ValueError(f"{who}.from_float: the float module {type(mod).__name__} has "
                         f"no `activation_post_process`; prepare and calibrate the model "
                         f"first")
    dtype = getattr(obs, "dtype", quint8)
    if dtype is not quint8:
        raise ValueError(f"{who}.from_float: activations must be observed as quint8, the "
                         f"observer has dtype {dtype!r}")
    scale, zero_point = obs.calculate_qparams()
    return float(np.asarray(scale).reshape(-1)[0]), int(np.asarray(zero_point).reshape(-1)[0])


def _public_name(t):
    """``qlearn.nn.Linear`` for the class defined in ``qlearn.nn.modules.linear``."""
    return f"{t.__module__.rsplit('.modules', 1)[0]}.{t.__name__}"


def check_float_module(mod, expected, who):
    """Raise ``TypeError`` unless ``type(mod)`` is one of the classes ``expected``
    (exact types: a subclass is a different layer, as in PyTorch's ``from_float``)."""
    if type(mod) not in expected:
        names = " or ".join(_public_name(t) for t in expected)
        raise TypeError(f"{who}.from_float expects a {names} module, got "
                        f"{_public_name(type(mod))}")


def weight_for_quantization(mod):
    r"""``(layer, weight, bias, weight observer)`` of a float, fused or QAT module.

    ``layer`` holds the shape attributes (``in_features`` ...).  A fused float module
    (``nni.LinearReLU``) gives its first child; a QAT module with a batch norm gives its
    folded weight and bias (:math:`W' = W\gamma/\sqrt{\sigma^2+\epsilon}`,
    ``fold_bn``).  The observer is the QAT module's ``weight_fake_quant`` or a fresh
    ``qconfig.weight()``; either way it is run over the weight here, as PyTorch's
    ``from_float`` does, so its qparams are the weight's.
    """
    layer = mod
    if "weight" not in mod._parameters and len(mod._modules) and "0" in mod._modules:
        layer = mod._modules["0"]              # fused float module: (layer, relu)
        if getattr(layer, "qconfig", None) is None:
            layer.qconfig = getattr(mod, "qconfig", None)
    if hasattr(mod, "weight_fake_quant"):
        w, b = mod.fold_bn() if hasattr(mod, "fold_bn") else (mod.weight, mod.bias)
        obs = mod.weight_fake_quant
    else:
        w, b = layer.weight, layer.bias
        qconfig = getattr(layer, "qconfig", None)
        if qconfig is None:
            raise ValueError(f"from_float: the float module {type(mod).__name__} has no "
                             f"`qconfig`; run qlearn.quantization.prepare on the model (or "
                             f"set `module.qconfig`) first")
        obs = qconfig.weight()
    w, b = float_data(w), float_data(b)
    obs(w)
    return layer, w, b, obs
