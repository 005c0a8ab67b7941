r"""Export quantized qlearn models to ONNX: :func:`export`.

``qlearn.onnx.export(model, example_input, path, format="qdq" | "qoperator")`` writes a
converted model with the ``onnx`` package (an optional dependency: ``pip install
'qlearn[export]'``).  The modules:

* :mod:`qlearn.onnx.walk`: the operators of the model in the order they run;
* :mod:`qlearn.onnx.ops`: how each is written in each format (the conversion tables);
* :mod:`qlearn.onnx.graph`: the ONNX graph under construction;
* :mod:`qlearn.onnx.export`: :func:`export` itself;
* :mod:`qlearn.onnx.verify`: :func:`verify`, onnxruntime against qlearn, operator by operator.
"""
from .export import DEFAULT_OPSET, MIN_OPSET, export
from .ops import UnsupportedModuleError
from .verify import Verification, verify

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "UnsupportedModuleError", "Verification", "export",
           "verify"]
