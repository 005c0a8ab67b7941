r"""Model-level quantizers: rewrite a float qlearn model for quantization-aware training,
as Distiller's ``DorefaQuantizer``, ``PACTQuantizer`` and ``WRPNQuantizer`` do.

``prepare_model()`` walks the model once and

* for every layer with a weight matrix or kernel (``nn.Linear``, ``nn.Conv2d``: a
  ``weight`` of 2 or more dimensions; batch-norm parameters stay float) whose bit width
  is set, moves the float parameter to ``float_weight`` (``float_bias``) and installs a
  forward pre-hook that sets ``module.weight = quantize(float_weight, bits)`` before
  each call.  The optimizer keeps updating the float copy (the same Parameter object);
  the gradient reaches it through the quantizer's straight-through estimator.  (Distiller
  does the same with ``train_with_fp_copy=True`` and ``quantize_params()`` at each
  minibatch.)
* replaces every ``nn.ReLU`` whose bit width is set by the method's quantized activation
  (DoReFa, WRPN: :class:`ClippedLinearQuantization` on :math:`[0, 1]`; PACT:
  :class:`~qlearn.quantizers.PACTReLU`, whose clip value is a new parameter, added to
  the optimizer when one was given).

Bit widths come from ``bits_activations``, ``bits_weights`` and ``bits_bias`` (``None``:
leave float), then per-layer ``overrides``: an ordered mapping from a regular expression
(matched against the whole module name, as in Distiller's YAML files) to a dict with any
of those three keys.  The first matching pattern wins.

**First and last layers.**  By default (``keep_first_last=8``) the weights of the first
and the last weighted layer are quantized with 8 bits whatever ``bits_weights`` says,
as the DoReFa and PACT papers (and Distiller's example schedules) keep them at high
precision: the first layer sees the raw input and has few weights (3 or 1 input
channels), the last produces the logits directly, so both are cheap to keep precise
and costly to quantize coarsely.  Pass ``keep_first_last=None`` to quantize them like
the others; an explicit override wins over this default.

Activations are found as ``nn.ReLU`` modules: a model that calls ``F.relu`` directly
keeps float activations (Distiller behaves the same).
"""
import re
from collections import OrderedDict

import numpy as np

from ..autograd import Tensor
from ..nn import Module, Parameter, ReLU
from ._ste import ClipRoundSTE, as_input, check_num_bits
from .dorefa import dorefa_quantize_weight
from .pact import PACTReLU
from .wrpn import wrpn_quantize_weight

__all__ = ["Quantizer", "DorefaQuantizer", "PACTQuantizer", "WRPNQuantizer",
           "ClippedLinearQuantization"]

_KEYS = ("bits_activations", "bits_weights", "bits_bias")
FP_PREFIX = "float_"


class ClippedLinearQuantization(Module):
    r"""Clip to :math:`[0, c]` and quantize with :math:`k` bits (Distiller's module of
    the same name; :math:`c = 1` gives DoReFa's and WRPN's activations):
    :math:`a_q = \operatorname{round}(\operatorname{clamp}(a, 0, c) / S)\,S`,
    :math:`S = c / (2^k - 1)`, straight-through gradient inside :math:`[0, c]`.

    >>> from qlearn.quantizers.quantizer import ClippedLinearQuantization
    >>> ClippedLinearQuantization(2, 1.0)(np.float32([-1, 0.4, 2])).numpy()
    array([0.        , 0.33333334, 1.        ], dtype=float32)
    """

    def __init__(self, num_bits, clip_val=1.0):
        super().__init__()
        self.num_bits = check_num_bits(num_bits)
        clip_val = float(clip_val)
        if not (np.isfinite(clip_val) and clip_val > 0):
            raise ValueError(f"`clip_val` must be a positive finite number, got {clip_val}")
        self.clip_val = clip_val

    def forward(self, x):
        return ClipRoundSTE.apply(as_input(x), 0.0, self.clip_val, self.clip_val,
                                  2.0 ** self.num_bits - 1)

    def extra_repr(self):
        return f"num_bits={self.num_bits}, clip_val={self.clip_val}"


def _check_bits_or_none(value, name):
    return None if value is None else check_num_bits(value, name)


