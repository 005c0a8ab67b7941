"""Prepare a graph: give each node its qconfig and insert observers as graph nodes.

Observers are ``call_module`` nodes calling ``activation_post_process_<k>`` children
of the GraphModule, numbered in the order they are inserted (PyTorch's names).  Each
observer node marks a value that will be a QTensor after convert.  Which values are
observed follows from each node's kind (:mod:`qlearn.quantization.fx.patterns`):
a quantized node's tensor inputs get an observer unless they have one already, and its
output gets its own observer, or for the share kinds the *same* observer module as its
input under a new name, so the two always agree on the scale and zero point.
"""
from collections import defaultdict

from ...fx import Node
from ...nn import intrinsic as nni
from ..quantization_mappings import get_default_qat_module_mappings
from .patterns import FX_EXTRA_QAT_MODULE_MAPPINGS, is_relu, node_kind

__all__ = ["assign_qconfigs", "insert_observers", "swap_qat_modules", "is_dynamic_qconfig"]


def is_dynamic_qconfig(qconfig):
    """True when ``qconfig``'s activation observer is dynamic (``is_dynamic=True``, as
    :data:`~qlearn.quantization.qconfig.default_dynamic_qconfig`'s)."""
    return qconfig is not None and bool(getattr(qconfig.activation(), "is_dynamic", False))


def _parent(name):
    return name.rsplit(".", 1)[0] if "." in name else ""


def _lookup_type(mod, qconfig_mapping):
    """A fused module takes the qconfig given to its first part's type (``nn.Conv2d`` for
    ``ConvReLU2d``) unless its own type has an entry."""
    t = type(mod)
    if t not in qconfig_mapping.object_type_qconfigs and isinstance(mod, nni._FusedModule):
        return type(mod[0])
    return t


def assign_qconfigs(gm, qconfig_mapping):
    """Store each node's qconfig in ``node.meta["qconfig"]`` (and on the module of a
    ``call_module`` node, as ``module.qconfig``), with the precedence of
    :class:`~qlearn.quantization.QConfigMapping`."""
    modules = dict(gm.named_modules())
    counts = defaultdict(int)
    for node in gm.graph.nodes:
        scope_name, scope_type = node.meta.get("scope", ("", type(gm)))
        qconfig = None
        if node.op == "call_module":
            mod = modules[node.target]
            mtype = _lookup_type(mod, qconfig_mapping)
            qconfig = qconfig_mapping.qconfig_for_module(node.target, mtype)
            parent = _parent(node.target)
            qconfig = qconfig_mapping.module_name_object_type_order_qconfigs.get(
                (parent, type(mod), counts[(parent, type(mod))]), qconfig)
            counts[(parent, type(mod))] += 1
            mod.qconfig = qconfig
        elif node.op == "call_function":
            qconfig = qconfig_mapping.qconfig_for_call(
                node.target, scope_name, scope_type, counts[(scope_name, node.target)])
            counts[(scope_name, node.target)] += 1
        elif node.op == "call_method":
            qconfig = qconfig_mapping.qconfig_for_call(node.target, scope_name, scope_type)
        elif node.op in ("placeholder", "get_attr"):
            qconfig = qconfig_mapping.global_qconfig
        node.meta["qconfig"] = qconfig


def swap_qat_modules(gm):
    """Replace each float module with a qconfig by its QAT twin (``nnqat.Linear``,
    ``nniqat.ConvBnReLU2d`` ...) through the QAT mapping, as ``prepare_qat`` does."""
    mapping = {**get_default_qat_module_mappings(), **FX_EXTRA_QAT_MODULE_MAPPINGS}
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op != "call_module":
            continue
        mod = modules[node.target]
        cls = mapping.get(type(mod))
        if cls is not None and node.meta.get("qconfig") is not None \
                and not is_dynamic_qconfig(node.meta["qconfig"]):
            mod.qconfig = node.meta["qconfig"]
            new = cls.from_float(mod)
            new.qconfig = node.meta["qconfig"]
            gm.add_submodule(node.target, new)


class _ObserverInserter:
    def __init__(self, gm):
        self.gm = gm
        self.graph = gm.graph
        self.modules = dict(gm.named_modules())
        self.count = 0
        self.observed = {}          # value node -> the observer node that quantizes it

    def new_observer(self, src, module):
        name = f"activation_post_process_{self.count}"
        self.count += 1
        self.gm.add_submodule(name, module)
        self.modules[name] = module
        with self.graph.inserting_after(src):
            node = self.graph.call_module(name, (src,))
        node.meta.update(fx_kind="observer", qconfig=None, scope=src.meta.get("scope"))
        return node

    def input(self, node, arg, qconfig):
        """The observed version of ``arg`` for ``node`` (made if missing)."""
        if not isinstance(arg, Node) or arg.meta.get("fx_kind") == "passthrough":
            return arg
        if arg.meta.get("fx_kind") == "observer":
            return arg
        obs = self.observed.get(arg)
        if obs is None:
            obs = self.observed[arg] = self.new_observer(arg, qconfig.activation())
        node.replace_input_with(arg, obs)
        return obs

    def output(self, node, qconfig, module=None):
        """An observer on ``node``'s output, read by all of ``node``'s users."""
        obs = self.new_observer(node, module if module is not None else qconfig.activation())
        for user in list(node.users):
            if user is not obs:
                user.replace_input_with(node, obs)
        self.observed[node] = obs
        return obs


def insert_observers(gm):
    """Insert the observer nodes (after :func:`assign_qconfigs`); returns ``gm``."""
    ins = _ObserverInserter(gm)
    graph, modules = gm.graph, ins.modules
    for node in graph.nodes:
        if node.meta.get("fx_kind") in ("observer", "fused_tail"):
            continue
        qconfig = node.meta.get("qconfig")
        # a custom module swapped to its observed class is observed as a quantized one
        kind = "observed" if node.meta.get("custom_module") and qconfig is not None \
            else node_kind(node, modules, qconfig, is_dynamic_qconfig(qconfig))
        node.meta["fx_kind"] = kind
        if kind == "observed":
            ins.input(node, node.args[0], qconfig)
            ins.output(node, qconfig)
        elif kind == "dynamic":
            ins.input(node, node.args[0], qconfig)
        elif kind == "binary":
            for a in node.args:
                ins.input(node, a, qconfig)
            users = list(node.users)
            tail = users[0] if len(users) == 1 else None
            if tail is not None and is_relu(tail, modules) and tail.args[0] is node \
                    and tail.meta.get("qconfig") is not None:
                tail.meta["fx_kind"] = "fused_tail"
                node.meta["tail"] = tail
                ins.output(tail, qconfig)
            else:
                ins.output(node, qconfig)
        elif kind == "binary_scalar":
            obs_in = ins.input(node, node.args[0], qconfig)
            ins.output(node, qconfig, module=modules[obs_in.target])
        elif kind == "cat":
            tensors = node.args[0]
            obs_nodes = [ins.input(node, t, qconfig) for t in tensors]
            first = modules[obs_nodes[0].target]
            for obs in obs_nodes[1:]:       # the inputs share the first one's observer
                if modules[obs.target] is not first:
                    gm.add_submodule(obs.target, first)
                    modules[obs.target] = first
            ins.output(node, qconfig, module=first)
        elif kind == "share":
            obs_in = ins.input(node, node.args[0], qconfig)
            ins.output(node, qconfig, module=modules[obs_in.target])
        elif kind in ("default", "functional"):
            ins.input(node, node.args[0], qconfig)
            ins.output(node, qconfig)
    graph.lint()
    gm.recompile()
    return gm
