r"""Convert a prepared graph to a *reference* quantized model: every observed value is
quantized and immediately dequantized, and every layer with a weight becomes its
:mod:`qlearn.nn.quantized.reference` twin (the float layer with the weight quantized
and dequantized), so the model computes in float

.. math::

   \hat x = S\,\big(\operatorname{clamp}(\operatorname{round}(x / S + Z), q_{min},
   q_{max}) - Z\big)

at every place the int8 model holds a QTensor: the "dequantize -> float op ->
quantize" pattern PyTorch's ``convert_to_reference_fx`` produces, which a backend
later lowers to int8 kernels (qlearn's :func:`~qlearn.quantization.quantize_fx.convert_fx`
is that lowering).  The reference model's outputs are those of the int8 model up to the
rounding of the int8 kernels' own requantization.
"""
from ... import quantize_per_tensor
from ...dtypes import QDType
from ...nn import intrinsic as nni
from ...nn.quantized.reference.modules.utils import weight_qparams_of
from ..quantization_mappings import get_default_static_quant_reference_module_mappings
from .convert import _qparams, dequantize

__all__ = ["convert_reference_graph_module"]


def _reference_module(mod, qconfig, mapping):
    """The reference twin of a float layer (or of a fused container's first layer, the
    container kept); None when there is none."""
    layer = mod[0] if isinstance(mod, nni._FusedModule) else mod
    cls = mapping.get(type(layer))
    if cls is None or not hasattr(cls, "from_float") or not hasattr(layer, "weight"):
        return None
    obs = qconfig.weight()
    obs(layer.weight.data)
    ref = cls.from_float(layer, weight_qparams_of(obs))
    if layer is mod:
        return ref
    mod._modules["0"] = ref
    return mod


def convert_reference_graph_module(gm, remove_qconfig=True):
    """Rewrite the prepared and calibrated ``gm`` in place (see the module notes);
    returns it."""
    graph = gm.graph
    mapping = get_default_static_quant_reference_module_mappings()
    for node in list(graph.nodes):
        kind = node.meta.get("fx_kind")
        if kind == "observer":
            obs = gm.get_submodule(node.target)
            src = node.args[0]
            if getattr(obs, "is_dynamic", False):
                raise ValueError(f"convert_to_reference_fx: {node.target} observes "
                                 f"{src.name!r} for dynamic quantization, which has no "
                                 f"reference form in qlearn; use convert_fx")
            if not isinstance(getattr(obs, "dtype", None), QDType):
                node.replace_all_uses_with(src)      # a float placeholder observer
                graph.erase_node(node)
                continue
            scale, zero_point = _qparams(obs, node)
            k = node.target.rsplit("_", 1)[1]
            s_name, z_name = f"_scale_{k}", f"_zero_point_{k}"
            gm.register_buffer(s_name, scale)
            gm.register_buffer(z_name, zero_point)
            with graph.inserting_before(node):
                s, z = graph.get_attr(s_name), graph.get_attr(z_name)
                q = graph.create_node("call_function", quantize_per_tensor,
                                      (src, s, z, obs.dtype), name=f"quantize_per_tensor_{k}")
                dq = graph.create_node("call_function", dequantize, (q,),
                                       name=f"dequantize_{k}")
            node.replace_all_uses_with(dq)
            graph.erase_node(node)
        elif kind in ("observed", "dynamic", "weight_only") and node.op == "call_module":
            mod = gm.get_submodule(node.target)
            if hasattr(mod, "weight_fake_quant"):
                raise ValueError(f"convert_to_reference_fx: {node.target!r} is a QAT module "
                                 f"({type(mod).__name__}); qlearn builds reference models "
                                 f"from post-training prepared models only")
            qconfig = node.meta.get("qconfig")
            ref = _reference_module(mod, qconfig, mapping) if qconfig is not None else None
            if ref is not None:
                gm.add_submodule(node.target, ref)
                mod = ref
            if remove_qconfig:
                for m in mod.modules():
                    m.__dict__.pop("qconfig", None)
    gm.delete_all_unused_submodules()
    graph.lint()
    gm.recompile()
    return gm
