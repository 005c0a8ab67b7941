r"""``fuse_modules``: merge runs of layers (conv-bn-relu, linear-relu, ...) before quantizing.

Why fuse.  An int8 model pays for every requantization, every pass over memory and
every observer: a conv followed by a batch norm and a ReLU quantized layer by layer
would round three times and store two extra int8 tensors.  Fused, the batch norm is
folded into the conv's weights (:math:`W' = W\gamma/\sqrt{\sigma^2+\epsilon}`,
:math:`b' = (b-\mu)\gamma/\sqrt{\sigma^2+\epsilon}+\beta`) and the ReLU into its
requantization (clamp at the zero point): one kernel, one rounding, one observer.  It
is also more accurate, since the intermediate results are never rounded.

``fuse_modules(model, [["conv", "bn", "relu"], ...])`` replaces the first module of
each list by the fused module and the others by ``nn.Identity``, as PyTorch does; the
patterns it knows are those of
:func:`~qlearn.quantization.fuser_method_mappings.get_default_fusion_patterns`.
"""
import copy

from ..nn.modules.linear import Identity
from .fuser_method_mappings import get_fuser_method

__all__ = ["fuse_known_modules", "fuse_modules", "fuse_modules_qat"]


def _get_module(model, key):
    mod, path = model, []
    for part in key.split("."):
        children = getattr(mod, "_modules", {})
        if part not in children or children[part] is None:
            where = f"`{'.'.join(path)}` ({type(mod).__name__})" if path else "it"
            raise ValueError(f"`modules_to_fuse`: `{key}` is not a submodule of "
                             f"{type(model).__name__} ({where} has the children "
                             f"{', '.join(children) if children else 'none'})")
        mod = children[part]
        path.append(part)
    return mod


def _set_module(model, key, module):
    *parents, last = key.split(".")
    mod = model
    for part in parents:
        mod = mod._modules[part]
    setattr(mod, last, module)


def fuse_known_modules(mod_list, is_qat, additional_fuser_method_mapping=None):
    """The default ``fuser_func``: the fused module for the pattern of ``mod_list``,
    followed by ``nn.Identity`` for the other positions.

    The forward pre-hooks of the first module and the forward hooks of the last one move
    to the fused module (the hooks of the modules in between are dropped), as in
    PyTorch; unlike PyTorch, a folded layer inside the fused module does not keep a
    copy of the pre-hooks (they run once, not twice).

    >>> from qlearn import nn
    >>> from qlearn.quantization import fuse_known_modules
    >>> [type(m).__name__ for m in fuse_known_modules([nn.Linear(2, 2), nn.ReLU()], False)]
    ['LinearReLU', 'Identity']
    """
    types = tuple(type(m) for m in mod_list)
    fuser_method = get_fuser_method(types, additional_fuser_method_mapping)
    # take the hooks off before fusing: a folded layer is a deep copy of the first module,
    # which would otherwise run its pre-hooks a second time (PyTorch's does)
    pre_hooks = list(mod_list[0]._forward_pre_hooks.values())
    post_hooks = list(mod_list[-1]._forward_hooks.values())
    mod_list[0]._forward_pre_hooks.clear()
    mod_list[-1]._forward_hooks.clear()
    try:
        fused = fuser_method(is_qat, *mod_list)
    except Exception:
        for hook in pre_hooks:           # leave the modules as they were
            mod_list[0].register_forward_pre_hook(hook)
        for hook in post_hooks:
            mod_list[-1].register_forward_hook(hook)
        raise
    # a new container starts in training mode; give it its layers' mode (PyTorch leaves it)
    fused.train(mod_list[0].training)
    for hook in pre_hooks:
        fused.register_forward_pre_hook(hook)
    for hook in post_hooks:
        fused.register_forward_hook(hook)
    new_mods = [fused]
    for _ in mod_list[1:]:
        identity = Identity()
        identity.training = mod_list[0].training
        new_mods.append(identity)
    return new_mods


