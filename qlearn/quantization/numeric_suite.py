r"""The numeric suite: compare a quantized model with the float model it came from.

The names, arguments and returned dictionaries are those of PyTorch's eager-mode
numeric suite (``torch.ao.ns._numeric_suite``), which "Practical Quantization in
PyTorch" uses to find the layers that lose accuracy.  Three questions, three functions:

* :func:`compare_weights`: how far is each quantized weight from its float original?
  ``{"conv1.weight": {"float": ndarray, "quantized": QTensor}, ...}``
* :func:`compare_model_outputs`: run both models on the same input; how far apart are
  the outputs of matching layers (the error *accumulated* up to each layer)?
  ``{"conv1.stats": {"float": [output, ...], "quantized": [output, ...]}, ...}``
* :func:`compare_model_stub`: feed each quantized layer's own input to its float twin
  as well (a :class:`Shadow`); how much error does each layer *add*?
  ``{"conv1.stats": {"float": [...], "quantized": [...]}, ...}``

Each list holds one entry per forward call.  Feed the entries to the metrics of
:mod:`qlearn.quantization.metrics` (:func:`compute_sqnr` ...), which dequantize QTensors.
The functions that run the models attach loggers to them *in place*, as PyTorch's do:
pass copies (``copy.deepcopy``) to keep the originals clean.

Where qlearn differs from PyTorch, on purpose:

* Bad input raises instead of silently giving an empty or partial dictionary: a
  quantized weight with no float counterpart (state dicts of different models) names the
  key, a layer that fails on the input is named, and a ``q_model`` that was not converted
  (or a swapped argument order) is reported.
* :class:`ShadowLogger` keeps a layer's whole output.  PyTorch's applies
  ``x = x[0] if len(x) > 1`` (meant for tuple outputs) to tensors too, so it records
  only the first sample of a batch.
* qlearn's quantized Linear stores its weight as ``"fc.weight"`` (PyTorch:
  ``"fc._packed_params._packed_params"``), so the :func:`compare_weights` key is
  ``"fc.weight"``; both key forms are matched.
"""
from collections.abc import Mapping

from .. import autograd
from ..nn.modules.module import Module
from ..qtensor import QTensor
from .quantization_mappings import get_default_compare_output_module_list
from .stubs import DeQuantStub

__all__ = ["compare_weights", "get_logger_dict", "Logger", "ShadowLogger", "OutputLogger",
           "Shadow", "prepare_model_with_stubs", "compare_model_stub",
           "get_matching_activations", "prepare_model_outputs", "compare_model_outputs",
           "get_default_compare_output_module_list",
           "NON_LEAF_MODULE_TO_ADD_OBSERVER_ALLOW_LIST"]


# --- weights --------------------------------------------------------------------------------
def _module_of(key, drop=1):
    parts = key.split(".")
    return ".".join(parts[:-drop]) if len(parts) > drop else None


def _find_match(keys, key, postfix):
    """The entry of ``keys`` that belongs to the same module as ``key`` (whose last part
    is ``postfix``), or None.

    A candidate matches when its module (the key without its last part) is ``key``'s
    module, or that module's parent: a fused float ``conv.0.weight`` belongs to a
    quantized ``conv.weight``.  For ``fc._packed_params._packed_params`` the module is
    ``fc``.  PyTorch compares the parts joined without dots (so ``layer1.0`` and
    ``layer10`` collide); qlearn keeps the dots.  Among several candidates, one that
    also ends in ``postfix`` wins, then the first.
    """
    if key.split(".")[-1] != postfix:
        return None
    modules = [_module_of(key)]
    if postfix == "_packed_params":
        modules.append(_module_of(key, 2))
    for module in modules:
        if module is None:
            continue
        found = [k for k in keys if _module_of(k) == module or _module_of(k, 2) == module]
        if found:
            same = [k for k in found if k.split(".")[-1] == postfix]
            return (same or found)[0]
    return None


