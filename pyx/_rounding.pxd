# Round half to even in float32 without a libm call, shared by the kernels' portable
# loops (baseline x86-64 has no rounding instruction, so nearbyintf is a function call).
from libc.math cimport copysignf, fabsf


cdef inline float nearbyint32(float v) noexcept nogil:
    """nearbyintf(v): for |v| < 2^23, |v| + 2^23 lies in [2^23, 2^24), where float32
    steps are exactly 1, so the addition itself rounds to the nearest integer, ties to
    even; larger values are integers already (and NaN / infinity pass through)."""
    cdef float a = fabsf(v)
    cdef float two_23 = 8388608.0  # typed: a bare literal is a double; the add must round in float
    if not (a < two_23):
        return v
    return copysignf((a + two_23) - two_23, v)
