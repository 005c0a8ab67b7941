"""``nn.Module``: the container every layer, observer and quantized module derives from.

A Module keeps three ordered dictionaries: ``_parameters`` (:class:`Parameter`),
``_buffers`` (state that is saved but not trained: NumPy arrays, QTensors, numbers) and
``_modules`` (children).  Assigning an attribute files the value in the right one, so
``self.fc = Linear(4, 2)`` makes a child and ``self.weight = Parameter(w)`` a parameter,
as in PyTorch.  Calling the module runs the forward pre-hooks, ``forward`` and the
forward hooks; the quantization workflow attaches observers through those hooks.
"""
import itertools
import numbers
from collections import OrderedDict, namedtuple

import numpy as np

from ..parameter import Parameter

__all__ = ["Module", "RemovableHandle"]

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class RemovableHandle:
    """Returned by ``register_*_hook``; ``handle.remove()`` unregisters the hook.

    >>> import numpy as np
    >>> from qlearn import nn
    >>> m = nn.Identity()
    >>> h = m.register_forward_hook(lambda mod, args, out: out * 2)
    >>> m(np.ones(1)).item()
    2.0
    >>> h.remove(); m(np.ones(1)).item()
    1.0
    """

    _ids = itertools.count()

    def __init__(self, hooks):
        self._hooks = hooks
        self.id = next(self._ids)

    def remove(self):
        """Unregister the hook (calling it again does nothing)."""
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class Module:
    """Base class of all qlearn layers (the API of ``torch.nn.Module``).

    >>> import numpy as np
    >>> from qlearn import nn
    >>> class Scale(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w = nn.Parameter(np.ones(2, np.float32))
    ...         self.register_buffer("calls", np.zeros((), np.int64))
    ...     def forward(self, x):
    ...         self.calls += 1
    ...         return x * self.w
    >>> m = Scale()
    >>> _ = m(np.array([1.0, 2.0], np.float32))
    >>> list(m.state_dict())
    ['w', 'calls']
    """

    training = True

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        if not (self._forward_pre_hooks or self._forward_hooks):
            return self.forward(*args, **kwargs)      # the common case: no hooks to copy
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        return out

    # -- attribute registry ---------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() is called")
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            self.__dict__.pop(name, None)
            buffers.pop(name, None)
            modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            self.__dict__.pop(name, None)
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter "
                                f"{name!r} (nn.Parameter or None expected)")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module "
                                f"{name!r} (nn.Module or None expected)")
            modules[name] = None
        elif name in buffers:
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # only called when normal lookup fails: look in the three registries
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def register_parameter(self, name, param):
        """Add a parameter (or ``None``, a declared but absent one such as a bias)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"`param` must be an nn.Parameter or None, got "
                            f"{type(param).__name__}")
        self._check_name(name, self._parameters)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Add state that is not a parameter (running statistics, observer min/max, ...).

        ``persistent=False`` keeps it out of :meth:`state_dict`.
        """
        self._check_name(name, self._buffers)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        """Add a child module (``None`` reserves the name)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"`module` must be an nn.Module or None, got "
                            f"{type(module).__name__}")
        self._check_name(name, self._modules)
        self._modules[name] = module

    register_module = add_module

    def _check_name(self, name, registry):
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"a name must be a non-empty string without '.', got {name!r}")
        if name not in registry and name in self.__dict__:
            raise KeyError(f"attribute {name!r} already exists")
        for kind, other in (("parameter", self._parameters), ("buffer", self._buffers),
                            ("submodule", self._modules)):
            if other is not registry and name in other:
                raise KeyError(f"attribute {name!r} already exists as a {kind}; "
                               f"delete it first")

    # -- hooks ----------------------------------------------------------------------------
    def register_forward_pre_hook(self, hook):
        """``hook(module, args)`` runs before ``forward``; it may return new args."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def register_forward_hook(self, hook):
        """``hook(module, args, output)`` runs after ``forward``; it may return a new output."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    # -- traversal ------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(name, module) for this module and every descendant, depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is None:
                continue
            sub = f"{prefix}.{name}" if prefix else name
            yield from child.named_modules(memo, sub, remove_duplicate)

    def modules(self):
        """This module and every descendant, depth first, each once."""
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        """(name, module) for each immediate child, each module once."""
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self):
        """The immediate child modules, each once."""
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry, prefix, recurse):
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, value in getattr(mod, registry).items():
                if value is None:
                    continue
                if not isinstance(value, (numbers.Number, str)):  # numbers have no identity
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(self, prefix="", recurse=True):
        """(name, parameter) pairs; a parameter shared by two modules appears once."""
        yield from self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        """The parameters of this module and (with ``recurse``) its descendants, each once."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        """(name, buffer) pairs of this module and (with ``recurse``) its descendants; a
        shared buffer appears once."""
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        """The buffers (arrays, QTensors, numbers) of this module and (with ``recurse``) its
        descendants."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target):
        """The descendant at dotted path ``target`` ('' is self)."""
        mod = self
        for part in target.split(".") if target else []:
            if part not in mod._modules:
                raise AttributeError(f"{type(mod).__name__} has no submodule {part!r} "
                                     f"(looking up {target!r})")
            mod = mod._modules[part]
        return mod

    # -- modes and utilities --------------------------------------------------------------
    def train(self, mode=True):
        """Set training mode here and in every descendant (dropout, batch norm, QAT)."""
        if not isinstance(mode, bool):
            raise TypeError(f"`mode` must be a bool, got {mode!r}")
        object.__setattr__(self, "training", mode)
        for child in self.children():  # recurse through train() so overrides run
            child.train(mode)
        return self

    def eval(self):
        """Same as ``train(False)``."""
        return self.train(False)

    def to(self, *args, **kwargs):
        """PyTorch's ``model.to(device / dtype)``: qlearn has one device (the CPU) and
        float32 layers, so this checks the request and returns ``self``."""
        from ._utils import check_factory_kwargs
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        for a in args:
            if isinstance(a, str) and not a.startswith(("float", "torch.float")) \
                    or type(a).__name__ == "device":
                device = a
            else:
                dtype = a
        check_factory_kwargs(device, dtype)
        return self

    def cpu(self):
        """Returns ``self`` (qlearn runs on the CPU)."""
        return self

    def float(self):
        """Returns ``self`` (qlearn's float layers are float32)."""
        return self

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` on every parameter (``False`` freezes them); returns
        ``self``."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's gradient."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.data[...] = 0

    def apply(self, fn):
        """Call ``fn(module)`` on every descendant (children first) and on self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # -- state ----------------------------------------------------------------------------
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        """Write this module's own state (not its children's); subclasses may extend."""
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.data
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                destination[prefix + name] = b

    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """Every parameter's and persistent buffer's value, keyed by dotted name.

        Parameter values are their ``.data`` arrays (shared, not copied, as in PyTorch);
        save one with :func:`qlearn.save`.
        """
        if destination is None:
            destination = OrderedDict()
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, child in self._modules.items():
            if child is not None:
                child.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def _load_from_state_dict(self, state_dict, prefix, missing, unexpected, errors):
        """Read this module's own entries from ``state_dict``; subclasses may extend."""
        for name, p in self._parameters.items():
            key = prefix + name
            if p is None:
                continue
            if key not in state_dict:
                missing.append(key)
                continue
            value = np.asarray(state_dict[key], dtype=np.float32)
            if value.shape != p.data.shape:
                errors.append(f"size mismatch for {key}: copying a param with shape "
                              f"{value.shape}, the shape in the current model is "
                              f"{p.data.shape}")
                continue
            p.data[...] = value
        for name, b in self._buffers.items():
            key = prefix + name
            if name in self._non_persistent:
                continue
            if key not in state_dict:
                if b is not None:
                    missing.append(key)
                continue
            value = state_dict[key]
            if isinstance(b, np.ndarray) and not isinstance(value, np.ndarray) and (
                    isinstance(value, numbers.Number) or hasattr(value, "requires_grad")):
                value = np.asarray(value, dtype=b.dtype)   # a number or a qlearn.Tensor
            if isinstance(b, np.ndarray) and isinstance(value, np.ndarray) \
                    and b.shape == value.shape:
                b[...] = value
            else:
                self._buffers[name] = value.copy() if isinstance(value, np.ndarray) else value

    def load_state_dict(self, state_dict, strict=True):
        """Copy values from ``state_dict`` into this module's parameters and buffers.

        Returns the named tuple ``(missing_keys, unexpected_keys)``; with ``strict`` either
        one, or a shape mismatch, raises ``RuntimeError`` listing them all.
        """
        missing, errors = [], []
        known = set()
        # every path to a shared submodule has its own keys in state_dict(), as in PyTorch
        for prefix, mod in self.named_modules(remove_duplicate=False):
            pre = prefix + "." if prefix else ""
            mod._load_from_state_dict(state_dict, pre, missing, [], errors)
            known.update(pre + k for k in mod._parameters)
            known.update(pre + k for k in mod._buffers)
            known.update(mod._extra_state_keys(pre))
        unexpected = [k for k in state_dict if k not in known]
        if errors or (strict and (missing or unexpected)):
            lines = list(errors)
            if strict and missing:
                lines.append("missing keys: " + ", ".join(missing))
            if strict and unexpected:
                lines.append("unexpected keys: " + ", ".join(unexpected))
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:"
                               "\n\t" + "\n\t".join(lines))
        return IncompatibleKeys(missing, unexpected)

    def _extra_state_keys(self, prefix):
        """Keys besides parameters and buffers that this module reads (subclasses)."""
        return ()

    # -- printing -------------------------------------------------------------------------
    def extra_repr(self):
        """The text inside ``Name(...)``; subclasses describe their arguments here."""
        return ""

    def __repr__(self):
        lines = []
        for name, child in self._modules.items():
            text = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {text}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        extra = self.extra_repr()
        body = ([extra] if extra else []) + lines
        return f"{type(self).__name__}(\n  " + "\n  ".join(body) + "\n)"
