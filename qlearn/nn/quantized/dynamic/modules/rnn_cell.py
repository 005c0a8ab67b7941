r"""``nnqd.RNNCell``, ``nnqd.LSTMCell``, ``nnqd.GRUCell``: one recurrent step whose two
matmuls are dynamically quantized linears (``torch.ao.nn.quantized.dynamic``'s cells).

Each cell holds two packed weights, :math:`\hat W_{ih}` with :math:`b_{ih}` and
:math:`\hat W_{hh}` with :math:`b_{hh}`; a step runs the dynamic linear of
:class:`qlearn.nn.quantized.dynamic.Linear` on the input and on the hidden state (each
quantized with its own range, 7-bit as PyTorch's fbgemm cells, eq. :eq:`int8-dynamic`),
then the float gate equations of :class:`qlearn.nn.RNNCell` / ``LSTMCell`` /
``GRUCell``.  With ``dtype=float16`` the weights are stored in float16 and the matmuls
run in float32.

The state dict holds torch's float names (``weight_ih``, ``weight_hh``, ``bias_ih``,
``bias_hh``) with the quantized weights, as :class:`qlearn.nn.quantized.dynamic.LSTM`
does; PyTorch stores two opaque packed objects (``_packed_weight_ih``, ...).
"""
import numpy as np

from .....dtypes import qint8
from .....qtensor import QTensor, quantize_per_tensor
from ....modules.module import Module
from ....modules.rnn import _cell_extra_repr
from ...modules.utils import check_float_module, deepcopy_sharing, float_data, quantize_weight
from ...packed_params import PackedLinearWeight, linear_dynamic_apply
from .linear import float16_dtype, is_float16, linear_fp16_apply
from .rnn import _sigmoid

__all__ = ["RNNCell", "LSTMCell", "GRUCell"]

_STATE = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


