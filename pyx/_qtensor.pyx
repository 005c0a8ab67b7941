# cython: boundscheck=False, wraparound=False
"""The quantized tensor: integers plus the affine map that gives them meaning.

A :class:`QTensor` stores ``q`` (uint8, int8 or int32) with one ``(scale, zero_point)``
pair, or one pair per slice along ``axis``, and represents the real values

.. math::  r = S\\,(q - Z).

Build one with :func:`qlearn.quantize_per_tensor` or :func:`qlearn.quantize_per_channel`;
the constructor checks its arguments (dtype of the integers, qparams, axis, channel counts).
"""
import numpy as np

cimport numpy as cnp


cnp.import_array()


cdef class QTensor:
    """A quantized tensor (see :func:`qlearn.quantize_per_tensor`).

    Attributes ``dtype`` (:data:`qlearn.quint8`, :data:`qlearn.qint8` or
    :data:`qlearn.qint32`), ``shape``, ``ndim`` and the methods named as PyTorch's
    (``int_repr``, ``dequantize``, ``q_scale``, ``q_zero_point``,
    ``q_per_channel_scales``, ``q_per_channel_zero_points``, ``q_per_channel_axis``,
    ``qscheme``).
    """
    cdef readonly cnp.ndarray _int       # the integers q, in the dtype's storage type
    cdef readonly object dtype            # qlearn.quint8 / qint8 / qint32
    cdef readonly object _qscheme
    cdef readonly double _scale           # per-tensor: S (float64, as PyTorch keeps it)
    cdef readonly long long _zero_point   # per-tensor: Z
    cdef readonly cnp.ndarray _scales     # per-channel: S_c, float64 (C,)
    cdef readonly cnp.ndarray _zero_points  # per-channel: Z_c, int64 (C,)
    # (per_channel_affine_float_qparams: both float32, as PyTorch stores them)
    cdef readonly int _axis               # per-channel: the channel axis, else -1

    def __init__(self, int_data, dtype, qscheme, scale=1.0, zero_point=0, scales=None,
                 zero_points=None, axis=-1):
        """Wrap ``int_data`` (checked: it must match ``dtype``, and the parameters must
        be valid for ``qscheme``; the arrays are not copied)."""
        cdef double s
        if _V is None:
            _load_checks()
        if type(dtype) is not _QDType:
            dtype = _V.check_dtype(dtype)
        if isinstance(int_data, np.generic):   # NumPy ops on 0-d arrays return scalars
            int_data = np.asarray(int_data)
        if not isinstance(qscheme, _QScheme):
            raise TypeError(f"`qscheme` must be a qlearn qscheme such as "
                            f"qlearn.per_tensor_affine, got {qscheme!r}")
        if not isinstance(int_data, np.ndarray):
            raise TypeError(f"`int_data` must be a NumPy array of {dtype.storage}, got "
                            f"{type(int_data).__name__}")
        if (<cnp.ndarray> int_data).dtype is not dtype.storage \
                and int_data.dtype != dtype.storage:
            raise TypeError(f"`int_data` must have dtype {dtype.storage} for {dtype!r}, "
                            f"got {int_data.dtype}")
        if (type(scale) is float and type(zero_point) is int and scales is None
                and zero_points is None and axis == -1 and not qscheme.is_per_channel):
            # the common case (every operator's output), checked without Python calls:
            # what check_scale and check_zero_point accept
            s = scale
            if (0 < s <= FLT_MAX and <float> s >= SMALLEST_SCALE
                    and dtype.quant_min <= zero_point <= dtype.quant_max):
                self._int = int_data
                self.dtype = dtype
                self._qscheme = qscheme
                self._scale = s
                self._zero_point = zero_point
                self._axis = -1
                return
        V = _V
        self._int = int_data
        self.dtype = dtype
        self._qscheme = qscheme
        if qscheme.is_per_channel:
            if int_data.ndim == 0:
                raise ValueError("`int_data` must have at least one dimension for a "
                                 "per-channel QTensor, got a 0-d array")
            ax = V.check_axis(axis, int_data.ndim)
            channels = int_data.shape[ax]
            if qscheme.is_float_qparams:
                if dtype.bits != 8:
                    raise ValueError(f"`dtype` must be qlearn.quint8 or qlearn.qint8 for "
                                     f"{qscheme!r}, got {dtype!r}")
                self._scales, self._zero_points = V.check_float_qparams(
                    scales, zero_points, channels)
            else:
                self._scales = V.check_scales(scales, channels)
                self._zero_points = V.check_zero_points(zero_points, channels,
                                                        dtype.quant_min, dtype.quant_max)
            self._scale, self._zero_point, self._axis = 1.0, 0, ax
        else:
            if scales is not None or zero_points is not None or axis != -1:
                raise ValueError(f"`scales`, `zero_points` and `axis` are for per-channel "
                                 f"qschemes; {qscheme!r} takes `scale` and `zero_point`")
            self._scale = V.check_scale(scale)
            self._zero_point = V.check_zero_point(zero_point, dtype.quant_min,
                                                  dtype.quant_max)
            self._scales = None
            self._zero_points = None
            self._axis = -1

    # -- the PyTorch accessors ------------------------------------------------------
    def int_repr(self):
        """The integers ``q`` as a new NumPy array of the storage type."""
        return self._int.copy()

    def qscheme(self):
        """The quantization scheme, e.g. :data:`qlearn.per_tensor_affine`."""
        return self._qscheme

    def q_scale(self):
        """The scale ``S`` of a per-tensor quantized tensor (a Python float)."""
        self._require(False, "q_scale")
        return self._scale

    def q_zero_point(self):
        """The zero point ``Z`` of a per-tensor quantized tensor (a Python int)."""
        self._require(False, "q_zero_point")
        return self._zero_point

    def q_per_channel_scales(self):
        """The scales ``S_c``, one per channel (float64 array; float32 for
        ``per_channel_affine_float_qparams``, as in PyTorch)."""
        self._require(True, "q_per_channel_scales")
        return self._scales.copy()

    def q_per_channel_zero_points(self):
        """The zero points ``Z_c``, one per channel (int64 array; float32 for
        ``per_channel_affine_float_qparams``, as in PyTorch)."""
        self._require(True, "q_per_channel_zero_points")
        return self._zero_points.copy()

    def q_per_channel_axis(self):
        """The axis along which the channels' parameters vary."""
        self._require(True, "q_per_channel_axis")
        return self._axis

    cdef _require(self, bint per_channel, str what):
        if self._axis >= 0 and not per_channel:
            raise ValueError(f"{what}() is for per-tensor quantized tensors; this one is "
                             f"{self._qscheme!r}: use q_per_channel_scales() and "
                             f"q_per_channel_zero_points()")
        if self._axis < 0 and per_channel:
            raise ValueError(f"{what}() is for per-channel quantized tensors; this one is "
                             f"{self._qscheme!r}: use q_scale() and q_zero_point()")

    # -- dequantization ---------------------------------------------------------------
    def dequantize(self):
        r"""The real values :math:`r = S (q - Z)` as a float32 array.

        Per-tensor, the product is taken in float32 with ``float32(scale)``; per-channel,
        in float64 and then rounded to float32; with float zero points
        (``per_channel_affine_float_qparams``), ``(float(q) - Z) * S`` in float32.  All
        are what PyTorch computes, to the bit.
        """
        cdef cnp.ndarray q = np.asarray(self._int, order="C")  # keeps 0-d as 0-d
        cdef cnp.ndarray out = np.empty((<object> q).shape, dtype=np.float32)
        if self._qscheme.is_float_qparams:       # float zero points: their own kernel
            from qlearn.kernels import float_qparams as kernels
            kernels.dequantize_per_channel_float_qparams(q, out, self._axis, self._scales,
                                                         self._zero_points)
            return out
        if q.size == 0:
            return out
        if _K is None:
            _load_kernels()
        if self._axis < 0:
            _K.dequantize_per_tensor(q.reshape(-1), out.reshape(-1),
                                     np.float32(self._scale), self._zero_point)
        else:
            view = _channel_view_shape((<object> q).shape, self._axis)
            _K.dequantize_per_channel(q.reshape(view), out.reshape(view), self._scales,
                                      self._zero_points.astype(np.int32))
        return out

    def numpy(self):
        """Same as :meth:`dequantize`: the real values as a float32 array."""
        return self.dequantize()

    def __array__(self, dtype=None, copy=None):
        out = self.dequantize()
        return out if dtype is None else out.astype(dtype)

    # -- shape --------------------------------------------------------------------------
    @property
    def shape(self):
        """The shape, a tuple."""
        return (<object> self._int).shape

    @property
    def ndim(self):
        return self._int.ndim

    @property
    def is_quantized(self):
        return True

    def size(self, dim=None):
        """The shape, or its entry ``dim``, as ``torch.Tensor.size`` does."""
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        return self._int.ndim

    def numel(self):
        """The number of elements."""
        return self._int.size

    def element_size(self):
        """Bytes per element: 1 for quint8 / qint8, 4 for qint32."""
        return self._int.itemsize

    @property
    def nbytes(self):
        """Bytes held by the integers (the quantization parameters excluded)."""
        return self._int.nbytes

    def __len__(self):
        if self._int.ndim == 0:
            raise TypeError("len() of a 0-d quantized tensor")
        return self.shape[0]

    cdef QTensor _like(self, cnp.ndarray data, int axis):
        return _trusted(data, self.dtype, self._qscheme, self._scale, self._zero_point,
                        self._scales, self._zero_points, axis)

    def reshape(self, *shape):
        """A view with another shape and the same parameters.

        A per-channel tensor can be reshaped only where the channel axis and the axes
        before it keep their sizes.
        """
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        data = self._int.reshape(shape)
        if self._axis >= 0 and data.shape[:self._axis + 1] != self.shape[:self._axis + 1]:
            raise ValueError(f"cannot reshape a per-channel tensor of shape {self.shape} "
                             f"(axis={self._axis}) to {data.shape}: the axes up to and "
                             f"including the channel axis must keep their sizes")
        return self._like(data, self._axis)

    view = reshape

    def transpose(self, int dim0, int dim1):
        """A view with axes ``dim0`` and ``dim1`` swapped (the channel axis follows)."""
        cdef int n = self._int.ndim
        if not (-n <= dim0 < n and -n <= dim1 < n):
            raise ValueError(f"`dim0` and `dim1` must be in [{-n}, {n - 1}], got "
                             f"{dim0} and {dim1}")
        if dim0 < 0:    # (cdivision: C's % keeps the sign, so normalise by hand)
            dim0 += n
        if dim1 < 0:
            dim1 += n
        data = np.swapaxes(self._int, dim0, dim1)
        axis = self._axis
        if axis == dim0:
            axis = dim1
        elif axis == dim1:
            axis = dim0
        return self._like(data, axis)

    def permute(self, *dims):
        """A view with the axes permuted (``dims`` as in ``torch.Tensor.permute``)."""
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        n = self._int.ndim
        if (len(dims) != n or any(isinstance(d, bool) or not isinstance(d, (int, np.integer))
                                  or not -n <= d < n for d in dims)
                or len({int(d) + n if d < 0 else int(d) for d in dims}) != n):
            raise ValueError(f"`dims` must be a permutation of the {n} axes (each in "
                             f"[{-n}, {n - 1}]), got {dims}")
        dims = tuple(int(d) + n if d < 0 else int(d) for d in dims)
        data = np.transpose(self._int, dims)
        axis = self._axis
        if axis >= 0:
            axis = dims.index(axis)
        return self._like(data, axis)

    @property
    def T(self):
        return self.permute(tuple(range(self._int.ndim - 1, -1, -1)))

    def contiguous(self):
        """A copy whose integers are C-contiguous (self if they already are)."""
        if self._int.flags.c_contiguous:
            return self
        return self._like(np.ascontiguousarray(self._int), self._axis)

    def clone(self):
        """A deep copy."""
        return self._like(self._int.copy(), self._axis)

    def __getitem__(self, key):
        """Index or slice the integers; the quantization parameters are kept.

        For a per-channel tensor, basic indexing (integers, slices, ``...``) is
        supported: slicing the channel axis slices the scales and zero points, and an
        integer there gives a per-tensor tensor with that channel's parameters (whose
        dequantization, in float32, may then differ from the per-channel one, in
        float64, by one float32 ulp).
        """
        data = self._int[key]
        if not isinstance(data, np.ndarray):  # numpy returned a scalar: keep 0-d
            data = np.asarray(data, dtype=self._int.dtype)
        if self._axis < 0:
            return self._like(data, -1)
        return self._index_per_channel(key, data)

    cdef _index_per_channel(self, key, data):
        from qlearn.dtypes import per_tensor_affine, per_tensor_symmetric
        key = key if isinstance(key, tuple) else (key,)
        # a bool is an int to isinstance, but NumPy reads x[True] as a new axis
        if any(k is None or isinstance(k, (bool, np.bool_))
               or not isinstance(k, (int, np.integer, slice, type(Ellipsis)))
               for k in key):
            raise TypeError("a per-channel QTensor supports basic indexing only "
                            "(integers, slices and ...); dequantize() it first for "
                            "advanced indexing")
        n = self._int.ndim
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (n - len(key) + 1) + key[i + 1:]
        key = key + (slice(None),) * (n - len(key))
        ch = key[self._axis]
        if isinstance(ch, slice):
            axis = self._axis - sum(1 for k in key[:self._axis] if not isinstance(k, slice))
            return _trusted(data, self.dtype, self._qscheme, 1.0, 0,
                            self._scales[ch].copy(), self._zero_points[ch].copy(), axis)
        c = int(ch) % self.shape[self._axis]
        if self._qscheme.is_float_qparams:
            # PyTorch makes a per-tensor tensor and truncates the zero point to an int
            raise ValueError(f"an integer index on the channel axis ({self._axis}) of a "
                             f"{self._qscheme!r} tensor would need a per-tensor scheme "
                             f"with a float zero point, which does not exist; slice it "
                             f"({c}:{c + 1}) to keep the channel, or dequantize() first")
        scheme = (per_tensor_symmetric if self._qscheme.is_symmetric
                  else per_tensor_affine)
        return _trusted(data, self.dtype, scheme, float(self._scales[c]),
                        int(self._zero_points[c]), None, None, -1)

    def __repr__(self):
        """PyTorch's layout (``tensor(<values>, size=..., dtype=..., ...)``), written by
        :func:`qlearn._printing.qtensor_repr` so that Tensor and QTensor print alike."""
        from qlearn._printing import qtensor_repr
        if self._axis < 0:
            return qtensor_repr(self.dequantize(), self.shape, self.dtype, self._qscheme,
                                self._scale, self._zero_point)
        return qtensor_repr(self.dequantize(), self.shape, self.dtype, self._qscheme,
                            self._scales, self._zero_points, self._axis)

    def __eq__(self, other):
        """True when integers, dtype, scheme and parameters are all equal."""
        if not isinstance(other, QTensor):
            return NotImplemented
        o = <QTensor> other
        same = (self.dtype is o.dtype and self._qscheme is o._qscheme
                and self._axis == o._axis and self.shape == o.shape
                and np.array_equal(self._int, o._int))
        if not same:
            return False
        if self._axis < 0:
            return self._scale == o._scale and self._zero_point == o._zero_point
        return (np.array_equal(self._scales, o._scales)
                and np.array_equal(self._zero_points, o._zero_points))

    __hash__ = None


