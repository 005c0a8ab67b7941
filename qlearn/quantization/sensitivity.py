r"""Which layers lose the accuracy: one-at-a-time sensitivity, mixed precision, and a
per-layer report of the observers.

"Practical Quantization in PyTorch" ends its debugging advice with a recipe: quantize
one layer at a time, measure, keep the most sensitive layers in float (Wu et al. got
close to FP32 on MobileNet v1 by skipping 2 of its 28 conv layers), and compare layers
with the SQNR.  These three functions are that recipe:

* :func:`sensitivity_analysis`: each layer quantized alone, the rest float; the SQNR of
  the model's output and the user's metric for each.
* :func:`mixed_precision`: quantize everything, then give the most sensitive layers
  back their float (or a wider) precision, greedily, until the metric is within reach
  of the float model's; returns the qconfigs and the size/metric trade-off curve.
* :func:`layer_report`: for a prepared (observed) model, each observer's range, the
  share of values it clips and a histogram: what to look at when one layer misbehaves.

How a layer is quantized alone, in eager mode: :func:`quantize_layers` puts each chosen
layer between a ``QuantStub`` and a ``DeQuantStub`` of its own (a
:class:`~qlearn.quantization.QuantWrapper`), then runs ``prepare``, the user's
calibration and ``convert``, so the layer runs on the int8 kernels while the layers
around it stay float.  With a fake-quantize qconfig (:func:`fake_quant_qconfig`, e.g.
4 bits, which no int8 kernel runs) ``prepare_qat`` is used instead and the model is
evaluated with frozen fake quantization.  With ``graph=True`` the same is done in graph
mode instead: a :class:`~qlearn.quantization.QConfigMapping` with no global qconfig and
one entry per quantized layer goes to ``prepare_fx`` / ``convert_fx`` (or
``prepare_qat_fx``), which fuse each convolution with its batch norm and ReLU, put the
quantize and dequantize steps where float and int8 code meet, and keep consecutive
quantized layers in int8 between them.

The results are plain lists of dicts (no pandas); printing one shows a table,
``to_markdown()`` gives one for a report, and ``plot()`` draws it with matplotlib,
which is imported only then.
"""
import copy
import math

import numpy as np

from .. import autograd
from ..dtypes import per_channel_symmetric, per_tensor_affine, qint8, quint8
from ..nn.intrinsic import _FusedModule
from ..nn.modules.module import Module
from ..utils.progress import progress as _progress
from . import metrics
from .fake_quantize import FakeQuantize, FakeQuantizeBase, disable_observer
from .observer import MinMaxObserver, ObserverBase, PerChannelMinMaxObserver
from .qconfig import QConfig
from .quantization_mappings import _class_name, get_default_static_quant_module_mappings
from .quantize import convert, prepare, prepare_qat
from .stubs import QuantWrapper

__all__ = ["fake_quant_qconfig", "quantizable_layers", "quantize_layers",
           "sensitivity_analysis", "SensitivityTable", "mixed_precision",
           "MixedPrecisionResult", "layer_report", "LayerReport"]


# --- building blocks ------------------------------------------------------------------------
def fake_quant_qconfig(bits=8, per_channel=True):
    r"""A QConfig that fake-quantizes activations and weights to ``bits`` bits.

    Activations: affine quint8 on :math:`[0, 2^b - 1]`, weights: symmetric qint8 on
    :math:`[-2^{b-1}, 2^{b-1} - 1]` (per output channel by default), both from the
    min/max of the calibration data (``MinMaxObserver``), as a post-training
    calibration does.

    Parameters
    ----------
    bits : int
        2 to 8.
    per_channel : bool
        Per-channel weight scales (``per_channel_symmetric``); else one per tensor.

    Examples
    --------
    >>> from qlearn.quantization.sensitivity import fake_quant_qconfig
    >>> qc = fake_quant_qconfig(4)
    >>> a, w = qc.activation(), qc.weight()
    >>> (a.quant_min, a.quant_max), (w.quant_min, w.quant_max)
    ((0, 15), (-8, 7))
    """
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or \
            not 2 <= bits <= 8:
        raise ValueError(f"`bits` must be an integer in [2, 8], got {bits!r}")
    bits = int(bits)
    act = FakeQuantize.with_args(observer=MinMaxObserver, quant_min=0,
                                 quant_max=2 ** bits - 1, dtype=quint8,
                                 qscheme=per_tensor_affine)
    if per_channel:
        weight = FakeQuantize.with_args(observer=PerChannelMinMaxObserver,
                                        quant_min=-2 ** (bits - 1),
                                        quant_max=2 ** (bits - 1) - 1, dtype=qint8,
                                        qscheme=per_channel_symmetric, ch_axis=0)
    else:
        from ..dtypes import per_tensor_symmetric
        weight = FakeQuantize.with_args(observer=MinMaxObserver,
                                        quant_min=-2 ** (bits - 1),
                                        quant_max=2 ** (bits - 1) - 1, dtype=qint8,
                                        qscheme=per_tensor_symmetric)
    return QConfig(activation=act, weight=weight)


