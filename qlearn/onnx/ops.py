r"""How each operator of a converted model is written in ONNX, in the two formats.

``"qoperator"`` keeps tensors as integers between operators and uses the integer
operators of ONNX and of onnxruntime's ``com.microsoft`` domain; ``"qdq"`` writes every
quantized operator as its float operator between ``DequantizeLinear`` and
``QuantizeLinear`` (:math:`r = S (q - Z)`, :math:`q = \mathrm{sat}(\mathrm{round}(r/S) + Z)`),
which a runtime fuses back into integer kernels.

==============================  ===============================  =========================
qlearn                          ``"qoperator"``                  ``"qdq"``
==============================  ===============================  =========================
``nnq.Quantize``                QuantizeLinear                   QuantizeLinear
``nnq.DeQuantize``              DequantizeLinear                 DequantizeLinear
``nnq.Conv2d``, ``ConvReLU2d``  QLinearConv (int32 bias)         DQ, Conv (int32 bias), Q
``nnq.Conv1d``, ``Conv3d``      QLinearConv (int32 bias)         DQ, Conv (int32 bias), Q
``nnq.Linear``, ``LinearReLU``  MatMulInteger + float epilogue   DQ, Gemm (int32 bias), Q
``nnqd.Linear``                 (Dynamic)QuantizeLinear,         Q, DQ, Gemm
                                MatMulInteger (uint8 weight
                                without reduce_range), Cast,
                                Mul, Add
``nnq.ReLU`` / ``ReLU6``        nothing (Z = 0) / Clip on uint8  DQ, Relu / Clip, Q
``MaxPool2d``                   MaxPool on uint8                 DQ, MaxPool, Q
``AdaptiveAvgPool2d``           QLinearGlobalAveragePool (ms)    DQ, GlobalAveragePool, Q
``Flatten``                     Flatten on uint8                 DQ, Flatten, Q
``QFunctional.add`` ...         QLinearAdd / QLinearMul /        DQ, Add / Mul / Concat, Q
                                QLinearConcat (ms)
``nnq.LayerNorm``               DQ, LayerNormalization, Q        the same
``nnq.InstanceNorm*d``          DQ, InstanceNormalization, Q     the same
``nnq.GroupNorm``               DQ, Reshape (N, G, -1),          the same
                                InstanceNormalization, Reshape,
                                Mul, Add, Q
``nnq.Hardswish`` / ``ELU``     DQ, HardSwish / Elu, Q           the same
``nnq.PReLU``                   DQ, PRelu (float slope), Q       the same
==============================  ===============================  =========================

ONNX has no integer normalisation or hard-swish operators, so both formats compute these
in float between a DequantizeLinear and a QuantizeLinear (as the runtime would; its
float32 arithmetic may round an output integer differently from qlearn's, which follows
PyTorch's kernels).  Their float modules, and in a graph ``qF.layer_norm`` /
``instance_norm`` / ``hardswish`` / ``elu`` and the float ``F.layer_norm`` /
``instance_norm`` / ``group_norm`` / ``hardswish`` / ``elu``, convert to the same
operators.

On a CPU without AVX512-VNNI, onnxruntime multiplies ``uint8 x int8`` with
``vpmaddubsw``, which adds two products in a saturating int16: an activation above 127
next to a large weight of the same sign loses the excess (docs/int8.rst, "The
saturation of vpmaddubsw").  qlearn's own kernels are exact on every path.  A dynamic
``nnqd.Linear`` without ``reduce_range`` quantizes its input to the full 8 bits, so its
``MatMulInteger`` gets the weight as ``uint8`` (:math:`w + 128`, :math:`Z_w + 128`: the
same :math:`w - Z_w`), which onnxruntime computes exactly; with the 7-bit activations of
the x86 qconfigs (``reduce_range=True``) the ``int8`` weight cannot saturate.  A static
model calibrated with 7-bit activations can still meet inputs beyond its calibrated
range at inference, whose integers then exceed 127: onnxruntime (like PyTorch's FBGEMM
on such a CPU) may then saturate where qlearn does not.

:data:`MODULE_CONVERSIONS`, :data:`FUNCTIONAL_CONVERSIONS`, :data:`FUNCTION_CONVERSIONS`
and :data:`METHOD_CONVERSIONS` are the tables (plain dicts, printable).
"""
import operator

import numpy as np

from .. import autograd, nn
from ..dtypes import per_channel_affine, per_channel_symmetric, qint8, qint32, quint8
from ..nn import functional as F
from ..nn.intrinsic import quantized as nniq
from ..nn.quantized import dynamic as nnqd
from ..nn.quantized import functional as qF
from ..nn.quantized import modules as nnq
from ..qtensor import QTensor, dequantize, quantize_per_tensor
from .graph import MS_DOMAIN, Value

__all__ = ["FUNCTIONAL_CONVERSIONS", "FUNCTION_CONVERSIONS", "METHOD_CONVERSIONS",
           "MODULE_CONVERSIONS", "Converter", "UnsupportedModuleError"]

_ELEM = {quint8: np.uint8, qint8: np.int8, qint32: np.int32}


class UnsupportedModuleError(TypeError):
    """A module (or graph operator) of the model has no ONNX conversion; the message
    names it (qualified name and type).  A ``TypeError``: the type is the problem.

    >>> from qlearn.onnx import UnsupportedModuleError
    >>> issubclass(UnsupportedModuleError, TypeError)
    True
    """


