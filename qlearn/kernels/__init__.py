"""The kernel boundary: the one layer between the compiled kernels and the core types.

Each compiled module of ``qlearn._ext`` is imported by exactly one module here (a test,
``tests/test_kernel_boundary.py``, fails on any other import):

=========================  ==========================================================
module                     wraps
=========================  ==========================================================
:mod:`.simd`               ``_cpu``: the CPU's features; the one place that reads
                           ``QLEARN_SIMD`` and chooses the SIMD path (:class:`.Simd`)
:mod:`.threads`            ``_openmp``: the thread count
:mod:`.quantize`           ``_quantize``, ``_qtensor``: quantize / dequantize, QTensor
:mod:`.fake_quant`         ``_fake_quant``: fake quantization, STE, LSQ, aminmax
:mod:`.observer`           ``_observer``: min/max, histogram, the histogram searches
:mod:`.quantizers`         ``_quantizers``: Distiller's clip-and-round, PACT, DoReFa
:mod:`.float_conv`         ``_im2col``, ``_pool``: float convolution and pooling
:mod:`.int8`               ``_qgemm``, ``_qconv``: int8 GEMM and convolution
:mod:`.float_qparams`      ``_float_qparams``: quantize / dequantize with float zero
                           points, the quantized embedding lookup
:mod:`.embedding`          ``_embedding``: the float embedding-bag reductions
:mod:`.norm`               ``_qnorm``: quantized layer / group / instance norm, the
                           quantized batch norm's map
:mod:`.lookup`             ``_lookup``: the table lookup of the quantized element-wise
                           maps
=========================  ==========================================================

A wrapper makes arrays what its kernel needs (dtype, C-contiguous), resolves the thread
count and the SIMD path and passes them as plain ints, and reports NaN where the kernel
reports it.  Checking the user's arguments (and the error messages) belongs to the
layer above.  Every kernel has a NumPy twin named ``<kernel>_ref`` in
:mod:`qlearn.reference`, written as the equation; the tests hold the kernels to it bit
for bit on every SIMD path.
"""
from . import simd, threads

__all__ = ["simd", "threads"]
