"""Small quantized modules: Quantize / DeQuantize, activations, pooling, and the
float / quantized functional wrappers (``FloatFunctional``, ``QFunctional``)."""
import numpy as np

from .... import _validation as V
from ....autograd.tensor import Tensor
from ....dtypes import quint8
from ....qtensor import QTensor, quantize_per_tensor
from ... import functional as F
from ...modules.module import Module
from .. import functional as qF
from ..packed_params import require_quantized
from .utils import activation_qparams


class _OutputQParamsState(Module):
    """Modules whose state is the output's ``scale`` and ``zero_point``: both go in the
    state dict (as PyTorch's ``Quantize`` and ``QFunctional``), so a converted model
    saved with :func:`qlearn.save` loads back into a freshly converted one."""

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "scale"] = np.float64(self.scale)
        destination[prefix + "zero_point"] = np.int64(self.zero_point)

    def _load_from_state_dict(self, state_dict, prefix, missing, unexpected, errors):
        super()._load_from_state_dict(state_dict, prefix, missing, unexpected, errors)
        for name, cast in (("scale", float), ("zero_point", int)):
            if prefix + name in state_dict:
                # torch's Quantize saves them as 1-element tensors, qlearn as scalars
                value = np.asarray(state_dict[prefix + name])
                if value.size != 1:
                    raise ValueError(f"`{prefix + name}` must hold one value, got shape "
                                     f"{value.shape}")
                setattr(self, name, cast(value.reshape(())))
            else:
                missing.append(prefix + name)

    def _extra_state_keys(self, prefix):
        return (prefix + "scale", prefix + "zero_point")

__all__ = [
    "AdaptiveAvgPool2d",
    "FXFloatFunctional",
    "DeQuantize",
    "Dropout",
    "FloatFunctional",
    "MaxPool2d",
    "QFunctional",
    "Quantize",
    "ReLU",
    "ReLU6",
]


class Quantize(_OutputQParamsState):
    r"""Quantize a float input: :math:`q = \operatorname{clamp}(\operatorname{round}(x/S + Z))`.

    >>> import qlearn.nn.quantized as nnq
    >>> nnq.Quantize(0.5, 2, ql.quint8)(np.array([1.0], np.float32)).int_repr()
    array([4], dtype=uint8)
    """

    def __init__(self, scale, zero_point, dtype):
        super().__init__()
        self.dtype = V.check_dtype(dtype)
        self.scale = V.check_scale(scale)
        self.zero_point = V.check_zero_point(zero_point, dtype.quant_min, dtype.quant_max)

    def forward(self, x):
        if isinstance(x, QTensor):
            raise TypeError("Quantize expects a float input, got a QTensor (it is "
                            "quantized already)")
        data = x if isinstance(x, np.ndarray) else getattr(x, "data", x)
        return quantize_per_tensor(data, self.scale, self.zero_point, self.dtype)

    def extra_repr(self):
        # PyTorch's Quantize keeps its qparams as 1-element tensors and prints them so
        from ....autograd import tensor
        return (f"scale={tensor([self.scale])!r}, zero_point={tensor([self.zero_point])!r}, "
                f"dtype={self.dtype!r}")

    @classmethod
    def from_float(cls, mod):
        """A Quantize with the ``(scale, zero_point)`` and dtype observed by
        ``mod.activation_post_process`` (a calibrated ``QuantStub``), as PyTorch's."""
        scale, zero_point = activation_qparams(mod, cls.__name__)
        return cls(scale, zero_point, getattr(mod.activation_post_process, "dtype", quint8))


def _dequantize_to_tensor(input):
    """``r = S (q - Z)`` as a float32 :class:`qlearn.Tensor`: the one implementation
    behind :class:`DeQuantize` and graph mode's
    :func:`qlearn.quantization.fx.convert.dequantize`, so the two give the same type.  A
    float Tensor passes through (as ``torch.Tensor.dequantize`` of a float tensor), a float
    ndarray is wrapped."""
    if isinstance(input, QTensor):
        return Tensor._wrap(input.dequantize())
    if isinstance(input, Tensor) and input.is_floating_point():
        return input
    if isinstance(input, np.ndarray) and input.dtype.kind == "f":
        return Tensor._wrap(input)
    raise TypeError(f"`input` must be a QTensor or a float tensor, got "
                    f"{type(input).__name__}"
                    + (f" of {input.dtype}" if hasattr(input, "dtype") else ""))