class Converter:
    """Turns :class:`~qlearn.onnx.walk.Call` records into nodes of a
    :class:`~qlearn.onnx.graph.GraphBuilder`, keeping ``id(object) -> Value``.

    >>> from qlearn.onnx.graph import GraphBuilder
    >>> from qlearn.onnx.ops import Converter
    >>> cv = Converter(GraphBuilder(17), "qdq")
    >>> cv.bind(ql.quantize_per_tensor([1.0], 0.5, 3, ql.quint8), "q").zero_point
    3
    """

    def __init__(self, g, fmt):
        self.g, self.fmt = g, fmt
        self.env = {}
        self.constants = {}

    @property
    def qdq(self):
        return self.fmt == "qdq"

    # -- values --------------------------------------------------------------------------
    def bind(self, obj, name):
        """Record that ``obj`` (a QTensor or float array) is the ONNX tensor ``name``."""
        if isinstance(name, Value):
            v = name
        elif isinstance(obj, QTensor):
            if obj.qscheme() in (per_channel_affine, per_channel_symmetric):
                raise ValueError(f"qlearn.onnx.export: activation {name!r} is quantized "
                                 f"per channel; only per-tensor activations are exported")
            v = Value(name, "q", tuple(obj.shape), float(obj.q_scale()),
                      int(obj.q_zero_point()), _ELEM[obj.dtype])
        else:
            v = Value(name, "f", tuple(np.shape(getattr(obj, "data", obj))))
        self.env[id(obj)] = v
        return v

    def lookup(self, obj, call):
        from .walk import is_tensor
        if id(obj) in self.env:
            return self.env[id(obj)]
        if id(obj) in self.constants or not is_tensor(obj):
            return obj
        raise ValueError(
            f"qlearn.onnx.export: an input of {call.name!r} ({call.type_name}) was computed "
            f"by code the export cannot see (arithmetic, a reshape or a conversion inside "
            f"a forward method, outside any module); do it in a module (nn.Flatten, "
            f"nnq.QFunctional) or export the model traced by qlearn.fx.symbolic_trace")

    def as_float(self, v, out=None):
        """The float tensor name of ``v``: ``v`` itself or a DequantizeLinear of it."""
        if isinstance(v, Value) and v.quantized:
            return self.g.dequantize(v, out)
        if isinstance(v, Value):
            return v.name
        return self.g.const("const", np.asarray(getattr(v, "data", v), np.float32))

    def requantize(self, fname, out_obj, base):
        """``QuantizeLinear`` of the float tensor ``fname`` to ``out_obj``'s parameters."""
        return self.g.quantize(fname, out_obj.q_scale(), out_obj.q_zero_point(),
                               _ELEM[out_obj.dtype], base)

    def float_op(self, op_type, ins, out_obj, base, domain=None, **attrs):
        """``op_type`` on float tensors; dequantized first / quantized after as ``ins`` and
        ``out_obj`` are quantized (the QDQ form of an operator)."""
        names = [self.as_float(v) for v in ins]
        if isinstance(out_obj, QTensor):
            y = self.g.node(op_type, names, base + "_f", name=base, domain=domain, **attrs)
            return self.requantize(y, out_obj, base)
        return self.g.node(op_type, names, base, name=base, domain=domain, **attrs)

    def clamp_u8(self, name, lo, hi, elem, base):
        """``Clip`` on integers: the ReLU / ReLU6 of a quantized tensor."""
        return self.g.node("Clip", [name, self.g.const("lo", np.asarray(lo, elem)),
                                    self.g.const("hi", np.asarray(hi, elem))], base,
                           name=base + "/clamp")


# ---- helpers ---------------------------------------------------------------------------
def _need_q(v, call, what="input"):
    if not (isinstance(v, Value) and v.quantized):
        raise TypeError(f"qlearn.onnx.export: {call.name!r} ({call.type_name}) expects a "
                        f"quantized {what}, got a float one")
    return v


def _qmax(elem):
    return int(np.iinfo(elem).max)


def _weight_qparams(qw):
    """``(int8 array, scale, zero point, axis)``; scale / zero point are 0-d per tensor,
    1-d per channel (``axis`` 0)."""
    w = qw.int_repr()
    if qw.qscheme() in (per_channel_affine, per_channel_symmetric):
        return (w, np.asarray(qw.q_per_channel_scales(), np.float32),
                np.asarray(qw.q_per_channel_zero_points()).astype(np.int8),
                int(qw.q_per_channel_axis()))
    return (w, np.float32(qw.q_scale()), np.int8(qw.q_zero_point()), None)


def int32_bias(b, a_scale, w_scale):
    r"""The bias as ONNX integer operators take it:

    .. math::  b^{(32)}_j = \operatorname{round}\big(b_j / (S_a S_{w,j})\big)

    an int32 at scale :math:`S_a S_{w,j}` (the float32 product), with zero point 0,
    saturated to the int32 range.  Returns ``(bias_int32, bias_scale)``.

    Examples
    --------
    >>> from qlearn.onnx.ops import int32_bias
    >>> q, s = int32_bias(np.array([0.5, -0.013], np.float32), 0.1, [0.01, 0.002])
    >>> q
    array([500, -65], dtype=int32)
    >>> s
    array([0.001 , 0.0002], dtype=float32)
    """
    bias_scale = (np.float32(a_scale) * np.asarray(w_scale, np.float32)).astype(np.float32)
    bs = np.broadcast_to(bias_scale, b.shape).astype(np.float64)
    q = np.rint(np.asarray(b, np.float64) / bs)
    info = np.iinfo(np.int32)
    return np.clip(q, info.min, info.max).astype(np.int32), bias_scale


def _qweight_init(cv, base, w, ws, wz, axis):
    """QDQ: the int8 weight initializer and its DequantizeLinear."""
    return cv.g.dequantize_const(base, w, ws, wz, axis)


# ---- quantize / dequantize --------------------------------------------------------------
def _quantize(cv, call, x):
    mod = call.target
    if isinstance(x, Value) and x.quantized:
        raise TypeError(f"qlearn.onnx.export: {call.name!r} (Quantize) got a quantized "
                        f"input")
    return cv.g.quantize(cv.as_float(x), mod.scale, mod.zero_point, _ELEM[mod.dtype],
                         call.name, name=call.name)


def _dequantize(cv, call, x):
    return cv.g.dequantize(_need_q(x, call), call.name, name=call.name)