def _check_names(names):
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or not names \
            or not all(isinstance(n, str) for n in names):
        raise TypeError(f"`modules_to_fuse` must be a list of module names or a list of "
                        f"such lists, got {names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"`modules_to_fuse`: {list(names)} names a module twice")


def _fuse_modules(model, modules_to_fuse, is_qat, inplace, fuser_func,
                  fuse_custom_config_dict):
    if not isinstance(modules_to_fuse, (list, tuple)) or not modules_to_fuse:
        raise TypeError(f"`modules_to_fuse` must be a non-empty list of module names or of "
                        f"lists of names, got {modules_to_fuse!r}")
    groups = [modules_to_fuse] if all(isinstance(n, str) for n in modules_to_fuse) \
        else list(modules_to_fuse)
    for names in groups:
        _check_names(names)
    config = fuse_custom_config_dict or {}
    additional = config.get("additional_fuser_method_mapping", {})
    # resolve every name before changing anything, so a typo leaves the model whole
    for names in groups:
        for name in names:
            _get_module(model, name)
    if not inplace:
        model = copy.deepcopy(model)
    for names in groups:
        mods = [_get_module(model, name) for name in names]
        try:
            new_mods = fuser_func(mods, is_qat, additional)
        except ValueError as e:
            named = ", ".join(f"`{n}` ({type(m).__name__})" for n, m in zip(names, mods))
            raise ValueError(f"fusing {named}: {e}") from None
        for name, new in zip(names, new_mods):
            _set_module(model, name, new)
    return model


def fuse_modules(model, modules_to_fuse, inplace=False, fuser_func=fuse_known_modules,
                 fuse_custom_config_dict=None):
    r"""Fuse each listed run of modules into one, for post-training quantization.

    Supported runs (see
    :func:`~qlearn.quantization.fuser_method_mappings.get_default_fusion_patterns`):
    conv-bn, conv-bn-relu, conv-relu, linear-bn, linear-relu, bn-relu.  A batch norm is
    folded into the layer before it with its running statistics,
    :math:`W' = W\gamma/\sqrt{\sigma^2+\epsilon}`,
    :math:`b' = (b-\mu)\gamma/\sqrt{\sigma^2+\epsilon}+\beta`
    (:func:`~qlearn.nn.utils.fusion.fuse_conv_bn_eval`), so the model must be in eval
    mode.  The first module of each run is replaced by the fused module, the others by
    ``nn.Identity``.

    Parameters
    ----------
    model : nn.Module
    modules_to_fuse : list of str, or list of lists of str
        Dotted names of submodules (``"features.0"``), one list per run.
    inplace : bool
        Change ``model`` itself; by default a deep copy is fused and ``model`` is left
        untouched.
    fuser_func : callable
        ``fuser_func(modules, is_qat, additional_fuser_method_mapping)`` returning the
        replacement modules (default :func:`fuse_known_modules`).
    fuse_custom_config_dict : dict, optional
        ``{"additional_fuser_method_mapping": {(Type, Type): fuser_method}}`` adds or
        overrides patterns.

    Returns
    -------
    nn.Module
        The fused model (``model`` itself when ``inplace``).

    Raises
    ------
    ValueError
        A name that is not a submodule, a run that is not a supported pattern (the
        message lists them), or a batch norm in training mode.

    Examples
    --------
    >>> from qlearn import nn
    >>> from qlearn.quantization import fuse_modules
    >>> m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    >>> fused = fuse_modules(m, ["0", "1", "2"])
    >>> [type(c).__name__ for c in fused], type(m[0]).__name__
    (['ConvReLU2d', 'Identity', 'Identity'], 'Conv2d')
    >>> x = np.random.default_rng(0).normal(size=(2, 1, 5, 5))
    >>> bool(np.allclose(fused(x).numpy(), m(x).numpy(), atol=1e-6))
    True
    """
    return _fuse_modules(model, modules_to_fuse, False, inplace, fuser_func,
                         fuse_custom_config_dict)


def fuse_modules_qat(model, modules_to_fuse, inplace=False, fuser_func=fuse_known_modules,
                     fuse_custom_config_dict=None):
    """Fuse for quantization-aware training: as :func:`fuse_modules`, but a batch norm is
    kept (conv-bn -> :class:`qlearn.nn.intrinsic.ConvBn2d`, ...) so that ``prepare_qat``
    can simulate its folding while it still trains; the model is in training mode.

    >>> from qlearn import nn
    >>> from qlearn.quantization import fuse_modules_qat
    >>> m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    >>> [type(c).__name__ for c in fuse_modules_qat(m, ["0", "1", "2"])]
    ['ConvBnReLU2d', 'Identity', 'Identity']
    """
    return _fuse_modules(model, modules_to_fuse, True, inplace, fuser_func,
                         fuse_custom_config_dict)