def compare_weights(float_dict, quantized_dict):
    r"""Pair every weight of a quantized model with the float weight it came from.

    Parameters
    ----------
    float_dict : Mapping
        ``float_model.state_dict()``.
    quantized_dict : Mapping
        ``quantized_model.state_dict()`` (after ``convert``).

    Returns
    -------
    dict
        ``{key: {"float": ndarray, "quantized": QTensor}}`` with the quantized model's
        keys (``"conv1.weight"``); a layer left in float gives two arrays.

    Raises
    ------
    ValueError
        When a weight of ``quantized_dict`` has no float counterpart or a different
        shape (the state dicts come from different models), or when ``quantized_dict``
        holds no quantized weight at all (the model was not converted).

    Examples
    --------
    Measure each weight's quantization error with
    :func:`~qlearn.quantization.metrics.compute_sqnr`:

    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> from qlearn.quantization.numeric_suite import compare_weights
    >>> from qlearn.quantization.metrics import compute_sqnr
    >>> float_model = tq.QuantWrapper(nn.Linear(8, 4))
    >>> float_model.qconfig = tq.default_qconfig
    >>> prepared = tq.prepare(float_model)
    >>> _ = prepared(np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32))
    >>> q_model = tq.convert(prepared)
    >>> wt = compare_weights(float_model.state_dict(), q_model.state_dict())
    >>> list(wt), type(wt["module.weight"]["quantized"]).__name__
    (['module.weight'], 'QTensor')
    >>> compute_sqnr(wt["module.weight"]["float"], wt["module.weight"]["quantized"]) > 35
    True
    """
    for name, d in (("float_dict", float_dict), ("quantized_dict", quantized_dict)):
        if not isinstance(d, Mapping):
            raise TypeError(f"`{name}` must be a state dict (a mapping of names to "
                            f"arrays), got {type(d).__name__}")
    if not any(isinstance(v, QTensor) for v in quantized_dict.values()):
        raise ValueError("`quantized_dict` holds no quantized weight (no QTensor value): "
                         "pass the state dict of a converted model "
                         "(qlearn.quantization.convert) as the second argument")
    float_keys = list(float_dict)
    weight_dict = {}
    for key, value in quantized_dict.items():
        last = key.split(".")[-1]
        if last not in ("weight", "_packed_params"):
            continue
        match = _find_match(float_keys, key, last)
        if match is None:
            if last == "_packed_params" and not isinstance(value, QTensor):
                continue                 # the "dtype" or other bookkeeping entries
            raise ValueError(f"`quantized_dict` key {key!r} has no matching weight in "
                             f"`float_dict` (looked for '{_module_of(key)}.weight' and "
                             f"'{_module_of(key)}.<n>.weight'); are the two state dicts "
                             f"from the same model?")
        quantized = value[0] if isinstance(value, tuple) else value
        ref = float_dict[match]
        qshape, fshape = tuple(getattr(quantized, "shape", ())), tuple(getattr(ref, "shape", ()))
        if qshape != fshape:
            raise ValueError(f"`quantized_dict` key {key!r} has shape {qshape}, its float "
                             f"match {match!r} has shape {fshape}; are the two state dicts "
                             f"from the same model?")
        weight_dict[key] = {"float": ref, "quantized": quantized}
    return weight_dict


# --- loggers --------------------------------------------------------------------------------
class Logger(Module):
    """Base class of the loggers: ``stats`` is a dict of lists that ``forward`` fills.

    ``dtype`` is ``qlearn.quint8``, as in PyTorch, where graph mode reads it to decide
    where a logger goes.

    >>> from qlearn.quantization.numeric_suite import Logger
    >>> Logger().stats
    {}
    """

    def __init__(self):
        super().__init__()
        from ..dtypes import quint8
        self.stats = {}
        self.dtype = quint8

    def forward(self, x):
        """Record nothing (subclasses record)."""


def _detached(x):
    return x.detach() if isinstance(x, autograd.Tensor) else x


