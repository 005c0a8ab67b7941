"""Helpers shared by the quantized modules: weight quantization from an observer and
the checks ``from_float`` makes."""
import numpy as np

from ....dtypes import per_channel_affine, per_channel_symmetric, qint8, quint8
from ....qtensor import quantize_per_channel, quantize_per_tensor
from ...modules.module import Module

_WEIGHT_STATE = ("weight", "bias", "scale", "zero_point")


class QuantizedWeightModule(Module):
    """What quantized Linear and Conv2d share: a PyTorch-style repr and a state dict of
    ``weight`` (a QTensor), ``bias``, ``scale`` and ``zero_point`` (the output's), read
    back through ``set_weight_bias`` so the weight is packed again."""

    _NAME = "QuantizedModule"

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


def weight_observer_of(mod):
    """The observer (or fake quantizer) that gives the weight's qparams.

    QAT modules carry ``weight_fake_quant``; observed float modules get a fresh
    ``mod.qconfig.weight()``, which is run over the weight here, as PyTorch does.
    """
    if hasattr(mod, "weight_fake_quant"):
        return mod.weight_fake_quant
    qconfig = getattr(mod, "qconfig", None)
    if qconfig is None:
        raise ValueError(f"from_float: the float module {type(mod).__name__} has no "
                         f"`qconfig`; run qlearn.quantization.prepare on the model (or "
                         f"set `module.qconfig`) first")
    obs = qconfig.weight()
    obs(float_data(mod.weight))
    return obs


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


def check_float_module(mod, names, who):
    """Raise unless ``type(mod).__name__`` is one of ``names`` (duck-typed: qlearn's
    float modules and PyTorch-like stand-ins are both accepted)."""
    if type(mod).__name__ not in names:
        raise TypeError(f"{who}.from_float expects a float {' or '.join(names)} module, "
                        f"got {type(mod).__name__}")


def fused_parts(mod, n):
    """The children of a fused float module (``LinearReLU(linear, relu)``), indexable."""
    try:
        return [mod[i] for i in range(n)]
    except (TypeError, KeyError, IndexError):
        return [getattr(mod, name) for name in list(mod._modules)[:n]]
