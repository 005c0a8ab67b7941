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
    :data:`qlearn.qint32`), ``shape``, ``ndim`` and the methods named as PyTorch's:
    the accessors (``int_repr``, ``dequantize``, ``q_scale``, ``q_zero_point``,
    ``q_per_channel_scales``, ``q_per_channel_zero_points``, ``q_per_channel_axis``,
    ``qscheme``), the views and copies (``reshape``/``view``, ``flatten``,
    ``unflatten``, ``squeeze``, ``unsqueeze``, ``transpose``, ``permute``,
    ``movedim``, ``t``, ``select``, ``narrow``, ``split``, ``chunk``, ``unbind``,
    ``flip``, ``expand``, ``repeat``, indexing) and ``equal`` / ``eq`` / ``ne``.

    Every view keeps the integers and the quantization parameters; per-channel, the
    channel axis and its scales and zero points follow the view (sliced, moved,
    reversed or tiled with it).  Where PyTorch's result would lose that link (a
    reshape that merges the channel axis) qlearn refuses; where PyTorch refuses an
    operation only because its per-channel strides are not supported (``flip``,
    ``expand``, ``repeat``, ``permute``, 2-d ``t``), qlearn computes it.

    ``q1 == q2`` is one bool, :meth:`equal` (the question ``torch.equal`` answers);
    PyTorch's elementwise ``==`` on the dequantized values is :meth:`eq`.

    A :data:`qlearn.quint4x2` tensor keeps its 4-bit values one a byte, so every view
    works on it; only :meth:`int_repr` packs them two a byte, as PyTorch stores them.

    >>> import qlearn as ql
    >>> q = ql.quantize_per_tensor([[0.0, 0.5], [1.0, 1.5]], 0.5, 1, ql.quint8)
    >>> q.t().int_repr(), q.flatten().shape, q.unsqueeze(0).shape
    (array([[1, 3],
           [2, 4]], dtype=uint8), (4,), (1, 2, 2))
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
        if dtype.bits < 8:
            if qscheme.is_per_channel and not qscheme.is_float_qparams:
                # (PyTorch has no integer-zero-point per-channel kernel for it either)
                raise ValueError(f"`qscheme` of a {dtype!r} tensor must be per-tensor or "
                                 f"qlearn.per_channel_affine_float_qparams, got "
                                 f"{qscheme!r}")
            if (<cnp.ndarray> int_data).size and int_data.max() > dtype.quant_max:
                raise ValueError(f"`int_data` must hold values in [0, {dtype.quant_max}] "
                                 f"for {dtype!r} (one value per byte, unpacked), got "
                                 f"{int_data.max()}")
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
                if dtype.bits not in (4, 8):
                    raise ValueError(f"`dtype` must be qlearn.quint8, qlearn.qint8 or "
                                     f"qlearn.quint4x2 for {qscheme!r}, got {dtype!r}")
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
        """The integers ``q`` as a new NumPy array of the storage type.

        For :data:`qlearn.quint4x2` it is PyTorch's packed storage: a 1-d uint8 array
        of ``ceil(numel / 2)`` bytes, the values taken in C order, two to a byte,
        the first in the low nibble (``byte k = q[2k] | q[2k + 1] << 4``; a row of
        odd length shares its last byte with the next row).

        >>> import numpy as np, qlearn as ql
        >>> q = ql.quantize_per_channel([[0.0, 1.0, 2.0], [3.0, 4.0, 20.0]], [1.0, 1.0],
        ...                             np.zeros(2, np.float32), 0, ql.quint4x2)
        >>> q.int_repr()            # 0 | 1 << 4, 2 | 3 << 4, 4 | 15 << 4
        array([ 16,  50, 244], dtype=uint8)
        """
        if self.dtype.bits < 8:
            return _pack_nibbles(self._int)
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
        if dim is None:
            return self.shape
        # a bool or a slice would index the shape tuple; torch raises for both
        d = _int_arg(dim, "dim")
        n = self._int.ndim
        if not -n <= d < n:     # IndexError, as torch
            raise IndexError(f"`dim` must be in [{-n}, {n - 1}], got {d}")
        return self.shape[d]

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
        """A view (a copy when the layout needs one) with another shape and the same
        parameters.

        Per-channel, the channel axis must survive the reshape: one axis of the new
        shape with the same length and the same number of elements before it (torch
        keeps the old ``axis`` number whatever the new shape; qlearn moves it, or
        refuses a reshape that merges or splits the channel axis).

        >>> import numpy as np, qlearn as ql
        >>> q = ql.quantize_per_channel(np.zeros((2, 3, 4)), [0.1, 0.2, 0.3, 0.4],
        ...                             [0, 0, 0, 0], axis=2, dtype=ql.qint8)
        >>> r = q.reshape(6, 4)
        >>> r.shape, r.q_per_channel_axis()
        ((6, 4), 1)
        """
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        from qlearn._validation import check_shape    # (pure Python, below every layer)
        return self._reshaped(self._int.reshape(check_shape(shape, self._int.size)))

    view = reshape

    def transpose(self, dim0, dim1):
        """A view with axes ``dim0`` and ``dim1`` swapped (the channel axis follows)."""
        cdef int n = self._int.ndim
        i0, i1 = _int_arg(dim0, "dim0"), _int_arg(dim1, "dim1")
        if not (-n <= i0 < n and -n <= i1 < n):
            raise ValueError(f"`dim0` and `dim1` must be in [{-n}, {n - 1}], got "
                             f"{i0} and {i1}")
        dim0 = i0 + n if i0 < 0 else i0
        dim1 = i1 + n if i1 < 0 else i1
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
        # a non-integer is torch's TypeError ("must be tuple of ints"); a bool stays the
        # ValueError below (tests/test_hardening.py pins it)
        for d in dims:
            if not isinstance(d, (bool, np.bool_, int, np.integer)):
                raise TypeError(f"`dims` must be integers, got {dims}")
        if (len(dims) != n or any(isinstance(d, (bool, np.bool_)) or not -n <= d < n
                                  for d in dims)
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

    # -- views and copies, as torch.Tensor's methods of the same names -------------------
    cdef QTensor _reshaped(self, data):
        """``data`` (a reshape of the integers) with the parameters; per-channel, the
        channel axis is found again in the new shape or the reshape is refused."""
        if self._axis < 0:
            return self._like(data, -1)
        axis = _reshape_axis(self.shape, data.shape, self._axis)
        if axis < 0:
            raise ValueError(f"cannot reshape a per-channel tensor of shape {self.shape} "
                             f"(axis={self._axis}) to {data.shape}: the channel axis must "
                             f"survive as one axis of the same length with the same "
                             f"number of elements before it")
        return self._like(data, axis)

    cdef QTensor _drop_channel_axis(self, data, int c):
        """``data`` with the channel axis removed: a per-tensor tensor carrying the
        parameters of channel ``c`` (what torch's ``select`` gives)."""
        from qlearn.dtypes import per_tensor_affine, per_tensor_symmetric
        if self._qscheme.is_float_qparams:
            # PyTorch makes a per-tensor tensor and truncates the zero point to an int
            raise ValueError(f"an integer index on the channel axis ({self._axis}) of a "
                             f"{self._qscheme!r} tensor would need a per-tensor scheme "
                             f"with a float zero point, which does not exist; slice it "
                             f"({c}:{c + 1}) to keep the channel, or dequantize() first")
        scheme = per_tensor_symmetric if self._qscheme.is_symmetric else per_tensor_affine
        return _trusted(data, self.dtype, scheme, float(self._scales[c]),
                        int(self._zero_points[c]), None, None, -1)

    cdef QTensor _with_channels(self, data, int axis, cnp.ndarray index):
        """``data`` whose channel axis ``axis`` holds the old channels ``index``."""
        return _trusted(data, self.dtype, self._qscheme, 1.0, 0,
                        np.ascontiguousarray(self._scales[index]),
                        np.ascontiguousarray(self._zero_points[index]), axis)

    def flatten(self, start_dim=0, end_dim=-1):
        """Merge the axes ``start_dim`` to ``end_dim`` (inclusive) into one.

        As ``torch.Tensor.flatten``: a 0-d tensor becomes 1-d, negative dims count
        from the end.  Per-channel, the channel axis may be merged only with axes of
        length 1 (torch keeps a stale ``axis`` instead; qlearn refuses, as
        :meth:`reshape` does).

        Parameters
        ----------
        start_dim, end_dim : int
            The first and last axis merged; ``start_dim <= end_dim``.

        Returns
        -------
        QTensor

        Examples
        --------
        >>> import numpy as np, qlearn as ql
        >>> q = ql.quantize_per_tensor(np.zeros((2, 3, 4), np.float32), 0.1, 3, ql.quint8)
        >>> q.flatten().shape, q.flatten(1).shape, q.flatten(0, 1).shape
        ((24,), (2, 12), (6, 4))
        """
        cdef int n = self._int.ndim
        s = _dim(start_dim, max(n, 1), "start_dim")
        e = _dim(end_dim, max(n, 1), "end_dim")
        if s > e:
            raise ValueError(f"`start_dim` must not come after `end_dim`, got "
                             f"start_dim={start_dim} (axis {s}) and end_dim={end_dim} "
                             f"(axis {e})")
        if n == 0:
            return self._like(self._int.reshape(1), -1)
        if s == e:
            return self._like(self._int, self._axis)
        shape = self.shape
        merged = int(np.prod(shape[s:e + 1], dtype=np.int64))
        return self._reshaped(self._int.reshape(shape[:s] + (merged,) + shape[e + 1:]))

    def unflatten(self, dim, sizes):
        """Split axis ``dim`` into the axes ``sizes`` (one of them may be ``-1``), as
        ``torch.Tensor.unflatten``; per-channel, as :meth:`reshape` (the channel axis
        moves with the new axes before it, and may be split only into itself and axes
        of length 1).

        >>> import numpy as np, qlearn as ql
        >>> q = ql.quantize_per_tensor(np.zeros((2, 12)), 0.1, 0, ql.quint8)
        >>> q.unflatten(1, (3, -1)).shape, q.unflatten(-1, [2, 2, 3]).shape
        ((2, 3, 4), (2, 2, 2, 3))
        """
        cdef int n = self._int.ndim
        if n == 0:
            raise ValueError("unflatten() cannot be applied to a 0-d tensor")
        d = _dim(dim, n, "dim")
        if not isinstance(sizes, (tuple, list)) or not sizes:
            raise TypeError(f"`sizes` must be a non-empty tuple or list of integers, got "
                            f"{sizes!r}")
        sizes = tuple(_int_arg(v, "sizes") for v in sizes)
        size = self.shape[d]
        known = 1                   # Python ints: np.prod would overflow int64 (or wrap)
        for v in sizes:
            if v != -1:
                known *= v
        if sizes.count(-1) > 1 or any(v < -1 for v in sizes) or (
                -1 not in sizes and known != size) or (
                -1 in sizes and (known == 0 or size % known)):
            raise ValueError(f"`sizes` must multiply to {size} (the length of dimension "
                             f"{d}), with at most one -1, got {sizes}")
        if -1 in sizes:
            sizes = tuple(size // known if v == -1 else v for v in sizes)
        shape = self.shape
        return self._reshaped(self._int.reshape(shape[:d] + sizes + shape[d + 1:]))

    def movedim(self, source, destination):
        """Move the axes ``source`` to the positions ``destination`` (ints or tuples of
        ints), the others keeping their order, as ``torch.Tensor.movedim``; the channel
        axis of a per-channel tensor moves along (torch raises there).

        >>> import numpy as np, qlearn as ql
        >>> q = ql.quantize_per_tensor(np.zeros((2, 3, 4)), 0.1, 0, ql.quint8)
        >>> q.movedim(0, -1).shape, q.movedim((0, 1), (2, 0)).shape
        ((3, 4, 2), (3, 4, 2))
        """
        cdef int n = self._int.ndim
        src = _dims(source, max(n, 1), "source")
        dst = _dims(destination, max(n, 1), "destination")
        if len(src) != len(dst):
            raise ValueError(f"`source` and `destination` must name as many axes, got "
                             f"{source!r} and {destination!r}")
        if n == 0:
            return self._like(self._int, -1)
        order = [k for k in range(n) if k not in src]
        for to, frm in sorted(zip(dst, src)):
            order.insert(to, frm)
        return self.permute(order)

    moveaxis = movedim

    def ravel(self):
        """Same as :meth:`flatten` with its defaults: a 1-d tensor.

        >>> import qlearn as ql
        >>> ql.quantize_per_tensor([[1.0, 2.0]], 1.0, 0, ql.quint8).ravel().int_repr()
        array([1, 2], dtype=uint8)
        """
        return self.flatten()

    def view_as(self, other):
        """A view with the shape of ``other`` (anything with a ``shape``).

        >>> import numpy as np, qlearn as ql
        >>> q = ql.quantize_per_tensor(np.zeros(6, np.float32), 0.1, 0, ql.quint8)
        >>> q.view_as(np.zeros((2, 3))).shape
        (2, 3)
        """
        if not hasattr(other, "shape"):
            raise TypeError(f"`other` must be a tensor or array (with a shape), got "
                            f"{type(other).__name__}")
        return self.reshape(tuple(other.shape))

    reshape_as = view_as

    def squeeze(self, dim=None):
        """Remove axes of length 1: all of them, or those among ``dim``.

        As ``torch.Tensor.squeeze``: an axis named in ``dim`` whose length is not 1 is
        left alone, ``dim`` may be an int or a tuple of ints.  Per-channel, squeezing
        the channel axis (of length 1) gives a per-tensor tensor with that channel's
        scale and zero point, as :meth:`select` does (torch raises instead).

        Parameters
        ----------
        dim : int or tuple of int, optional

        Returns
        -------
        QTensor

        Examples
        --------
        >>> import numpy as np, qlearn as ql
        >>> q = ql.quantize_per_tensor(np.zeros((1, 3, 1), np.float32), 0.1, 3, ql.quint8)
        >>> q.squeeze().shape, q.squeeze(0).shape, q.squeeze((0, 1)).shape
        ((3,), (3, 1), (3, 1))
        """
        cdef int n = self._int.ndim
        shape = self.shape
        if dim is None:
            dims = tuple(i for i in range(n) if shape[i] == 1)
        else:
            dims = tuple(d for d in _dims(dim, max(n, 1), "dim") if n and shape[d] == 1)
        if not dims:
            return self._like(self._int, self._axis)
        data = np.squeeze(self._int, axis=dims)
        if self._axis < 0:
            return self._like(data, -1)
        if self._axis in dims:
            return self._drop_channel_axis(data, 0)
        return self._like(data, self._axis - sum(1 for d in dims if d < self._axis))

    def unsqueeze(self, dim):
        """Insert an axis of length 1 at position ``dim`` (in ``[-ndim - 1, ndim]``).

        Per-channel, the channel axis moves up when the new axis comes before it.

        Parameters
        ----------
        dim : int

        Returns
        -------
        QTensor

        Examples
        --------
        >>> import numpy as np, qlearn as ql
        >>> q = ql.quantize_per_channel(np.zeros((2, 3), np.float32), [0.1, 0.2, 0.3],
        ...                             [0, 0, 0], axis=1, dtype=ql.qint8)
        >>> u = q.unsqueeze(0)
        >>> u.shape, u.q_per_channel_axis(), q.unsqueeze(-1).shape
        ((1, 2, 3), 2, (2, 3, 1))
        """
        cdef int n = self._int.ndim
        d = _dim(dim, n + 1, "dim")
        data = np.expand_dims(self._int, d)
        axis = self._axis
        if axis >= d:
            axis += 1
        return self._like(data, axis)

    def t(self):
        """The transpose of a tensor of at most 2 dimensions (0-d and 1-d: unchanged).

        As ``torch.Tensor.t``; per-channel, the channel axis follows (torch raises for
        a 2-d per-channel tensor, and makes a 1-d one per-tensor).

        Examples
        --------
        >>> import qlearn as ql
        >>> q = ql.quantize_per_tensor([[1.0, 2.0, 3.0]], 1.0, 0, ql.quint8)
        >>> q.t().int_repr()
        array([[1],
               [2],
               [3]], dtype=uint8)
        """
        cdef int n = self._int.ndim
        if n > 2:
            raise ValueError(f"t() is for tensors of at most 2 dimensions, got a {n}-d "
                             f"tensor of shape {self.shape}; use transpose(dim0, dim1) or "
                             f"permute()")
        if n < 2:
            return self._like(self._int, self._axis)
        return self.transpose(0, 1)

    def swapaxes(self, dim0, dim1):
        """Same as :meth:`transpose` (``torch.Tensor.swapaxes``).

        >>> import numpy as np, qlearn as ql
        >>> ql.quantize_per_tensor(np.zeros((2, 3)), 0.1, 0, ql.quint8).swapaxes(0, 1).shape
        (3, 2)
        """
        return self.transpose(dim0, dim1)

    swapdims = swapaxes

    def select(self, dim, index):
        """The slice ``index`` along ``dim``, that axis removed.

        As ``torch.Tensor.select``; per-channel, selecting along the channel axis gives
        a per-tensor tensor with that channel's scale and zero point.

        Parameters
        ----------
        dim : int
        index : int
            In ``[-size, size - 1]`` for the axis's length ``size``.

        Returns
        -------
        QTensor

        Examples
        --------
        >>> import numpy as np, qlearn as ql
        >>> q = ql.quantize_per_channel(np.ones((2, 3), np.float32), [0.1, 0.2, 0.5],
        ...                             [0, 1, 2], axis=1, dtype=ql.qint8)
        >>> s = q.select(1, -1)
        >>> s.qscheme(), s.q_scale(), s.q_zero_point(), s.int_repr()
        (qlearn.per_tensor_affine, 0.5, 2, array([4, 4], dtype=int8))
        """
        cdef int n = self._int.ndim
        if n == 0:
            raise ValueError("select() cannot be applied to a 0-d tensor")
        d = _dim(dim, n, "dim")
        i = _index(index, self.shape[d], d, "index")
        return self[(slice(None),) * d + (i,)]

    def index_select(self, dim, index):
        """The slices ``index`` (a vector of integers) along ``dim``, as a copy.

        As ``torch.Tensor.index_select``: indices in ``[0, size)`` (no negative ones,
        ``IndexError`` otherwise), a 0-d index counted as one.  Per-channel, selecting
        along the channel axis picks the scales and zero points too (torch raises for
        per-channel tensors).

        Examples
        --------
        >>> import qlearn as ql
        >>> q = ql.quantize_per_tensor([[1.0, 2.0, 3.0]], 1.0, 0, ql.quint8)
        >>> q.index_select(1, [2, 0]).int_repr()
        array([[3, 1]], dtype=uint8)
        """
        cdef int n = self._int.ndim
        if n == 0:
            raise ValueError("index_select() cannot be applied to a 0-d tensor")
        d = _dim(dim, n, "dim")
        from qlearn.autograd.tensor import Tensor
        from qlearn._validation import check_index_vector
        idx = check_index_vector(index.data if isinstance(index, Tensor) else index,
                                 self.shape[d], d)
        data = np.take(self._int, idx, axis=d)
        if self._axis == d:
            return self._with_channels(data, d, idx)
        return self._like(data, self._axis)

    def unbind(self, dim=0):
        """The slices along ``dim``, as a tuple of :meth:`select` results.

        >>> import qlearn as ql
        >>> [u.int_repr() for u in ql.quantize_per_tensor([[1.0, 2.0]], 1.0, 0,
        ...                                                ql.quint8).unbind(1)]
        [array([1], dtype=uint8), array([2], dtype=uint8)]
        """
        cdef int n = self._int.ndim
        if n == 0:
            raise ValueError("unbind() cannot be applied to a 0-d tensor")
        d = _dim(dim, n, "dim")
        return tuple(self.select(d, i) for i in range(self.shape[d]))

    def narrow(self, dim, start, length):
        """The ``length`` slices from ``start`` along ``dim`` (a view).

        As ``torch.Tensor.narrow``: ``start`` may be negative (counted from the end)
        and ``start + length`` must not pass the end.  Per-channel, narrowing the
        channel axis narrows the scales and zero points; the result stays per-channel
        even with one channel left (torch turns a one-channel narrow into a per-tensor
        tensor; the integers are the same).

        Parameters
        ----------
        dim, start, length : int

        Returns
        -------
        QTensor

        Examples
        --------
        >>> import numpy as np, qlearn as ql
        >>> q = ql.quantize_per_channel(np.ones((2, 3), np.float32), [0.1, 0.2, 0.5],
        ...                             [0, 1, 2], axis=1, dtype=ql.qint8)
        >>> q.narrow(1, 1, 2).q_per_channel_scales()
        array([0.2, 0.5])
        """
        cdef int n = self._int.ndim
        if n == 0:
            raise ValueError("narrow() cannot be applied to a 0-d tensor")
        d = _dim(dim, n, "dim")
        size = self.shape[d]
        s = _int_arg(start, "start")
        if not -size <= s <= size:          # start == size is allowed (length 0)
            raise ValueError(f"`start` must be in [{-size}, {size}] for dimension {d} of "
                             f"length {size}, got {s}")
        if s < 0:
            s += size
        ln = _nonneg_int(length, "length")
        if s + ln > size:
            raise ValueError(f"`start` + `length` must be at most {size} (the length of "
                             f"dimension {d}), got start={start}, length={length}")
        return self._slice(d, s, s + ln)

    cdef QTensor _slice(self, int d, Py_ssize_t lo, Py_ssize_t hi):
        return self[(slice(None),) * d + (slice(lo, hi),)]

    def split(self, split_size_or_sections, dim=0):
        """Split along ``dim`` into pieces of ``split_size`` (the last one shorter), or
        of the lengths listed in ``sections``.

        As ``torch.Tensor.split``; every piece is a view (see :meth:`narrow`).

        Parameters
        ----------
        split_size_or_sections : int or sequence of int
        dim : int

        Returns
        -------
        tuple of QTensor

        Examples
        --------
        >>> import numpy as np, qlearn as ql
        >>> q = ql.quantize_per_tensor(np.zeros((5, 2), np.float32), 0.1, 0, ql.quint8)
        >>> [p.shape for p in q.split(2)], [p.shape for p in q.split([1, 4])]
        ([(2, 2), (2, 2), (1, 2)], [(1, 2), (4, 2)])
        """
        cdef int n = self._int.ndim
        if n == 0:
            raise ValueError("split() cannot be applied to a 0-d tensor")
        d = _dim(dim, n, "dim")
        size = self.shape[d]
        if isinstance(split_size_or_sections, (list, tuple)):
            sizes = [_nonneg_int(s, "split_size_or_sections") for s in
                     split_size_or_sections]
            if sum(sizes) != size:
                raise ValueError(f"`split_size_or_sections` must sum to {size} (the length "
                                 f"of dimension {d}), got {list(split_size_or_sections)}")
        else:
            step = _nonneg_int(split_size_or_sections, "split_size_or_sections")
            if step == 0 and size != 0:
                raise ValueError(f"`split_size_or_sections` can be 0 only for an axis of "
                                 f"length 0, got 0 for dimension {d} of length {size}")
            pieces = max(-(-size // step), 1) if step else 1
            sizes = [step] * (pieces - 1) + [size - step * (pieces - 1)]
        out, lo = [], 0
        for s in sizes:
            out.append(self._slice(d, lo, lo + s))
            lo += s
        return tuple(out)

    def chunk(self, chunks, dim=0):
        """Split along ``dim`` into ``chunks`` pieces of ``ceil(size / chunks)`` (fewer
        when the last ones would be empty), as ``torch.Tensor.chunk``.

        Examples
        --------
        >>> import numpy as np, qlearn as ql
        >>> q = ql.quantize_per_tensor(np.zeros(5, np.float32), 0.1, 0, ql.quint8)
        >>> [p.shape for p in q.chunk(3)], [p.shape for p in q.chunk(4)]
        ([(2,), (2,), (1,)], [(2,), (2,), (1,)])
        """
        cdef int n = self._int.ndim
        if n == 0:
            raise ValueError("chunk() cannot be applied to a 0-d tensor")
        c = _nonneg_int(chunks, "chunks")
        if c == 0:
            raise ValueError("`chunks` must be a positive integer, got 0")
        d = _dim(dim, n, "dim")
        size = self.shape[d]
        if size == 0:               # torch: `chunks` empty pieces
            if c > _MAX_EMPTY_PIECES:   # a tuple of 2**62 views would exhaust memory
                raise ValueError(f"`chunks` must be at most {_MAX_EMPTY_PIECES} for a "
                                 f"dimension of length 0 (one empty tensor each), got {c}")
            return tuple(self._slice(d, 0, 0) for _ in range(c))
        return self.split(-(-size // c), d)

    def flip(self, *dims):
        """A copy with the order of the elements reversed along ``dims``.

        As ``torch.Tensor.flip`` (a copy, not a view).  Per-channel, flipping the
        channel axis reverses the scales and zero points (torch raises).

        Examples
        --------
        >>> import qlearn as ql
        >>> ql.quantize_per_tensor([[1.0, 2.0, 3.0]], 1.0, 0, ql.quint8).flip(-1).int_repr()
        array([[3, 2, 1]], dtype=uint8)
        """
        cdef int n = self._int.ndim
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        ds = _dims(dims, max(n, 1), "dims")
        if n == 0 or not ds:
            return self._like(self._int.copy(), self._axis)
        data = np.flip(self._int, axis=ds).copy()   # a copy, as torch's flip
        if self._axis >= 0 and self._axis in ds:
            return self._with_channels(data, self._axis,
                                       np.arange(self.shape[self._axis])[::-1])
        return self._like(data, self._axis)

    def expand(self, *sizes):
        """A view repeating axes of length 1 to ``sizes`` (``-1`` keeps an axis), with
        new leading axes when ``sizes`` is longer, as ``torch.Tensor.expand``.

        Per-channel, the channel axis moves with the new leading axes; a channel axis
        of length 1 expanded to ``n`` gets its one scale and zero point ``n`` times
        (torch raises for per-channel tensors).

        Examples
        --------
        >>> import qlearn as ql
        >>> ql.quantize_per_tensor([[1.0], [2.0]], 1.0, 0, ql.quint8).expand(2, 3).int_repr()
        array([[1, 1, 1],
               [2, 2, 2]], dtype=uint8)
        """
        cdef int n = self._int.ndim
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = tuple(sizes[0])
        from qlearn._validation import check_expand
        shape = check_expand(sizes, self.shape)
        k = len(shape) - n
        data = np.broadcast_to(self._int, shape)
        if self._axis < 0:
            return self._like(data, -1)
        axis = self._axis + k
        return self._with_channels(data, axis, np.zeros(shape[axis], np.intp)
                                   if self.shape[self._axis] == 1
                                   else np.arange(shape[axis]))

    def repeat(self, *sizes):
        """A copy tiled ``sizes[i]`` times along each axis (new leading axes when
        ``sizes`` is longer), as ``torch.Tensor.repeat``.

        Per-channel, the scales and zero points are tiled along with the channel axis
        (torch raises for per-channel tensors).

        Examples
        --------
        >>> import qlearn as ql
        >>> ql.quantize_per_tensor([1.0, 2.0], 1.0, 0, ql.quint8).repeat(2, 2).int_repr()
        array([[1, 2, 1, 2],
               [1, 2, 1, 2]], dtype=uint8)
        """
        cdef int n = self._int.ndim
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = tuple(sizes[0])
        if len(sizes) < n:
            raise ValueError(f"`sizes` must name at least {n} repeats (one per "
                             f"dimension), got {sizes}")
        reps = tuple(_nonneg_int(s, "sizes") for s in sizes)
        shape = (1,) * (len(reps) - n) + tuple(self.shape)
        total = 1
        for s, r in zip(shape, reps):
            total *= s * r
        if total > _MAX_ELEMENTS:   # NumPy would overflow its index type
            raise ValueError(f"`sizes` {reps} would give {total} elements, more than an "
                             f"array can index ({_MAX_ELEMENTS})")
        # (np.tile returns a new C-ordered array, 0-d stays 0-d for empty reps)
        data = np.tile(self._int, reps) if reps else self._int.copy()
        if self._axis < 0:
            return self._like(data, -1)
        axis = self._axis + len(reps) - n
        index = np.tile(np.arange(self.shape[self._axis]), reps[axis])
        return self._with_channels(data, axis, index)

    # -- comparisons ----------------------------------------------------------------------
    cdef bint _same(self, QTensor o):
        if not (self.dtype is o.dtype and self._qscheme is o._qscheme
                and self._axis == o._axis and self.shape == o.shape
                and np.array_equal(self._int, o._int)):
            return False
        if self._axis < 0:
            return self._scale == o._scale and self._zero_point == o._zero_point
        return (np.array_equal(self._scales, o._scales)
                and np.array_equal(self._zero_points, o._zero_points))

    def equal(self, other):
        """True when ``other`` is a QTensor with the same shape, dtype, scheme,
        parameters and integers, as ``torch.equal`` decides for quantized tensors.

        Two tensors that dequantize to the same reals with different parameters are
        not equal; a float tensor or array never equals a QTensor.

        Parameters
        ----------
        other : QTensor, Tensor or ndarray

        Returns
        -------
        bool

        Examples
        --------
        >>> import qlearn as ql
        >>> a = ql.quantize_per_tensor([0.1, 0.2], 0.1, 0, ql.quint8)
        >>> b = ql.quantize_per_tensor([0.1, 0.2], 0.1, 1, ql.quint8)
        >>> a.equal(a.clone()), a.equal(b), a.equal(a.dequantize())
        (True, False, False)
        """
        if isinstance(other, QTensor):
            return self._same(<QTensor> other)
        if isinstance(other, np.ndarray) or hasattr(other, "requires_grad"):
            return False
        raise TypeError(f"`other` must be a tensor, got {type(other).__name__}")

    def __eq__(self, other):
        """``q1 == q2`` is :meth:`equal` (one bool); see :meth:`eq` for torch's
        elementwise ``==``.

        PyTorch's ``q1 == q2`` compares the dequantized values element by element;
        qlearn keeps ``==`` a plain bool so that QTensors compare in ``assert``,
        containers and saved state dicts, and gives torch's elementwise comparison as
        :meth:`eq` / :meth:`ne` (and :func:`qlearn.eq`).
        """
        if not isinstance(other, QTensor):
            return NotImplemented
        return self._same(<QTensor> other)

    __hash__ = None

    def eq(self, other):
        """Elementwise ``dequantize() == other`` as a bool :class:`qlearn.Tensor`: what
        torch's ``q == other`` and ``torch.eq`` compute for a quantized tensor (the
        dequantized reals, broadcast; ``other`` a QTensor, tensor, array or number).

        Examples
        --------
        >>> import qlearn as ql
        >>> a = ql.quantize_per_tensor([0.1, 0.2], 0.1, 0, ql.quint8)
        >>> b = ql.quantize_per_tensor([0.1, 0.2], 0.1, 1, ql.quint8)
        >>> a.eq(b), a.eq(0.1)
        (tensor([True, True]), tensor([ True, False]))
        """
        return _compare(self, other, np.equal)

    def ne(self, other):
        """Elementwise ``dequantize() != other`` (torch's ``q != other``, ``torch.ne``).

        >>> import qlearn as ql
        >>> ql.quantize_per_tensor([0.1, 0.2], 0.1, 0, ql.quint8).ne(0.1)
        tensor([False,  True])
        """
        return _compare(self, other, np.not_equal)

    # -- small conveniences ---------------------------------------------------------------
    def item(self):
        """The dequantized value of a one-element tensor, a Python float.

        >>> import qlearn as ql
        >>> ql.quantize_per_tensor([0.26], 0.1, 0, ql.quint8).item()
        0.30000001192092896
        """
        if self._int.size != 1:
            raise ValueError(f"item() needs a tensor of one element, got shape {self.shape}")
        return float(self.dequantize().reshape(-1)[0])

    def stride(self, dim=None):
        """The strides in elements (a tuple), or the stride of ``dim``.

        >>> import numpy as np, qlearn as ql
        >>> q = ql.quantize_per_tensor(np.zeros((2, 3, 4)), 0.1, 0, ql.quint8)
        >>> q.stride(), q.transpose(0, 2).stride(0)
        ((12, 4, 1), 1)
        """
        st = tuple(s // self._int.itemsize for s in (<object> self._int).strides)
        if dim is None:
            return st
        return st[_dim(dim, max(self._int.ndim, 1), "dim")]

    def is_contiguous(self):
        """Whether the integers are laid out C-contiguous."""
        return bool(self._int.flags.c_contiguous)

    @property
    def requires_grad(self):
        """Always False: quantized tensors carry no gradient (as in PyTorch)."""
        return False

    @property
    def device(self):
        """Always ``"cpu"``."""
        return "cpu"

    def detach(self):
        """A new QTensor sharing the integers (there is no graph to detach from)."""
        return self._like(self._int, self._axis)

    def cpu(self):
        """``self``: a QTensor lives in host memory."""
        return self

    def to(self, *args, **kwargs):
        """``self`` for ``to("cpu")`` or ``to(self.dtype)``; anything else is refused
        (a quantized tensor changes dtype through :meth:`dequantize`).

        >>> import qlearn as ql
        >>> q = ql.quantize_per_tensor([0.5], 0.1, 0, ql.quint8)
        >>> q.to("cpu") is q
        True
        """
        for a in args + tuple(kwargs.values()):
            if not (a is None or a is self.dtype or a is False or str(a) == "cpu"):
                raise TypeError(f"QTensor.to() accepts only the device 'cpu' and its own "
                                f"dtype {self.dtype!r}, got {a!r}; use dequantize() for "
                                f"floats, or quantize again for another qtype")
        return self

    def __getitem__(self, key):
        """Index or slice the integers; the quantization parameters are kept.

        A per-tensor tensor takes any NumPy index (as torch, also integer arrays and
        masks).  A per-channel tensor takes basic indexing (integers, slices, ``...``
        and ``None``), as torch does: slicing the channel axis slices the scales and
        zero points, and an integer there gives a per-tensor tensor with that channel's
        parameters (whose dequantization, in float32, may then differ from the
        per-channel one, in float64, by one float32 ulp).

        >>> import numpy as np, qlearn as ql
        >>> q = ql.quantize_per_channel(np.ones((2, 3)), [0.1, 0.2, 0.5], [0, 1, 2],
        ...                             axis=1, dtype=ql.qint8)
        >>> q[:, 1:].q_per_channel_scales(), q[None].q_per_channel_axis(), q[:, 2].q_scale()
        (array([0.2, 0.5]), 2, 0.5)
        """
        try:
            data = self._int[key]
        except (OverflowError, IndexError) as err:
            from qlearn._validation import index_error   # torch's words for it
            mine = index_error(err, key, self.shape)
            if mine is None:
                raise
            raise mine from None
        if not isinstance(data, np.ndarray):  # numpy returned a scalar: keep 0-d
            data = np.asarray(data, dtype=self._int.dtype)
        if self._axis < 0:
            return self._like(data, -1)
        return self._index_per_channel(key, data)

    cdef _index_per_channel(self, key, data):
        key = key if isinstance(key, tuple) else (key,)
        # a bool is an int to isinstance, but NumPy reads x[True] as a new axis
        if any(isinstance(k, (bool, np.bool_))
               or not (k is None or isinstance(k, (int, np.integer, slice,
                                                   type(Ellipsis))))
               for k in key):
            raise TypeError("a per-channel QTensor supports basic indexing only "
                            "(integers, slices, ... and None); dequantize() it first for "
                            "advanced indexing")
        n = self._int.ndim
        used = sum(1 for k in key if k is not None)   # None consumes no axis
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (n - used + 1) + key[i + 1:]
        key = key + (slice(None),) * (n - sum(1 for k in key if k is not None))
        # position of the channel axis's entry in the key, and the output axes before it
        pos, seen = 0, 0
        while key[pos] is None or seen < self._axis:
            if key[pos] is not None:
                seen += 1
            pos += 1
        ch = key[pos]
        if isinstance(ch, slice):
            axis = sum(1 for k in key[:pos] if k is None or isinstance(k, slice))
            return self._with_channels(data, axis,
                                       np.arange(self.shape[self._axis])[ch])
        c = int(ch) % self.shape[self._axis]
        if self._qscheme.is_float_qparams:
            raise ValueError(f"an integer index on the channel axis ({self._axis}) of a "
                             f"{self._qscheme!r} tensor would need a per-tensor scheme "
                             f"with a float zero point, which does not exist; slice it "
                             f"({c}:{c + 1}) to keep the channel, or dequantize() first")
        return self._drop_channel_axis(data, c)

    def __repr__(self):
        """PyTorch's layout (``tensor(<values>, size=..., dtype=..., ...)``), written by
        :func:`qlearn._printing.qtensor_repr` so that Tensor and QTensor print alike."""
        from qlearn._printing import qtensor_repr
        if self._axis < 0:
            return qtensor_repr(self.dequantize(), self.shape, self.dtype, self._qscheme,
                                self._scale, self._zero_point)
        return qtensor_repr(self.dequantize(), self.shape, self.dtype, self._qscheme,
                            self._scales, self._zero_points, self._axis)



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


# -- argument checks of the shape methods (torch's rules, qlearn's messages) -------------
# more empty pieces than chunk() builds; elements NumPy can index (intp)
_MAX_EMPTY_PIECES = 1 << 20
_MAX_ELEMENTS = np.iinfo(np.intp).max


def _int_arg(value, str name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer, got {value!r}")
    return int(value)


def _dim(value, int n, str name):
    """``value`` as an axis of an ``n``-axis tensor, normalised to ``[0, n)``."""
    d = _int_arg(value, name)
    if not -n <= d < n:
        raise ValueError(f"`{name}` must be in [{-n}, {n - 1}], got {d}")
    return d + n if d < 0 else d


def _dims(value, int n, str name):
    """One axis or a tuple/list of distinct axes, normalised (a tuple)."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    out = tuple(_dim(v, n, name) for v in items)
    if len(set(out)) != len(out):
        raise ValueError(f"`{name}` must not name an axis twice, got {value!r}")
    return out


def _index(value, Py_ssize_t size, int d, str name):
    """``value`` as an index into an axis of length ``size`` (negative from the end)."""
    i = _int_arg(value, name)
    if not -size <= i < size:
        raise ValueError(f"`{name}` must be in [{-size}, {size - 1}] for dimension {d} "
                         f"of length {size}, got {i}")
    return i + size if i < 0 else i


def _nonneg_int(value, str name):
    i = _int_arg(value, name)
    if i < 0:
        raise ValueError(f"`{name}` must be non-negative, got {i}")
    return i


def _reshape_axis(old_shape, new_shape, int axis):
    """Where the channel axis ``axis`` of ``old_shape`` lies in ``new_shape`` (C order):
    the first axis ``k`` with ``new_shape[k] == old_shape[axis]`` and as many elements
    before it as before ``axis``; -1 when there is none."""
    before = int(np.prod(old_shape[:axis], dtype=np.int64))
    prod = 1
    for k in range(len(new_shape)):
        if prod == before and new_shape[k] == old_shape[axis]:
            return k
        prod *= new_shape[k]
    return -1


def _compare(QTensor self, other, fn):
    """``fn(dequantized self, other)`` elementwise as a bool qlearn.Tensor."""
    from qlearn.autograd.tensor import Tensor
    if isinstance(other, QTensor):
        b = other.dequantize()
    elif isinstance(other, Tensor):
        b = other.data
    elif isinstance(other, (np.ndarray, int, float, np.number)) and not isinstance(
            other, (bool, np.bool_)):
        b = other
    else:
        raise TypeError(f"`other` must be a tensor, an array or a number, got "
                        f"{type(other).__name__}")
    return Tensor._wrap(np.asarray(fn(self.dequantize(), b)))


def _pack_nibbles(cnp.ndarray values):
    """4-bit values (one per byte) packed two per byte in C order, low nibble first."""
    flat = np.ascontiguousarray(values).reshape(-1)
    if flat.size % 2:
        flat = np.concatenate([flat, np.zeros(1, np.uint8)])
    return (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8)
