r"""Quantized normalisation modules (``torch.ao.nn.quantized.LayerNorm``, ``GroupNorm``,
``InstanceNorm1d/2d/3d``).

Each subclasses its float module (the same arguments, ``weight`` and ``bias`` kept in
float) and adds the output's ``scale`` and ``zero_point`` as buffers; ``forward``
takes a quint8 (or qint8) QTensor and runs the operator of
:mod:`qlearn.nn.quantized.functional_norm`, whose integers are PyTorch's.  ``convert``
builds them with ``from_float`` from an observed float module: its parameters and the
qparams of its output observer.
"""
import numpy as np

from ...modules.instancenorm import InstanceNorm1d as _FloatInstanceNorm1d
from ...modules.instancenorm import InstanceNorm2d as _FloatInstanceNorm2d
from ...modules.instancenorm import InstanceNorm3d as _FloatInstanceNorm3d
from ...modules.normalization import GroupNorm as _FloatGroupNorm
from ...modules.normalization import LayerNorm as _FloatLayerNorm
from ...parameter import Parameter
from .. import functional_norm as _ops
from .utils import activation_qparams

__all__ = ["LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"]


def _as_parameter(v):
    if v is None or isinstance(v, Parameter):
        return v
    return Parameter(np.asarray(getattr(v, "data", v), np.float32))


class _OutputQParams:
    """The output ``scale`` (float32) and ``zero_point`` (int64) buffers."""

    def _set_qparams(self, scale, zero_point):
        self.register_buffer("scale", np.array(scale, np.float32))
        self.register_buffer("zero_point", np.array(zero_point, np.int64))

    def _qparams(self):
        return (float(np.asarray(self.scale).reshape(-1)[0]),
                int(np.asarray(self.zero_point).reshape(-1)[0]))

    def __repr__(self):
        return f"Quantized{type(self).__name__}({self.extra_repr()})"


class LayerNorm(_OutputQParams, _FloatLayerNorm):
    r"""Quantized layer norm over the trailing ``normalized_shape`` dimensions
    (:func:`qlearn.nn.quantized.functional.layer_norm`):

    .. math::
        y = \frac{x - \mathrm E[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \odot \gamma + \beta,
        \qquad q_y = \operatorname{clamp}(\operatorname{nearbyint}(y / S_y) + Z_y)

    with float ``weight`` :math:`\gamma` and ``bias`` :math:`\beta` (or None) and the
    output ``scale`` :math:`S_y` and ``zero_point`` :math:`Z_y`.

    >>> import qlearn.nn.quantized as nnq
    >>> m = nnq.LayerNorm((2,), None, None, 0.01, 128, elementwise_affine=False)
    >>> m
    QuantizedLayerNorm((2,), eps=1e-05, elementwise_affine=False, bias=False)
    >>> m(ql.quantize_per_tensor(np.array([[1.0, 3.0]]), 0.1, 10, ql.quint8)).int_repr()
    array([[ 28, 228]], dtype=uint8)
    """

    def __init__(self, normalized_shape, weight, bias, scale, zero_point, eps=1e-5,
                 elementwise_affine=True, device=None, dtype=None):
        super().__init__(normalized_shape, eps, elementwise_affine, device=device,
                         dtype=dtype)
        self.weight = _as_parameter(weight)
        self.bias = _as_parameter(bias)
        self._set_qparams(scale, zero_point)

    def forward(self, input):
        return _ops.layer_norm(input, self.normalized_shape, self.weight, self.bias,
                               self.eps, *self._qparams())

    @classmethod
    def from_float(cls, mod):
        """Build from an observed float ``nn.LayerNorm``: its shape, ``eps``, weight and
        bias, and the output qparams of ``mod.activation_post_process``."""
        if type(mod) is not _FloatLayerNorm:
            raise TypeError(f"{cls.__name__}.from_float expects a float LayerNorm, got "
                            f"{type(mod).__name__}")
        scale, zero_point = activation_qparams(mod, cls.__name__)
        return cls(mod.normalized_shape, mod.weight, mod.bias, scale, zero_point, mod.eps,
                   mod.elementwise_affine)


