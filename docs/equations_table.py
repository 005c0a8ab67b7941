"""The one table of equations: every labelled equation of the docs, where it comes from,
the page that derives it and the functions that compute it.

``docs/_ext/equations.py`` turns it into the Equations page and checks it during the
build: each label must be defined on the page given here, and each function must import.
This file imports nothing from qlearn, so it can be read (and checked) on its own.

A row is ``Eq(label, formula, sources, page, functions)``:

* ``label``: the label of the displayed equation (``:label:`` in reST, ``$$ ... $$ (label)``
  in MyST);
* ``formula``: a short LaTeX form for the index (the page has the full one);
* ``sources``: keys of :data:`SOURCES` (the documents the equation comes from), or
  ``"derived"`` for equations qlearn's docs derive themselves;
* ``page``: the docname of the page that typesets the equation with its label;
* ``functions``: dotted names of the functions or classes computing it.
"""
from collections import namedtuple

Eq = namedtuple("Eq", ["label", "formula", "sources", "page", "functions"])

#: key -> (title, anchor on the Sources page)
SOURCES = {
    "schemes": ("Quantization schemes", "src-schemes"),
    "by-hand": ("Quantization by hand", "src-by-hand"),
    "distiller": ("Distiller's quantization notes", "src-distiller"),
    "practical": ("Practical Quantization in PyTorch", "src-practical"),
    "design": ("PyTorch's quantization design notes", "src-design"),
    "derived": ("derived in these docs", None),
}