class DeQuantize(Module):
    r"""Dequantize: :math:`r = S (q - Z)`, a float32 :class:`qlearn.Tensor` (PyTorch's
    ``nnq.DeQuantize`` gives a float tensor), so the float part of the model after it
    gets the Tensor it had before conversion; ``.numpy()`` gives the array.  A float
    tensor passes through unchanged, as in PyTorch.

    >>> import qlearn.nn.quantized as nnq
    >>> y = nnq.DeQuantize()(ql.quantize_per_tensor([1.0, -0.5], 0.5, 2, ql.quint8))
    >>> y, y.numpy()
    (tensor([ 1.0000, -0.5000]), array([ 1. , -0.5], dtype=float32))
    """

    def forward(self, x):
        if not isinstance(x, (QTensor, Tensor, np.ndarray)):
            raise TypeError(f"DeQuantize expects a QTensor, got {type(x).__name__}")
        return _dequantize_to_tensor(x)

    @classmethod
    def from_float(cls, mod):
        """A new DeQuantize (the float ``DeQuantStub`` ``mod`` carries no parameters)."""
        return cls()


class ReLU(Module):
    """Quantized ReLU (:func:`qlearn.nn.quantized.functional.relu`)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        if not isinstance(x, QTensor):
            require_quantized(x, "QuantizedReLU")
        return qF.relu(x)        # quint8 or qint8, as PyTorch's

    def __repr__(self):
        return "QuantizedReLU()"

    @classmethod
    def from_float(cls, mod):
        """The quantized module for the float ``mod``, keeping its ``inplace`` flag (the
        output keeps the input's scale and zero point, so nothing is observed)."""
        return cls(getattr(mod, "inplace", False))


class ReLU6(ReLU):
    """Quantized ReLU6 (:func:`qlearn.nn.quantized.functional.relu6`)."""

    def forward(self, x):
        if not isinstance(x, QTensor):
            require_quantized(x, "QuantizedReLU6")
        return qF.relu6(x)

    def __repr__(self):
        return "QuantizedReLU6()"


class Dropout(Module):
    """Quantized dropout: the identity at inference, as PyTorch's ``nnq.Dropout``
    (``convert`` swaps an eval-mode ``nn.Dropout`` for it).

    >>> import qlearn.nn.quantized as nnq
    >>> nnq.Dropout(0.5)(ql.quantize_per_tensor([1.0], 0.5, 0, ql.quint8)).int_repr()
    array([2], dtype=uint8)
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        self.p, self.inplace = p, inplace

    def forward(self, x):
        require_quantized(x, "QuantizedDropout")
        return x

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"

    @classmethod
    def from_float(cls, mod):
        """The quantized dropout with ``mod``'s ``p`` and ``inplace``."""
        return cls(mod.p, getattr(mod, "inplace", False))


class MaxPool2d(Module):
    """Quantized max pooling (:func:`qlearn.nn.quantized.functional.max_pool2d`)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None \
            else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, x):
        require_quantized(x, "MaxPool2d")
        return qF.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                             self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, "
                f"ceil_mode={self.ceil_mode}")

    @classmethod
    def from_float(cls, mod):
        """The quantized pooling with ``mod``'s ``kernel_size``, ``stride``, ``padding``,
        ``dilation``, ``return_indices`` and ``ceil_mode``."""
        return cls(mod.kernel_size, mod.stride, mod.padding, mod.dilation,
                   getattr(mod, "return_indices", False), getattr(mod, "ceil_mode", False))


class AdaptiveAvgPool2d(Module):
    """Quantized adaptive average pooling."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        require_quantized(x, "AdaptiveAvgPool2d")
        return qF.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"

    @classmethod
    def from_float(cls, mod):
        """The quantized pooling with ``mod``'s ``output_size``."""
        return cls(mod.output_size)


def _float(x):
    return x if isinstance(x, np.ndarray) else getattr(x, "data", x)


def _shapes_broadcast(x, y, who):
    """Name both operands when their shapes do not broadcast (arrays and Tensors; a
    graph-mode Proxy or a number is left to the operator)."""
    if isinstance(x, (np.ndarray, Tensor)) and isinstance(y, (np.ndarray, Tensor)):
        V.check_broadcast(x.shape, y.shape, who, "x", "y")


def _shapes_cat(x, dim, who):
    if x and all(isinstance(t, (np.ndarray, Tensor)) for t in x) and x[0].ndim:
        V.check_cat_shapes([t.shape for t in x], dim, who, "x")


class FloatFunctional(Module):
    """Float ``add``, ``mul``, ``cat``... whose outputs pass through
    ``activation_post_process`` (an observer after ``prepare``), so that ``convert``
    can swap this module for a :class:`QFunctional` with the observed parameters.

    >>> import qlearn.nn.quantized as nnq
    >>> nnq.FloatFunctional().add(np.ones(2, np.float32), np.ones(2, np.float32))
    array([2., 2.], dtype=float32)
    """

    def __init__(self):
        super().__init__()
        self.activation_post_process = Identity()

    def forward(self, x):
        raise RuntimeError("FloatFunctional is not meant to be called; use its "
                           "add / mul / cat / add_relu / add_scalar / mul_scalar methods")

    def _post(self, r):
        return self.activation_post_process(r)

    def add(self, x, y):
        """``x + y``, passed through ``activation_post_process``."""
        _shapes_broadcast(x, y, "FloatFunctional.add")
        return self._post(x + y)

    def add_scalar(self, x, y):
        """``x + y`` for a scalar ``y``; not observed, as in PyTorch (the output's
        qparams follow ``x``'s)."""
        return x + y       # as in PyTorch, not observed: the output range follows x

    def mul(self, x, y):
        """``x * y``, passed through ``activation_post_process``."""
        _shapes_broadcast(x, y, "FloatFunctional.mul")
        return self._post(x * y)

    def mul_scalar(self, x, y):
        """``x * y`` for a scalar ``y``; not observed, as in PyTorch."""
        return x * y

    def cat(self, x, dim=0):
        """The tensors of the sequence ``x`` concatenated along ``dim``, passed through
        ``activation_post_process``."""
        x = list(x)
        _shapes_cat(x, dim, "FloatFunctional.cat")
        if all(isinstance(t, np.ndarray) for t in x):
            return self._post(np.concatenate(x, axis=dim))
        from .... import autograd
        cat = getattr(autograd, "cat", None)
        if cat is None:
            return self._post(np.concatenate([_float(t) for t in x], axis=dim))
        return self._post(cat(x, dim))

    def add_relu(self, x, y):
        r""":math:`\max(x + y, 0)` by :func:`qlearn.nn.functional.relu` (a Tensor, for
        ndarray or Tensor inputs alike), passed through ``activation_post_process``:
        the nodes torch.fx records for PyTorch's (add, ``F.relu``, the observer)."""
        _shapes_broadcast(x, y, "FloatFunctional.add_relu")
        return self._post(F.relu(x + y))


class FXFloatFunctional(Module):
    r"""``FloatFunctional`` for graph mode (``torch.ao.nn.quantized.FXFloatFunctional``):
    the same ``add`` / ``add_scalar`` / ``mul`` / ``mul_scalar`` / ``cat`` /
    ``add_relu`` / ``matmul`` methods, computed in float with no observer of their own,
    so that :func:`qlearn.fx.symbolic_trace` records the plain operators (``a + b``,
    ``ql.cat``, ``F.relu``) and :func:`~qlearn.quantization.quantize_fx.prepare_fx`
    places the observers on the graph, as PyTorch's graph mode does.

    >>> import numpy as np
    >>> import qlearn.nn.quantized as nnq
    >>> ff = nnq.FXFloatFunctional()
    >>> ff.add_relu(np.array([1.0, -3.0], np.float32), np.ones(2, np.float32)).numpy()
    array([2., 0.], dtype=float32)
    >>> ff.mul_scalar(np.ones(2, np.float32), 3.0)
    array([3., 3.], dtype=float32)
    """

    def forward(self, x):
        raise RuntimeError("FXFloatFunctional is not meant to be called; use its "
                           "add / mul / cat / add_relu / add_scalar / mul_scalar / matmul "
                           "methods")

    def add(self, x, y):
        """``x + y``."""
        _shapes_broadcast(x, y, "FXFloatFunctional.add")
        return x + y

    def add_scalar(self, x, y):
        """``x + y`` for a number ``y``."""
        return x + y

    def mul(self, x, y):
        """``x * y``."""
        _shapes_broadcast(x, y, "FXFloatFunctional.mul")
        return x * y

    def mul_scalar(self, x, y):
        """``x * y`` for a number ``y``."""
        return x * y

    def cat(self, x, dim=0):
        """The tensors of the sequence ``x`` concatenated along ``dim``
        (:func:`qlearn.cat`)."""
        from .... import autograd
        x = list(x)
        _shapes_cat(x, dim, "FXFloatFunctional.cat")
        return autograd.cat(x, dim)

    def add_relu(self, x, y):
        r""":math:`\max(x + y, 0)` (:func:`qlearn.nn.functional.relu`)."""
        _shapes_broadcast(x, y, "FXFloatFunctional.add_relu")
        return F.relu(x + y)

    def matmul(self, x, y):
        """``x @ y``."""
        return x @ y


class Identity(Module):
    def forward(self, x):
        return x


class QFunctional(_OutputQParamsState):
    """The quantized twin of :class:`FloatFunctional`: ``add``, ``mul``, ``add_relu`` and
    ``cat`` requantize their result to ``(scale, zero_point)``; ``add_scalar`` /
    ``mul_scalar`` keep the integers and move the zero point / scale (as PyTorch's).

    >>> import qlearn.nn.quantized as nnq
    >>> f = nnq.QFunctional(); f.scale, f.zero_point = 0.25, 0
    >>> a = ql.quantize_per_tensor([1.0, 2.0], 0.5, 0, ql.quint8)
    >>> f.add(a, a).dequantize()
    array([2., 4.], dtype=float32)
    """

    def __init__(self):
        super().__init__()
        self.scale = 1.0
        self.zero_point = 0
        self.activation_post_process = Identity()

    def forward(self, x):
        raise RuntimeError("QFunctional is not meant to be called; use its "
                           "add / mul / cat / add_relu / add_scalar / mul_scalar methods")

    def extra_repr(self):
        return f"scale={self.scale}, zero_point={self.zero_point}"

    def __repr__(self):
        return f"QFunctional({self.extra_repr()})"

    def add(self, x, y):
        r""":math:`\mathrm{requant}_{S_o, Z_o}\big(S_x (q_x - Z_x) + S_y (q_y - Z_y)\big)`
        with :math:`(S_o, Z_o)` = ``(scale, zero_point)``; see
        :func:`qlearn.nn.quantized.functional.add`."""
        return qF.add(x, y, self.scale, self.zero_point)

    def add_relu(self, x, y):
        r""":math:`\mathrm{requant}_{S_o, Z_o}\big(\max(S_x (q_x - Z_x) + S_y (q_y - Z_y),
        0)\big)` with :math:`(S_o, Z_o)` = ``(scale, zero_point)``; see
        :func:`qlearn.nn.quantized.functional.add_relu`."""
        return qF.add_relu(x, y, self.scale, self.zero_point)

    def mul(self, x, y):
        r""":math:`q = \operatorname{nearbyint}\big((q_x - Z_x)(q_y - Z_y)\, S_x S_y / S_o\big)
        + Z_o`, clamped to [0, 255], :math:`(S_o, Z_o)` = ``(scale, zero_point)``; see
        :func:`qlearn.nn.quantized.functional.mul`."""
        return qF.mul(x, y, self.scale, self.zero_point)

    def add_scalar(self, x, y):
        r"""``x + y`` for a scalar ``y`` as PyTorch's quantized scalar add: the integers
        stay and the zero point moves, :math:`Z' = Z_x - \operatorname{round}(y / S_x)`
        (the range is stretched when :math:`Z'` leaves [0, 255]); ``(scale,
        zero_point)`` are not used.  See :func:`qlearn.nn.quantized.functional.add_scalar`.
        """
        require_quantized(x, "QFunctional.add_scalar", "x")
        return qF.add_scalar(x, y)

    def mul_scalar(self, x, y):
        r"""``x * y`` for a scalar ``y`` as PyTorch's quantized scalar multiply: the
        integers stay and the scale absorbs ``y``, :math:`S' = y S_x` for :math:`y > 0`
        (mirrored integers for :math:`y < 0`).  See
        :func:`qlearn.nn.quantized.functional.mul_scalar`."""
        require_quantized(x, "QFunctional.mul_scalar", "x")
        return qF.mul_scalar(x, y)

    def cat(self, x, dim=0):
        """The QTensors of ``x`` concatenated along ``dim``, each requantized to
        ``(scale, zero_point)``; see :func:`qlearn.nn.quantized.functional.cat`."""
        return qF.cat(x, dim, self.scale, self.zero_point)

    @classmethod
    def from_float(cls, mod):
        """A QFunctional with the ``(scale, zero_point)`` observed by the calibrated
        :class:`FloatFunctional` ``mod``'s ``activation_post_process``."""
        scale, zero_point = activation_qparams(mod, cls.__name__)
        q = cls()
        q.scale, q.zero_point = scale, zero_point
        return q