class Quantizer:
    """Base of the model-level quantizers (Distiller's ``Quantizer``).

    Subclasses set ``param_quantization_fn(tensor, num_bits)`` and
    ``act_replacement(num_bits)`` (a module that replaces a ReLU).

    Parameters
    ----------
    model : qlearn.nn.Module
        Rewritten in place by :meth:`prepare_model`.
    optimizer : qlearn.optim.Optimizer, optional
        New parameters (PACT's clip values) are added to it as a parameter group.
    bits_activations, bits_weights, bits_bias : int or None
        Default bit widths; ``None`` leaves that kind of tensor in float.
    overrides : mapping of str to dict, optional
        ``{regex: {"bits_weights": 8, ...}}`` per module name (full match, first wins).
    keep_first_last : int or None
        Weight (and bias, if quantized) bits of the first and last weighted layers.
    """

    param_quantization_fn = None

    def __init__(self, model, optimizer=None, bits_activations=None, bits_weights=None,
                 bits_bias=None, overrides=None, keep_first_last=8):
        if not isinstance(model, Module):
            raise TypeError(f"`model` must be a qlearn.nn.Module, got {type(model).__name__}")
        self.model = model
        self.optimizer = optimizer
        self.default_qbits = {
            "bits_activations": _check_bits_or_none(bits_activations, "bits_activations"),
            "bits_weights": _check_bits_or_none(bits_weights, "bits_weights"),
            "bits_bias": _check_bits_or_none(bits_bias, "bits_bias")}
        self.overrides = OrderedDict()
        for pattern, bits in (overrides or {}).items():
            if not isinstance(bits, dict) or set(bits) - set(_KEYS):
                raise ValueError(f"override {pattern!r} must be a dict with keys among "
                                 f"{', '.join(_KEYS)}, got {bits!r}")
            try:
                regex = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"override pattern {pattern!r} is not a valid regular "
                                 f"expression: {exc}") from None
            self.overrides[regex] = {k: _check_bits_or_none(v, k) for k, v in bits.items()}
        self.keep_first_last = _check_bits_or_none(keep_first_last, "keep_first_last")
        self.module_qbits = OrderedDict()
        self.prepared = False

    # -- what each module gets -------------------------------------------------------------
    def _bits_for(self, name, first_last):
        bits = dict(self.default_qbits)
        if first_last and self.keep_first_last is not None:
            bits["bits_weights"] = self.keep_first_last
            if bits["bits_bias"] is not None:
                bits["bits_bias"] = self.keep_first_last
        for regex, override in self.overrides.items():
            if regex.fullmatch(name):
                bits.update(override)
                break
        return bits

    def act_replacement(self, num_bits):
        """The module that replaces an ``nn.ReLU`` quantized to ``num_bits`` bits;
        subclasses implement it (here it raises ``NotImplementedError``)."""
        raise NotImplementedError

    # -- the rewrite -----------------------------------------------------------------------
    def prepare_model(self):
        """Rewrite the model (once) and return it; see the module docstring."""
        if self.prepared:
            raise RuntimeError("prepare_model() was already called on this quantizer")
        named = list(self.model.named_modules())
        # layers that multiply by a weight matrix or kernel (Linear, Conv2d): a 2-d or
        # larger ``weight``.  Normalization layers (1-d affine weights) stay float.
        weighted = [n for n, m in named
                    if n and isinstance(m._parameters.get("weight"), Parameter)
                    and m._parameters["weight"].ndim >= 2]
        first_last = {weighted[0], weighted[-1]} if weighted else set()
        new_params = []
        for name, mod in named:
            if not name:
                continue
            bits = self._bits_for(name, name in first_last)
            if isinstance(mod, ReLU):
                self.module_qbits[name] = {"bits_activations": bits["bits_activations"]}
                if bits["bits_activations"] is not None:
                    new = self.act_replacement(bits["bits_activations"])
                    self._replace(name, new)
                    new_params.extend(new.parameters())
            elif name in weighted:
                self.module_qbits[name] = {"bits_weights": bits["bits_weights"],
                                           "bits_bias": bits["bits_bias"]}
                self._quantize_params_of(mod, bits)
        if new_params and self.optimizer is not None:
            self.optimizer.add_param_group(self._new_param_group(new_params))
        self.prepared = True
        return self.model

    def _new_param_group(self, params):
        """The optimizer parameter group for parameters the rewrite created."""
        return {"params": params}

    def _replace(self, name, new):
        parent_name, _, child = name.rpartition(".")
        parent = self.model.get_submodule(parent_name)
        setattr(parent, child, new)

    def _quantize_params_of(self, mod, bits):
        todo = []
        for pname, key in (("weight", "bits_weights"), ("bias", "bits_bias")):
            p = mod._parameters.get(pname)
            if bits[key] is None or not isinstance(p, Parameter):
                continue
            # keep the float Parameter (same object: optimizers holding it still work)
            del mod._parameters[pname]
            mod.register_parameter(FP_PREFIX + pname, p)
            object.__setattr__(mod, pname, p)      # until the first forward
            todo.append((pname, bits[key]))
        if not todo:
            return
        fn = type(self).param_quantization_fn

        def quantize_params_hook(module, args):
            for pname, nbits in todo:
                object.__setattr__(module, pname,
                                   fn(getattr(module, FP_PREFIX + pname), nbits))

        mod.register_forward_pre_hook(quantize_params_hook)
        mod.quantized_params = tuple(todo)

    def quantize_params(self):
        """Quantize every float copy now (as the hooks do before each forward); returns
        ``{module name: {param name: quantized ndarray}}``, e.g. to inspect or export."""
        from ..autograd import no_grad
        out = OrderedDict()
        fn = type(self).param_quantization_fn
        with no_grad():
            for name, mod in self.model.named_modules():
                for pname, nbits in getattr(mod, "quantized_params", ()):
                    q = fn(getattr(mod, FP_PREFIX + pname), nbits)
                    out.setdefault(name, {})[pname] = np.asarray(
                        q.data if isinstance(q, Tensor) else q)
        return out


