"""qlearn: neural-network quantization from scratch, in typed Cython and NumPy.

The public names mirror PyTorch's (``torch.quantize_per_tensor`` is
``qlearn.quantize_per_tensor``, ``torch.quint8`` is ``qlearn.quint8``, ...).
"""
__version__ = "0.1.0"

from ._config import get_num_threads, set_num_threads, show_config
from . import autograd
from . import backends
from .autograd import Tensor, enable_grad, no_grad, tensor
from .autograd import cat, manual_seed, stack, where
from .dtypes import (QDType, QScheme, per_channel_affine, per_channel_symmetric,
                     per_tensor_affine, per_tensor_symmetric, qint8, qint32, quint8)
from .dtypes import per_channel_affine_float_qparams, quint4x2
from .qtensor import QTensor, dequantize, quantize_per_channel, quantize_per_tensor
from .serialization import load, save
from .fake_quant import fake_quantize_per_channel_affine, fake_quantize_per_tensor_affine

__all__ = [
    "QDType", "QScheme", "QTensor", "Tensor", "autograd", "dequantize", "enable_grad",
    "no_grad", "tensor", "get_num_threads", "load",
    "per_channel_affine", "per_channel_symmetric", "per_tensor_affine",
    "per_tensor_symmetric", "qint8", "qint32", "quantize_per_channel",
    "quantize_per_tensor", "quint8", "save", "set_num_threads", "show_config",
    "fake_quantize_per_tensor_affine", "fake_quantize_per_channel_affine",
    "cat", "manual_seed", "stack", "where",
    "per_channel_affine_float_qparams", "quint4x2",
]

# The tensor API of the ``torch`` namespace: plain dtypes, factories (zeros, rand,
# arange, ...) and functions (abs, round, max, ...).  As in ``torch``, some of these
# names (bool, abs, max, min, round, sum, pow) shadow builtins inside this module.
from .dtypes import (bool_ as bool, double, float16, float32, float64, half,  # noqa: E402,A004
                     int8, int16, int32, int64, long, short, uint8)
from .autograd import factories as _factories, torch_functions as _functions  # noqa: E402
from .autograd.factories import *  # noqa: E402,F401,F403
from .autograd.torch_functions import *  # noqa: E402,F401,F403,A004
from .autograd import Size, finfo, iinfo, maximum, minimum  # noqa: E402
from . import distributions  # noqa: E402

__all__ += ["bool", "double", "float16", "float32", "float64", "half", "int8", "int16",
            "int32", "int64", "long", "short", "uint8", "finfo", "iinfo", "maximum",
            "minimum", "distributions", "Size"] + _factories.__all__ + _functions.__all__

# ``import qlearn as ql`` then ``ql.nn``, ``ql.quantization``... as ``torch.nn`` after
# ``import torch``: the subpackages load on first access (PEP 562), which keeps
# ``import qlearn`` light and free of import cycles.
_SUBPACKAGES = ("nn", "optim", "quantization", "quantizers", "datasets", "utils", "fx", "onnx")


def __getattr__(name):
    if name in _SUBPACKAGES:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