class ShadowLogger(Logger):
    """Records the outputs of a quantized module and of its float shadow
    (:class:`Shadow`): ``stats = {"float": [...], "quantized": [...]}``.

    A tuple or list output (an LSTM's) is recorded by its first element.

    >>> from qlearn.quantization.numeric_suite import ShadowLogger
    >>> log = ShadowLogger()
    >>> log(ql.quantize_per_tensor([1.0], 0.5, 0, ql.quint8), np.array([1.1]))
    >>> sorted(log.stats), len(log.stats["float"])
    (['float', 'quantized'], 1)
    """

    def __init__(self):
        super().__init__()
        self.stats["float"] = []
        self.stats["quantized"] = []

    def forward(self, x, y):
        """Append ``x`` (the quantized module's output) and ``y`` (the float one's)."""
        if isinstance(x, (tuple, list)):
            x = x[0]
        if isinstance(y, (tuple, list)):
            y = y[0]
        self.stats["quantized"].append(_detached(x))
        self.stats["float"].append(_detached(y))


class OutputLogger(Logger):
    """Records a module's output and passes it on: ``stats = {"tensor_val": [...]}``.

    >>> from qlearn.quantization.numeric_suite import OutputLogger
    >>> log = OutputLogger()
    >>> log(np.array([1.0, 2.0]))
    array([1., 2.])
    >>> log.stats
    {'tensor_val': [array([1., 2.])]}
    """

    def __init__(self):
        super().__init__()
        self.stats["tensor_val"] = []

    def forward(self, x):
        """Append ``x`` to ``stats["tensor_val"]`` and return it unchanged."""
        self.stats["tensor_val"].append(x)
        return x


def _get_logger_dict_helper(mod, target_dict, prefix=""):
    def get_prefix(p):
        return p if p == "" else p + "."

    for child in mod.children():
        if isinstance(child, Logger):
            target_dict[get_prefix(prefix) + "stats"] = child.stats
            break
    for name, child in mod.named_children():
        _get_logger_dict_helper(child, target_dict, get_prefix(prefix) + name)


def get_logger_dict(mod, prefix=""):
    """The ``stats`` of every logger in ``mod``, keyed ``"<module name>.stats"``.

    A logger is found as a child of the module it watches (an ``activation_post_process``
    or a :class:`Shadow`'s ``logger``), so the key names that module; a logger of
    the root itself gives ``"stats"``.

    Parameters
    ----------
    mod : Module
    prefix : str
        Put in front of every key (``"model"`` gives ``"model.conv1.stats"``).

    Returns
    -------
    dict

    Examples
    --------
    >>> from qlearn import nn
    >>> from qlearn.quantization.numeric_suite import OutputLogger, get_logger_dict
    >>> m = nn.Sequential(nn.Linear(2, 2))
    >>> m[0].activation_post_process = OutputLogger()
    >>> get_logger_dict(m)
    {'0.stats': {'tensor_val': []}}
    """
    if not isinstance(mod, Module):
        raise TypeError(f"`mod` must be a qlearn nn.Module, got {type(mod).__name__}")
    if not isinstance(prefix, str):
        raise TypeError(f"`prefix` must be a str, got {type(prefix).__name__} {prefix!r}")
    target_dict = {}
    _get_logger_dict_helper(mod, target_dict, prefix)
    return target_dict


# --- shadow modules ---------------------------------------------------------------------------
def _dequantize_list(t):
    if isinstance(t, (list, tuple)):
        return [_dequantize_list(x) for x in t]
    return t.dequantize() if isinstance(t, QTensor) else t


def _dequantize(x):
    return x.dequantize() if isinstance(x, QTensor) else x


