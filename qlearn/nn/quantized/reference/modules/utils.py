r"""What the reference modules share: the weight's quantization parameters and the
quantize-dequantize of the weight,

.. math::

   \hat W = S_w\,\big(\operatorname{clamp}(\operatorname{round}(W / S_w + Z_w),
   q_{min}, q_{max}) - Z_w\big)

per tensor, or per output channel (``axis``), with
:func:`qlearn.quantize_per_tensor` / :func:`qlearn.quantize_per_channel` (PyTorch's
integers) and :meth:`QTensor.dequantize`.

The state dict has PyTorch's keys (``weight``, ``bias``, ``weight_scale``,
``weight_zero_point``, ``weight_axis``, ``weight_qscheme``, ``weight_dtype``); the last
two hold names (``"per_channel_affine"``, ``"qint8"``) where PyTorch stores its scheme
and dtype objects, so :func:`qlearn.save` can write them (loading accepts either).
"""
import numpy as np

from .....dtypes import (
    per_channel_affine,
    per_channel_affine_float_qparams,
    per_channel_symmetric,
    per_tensor_affine,
    per_tensor_symmetric,
    qint8,
    quint8,
)
from .....qtensor import quantize_per_channel, quantize_per_tensor

__all__ = ["ReferenceQuantizedModule"]

_QSCHEMES = (per_tensor_affine, per_channel_affine, per_channel_affine_float_qparams)
_STATE = ("weight_qscheme", "weight_dtype")


class ReferenceQuantizedModule:
    """Mixin of the reference modules: ``weight_qparams`` handling and ``get_weight``.

    A reference module computes in float: a QTensor input (what a ``Quantize`` before
    it returns in a model from eager ``convert(..., is_reference=True)``) is
    dequantized first, the "dequantize -> float op" of the reference pattern.
    (PyTorch's reference modules hand the quantized tensor to the float op, which
    refuses it, so its eager reference models do not run.)"""

    #: what ``convert`` tests to build the module with ``from_float(mod, weight_qparams)``
    _IS_REFERENCE = True

    @staticmethod
    def _float_input(x):
        from .....qtensor import QTensor
        return x.dequantize() if isinstance(x, QTensor) else x

    def _init_weight_qparams(self, weight_qparams):
        if weight_qparams is None:
            weight_qparams = {"qscheme": per_tensor_affine, "dtype": quint8, "scale": 1.0,
                              "zero_point": 0}
        if not isinstance(weight_qparams, dict):
            raise TypeError(f"`weight_qparams` must be a dict or None, got "
                            f"{type(weight_qparams).__name__}")
        qscheme = weight_qparams.get("qscheme", per_tensor_affine)
        # symmetric schemes quantize as affine ones with their (zero) zero point
        qscheme = {per_tensor_symmetric: per_tensor_affine,
                   per_channel_symmetric: per_channel_affine}.get(qscheme, qscheme)
        if qscheme not in _QSCHEMES:
            raise ValueError(f"`weight_qparams['qscheme']` must be one of "
                             f"{[str(q) for q in _QSCHEMES]}, got {qscheme!r}")
        dtype = weight_qparams.get("dtype", quint8)
        if dtype not in (qint8, quint8):
            raise ValueError(f"`weight_qparams['dtype']` must be qlearn.qint8 or "
                             f"qlearn.quint8, got {dtype!r}")
        self.weight_qscheme, self.weight_dtype = qscheme, dtype
        per_channel = qscheme is not per_tensor_affine
        scale = np.asarray(weight_qparams.get("scale", 1.0), np.float32)
        zp = np.asarray(weight_qparams.get("zero_point", 0),
                        np.float32 if qscheme is per_channel_affine_float_qparams
                        else np.int64)
        if per_channel:
            if "axis" not in weight_qparams:
                raise ValueError("`weight_qparams` of a per-channel scheme must give "
                                 "`axis`")
            scale, zp = scale.reshape(-1), zp.reshape(-1)
        elif scale.size != 1 or zp.size != 1:
            raise ValueError(f"`weight_qparams` of a per-tensor scheme must give one scale "
                             f"and zero point, got {scale.size} and {zp.size}")
        self.register_buffer("weight_scale", scale)
        self.register_buffer("weight_zero_point", zp)
        self.register_buffer("weight_axis",
                             np.asarray(int(weight_qparams.get("axis", 0)), np.int64))

    def get_quantized_weight(self):
        """The weight as a QTensor with the stored qparams."""
        w = np.asarray(self.weight.data, np.float32)
        if self.weight_qscheme is per_tensor_affine:
            return quantize_per_tensor(w, float(self.weight_scale.reshape(-1)[0]),
                                       int(self.weight_zero_point.reshape(-1)[0]),
                                       self.weight_dtype)
        return quantize_per_channel(w, self.weight_scale, self.weight_zero_point,
                                    int(self.weight_axis), self.weight_dtype)

    def get_weight(self):
        r"""The quantized-then-dequantized weight :math:`\hat W` (float32 ndarray)."""
        return self.get_quantized_weight().dequantize()

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        # by name ("per_tensor_affine", "qint8"), so qlearn.save can write them
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "weight_qscheme"] = self.weight_qscheme.name
        destination[prefix + "weight_dtype"] = self.weight_dtype.name

    def _load_from_state_dict(self, state_dict, prefix, missing, unexpected, errors):
        from ..... import dtypes
        super()._load_from_state_dict(state_dict, prefix, missing, unexpected, errors)
        for key in _STATE:
            if prefix + key not in state_dict:
                missing.append(prefix + key)
                continue
            value = state_dict[prefix + key]
            if isinstance(value, str):           # the saved name
                value = getattr(dtypes, value, None)
                if value is None:
                    errors.append(f"{prefix + key}: unknown name "
                                  f"{state_dict[prefix + key]!r}")
                    continue
            setattr(self, key, value)

    def _extra_state_keys(self, prefix):
        return tuple(prefix + k for k in _STATE)

    def __repr__(self):
        return f"{self._NAME}({self.extra_repr()})"


