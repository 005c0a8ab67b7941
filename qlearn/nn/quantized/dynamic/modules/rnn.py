r"""``nnqd.LSTM`` and ``nnqd.GRU``: recurrent layers whose gate matmuls are dynamically
quantized linears (int8 weights, or float16 weights)."""
import numpy as np

from .....dtypes import qint8
from .....qtensor import QTensor, quantize_per_tensor
from ....modules.module import Module
from ...modules.utils import check_float_module, deepcopy_sharing, float_data, quantize_weight
from ...packed_params import PackedLinearWeight, linear_dynamic_apply
from .linear import float16_dtype, is_float16, linear_fp16_apply

__all__ = ["LSTM", "GRU"]


def _sigmoid(x):
    return (np.float32(1) / (np.float32(1) + np.exp(-x))).astype(np.float32)


class _DynamicRNNBase(Module):
    """What LSTM and GRU share: per-layer, per-direction packed weights, the loop over
    layers and directions, ``from_float`` and the state dict-free repr."""

    _GATES = 1
    _NAME = "DynamicQuantizedRNN"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=qint8):
        super().__init__()
        fp16 = is_float16(dtype)
        if dtype is not qint8 and not fp16:
            raise ValueError(f"`dtype` must be qlearn.qint8 or qlearn.float16, got "
                             f"{dtype!r}")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.num_layers, self.bias = int(num_layers), bool(bias)
        self.batch_first, self.dropout = bool(batch_first), float(dropout)
        self.bidirectional = bool(bidirectional)
        self.dtype = float16_dtype() if fp16 else qint8
        self._cells = {}
        g, h = self._GATES, self.hidden_size
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else h * self._dirs()
            for sfx in self._suffixes():
                b = np.zeros(g * h, np.float32) if self.bias else None
                if fp16:
                    w_ih = np.zeros((g * h, in_size), np.float16)
                    w_hh = np.zeros((g * h, h), np.float16)
                else:
                    w_ih = quantize_per_tensor(np.zeros((g * h, in_size)), 1.0, 0, qint8)
                    w_hh = quantize_per_tensor(np.zeros((g * h, h)), 1.0, 0, qint8)
                self.set_weight_bias(layer, sfx, w_ih, w_hh, b, b)

    def __deepcopy__(self, memo):
        return deepcopy_sharing(self, memo, ("_cells",))

    def _dirs(self):
        return 2 if self.bidirectional else 1

    def _suffixes(self):
        return ["", "_reverse"] if self.bidirectional else [""]

    def set_weight_bias(self, layer, suffix, w_ih, w_hh, b_ih, b_hh):
        """Set layer ``layer``'s (direction ``suffix``: ``""`` or ``"_reverse"``)
        weights (G hidden, in) and (G hidden, hidden) and float biases; G is 4 for the
        LSTM, 3 for the GRU.  The weights are qint8 QTensors, or float arrays (rounded
        to float16) when ``dtype`` is float16."""
        if isinstance(w_ih, QTensor):
            self._cells[(layer, suffix)] = (PackedLinearWeight(w_ih, b_ih),
                                            PackedLinearWeight(w_hh, b_hh))
        else:
            self._cells[(layer, suffix)] = (
                (np.asarray(float_data(w_ih)).astype(np.float16), float_data(b_ih)),
                (np.asarray(float_data(w_hh)).astype(np.float16), float_data(b_hh)))

    # -- state dict: torch's float names, holding the quantized (or float16) weights ----
    def _state_names(self):
        for layer in range(self.num_layers):
            for sfx in self._suffixes():
                yield layer, sfx, [f"{kind}_{g}_l{layer}{sfx}" for kind in ("weight", "bias")
                                   for g in ("ih", "hh")]

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        for layer, sfx, (w_ih, w_hh, b_ih, b_hh) in self._state_names():
            ih, hh = self._cells[(layer, sfx)]
            for key, packed in ((w_ih, ih), (w_hh, hh)):
                destination[prefix + key] = packed[0] if isinstance(packed, tuple) \
                    else packed.qweight
            if self.bias:
                for key, packed in ((b_ih, ih), (b_hh, hh)):
                    destination[prefix + key] = packed[1] if isinstance(packed, tuple) \
                        else packed.bias

    def _load_from_state_dict(self, state_dict, prefix, missing, unexpected, errors):
        super()._load_from_state_dict(state_dict, prefix, missing, unexpected, errors)
        for layer, sfx, names in self._state_names():
            keys = [prefix + k for k in (names if self.bias else names[:2])]
            absent = [k for k in keys if k not in state_dict]
            if absent:
                missing.extend(absent)
                continue
            w_ih, w_hh = state_dict[keys[0]], state_dict[keys[1]]
            b_ih, b_hh = (state_dict[keys[2]], state_dict[keys[3]]) if self.bias \
                else (None, None)
            self.set_weight_bias(layer, sfx, w_ih, w_hh, b_ih, b_hh)

    def _extra_state_keys(self, prefix):
        return tuple(prefix + k for _, _, names in self._state_names()
                     for k in (names if self.bias else names[:2]))

    def _linear(self, x, packed):
        if isinstance(packed, tuple):      # float16 weights: x f32(W16)^T + b
            return linear_fp16_apply(x, packed[0], packed[1], self._NAME)
        return linear_dynamic_apply(x, packed, who=self._NAME)

    def _run_direction(self, x, state, cell, reverse):
        # the input projection of every time step in one call (one dynamic scale for
        # the whole sequence, as PyTorch's quantized RNNs); the recurrent one per step
        seq = x.shape[0]
        gi = self._linear(x.reshape(-1, x.shape[-1]), cell[0])
        gi = gi.reshape(seq, x.shape[1], gi.shape[-1])     # (-1 fails for batch 0)
        steps = range(seq - 1, -1, -1) if reverse else range(seq)
        out = np.empty((seq,) + state[0].shape, np.float32)
        for t in steps:
            state = self._step(gi[t], state, cell)
            out[t] = state[0]
        return out, state

    def _forward(self, input, hx, n_states):
        x = np.asarray(float_data(input), np.float32)
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError(f"{self._NAME}: `input` must be (seq, batch, "
                             f"{self.input_size}) (or batch first), got shape {x.shape}")
        unbatched = x.ndim == 2
        if unbatched:
            x = x[:, None]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        if x.shape[0] == 0:
            raise ValueError(f"{self._NAME}: `input` must have at least one time step "
                             f"(as PyTorch requires), got shape {np.shape(float_data(input))}")
        batch = x.shape[1]
        nstates = self.num_layers * self._dirs()
        if hx is None:
            h0 = [np.zeros((nstates, batch, self.hidden_size), np.float32)
                  for _ in range(n_states)]
        else:
            if n_states == 1:
                hx = (hx,)
            elif not isinstance(hx, (tuple, list)) or len(hx) != n_states:
                raise TypeError(f"{self._NAME}: `hx` must be a tuple (h_0, c_0), got "
                                f"{type(hx).__name__}")
            h0 = [np.asarray(float_data(t), np.float32) for t in hx]
            want = (nstates, self.hidden_size) if unbatched \
                else (nstates, batch, self.hidden_size)
            for i, t in enumerate(h0):
                if t.shape != want:
                    name = "hx" if n_states == 1 else f"hx[{i}]"
                    raise ValueError(f"{self._NAME}: `{name}` must have shape {want} "
                                     f"(num_layers * num_directions, batch, hidden_size), "
                                     f"got {t.shape}")
            if unbatched:
                h0 = [t[:, None] for t in h0]
        finals = [[] for _ in range(n_states)]
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d, sfx in enumerate(self._suffixes()):
                k = layer * self._dirs() + d
                out, state = self._run_direction(layer_in, tuple(t[k] for t in h0),
                                                 self._cells[(layer, sfx)], d == 1)
                outs.append(out)
                for f, s in zip(finals, state):
                    f.append(s)
            layer_in = np.concatenate(outs, axis=-1) if len(outs) > 1 else outs[0]
        y = layer_in
        finals = [np.stack(f) for f in finals]
        if unbatched:
            y, finals = y[:, 0], [f[:, 0] for f in finals]
        elif self.batch_first:
            y = y.transpose(1, 0, 2)
        return y, finals

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.dtype is not qint8:
            s += f", dtype={self.dtype!r}"
        return s

    def __repr__(self):
        return f"{self._NAME}({self.extra_repr()})"

    @classmethod
    def from_float(cls, mod):
        """Build from a float ``nn.LSTM`` / ``nn.GRU`` (torch's attribute names,
        ``weight_ih_l0``, ...) with a ``qconfig``: each weight matrix is quantized with
        its own run of ``qconfig.weight()`` (a float16 weight observer, as in
        ``float16_dynamic_qconfig``, stores float16 weights instead)."""
        check_float_module(mod, cls._float_modules(), cls.__name__)
        qconfig = getattr(mod, "qconfig", None)
        if qconfig is None:
            raise ValueError(f"{cls._NAME}.from_float: the float {type(mod).__name__} has "
                             f"no `qconfig`")
        fp16 = is_float16(getattr(qconfig.weight(), "dtype", qint8))
        q = cls(mod.input_size, mod.hidden_size, mod.num_layers, mod.bias,
                mod.batch_first, getattr(mod, "dropout", 0.0), mod.bidirectional,
                dtype=np.float16 if fp16 else qint8)
        for layer in range(q.num_layers):
            for sfx in q._suffixes():
                ws = []
                for kind in ("ih", "hh"):
                    w = float_data(getattr(mod, f"weight_{kind}_l{layer}{sfx}"))
                    if not fp16:
                        obs = qconfig.weight()
                        obs(w)
                        w = quantize_weight(w, obs)
                    ws.append(w)
                b_ih = float_data(getattr(mod, f"bias_ih_l{layer}{sfx}", None)) \
                    if q.bias else None
                b_hh = float_data(getattr(mod, f"bias_hh_l{layer}{sfx}", None)) \
                    if q.bias else None
                q.set_weight_bias(layer, sfx, ws[0], ws[1], b_ih, b_hh)
        return q