class Shadow(Module):
    r"""A quantized module with its float original alongside, fed the same input.

    ``forward`` runs ``q_module`` on the (quantized) input, then ``float_module`` on the
    dequantized input, hands both outputs to the logger and returns the quantized one,
    so the rest of the quantized model runs unchanged.  The difference the logger sees
    is the error this one layer adds, not the error accumulated before it.  The
    ``add`` / ``mul`` / ``cat`` ... methods do the same for a ``QFunctional`` and its
    ``FloatFunctional``.

    Parameters
    ----------
    q_module : Module
        The quantized module, kept as ``orig_module``.
    float_module : Module
        The float module it was converted from, kept as ``shadow_module``.
    logger_cls : type
        Called with no argument to make ``logger`` (default use: :class:`ShadowLogger`).

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.nn.quantized as nnq
    >>> from qlearn.quantization.numeric_suite import Shadow, ShadowLogger
    >>> relu = nn.ReLU6()
    >>> s = Shadow(nnq.ReLU6(), relu, ShadowLogger)
    >>> out = s(ql.quantize_per_tensor([-1.0, 7.0], 0.1, 10, ql.quint8))
    >>> out.dequantize(), s.logger.stats["float"][0].numpy()
    (array([0., 6.], dtype=float32), array([0., 6.], dtype=float32))
    """

    def __init__(self, q_module, float_module, logger_cls):
        super().__init__()
        from ..nn.quantized import DeQuantize
        self.orig_module = q_module
        self.shadow_module = float_module
        self.dequant = DeQuantize()
        self.logger = logger_cls()

    def forward(self, *x):
        """Run both modules on ``x`` (dequantized for the float one); return the
        quantized module's output."""
        xl = list(x)
        output = self.orig_module(*xl)
        shadow_output = self.shadow_module(*_dequantize_list(xl))
        self.logger(output, shadow_output)
        return output

    def _both(self, op, args, float_args):
        output = getattr(self.orig_module, op)(*args)
        shadow_output = getattr(self.shadow_module, op)(*float_args)
        self.logger(output, shadow_output)
        return output

    def add(self, x, y):
        """``orig_module.add(x, y)``, shadowed by the float ``add``."""
        return self._both("add", (x, y), (_dequantize(x), _dequantize(y)))

    def add_scalar(self, x, y):
        """``orig_module.add_scalar(x, y)`` for a scalar ``y``, shadowed."""
        return self._both("add_scalar", (x, y), (_dequantize(x), y))

    def mul(self, x, y):
        """``orig_module.mul(x, y)``, shadowed by the float ``mul``."""
        return self._both("mul", (x, y), (_dequantize(x), _dequantize(y)))

    def mul_scalar(self, x, y):
        """``orig_module.mul_scalar(x, y)`` for a scalar ``y``, shadowed."""
        return self._both("mul_scalar", (x, y), (_dequantize(x), y))

    def cat(self, x, dim=0):
        """``orig_module.cat(x, dim)``, shadowed by the float ``cat``."""
        return self._both("cat", (x, dim), ([_dequantize(t) for t in x], dim))

    def add_relu(self, x, y):
        """``orig_module.add_relu(x, y)``, shadowed by the float ``add_relu``."""
        return self._both("add_relu", (x, y), (_dequantize(x), _dequantize(y)))


def _is_identical_module_type(mod1, mod2):
    return [type(m) for m in mod1.modules()] == [type(m) for m in mod2.modules()]


def prepare_model_with_stubs(float_module, q_module, module_swap_list, logger_cls):
    """Replace each quantized child whose float twin's type is in ``module_swap_list``
    by a :class:`Shadow` of the two (in place).

    Children are matched by name, recursively; a module whose type is in the list and
    whose subtree has the same types in both models (it was not quantized) is left
    alone.

    Parameters
    ----------
    float_module : Module
        The float model ``q_module`` was converted from.
    q_module : Module
        The quantized model; modified in place.
    module_swap_list : set of type
        Float module types to shadow (``{nn.Conv2d, nn.Linear}``).
    logger_cls : type
        The logger each Shadow makes (:class:`ShadowLogger`).

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.nn.quantized as nnq
    >>> from qlearn.quantization.numeric_suite import prepare_model_with_stubs, ShadowLogger
    >>> f, q = nn.Sequential(nn.ReLU6()), nn.Sequential(nnq.ReLU6())
    >>> prepare_model_with_stubs(f, q, {nn.ReLU6}, ShadowLogger)
    >>> type(q[0]).__name__
    'Shadow'
    """
    _check_pair(float_module, q_module, "prepare_model_with_stubs")
    _check_swap_list(module_swap_list)
    _check_logger_cls(logger_cls, ShadowLogger)
    _prepare_with_stubs(float_module, q_module, set(module_swap_list), logger_cls)