class _DynamicRNNCellBase(Module):
    """The two packed weights, the input and state checks, ``from_float`` and the state
    dict shared by the three cells."""

    _GATES = 1
    _NAME = "DynamicQuantizedRNNCellBase"

    def __init__(self, input_size, hidden_size, bias=True, dtype=qint8):
        super().__init__()
        fp16 = is_float16(dtype)
        if dtype is not qint8 and not fp16:
            raise ValueError(f"`dtype` must be qlearn.qint8 or qlearn.float16, got "
                             f"{dtype!r}")
        for v, name in ((input_size, "input_size"), (hidden_size, "hidden_size")):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"`{name}` must be a positive int, got {v!r}")
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bool(bias)
        self.weight_dtype = float16_dtype() if fp16 else qint8
        g = self._GATES * hidden_size
        b = np.zeros(g, np.float32) if self.bias else None
        if fp16:
            w_ih, w_hh = np.zeros((g, input_size), np.float16), np.zeros((g, hidden_size),
                                                                        np.float16)
        else:
            w_ih = quantize_per_tensor(np.zeros((g, input_size)), 1.0, 0, qint8)
            w_hh = quantize_per_tensor(np.zeros((g, hidden_size)), 1.0, 0, qint8)
        self.set_weight_bias(w_ih, w_hh, b, b)

    def __deepcopy__(self, memo):
        return deepcopy_sharing(self, memo, ("_packed_ih", "_packed_hh"))

    def set_weight_bias(self, w_ih, w_hh, b_ih, b_hh):
        """Set the weights (G hidden, input) and (G hidden, hidden) and the float biases
        (G hidden,), G = 1, 4, 3 for the RNN, LSTM, GRU cell.  The weights are qint8
        QTensors, or float arrays (stored as float16) when ``dtype`` is float16."""
        g = self._GATES * self.hidden_size
        for w, want, name in ((w_ih, (g, self.input_size), "w_ih"),
                              (w_hh, (g, self.hidden_size), "w_hh")):
            if tuple(w.shape) != want:
                raise ValueError(f"`{name}` must have shape {want}, got {tuple(w.shape)}")
        if isinstance(w_ih, QTensor):
            self._packed_ih = PackedLinearWeight(w_ih, b_ih)
            self._packed_hh = PackedLinearWeight(w_hh, b_hh)
        else:
            self._packed_ih = (np.asarray(float_data(w_ih)).astype(np.float16),
                               float_data(b_ih))
            self._packed_hh = (np.asarray(float_data(w_hh)).astype(np.float16),
                               float_data(b_hh))

    def _weights(self):
        out = []
        for packed in (self._packed_ih, self._packed_hh):
            out.append(packed[0] if isinstance(packed, tuple) else packed.qweight)
        for packed in (self._packed_ih, self._packed_hh):
            out.append(packed[1] if isinstance(packed, tuple) else packed.bias)
        return out

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        for key, value in zip(_STATE, self._weights()):
            if value is not None or key.startswith("weight"):
                destination[prefix + key] = value

    def _load_from_state_dict(self, state_dict, prefix, missing, unexpected, errors):
        super()._load_from_state_dict(state_dict, prefix, missing, unexpected, errors)
        keys = [prefix + k for k in (_STATE if self.bias else _STATE[:2])]
        absent = [k for k in keys if k not in state_dict]
        if absent:
            missing.extend(absent)
            return
        vals = [state_dict[k] for k in keys] + [None, None]
        self.set_weight_bias(vals[0], vals[1], vals[2] if self.bias else None,
                             vals[3] if self.bias else None)

    def _extra_state_keys(self, prefix):
        return tuple(prefix + k for k in (_STATE if self.bias else _STATE[:2]))

    # -- forward -----------------------------------------------------------------------
    def _linear(self, x, packed):
        if isinstance(packed, tuple):      # float16 weights: x f32(W16)^T + b
            return linear_fp16_apply(x, packed[0], packed[1], self._NAME)
        return linear_dynamic_apply(x, packed, who=self._NAME)

    def _check(self, input):
        if isinstance(input, QTensor):
            raise TypeError(f"{self._NAME} expects a float `input`, got a QTensor")
        x = np.asarray(float_data(input), np.float32)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{self._NAME}: `input` must be (batch, {self.input_size}) or "
                             f"({self.input_size},), got shape {x.shape}")
        return (x, True) if x.ndim == 2 else (x[None], False)

    def _state(self, h, x, batched, name):
        if h is None:
            return np.zeros((x.shape[0], self.hidden_size), np.float32)
        h = np.asarray(float_data(h), np.float32)
        if not batched:
            h = h[None]
        if h.shape != (x.shape[0], self.hidden_size):
            raise ValueError(f"{self._NAME}: `{name}` must have shape "
                             f"{(x.shape[0], self.hidden_size)} (the input's batch, "
                             f"hidden_size), got {h.shape if batched else h.shape[1:]}")
        return h

    def _gates(self, x, h):
        return self._linear(x, self._packed_ih), self._linear(h, self._packed_hh)

    # -- printing and conversion -------------------------------------------------------
    def extra_repr(self):
        return _cell_extra_repr(self)

    def __repr__(self):
        return f"{self._NAME}({self.extra_repr()})"

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """Build from a float ``nn.RNNCell`` / ``nn.LSTMCell`` / ``nn.GRUCell`` with a
        ``qconfig``: ``weight_ih`` and ``weight_hh`` are each quantized with their own
        run of ``qconfig.weight()`` (a qconfig of None means
        :data:`~qlearn.quantization.qconfig.default_dynamic_qconfig`'s weight observer;
        a float16 observer keeps float16 weights).  As in PyTorch, the float cell must
        have biases."""
        check_float_module(mod, cls._float_modules(), cls.__name__)
        qconfig = getattr(mod, "qconfig", None)
        if qconfig is None or qconfig.weight is None:
            from .....quantization.qconfig import default_dynamic_qconfig
            weight_observer = default_dynamic_qconfig.weight
        else:
            weight_observer = qconfig.weight
        dtype = getattr(weight_observer(), "dtype", qint8)
        fp16 = is_float16(dtype)
        if dtype is not qint8 and not fp16:
            raise ValueError(f"{cls._NAME}.from_float: the weight observer's dtype must be "
                             f"qlearn.qint8 or float16, got {dtype!r}")
        if not mod.bias:
            raise ValueError(f"{cls._NAME}.from_float: the float {type(mod).__name__} must "
                             f"have biases (bias=True), as PyTorch requires")
        kwargs = {"nonlinearity": mod.nonlinearity} if hasattr(mod, "nonlinearity") else {}
        q = cls(mod.input_size, mod.hidden_size, bias=True,
                dtype=np.float16 if fp16 else qint8, **kwargs)
        ws = []
        for w in (float_data(mod.weight_ih), float_data(mod.weight_hh)):
            if not fp16:
                obs = weight_observer()
                obs(w)
                w = quantize_weight(w, obs)
            ws.append(w)
        q.set_weight_bias(ws[0], ws[1], float_data(mod.bias_ih), float_data(mod.bias_hh))
        return q


