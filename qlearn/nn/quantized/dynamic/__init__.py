"""Dynamic quantization: ``qlearn.nn.quantized.dynamic`` mirrors
``torch.ao.nn.quantized.dynamic``.  Weights are qint8; activations are quantized on
every call from their own range, and outputs are float32."""
from .modules import GRU, LSTM, GRUCell, Linear, LSTMCell, RNNCell

__all__ = ["GRU", "LSTM", "Linear", "RNNCell", "LSTMCell", "GRUCell"]
