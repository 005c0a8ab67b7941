"""Graph capture: ``qlearn.fx`` mirrors ``torch.fx``.

:func:`symbolic_trace` runs a model's ``forward`` on :class:`Proxy` inputs and records
every operation as a :class:`Node` of a :class:`Graph`; a :class:`GraphModule` holds
the graph, the model's submodules and parameters, and Python code generated from the
graph (``gm.code``) that computes exactly what the model computes.  The graph-mode
quantization (:mod:`qlearn.quantization.quantize_fx`) and the ONNX export read and
rewrite these graphs.

>>> from qlearn import nn
>>> from qlearn.fx import symbolic_trace
>>> gm = symbolic_trace(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()))
>>> print(gm.graph)
graph():
    %input_1 : [num_users=1] = placeholder[target=input]
    %_0 : [num_users=1] = call_module[target=0](args = (%input_1,), kwargs = {})
    %_1 : [num_users=1] = call_module[target=1](args = (%_0,), kwargs = {})
    return _1
"""
from .graph import Graph, PythonCode
from .graph_module import GraphModule
from .node import Node, map_arg
from .proxy import Attribute, Proxy, TraceError
from .tracer import Tracer, symbolic_trace, wrapped_functions

__all__ = ["Graph", "GraphModule", "Node", "Proxy", "Attribute", "TraceError", "Tracer",
           "symbolic_trace", "map_arg", "PythonCode", "wrapped_functions"]