EQUATIONS = [
    # -- the affine map and its parameters ------------------------------------------------
    Eq("quantize", r"Q(r) = \mathrm{clamp}(\mathrm{round}(r/S + Z), \alpha_q, \beta_q)",
       ("practical", "distiller", "by-hand"), "math",
       ("qlearn.quantize_per_tensor", "qlearn.reference.quantize_per_tensor_ref")),
    Eq("dequantize", r"\hat r = S\,(Q(r) - Z)", ("practical", "by-hand"), "math",
       ("qlearn.dequantize", "qlearn.QTensor.dequantize",
        "qlearn.reference.dequantize_per_tensor_ref")),
    Eq("scale", r"S = (\beta - \alpha) / (\beta_q - \alpha_q)", ("practical", "by-hand"),
       "math", ("qlearn.quantization.qparams.calculate_qparams",)),
    Eq("zero-point", r"Z = \alpha_q - \alpha / S", ("practical", "by-hand"), "math",
       ("qlearn.quantization.qparams.calculate_qparams",)),
    Eq("per-channel", r"Q(r)_c = \mathrm{clamp}(\mathrm{round}(r_c/S_c + Z_c), \alpha_q, \beta_q)",
       ("schemes", "design"), "math",
       ("qlearn.quantize_per_channel", "qlearn.reference.quantize_per_channel_ref")),
    Eq("float-qparams", r"q_c = \mathrm{clamp}(\mathrm{nearbyint}(r_c S_c^{-1} + Z_c), "
       r"\alpha_q, \beta_q),\ Z_c \in \mathbb{R}", ("schemes",), "math",
       ("qlearn.float_qparams.quantize_per_channel_float_qparams",
        "qlearn.quantize_per_channel")),
    Eq("float-qparams-range", r"S_c = (\beta_c - \alpha_c)/(\beta_q - \alpha_q),\ "
       r"Z_c = -\alpha_c / S_c", ("schemes",), "math",
       ("qlearn.quantization.qparams.calculate_qparams",
        "qlearn.quantization.observer.PerChannelMinMaxObserver")),
    # -- calibration -------------------------------------------------------------------------
    Eq("qp-range", r"\alpha' = \min(\alpha, 0),\ \beta' = \max(\beta, 0)",
       ("practical", "by-hand"), "calibration",
       ("qlearn.quantization.qparams.calculate_qparams",)),
    Eq("qp-affine", r"S = \max\big(\tfrac{\beta' - \alpha'}{Q_\max - Q_\min}, \epsilon\big),\ "
       r"Z = Q_\min - \mathrm{round}(\alpha'/S)", ("practical", "schemes"), "calibration",
       ("qlearn.quantization.qparams.calculate_qparams",)),
    Eq("qp-symmetric", r"S = \max\big(\tfrac{\max(-\alpha', \beta')}{(Q_\max - Q_\min)/2}, "
       r"\epsilon\big)", ("practical", "schemes"), "calibration",
       ("qlearn.quantization.qparams.calculate_qparams",)),
    Eq("cal-minmax", r"x_\min \leftarrow \min(x_\min, \min X)", ("practical", "schemes"),
       "calibration", ("qlearn.quantization.observer.MinMaxObserver",)),
    Eq("cal-ema", r"m_t = m_{t-1} + c\,(\min X_t - m_{t-1})", ("schemes", "practical"),
       "calibration", ("qlearn.quantization.observer.MovingAverageMinMaxObserver",
                       "qlearn.quantization.observer.MovingAveragePerChannelMinMaxObserver")),
    # -- quantization-aware training --------------------------------------------------------
    Eq("qat-fq", r"\hat x = (\mathrm{clamp}(\mathrm{round}(x/S) + Z, q_\min, q_\max) - Z)\,S",
       ("practical", "design"), "qat",
       ("qlearn.fake_quantize_per_tensor_affine",
        "qlearn.quantization.fake_quantize.FakeQuantize")),
    Eq("qat-ste", r"\partial L/\partial x = \partial L/\partial \hat x \cdot "
       r"\mathbb{1}[q_\min \le q \le q_\max]", ("practical",), "qat",
       ("qlearn.fake_quantize_per_tensor_affine",)),
    Eq("qat-lsq", r"\partial \hat x / \partial S,\ \partial \hat x / \partial Z",
       ("practical",), "qat", ("qlearn.quantization.fake_quantize.LearnableFakeQuantize",)),
    # -- Distiller's quantizers -------------------------------------------------------------
    Eq("rl-distiller", r"x_q = \mathrm{round}(x_f\,\tfrac{2^k - 1}{\max x_f - \min x_f} - zp)",
       ("distiller",), "quantizers/range_linear",
       ("qlearn.quantizers.range_linear.linear_quantize",
        "qlearn.quantizers.range_linear.linear_quantization_params")),
    Eq("rl-asymmetric", r"S = \tfrac{\max(\beta, 0) - \min(\alpha, 0)}{2^k - 1}",
       ("distiller",), "quantizers/range_linear",
       ("qlearn.quantizers.range_linear.linear_quantization_params",)),
    Eq("rl-symmetric", r"S = \tfrac{\max(|\alpha|, |\beta|)}{2^{k-1} - 1}", ("distiller",),
       "quantizers/range_linear",
       ("qlearn.quantizers.range_linear.linear_quantization_params",
        "qlearn.quantizers.range_linear_quantize")),
    Eq("dorefa-quantize-k", r"\mathrm{quantize}_k(x) = \mathrm{round}((2^k - 1) x)/(2^k - 1)",
       ("distiller",), "quantizers/dorefa", ("qlearn.quantizers.dorefa_quantize_activation",)),
    Eq("dorefa-activation", r"a_q = \mathrm{quantize}_k(\mathrm{clamp}(a, 0, 1))",
       ("distiller",), "quantizers/dorefa", ("qlearn.quantizers.dorefa_quantize_activation",
                                             "qlearn.quantizers.wrpn_quantize_activation")),
    Eq("dorefa-weight", r"w_q = 2\,\mathrm{quantize}_k\big(\tfrac{\tanh w}{2\max|\tanh w|} + "
       r"\tfrac12\big) - 1", ("distiller",), "quantizers/dorefa",
       ("qlearn.quantizers.dorefa_quantize_weight",)),
    Eq("dorefa-grad", r"\partial L / \partial w_j", ("derived",), "quantizers/dorefa",
       ("qlearn.quantizers._ste.DorefaWeightSTE",)),
    Eq("pact-forward", r"y_q = \mathrm{round}\big(\mathrm{clamp}(x, 0, \alpha)\,"
       r"\tfrac{2^k - 1}{\alpha}\big)\tfrac{\alpha}{2^k - 1}", ("distiller",),
       "quantizers/pact", ("qlearn.quantizers.pact_quantize", "qlearn.quantizers.PACTReLU")),
    Eq("pact-backward", r"\partial y_q/\partial x,\ \partial y_q/\partial \alpha",
       ("distiller",), "quantizers/pact", ("qlearn.quantizers._ste.PACTSTE",)),
    Eq("wrpn-weight", r"w_q = \mathrm{round}((2^{k-1} - 1)\,\mathrm{clamp}(w, -1, 1))"
       r"/(2^{k-1} - 1)", ("distiller",), "quantizers/wrpn",
       ("qlearn.quantizers.wrpn_quantize_weight",)),
    # -- int8 kernels -----------------------------------------------------------------------
    Eq("int8-affine", r"x = S_a (q_a - Z_a),\ w_j = S_{w,j} (q_{w,j} - Z_{w,j})",
       ("design", "distiller"), "int8", ("qlearn.nn.quantized.Linear",)),
    Eq("int8-real-matmul", r"S_o (q_y - Z_o) = S_a S_w \sum_k (q_a - Z_a)(q_w - Z_w) + b",
       ("distiller", "design"), "int8", ("qlearn.nn.quantized.functional.linear",)),
    Eq("int8-acc", r"C_{ij} = \sum_k (q_{a,ik} - Z_a)(q_{w,jk} - Z_{w,j})",
       ("distiller",), "int8", ("qlearn._ext._qgemm.gemm_ref",)),
    Eq("int8-expansion", r"C = \sum q_a q_w - Z_a\,\mathrm{colsum}' - Z_w\,\mathrm{rowsum}",
       ("distiller",), "int8",
       ("qlearn._ext._qgemm.gemm", "qlearn.nn.quantized.packed_params.PackedLinearWeight")),
    Eq("int8-pack", r"\mathrm{packed}[(pK_g + g)\,64 + 4c + t] = w_{16p + c, 4g + t}",
       ("derived",), "int8", ("qlearn._ext._qgemm.pack_weight",)),
    Eq("int8-requant", r"q_y = \mathrm{clamp}(\mathrm{nearbyint}((C + \beta_j) M_j) + Z_o)",
       ("design",), "int8", ("qlearn.nn.quantized.functional.linear",
                             "qlearn.nn.quantized.Linear")),
    Eq("int8-split", r"q_a = \ell_a + 128\,h_a", ("derived",), "int8",
       ("qlearn._ext._qgemm.gemm",)),
    Eq("int8-dynamic", r"y = C\,S_a S_{w,j} + b_j", ("design", "practical"), "int8",
       ("qlearn.nn.quantized.dynamic.Linear", "qlearn.nn.quantized.dynamic.LSTM")),
    Eq("int8-depthwise", r"C_{n,y,x,c} = \sum_{i<k_h,\,j<k_w} (q_a - Z_a)(q_{w,c,i,j} - Z_{w,c})",
       ("derived",), "int8", ("qlearn._ext._qconv.depthwise",)),
    Eq("int8-bias", r"b_q = \mathrm{round}(b / (S_a S_w)),\ Z_b = 0", ("design",), "int8",
       ("qlearn.quantize_per_tensor", "qlearn.nn.quantized.functional.linear")),
    Eq("int8-memory", r"\mathrm{bytes}_{\mathrm{fp32}} / \mathrm{bytes}_{\mathrm{int8}} \to 4",
       ("design", "practical"), "claims", ("qlearn.QTensor",)),
    Eq("int8-speedup", r"t_{\mathrm{fp32}} / t_{\mathrm{int8}}", ("design",), "claims",
       ("qlearn.nn.quantized.Linear", "qlearn.nn.quantized.dynamic.Linear")),
    # -- fusion -----------------------------------------------------------------------------
    Eq("bn-fold-weight", r"W'_o = W_o\,\gamma_o / \sqrt{\sigma^2_o + \epsilon}",
       ("practical",), "fusion", ("qlearn.quantization.fuse_conv_bn_eval",
                                  "qlearn.quantization.fuse_linear_bn_eval")),
    Eq("bn-fold-bias", r"b'_o = (b_o - \mu_o)\,\gamma_o / \sqrt{\sigma^2_o + \epsilon} + "
       r"\beta_o", ("practical",), "fusion", ("qlearn.quantization.fuse_conv_bn_eval",
                                             "qlearn.quantization.fuse_linear_bn_eval")),
    Eq("bn-fold-qat", r"y = \mathrm{BN}(\mathrm{conv}(x, \mathrm{fq}(W s)) / s + b)",
       ("practical",), "fusion", ("qlearn.nn.intrinsic.qat.ConvBn2d",
                                  "qlearn.nn.intrinsic.qat.ConvBnReLU2d")),
    # -- debugging accuracy -----------------------------------------------------------------
    Eq("sqnr", r"\mathrm{SQNR}(x, y) = 20 \log_{10} \lVert x \rVert / \lVert x - y \rVert",
       ("practical",), "debugging", ("qlearn.quantization.metrics.compute_sqnr",)),
    Eq("normalized-l2", r"e = \lVert x - y \rVert / \lVert x \rVert,\ \cos(x, y)",
       ("derived",), "debugging",
       ("qlearn.quantization.metrics.compute_normalized_l2_error",
        "qlearn.quantization.metrics.compute_cosine_similarity")),
    Eq("clipping-fraction", r"c = |\{i : x_i/S + Z \notin [Q_\min - \tfrac12, Q_\max + "
       r"\tfrac12]\}| / n", ("derived",), "debugging",
       ("qlearn.quantization.metrics.clipping_fraction",
        "qlearn.quantization.metrics.saturation_count")),
    Eq("ns-accumulated", r"E_\ell = \mathrm{SQNR}(f_\ell \circ \dots \circ f_1(x), "
       r"\hat f_\ell \circ \dots \circ \hat f_1(x))", ("practical",), "debugging",
       ("qlearn.quantization.numeric_suite.compare_model_outputs",)),
    Eq("ns-per-layer", r"e_\ell = \mathrm{SQNR}(f_\ell(\hat x_\ell), \hat f_\ell(\hat x_\ell))",
       ("practical",), "debugging", ("qlearn.quantization.numeric_suite.compare_model_stub",)),
    # -- ONNX export ------------------------------------------------------------------------
    Eq("export-qdq", r"\mathrm{DQ}(q) = S(q - Z),\ \mathrm{Q}(r) = \mathrm{sat}(\mathrm{round}"
       r"(r/S) + Z)", ("derived",), "export", ("qlearn.onnx.export",)),
    Eq("export-int32-bias", r"q = \mathrm{clamp}(\mathrm{nearbyint}((C + b^{(32)}_j)\,M_j)"
       r" + Z_o)", ("design",), "export", ("qlearn.onnx.ops.int32_bias",)),
    # -- the tutorials ----------------------------------------------------------------------
    Eq("abs-error", r"e = |\hat t - t|", ("by-hand",), "tutorials/02_quantization_by_hand",
       ("qlearn.quantize_per_tensor",)),
    Eq("pct-error", r"e_\% = 100\,|\hat t - t| / |t|", ("by-hand",),
       "tutorials/02_quantization_by_hand", ("qlearn.quantize_per_tensor",)),
]
