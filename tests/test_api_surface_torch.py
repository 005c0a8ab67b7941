"""The public surface of torch.ao's quantization packages, name by name, against
qlearn's counterparts.

Each public name of a torch package (its ``__all__``, or its public attributes when it
has none) must exist in qlearn's package of the same role, be of the same kind (class,
function, module, other) and, for classes and functions, take PyTorch's leading
arguments under PyTorch's names, unless it is listed in :data:`NOT_IN_QLEARN` with the
reason qlearn leaves it out.  A listed name that qlearn gains fails the test too, so the
list stays true.
"""
import importlib
import inspect

import pytest

PACKAGES = [
    ("torch.ao.quantization", "qlearn.quantization"),
    ("torch.ao.nn.quantized", "qlearn.nn.quantized"),
    ("torch.ao.nn.quantized.functional", "qlearn.nn.quantized.functional"),
    ("torch.ao.nn.quantized.dynamic", "qlearn.nn.quantized.dynamic"),
    ("torch.ao.nn.quantized.reference", "qlearn.nn.quantized.reference"),
    ("torch.ao.nn.intrinsic", "qlearn.nn.intrinsic"),
    ("torch.ao.nn.intrinsic.quantized", "qlearn.nn.intrinsic.quantized"),
    ("torch.ao.nn.intrinsic.quantized.dynamic", "qlearn.nn.intrinsic.quantized.dynamic"),
    ("torch.ao.nn.intrinsic.qat", "qlearn.nn.intrinsic.qat"),
    ("torch.ao.nn.qat", "qlearn.nn.qat"),
    ("torch.ao.nn.qat.dynamic", "qlearn.nn.qat.dynamic"),
]

_JIT = ("TorchScript: qlearn has no scripting or tracing to a JIT graph (its graph mode "
        "is qlearn.fx)")
_AFFINE = ("torchao's affine-quantization observers of the PT2E export flow (block "
           "granularities, mapping types), outside the eager and FX workflows qlearn mirrors")

#: torch names qlearn deliberately does not have: {package: {name: why}}
NOT_IN_QLEARN = {
    "torch.ao.quantization": {
        **dict.fromkeys(["convert_jit", "convert_dynamic_jit", "fuse_conv_bn_jit",
                         "prepare_jit", "prepare_dynamic_jit", "quantize_jit",
                         "quantize_dynamic_jit", "script_qconfig", "script_qconfig_dict"],
                        _JIT),
        **dict.fromkeys(["get_default_static_sparse_quant_module_mappings",
                         "get_default_dynamic_sparse_quant_module_mappings"],
                        "qlearn has no sparse (block-sparse weight) quantized modules"),
        **dict.fromkeys(["AffineQuantizedObserverBase", "Granularity", "MappingType",
                         "PerAxis", "PerBlock", "PerGroup", "PerRow", "PerTensor",
                         "PerToken", "TorchAODType", "ZeroPointDomain", "get_block_size"],
                        _AFFINE),
        "default_embedding_fake_quant_4bit": "4-bit embedding QAT; not yet (the 8-bit "
                                             "default_embedding_fake_quant is there)",
    },
    "torch.ao.nn.quantized": {
        "LSTM": "the static quantized LSTM is a custom module built from "
                "torch.ao.nn.quantizable.LSTM, which qlearn does not have (its LSTM is "
                "quantized dynamically: nnqd.LSTM)",
        "MultiheadAttention": "qlearn has no float MultiheadAttention",
    },
    "torch.ao.nn.quantized.dynamic": dict.fromkeys(
        ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
         "ConvTranspose3d"],
        "dynamically quantized convolutions: in no default mapping of torch's, and torch "
        "warns on construction that they have 'poor numerical accuracy and [their] use is "
        "not recommended' (the output is requantized at the input's own qparams); qlearn "
        "quantizes convolutions statically"),
    "torch.ao.nn.quantized.reference": dict.fromkeys(
        ["RNNCell", "LSTMCell", "GRUCell", "LSTM", "GRU"],
        "reference recurrent layers: qlearn's recurrent layers are quantized dynamically "
        "(nnqd), which has no reference form in qlearn's convert_to_reference_fx"),
    "torch.ao.nn.intrinsic": dict.fromkeys(
        ["ConvAdd2d", "ConvAddReLU2d"],
        "conv + add fusions exist for the oneDNN backend only; qlearn's int8 layers "
        "follow FBGEMM, where the add stays a quantized add"),
    "torch.ao.nn.intrinsic.quantized": dict.fromkeys(
        ["ConvAdd2d", "ConvAddReLU2d"], "see torch.ao.nn.intrinsic: oneDNN-only fusions"),
}


def _public_names(mod):
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n in dir(mod) if not n.startswith("_")]
    return [n for n in names if hasattr(mod, n)]     # torch lists one name it lacks


def _kind(obj):
    if type(obj).__name__ in ("TypeAliasType", "_UnionGenericAlias", "UnionType"):
        return "type alias"                       # QConfigAny = Union[QConfig, None]
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "function"
    return "object"


def _params(obj):
    fn = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return [p.name for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


@pytest.fixture(params=PACKAGES, ids=[t for t, _ in PACKAGES])
def pair(request, torch_mod):
    tname, qname = request.param
    return tname, importlib.import_module(tname), importlib.import_module(qname)


def test_every_torch_name_is_in_qlearn_or_listed(pair):
    tname, tmod, qmod = pair
    listed = NOT_IN_QLEARN.get(tname, {})
    missing = [n for n in _public_names(tmod) if not hasattr(qmod, n) and n not in listed]
    assert missing == [], f"{tname}: names qlearn lacks and does not list: {missing}"
    gained = [n for n in listed if hasattr(qmod, n)]
    assert gained == [], f"{tname}: listed as missing but present in qlearn: {gained}"
    stale = [n for n in listed if not hasattr(tmod, n)]
    assert stale == [], f"{tname}: listed names torch does not have: {stale}"
    assert all(isinstance(why, str) and len(why) > 20 for why in listed.values())


def test_same_kind_and_leading_arguments(pair):
    tname, tmod, qmod = pair
    problems = []
    for n in _public_names(tmod):
        if not hasattr(qmod, n):
            continue
        t, q = getattr(tmod, n), getattr(qmod, n)
        if _kind(t) != _kind(q):
            problems.append(f"{n}: torch's is a {_kind(t)}, qlearn's a {_kind(q)}")
            continue
        if _kind(t) not in ("class", "function"):
            continue
        tp, qp = _params(t), _params(q)
        if tp is None or qp is None:
            continue
        # PyTorch's arguments, in its order, under its names (either may have more)
        common = min(len(tp), len(qp))
        if tp[:common] != qp[:common]:
            problems.append(f"{n}: torch {tp}, qlearn {qp}")
    assert problems == [], f"{tname}:\n" + "\n".join(problems)


def test_qlearn_all_lists_only_what_exists():
    for _, qname in PACKAGES:
        qmod = importlib.import_module(qname)
        for n in getattr(qmod, "__all__", []):
            assert hasattr(qmod, n), f"{qname}.__all__ names {n!r}, which it lacks"


def test_qlearn_functional_has_no_invented_conv_transpose():
    """torch.ao.nn.quantized.functional has no conv_transpose functions (the ops are
    torch.ops.quantized.conv_transpose1d/2d/3d, reached through nnq.ConvTranspose*d);
    qlearn's quantized functional mirrors that."""
    import qlearn.nn.quantized.functional as qF
    assert not [n for n in dir(qF) if n.startswith("conv_transpose")]