class RNNCell(_DynamicRNNCellBase):
    r"""Dynamically quantized Elman cell (``torch.ao.nn.quantized.dynamic.RNNCell``):

    .. math::
        h' = \phi(\hat W_{ih} x + b_{ih} + \hat W_{hh} h + b_{hh})

    with :math:`\phi` = tanh or ReLU (``nonlinearity``) and :math:`\hat W x` the dynamic
    linear.

    Parameters
    ----------
    input_size, hidden_size : int
    bias : bool
    nonlinearity : {"tanh", "relu"}
    dtype : qlearn.qint8 or float16

    Examples
    --------
    >>> import qlearn.nn.quantized.dynamic as nnqd
    >>> cell = nnqd.RNNCell(4, 3, nonlinearity="relu")
    >>> cell
    DynamicQuantizedRNNCell(4, 3, nonlinearity=relu)
    >>> cell(np.ones((2, 4), np.float32)).shape
    (2, 3)
    """

    _NAME = "DynamicQuantizedRNNCell"

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=qint8):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"`nonlinearity` must be 'tanh' or 'relu', got "
                             f"{nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, dtype)
        self.nonlinearity = nonlinearity

    @classmethod
    def _float_modules(cls):
        from ....modules.rnn import RNNCell as FloatRNNCell
        return (FloatRNNCell,)

    def forward(self, input, hx=None):
        x, batched = self._check(input)
        h = self._state(hx, x, batched, "hx")
        gi, gh = self._gates(x, h)
        pre = gh + gi
        out = np.tanh(pre) if self.nonlinearity == "tanh" else np.maximum(pre, 0)
        out = out.astype(np.float32)
        return out if batched else out[0]


class LSTMCell(_DynamicRNNCellBase):
    r"""Dynamically quantized LSTM cell (``torch.ao.nn.quantized.dynamic.LSTMCell``):

    .. math::
        (i, f, g, o) = \hat W_{ih} x + b_{ih} + \hat W_{hh} h + b_{hh}, \quad
        c' = \sigma(f) c + \sigma(i) \tanh(g), \quad h' = \sigma(o) \tanh(c')

    ``forward(input, hx=None)`` with ``hx = (h, c)`` (zeros when None) returns
    ``(h', c')``.

    Examples
    --------
    >>> import qlearn.nn.quantized.dynamic as nnqd
    >>> h, c = nnqd.LSTMCell(4, 3)(np.ones((2, 4), np.float32))
    >>> h.shape, c.shape
    ((2, 3), (2, 3))
    """

    _GATES = 4
    _NAME = "DynamicQuantizedLSTMCell"

    @classmethod
    def _float_modules(cls):
        from ....modules.rnn import LSTMCell as FloatLSTMCell
        return (FloatLSTMCell,)

    def forward(self, input, hx=None):
        x, batched = self._check(input)
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise ValueError(f"{self._NAME}: `hx` must be a pair (h, c), got "
                             f"{type(hx).__name__}")
        h = self._state(None if hx is None else hx[0], x, batched, "h")
        c = self._state(None if hx is None else hx[1], x, batched, "c")
        gi, gh = self._gates(x, h)
        gates = gh + gi
        n = self.hidden_size
        i, f = _sigmoid(gates[:, :n]), _sigmoid(gates[:, n:2 * n])
        g, o = np.tanh(gates[:, 2 * n:3 * n]), _sigmoid(gates[:, 3 * n:])
        c = (f * c + i * g).astype(np.float32)
        h = (o * np.tanh(c)).astype(np.float32)
        return (h, c) if batched else (h[0], c[0])


class GRUCell(_DynamicRNNCellBase):
    r"""Dynamically quantized GRU cell (``torch.ao.nn.quantized.dynamic.GRUCell``):

    .. math::
        r = \sigma(\hat W_{ir} x + b_{ir} + \hat W_{hr} h + b_{hr}), \quad
        z = \sigma(\hat W_{iz} x + b_{iz} + \hat W_{hz} h + b_{hz}) \\
        n = \tanh(\hat W_{in} x + b_{in} + r \odot (\hat W_{hn} h + b_{hn})), \quad
        h' = (1 - z) \odot n + z \odot h

    Examples
    --------
    >>> import qlearn.nn.quantized.dynamic as nnqd
    >>> nnqd.GRUCell(4, 3)(np.ones(4, np.float32)).shape
    (3,)
    """

    _GATES = 3
    _NAME = "DynamicQuantizedGRUCell"

    @classmethod
    def _float_modules(cls):
        from ....modules.rnn import GRUCell as FloatGRUCell
        return (FloatGRUCell,)

    def forward(self, input, hx=None):
        x, batched = self._check(input)
        h = self._state(hx, x, batched, "hx")
        gi, gh = self._gates(x, h)
        n = self.hidden_size
        r = _sigmoid(gh[:, :n] + gi[:, :n])
        z = _sigmoid(gh[:, n:2 * n] + gi[:, n:2 * n])
        new = np.tanh(gi[:, 2 * n:] + gh[:, 2 * n:] * r)
        out = ((h - new) * z + new).astype(np.float32)
        return out if batched else out[0]
