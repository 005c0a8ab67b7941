"""Fusion on a graph: find runs of nodes matching the fusion table and merge them.

The patterns and what to build for each are the eager workflow's table,
:data:`qlearn.quantization.fuser_method_mappings.DEFAULT_OP_LIST_TO_FUSER_METHOD`
(conv-bn, conv-bn-relu, conv-relu, linear-bn, linear-relu, bn-relu).  The matching is
PyTorch's (``torch/ao/quantization/fx/fuse.py``, ``_find_matches`` and ``_is_match``):

* the graph is walked **from its last node to its first**; each node not yet taken is
  tried as the *last* node of every pattern, longest pattern first, and the first
  pattern that matches takes its nodes;
* a run ``n0 -> n1 [-> n2]`` matches when each node's module type is exactly the
  pattern's (an ``F.relu`` call counts as ``nn.ReLU``; ``x.relu()`` does not, as in
  PyTorch), every node after the first has the one before as its only input, and
  every node but the last has exactly one user (the last may have any number).

Walking backwards decides overlaps: in ``ConvTranspose2d -> BatchNorm2d -> ReLU`` (no
three-layer pattern exists for a transposed convolution) the ReLU is reached first, so
``BatchNorm2d + ReLU`` becomes a ``BNReLU2d`` and the transposed convolution stays
alone, as PyTorch 2.13's ``prepare_fx`` leaves it.  The fused module replaces ``n0``'s
module under ``n0``'s name and the other nodes are erased, as in PyTorch
(``conv1 -> bn1 -> relu1`` becomes one ``conv1`` node calling a ``ConvReLU2d``).
"""
from ... import nn
from ...nn import functional as F
from ..fuser_method_mappings import get_default_fusion_patterns

__all__ = ["fuse_graph_module"]


def _node_type(node, modules):
    if node.op == "call_module":
        return type(modules.get(node.target))
    if node.op == "call_function" and node.target is F.relu:
        return nn.ReLU
    return None


def _match_backwards(last, pattern, modules):
    """The nodes of ``pattern`` (first layer first) ending at ``last``, or None."""
    run = [last]
    for i in range(len(pattern) - 1, -1, -1):
        cur = run[0]
        if _node_type(cur, modules) is not pattern[i]:
            return None
        if i > 0:
            # PyTorch's tracer records F.relu(x, True) as relu(x, inplace=True): one
            # argument either way
            if not cur.args or len(cur.all_input_nodes) != 1 \
                    or cur.args[0] is not cur.all_input_nodes[0] \
                    or (cur.op == "call_module" and len(cur.args) != 1):
                return None
            prev = cur.args[0]
            if len(prev.users) != 1:        # an inner node feeds only the next one
                return None
            run.insert(0, prev)
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
    taken, runs = set(), []
    for node in reversed(list(graph.nodes)):
        if node in taken:
            continue
        for pattern in ordered:
            run = _match_backwards(node, pattern, modules)
            if run is None or run[0].op != "call_module":
                continue
            # PyTorch's apply_match skips nodes an earlier (later-in-graph) match took;
            # with single-user inner nodes that cannot happen, but never fuse one twice
            if any(n in taken for n in run):
                continue
            taken.update(run)
            runs.append((pattern, run))
            break
    for pattern, run in reversed(runs):                     # in graph order
        first = run[0]
        mods = []
        for n in run:
            if n.op == "call_module":
                mods.append(modules[n.target])
            else:                                # a functional relu: a module for it
                relu = nn.ReLU()
                relu.train(modules[first.target].training)
                mods.append(relu)
        fused = patterns[pattern](is_qat, *mods)
        gm.add_submodule(first.target, fused)
        modules[first.target] = fused
        run[-1].replace_all_uses_with(first)
        for n in reversed(run[1:]):
            graph.erase_node(n)
    gm.delete_all_unused_submodules()
    graph.lint()
    gm.recompile()
    return gm
