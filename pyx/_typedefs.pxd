# Shared C types of the qlearn kernels.
from libc.stdint cimport int8_t, uint8_t, int16_t, int32_t, int64_t

ctypedef float float32_t
ctypedef double float64_t
ctypedef Py_ssize_t intp_t

# The storage types of the quantized dtypes (quint8, qint8, qint32).
ctypedef fused qstore_t:
    uint8_t
    int8_t
    int32_t