def _check_model(model, who):
    if not isinstance(model, Module):
        raise TypeError(f"{who}: `model` must be a qlearn nn.Module, got "
                        f"{type(model).__name__}")


def quantizable_layers(model):
    """The names of the layers the sensitivity tools quantize one at a time: every
    module with a weight matrix or kernel (``Linear``, ``Conv2d``) or fused block
    (``ConvReLU2d``, ...) that the static mapping can convert, outermost first.

    Examples
    --------
    >>> from qlearn import nn
    >>> from qlearn.quantization.sensitivity import quantizable_layers
    >>> quantizable_layers(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(),
    ...                                  nn.Linear(8, 2)))
    ['0', '3']
    """
    _check_model(model, "quantizable_layers")
    static = get_default_static_quant_module_mappings()
    names = []
    for name, mod in model.named_modules():
        if not name or type(mod) not in static or \
                any(name.startswith(p + ".") for p in names):
            continue
        weight = getattr(mod, "weight", None)
        if isinstance(mod, _FusedModule) or getattr(getattr(weight, "data", None),
                                                    "ndim", 0) >= 2:
            names.append(name)
    return names


def _is_fake_quant(qconfig):
    if qconfig is None:
        return False
    return isinstance(qconfig.activation(), FakeQuantizeBase)


def _strip_qconfig(model):
    for m in model.modules():
        m.__dict__.pop("qconfig", None)


class _FirstInput:
    """Forward pre-hook that keeps the arguments of the first call."""

    def __init__(self):
        self.args = None

    def __call__(self, module, args):
        if self.args is None:
            self.args = args


def quantize_layers(model, qconfig_dict, calibrate_fn, simulate=None, graph=False):
    """A copy of ``model`` in which each layer named in ``qconfig_dict`` is quantized
    with its qconfig, the rest staying float.

    Each such layer is wrapped in a :class:`~qlearn.quantization.QuantWrapper` (its own
    QuantStub and DeQuantStub), then ``prepare`` -> ``calibrate_fn(model)`` ->
    ``convert`` make it an int8 module.  With ``simulate`` (the default when a qconfig
    is made of FakeQuantize factories) ``prepare_qat`` is used instead: after
    ``calibrate_fn`` the observers are frozen and the model computes in float with
    fake-quantized weights and activations.

    Parameters
    ----------
    model : Module
        The float model (not changed).
    qconfig_dict : dict
        ``{layer name: QConfig or None}``; ``None`` keeps the layer float.
    calibrate_fn : callable
        ``calibrate_fn(model)`` runs calibration data through the model.
    simulate : bool, optional
        Fake quantization instead of int8 modules; default: whether any qconfig's
        activation is a FakeQuantize.
    graph : bool
        Quantize in graph mode (``prepare_fx`` / ``convert_fx`` with a
        ``QConfigMapping`` of one ``module_name`` entry per layer) instead of wrapping
        each layer.  The model must be traceable.

    Returns
    -------
    Module (in eval mode; a GraphModule with ``graph=True``)

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> from qlearn.quantization.sensitivity import quantize_layers
    >>> m = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    >>> x = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    >>> q = quantize_layers(m, {"2": tq.default_qconfig}, lambda mod: mod(x))
    >>> type(q[0]).__name__, [type(c).__name__ for c in q[2].children()]
    ('Linear', ['Quantize', 'DeQuantize', 'Linear'])
    """
    _check_model(model, "quantize_layers")
    if not isinstance(qconfig_dict, dict):
        raise TypeError(f"`qconfig_dict` must be a dict {{layer name: QConfig or None}}, "
                        f"got {type(qconfig_dict).__name__}")
    if not callable(calibrate_fn):
        raise TypeError(f"`calibrate_fn` must be callable as calibrate_fn(model), got "
                        f"{type(calibrate_fn).__name__}")
    for name, qc in qconfig_dict.items():
        if qc is not None and not isinstance(qc, QConfig):
            raise TypeError(f"quantize_layers: `qconfig_dict[{name!r}]` must be a QConfig "
                            f"or None, got {type(qc).__name__} {qc!r}")
    active = {k: v for k, v in qconfig_dict.items() if v is not None}
    if simulate is None:
        simulate = any(_is_fake_quant(qc) for qc in active.values())
    if graph:
        return _quantize_layers_fx(model, active, calibrate_fn, simulate)
    m = copy.deepcopy(model)
    _strip_qconfig(m)
    for name, qc in active.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"`qconfig_dict` keys must be layer names, got {name!r}")
        parent_name, _, child_name = name.rpartition(".")
        try:
            parent = m.get_submodule(parent_name)
            child = parent._modules[child_name]
        except (AttributeError, KeyError):
            raise ValueError(f"`qconfig_dict` names {name!r}, which is no module of "
                             f"`model` (layers: {quantizable_layers(model)})") from None
        wrapper = QuantWrapper(child)
        wrapper.qconfig = qc
        parent._modules[child_name] = wrapper
    if not active:
        return m.eval()
    if simulate:
        m.train()
        prepare_qat(m, inplace=True)
        m.eval()
        calibrate_fn(m)
        m.apply(disable_observer)
        return m
    m.eval()
    prepare(m, inplace=True)
    calibrate_fn(m)
    return convert(m, inplace=True).eval()


