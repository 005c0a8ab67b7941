"""``nnqd.LSTM``: an LSTM whose four gate matmuls are dynamically quantized linears."""
import numpy as np

from .....dtypes import qint8
from .....qtensor import quantize_per_tensor
from ....modules.module import Module
from ..._packed import PackedLinearWeight, linear_dynamic_apply
from ...modules.utils import float_data, quantize_weight

__all__ = ["LSTM"]


def _sigmoid(x):
    return (np.float32(1) / (np.float32(1) + np.exp(-x))).astype(np.float32)


class LSTM(Module):
    r"""Dynamically quantized LSTM (``torch.ao.nn.quantized.dynamic.LSTM``).

    Each step of each layer and direction computes, with :math:`\hat W x` the dynamic
    int8 linear of :class:`qlearn.nn.quantized.dynamic.Linear` (eq. :eq:`int8-dynamic`):

    .. math::

       (i, f, g, o) &= \hat W_{ih} x_t + b_{ih} + \hat W_{hh} h_{t-1} + b_{hh} \\
       c_t &= \sigma(f) c_{t-1} + \sigma(i) \tanh(g), \qquad
       h_t = \sigma(o) \tanh(c_t)

    Parameters are those of ``torch.nn.LSTM`` (``input_size``, ``hidden_size``,
    ``num_layers``, ``bias``, ``batch_first``, ``dropout`` (ignored at inference),
    ``bidirectional``).  Weights are set with :meth:`set_weight_bias` or
    :meth:`from_float`.

    Examples
    --------
    >>> import qlearn.nn.quantized.dynamic as nnqd
    >>> lstm = nnqd.LSTM(4, 3)
    >>> y, (h, c) = lstm(np.zeros((5, 2, 4), np.float32))
    >>> y.shape, h.shape, c.shape
    ((5, 2, 3), (1, 2, 3), (1, 2, 3))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=qint8):
        super().__init__()
        if dtype is not qint8:
            raise ValueError(f"`dtype` must be qlearn.qint8, got {dtype!r}")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.num_layers, self.bias = int(num_layers), bool(bias)
        self.batch_first, self.dropout = bool(batch_first), float(dropout)
        self.bidirectional = bool(bidirectional)
        self.dtype = dtype
        self._cells = {}
        h = self.hidden_size
        for layer in range(self.num_layers):
            for sfx in self._suffixes():
                in_size = self.input_size if layer == 0 else h * self._dirs()
                zero_ih = quantize_per_tensor(np.zeros((4 * h, in_size)), 1.0, 0, qint8)
                zero_hh = quantize_per_tensor(np.zeros((4 * h, h)), 1.0, 0, qint8)
                b = np.zeros(4 * h, np.float32) if self.bias else None
                self.set_weight_bias(layer, sfx, zero_ih, zero_hh, b, b)

    def _dirs(self):
        return 2 if self.bidirectional else 1

    def _suffixes(self):
        return ["", "_reverse"] if self.bidirectional else [""]

    def set_weight_bias(self, layer, suffix, w_ih, w_hh, b_ih, b_hh):
        """Set layer ``layer``'s (direction ``suffix``: ``""`` or ``"_reverse"``)
        qint8 weights (4 hidden, in) and (4 hidden, hidden) and float biases."""
        self._cells[(layer, suffix)] = (PackedLinearWeight(w_ih, b_ih),
                                        PackedLinearWeight(w_hh, b_hh))

    def _run_direction(self, x, h, c, cell, reverse):
        ih, hh = cell
        steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
        out = np.empty((x.shape[0],) + h.shape, np.float32)
        n = self.hidden_size
        for t in steps:
            gates = (linear_dynamic_apply(x[t], ih, who="DynamicQuantizedLSTM")
                     + linear_dynamic_apply(h, hh, who="DynamicQuantizedLSTM"))
            i, f = _sigmoid(gates[:, :n]), _sigmoid(gates[:, n:2 * n])
            g, o = np.tanh(gates[:, 2 * n:3 * n]), _sigmoid(gates[:, 3 * n:])
            c = (f * c + i * g).astype(np.float32)
            h = (o * np.tanh(c)).astype(np.float32)
            out[t] = h
        return out, h, c

    def forward(self, input, hx=None):
        x = np.asarray(float_data(input), np.float32)
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError(f"DynamicQuantizedLSTM: `input` must be (seq, batch, "
                             f"{self.input_size}) (or batch first), got shape {x.shape}")
        unbatched = x.ndim == 2
        if unbatched:
            x = x[:, None]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        batch = x.shape[1]
        nstates = self.num_layers * self._dirs()
        if hx is None:
            h0 = np.zeros((nstates, batch, self.hidden_size), np.float32)
            c0 = h0.copy()
        else:
            h0, c0 = (np.asarray(float_data(t), np.float32) for t in hx)
            if unbatched:
                h0, c0 = h0[:, None], c0[:, None]
        hn, cn = [], []
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d, sfx in enumerate(self._suffixes()):
                k = layer * self._dirs() + d
                out, h, c = self._run_direction(layer_in, h0[k], c0[k],
                                                self._cells[(layer, sfx)], d == 1)
                outs.append(out)
                hn.append(h)
                cn.append(c)
            layer_in = np.concatenate(outs, axis=-1) if len(outs) > 1 else outs[0]
        y = layer_in
        hn, cn = np.stack(hn), np.stack(cn)
        if unbatched:
            return y[:, 0], (hn[:, 0], cn[:, 0])
        if self.batch_first:
            y = y.transpose(1, 0, 2)
        return y, (hn, cn)

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
        return s

    def __repr__(self):
        return f"DynamicQuantizedLSTM({self.extra_repr()})"

    @classmethod
    def from_float(cls, mod):
        """Build from a float LSTM with torch's attribute names (``weight_ih_l0``, ...)
        and a ``qconfig`` whose weight observer quantizes each matrix."""
        qconfig = getattr(mod, "qconfig", None)
        if qconfig is None:
            raise ValueError("DynamicQuantizedLSTM.from_float: the float LSTM has no "
                             "`qconfig`")
        q = cls(mod.input_size, mod.hidden_size, mod.num_layers, mod.bias,
                mod.batch_first, getattr(mod, "dropout", 0.0), mod.bidirectional)
        for layer in range(q.num_layers):
            for sfx in q._suffixes():
                qw = []
                for kind in ("ih", "hh"):
                    w = float_data(getattr(mod, f"weight_{kind}_l{layer}{sfx}"))
                    obs = qconfig.weight()
                    obs(w)
                    qw.append(quantize_weight(w, obs))
                b_ih = float_data(getattr(mod, f"bias_ih_l{layer}{sfx}", None)) \
                    if q.bias else None
                b_hh = float_data(getattr(mod, f"bias_hh_l{layer}{sfx}", None)) \
                    if q.bias else None
                q.set_weight_bias(layer, sfx, qw[0], qw[1], b_ih, b_hh)
        return q
