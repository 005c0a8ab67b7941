r"""The fusion patterns: which runs of layers ``fuse_modules`` merges, and how.

One table, :data:`DEFAULT_OP_LIST_TO_FUSER_METHOD` (PyTorch's
``_DEFAULT_OP_LIST_TO_FUSER_METHOD``), maps a tuple of layer types to a *fuser method*
``f(is_qat, *modules) -> module``.  ``is_qat=False`` (``fuse_modules``, for
post-training quantization) folds a batch norm into the layer before it, with the
running statistics:

.. math::

   W' = W \frac{\gamma}{\sqrt{\sigma^2 + \epsilon}}, \qquad
   b' = (b - \mu) \frac{\gamma}{\sqrt{\sigma^2 + \epsilon}} + \beta

(:func:`~qlearn.nn.utils.fusion.fuse_conv_bn_eval`); ``is_qat=True``
(``fuse_modules_qat``) keeps the batch norm in a fused container
(:class:`qlearn.nn.intrinsic.ConvBn2d`, ...) that ``prepare_qat`` turns into a module
simulating the folding during training.  A ReLU after a layer is always kept, in a
container (``ConvReLU2d``, ``LinearReLU``, ``BNReLU2d``, ``BNReLU3d``) that converts to
one int8 module clamping at the zero point.

>>> from qlearn.quantization import get_default_fusion_patterns
>>> for types, method in get_default_fusion_patterns().items():
...     print(" + ".join(t.__name__ for t in types), "->", method)
Conv2d + BatchNorm2d -> fuse_conv_bn
Conv2d + BatchNorm2d + ReLU -> fuse_conv_bn_relu
Conv2d + ReLU -> nni.ConvReLU2d
Conv1d + BatchNorm1d -> fuse_conv_bn
Conv1d + BatchNorm1d + ReLU -> fuse_conv_bn_relu
Conv1d + ReLU -> nni.ConvReLU1d
Conv3d + BatchNorm3d -> fuse_conv_bn
Conv3d + BatchNorm3d + ReLU -> fuse_conv_bn_relu
Conv3d + ReLU -> nni.ConvReLU3d
ConvTranspose1d + BatchNorm1d -> fuse_convtranspose_bn
ConvTranspose2d + BatchNorm2d -> fuse_convtranspose_bn
ConvTranspose3d + BatchNorm3d -> fuse_convtranspose_bn
Linear + BatchNorm1d -> fuse_linear_bn
Linear + ReLU -> nni.LinearReLU
BatchNorm2d + ReLU -> nni.BNReLU2d
BatchNorm3d + ReLU -> nni.BNReLU3d
"""
from ..nn import intrinsic as nni
from ..nn.modules.activation import ReLU
from ..nn.modules.batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from ..nn.modules.conv import Conv2d
from ..nn.modules.conv_nd import Conv1d, Conv3d
from ..nn.modules.conv_transpose import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from ..nn.modules.linear import Linear
from ..nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

__all__ = ["fuse_conv_bn", "fuse_conv_bn_relu", "fuse_convtranspose_bn", "fuse_linear_bn",
           "get_fuser_method", "get_default_fusion_patterns",
           "DEFAULT_OP_LIST_TO_FUSER_METHOD", "get_fuser_method_new"]


def _same_mode(mods, who):
    modes = {m.training for m in mods}
    if len(modes) != 1:
        desc = ", ".join(f"{type(m).__name__}: {'train' if m.training else 'eval'}"
                         for m in mods)
        raise ValueError(f"{who}: the modules to fuse must all be in the same mode (train "
                         f"or eval), got {desc}")


def _check_qat_bn(layer_out, bn, who):
    if bn.num_features != layer_out:
        raise ValueError(f"{who}: the batch norm's `num_features` ({bn.num_features}) must "
                         f"equal the layer's output channels ({layer_out})")
    if not bn.affine:
        raise ValueError(f"{who}: only an affine batch norm (affine=True) can be fused for "
                         f"quantization-aware training")
    if not bn.track_running_stats:
        raise ValueError(f"{who}: only a batch norm with track_running_stats=True can be "
                         f"fused for quantization-aware training")