# ---- conv ------------------------------------------------------------------------------
def _conv_attrs(mod):
    pads = list(mod.padding)       # one per spatial axis (1-d, 2-d or 3-d): begins, ends
    return dict(kernel_shape=list(mod.kernel_size), strides=list(mod.stride),
                pads=pads + pads, dilations=list(mod.dilation), group=mod.groups)


def _qconv(cv, call, x):
    mod, y, g = call.target, call.out, cv.g
    if getattr(mod, "padding_mode", "zeros") != "zeros":
        # the conversion writes zero pads: a reflect-padded conv would export wrong
        raise UnsupportedModuleError(f"qlearn.onnx.export: {call.name!r} "
                                     f"({type(mod).__name__}) pads by "
                                     f"{mod.padding_mode!r}; only zero padding exports")
    x = _need_q(x, call)
    relu = bool(getattr(mod, "_RELU", False))
    w, ws, wz, axis = _weight_qparams(mod.weight())
    b = mod.bias()
    ys, yz, elem = y.q_scale(), y.q_zero_point(), _ELEM[y.dtype]
    base = call.name
    if cv.qdq:
        ins = [cv.as_float(x), _qweight_init(cv, base + ".weight", w, ws, wz, axis)]
        if b is not None:
            bq, bs = int32_bias(b, x.scale, ws)
            ins.append(g.dequantize_const(base + ".bias", bq, bs, np.zeros_like(bq), 0))
        r = g.node("Conv", ins, base + "_f", name=base, **_conv_attrs(mod))
        if relu:
            r = g.node("Relu", [r], base + "_relu", name=base + "/relu")
        return cv.requantize(r, y, base)
    ins = [x.name, g.scale_const(x.scale), g.zp_const(x.zero_point, x.elem),
           g.const(base + ".weight_quantized", w),
           g.const(base + ".weight_scale", np.asarray(ws, np.float32)),
           g.const(base + ".weight_zero_point", np.asarray(wz, np.int8)),
           g.scale_const(ys), g.zp_const(yz, elem)]
    if b is not None:
        ins.append(g.const(base + ".bias_quantized", int32_bias(b, x.scale, ws)[0]))
    out = g.node("QLinearConv", ins, base, name=base, **_conv_attrs(mod))
    if relu and yz != 0:          # Z_o = 0: the saturation at 0 is the ReLU already
        out = cv.clamp_u8(out, yz, _qmax(elem), elem, base + "_relu")
    return out


# ---- linear ----------------------------------------------------------------------------
def _linear_qdq(cv, base, xf, w, ws, wz, axis, bias_name, in_shape):
    """Float linear of the QDQ form: ``Gemm`` (transB), with the input reshaped to 2-d
    and back when it is not 2-d.  (Not ``MatMul``: onnxruntime rewrites DequantizeLinear +
    MatMul into its weight-only ``MatMulNBits``, whose arithmetic is not the graph's.)"""
    g = cv.g
    n, k = w.shape
    flat = len(in_shape) != 2
    if flat:
        xf = g.node("Reshape", [xf, g.const("shape", np.asarray([-1, k], np.int64))],
                    base + "_rows", name=base + "/rows")
    wf = _qweight_init(cv, base + ".weight", w, ws, wz, axis)
    ins = [xf, wf] + ([bias_name] if bias_name else [])
    r = g.node("Gemm", ins, base + "_f", name=base, transB=1)
    if flat:
        lead = [-1] + list(in_shape[1:-1]) if len(in_shape) > 1 else []  # batch: open
        r = g.node("Reshape", [r, g.const("shape", np.asarray(lead + [n], np.int64))],
                   base + "_fr", name=base + "/unrows")
    return r


def _qlinear(cv, call, x):
    mod, y, g = call.target, call.out, cv.g
    x = _need_q(x, call)
    relu = bool(getattr(mod, "_RELU", False))
    w, ws, wz, axis = _weight_qparams(mod.weight())
    b = mod.bias()
    ys, yz, elem = y.q_scale(), y.q_zero_point(), _ELEM[y.dtype]
    base = call.name
    if cv.qdq:
        bname = None
        if b is not None:
            bq, bs = int32_bias(b, x.scale, ws)
            bname = g.dequantize_const(base + ".bias", bq, bs, np.zeros_like(bq), 0)
        r = _linear_qdq(cv, base, cv.as_float(x), w, ws, wz, axis, bname, x.shape)
        if relu:
            r = g.node("Relu", [r], base + "_relu", name=base + "/relu")
        return cv.requantize(r, y, base)
    # docs/int8.rst, eq. (int8-requant), with qlearn's own float32 constants: the int32
    # accumulator (MatMulInteger), + beta_j, * M_j, round, + Z_o (QuantizeLinear, S = 1)
    bias_q, mult = mod._packed_params.requant_constants(x.scale, ys)
    ins = [x.name, g.const(base + ".weight_t", np.ascontiguousarray(w.T)),
           g.zp_const(x.zero_point, x.elem)]
    if np.any(wz != 0):
        ins.append(g.const(base + ".weight_zero_point", np.broadcast_to(
            wz, (w.shape[0],)).astype(np.int8)))
    acc = g.node("MatMulInteger", ins, base + "_acc", name=base)
    r = g.node("Cast", [acc], base + "_accf", name=base + "/cast", to=1)
    if bias_q.size:
        r = g.node("Add", [r, g.const(base + ".bias_over_scale", bias_q)], base + "_biased",
                   name=base + "/bias")
    r = g.node("Mul", [r, g.const(base + ".multiplier", mult)], base + "_scaled",
               name=base + "/requant")
    if relu and yz != 0:
        r = g.node("Relu", [r], base + "_relu", name=base + "/relu")
    return g.quantize(r, 1.0, yz, elem, base, name=base + "/round")


