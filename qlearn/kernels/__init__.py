"""Array-level wrappers of the compiled kernels (``qlearn._ext``): each makes arrays what
its kernel needs (dtype, C-contiguous, the ``(outer, C, inner)`` per-channel view),
passes the thread count and the SIMD path, and reports NaN; the user's arguments are
checked by the layer above.

=========================  ==========================================================
module                     wraps
=========================  ==========================================================
:mod:`.float_qparams`      ``_float_qparams``: quantize / dequantize with float zero
                           points, the quantized embedding lookup
:mod:`.embedding`          ``_embedding``: the float embedding-bag reductions
=========================  ==========================================================
"""