# the fused container for each convolution (PyTorch's fuse_conv_bn keeps the same maps)
_CONV_BN = {Conv1d: nni.ConvBn1d, Conv2d: nni.ConvBn2d, Conv3d: nni.ConvBn3d}
_CONV_BN_RELU = {Conv1d: nni.ConvBnReLU1d, Conv2d: nni.ConvBnReLU2d, Conv3d: nni.ConvBnReLU3d}
_CONV_RELU = {Conv1d: nni.ConvReLU1d, Conv2d: nni.ConvReLU2d, Conv3d: nni.ConvReLU3d}


def _fused_class(table, conv, who):
    cls = table.get(type(conv))
    if cls is None:
        raise TypeError(f"{who}: `conv` must be a Conv1d, Conv2d or Conv3d, got "
                        f"{type(conv).__name__}")
    return cls


def fuse_conv_bn(is_qat, conv, bn):
    r"""Fuse a ``Conv1d`` / ``Conv2d`` / ``Conv3d`` and the batch norm of its dimension.

    ``is_qat=False``: a new convolution with the batch norm folded in
    (:func:`~qlearn.nn.utils.fusion.fuse_conv_bn_eval`, both modules in eval mode);
    ``is_qat=True``: the container :class:`qlearn.nn.intrinsic.ConvBn2d` (``ConvBn1d``,
    ``ConvBn3d``; both in training mode, the batch norm affine and tracking its
    statistics).

    >>> from qlearn import nn
    >>> from qlearn.quantization import fuse_conv_bn
    >>> conv, bn = nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3)
    >>> type(fuse_conv_bn(True, conv, bn)).__name__
    'ConvBn2d'
    >>> type(fuse_conv_bn(False, conv.eval(), bn.eval())).__name__
    'Conv2d'
    """
    _same_mode((conv, bn), "fuse_conv_bn")
    if is_qat:
        _check_qat_bn(conv.out_channels, bn, "fuse_conv_bn")
        return _fused_class(_CONV_BN, conv, "fuse_conv_bn")(conv, bn)
    return fuse_conv_bn_eval(conv, bn)


def fuse_conv_bn_relu(is_qat, conv, bn, relu):
    r"""Fuse a convolution, its batch norm and a ``ReLU``.

    ``is_qat=False``: ``nni.ConvReLU2d(fuse_conv_bn_eval(conv, bn), relu)``;
    ``is_qat=True``: ``nni.ConvBnReLU2d(conv, bn, relu)`` (``...1d`` / ``...3d`` for
    ``Conv1d`` / ``Conv3d``).

    >>> from qlearn import nn
    >>> from qlearn.quantization import fuse_conv_bn_relu
    >>> m = fuse_conv_bn_relu(False, nn.Conv2d(2, 3, 1).eval(), nn.BatchNorm2d(3).eval(),
    ...                       nn.ReLU().eval())
    >>> type(m).__name__, type(m[0]).__name__
    ('ConvReLU2d', 'Conv2d')
    """
    _same_mode((conv, bn, relu), "fuse_conv_bn_relu")
    if is_qat:
        _check_qat_bn(conv.out_channels, bn, "fuse_conv_bn_relu")
        return _fused_class(_CONV_BN_RELU, conv, "fuse_conv_bn_relu")(conv, bn, relu)
    return _fused_class(_CONV_RELU, conv, "fuse_conv_bn_relu")(fuse_conv_bn_eval(conv, bn),
                                                               relu)