def _quantize_layers_fx(model, active, calibrate_fn, simulate):
    """Graph mode: one ``set_module_name`` entry per quantized layer, no global qconfig."""
    from . import quantize_fx
    from .qconfig_mapping import QConfigMapping
    known = dict(model.named_modules())
    mapping = QConfigMapping()
    for name, qc in active.items():
        if name not in known or not name:
            raise ValueError(f"`qconfig_dict` names {name!r}, which is no module of "
                             f"`model` (layers: {quantizable_layers(model)})")
        mapping.set_module_name(name, qc)
    m = copy.deepcopy(model)
    _strip_qconfig(m)
    if not active:
        return m.eval()
    if simulate:
        prepared = quantize_fx.prepare_qat_fx(m.train(), mapping)
        prepared.eval()
        calibrate_fn(prepared)
        prepared.apply(disable_observer)
        return prepared
    prepared = quantize_fx.prepare_fx(m.eval(), mapping)
    calibrate_fn(prepared)
    return quantize_fx.convert_fx(prepared).eval()


def _output(model, args):
    with autograd.no_grad():
        out = model(*args)
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out


def _metric(eval_fn, model, who):
    value = eval_fn(model)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{who}: `eval_fn` must return a number (e.g. the accuracy), got "
                        f"{type(value).__name__}") from None
    if math.isnan(number):      # NaN compares false with everything: no ranking, no target
        raise ValueError(f"{who}: `eval_fn` returned NaN; the layers can only be ranked by "
                         f"a number (+-inf is allowed)")
    return number


def _weight_bits(qconfig):
    """Bits per weight element a qconfig stores (32 for float)."""
    if qconfig is None:
        return 32
    w = qconfig.weight()
    qmin, qmax = getattr(w, "quant_min", None), getattr(w, "quant_max", None)
    if qmin is None or qmax is None:
        return 8
    return max(1, math.ceil(math.log2(int(qmax) - int(qmin) + 1)))


def _layer_param_counts(model, layers):
    """{layer: number of weight elements}, and the other parameters' count."""
    counts = {}
    for name in layers:
        mod = model.get_submodule(name)
        counts[name] = sum(p.data.size for n, p in mod.named_parameters()
                           if p.data.ndim >= 2)
    total = sum(p.data.size for p in model.parameters())
    return counts, total - sum(counts.values())


def _model_bytes(counts, rest, qconfig_dict):
    """Weights at their qconfig's bits, everything else (biases, batch norm) float32."""
    bits = sum(n * _weight_bits(qconfig_dict.get(name)) for name, n in counts.items())
    return int(math.ceil(bits / 8)) + 4 * rest


def _require_matplotlib(who):
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(f"{who} needs matplotlib, which qlearn does not require: "
                          f"pip install matplotlib") from None
    return plt


def _fmt(v, spec):
    if v is None:
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return format(v, spec)


