"""The ONNX graph being written: named values, constants (initializers) and nodes.

A :class:`Value` is what flows between converted operators: a float32 tensor, or an 8-bit
integer tensor with the ``(scale, zero_point)`` of the :class:`qlearn.QTensor` it stands
for (:math:`r = S (q - Z)`).  The scale and zero point are fixed when the model is
exported (they are the quantized modules' own), so they become constants.
:class:`GraphBuilder` hands out unique names and wraps ``onnx.helper``; ``onnx`` is
imported only when a builder is made (it is an optional dependency).
"""
from dataclasses import dataclass, field

import numpy as np

__all__ = ["GraphBuilder", "Value", "import_onnx"]

MS_DOMAIN = "com.microsoft"


def import_onnx():
    """``onnx``, or an ImportError that says how to install it.

    >>> from qlearn.onnx.graph import import_onnx
    >>> import_onnx().__name__
    'onnx'
    """
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("qlearn.onnx.export needs the `onnx` package: pip install onnx "
                          "(or pip install 'qlearn[export]', which also brings "
                          "onnxruntime)") from exc
    return onnx


@dataclass
class Value:
    """One tensor of the graph.

    ``kind`` is ``"f"`` (float32) or ``"q"`` (integers of ``elem`` type, ``np.uint8`` for
    quint8, with ``scale`` :math:`S` and ``zero_point`` :math:`Z`).

    >>> from qlearn.onnx.graph import Value
    >>> Value("x", "q", (2, 3), 0.1, 128, np.uint8).quantized
    True
    """

    name: str
    kind: str
    shape: tuple
    scale: float = 1.0
    zero_point: int = 0
    elem: type = field(default=np.float32)

    @property
    def quantized(self):
        return self.kind == "q"


class GraphBuilder:
    """Collects nodes and initializers; every helper returns the new tensor names.

    >>> from qlearn.onnx.graph import GraphBuilder, Value
    >>> g = GraphBuilder(17)
    >>> g.dequantize(Value("x", "q", (4,), 0.5, 3, np.uint8))
    'x_dq'
    >>> [n.op_type for n in g.nodes], len(g.initializers)
    (['DequantizeLinear'], 2)
    """

    def __init__(self, opset_version):
        self.onnx = import_onnx()
        self.opset_version = opset_version
        self.nodes, self.initializers, self.inputs, self.outputs = [], [], [], []
        self._names = set()
        self._consts = {}
        self.uses_ms_domain = False

    # -- names and constants -------------------------------------------------------------
    def fresh(self, base):
        """A tensor name not used yet, ``base`` or ``base_1``, ``base_2`` ..."""
        base = base or "t"
        name, i = base, 0
        while name in self._names:
            i += 1
            name = f"{base}_{i}"
        self._names.add(name)
        return name

    def const(self, base, array, dtype=None):
        """An initializer holding ``array`` (scalars and small arrays are shared)."""
        a = np.asarray(array, dtype=dtype)
        key = None
        if a.size <= 64:
            key = (a.dtype.str, a.shape, a.tobytes())
            if key in self._consts:
                return self._consts[key]
        name = self.fresh(base)
        self.initializers.append(self.onnx.numpy_helper.from_array(a, name))
        if key is not None:
            self._consts[key] = name
        return name

    def scale_const(self, scale):
        s = np.asarray(scale, np.float32)
        return self.const("scale" if s.ndim == 0 else "scales", s)

    def zp_const(self, zero_point, elem):
        z = np.asarray(zero_point).astype(elem)
        return self.const("zero_point" if z.ndim == 0 else "zero_points", z)

    # -- nodes ---------------------------------------------------------------------------
    def node(self, op_type, inputs, out, name=None, domain=None, n_out=1, **attrs):
        """Append one node; ``out`` is the base name of its output(s). Returns the output
        name (or the list of names when ``n_out > 1``)."""
        outs = [self.fresh(out if n_out == 1 else f"{out}_{i}") for i in range(n_out)]
        if domain == MS_DOMAIN:
            self.uses_ms_domain = True
        self.nodes.append(self.onnx.helper.make_node(
            op_type, list(inputs), outs, name=self.fresh(name or f"{out}/{op_type}"),
            domain=domain, **attrs))
        return outs[0] if n_out == 1 else outs

    def quantize(self, x, scale, zero_point, elem, out, axis=None, name=None):
        """``QuantizeLinear``: :math:`q = \\mathrm{sat}(\\mathrm{round}(x / S) + Z)`."""
        attrs = {} if axis is None else {"axis": axis}
        return self.node("QuantizeLinear", [x, self.scale_const(scale),
                                            self.zp_const(zero_point, elem)], out,
                         name=name, **attrs)

    def dequantize(self, v, out=None, name=None):
        """``DequantizeLinear`` of the quantized value ``v``: :math:`r = S (q - Z)`."""
        return self.node("DequantizeLinear", [v.name, self.scale_const(v.scale),
                                              self.zp_const(v.zero_point, v.elem)],
                         out or f"{v.name}_dq", name=name)

    def dequantize_const(self, base, q, scale, zero_point, axis=None):
        """An integer initializer ``q`` and the ``DequantizeLinear`` that reads it (the
        QDQ form of a quantized weight or bias)."""
        qname = self.const(base + "_quantized", q)
        attrs = {} if axis is None or np.ndim(scale) == 0 else {"axis": axis}
        zp = np.asarray(zero_point).astype(q.dtype)
        return self.node("DequantizeLinear", [qname, self.const(base + "_scale",
                                                                np.asarray(scale, np.float32)),
                                              self.const(base + "_zero_point", zp)],
                         base, **attrs)

    def rename_output(self, old, new):
        """Give the tensor ``old`` (made by a node of this graph) the name ``new``."""
        self._names.add(new)
        for n in self.nodes:
            for seq in (n.input, n.output):
                for i, s in enumerate(seq):
                    if s == old:
                        seq[i] = new

    # -- the model -----------------------------------------------------------------------
    def value_info(self, name, elem, shape):
        onnx = self.onnx
        return onnx.helper.make_tensor_value_info(
            name, onnx.helper.np_dtype_to_tensor_dtype(np.dtype(elem)), list(shape))

    def model(self, graph_name, doc_string=""):
        onnx = self.onnx
        graph = onnx.helper.make_graph(self.nodes, graph_name, self.inputs, self.outputs,
                                       self.initializers, doc_string=doc_string)
        opsets = [onnx.helper.make_opsetid("", self.opset_version)]
        if self.uses_ms_domain:
            opsets.append(onnx.helper.make_opsetid(MS_DOMAIN, 1))
        ir = onnx.helper.find_min_ir_version_for(opsets[:1], ignore_unknown=True)
        model = onnx.helper.make_model(graph, opset_imports=opsets, ir_version=ir,
                                       producer_name="qlearn")
        return model