class LSTM(_DynamicRNNBase):
    r"""Dynamically quantized LSTM (``torch.ao.nn.quantized.dynamic.LSTM``).

    Each step of each layer and direction computes, with :math:`\hat W x` the dynamic
    linear of :class:`qlearn.nn.quantized.dynamic.Linear` (int8, eq.
    :eq:`int8-dynamic`, or float16 weights):

    .. math::

       (i, f, g, o) &= \hat W_{ih} x_t + b_{ih} + \hat W_{hh} h_{t-1} + b_{hh} \\
       c_t &= \sigma(f) c_{t-1} + \sigma(i) \tanh(g), \qquad
       h_t = \sigma(o) \tanh(c_t)

    Parameters are those of ``torch.nn.LSTM`` (``input_size``, ``hidden_size``,
    ``num_layers``, ``bias``, ``batch_first``, ``dropout`` (ignored at inference),
    ``bidirectional``) and ``dtype`` (``qlearn.qint8`` or ``qlearn.float16``).  Weights
    are set with :meth:`set_weight_bias` or :meth:`from_float`.  As in PyTorch, the
    input projection :math:`\hat W_{ih} x_t` of all time steps is one dynamic linear
    (one activation scale for the whole sequence), the recurrent one is quantized per
    step.

    Examples
    --------
    >>> import qlearn.nn.quantized.dynamic as nnqd
    >>> lstm = nnqd.LSTM(4, 3)
    >>> y, (h, c) = lstm(np.zeros((5, 2, 4), np.float32))
    >>> y.shape, h.shape, c.shape
    ((5, 2, 3), (1, 2, 3), (1, 2, 3))
    """

    _GATES = 4
    _NAME = "DynamicQuantizedLSTM"

    @classmethod
    def _float_modules(cls):
        from ....modules.rnn import LSTM as FloatLSTM
        return (FloatLSTM,)

    def _step(self, gi, state, cell):
        h, c = state
        n = self.hidden_size
        gates = gi + self._linear(h, cell[1])
        i, f = _sigmoid(gates[:, :n]), _sigmoid(gates[:, n:2 * n])
        g, o = np.tanh(gates[:, 2 * n:3 * n]), _sigmoid(gates[:, 3 * n:])
        c = (f * c + i * g).astype(np.float32)
        h = (o * np.tanh(c)).astype(np.float32)
        return h, c

    def forward(self, input, hx=None):
        y, (hn, cn) = self._forward(input, hx, 2)
        return y, (hn, cn)