def weight_qparams_of(observer):
    """The ``weight_qparams`` dict of a weight observer that has seen the weight (the
    dict ``convert_to_reference_fx`` gives ``from_float``)."""
    scale, zero_point = observer.calculate_qparams()
    qscheme = observer.qscheme
    d = {"qscheme": qscheme, "dtype": observer.dtype}
    if qscheme in (per_tensor_affine, per_tensor_symmetric):
        d.update(scale=float(np.asarray(scale).reshape(-1)[0]),
                 zero_point=int(np.asarray(zero_point).reshape(-1)[0]))
    else:
        d.update(scale=np.asarray(scale), zero_point=np.asarray(zero_point),
                 axis=int(getattr(observer, "ch_axis", 0)))
    return d


def reference_from_float(cls, mod):
    """``cls.from_float(mod, weight_qparams)`` with the qparams of a fresh
    ``mod.qconfig.weight()`` run over ``mod``'s weight (a fused float module's first
    layer), as PyTorch's eager ``convert(..., is_reference=True)`` builds them.

    >>> import qlearn.quantization as tq
    >>> from qlearn import nn
    >>> import qlearn.nn.quantized.reference as nnqr
    >>> from qlearn.nn.quantized.reference.modules.utils import reference_from_float
    >>> lin = nn.Linear(3, 2)
    >>> lin.qconfig = tq.default_qconfig
    >>> ref = reference_from_float(nnqr.Linear, lin)
    >>> ref.weight_qscheme, ref.weight_dtype
    (qlearn.per_tensor_affine, qlearn.qint8)
    """
    qconfig = getattr(mod, "qconfig", None)
    if qconfig is None:
        raise ValueError(f"{cls.__name__}.from_float: the float module "
                         f"{type(mod).__name__} has no `qconfig`")
    obs = qconfig.weight()
    obs(np.asarray(mod.weight.data, np.float32))
    return cls.from_float(mod, weight_qparams_of(obs))