def _prepare_with_stubs(float_module, q_module, swap, logger_cls):
    float_children = dict(float_module.named_children())
    reassign = {}
    for name, mod in q_module.named_children():
        if name not in float_children:
            continue
        float_mod = float_children[name]
        if type(float_mod) not in swap:
            _prepare_with_stubs(float_mod, mod, swap, logger_cls)
        elif not _is_identical_module_type(mod, float_mod):
            reassign[name] = Shadow(mod, float_mod, logger_cls)
    for key, value in reassign.items():
        q_module._modules[key] = value


def _check_swap_list(module_swap_list, name="module_swap_list"):
    try:
        types = list(module_swap_list)
    except TypeError:
        types = None
    if types is None or not all(isinstance(t, type) for t in types):
        raise TypeError(f"`{name}` must be a set or list of module classes "
                        f"(e.g. {{nn.Conv2d, nn.Linear}}), got {module_swap_list!r}")


def _check_logger_cls(logger_cls, base):
    # checked before any logger is attached: a bad class would otherwise fail inside
    # the first module's hook, and the message would blame that module
    if not (isinstance(logger_cls, type) and issubclass(logger_cls, Logger)):
        raise TypeError(f"`logger_cls` must be a subclass of qlearn's numeric-suite Logger "
                        f"(such as {base.__name__}), got {logger_cls!r}")


# --- checks and running ---------------------------------------------------------------------
def _quantized_module_types():
    """The module classes a converted model holds: qlearn.nn.quantized's (but the float
    ``FloatFunctional``), its dynamic and fused forms."""
    from ..nn import quantized as nnq
    from ..nn.intrinsic import quantized as nniq
    from ..nn.quantized import dynamic as nnqd
    types = [getattr(pkg, n) for pkg in (nnq, nnqd, nniq) for n in pkg.__all__]
    return tuple(t for t in types if isinstance(t, type) and issubclass(t, Module)
                 and t is not nnq.FloatFunctional)


def _observer_types():
    from .fake_quantize import FakeQuantizeBase
    from .observer import ObserverBase
    return (ObserverBase, FakeQuantizeBase)


def _check_pair(float_model, q_model, who):
    for name, m in (("float_model", float_model), ("q_model", q_model)):
        if not isinstance(m, Module):
            raise TypeError(f"{who}: `{name}` must be a qlearn nn.Module, got "
                            f"{type(m).__name__}")
    quantized = _quantized_module_types()
    float_q = [n for n, m in float_model.named_modules() if isinstance(m, quantized)]
    if float_q:
        raise ValueError(f"{who}: `float_model` holds quantized modules ({float_q[0]!r}: "
                         f"{type(float_model.get_submodule(float_q[0])).__name__}); pass "
                         f"the float model first and the quantized model second")
    if not any(isinstance(m, quantized) for m in q_model.modules()):
        observed = [n for n, m in q_model.named_modules()
                    if isinstance(m, _observer_types())]
        state = (f"it is prepared (observer at {observed[0]!r}) but not converted"
                 if observed else "it has no quantized module")
        raise ValueError(f"{who}: `q_model` is not a quantized model: {state}; run "
                         f"qlearn.quantization.convert on it first")


def _run(model, data, arg_name, who):
    """``model(*data)`` without gradients; an error names the innermost module that
    failed."""
    stack, handles = [], []
    for name, mod in model.named_modules():
        def pre(m, args, _name=name):
            stack.append((_name, m))

        def post(m, args, out):
            if stack:
                stack.pop()
        handles.append(mod.register_forward_pre_hook(pre))
        handles.append(mod.register_forward_hook(post))
    try:
        with autograd.no_grad():
            return model(*data)
    except Exception as exc:
        if not stack:
            raise
        name, mod = stack[-1]
        where = f"module {name!r}" if name else "the root module"
        cls = ValueError if isinstance(exc, ValueError) else \
            TypeError if isinstance(exc, TypeError) else RuntimeError
        from .quantization_mappings import _class_name
        raise cls(f"{who}: {where} ({_class_name(type(mod))}) of `{arg_name}` failed on the "
                  f"input: {exc}") from exc
    finally:
        for h in handles:
            h.remove()


