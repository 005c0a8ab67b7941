r"""Where the float model ends and the quantized one begins: ``QuantStub``, ``DeQuantStub``
and ``QuantWrapper`` (PyTorch's ``torch.ao.quantization.stubs``).

In eager mode the user marks the quantized region by hand.  Before calibration a
:class:`QuantStub` is the identity whose output an observer watches; :func:`convert`
swaps it for :class:`qlearn.nn.quantized.Quantize`, which computes

.. math::  q = \operatorname{clamp}\big(\operatorname{round}(x / S + Z),\ Q_\min,\ Q_\max\big)

with the scale :math:`S` and zero point :math:`Z` that the observer measured.  A
:class:`DeQuantStub` becomes :class:`qlearn.nn.quantized.DeQuantize`,
:math:`r = S (q - Z)`, handing a float array back to float code.
"""
from ..nn.modules.module import Module

__all__ = ["QuantStub", "DeQuantStub", "QuantWrapper"]


class QuantStub(Module):
    r"""Marks where a float input is quantized; the identity until :func:`convert`.

    ``prepare`` attaches an observer to it (``activation_post_process``) that records
    the range of what passes through; ``convert`` replaces it with a
    :class:`qlearn.nn.quantized.Quantize` holding the observed :math:`(S, Z)`.

    Parameters
    ----------
    qconfig : QConfig, optional
        The stub's own qconfig; by default it takes its parent's (``model.qconfig``).

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> m = nn.Sequential(tq.QuantStub(), nn.Linear(3, 2), tq.DeQuantStub())
    >>> m[0](np.ones(2, np.float32))
    array([1., 1.], dtype=float32)
    """

    def __init__(self, qconfig=None):
        super().__init__()
        if qconfig:
            self.qconfig = qconfig

    def forward(self, x):
        return x


class DeQuantStub(Module):
    r"""Marks where a quantized value returns to float; the identity until
    :func:`convert`, which replaces it with :class:`qlearn.nn.quantized.DeQuantize`
    (:math:`r = S (q - Z)`).

    Parameters
    ----------
    qconfig : QConfig, optional
        Accepted for PyTorch's signature; a DeQuantStub observes nothing.

    Examples
    --------
    >>> import qlearn.quantization as tq
    >>> tq.DeQuantStub()(np.zeros(2, np.float32))
    array([0., 0.], dtype=float32)
    """

    def __init__(self, qconfig=None):
        super().__init__()
        if qconfig:
            self.qconfig = qconfig

    def forward(self, x):
        return x


class QuantWrapper(Module):
    r"""``module`` between a :class:`QuantStub` and a :class:`DeQuantStub`.

    ``forward(x) = dequant(module(quant(x)))``; the wrapper takes ``module``'s qconfig,
    so after ``prepare`` and ``convert`` the whole of ``module`` runs quantized with a
    float input and output.

    Parameters
    ----------
    module : Module
        The float module to wrap.

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> tq.QuantWrapper(nn.Linear(3, 2))
    QuantWrapper(
      (quant): QuantStub()
      (dequant): DeQuantStub()
      (module): Linear(in_features=3, out_features=2, bias=True)
    )
    """

    def __init__(self, module):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"`module` must be an nn.Module, got {type(module).__name__}")
        qconfig = getattr(module, "qconfig", None)
        self.add_module("quant", QuantStub(qconfig))
        self.add_module("dequant", DeQuantStub(qconfig))
        self.add_module("module", module)
        self.train(module.training)

    def forward(self, X):
        X = self.quant(X)
        X = self.module(X)
        return self.dequant(X)
