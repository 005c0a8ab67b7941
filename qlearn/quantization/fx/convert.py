"""Convert a prepared graph: observers become quantize nodes or disappear, quantized
nodes become int8 modules and functions, float nodes get dequantized inputs.

One walk over the nodes in order, tracking which values are QTensors:

* an observer node of a value that is already a QTensor (the output of a quantized
  node) is removed; one of a float value becomes
  ``ql.quantize_per_tensor(x, scale, zero_point, dtype)`` with the observer's
  ``calculate_qparams()`` held in two ``get_attr`` attributes;
* an ``"observed"`` / ``"dynamic"`` module is swapped by the eager workflow's
  :func:`~qlearn.quantization.swap_module` through the static / dynamic mapping: its
  ``from_float`` reads the output observer from ``activation_post_process`` and the
  weight observer from ``qconfig``, exactly as in eager mode;
* ``a + b`` becomes ``qF.add`` / ``qF.add_relu`` (fused with the ReLU after it),
  ``a * b`` ``qF.mul``, ``a + 1.0`` / ``a * 0.5`` ``qF.add_scalar`` / ``qF.mul_scalar``,
  ``ql.cat`` ``qF.cat``, ReLU / pooling functions their
  :mod:`qlearn.nn.quantized.functional` twins (the operator mapping);
* a float node (and the output) reading a QTensor gets a :func:`dequantize` call
  first, which gives a :class:`qlearn.Tensor` (PyTorch's ``x.dequantize()`` gives a
  float tensor), so a Tensor method after it (``y.flatten(1)``, ``.view``, ``.mean``)
  runs as in the float model.
"""
import inspect

import numpy as np

from ... import quantize_per_tensor
from ...dtypes import quint8
from ...nn.quantized import functional as qF
from ...nn.quantized.modules.misc import _dequantize_to_tensor
from ..quantization_mappings import (
    get_default_dynamic_quant_module_mappings,
    get_default_static_quant_module_mappings,
)
from ..quantize import _observer_has_data, swap_module
from .patterns import (
    BINARY_OPS,
    FIXED_QPARAMS_OPS,
    GRAPH_FLOAT_MODULES,
    QUANTIZED_FUNCTIONS,
    quantized_call,
    runs_quantized,
)

__all__ = ["convert_graph_module", "dequantize"]

_QUANTIZED_KINDS = ("observed", "binary", "binary_scalar", "cat", "share")


def dequantize(input):
    r"""The float value of a quantized graph value, :math:`r = S (q - Z)`, as a
    :class:`qlearn.Tensor`: the target of the ``dequantize`` nodes of a converted graph.

    PyTorch's converted graphs call ``x.dequantize()``, a float tensor; qlearn's
    :meth:`QTensor.dequantize` gives an ndarray (by design), which has no ``flatten(1)``
    / ``view`` / ``mean(dim)``, so the graph dequantizes through this function and the
    float part of the model gets the Tensor it had before conversion (the eager
    :class:`~qlearn.nn.quantized.DeQuantize` runs the same code).  A float Tensor
    passes through unchanged (as ``torch.dequantize`` of a float tensor); a float
    ndarray is wrapped.

    Parameters
    ----------
    input : QTensor, Tensor or ndarray of float

    Returns
    -------
    Tensor
        float32 (per tensor or per channel, as ``input`` was quantized).

    Raises
    ------
    TypeError
        If ``input`` is neither quantized nor float.

    Examples
    --------
    >>> import qlearn as ql
    >>> from qlearn.quantization.fx import dequantize
    >>> q = ql.quantize_per_tensor([0.26, -1.0], 0.5, 2, ql.quint8)
    >>> dequantize(q), dequantize(q).flatten(0).shape
    (tensor([ 0.5000, -1.0000]), (2,))
    """
    # the eager DeQuantize's implementation: eager and graph mode give the same type
    return _dequantize_to_tensor(input)


def _qparams(obs, node):
    if not _observer_has_data(obs):
        raise RuntimeError(f"convert_fx: observer {node.target} (after "
                           f"{node.args[0].name!r}) saw no data; run calibration data "
                           f"through the prepared model before convert_fx")
    scale, zero_point = obs.calculate_qparams()
    return (float(np.asarray(scale).reshape(-1)[0]),
            int(np.asarray(zero_point).reshape(-1)[0]))