# The argument checks live in qlearn._validation (a layer above); bound on first use.
cdef object _V = None, _QDType = None, _QScheme = None
cdef double FLT_MAX = 3.4028234663852886e38
cdef double SMALLEST_SCALE = 1.0 / 3.4028234663852886e38   # 1 / float32(S) finite above it


# The dequantize kernels are reached through their wrapper (qlearn.kernels.quantize,
# which picks the SIMD path and the thread count); bound on first use.
cdef object _K = None


cdef _load_kernels():
    global _K
    from qlearn.kernels import quantize
    _K = quantize


cdef _load_checks():
    global _V, _QDType, _QScheme
    from qlearn import _validation
    from qlearn.dtypes import QDType, QScheme
    _QDType, _QScheme, _V = QDType, QScheme, _validation


cdef QTensor _trusted(cnp.ndarray data, dtype, qscheme, double scale, long long zero_point,
                      scales, zero_points, int axis):
    """A QTensor from parameters already known valid (views of a checked tensor)."""
    cdef QTensor t = QTensor.__new__(QTensor)
    t._int = data
    t.dtype = dtype
    t._qscheme = qscheme
    t._scale = scale
    t._zero_point = zero_point
    t._scales = scales
    t._zero_points = zero_points
    t._axis = axis
    return t


def _channel_view_shape(shape, int axis):
    """The 3-d shape ``(outer, C, inner)`` the per-channel kernels iterate over."""
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    return outer, shape[axis], inner


def _per_tensor_unchecked(cnp.ndarray data, dtype, qscheme, double scale,
                          long long zero_point):
    """A per-tensor QTensor whose parameters the caller has already checked (operators
    that produce one per call, with validated output parameters): no checks at all."""
    return _trusted(data, dtype, qscheme, scale, zero_point, None, None, -1)
