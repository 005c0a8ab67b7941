"""Float modules (layers, containers, losses)."""
from .activation import (ELU, GELU, Hardsigmoid, Hardswish, Hardtanh, LeakyReLU, LogSoftmax,
                         PReLU, ReLU, ReLU6, Sigmoid, SiLU, Softmax, Tanh)
from .batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .container import ModuleList, Sequential
from .conv import Conv2d
from .conv_nd import Conv1d, Conv3d
from .conv_transpose import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .flatten import Dropout, Flatten
from .instancenorm import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d
from .linear import Identity, Linear
from .loss import CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .module import Module, RemovableHandle
from .normalization import GroupNorm, LayerNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .pooling_1d import AdaptiveAvgPool1d, AvgPool1d, MaxPool1d
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .sparse import Embedding, EmbeddingBag
from .upsampling import Upsample

__all__ = ["Module", "RemovableHandle", "Sequential", "ModuleList", "Identity", "Linear",
           "Conv2d", "BatchNorm1d", "BatchNorm2d", "ReLU",
           "Conv1d", "Conv3d", "BatchNorm3d", "MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d",
           "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "ReLU6", "Hardtanh",
           "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "MaxPool2d",
           "AvgPool2d", "AdaptiveAvgPool2d", "Flatten", "Dropout", "CrossEntropyLoss",
           "NLLLoss", "MSELoss", "L1Loss", "LSTM", "GRU", "Embedding", "EmbeddingBag",
           "RNN", "RNNCell", "LSTMCell", "GRUCell", "Upsample"]
# normalisation and the smooth / piecewise activations
__all__ += ["LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d",
            "InstanceNorm3d", "Hardswish", "Hardsigmoid", "ELU", "SiLU", "GELU", "PReLU"]