def _indexed(base, index):
    return base if index == 0 else f"{base}_{index}"


class _Submodules:
    """``gm``'s submodules by dotted path, aliases included (``named_modules`` lists a
    shared observer once, under its first name)."""

    def __init__(self, gm):
        self.gm = gm

    def __getitem__(self, target):
        return self.gm.get_submodule(target)

    def __setitem__(self, target, module):
        self.gm.add_submodule(target, module)


class _Converter:
    def __init__(self, gm, custom_module_class_mapping=None, input_quantized_idxs=(),
                 output_quantized_idxs=()):
        self.gm = gm
        self.custom = dict(custom_module_class_mapping or {})
        self.input_quantized_idxs = set(input_quantized_idxs)
        self.output_quantized_idxs = set(output_quantized_idxs)
        self.graph = gm.graph
        self.modules = _Submodules(gm)
        self.quantized = set()       # nodes whose value is a QTensor
        self.dequantized = {}        # QTensor node -> its dequantize node
        # QTensor node -> number k of the observer that fixed its qparams; the quantize /
        # dequantize nodes are named after it, as PyTorch's (quantize_per_tensor_8)
        self.source = {}
        self.discarded = []          # get_attr nodes of qparams PyTorch names, then drops
        self.static = get_default_static_quant_module_mappings()
        self.dynamic = get_default_dynamic_quant_module_mappings()

    def _attr(self, prefix, value):
        i = 0
        while hasattr(self.gm, f"{prefix}{i}"):
            i += 1
        name = f"{prefix}{i}"
        self.gm.register_buffer(name, value)      # in the state dict, as PyTorch's
        return self.graph.get_attr(name)

    def qparam_nodes(self, prefix, scale, zero_point):
        return self._attr(prefix + "_scale_", scale), \
            self._attr(prefix + "_zero_point_", zero_point)

    def output_observer(self, node):
        for user in node.users:
            if user.meta.get("fx_kind") == "observer":
                return user
        raise RuntimeError(f"convert_fx: node {node.name!r} has no output observer; was "
                           f"the model prepared with prepare_fx?")

    def _prefix(self, obs_node):
        src = obs_node.args[0]
        if src.op == "placeholder" or src.meta.get("qconfig") is None:
            users = [u for u in obs_node.users if u.op == "call_module"]
            path = users[0].target if users else ""
            return f"{path}_input".replace(".", "_")
        path = (src.meta.get("scope") or ("", None))[0]
        return path.replace(".", "_")

    # -- one node at a time -------------------------------------------------------------
    def observer(self, node):
        src, obs = node.args[0], self.modules[node.target]
        index = int(node.target.rsplit("_", 1)[1])
        if getattr(obs, "is_dynamic", False) or src in self.quantized:
            if src in self.quantized:
                self.source[src] = index
            node.replace_all_uses_with(src)
            self.graph.erase_node(node)
            return
        scale, zero_point = _qparams(obs, node)
        with self.graph.inserting_before(node):
            s, z = self.qparam_nodes(self._prefix(node), scale, zero_point)
            q = self.graph.create_node("call_function", quantize_per_tensor,
                                       (src, s, z, obs.dtype),
                                       name=_indexed("quantize_per_tensor", index))
        q.meta.update(fx_kind="quantize", scope=node.meta.get("scope"))
        node.replace_all_uses_with(q)
        self.graph.erase_node(node)
        self.quantized.add(q)
        self.source[q] = index

    def swap(self, node, mapping):
        mod = self.modules[node.target]
        mod.qconfig = node.meta["qconfig"]
        custom = node.meta.get("custom_module", False)
        if custom and type(mod) not in self.custom:
            raise ValueError(f"convert_fx: the observed custom module {node.target!r} "
                             f"({type(mod).__name__}) has no quantized class; give one with "
                             f"ConvertCustomConfig().set_observed_to_quantized_mapping")
        if mapping is self.static and (type(mod) in mapping or custom) and (
                node.meta["fx_kind"] == "observed"
                or (node.meta["fx_kind"] == "default" and any(
                    u.meta.get("fx_kind") == "observer" for u in node.users))):
            # a default module swapped (nn.LeakyReLU) takes its output observer's qparams
            mod.activation_post_process = self.modules[self.output_observer(node).target]
        new = swap_module(mod, mapping, self.custom)
        mod.__dict__.pop("qconfig", None)
        if "activation_post_process" in mod._modules:
            del mod._modules["activation_post_process"]
        self.modules[node.target] = new

    def binary(self, node):
        tail = node.meta.get("tail")
        last = tail if tail is not None else node
        obs = self.modules[self.output_observer(last).target]
        scale, zero_point = _qparams(obs, self.output_observer(last))
        plain, fused, _ = BINARY_OPS[node.target]
        fn = fused if (tail is not None and fused is not None) else plain
        with self.graph.inserting_before(node):
            path = (last.meta.get("scope") or ("", None))[0].replace(".", "_")
            s, z = self.qparam_nodes(path, scale, zero_point)
            name = None if fn is fused else node.name       # add_relu / mul_1, as torch
            new = self.graph.create_node("call_function", fn, (*node.args, s, z),
                                         name=name)
        new.meta.update(node.meta)
        node.replace_all_uses_with(new)
        self.graph.erase_node(node)
        self.quantized.add(new)
        if tail is not None and fn is fused:
            tail.replace_all_uses_with(new)
            self.graph.erase_node(tail)
        elif tail is not None:           # mul + relu: the relu clamps at the zero point,
            self.share(tail)             # quantize(max(r, 0)) = max(quantize(r), Z)

    def functional(self, node):
        # F.layer_norm(x, shape, w, b, eps) -> qF.layer_norm(x, normalized_shape=shape,
        # weight=w, bias=b, eps=eps, output_scale=S, output_zero_point=Z), the output
        # observer's qparams; the observer itself then goes (its input is a QTensor)
        if node.args[0] not in self.quantized:
            self.float(node)
            return
        obs_node = self.output_observer(node)
        scale, zero_point = _qparams(self.modules[obs_node.target], obs_node)
        with self.graph.inserting_before(node):
            path = (node.meta.get("scope") or ("", None))[0].replace(".", "_")
            s, z = self.qparam_nodes(path, scale, zero_point)
        qfn, keep, (scale_name, zp_name) = QUANTIZED_FUNCTIONS[node.target]
        bound = inspect.signature(node.target).bind(*node.args, **node.kwargs)
        bound.apply_defaults()
        first = next(iter(bound.arguments))
        node.target = qfn
        node.args = (bound.arguments[first],)
        node.kwargs = {**{k: bound.arguments[k] for k in keep}, scale_name: s, zp_name: z}
        self.quantized.add(node)

    def fixed_qparams(self, node):
        """Run a fixed-qparams operator (hardsigmoid) on its QTensor input when its
        output observer has the operator's own qparams; False when it stays in float."""
        key = type(self.modules[node.target]) if node.op == "call_module" else node.target
        entry = FIXED_QPARAMS_OPS.get(key) if node.op != "call_method" else None
        if entry is None or not node.args or node.args[0] not in self.quantized:
            return False
        qfn, scale, zero_point = entry
        obs_node = self.output_observer(node)
        obs = self.modules[obs_node.target]
        if _qparams(obs, obs_node) != (scale, zero_point) or obs.dtype is not quint8:
            return False
        if node.op == "call_function":
            node.target = qfn
        # a module (nn.Hardsigmoid) stays, as in PyTorch's graph: on a QTensor it runs qfn
        self.quantized.add(node)
        # PyTorch names the output's qparams (its reference graph quantizes the output)
        # before lowering drops them: the names are taken, the buffers go at the end, so
        # the next qparams get PyTorch's names (``_scale_1``) and state-dict keys
        with self.graph.inserting_before(node):
            path = (node.meta.get("scope") or ("", None))[0].replace(".", "_")
            for attr in self.qparam_nodes(path, scale, zero_point):
                self.discarded.append(attr)
        return True

    def binary_scalar(self, node):
        # the output observer is the input's: qF.add_scalar / mul_scalar compute the
        # output's qparams from the input's and the number, as PyTorch's
        scalar_op = BINARY_OPS[node.target][2]
        with self.graph.inserting_before(node):
            new = self.graph.create_node("call_function", scalar_op, node.args,
                                         name=node.name)
        new.meta.update(node.meta)
        node.replace_all_uses_with(new)
        self.graph.erase_node(node)
        self.quantized.add(new)

    def share(self, node):
        if node.args[0] not in self.quantized or not runs_quantized(node, self.modules):
            # in float; its output observer is its input's, so the quantize after it
            # restores the input's scale and zero point
            self.float(node)
            return
        if node.op == "call_module":
            if type(self.modules[node.target]) in self.static:
                self.swap(node, self.static)
        elif node.op == "call_function":
            node.target, node.args, node.kwargs = quantized_call(node)
        elif node.target == "relu":                   # QTensor has no .relu()
            node.op, node.target = "call_function", qF.relu
        self.quantized.add(node)

    def float(self, node, keep=()):
        for inp in node.all_input_nodes:
            if inp in self.quantized and inp not in keep:
                deq = self.dequantized.get(inp)
                if deq is None:
                    name = _indexed("dequantize", self.source.get(inp, 0))
                    with self.graph.inserting_after(inp):
                        deq = self.graph.create_node("call_function", dequantize, (inp,),
                                                     name=name)
                    deq.meta.update(fx_kind="dequantize", scope=inp.meta.get("scope"))
                    self.dequantized[inp] = deq
                node.replace_input_with(inp, deq)

    def _graph_outputs(self, node):
        """The output node's values at ``output_quantized_idxs`` (returned quantized)."""
        value = node.args[0]
        values = list(value) if isinstance(value, (tuple, list)) else [value]
        return {v for i, v in enumerate(values) if i in self.output_quantized_idxs}

    def run(self):
        placeholders = [n for n in self.graph.nodes if n.op == "placeholder"]
        for i, node in enumerate(placeholders):
            if i in self.input_quantized_idxs:   # arrives as a QTensor: never quantized
                self.quantized.add(node)
        for node in self.graph.nodes:
            kind = node.meta.get("fx_kind")
            if node.op == "output" and self.output_quantized_idxs:
                self.float(node, keep=self._graph_outputs(node))
            elif kind == "observer":
                self.observer(node)
            elif kind == "observed":
                self.swap(node, self.static)
                self.quantized.add(node)
            elif kind == "weight_only":          # nnq.Embedding: float in, float out
                self.float(node)
                self.swap(node, self.static)
            elif kind == "dynamic":
                self.swap(node, self.dynamic)
            elif kind == "binary":
                self.binary(node)
            elif kind == "binary_scalar":
                self.binary_scalar(node)
            elif kind == "functional":
                self.functional(node)
            elif kind == "cat":
                node.target = qF.cat
                self.quantized.add(node)
            elif kind == "share":
                self.share(node)
            elif kind == "default" and node.op == "call_module" \
                    and type(self.modules[node.target]) in self.static \
                    and not isinstance(self.modules[node.target], GRAPH_FLOAT_MODULES) \
                    and node.args[0] in self.quantized:
                # nn.Dropout: PyTorch lowers it to its quantized module, which passes
                # the integers through (its own observer saw the same values)
                self.swap(node, self.static)
                self.quantized.add(node)
            elif kind in ("passthrough", "fused_tail", "placeholder", "get_attr"):
                continue
            elif not (kind == "default" and self.fixed_qparams(node)):
                self.float(node)
        for attr in self.discarded:
            self.graph.erase_node(attr)
            delattr(self.gm, attr.target)
        self.graph.eliminate_dead_code()      # as PyTorch's lowering (unused getitems)
        self.gm.delete_all_unused_submodules()
        self.graph.lint()
        self.gm.recompile()
        return self.gm


def convert_graph_module(gm, custom_module_class_mapping=None, input_quantized_idxs=(),
                         output_quantized_idxs=()):
    """Convert the prepared and calibrated ``gm`` in place; returns it.

    ``custom_module_class_mapping`` maps observed custom module classes to the classes
    whose ``from_observed`` quantizes them; the graph inputs at
    ``input_quantized_idxs`` arrive quantized, the outputs at
    ``output_quantized_idxs`` are returned quantized."""
    return _Converter(gm, custom_module_class_mapping, input_quantized_idxs,
                      output_quantized_idxs).run()

