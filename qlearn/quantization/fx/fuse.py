"""Fusion on a graph: find runs of nodes matching the fusion table and merge them.

The patterns and what to build for each are the eager workflow's table,
:data:`qlearn.quantization.fuser_method_mappings.DEFAULT_OP_LIST_TO_FUSER_METHOD`
(conv-bn, conv-bn-relu, conv-relu, linear-bn, linear-relu, bn-relu): a run
``n0 -> n1 [-> n2]`` matches when each node's module type is the pattern's (a functional
``F.relu`` or ``x.relu()`` counts as ``nn.ReLU``) and every node but the last has the
next one as its only user.  The fused module replaces ``n0``'s module under ``n0``'s
name, the other nodes are erased, as in PyTorch (``conv1 -> bn1 -> relu1`` becomes one
``conv1`` node calling a ``ConvReLU2d``).
"""
from ... import nn
from ..fuser_method_mappings import get_default_fusion_patterns
from .patterns import is_relu

__all__ = ["fuse_graph_module"]


def _node_type(node, modules):
    if node.op == "call_module":
        return type(modules.get(node.target))
    if is_relu(node, modules):
        return nn.ReLU
    return None


def _match(node, pattern, modules):
    """The nodes of ``pattern`` starting at ``node``, or None."""
    run = [node]
    for i, want in enumerate(pattern):
        cur = run[-1]
        if _node_type(cur, modules) is not want:
            return None
        if i + 1 < len(pattern):
            users = list(cur.users)
            if len(users) != 1:
                return None
            nxt = users[0]
            if not nxt.args or nxt.args[0] is not cur or len(nxt.all_input_nodes) != 1:
                return None
            run.append(nxt)
    return run


def fuse_graph_module(gm, is_qat=False, fusion_patterns=None):
    """Fuse every matching run in ``gm`` (in place); returns ``gm``.

    ``is_qat`` is passed to the fuser methods: False folds batch norms into the layer
    before (eval mode), True keeps them in a QAT-ready container.
    """
    patterns = fusion_patterns or get_default_fusion_patterns()
    ordered = sorted(patterns, key=len, reverse=True)       # longest match first
    modules = dict(gm.named_modules())
    graph = gm.graph
    for node in graph.nodes:
        if node.graph is not graph or node not in graph._nodes or node.op != "call_module":
            continue
        for pattern in ordered:
            run = _match(node, pattern, modules)
            if run is None:
                continue
            mods = []
            for n in run:
                if n.op == "call_module":
                    mods.append(modules[n.target])
                else:                            # a functional relu: a module for it
                    relu = nn.ReLU()
                    relu.train(modules[run[0].target].training)
                    mods.append(relu)
            fused = patterns[pattern](is_qat, *mods)
            gm.add_submodule(node.target, fused)
            modules[node.target] = fused
            last = run[-1]
            last.replace_all_uses_with(node)
            for n in reversed(run[1:]):
                graph.erase_node(n)
            break
    gm.delete_all_unused_submodules()
    graph.lint()
    gm.recompile()
    return gm