def _table(rows, columns):
    """Fixed-width text table: ``columns`` is a list of (header, key, format)."""
    cells = [[h for h, _, _ in columns]]
    cells += [[_fmt(r[k], f) for _, k, f in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                       enumerate(zip(row, widths))) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _markdown(rows, columns):
    head = "| " + " | ".join(h for h, _, _ in columns) + " |"
    sep = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"
    body = ["| " + " | ".join(_fmt(r[k], f) for _, k, f in columns) + " |" for r in rows]
    return "\n".join([head, sep] + body)


# --- one-at-a-time sensitivity ----------------------------------------------------------------
class SensitivityTable(list):
    """The result of :func:`sensitivity_analysis`: a list with one dict per layer, in
    model order, with the keys

    ``layer``, ``type``, ``sqnr`` (dB, of the model output), ``metric`` (``eval_fn``
    with only this layer quantized), ``delta`` (``metric - float_metric``) and ``rank``
    (1 = most sensitive).

    Attributes ``float_metric`` (nothing quantized) and ``quantized_metric`` (every
    layer quantized) give the two ends.  ``print(table)`` shows it;
    :meth:`to_markdown` and :meth:`plot` render it.
    """

    _COLUMNS = [("layer", "layer", ""), ("type", "type", ""), ("SQNR (dB)", "sqnr", ".1f"),
                ("metric", "metric", ".4f"), ("delta", "delta", "+.4f"),
                ("rank", "rank", "d")]

    def __init__(self, rows, float_metric, quantized_metric):
        super().__init__(rows)
        self.float_metric = float_metric
        self.quantized_metric = quantized_metric

    def ranked(self):
        """The rows, most sensitive first."""
        return sorted(self, key=lambda r: r["rank"])

    def _header(self):
        return (f"float metric {self.float_metric:.4f}, all {len(self)} layers quantized "
                f"{self.quantized_metric:.4f}")

    def __repr__(self):
        return self._header() + "\n" + _table(self, self._COLUMNS)

    def to_markdown(self):
        """The table in Markdown (GitHub / MyST pipe table).

        >>> from qlearn.quantization.sensitivity import SensitivityTable
        >>> t = SensitivityTable([{"layer": "fc", "type": "Linear", "sqnr": 30.0,
        ...                        "metric": 0.9, "delta": -0.01, "rank": 1}], 0.91, 0.9)
        >>> print(t.to_markdown())
        | layer | type | SQNR (dB) | metric | delta | rank |
        |---|---:|---:|---:|---:|---:|
        | fc | Linear | 30.0 | 0.9000 | -0.0100 | 1 |
        """
        return _markdown(self, self._COLUMNS)

    def plot(self, ax=None):
        """A bar chart of each layer's output SQNR, the metric change on a second axis.

        Needs matplotlib.  Returns the matplotlib Axes.
        """
        plt = _require_matplotlib("SensitivityTable.plot")
        if ax is None:
            _, ax = plt.subplots(figsize=(max(4, 0.8 * len(self) + 2), 3.2))
        x = np.arange(len(self))
        sqnr = [min(r["sqnr"], 99.0) for r in self]
        ax.bar(x - 0.2, sqnr, 0.4, color="tab:blue", label="output SQNR (dB)")
        ax.set_ylabel("output SQNR (dB)", color="tab:blue")
        ax.set_xticks(x)
        ax.set_xticklabels([r["layer"] for r in self], rotation=30, ha="right")
        ax2 = ax.twinx()
        ax2.bar(x + 0.2, [r["delta"] for r in self], 0.4, color="tab:red",
                label="metric change")
        ax2.axhline(0, color="grey", lw=0.8)
        ax2.set_ylabel("metric - float metric", color="tab:red")
        ax.set_title("one layer quantized at a time")
        return ax


def _check_callables(calibrate_fn, eval_fn, who):
    for name, fn in (("calibrate_fn", calibrate_fn), ("eval_fn", eval_fn)):
        if not callable(fn):
            raise TypeError(f"{who}: `{name}` must be callable as {name}(model), got "
                            f"{type(fn).__name__}")


def _check_qconfig(qconfig, higher_is_better, who):
    # a QConfig, not None: a table of layers "quantized" with no qconfig would be all
    # float (SQNR inf); a truthy string such as "no" would rank the wrong way
    if not isinstance(qconfig, QConfig):
        raise TypeError(f"{who}: `qconfig` must be a QConfig (e.g. "
                        f"tq.get_default_qconfig('x86') or fake_quant_qconfig(4)), got "
                        f"{type(qconfig).__name__} {qconfig!r}")
    if not isinstance(higher_is_better, (bool, np.bool_)):
        raise TypeError(f"{who}: `higher_is_better` must be a bool, got "
                        f"{type(higher_is_better).__name__} {higher_is_better!r}")


def _check_layers(model, layers, who):
    if layers is None:
        layers = quantizable_layers(model)
    else:
        if isinstance(layers, str):     # list("fc1") would be ["f", "c", "1"]
            raise TypeError(f"{who}: `layers` must be a list of layer names, got the str "
                            f"{layers!r} (write [{layers!r}])")
        layers = list(layers)
        dup = sorted({n for n in layers if layers.count(n) > 1}, key=str)
        if dup:
            raise ValueError(f"{who}: `layers` names {dup} more than once")
        known = dict(model.named_modules())
        for name in layers:
            if name not in known or not name:
                raise ValueError(f"{who}: `layers` names {name!r}, which is no module "
                                 f"of `model` (quantizable layers: "
                                 f"{quantizable_layers(model)})")
    if not layers:
        raise ValueError(f"{who}: `model` has no quantizable layer (Linear, Conv2d or a "
                         f"fused block); pass their names as `layers`")
    return layers


def _reference(model, example_inputs, calibrate_fn):
    """The inputs used for the output SQNR and the float model's output on them."""
    ref = copy.deepcopy(model).eval()
    if example_inputs is None:
        grab = _FirstInput()
        handle = ref.register_forward_pre_hook(grab)
        with autograd.no_grad():
            calibrate_fn(ref)
        handle.remove()
        if grab.args is None:
            raise ValueError("`calibrate_fn` did not call the model; it must run "
                             "calibration data through the model it is given")
        args = grab.args
    else:
        args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    return args, _output(ref, args), ref


def sensitivity_analysis(model, qconfig, calibrate_fn, eval_fn, layers=None,
                         example_inputs=None, simulate=None, graph=False,
                         higher_is_better=True, progress=True):
    r"""Quantize one layer at a time, the rest float, and measure each.

    For each layer :math:`\ell`, the model with only :math:`\ell` quantized
    (:func:`quantize_layers`) is scored twice: by the SQNR of its output against the
    float model's on the same input,

    .. math::

       \mathrm{SQNR}_\ell = 20 \log_{10} \frac{\lVert f(x) \rVert_2}
                                              {\lVert f(x) - \hat f_\ell(x) \rVert_2},

    and by ``eval_fn`` (the user's metric: accuracy, ...).  The layers with the lowest
    SQNR and the largest metric drop are the ones to keep in float.

    Parameters
    ----------
    model : Module
        The float model, ready for evaluation (fused if it should be).  Not changed.
    qconfig : QConfig
        How each layer is quantized (``get_default_qconfig("x86")``, or
        :func:`fake_quant_qconfig` for fewer bits).
    calibrate_fn : callable
        ``calibrate_fn(model)`` runs calibration data through ``model``.
    eval_fn : callable
        ``eval_fn(model)`` returns a number.
    layers : list of str, optional
        The layers to test; default :func:`quantizable_layers`.
    example_inputs : array or tuple, optional
        The input for the output SQNR; default: the first batch ``calibrate_fn`` feeds.
    simulate : bool, optional
        Fake quantization instead of int8 modules (see :func:`quantize_layers`).
    graph : bool
        Graph mode (``prepare_fx`` / ``convert_fx``) instead of eager wrappers (see
        :func:`quantize_layers`).
    higher_is_better : bool
        The direction of ``eval_fn`` (False for a loss), used for the ranking.
    progress : bool
        Show a progress bar (tqdm, when installed).

    Returns
    -------
    SensitivityTable
        A list of dicts (see :class:`SensitivityTable`).

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> from qlearn.quantization.metrics import compute_sqnr
    >>> from qlearn.quantization.sensitivity import sensitivity_analysis
    >>> rng = np.random.default_rng(0)
    >>> m = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2)).eval()
    >>> x = rng.standard_normal((64, 4)).astype(np.float32)
    >>> score = lambda mod: compute_sqnr(m(x), mod(x))     # any metric: accuracy, ...
    >>> table = sensitivity_analysis(m, tq.default_qconfig, lambda mod: mod(x), score,
    ...                              progress=False)
    >>> [(r["layer"], r["type"], r["sqnr"] > 20, r["metric"] == r["sqnr"]) for r in table]
    [('0', 'Linear', True, True), ('2', 'Linear', True, True)]
    """
    who = "sensitivity_analysis"
    _check_model(model, who)
    _check_qconfig(qconfig, higher_is_better, who)
    _check_callables(calibrate_fn, eval_fn, who)
    layers = _check_layers(model, layers, who)
    args, ref_out, ref = _reference(model, example_inputs, calibrate_fn)
    float_metric = _metric(eval_fn, ref, who)
    rows = []
    for name in _progress(layers, desc="sensitivity", disable=not progress):
        cand = quantize_layers(model, {name: qconfig}, calibrate_fn, simulate, graph)
        value = _metric(eval_fn, cand, who)
        rows.append({"layer": name, "type": type(model.get_submodule(name)).__name__,
                     "sqnr": metrics.compute_sqnr(ref_out, _output(cand, args)),
                     "metric": value, "delta": value - float_metric})
    sign = 1 if higher_is_better else -1
    order = sorted(range(len(rows)), key=lambda i: (sign * rows[i]["delta"],
                                                    rows[i]["sqnr"]))
    for rank, i in enumerate(order, 1):
        rows[i]["rank"] = rank
    everything = quantize_layers(model, dict.fromkeys(layers, qconfig), calibrate_fn,
                                 simulate, graph)
    return SensitivityTable(rows, float_metric, _metric(eval_fn, everything, who))


# --- mixed precision ------------------------------------------------------------------------
class MixedPrecisionResult:
    """What :func:`mixed_precision` found.

    Attributes
    ----------
    fallback_layers : list of str
        The layers kept in float (or at ``fallback_qconfig``), most sensitive first.
    qconfig_dict : dict
        ``{layer: QConfig or None}`` for every layer searched, as evaluated; pass it to
        :func:`quantize_layers` to rebuild :attr:`model`.
    qconfig_mapping : QConfigMapping or dict
        The same choice for graph mode: a :class:`~qlearn.quantization.QConfigMapping`
        with no global qconfig and a ``module_name`` entry for each quantized layer
        (``prepare_fx(model, result.qconfig_mapping, ...)`` quantizes what
        ``graph=True`` measured).  If graph mode's QConfigMapping cannot be imported,
        the PyTorch-style dict ``{"": None, "module_name": [(layer, qconfig), ...]}``.
    metric, float_metric, target : float
        The chosen model's metric, the float model's, and the target.
    met : bool
        Whether the target was reached (if not, every layer falls back).
    curve : list of dict
        One entry per step: ``fallback`` (number of fallback layers), ``layers``,
        ``size_bytes`` (weights at their bits, the rest float32) and ``metric``.
    model : Module
        The chosen model (int8 or fake-quantized).
    sensitivity : SensitivityTable
        The one-at-a-time analysis that ordered the search.
    """

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self):
        status = "reached" if self.met else "NOT reached"
        head = (f"MixedPrecisionResult: target {self.target:.4f} {status} with "
                f"{len(self.fallback_layers)} fallback layer(s) {self.fallback_layers}; "
                f"metric {self.metric:.4f} (float {self.float_metric:.4f})")
        return head + "\n" + _table(self.curve, self._COLUMNS)

    _COLUMNS = [("fallback", "fallback", "d"), ("last added", "added", ""),
                ("size (bytes)", "size_bytes", "d"), ("metric", "metric", ".4f")]

    def to_markdown(self):
        """The trade-off curve as a Markdown table."""
        return _markdown(self.curve, self._COLUMNS)

    def plot(self, ax=None):
        """The size/metric trade-off: one point per number of fallback layers, the float
        metric and the target as lines.  Needs matplotlib; returns the Axes."""
        plt = _require_matplotlib("MixedPrecisionResult.plot")
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.2))
        size = [c["size_bytes"] / 1024 for c in self.curve]
        ax.plot(size, [c["metric"] for c in self.curve], "o-", color="tab:blue")
        for c, s in zip(self.curve, size):
            ax.annotate(str(c["fallback"]), (s, c["metric"]), textcoords="offset points",
                        xytext=(4, -10), fontsize=8)
        ax.axhline(self.float_metric, color="grey", ls="--", lw=1, label="float")
        ax.axhline(self.target, color="tab:red", ls=":", lw=1, label="target")
        ax.set_xlabel("weight size (KiB)")
        ax.set_ylabel("metric")
        ax.set_title("mixed precision: fallback layers (labels) vs size")
        ax.legend(loc="lower right", fontsize=8)
        return ax