class DorefaQuantizer(Quantizer):
    """DoReFa: weights by :func:`~qlearn.quantizers.dorefa_quantize_weight`, ReLUs
    replaced by :class:`ClippedLinearQuantization` on :math:`[0, 1]`.

    >>> import qlearn.nn as nn
    >>> from qlearn.quantizers import DorefaQuantizer
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
    ...                       nn.Linear(8, 2))
    >>> q = DorefaQuantizer(model, bits_activations=4, bits_weights=4)
    >>> _ = q.prepare_model()
    >>> q.module_qbits["2"]                 # the middle layer
    {'bits_weights': 4, 'bits_bias': None}
    >>> q.module_qbits["4"]                 # the last layer keeps 8 bits
    {'bits_weights': 8, 'bits_bias': None}
    >>> type(model[1]).__name__
    'ClippedLinearQuantization'
    """

    param_quantization_fn = staticmethod(dorefa_quantize_weight)

    def act_replacement(self, num_bits):
        r"""A :class:`ClippedLinearQuantization` with ``num_bits`` :math:`= k` bits on
        :math:`[0, 1]`: :math:`a_q = \operatorname{round}\big((2^k - 1)
        \operatorname{clamp}(a, 0, 1)\big) / (2^k - 1)`, to replace an ``nn.ReLU``."""
        return ClippedLinearQuantization(num_bits, 1.0)


class PACTQuantizer(Quantizer):
    """PACT: ReLUs replaced by :class:`~qlearn.quantizers.PACTReLU` (learned clip value,
    initialised to ``act_clip_init_val``); weights by DoReFa, as in Distiller.

    Parameters
    ----------
    act_clip_init_val : float
        Initial :math:`\\alpha` (Distiller's default 8.0).
    act_clip_decay : float or None
        L2 weight decay on the clip values in their optimizer parameter group (PACT
        regularises :math:`\\alpha` to keep it from growing; Distiller's argument of the
        same name).  ``None`` keeps the optimizer's default.
    **kwargs
        As :class:`Quantizer`.
    """

    param_quantization_fn = staticmethod(dorefa_quantize_weight)

    def __init__(self, model, optimizer=None, bits_activations=None, bits_weights=None,
                 bits_bias=None, overrides=None, keep_first_last=8, act_clip_init_val=8.0,
                 act_clip_decay=None):
        super().__init__(model, optimizer, bits_activations, bits_weights, bits_bias,
                         overrides, keep_first_last)
        self.act_clip_init_val = act_clip_init_val
        self.act_clip_decay = act_clip_decay

    def _new_param_group(self, params):
        group = {"params": params}
        if self.act_clip_decay is not None:
            group["weight_decay"] = float(self.act_clip_decay)
        return group

    def act_replacement(self, num_bits):
        r"""A :class:`~qlearn.quantizers.PACTReLU` with ``num_bits`` bits whose learned clip
        value :math:`\alpha` starts at ``act_clip_init_val``, to replace an ``nn.ReLU``."""
        return PACTReLU(num_bits, self.act_clip_init_val)


class WRPNQuantizer(Quantizer):
    """WRPN: weights by :func:`~qlearn.quantizers.wrpn_quantize_weight` (clip to
    :math:`[-1, 1]`, :math:`k-1` magnitude bits), ReLUs replaced by
    :class:`ClippedLinearQuantization` on :math:`[0, 1]`.  Widen the layers yourself
    (:func:`~qlearn.quantizers.wrpn_width`) when building the model.
    """

    param_quantization_fn = staticmethod(wrpn_quantize_weight)

    def __init__(self, model, optimizer=None, bits_activations=None, bits_weights=None,
                 bits_bias=None, overrides=None, keep_first_last=8):
        if bits_weights is not None:
            check_num_bits(bits_weights, "bits_weights", minimum=2)
        super().__init__(model, optimizer, bits_activations, bits_weights, bits_bias,
                         overrides, keep_first_last)

    def act_replacement(self, num_bits):
        r"""A :class:`ClippedLinearQuantization` with ``num_bits`` :math:`= k` bits on
        :math:`[0, 1]`: :math:`a_q = \operatorname{round}\big((2^k - 1)
        \operatorname{clamp}(a, 0, 1)\big) / (2^k - 1)`, to replace an ``nn.ReLU``."""
        return ClippedLinearQuantization(num_bits, 1.0)
