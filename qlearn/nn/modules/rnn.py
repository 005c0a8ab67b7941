r"""Recurrent layers: ``RNN``, ``LSTM`` and ``GRU``, unrolled over time with autograd ops,
and their one-step cells ``RNNCell``, ``LSTMCell``, ``GRUCell``.

Parameter names, shapes, gate order and initialisation are PyTorch's, so a
``torch.nn.LSTM`` state dict (converted to NumPy) loads as is: for layer :math:`k`
(suffix ``_reverse`` for the backward direction) ``weight_ih_l{k}`` is
(G*hidden_size, input_size), ``weight_hh_l{k}`` (G*hidden_size, hidden_size) and the
biases (G*hidden_size,), with G = 4 gates (i, f, g, o) for LSTM and 3 (r, z, n) for GRU,
all drawn from :math:`\mathcal U(-1/\sqrt{H}, 1/\sqrt{H})` (G = 1 for the Elman
``RNN``).  A cell holds one such set without the layer suffix: ``weight_ih``,
``weight_hh``, ``bias_ih``, ``bias_hh``.
"""
import math

import numpy as np

from ...autograd import cat, stack
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ._utils import check_factory_kwargs
from .module import Module

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]


_NONLINEARITIES = ("tanh", "relu")


def _cell_extra_repr(m):
    """The ``extra_repr`` of every recurrent cell, float or dynamically quantized:
    the sizes, then ``bias`` and ``nonlinearity`` when not the defaults."""
    s = f"{m.input_size}, {m.hidden_size}"
    if not m.bias:
        s += ", bias=False"
    if getattr(m, "nonlinearity", "tanh") != "tanh":
        s += f", nonlinearity={m.nonlinearity}"
    return s


def _check_nonlinearity(nonlinearity):
    if nonlinearity not in _NONLINEARITIES:
        raise ValueError(f"`nonlinearity` must be 'tanh' or 'relu', got {nonlinearity!r}")
    return nonlinearity


def _activation(x, nonlinearity):
    return x.tanh() if nonlinearity == "tanh" else F.relu(x)