def fuse_convtranspose_bn(is_qat, convt, bn):
    r"""Fold a ``BatchNorm`` into the ``ConvTranspose1d`` / ``2d`` / ``3d`` before it
    (eval mode; the output channels of a transposed convolution's weight are its axis 1,
    :func:`~qlearn.nn.utils.fusion.fuse_conv_bn_eval` with ``transpose=True``).  As
    PyTorch, there is no QAT form: ``is_qat=True`` raises ``ValueError``.

    >>> from qlearn import nn
    >>> from qlearn.quantization import fuse_convtranspose_bn
    >>> m = fuse_convtranspose_bn(False, nn.ConvTranspose1d(2, 3, 2).eval(),
    ...                           nn.BatchNorm1d(3).eval())
    >>> type(m).__name__, m.bias is not None
    ('ConvTranspose1d', True)
    """
    _same_mode((convt, bn), "fuse_convtranspose_bn")
    if is_qat:
        raise ValueError("fuse_convtranspose_bn: fusing ConvTranspose + BatchNorm is not "
                         "supported for quantization-aware training (nor by PyTorch); "
                         "fuse in eval mode with fuse_modules")
    return fuse_conv_bn_eval(convt, bn, transpose=True)


def fuse_linear_bn(is_qat, linear, bn):
    r"""Fuse a ``Linear`` and a ``BatchNorm1d``.

    ``is_qat=False``: a new ``Linear`` with the batch norm folded in
    (:func:`~qlearn.nn.utils.fusion.fuse_linear_bn_eval`); ``is_qat=True``:
    ``nni.LinearBn1d(linear, bn)``.

    >>> from qlearn import nn
    >>> from qlearn.quantization import fuse_linear_bn
    >>> type(fuse_linear_bn(True, nn.Linear(4, 3), nn.BatchNorm1d(3))).__name__
    'LinearBn1d'
    """
    _same_mode((linear, bn), "fuse_linear_bn")
    if is_qat:
        _check_qat_bn(linear.out_features, bn, "fuse_linear_bn")
        return nni.LinearBn1d(linear, bn)
    return fuse_linear_bn_eval(linear, bn)


class _SequentialFuser:
    """The fuser method of a pattern kept as it is, in the container ``cls`` (for either
    ``is_qat``); its repr names the container, so the table prints readably."""

    def __init__(self, cls):
        self.cls = cls
        self.__name__ = f"fuse_to_{cls.__name__}"

    def __call__(self, is_qat, *mods):
        _same_mode(mods, self.__name__)
        return self.cls(*mods)

    def __repr__(self):
        return f"nni.{self.cls.__name__}"


class _Named:
    """A fuser function whose repr is its name (for printing the table)."""

    def __init__(self, fn):
        self.fn = fn
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__

    def __call__(self, is_qat, *mods):
        return self.fn(is_qat, *mods)

    def __repr__(self):
        return self.__name__


#: Layer types -> fuser method ``f(is_qat, *modules)``; print it with
#: :func:`get_default_fusion_patterns`.
DEFAULT_OP_LIST_TO_FUSER_METHOD = {
    (Conv2d, BatchNorm2d): _Named(fuse_conv_bn),
    (Conv2d, BatchNorm2d, ReLU): _Named(fuse_conv_bn_relu),
    (Conv2d, ReLU): _SequentialFuser(nni.ConvReLU2d),
    (Conv1d, BatchNorm1d): _Named(fuse_conv_bn),
    (Conv1d, BatchNorm1d, ReLU): _Named(fuse_conv_bn_relu),
    (Conv1d, ReLU): _SequentialFuser(nni.ConvReLU1d),
    (Conv3d, BatchNorm3d): _Named(fuse_conv_bn),
    (Conv3d, BatchNorm3d, ReLU): _Named(fuse_conv_bn_relu),
    (Conv3d, ReLU): _SequentialFuser(nni.ConvReLU3d),
    (ConvTranspose1d, BatchNorm1d): _Named(fuse_convtranspose_bn),
    (ConvTranspose2d, BatchNorm2d): _Named(fuse_convtranspose_bn),
    (ConvTranspose3d, BatchNorm3d): _Named(fuse_convtranspose_bn),
    (Linear, BatchNorm1d): _Named(fuse_linear_bn),
    (Linear, ReLU): _SequentialFuser(nni.LinearReLU),
    (BatchNorm2d, ReLU): _SequentialFuser(nni.BNReLU2d),
    (BatchNorm3d, ReLU): _SequentialFuser(nni.BNReLU3d),
}


