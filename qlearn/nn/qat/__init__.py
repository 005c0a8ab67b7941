"""Quantization-aware-training modules: ``qlearn.nn.qat`` mirrors ``torch.ao.nn.qat``.

Each is its float layer with a ``weight_fake_quant`` child (made by
``qconfig.weight()``) that fake-quantizes the weight in every forward pass, so training
sees the rounding the int8 layer will do.  ``prepare_qat`` swaps float layers for these;
``convert`` swaps these for the quantized layers, reusing the trained fake quantizer's
qparams for the weight.
"""
from .modules import Conv1d, Conv2d, Conv3d, Embedding, EmbeddingBag, Linear
from . import dynamic  # noqa: E402,F401  (nnqat.dynamic, as torch's subpackage)

__all__ = ["Conv1d", "Conv2d", "Conv3d", "Embedding", "EmbeddingBag", "Linear"]