def compare_model_stub(float_model, q_model, module_swap_list, *data,
                       logger_cls=ShadowLogger):
    r"""The error each quantized layer adds: run ``q_model`` with a float shadow of every
    layer whose float type is in ``module_swap_list``.

    Calls :func:`prepare_model_with_stubs` (``q_model`` is modified in place), runs
    ``q_model(*data)`` and returns :func:`get_logger_dict`.  Each shadow receives the
    quantized layer's own input, dequantized, so

    .. math::

       e_\ell = \mathrm{SQNR}\big(f_\ell(\hat x_\ell),\; \hat f_\ell(\hat x_\ell)\big)

    measures layer :math:`\ell` alone (:math:`\hat x_\ell` is its input in the
    quantized model, :math:`f_\ell` the float layer, :math:`\hat f_\ell` the quantized
    one).

    Parameters
    ----------
    float_model : Module
        The float model ``q_model`` was converted from.
    q_model : Module
        The converted model.
    module_swap_list : set of type
        Float module types to shadow.
    *data
        The inputs of one forward call.
    logger_cls : type
        :class:`ShadowLogger` or a subclass of :class:`Logger` taking ``(x, y)``.

    Returns
    -------
    dict
        ``{"conv1.stats": {"float": [ndarray or Tensor], "quantized": [QTensor]}, ...}``

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> from qlearn.quantization.numeric_suite import compare_model_stub
    >>> from qlearn.quantization.metrics import compute_sqnr
    >>> x = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    >>> float_model = tq.QuantWrapper(nn.Linear(8, 4))
    >>> float_model.qconfig = tq.default_qconfig
    >>> prepared = tq.prepare(float_model); _ = prepared(x)
    >>> q_model = tq.convert(prepared)
    >>> ob = compare_model_stub(float_model, q_model, {nn.Linear}, x)
    >>> list(ob)
    ['module.stats']
    >>> compute_sqnr(ob["module.stats"]["float"][0], ob["module.stats"]["quantized"][0]) > 30
    True
    """
    _check_pair(float_model, q_model, "compare_model_stub")
    _check_swap_list(module_swap_list)
    _check_logger_cls(logger_cls, ShadowLogger)
    swap = set(module_swap_list)
    _prepare_with_stubs(float_model, q_model, swap, logger_cls)
    if not any(isinstance(m, Shadow) for m in q_model.modules()):
        names = sorted(t.__name__ for t in swap)
        raise ValueError(f"compare_model_stub: no module of `q_model` was shadowed: no "
                         f"float module of a type in `module_swap_list` ({names}) has a "
                         f"quantized counterpart of the same name")
    _run(q_model, data, "q_model", "compare_model_stub")
    return get_logger_dict(q_model)


# --- output comparison ------------------------------------------------------------------------
def _default_allow_list():
    """PyTorch's default ``allow_list``: the module types of the static, QAT and dynamic
    mappings.  qlearn's mappings also map ``ReLU``, ``MaxPool2d`` and
    ``AdaptiveAvgPool2d`` (whose outputs keep their input's qparams; PyTorch runs its
    float ones on quantized tensors and has no entry for them); they are left out, so
    the same model gives PyTorch's keys."""
    from .quantization_mappings import (
        get_default_compare_output_module_list,
        get_default_static_quant_module_mappings,
        no_observer_set,
    )
    static = get_default_static_quant_module_mappings()
    skip = no_observer_set()
    skip |= {static[t] for t in skip if t in static}
    return get_default_compare_output_module_list() - skip


def _non_leaf_allow():
    """Modules of ``q_module`` logged even with children (PyTorch's
    ``NON_LEAF_MODULE_TO_ADD_OBSERVER_ALLOW_LIST``)."""
    from .. import nn
    from ..nn import quantized as nnq
    from ..nn.quantized import dynamic as nnqd
    return {nnqd.Linear, nnq.Linear, nnqd.LSTM, nn.LSTM}