def _qconfig_mapping(plan):
    """The graph-mode form of ``plan`` ({layer: qconfig or None}): no global qconfig, one
    ``module_name`` entry per quantized layer (what ``graph=True`` evaluates)."""
    entries = [(n, qc) for n, qc in plan.items() if qc is not None]
    try:
        from .qconfig_mapping import QConfigMapping
    except ImportError:
        return {"": None, "module_name": entries}
    qm = QConfigMapping()
    for name, qc in entries:
        qm.set_module_name(name, qc)
    return qm


def mixed_precision(model, qconfig, calibrate_fn, eval_fn, fallback_qconfig=None,
                    target=None, tolerance=0.005, layers=None, sensitivity=None,
                    simulate=None, graph=False, higher_is_better=True, full_curve=False,
                    progress=True):
    r"""Keep the fewest, most sensitive layers in float (or wider) so that the metric
    reaches ``target``.

    The search is greedy.  Starting from every layer at ``qconfig``, the layers get
    ``fallback_qconfig`` (``None``: float) one by one in the order of
    :func:`sensitivity_analysis` (most sensitive first) until

    .. math::

       m(\text{model}) \ge m_\text{target} = m_\text{float} - \text{tolerance}

    (:math:`\le` and :math:`+` when ``higher_is_better`` is False).  Then each chosen
    layer is tried back at ``qconfig`` and dropped from the fallback set if the target
    still holds, so no fallback layer is superfluous.

    Parameters
    ----------
    model : Module
        The float model (not changed).
    qconfig : QConfig
        The precision of most layers (``get_default_qconfig("x86")`` for int8, or
        ``fake_quant_qconfig(4)``).
    calibrate_fn, eval_fn : callable
        As for :func:`sensitivity_analysis`.
    fallback_qconfig : QConfig, optional
        The precision of the sensitive layers; ``None`` keeps them float.  E.g.
        ``qconfig=fake_quant_qconfig(4), fallback_qconfig=fake_quant_qconfig(8)``.
    target : float, optional
        The metric to reach; default ``float metric - tolerance``.
    tolerance : float
        See ``target`` (0.005 is half a point of accuracy given as a fraction).
    layers : list of str, optional
        The layers to search over; default :func:`quantizable_layers`.
    sensitivity : SensitivityTable, optional
        A precomputed :func:`sensitivity_analysis` of the same model and qconfig.
    simulate : bool, optional
        Fake quantization instead of int8 modules; default: when a qconfig is made of
        FakeQuantize factories.
    graph : bool
        Graph mode instead of eager wrappers (see :func:`quantize_layers`).
    higher_is_better : bool
    full_curve : bool
        Evaluate every step (0 .. all layers) for the trade-off curve instead of
        stopping at the target.
    progress : bool

    Returns
    -------
    MixedPrecisionResult

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> from qlearn.quantization.metrics import compute_sqnr
    >>> from qlearn.quantization.sensitivity import mixed_precision
    >>> rng = np.random.default_rng(0)
    >>> m = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2)).eval()
    >>> x = rng.standard_normal((64, 4)).astype(np.float32)
    >>> score = lambda mod: compute_sqnr(m(x), mod(x))     # dB; float: inf
    >>> res = mixed_precision(m, tq.default_qconfig, lambda mod: mod(x), score,
    ...                       target=40.0, full_curve=True, progress=False)
    >>> res.met, [c["fallback"] for c in res.curve], res.curve[-1]["metric"]
    (True, [0, 1, 2], inf)
    """
    who = "mixed_precision"
    _check_model(model, who)
    _check_qconfig(qconfig, higher_is_better, who)
    _check_callables(calibrate_fn, eval_fn, who)
    layers = _check_layers(model, layers, who)
    if sensitivity is None:
        sensitivity = sensitivity_analysis(model, qconfig, calibrate_fn, eval_fn, layers,
                                           simulate=simulate, graph=graph,
                                           higher_is_better=higher_is_better,
                                           progress=progress)
    elif not isinstance(sensitivity, SensitivityTable) or \
            sorted(r["layer"] for r in sensitivity) != sorted(layers):
        raise ValueError(f"{who}: `sensitivity` must be the SensitivityTable of the "
                         f"same layers ({layers})")
    float_metric = sensitivity.float_metric
    sign = 1 if higher_is_better else -1
    if target is None:
        target = float_metric - sign * float(tolerance)
    target = float(target)

    def meets(value):
        return sign * (value - target) >= 0

    order = [r["layer"] for r in sensitivity.ranked()]
    counts, rest = _layer_param_counts(model, layers)
    cache = {}

    def evaluate(fallback):
        key = frozenset(fallback)
        if key not in cache:
            plan = {n: (fallback_qconfig if n in key else qconfig) for n in layers}
            cand = quantize_layers(model, plan, calibrate_fn, simulate, graph)
            cache[key] = (_metric(eval_fn, cand, who), cand, plan)
        return cache[key]

    curve, chosen = [], None
    steps = _progress(range(len(order) + 1), desc="mixed precision", disable=not progress)
    for k in steps:
        fallback = order[:k]
        value, _, plan = evaluate(fallback)
        curve.append({"fallback": k, "added": order[k - 1] if k else "-",
                      "layers": list(fallback), "size_bytes": _model_bytes(counts, rest, plan),
                      "metric": value})
        if chosen is None and meets(value):
            chosen = list(fallback)
            if not full_curve:
                break
    met = chosen is not None
    if not met:
        chosen = list(order)
    elif len(chosen) > 1:
        for name in list(chosen):           # drop the fallback layers that are not needed
            trial = [n for n in chosen if n != name]
            if meets(evaluate(trial)[0]):
                chosen = trial
    value, cand, plan = evaluate(chosen)
    return MixedPrecisionResult(
        fallback_layers=chosen, qconfig_dict=plan,
        qconfig_mapping=_qconfig_mapping(plan),
        metric=value, float_metric=float_metric, target=target, met=met, curve=curve,
        model=cand, sensitivity=sensitivity)