def _dynamic_qparams(cv, x, qmax, base):
    """The activation scale and zero point of ``choose_qparams_dynamic`` as graph nodes
    (float64, as qlearn and FBGEMM compute them): range widened to contain 0,
    :math:`S = (hi - lo) / q_{max}`, the zero point from the end with the smaller error."""
    g = cv.g
    n = lambda op, ins, **kw: g.node(op, ins, f"{base}_{op.lower()}", name=f"{base}/{op}",
                                     **kw)
    d = lambda v: g.const("d", np.float64(v))
    f64 = lambda t: n("Cast", [t], to=11)
    lo = n("Min", [f64(n("ReduceMin", [x], keepdims=0)), d(0.0)])
    hi = n("Max", [f64(n("ReduceMax", [x], keepdims=0)), d(0.0)])
    s32 = n("Cast", [n("Div", [n("Sub", [hi, lo]), d(qmax)])], to=1)
    bad = n("Or", [n("Equal", [s32, g.const("f", np.float32(0))]),
                   n("IsInf", [n("Div", [g.const("f", np.float32(1)), s32])])])
    s32 = n("Where", [bad, g.const("f", np.float32(0.1)), s32])
    s = f64(s32)
    a, c = n("Div", [lo, s]), n("Div", [hi, s])
    zp_min, zp_max = n("Neg", [a]), n("Sub", [d(qmax), c])
    err_min, err_max = n("Neg", [n("Abs", [a])]), n("Sub", [d(qmax), n("Abs", [c])])
    zp = n("Where", [n("Less", [err_min, err_max]), zp_min, zp_max])
    zp = n("Round", [n("Clip", [zp, d(0.0), d(qmax)])])
    return s32, n("Cast", [zp], to=2)


def _dynamic_linear(cv, call, x):
    mod, g = call.target, cv.g
    if isinstance(x, Value) and x.quantized:
        raise TypeError(f"qlearn.onnx.export: {call.name!r} (dynamic Linear) expects a "
                        f"float input, got a quantized one")
    base = call.name
    xf = cv.as_float(x)
    w, ws, wz, axis = _weight_qparams(mod.weight())
    b = mod.bias()
    if getattr(mod, "reduce_range", True):
        xs, xz = _dynamic_qparams(cv, xf, 127, base + "_qparams")
        xq = g.node("QuantizeLinear", [xf, xs, xz], base + "_xq", name=base + "/quantize")
    else:
        xq, xs, xz = g.node("DynamicQuantizeLinear", [xf], base + "_xq", name=base + "/dq",
                            n_out=3)
    if cv.qdq:
        xd = g.node("DequantizeLinear", [xq, xs, xz], base + "_xdq",
                    name=base + "/dequantize")
        bname = g.const(base + ".bias", b) if b is not None else None
        return _linear_qdq(cv, base, xd, w, ws, wz, axis, bname, x.shape)
    if getattr(mod, "reduce_range", True):
        ins = [xq, g.const(base + ".weight_t", np.ascontiguousarray(w.T)), xz]
        if np.any(wz != 0):
            ins.append(g.const(base + ".weight_zero_point", np.broadcast_to(
                wz, (w.shape[0],)).astype(np.int8)))
    else:
        # 8-bit activations: onnxruntime's uint8 x int8 kernel on a CPU without VNNI
        # (vpmaddubsw) saturates pair sums above 32767, its uint8 x uint8 kernel does
        # not; w - Z_w is unchanged by moving both to uint8 (w + 128, Z_w + 128)
        ins = [xq, g.const(base + ".weight_t",
                           (np.ascontiguousarray(w.T).astype(np.int16) + 128)
                           .astype(np.uint8)), xz,
               g.const(base + ".weight_zero_point", (np.broadcast_to(
                   wz, (w.shape[0],)).astype(np.int16) + 128).astype(np.uint8))]
    acc = g.node("MatMulInteger", ins, base + "_acc", name=base)
    r = g.node("Cast", [acc], base + "_accf", name=base + "/cast", to=1)
    # eq. (int8-dynamic): f32(C) * f32(Sa Sw_j) + b_j
    scale = g.node("Mul", [xs, g.const(base + ".weight_scale", np.asarray(ws, np.float32))],
                   base + "_scale", name=base + "/scale")
    r = g.node("Mul", [r, scale], base + ("_scaled" if b is not None else ""),
               name=base + "/dequant")
    if b is not None:
        r = g.node("Add", [r, g.const(base + ".bias", b)], base, name=base + "/bias")
    return r


# ---- activations, pooling, shapes --------------------------------------------------------
def _relu(cv, call, x):
    y = call.out
    if not isinstance(y, QTensor):
        return cv.float_op("Relu", [x], y, call.name)
    x = _need_q(x, call)
    if cv.qdq:
        return cv.float_op("Relu", [x], y, call.name)
    if x.zero_point == 0:                # max(q, 0) on uint8 is q: nothing to compute
        return x
    return cv.clamp_u8(x.name, x.zero_point, _qmax(x.elem), x.elem, call.name)


def _relu6(cv, call, x):
    y = call.out
    if not isinstance(y, QTensor):
        return cv.float_op("Clip", [x, np.float32(0), np.float32(6)], y, call.name)
    x = _need_q(x, call)
    if cv.qdq:
        return cv.float_op("Clip", [x, np.float32(0), np.float32(6)], y, call.name)
    six = int(quantize_per_tensor(np.float32(6), x.scale, x.zero_point, quint8).int_repr())
    return cv.clamp_u8(x.name, x.zero_point, six, x.elem, call.name)


def _int_pair(v):
    return (int(v), int(v)) if np.ndim(v) == 0 else tuple(int(t) for t in v)


def _max_pool(cv, call, x):
    mod, y = call.target, call.out
    k = _int_pair(mod.kernel_size)
    s = _int_pair(mod.stride if mod.stride not in (None, []) else mod.kernel_size)
    p, d = _int_pair(mod.padding), _int_pair(mod.dilation)
    attrs = dict(kernel_shape=list(k), strides=list(s), pads=[p[0], p[1], p[0], p[1]],
                 dilations=list(d), ceil_mode=int(bool(mod.ceil_mode)))
    if isinstance(y, QTensor) and not cv.qdq:      # max commutes with the affine map
        _need_q(x, call)
        return cv.g.node("MaxPool", [x.name], call.name, name=call.name, **attrs)
    return cv.float_op("MaxPool", [x], y, call.name, **attrs)