class _RNNBase(Module):
    _gates = 1

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        check_factory_kwargs(device, dtype)
        for v, name in ((input_size, "input_size"), (hidden_size, "hidden_size"),
                        (num_layers, "num_layers")):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"`{name}` must be a positive int, got {v!r}")
        if not 0 <= dropout <= 1:
            raise ValueError(f"`dropout` must be a probability in [0, 1], got {dropout!r}")
        if proj_size:
            raise ValueError("`proj_size` > 0 is not implemented by qlearn")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = bidirectional
        G, H = self._gates, hidden_size
        dirs = 2 if bidirectional else 1
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else H * dirs
            for suffix in [""] + (["_reverse"] if bidirectional else []):
                name = f"l{layer}{suffix}"
                self.register_parameter(f"weight_ih_{name}",
                                        Parameter(np.empty((G * H, in_size), np.float32)))
                self.register_parameter(f"weight_hh_{name}",
                                        Parameter(np.empty((G * H, H), np.float32)))
                if bias:
                    self.register_parameter(f"bias_ih_{name}",
                                            Parameter(np.empty(G * H, np.float32)))
                    self.register_parameter(f"bias_hh_{name}",
                                            Parameter(np.empty(G * H, np.float32)))
        self.reset_parameters()

    def reset_parameters(self):
        r"""Draw every weight and bias from :math:`\mathcal U(-1/\sqrt{H}, 1/\sqrt{H})`,
        :math:`H` = hidden_size (PyTorch's default)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _weights(self, layer, suffix):
        name = f"l{layer}{suffix}"
        return (self._parameters[f"weight_ih_{name}"], self._parameters[f"weight_hh_{name}"],
                self._parameters.get(f"bias_ih_{name}"), self._parameters.get(f"bias_hh_{name}"))

    def _check_input(self, input):
        x = F._tensor(input)
        if x.ndim not in (2, 3):
            raise ValueError(f"{type(self).__name__} expects 2-d (unbatched) or 3-d input, "
                             f"got shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input must end in input_size={self.input_size}, got shape "
                             f"{x.shape}")
        batched = x.ndim == 3
        if not batched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        return x, batched

    def _initial(self, h, B, name):
        L = self.num_layers * (2 if self.bidirectional else 1)
        if h is None:
            return [np.zeros((B, self.hidden_size), np.float32)] * L
        h = F._tensor(h, name)
        if h.ndim == 2:
            h = h.unsqueeze(1)
        if h.shape != (L, B, self.hidden_size):
            raise ValueError(f"`{name}` must have shape {(L, B, self.hidden_size)}, got "
                             f"{h.shape}")
        return [h[i] for i in range(L)]

    def _run(self, x, states):
        """Run every layer and direction; ``states[i]`` is a tuple of per-cell states."""
        T = x.shape[0]
        dirs = ["", "_reverse"] if self.bidirectional else [""]
        finals = []
        for layer in range(self.num_layers):
            outs = []
            for d, suffix in enumerate(dirs):
                w_ih, w_hh, b_ih, b_hh = self._weights(layer, suffix)
                xw = F.linear(x, w_ih, b_ih)            # all time steps at once
                state = states[layer * len(dirs) + d]
                seq = [None] * T
                for t in (range(T - 1, -1, -1) if d else range(T)):
                    state = self._cell(xw[t], state, w_hh, b_hh)
                    seq[t] = state[0]
                outs.append(stack(seq, 0))
                finals.append(state)
            x = outs[0] if len(outs) == 1 else cat(outs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        return x, finals

    def _forward_h(self, input, hx):
        """``forward`` of the recurrences whose state is ``h`` alone (RNN, GRU):
        ``(output, h_n)``, ``h_n`` of shape (num_layers * num_directions, B, H)."""
        x, batched = self._check_input(input)
        if hx is not None and not batched:
            hx = F._tensor(hx, "hx").unsqueeze(1)
        h0 = self._initial(hx, x.shape[1], "hx")
        y, finals = self._run(x, [(h,) for h in h0])
        h_n = stack([s[0] for s in finals], 0)
        if not batched:
            h_n = h_n.squeeze(1)
        return self._output(y, batched), h_n

    def _output(self, y, batched):
        if not batched:
            return y.squeeze(1)
        return y.transpose(0, 1) if self.batch_first else y

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(_RNNBase):
    r"""Elman recurrent network, as ``torch.nn.RNN``.  For each time step :math:`t`:

    .. math::
        h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})

    with :math:`\phi` = tanh or ReLU (``nonlinearity``).  ``forward(input, h_0)``
    returns ``output, h_n``; the arguments are PyTorch's, in its order
    (``nonlinearity`` is the fourth).

    >>> from qlearn import nn
    >>> rnn = nn.RNN(4, 8, 2, "relu")
    >>> rnn
    RNN(4, 8, num_layers=2)
    >>> out, h = rnn(np.zeros((5, 3, 4), np.float32))
    >>> out.shape, h.shape
    ((5, 3, 8), (2, 3, 8))
    """
    _gates = 1

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None,
                 dtype=None):
        _check_nonlinearity(nonlinearity)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def _cell(self, xw, state, w_hh, b_hh):
        (h,) = state
        return (_activation(xw + F.linear(h, w_hh, b_hh), self.nonlinearity),)

    def forward(self, input, hx=None):
        return self._forward_h(input, hx)


class LSTM(_RNNBase):
    r"""Long short-term memory, as ``torch.nn.LSTM``.  For each time step :math:`t`:

    .. math::
        \begin{aligned}
        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
        g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t)
        \end{aligned}

    ``forward(input, (h_0, c_0))`` returns ``output, (h_n, c_n)``; input is (T, B, I)
    ((B, T, I) with ``batch_first``, or (T, I) unbatched).

    >>> from qlearn import nn
    >>> lstm = nn.LSTM(4, 8, num_layers=2, batch_first=True)
    >>> out, (h, c) = lstm(np.zeros((3, 5, 4), np.float32))
    >>> out.shape, h.shape, c.shape
    ((3, 5, 8), (2, 3, 8), (2, 3, 8))
    """
    _gates = 4

    def _cell(self, xw, state, w_hh, b_hh):
        h, c = state
        gates = xw + F.linear(h, w_hh, b_hh)
        H = self.hidden_size
        i = gates[:, :H].sigmoid()
        f = gates[:, H:2 * H].sigmoid()
        g = gates[:, 2 * H:3 * H].tanh()
        o = gates[:, 3 * H:].sigmoid()
        c = f * c + i * g
        return o * c.tanh(), c

    def forward(self, input, hx=None):
        x, batched = self._check_input(input)
        B = x.shape[1]
        if hx is None:
            h0, c0 = self._initial(None, B, "h_0"), self._initial(None, B, "c_0")
        else:
            if not batched:
                hx = tuple(F._tensor(h, "hx").unsqueeze(1) for h in hx)
            h0, c0 = self._initial(hx[0], B, "h_0"), self._initial(hx[1], B, "c_0")
        y, finals = self._run(x, list(zip(h0, c0)))
        h_n = stack([s[0] for s in finals], 0)
        c_n = stack([s[1] for s in finals], 0)
        if not batched:
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
        return self._output(y, batched), (h_n, c_n)


class GRU(_RNNBase):
    r"""Gated recurrent unit, as ``torch.nn.GRU``.  For each time step :math:`t`:

    .. math::
        \begin{aligned}
        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}
        \end{aligned}

    ``forward(input, h_0)`` returns ``output, h_n``.

    >>> from qlearn import nn
    >>> out, h = nn.GRU(4, 8)(np.zeros((5, 3, 4), np.float32))
    >>> out.shape, h.shape
    ((5, 3, 8), (1, 3, 8))
    """
    _gates = 3

    def _cell(self, xw, state, w_hh, b_hh):
        (h,) = state
        hw = F.linear(h, w_hh, b_hh)
        H = self.hidden_size
        r = (xw[:, :H] + hw[:, :H]).sigmoid()
        z = (xw[:, H:2 * H] + hw[:, H:2 * H]).sigmoid()
        n = (xw[:, 2 * H:] + r * hw[:, 2 * H:]).tanh()
        return ((1 - z) * n + z * h,)

    def forward(self, input, hx=None):
        return self._forward_h(input, hx)


# -- cells: one time step -------------------------------------------------------------------
class _RNNCellBase(Module):
    """What the three cells share: the parameters, their initialisation and the input
    and state checks (a batch (B, input_size) or one unbatched (input_size,) vector)."""

    _gates = 1

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        check_factory_kwargs(device, dtype)
        for v, name in ((input_size, "input_size"), (hidden_size, "hidden_size")):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"`{name}` must be a positive int, got {v!r}")
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bool(bias)
        G, H = self._gates, hidden_size
        self.weight_ih = Parameter(np.empty((G * H, input_size), np.float32))
        self.weight_hh = Parameter(np.empty((G * H, H), np.float32))
        if bias:
            self.bias_ih = Parameter(np.empty(G * H, np.float32))
            self.bias_hh = Parameter(np.empty(G * H, np.float32))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        r"""Draw every weight and bias from :math:`\mathcal U(-1/\sqrt{H}, 1/\sqrt{H})`."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _check(self, input):
        """``(x, batched)``: the input as a (B, input_size) Tensor, and whether it came
        with a batch dimension."""
        who = type(self).__name__
        x = F._tensor(input)
        if x.ndim not in (1, 2):
            raise ValueError(f"{who}: `input` must be 1-d (unbatched) or 2-d (batch, "
                             f"{self.input_size}), got shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{who}: `input` must end in input_size={self.input_size}, got "
                             f"shape {x.shape}")
        batched = x.ndim == 2
        if not batched:
            x = x.unsqueeze(0)
        return x, batched

    def _state(self, h, x, batched, name):
        """The state ``h`` as a (B, hidden_size) Tensor (zeros when None)."""
        B = x.shape[0]
        if h is None:
            return np.zeros((B, self.hidden_size), np.float32)
        h = F._tensor(h, name)
        if not batched:
            h = h.unsqueeze(0)
        if h.shape != (B, self.hidden_size):
            want = (B, self.hidden_size) if batched else (self.hidden_size,)
            raise ValueError(f"{type(self).__name__}: `{name}` must have shape {want}, got "
                             f"{h.shape if batched else h.shape[1:]}")
        return h

    def _gates_of(self, x, h):
        return F.linear(x, self.weight_ih, self.bias_ih), \
            F.linear(h, self.weight_hh, self.bias_hh)

    def extra_repr(self):
        return _cell_extra_repr(self)