# --- per-layer observer report ----------------------------------------------------------------
class LayerReport(list):
    """The result of :func:`layer_report`: one dict per observed layer, with the keys

    ``layer``, ``observer`` (its class), ``min`` / ``max`` (the range it recorded during
    calibration), ``low`` / ``high`` (the range its qparams represent, :func:`~qlearn.
    quantization.metrics.representable_range`), ``scale``, ``zero_point``, ``clipped``
    (:func:`~qlearn.quantization.metrics.clipping_fraction` on the report's data),
    ``saturated`` (:func:`~qlearn.quantization.metrics.saturation_count`) and ``n`` (the
    number of values seen).  ``values`` maps each layer to the values it saw;
    :meth:`plot` draws their histograms.
    """

    _COLUMNS = [("layer", "layer", ""), ("observer", "observer", ""), ("min", "min", ".4g"),
                ("max", "max", ".4g"), ("low", "low", ".4g"), ("high", "high", ".4g"),
                ("scale", "scale", ".4g"), ("zp", "zero_point", "d"),
                ("clipped", "clipped", ".2%"), ("saturated", "saturated", "d"),
                ("n", "n", "d")]

    def __init__(self, rows, values):
        super().__init__(rows)
        self.values = values

    def __repr__(self):
        return _table(self, self._COLUMNS)

    def to_markdown(self):
        """The report as a Markdown table."""
        return _markdown(self, self._COLUMNS)

    def plot(self, layers=None, bins=64, ncols=3):
        """One histogram per layer (log counts) of the values it saw, with the
        representable range as red lines.  Needs matplotlib; returns the Figure."""
        plt = _require_matplotlib("LayerReport.plot")
        rows = [r for r in self if layers is None or r["layer"] in layers]
        if not rows:
            raise ValueError(f"`layers` {layers!r} names no layer of the report "
                             f"({[r['layer'] for r in self]})")
        ncols = min(ncols, len(rows))
        nrows = -(-len(rows) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 2.5 * nrows),
                                 squeeze=False)
        for ax, r in zip(axes.ravel(), rows):
            v = self.values[r["layer"]]
            lo, hi = min(v.min(), r["low"]), max(v.max(), r["high"])
            ax.hist(v, bins=bins, range=(lo, hi) if hi > lo else None, color="tab:blue",
                    log=True)
            for edge in (r["low"], r["high"]):
                ax.axvline(edge, color="tab:red", lw=1)
            ax.set_title(f"{r['layer']}: {r['clipped']:.2%} clipped, "
                         f"{r['saturated']} saturated", fontsize=9)
            ax.tick_params(labelsize=7)
        for ax in axes.ravel()[len(rows):]:
            ax.axis("off")
        fig.tight_layout()
        return fig