class GroupNorm(_OutputQParams, _FloatGroupNorm):
    r"""Quantized group norm of (N, C, \*) input with at least 3 dimensions
    (:func:`qlearn.nn.quantized.functional.group_norm`):

    .. math::
        y_{n,c} = \frac{x_{n,c} - \mathrm E[x_{n,G(c)}]}{\sqrt{\mathrm{Var}[x_{n,G(c)}]
        + \epsilon}}\, \gamma_c + \beta_c

    >>> import qlearn.nn.quantized as nnq
    >>> m = nnq.GroupNorm(2, 4, None, None, 0.01, 128, affine=False)
    >>> m
    QuantizedGroupNorm(2, 4, eps=1e-05, affine=False, bias=False)
    >>> x = ql.quantize_per_tensor(np.array([[[1.0], [3.0], [5.0], [5.0]]]), 0.1, 0, ql.quint8)
    >>> m(x).int_repr().ravel()
    array([ 28, 228, 128, 128], dtype=uint8)
    """

    def __init__(self, num_groups, num_channels, weight, bias, scale, zero_point, eps=1e-5,
                 affine=True, device=None, dtype=None):
        super().__init__(num_groups, num_channels, eps, affine, device, dtype)
        self.weight = _as_parameter(weight)
        self.bias = _as_parameter(bias)
        self._set_qparams(scale, zero_point)

    def forward(self, input):
        return _ops.group_norm(input, self.num_groups, self.weight, self.bias, self.eps,
                               *self._qparams())

    @classmethod
    def from_float(cls, mod):
        """Build from an observed float ``nn.GroupNorm``: its groups, channels, ``eps``,
        weight and bias, and the output qparams of ``mod.activation_post_process``."""
        if type(mod) is not _FloatGroupNorm:
            raise TypeError(f"{cls.__name__}.from_float expects a float GroupNorm, got "
                            f"{type(mod).__name__}")
        scale, zero_point = activation_qparams(mod, cls.__name__)
        return cls(mod.num_groups, mod.num_channels, mod.weight, mod.bias, scale,
                   zero_point, mod.eps, mod.affine)


class _InstanceNormQ(_OutputQParams):
    _FLOAT = None

    def __init__(self, num_features, weight, bias, scale, zero_point, eps=1e-5,
                 momentum=0.1, affine=False, track_running_stats=False, device=None,
                 dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype)
        self.weight = _as_parameter(weight)
        self.bias = _as_parameter(bias)
        self._set_qparams(scale, zero_point)

    def forward(self, input):
        d = self._spatial
        if getattr(input, "ndim", None) != d + 2:
            raise ValueError(f"Quantized{type(self).__name__} expects a {d + 2}-d "
                             f"(N, C, ...) input, got shape {getattr(input, 'shape', None)}")
        return _ops.instance_norm(input, self.weight, self.bias, self.eps, *self._qparams())

    @classmethod
    def from_float(cls, mod):
        """Build from an observed float instance norm of the same dimension: its
        features, ``eps``, ``affine``, weight and bias, and the output qparams of
        ``mod.activation_post_process``.  (PyTorch's ``from_float`` passes ``affine``
        where ``momentum`` goes; qlearn passes each to its own argument.)"""
        if type(mod) is not cls._FLOAT:
            raise TypeError(f"{cls.__name__}.from_float expects a float "
                            f"{cls._FLOAT.__name__}, got {type(mod).__name__}")
        scale, zero_point = activation_qparams(mod, cls.__name__)
        return cls(mod.num_features, mod.weight, mod.bias, scale, zero_point, mod.eps,
                   mod.momentum, mod.affine)


class InstanceNorm1d(_InstanceNormQ, _FloatInstanceNorm1d):
    r"""Quantized instance norm of (N, C, L) input
    (:func:`qlearn.nn.quantized.functional.instance_norm`):
    :math:`y_{n,c} = (x_{n,c} - \mathrm E[x_{n,c}]) / \sqrt{\mathrm{Var}[x_{n,c}] +
    \epsilon}\; \gamma_c + \beta_c`.

    >>> import qlearn.nn.quantized as nnq
    >>> m = nnq.InstanceNorm1d(1, None, None, 0.01, 128)
    >>> m(ql.quantize_per_tensor(np.array([[[1.0, 3.0]]]), 0.1, 0, ql.quint8)).int_repr()
    array([[[ 28, 228]]], dtype=uint8)
    """
    _FLOAT = _FloatInstanceNorm1d


class InstanceNorm2d(_InstanceNormQ, _FloatInstanceNorm2d):
    r"""Quantized instance norm of (N, C, H, W) input (see :class:`InstanceNorm1d`).

    >>> import qlearn.nn.quantized as nnq
    >>> m = nnq.InstanceNorm2d(3, np.ones(3), np.zeros(3), 0.05, 128, affine=True)
    >>> m.extra_repr()
    '3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=False'
    >>> x = ql.quantize_per_tensor(np.array([[[[1.0, 3.0]]] * 3]), 0.1, 0, ql.quint8)
    >>> m(x).int_repr().ravel()
    array([108, 148, 108, 148, 108, 148], dtype=uint8)
    """
    _FLOAT = _FloatInstanceNorm2d


class InstanceNorm3d(_InstanceNormQ, _FloatInstanceNorm3d):
    r"""Quantized instance norm of (N, C, D, H, W) input (see :class:`InstanceNorm1d`).

    >>> import qlearn.nn.quantized as nnq
    >>> m = nnq.InstanceNorm3d(2, None, None, 0.05, 128)
    >>> m(ql.quantize_per_tensor(np.ones((1, 2, 2, 2, 2)), 0.1, 0, ql.quint8)).shape
    (1, 2, 2, 2, 2)
    """
    _FLOAT = _FloatInstanceNorm3d