class RNNCell(_RNNCellBase):
    r"""One step of the Elman RNN, as ``torch.nn.RNNCell``:

    .. math::
        h' = \phi(W_{ih} x + b_{ih} + W_{hh} h + b_{hh})

    with :math:`\phi` = tanh or ReLU (``nonlinearity``).  ``forward(input, hx=None)``
    returns :math:`h'`; ``hx`` defaults to zeros.

    >>> from qlearn import nn
    >>> cell = nn.RNNCell(4, 3, nonlinearity="relu")
    >>> cell
    RNNCell(4, 3, nonlinearity=relu)
    >>> cell(np.ones((2, 4), np.float32)).shape
    (2, 3)
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None):
        _check_nonlinearity(nonlinearity)
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, batched = self._check(input)
        h = self._state(hx, x, batched, "hx")
        gi, gh = self._gates_of(x, h)
        out = _activation(gi + gh, self.nonlinearity)
        return out if batched else out.squeeze(0)


class LSTMCell(_RNNCellBase):
    r"""One step of the LSTM, as ``torch.nn.LSTMCell`` (gates in PyTorch's order
    i, f, g, o):

    .. math::
        (i, f, g, o) = W_{ih} x + b_{ih} + W_{hh} h + b_{hh}, \quad
        c' = \sigma(f) \odot c + \sigma(i) \odot \tanh(g), \quad
        h' = \sigma(o) \odot \tanh(c')

    ``forward(input, hx=None)`` with ``hx = (h, c)`` returns ``(h', c')``.

    >>> from qlearn import nn
    >>> h, c = nn.LSTMCell(4, 3)(np.ones((2, 4), np.float32))
    >>> h.shape, c.shape
    ((2, 3), (2, 3))
    """

    _gates = 4

    def forward(self, input, hx=None):
        x, batched = self._check(input)
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise ValueError(f"LSTMCell: `hx` must be a pair (h, c), got "
                             f"{type(hx).__name__}")
        h = self._state(None if hx is None else hx[0], x, batched, "h")
        c = self._state(None if hx is None else hx[1], x, batched, "c")
        gi, gh = self._gates_of(x, h)
        gates = gi + gh
        H = self.hidden_size
        i = gates[:, :H].sigmoid()
        f = gates[:, H:2 * H].sigmoid()
        g = gates[:, 2 * H:3 * H].tanh()
        o = gates[:, 3 * H:].sigmoid()
        c = f * c + i * g
        h = o * c.tanh()
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(_RNNCellBase):
    r"""One step of the GRU, as ``torch.nn.GRUCell`` (gates r, z, n):

    .. math::
        r = \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}), \quad
        z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
        n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})), \quad
        h' = (1 - z) \odot n + z \odot h

    >>> from qlearn import nn
    >>> nn.GRUCell(4, 3)(np.ones(4, np.float32)).shape
    (3,)
    """

    _gates = 3

    def forward(self, input, hx=None):
        x, batched = self._check(input)
        h = self._state(hx, x, batched, "hx")
        gi, gh = self._gates_of(x, h)
        H = self.hidden_size
        r = (gi[:, :H] + gh[:, :H]).sigmoid()
        z = (gi[:, H:2 * H] + gh[:, H:2 * H]).sigmoid()
        n = (gi[:, 2 * H:] + r * gh[:, 2 * H:]).tanh()
        out = (1 - z) * n + z * h
        return out if batched else out.squeeze(0)
