"""The dynamically quantized modules."""
from .linear import Linear
from .rnn import GRU, LSTM
from .rnn_cell import GRUCell, LSTMCell, RNNCell

__all__ = ["GRU", "LSTM", "Linear", "RNNCell", "LSTMCell", "GRUCell"]