class GRU(_DynamicRNNBase):
    r"""Dynamically quantized GRU (``torch.ao.nn.quantized.dynamic.GRU``).

    Each step computes, with :math:`\hat W` the dynamic linear (int8 or float16
    weights) and the gates in PyTorch's order (r, z, n):

    .. math::

       r &= \sigma(\hat W_{ir} x_t + b_{ir} + \hat W_{hr} h_{t-1} + b_{hr}), \qquad
       z = \sigma(\hat W_{iz} x_t + b_{iz} + \hat W_{hz} h_{t-1} + b_{hz}) \\
       n &= \tanh\big(\hat W_{in} x_t + b_{in} + r \odot (\hat W_{hn} h_{t-1} +
       b_{hn})\big), \qquad h_t = (1 - z) \odot n + z \odot h_{t-1}

    Parameters as :class:`LSTM`.

    Examples
    --------
    >>> import qlearn.nn.quantized.dynamic as nnqd
    >>> gru = nnqd.GRU(4, 3, num_layers=2)
    >>> y, h = gru(np.zeros((5, 2, 4), np.float32))
    >>> y.shape, h.shape
    ((5, 2, 3), (2, 2, 3))
    """

    _GATES = 3
    _NAME = "DynamicQuantizedGRU"

    @classmethod
    def _float_modules(cls):
        from ....modules.rnn import GRU as FloatGRU
        return (FloatGRU,)

    def _step(self, gi, state, cell):
        (h,) = state
        n = self.hidden_size
        gh = self._linear(h, cell[1])
        r = _sigmoid(gi[:, :n] + gh[:, :n])
        z = _sigmoid(gi[:, n:2 * n] + gh[:, n:2 * n])
        new = np.tanh(gi[:, 2 * n:] + r * gh[:, 2 * n:])
        h = (new + z * (h - new)).astype(np.float32)
        return (h,)

    def forward(self, input, hx=None):
        y, (hn,) = self._forward(input, hx, 1)
        return y, hn