def _adaptive_avg_pool(cv, call, x):
    y, g = call.out, cv.g
    h, w = x.shape[-2:]
    ho, wo = y.shape[-2:]
    if (ho, wo) == (1, 1):
        if isinstance(y, QTensor) and not cv.qdq:
            _need_q(x, call)
            return g.node("QLinearGlobalAveragePool",
                          [x.name, g.scale_const(x.scale), g.zp_const(x.zero_point, x.elem),
                           g.scale_const(y.q_scale()),
                           g.zp_const(y.q_zero_point(), _ELEM[y.dtype])],
                          call.name, name=call.name, domain=MS_DOMAIN, channels_last=0)
        return cv.float_op("GlobalAveragePool", [x], y, call.name)
    if h % ho or w % wo:
        raise UnsupportedModuleError(
            f"qlearn.onnx.export: {call.name!r} ({call.type_name}) pools {h}x{w} to "
            f"{ho}x{wo}, not an exact division; only output size 1 or a divisor of the "
            f"input size is exported")
    attrs = dict(kernel_shape=[h // ho, w // wo], strides=[h // ho, w // wo])
    if isinstance(y, QTensor) and not cv.qdq:
        _need_q(x, call)
        return g.node("QLinearAveragePool",
                      [x.name, g.scale_const(x.scale), g.zp_const(x.zero_point, x.elem),
                       g.scale_const(y.q_scale()),
                       g.zp_const(y.q_zero_point(), _ELEM[y.dtype])],
                      call.name, name=call.name, domain=MS_DOMAIN, **attrs)
    return cv.float_op("AveragePool", [x], y, call.name, **attrs)


def _reshape_to(cv, call, x, out_shape, start_dim=None):
    """Flatten(axis) when the result is 2-d with the leading dims merged, else Reshape
    to ``out_shape`` (the batch dimension kept as 0 = "as in the input")."""
    y, g = call.out, cv.g
    in_shape = tuple(x.shape)
    if (len(out_shape) == 2 and start_dim is not None and 0 < start_dim < len(in_shape)
            and int(np.prod(in_shape[:start_dim])) == out_shape[0]):
        op, ins, attrs = "Flatten", [], {"axis": int(start_dim)}
    else:
        shape = list(out_shape)
        if shape and in_shape and shape[0] == in_shape[0]:
            shape[0] = 0
        op, ins, attrs = "Reshape", [g.const("shape", np.asarray(shape, np.int64))], {}
    if isinstance(y, QTensor) and not cv.qdq:
        return g.node(op, [_need_q(x, call).name] + ins, call.name, name=call.name, **attrs)
    return cv.float_op(op, [x] + [_Name(n) for n in ins], y, call.name, **attrs)


class _Name(Value):
    """An existing tensor name passed to :meth:`Converter.float_op` as it is."""

    def __init__(self, name):
        super().__init__(name, "f", ())


def _flatten_module(cv, call, x):
    mod = call.target
    start = mod.start_dim % max(len(x.shape), 1)
    end = mod.end_dim % max(len(x.shape), 1)
    return _reshape_to(cv, call, x, tuple(np.shape(_data(call.out))),
                       start if end == len(x.shape) - 1 else None)


def _data(obj):
    return obj if isinstance(obj, QTensor) else getattr(obj, "data", obj)


def _identity(cv, call, x, *args, **kwargs):
    if isinstance(x, Value) and x.quantized and not isinstance(call.out, QTensor):
        return cv.g.dequantize(x, call.name, name=call.name)
    return x


def _float_linear(cv, call, x):
    mod, g = call.target, cv.g
    base = call.name
    w = np.asarray(mod.weight.data, np.float32)
    wname = g.const(base + ".weight", w if len(x.shape) == 2 else np.ascontiguousarray(w.T))
    xf = cv.as_float(x)
    if len(x.shape) == 2:
        ins = [xf, wname] + ([g.const(base + ".bias", mod.bias.data)]
                             if mod.bias is not None else [])
        return g.node("Gemm", ins, base, name=base, transB=1)
    r = g.node("MatMul", [xf, wname], base + ("_mm" if mod.bias is not None else ""),
               name=base)
    if mod.bias is not None:
        r = g.node("Add", [r, g.const(base + ".bias", mod.bias.data)], base,
                   name=base + "/bias")
    return r


def _float_conv(cv, call, x):
    mod, g = call.target, cv.g
    base = call.name
    ins = [cv.as_float(x), g.const(base + ".weight", np.asarray(mod.weight.data, np.float32))]
    if mod.bias is not None:
        ins.append(g.const(base + ".bias", np.asarray(mod.bias.data, np.float32)))
    attrs = dict(kernel_shape=list(_int_pair(mod.kernel_size)),
                 strides=list(_int_pair(mod.stride)),
                 dilations=list(_int_pair(mod.dilation)), group=int(mod.groups))
    if isinstance(mod.padding, str):
        raise UnsupportedModuleError(f"qlearn.onnx.export: {call.name!r} "
                                     f"({type(mod).__name__}) uses string padding "
                                     f"{mod.padding!r}; give numbers")
    if getattr(mod, "padding_mode", "zeros") != "zeros":
        raise UnsupportedModuleError(f"qlearn.onnx.export: {call.name!r} "
                                     f"({type(mod).__name__}) pads by "
                                     f"{mod.padding_mode!r}; only zero padding exports")
    p = list(_int_pair(mod.padding))
    attrs["pads"] = p + p
    return g.node("Conv", ins, base, name=base, **attrs)


def _unary(op_type):
    def convert(cv, call, x):
        return cv.float_op(op_type, [x], call.out, call.name)
    convert.__name__ = f"_{op_type.lower()}"
    return convert


# ---- normalisation ---------------------------------------------------------------------
def _float_node(cv, op_type, names, out_obj, base, **attrs):
    """``op_type`` on float tensor names, quantized after when ``out_obj`` is."""
    if isinstance(out_obj, QTensor):
        y = cv.g.node(op_type, names, base + "_f", name=base, **attrs)
        return cv.requantize(y, out_obj, base)
    return cv.g.node(op_type, names, base, name=base, **attrs)


def _affine_consts(cv, mod, n, base):
    w = getattr(mod, "weight", None)
    b = getattr(mod, "bias", None)
    w = np.ones(n, np.float32) if w is None else np.asarray(_data(w), np.float32)
    b = np.zeros(n, np.float32) if b is None else np.asarray(_data(b), np.float32)
    return cv.g.const(base + "_scale", w.reshape(-1) if w.ndim == 1 else w), \
        cv.g.const(base + "_bias", b.reshape(-1) if b.ndim == 1 else b)


def _layer_norm(cv, call, x):
    mod, base = call.target, call.name
    shape = tuple(mod.normalized_shape)
    w, b = _affine_consts(cv, mod, int(np.prod(shape)), base)
    w = cv.g.node("Reshape", [w, cv.g.const("shape", np.asarray(shape, np.int64))],
                  base + "_scale_r", name=base + "/scale") if len(shape) > 1 else w
    b = cv.g.node("Reshape", [b, cv.g.const("shape", np.asarray(shape, np.int64))],
                  base + "_bias_r", name=base + "/bias") if len(shape) > 1 else b
    return _float_node(cv, "LayerNormalization", [cv.as_float(x), w, b], call.out, base,
                       axis=-len(shape), epsilon=float(mod.eps))


def _instance_norm(cv, call, x):
    mod, base = call.target, call.name
    C = x.shape[1]
    w, b = _affine_consts(cv, mod, C, base)
    return _float_node(cv, "InstanceNormalization", [cv.as_float(x), w, b], call.out,
                       base, epsilon=float(mod.eps))


def _group_norm(cv, call, x):
    # InstanceNormalization over (N, G, -1) is group norm without the affine step
    mod, base, g = call.target, call.name, cv.g
    shape = tuple(x.shape)
    G = int(mod.num_groups)
    xf = cv.as_float(x)
    grouped = g.node("Reshape", [xf, g.const("shape", np.asarray([0, G, -1], np.int64))],
                     base + "_grouped", name=base + "/group")
    normed = g.node("InstanceNormalization",
                    [grouped, g.const("ones", np.ones(G, np.float32)),
                     g.const("zeros", np.zeros(G, np.float32))], base + "_normed",
                    name=base + "/norm", epsilon=float(mod.eps))
    back = g.node("Shape", [xf], base + "_shape", name=base + "/shape")
    y = g.node("Reshape", [normed, back], base + "_ungrouped", name=base + "/ungroup")
    if getattr(mod, "weight", None) is not None or getattr(mod, "bias", None) is not None:
        w, b = _affine_consts(cv, mod, shape[1], base)
        per_channel = np.asarray([shape[1]] + [1] * (len(shape) - 2), np.int64)
        w = g.node("Reshape", [w, g.const("shape", per_channel)], base + "_w",
                   name=base + "/w")
        b = g.node("Reshape", [b, g.const("shape", per_channel)], base + "_b",
                   name=base + "/b")
        y = g.node("Mul", [y, w], base + "_scaled", name=base + "/mul")
        y = g.node("Add", [y, b], base + "_shifted", name=base + "/add")
    out = call.out
    if isinstance(out, QTensor):
        return cv.requantize(y, out, base)
    return y


def _prelu(cv, call, x):
    w, g, base = call.target.weight, cv.g, call.name
    slope = np.asarray(w.dequantize() if isinstance(w, QTensor) else _data(w), np.float32)
    if slope.size > 1:          # one slope per channel (axis 1), broadcast from the right
        slope = slope.reshape((slope.size,) + (1,) * (len(x.shape) - 2))
    one = np.float32(1)
    if isinstance(w, QTensor):  # nnq.PReLU's positive slope is the quantized 1, S_w (Q_w(1) - Z_w)
        one = quantize_per_tensor(np.float32(1), w.q_scale(), w.q_zero_point(),
                                  w.dtype).dequantize().astype(np.float32).reshape(())
    xf = cv.as_float(x)
    if one == 1:
        return _float_node(cv, "PRelu", [xf, g.const("slope", slope)], call.out, base)
    # y = one * relu(x) - slope * relu(-x): a quint8 slope scale that cannot hold 1
    pos = g.node("Relu", [xf], base + "_pos", name=base + "/pos")
    pos = g.node("Mul", [pos, g.const("one", one)], base + "_pos_s", name=base + "/pos_s")
    neg = g.node("Neg", [xf], base + "_negx", name=base + "/negx")
    neg = g.node("Relu", [neg], base + "_neg", name=base + "/neg")
    neg = g.node("Mul", [neg, g.const("slope", -slope)], base + "_neg_s",
                 name=base + "/neg_s")
    return _float_node(cv, "Add", [pos, neg], call.out, base)


def _elu(cv, call, x):
    return cv.float_op("Elu", [x], call.out, call.name, alpha=float(call.target.alpha))


# ---- binary operators (QFunctional / FloatFunctional / graph functions) ------------------
_QBINARY = {"add": "QLinearAdd", "mul": "QLinearMul"}
_FBINARY = {"add": "Add", "mul": "Mul"}


def _binary(cv, call, kind, a, b, relu=False):
    y, g = call.out, cv.g
    base = call.name
    integer = (isinstance(y, QTensor) and not cv.qdq and isinstance(a, Value) and a.quantized
               and isinstance(b, Value) and b.quantized)
    if not integer:
        names = [cv.as_float(a), cv.as_float(b)]
        r = g.node(_FBINARY[kind], names, base + ("_f" if relu or isinstance(y, QTensor)
                                                  else ""), name=base)
        if relu:
            r = g.node("Relu", [r], base + ("_relu" if isinstance(y, QTensor) else ""),
                       name=base + "/relu")
        return cv.requantize(r, y, base) if isinstance(y, QTensor) else r
    ys, yz, elem = y.q_scale(), y.q_zero_point(), _ELEM[y.dtype]
    ins = [a.name, g.scale_const(a.scale), g.zp_const(a.zero_point, a.elem),
           b.name, g.scale_const(b.scale), g.zp_const(b.zero_point, b.elem),
           g.scale_const(ys), g.zp_const(yz, elem)]
    out = g.node(_QBINARY[kind], ins, base, name=base, domain=MS_DOMAIN)
    if relu and yz != 0:
        out = cv.clamp_u8(out, yz, _qmax(elem), elem, base + "_relu")
    return out


def _cat(cv, call, tensors, dim=0):
    y, g = call.out, cv.g
    tensors = list(tensors)
    ndim = len(tensors[0].shape) if isinstance(tensors[0], Value) else np.ndim(tensors[0])
    axis = int(dim) % max(ndim, 1)
    if isinstance(y, QTensor) and not cv.qdq and all(
            isinstance(t, Value) and t.quantized for t in tensors):
        ins = [g.scale_const(y.q_scale()), g.zp_const(y.q_zero_point(), _ELEM[y.dtype])]
        for t in tensors:
            ins += [t.name, g.scale_const(t.scale), g.zp_const(t.zero_point, t.elem)]
        return g.node("QLinearConcat", ins, call.name, name=call.name, domain=MS_DOMAIN,
                      axis=axis)
    return cv.float_op("Concat", tensors, y, call.name, axis=axis)


def _functional(cv, call, *args, **kwargs):
    meth = call.method
    if meth in ("add", "mul"):
        return _binary(cv, call, meth, *args, **kwargs)
    if meth == "add_relu":
        return _binary(cv, call, "add", *args, relu=True)
    if meth in ("add_scalar", "mul_scalar"):
        return _binary(cv, call, meth[:3], args[0], np.float32(args[1]))
    if meth == "cat":
        return _cat(cv, call, *args, **kwargs)
    raise UnsupportedModuleError(f"qlearn.onnx.export: {call.name!r}: "
                                 f"{call.type_name}.{meth} has no ONNX conversion")


# ---- graph functions and methods (qlearn.fx) -------------------------------------------
def _fn_quantize(cv, call, x, scale, zero_point, dtype):
    return cv.g.quantize(cv.as_float(x), float(np.asarray(scale).reshape(-1)[0]),
                         int(np.asarray(zero_point).reshape(-1)[0]), _ELEM[dtype],
                         call.name, name=call.name)


def _fn_binary(kind, relu=False):
    def convert(cv, call, a, b, *rest, **kwargs):
        return _binary(cv, call, kind, a, b, relu=relu)
    return convert


def _fn_relu(cv, call, x, *args, **kwargs):
    return _relu(cv, call, x)


def _fn_flatten(cv, call, x, start_dim=0, end_dim=-1):
    n = max(len(x.shape), 1)
    start, end = int(start_dim) % n, int(end_dim) % n
    return _reshape_to(cv, call, x, tuple(np.shape(_data(call.out))),
                       start if end == n - 1 else None)


def _fn_reshape(cv, call, x, *shape):
    return _reshape_to(cv, call, x, tuple(np.shape(_data(call.out))))


class _PoolSpec:
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 return_indices=False):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode


def _fn_max_pool(cv, call, x, *args, **kwargs):
    spec = _PoolSpec(*args, **kwargs)
    fake = type(call)(**{**call.__dict__, "target": spec})
    return _max_pool(cv, fake, x)


def _fn_adaptive_avg_pool(cv, call, x, *args, **kwargs):
    return _adaptive_avg_pool(cv, call, x)


def _fn_cat(cv, call, tensors, dim=0, *args, **kwargs):
    return _cat(cv, call, tensors, dim)


class _NormSpec:
    """The attributes of a normalisation module, from a graph function's arguments."""

    def __init__(self, call, **attrs):
        for name in ("weight", "bias"):
            if isinstance(attrs.get(name), Value):
                raise UnsupportedModuleError(
                    f"qlearn.onnx.export: {call.name!r}: a {name} computed in the graph "
                    f"is not exported; make it a parameter of a module")
        self.__dict__.update(attrs)


def _spec_call(call, **attrs):
    return type(call)(**{**call.__dict__, "target": _NormSpec(call, **attrs)})


def _fn_layer_norm(cv, call, x, normalized_shape, weight=None, bias=None, eps=1e-5,
                   **kwargs):
    shape = (normalized_shape,) if np.ndim(normalized_shape) == 0 else normalized_shape
    return _layer_norm(cv, _spec_call(call, normalized_shape=tuple(shape), weight=weight,
                                      bias=bias, eps=eps), x)


def _fn_instance_norm(cv, call, x, *args, **kwargs):
    if call.target is qF.instance_norm:
        names = ("weight", "bias", "eps")
    else:   # F.instance_norm(input, running_mean, running_var, weight, bias, ...)
        names = ("running_mean", "running_var", "weight", "bias", "use_input_stats",
                 "momentum", "eps")
    got = dict(zip(names, args), **kwargs)
    return _instance_norm(cv, _spec_call(call, weight=got.get("weight"),
                                         bias=got.get("bias"), eps=got.get("eps", 1e-5)), x)


def _fn_group_norm(cv, call, x, num_groups, weight=None, bias=None, eps=1e-5, **kwargs):
    return _group_norm(cv, _spec_call(call, num_groups=num_groups, weight=weight,
                                      bias=bias, eps=eps), x)


def _fn_hardswish(cv, call, x, *args, **kwargs):
    return cv.float_op("HardSwish", [x], call.out, call.name)


def _fn_elu(cv, call, x, *args, **kwargs):
    if call.target is qF.elu:      # qF.elu(input, scale, zero_point, alpha=1.0)
        alpha = args[2] if len(args) > 2 else kwargs.get("alpha", 1.0)
    else:                           # F.elu(input, alpha=1.0, inplace=False)
        alpha = args[0] if args else kwargs.get("alpha", 1.0)
    return cv.float_op("Elu", [x], call.out, call.name, alpha=float(alpha))


def _static(cv, call, *args, **kwargs):
    """A shape computation (``x.shape``, ``x.size(0)``, ``shape[0]``): its Python result
    is a constant of the exported graph, which has the example's shapes."""
    from .walk import is_tensor
    if is_tensor(call.out):
        raise UnsupportedModuleError(
            f"qlearn.onnx.export: graph node {call.name!r} ({call.type_name}) gives a "
            f"tensor, which has no ONNX conversion")
    return None


#: module type -> conversion (looked up by exact type, then along the type's MRO).
MODULE_CONVERSIONS = {
    nnq.Quantize: _quantize,
    nnq.DeQuantize: _dequantize,
    nnq.Conv2d: _qconv,
    nniq.ConvReLU2d: _qconv,
    nnq.Conv1d: _qconv,
    nniq.ConvReLU1d: _qconv,
    nnq.Conv3d: _qconv,
    nniq.ConvReLU3d: _qconv,
    nnq.Linear: _qlinear,
    nniq.LinearReLU: _qlinear,
    nnqd.Linear: _dynamic_linear,
    nnq.ReLU: _relu,
    nnq.ReLU6: _relu6,
    nnq.MaxPool2d: _max_pool,
    nnq.AdaptiveAvgPool2d: _adaptive_avg_pool,
    nnq.QFunctional: _functional,
    nnq.FloatFunctional: _functional,
    nn.Linear: _float_linear,
    nn.Conv2d: _float_conv,
    nn.Conv1d: _float_conv,
    nn.Conv3d: _float_conv,
    nn.ReLU: _relu,
    nn.ReLU6: _relu6,
    nn.Sigmoid: _unary("Sigmoid"),
    nn.Tanh: _unary("Tanh"),
    nn.MaxPool2d: _max_pool,
    nn.AdaptiveAvgPool2d: _adaptive_avg_pool,
    nn.Flatten: _flatten_module,
    nn.Identity: _identity,
    nn.Dropout: _identity,
    # normalisation and activations: float operators (between DQ and Q when quantized)
    nn.LayerNorm: _layer_norm,
    nn.GroupNorm: _group_norm,
    nn.InstanceNorm1d: _instance_norm,
    nn.InstanceNorm2d: _instance_norm,
    nn.InstanceNorm3d: _instance_norm,
    nn.Hardswish: _unary("HardSwish"),
    nnq.Hardswish: _unary("HardSwish"),
    nn.ELU: _elu,
    nnq.ELU: _elu,
    nn.PReLU: _prelu,
    nnq.PReLU: _prelu,
}

#: ``*Functional`` methods converted (the module's calls are recorded per method).
FUNCTIONAL_CONVERSIONS = {"add": "Add / QLinearAdd", "add_relu": "Add+Relu / QLinearAdd",
                          "mul": "Mul / QLinearMul", "cat": "Concat / QLinearConcat",
                          "add_scalar": "DQ, Add, Q", "mul_scalar": "DQ, Mul, Q"}

#: graph ``call_function`` target -> conversion.
FUNCTION_CONVERSIONS = {
    quantize_per_tensor: _fn_quantize,
    dequantize: _dequantize,
    qF.add: _fn_binary("add"),
    qF.add_relu: _fn_binary("add", relu=True),
    qF.mul: _fn_binary("mul"),
    qF.add_scalar: _fn_binary("add"),    # DQ, Add, Q to the output's (moved) qparams
    qF.mul_scalar: _fn_binary("mul"),
    qF.cat: _fn_cat,
    qF.relu: _fn_relu,
    qF.max_pool2d: _fn_max_pool,
    qF.adaptive_avg_pool2d: _fn_adaptive_avg_pool,
    F.relu: _fn_relu,
    F.flatten: _fn_flatten,
    qF.layer_norm: _fn_layer_norm,
    qF.instance_norm: _fn_instance_norm,
    qF.hardswish: _fn_hardswish,
    qF.elu: _fn_elu,
    F.layer_norm: _fn_layer_norm,
    F.instance_norm: _fn_instance_norm,
    F.group_norm: _fn_group_norm,
    F.hardswish: _fn_hardswish,
    F.elu: _fn_elu,
    operator.add: _fn_binary("add"),
    operator.mul: _fn_binary("mul"),
    getattr: _static,
    operator.getitem: _static,
    len: _static,
}

#: graph ``call_method`` name -> conversion.
METHOD_CONVERSIONS = {
    "dequantize": _dequantize,
    "relu": _fn_relu,
    "flatten": _fn_flatten,
    "reshape": _fn_reshape,
    "view": _fn_reshape,
    "contiguous": _identity,
    "size": _static,
    "dim": _static,
    "q_scale": _static,
    "q_zero_point": _static,
}

# the torch-namespace functions (``ql.cat``, ``ql.flatten``, ``ql.reshape``) a traced
# float part of a model may call
for _name, _conversion in (("cat", _fn_cat), ("flatten", _fn_flatten),
                           ("reshape", _fn_reshape)):
    _fn = getattr(autograd, _name, None)
    if callable(_fn):
        FUNCTION_CONVERSIONS.setdefault(_fn, _conversion)

# the dequantize nodes of a convert_fx graph (a float qlearn.Tensor, as torch's
# x.dequantize() is a float tensor)
from ..quantization.fx.convert import dequantize as _graph_dequantize  # noqa: E402

FUNCTION_CONVERSIONS[_graph_dequantize] = _dequantize


def module_conversion(mod):
    """The conversion of ``mod``, or None.

    >>> from qlearn import nn
    >>> from qlearn.onnx.ops import module_conversion
    >>> module_conversion(nn.Flatten()).__name__, module_conversion(nn.GRU(2, 2))
    ('_flatten_module', None)
    """
    for cls in type(mod).__mro__:
        if cls in MODULE_CONVERSIONS:
            return MODULE_CONVERSIONS[cls]
    return None