def get_default_fusion_patterns():
    """A copy of the default pattern table: ``{(type, type[, type]): fuser_method}``.

    >>> from qlearn import nn
    >>> from qlearn.quantization import get_default_fusion_patterns
    >>> get_default_fusion_patterns()[(nn.Conv2d, nn.ReLU)]
    nni.ConvReLU2d
    """
    return dict(DEFAULT_OP_LIST_TO_FUSER_METHOD)


def _pattern_names(patterns):
    return "; ".join("(" + ", ".join(t.__name__ for t in k) + ")" for k in patterns)


def get_fuser_method(op_list, additional_fuser_method_mapping=None):
    """The fuser method for the tuple of module types ``op_list``.

    ``additional_fuser_method_mapping`` entries are looked up first (they override the
    defaults).  Raises ``ValueError`` listing the supported patterns when there is none
    (PyTorch raises an AssertionError).

    >>> from qlearn import nn
    >>> from qlearn.quantization import get_fuser_method
    >>> get_fuser_method((nn.Linear, nn.ReLU))
    nni.LinearReLU
    """
    table = dict(DEFAULT_OP_LIST_TO_FUSER_METHOD)
    table.update(additional_fuser_method_mapping or {})
    op_list = tuple(op_list)
    method = table.get(op_list)
    if method is None:
        raise ValueError(f"cannot fuse ({', '.join(t.__name__ for t in op_list)}): not a "
                         f"supported pattern; the supported ones are "
                         f"{_pattern_names(table)}")
    return method


def _valid_patterns(op_pattern):
    """``op_pattern`` and every variant of it with some of its ops (at any nesting
    depth) replaced by :class:`~qlearn.quantization.utils.MatchAllNode`, the exact
    pattern first and the all-wildcard one last (the order PyTorch tries them in)."""
    from .utils import MatchAllNode
    if isinstance(op_pattern, (tuple, list)):
        variants = [[]]
        for sub in op_pattern:
            variants = [v + [s] for v in variants for s in _valid_patterns(sub)]
        return [tuple(v) for v in variants]
    return [op_pattern, MatchAllNode]


def get_fuser_method_new(op_pattern, fuser_method_mapping):
    """The fuser method for ``op_pattern`` in ``fuser_method_mapping``, where entries
    may use :class:`~qlearn.quantization.utils.MatchAllNode` as a wildcard.

    The pattern is looked up as given, then with its ops replaced by ``MatchAllNode``
    one combination at a time (every op of a nested pattern such as
    ``(nn.ReLU, (nn.BatchNorm2d, nn.Conv2d))`` counts); the first hit wins.

    Parameters
    ----------
    op_pattern : Pattern
        An op, or a tuple of ops (nested tuples allowed).
    fuser_method_mapping : dict
        ``{pattern: fuser method}``.

    Returns
    -------
    callable

    Raises
    ------
    ValueError
        When no variant of the pattern is a key (PyTorch raises an AssertionError).

    Examples
    --------
    >>> from qlearn import nn
    >>> from qlearn.quantization import MatchAllNode, get_fuser_method_new
    >>> table = {(nn.Linear, nn.ReLU): "linear-relu", (MatchAllNode, nn.ReLU): "any-relu"}
    >>> get_fuser_method_new((nn.Linear, nn.ReLU), table)
    'linear-relu'
    >>> get_fuser_method_new((nn.Conv2d, nn.ReLU), table)
    'any-relu'
    """
    if not isinstance(fuser_method_mapping, dict):
        raise TypeError(f"`fuser_method_mapping` must be a dict, got "
                        f"{type(fuser_method_mapping).__name__}")
    for pattern in _valid_patterns(op_pattern):
        method = fuser_method_mapping.get(pattern)
        if method is not None:
            return method
    raise ValueError(f"`op_pattern` {_describe(op_pattern)} has no fuser method in "
                     f"`fuser_method_mapping`")


def _describe(p):
    if isinstance(p, (tuple, list)):
        return "(" + ", ".join(_describe(x) for x in p) + ")"
    return getattr(p, "__name__", repr(p))