def _observer_range(obs):
    inner = getattr(obs, "activation_post_process", obs) \
        if isinstance(obs, FakeQuantizeBase) else obs
    lo, hi = getattr(inner, "min_val", None), getattr(inner, "max_val", None)
    if lo is None or hi is None:
        return None, None
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    if lo.size == 0 or not np.isfinite(lo).all() or not np.isfinite(hi).all():
        return None, None
    return float(lo.min()), float(hi.max())


def layer_report(prepared_model, data):
    r"""For every observer of a prepared model: its range, and what it does to ``data``.

    ``data`` is run through a copy of ``prepared_model`` (the observers of the model
    itself keep their calibration); each observer's input is collected and compared with
    the qparams it computed during calibration: the fraction of values it clips (eq.
    of :func:`~qlearn.quantization.metrics.clipping_fraction`) and the number that land
    on an end of the integer range.

    Parameters
    ----------
    prepared_model : Module
        A model after :func:`~qlearn.quantization.prepare` (or ``prepare_qat``) and
        calibration.
    data : array or tuple
        One input (a tuple for several arguments), e.g. a held-out batch.

    Returns
    -------
    LayerReport
        A list of dicts, one per observed module (``""`` is the root), and ``values``.

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> from qlearn.quantization.sensitivity import layer_report
    >>> m = tq.QuantWrapper(nn.Linear(4, 3)); m.qconfig = tq.default_qconfig
    >>> p = tq.prepare(m)
    >>> x = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32)
    >>> _ = p(x)
    >>> rep = layer_report(p, 3 * x)                 # wider data than the calibration's
    >>> [r["layer"] for r in rep], rep[0]["clipped"] > 0.2
    (['quant', 'module'], True)
    """
    _check_model(prepared_model, "layer_report")
    observed = [(name, mod) for name, mod in prepared_model.named_modules()
                if isinstance(mod._modules.get("activation_post_process"),
                              (ObserverBase, FakeQuantizeBase))]
    if not observed:
        from .numeric_suite import _quantized_module_types
        converted = any(isinstance(m, _quantized_module_types())
                        for m in prepared_model.modules())
        hint = ("it is converted already: report on the prepared model, before convert"
                if converted else "run qlearn.quantization.prepare and calibrate first")
        raise ValueError(f"layer_report: `prepared_model` has no observer; {hint}")
    for name, mod in observed:
        if _observer_range(mod.activation_post_process)[0] is None:
            raise ValueError(f"layer_report: the observer of {name or 'the model'!r} saw "
                             f"no data; run calibration data through `prepared_model` "
                             f"first")
    probe = copy.deepcopy(prepared_model)
    seen = {name: [] for name, _ in observed}

    def collect(name):
        def hook(obs, args):
            x = args[0]
            seen[name].append(np.array(getattr(x, "data", x), np.float64).ravel())
        return hook

    handles = [probe.get_submodule(name).activation_post_process.register_forward_pre_hook(
        collect(name)) for name, _ in observed]
    args = data if isinstance(data, tuple) else (data,)
    with autograd.no_grad():
        probe(*args)
    for h in handles:
        h.remove()
    rows, values = [], {}
    for name, mod in observed:
        obs = mod.activation_post_process
        v = np.concatenate(seen[name]) if seen[name] else np.zeros(0)
        lo_obs, hi_obs = _observer_range(obs)
        low, high = metrics.representable_range(obs)
        scale, zero_point = obs.calculate_qparams()
        per_channel = np.asarray(scale).size > 1
        rows.append({"layer": name, "observer": _class_name(type(obs)).split(".")[-1],
                     "min": lo_obs, "max": hi_obs,
                     "low": float(np.min(low)), "high": float(np.max(high)),
                     "scale": float(np.asarray(scale).reshape(-1)[0]),
                     "zero_point": int(np.asarray(zero_point).reshape(-1)[0]),
                     "clipped": metrics.clipping_fraction(obs, v) if not per_channel
                     and v.size else 0.0,
                     "saturated": metrics.saturation_count(obs, v) if not per_channel
                     else 0,
                     "n": int(v.size)})
        values[name] = v
    return LayerReport(rows, values)