#: The module classes whose outputs :func:`prepare_model_outputs` logs even when they
#: have children (PyTorch's set of the same name).
NON_LEAF_MODULE_TO_ADD_OBSERVER_ALLOW_LIST = _non_leaf_allow()


def _logger_hook(module, args, output):
    return module.activation_post_process(output)


class _LoggedOp:
    """A QFunctional method whose result goes through ``activation_post_process``, as
    PyTorch's QFunctional ops do (qlearn's return it directly)."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args, **kwargs):
        out = getattr(type(self.module), self.name)(self.module, *args, **kwargs)
        return self.module.activation_post_process(out)


_QFUNCTIONAL_OPS = ("add", "add_scalar", "mul", "mul_scalar", "cat", "add_relu")


def _add_loggers(module, logger_cls, allow_list, non_leaf):
    """Give modules a logger as ``activation_post_process``, run on their output by a
    forward hook, where PyTorch's ``prepare`` would attach an observer: each leaf of an
    allowed type, each fused block (``ConvReLU2d``) as one unit, each module of
    ``non_leaf``; a ``FloatFunctional`` / ``QFunctional`` runs its own; a
    ``DeQuantStub`` and a ``Dropout`` get none."""
    from ..nn import Dropout, Sequential
    from ..nn.intrinsic import _FusedModule
    from ..nn.quantized import FloatFunctional, QFunctional

    def insert(mod):
        if isinstance(mod, DeQuantStub):
            return
        mod.activation_post_process = logger_cls()
        mod.register_forward_hook(_logger_hook)

    def walk(mod):
        for name, child in list(mod.named_children()):
            if name == "activation_post_process" or isinstance(child, Logger) or \
                    type(child) is Dropout:
                continue
            if isinstance(child, (FloatFunctional, QFunctional)):
                child.activation_post_process = logger_cls()
                if isinstance(child, QFunctional):
                    for op in _QFUNCTIONAL_OPS:
                        object.__setattr__(child, op, _LoggedOp(child, op))
            elif isinstance(child, _FusedModule) or type(child) in non_leaf:
                insert(child)
            else:
                walk(child)
        # an observer or logger left from an earlier prepare is replaced, not a child
        leaf = all(name == "activation_post_process" for name in mod._modules)
        if leaf and type(mod) in allow_list and not isinstance(mod, Sequential):
            insert(mod)

    if isinstance(module, _FusedModule):
        insert(module)
    else:
        walk(module)


def prepare_model_outputs(float_module, q_module, logger_cls=OutputLogger, allow_list=None):
    """Attach a logger to every module of ``float_module`` and of ``q_module`` whose type
    is in ``allow_list`` (in place).

    Each logger becomes the module's ``activation_post_process`` child and sees its
    output through a forward hook, as an observer does after ``prepare``.

    Parameters
    ----------
    float_module, q_module : Module
        The float model and the model converted from it.
    logger_cls : type
        :class:`OutputLogger` or a subclass returning its input.
    allow_list : set of type, optional
        The module types to log; default: those of
        :func:`~qlearn.quantization.quantization_mappings.get_default_compare_output_module_list`
        but ``ReLU``, ``MaxPool2d`` and ``AdaptiveAvgPool2d`` (and their quantized
        twins), which PyTorch's list does not have.

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.nn.quantized as nnq
    >>> from qlearn.quantization.numeric_suite import prepare_model_outputs
    >>> f, q = nn.Sequential(nn.ReLU6()), nn.Sequential(nnq.ReLU6())
    >>> prepare_model_outputs(f, q)
    >>> type(f[0].activation_post_process).__name__
    'OutputLogger'
    """
    if allow_list is None:
        allow_list = _default_allow_list()
    _check_swap_list(allow_list, "allow_list")
    _check_logger_cls(logger_cls, OutputLogger)
    allow = set(allow_list)
    _add_loggers(float_module, logger_cls, allow, set())
    _add_loggers(q_module, logger_cls, allow, _non_leaf_allow())


def get_matching_activations(float_module, q_module):
    """Pair the logged outputs of ``q_module`` with those of ``float_module`` by module
    name (after :func:`prepare_model_outputs` and a forward call of each).

    Returns
    -------
    dict
        ``{"conv1.stats": {"float": [...], "quantized": [...]}, ...}``: the quantized
        model's keys that logged something and have a float counterpart.

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.nn.quantized as nnq
    >>> from qlearn.quantization.numeric_suite import (prepare_model_outputs,
    ...     get_matching_activations)
    >>> f, q = nn.Sequential(nn.ReLU6()), nn.Sequential(nnq.ReLU6())
    >>> prepare_model_outputs(f, q)
    >>> _ = f(np.array([7.0])), q(ql.quantize_per_tensor([7.0], 0.1, 0, ql.quint8))
    >>> act = get_matching_activations(f, q)
    >>> list(act), act["0.stats"]["quantized"][0].dequantize()
    (['0.stats'], array([6.], dtype=float32))
    """
    float_dict = get_logger_dict(float_module)
    quantized_dict = get_logger_dict(q_module)
    float_keys = sorted(float_dict, reverse=True)
    act_dict = {}
    for key, stats in quantized_dict.items():
        if not stats.get("tensor_val"):
            continue
        match = key if key in float_dict else _find_match(float_keys, key, "stats")
        if match is not None:
            act_dict[key] = {"float": float_dict[match]["tensor_val"],
                             "quantized": stats["tensor_val"]}
    return act_dict


def compare_model_outputs(float_model, q_model, *data, logger_cls=OutputLogger,
                          allow_list=None):
    r"""The error accumulated up to each layer: run both models on ``data`` and pair
    the outputs of layers with the same name.

    Calls :func:`prepare_model_outputs` (both models are modified in place), runs
    ``float_model(*data)`` and ``q_model(*data)`` and returns
    :func:`get_matching_activations`.  Unlike :func:`compare_model_stub`, each
    quantized layer here gets its input from the previous quantized layer, so

    .. math::

       E_\ell = \mathrm{SQNR}\big(f_\ell \circ \dots \circ f_1(x),\;
       \hat f_\ell \circ \dots \circ \hat f_1(x)\big)

    falls with depth; a sudden drop points at the layer that loses accuracy.

    Parameters
    ----------
    float_model, q_model : Module
        The float model and the model converted from it.
    *data
        The inputs of one forward call (the same for both models).
    logger_cls : type
        :class:`OutputLogger` or a subclass returning its input.
    allow_list : set of type, optional
        The module types to log; default: those of
        :func:`~qlearn.quantization.quantization_mappings.get_default_compare_output_module_list`
        but ``ReLU``, ``MaxPool2d`` and ``AdaptiveAvgPool2d`` (and their quantized
        twins), which PyTorch's list does not have.

    Returns
    -------
    dict
        ``{"conv1.stats": {"float": [Tensor], "quantized": [QTensor]}, ...}``

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> from qlearn.quantization.numeric_suite import compare_model_outputs
    >>> from qlearn.quantization.metrics import compute_sqnr
    >>> x = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    >>> float_model = tq.QuantWrapper(nn.Linear(8, 4))
    >>> float_model.qconfig = tq.default_qconfig
    >>> prepared = tq.prepare(float_model); _ = prepared(x)
    >>> q_model = tq.convert(prepared)
    >>> act = compare_model_outputs(float_model, q_model, x)
    >>> list(act)
    ['quant.stats', 'module.stats']
    >>> [round(compute_sqnr(v["float"][0], v["quantized"][0])) > 30 for v in act.values()]
    [True, True]
    """
    _check_pair(float_model, q_model, "compare_model_outputs")
    prepare_model_outputs(float_model, q_model, logger_cls, allow_list)
    _run(float_model, data, "float_model", "compare_model_outputs")
    _run(q_model, data, "q_model", "compare_model_outputs")
    return get_matching_activations(float_model, q_model)
