"""``gradcheck``: compare a Function's ``backward`` with central finite differences.

Because a :class:`~qlearn.autograd.Function` computes on plain NumPy arrays, its
``forward`` and ``backward`` can be called directly on float64 arrays, where finite
differences are accurate to about :math:`10^{-8}`; the float32 Tensor API never needs
to change.
"""
import numpy as np

from .function import Context

__all__ = ["gradcheck", "numerical_grad", "analytical_grad"]


def _forward(fn, args, kwargs):
    ctx = Context(tuple(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in args))
    out = fn.forward(ctx, *args, **kwargs)
    return ctx, out


def analytical_grad(fn, args, proj, kwargs=None):
    """Gradients of :math:`\\sum_k p_k\\, y_k` (``p`` = ``proj``) from ``fn.backward``.

    >>> import numpy as np
    >>> from qlearn.autograd import ops
    >>> from qlearn.autograd.gradcheck import analytical_grad
    >>> analytical_grad(ops.Exp, [np.zeros(2)], np.ones(2))[0]
    array([1., 1.])
    """
    ctx, out = _forward(fn, args, kwargs or {})
    grads = fn.backward(ctx, proj.astype(np.asarray(out).dtype))
    return grads if isinstance(grads, tuple) else (grads,)


def numerical_grad(fn, args, i, proj, kwargs=None, eps=1e-6):
    r"""Central difference :math:`\partial_{x_{ij}} \approx
    (f(x + \epsilon e_j) - f(x - \epsilon e_j)) / 2\epsilon` of
    :math:`f = \sum_k p_k\, y_k` with respect to ``args[i]``.

    >>> import numpy as np
    >>> from qlearn.autograd import ops
    >>> from qlearn.autograd.gradcheck import numerical_grad
    >>> numerical_grad(ops.Exp, [np.zeros(2)], 0, np.ones(2)).round(6)
    array([1., 1.])
    """
    x = args[i]
    grad = np.zeros(x.shape, np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for j in range(flat.size):
        keep = flat[j]
        vals = []
        for step in (eps, -eps):
            flat[j] = keep + step
            vals.append(float(np.sum(proj * _forward(fn, args, kwargs or {})[1])))
        flat[j] = keep
        gflat[j] = (vals[0] - vals[1]) / (2 * eps)
    return grad


def gradcheck(fn, args, kwargs=None, wrt=None, eps=1e-6, atol=1e-6, rtol=1e-5,
              random_state=0):
    """Check ``fn.backward`` against finite differences, in float64.

    Parameters
    ----------
    fn : Function subclass
    args : sequence
        Positional inputs; float arrays are converted to float64 copies.
    wrt : sequence of int, optional
        Indices of the inputs to check (default: every float array).
    random_state : int or numpy.random.Generator, default 0
        Draws the random output weights that reduce the output to one number (an int
        gives the same weights for the same int, as scikit-learn's ``random_state``).

    Returns True, or raises ``AssertionError`` naming the input and the worst element.

    >>> import numpy as np
    >>> from qlearn.autograd import ops, gradcheck
    >>> gradcheck(ops.Tanh, [np.linspace(-2, 2, 5)])
    True
    """
    args = [np.array(a, np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f"
            else a for a in args]
    if wrt is None:
        wrt = [i for i, a in enumerate(args) if isinstance(a, np.ndarray)
               and a.dtype == np.float64]
    _, out = _forward(fn, args, kwargs or {})
    rng = (random_state if isinstance(random_state, np.random.Generator)
           else np.random.default_rng(random_state))
    proj = rng.standard_normal(np.shape(out))
    analytic = analytical_grad(fn, args, proj, kwargs)
    for i in wrt:
        num = numerical_grad(fn, args, i, proj, kwargs, eps)
        ana = np.broadcast_to(np.asarray(analytic[i], np.float64), num.shape)
        if not np.allclose(ana, num, atol=atol, rtol=rtol):
            j = np.unravel_index(np.argmax(np.abs(ana - num)), num.shape)
            raise AssertionError(f"{fn.__name__}: gradient of input {i} differs from finite "
                                 f"differences at {j}: analytic {ana[j]}, numeric {num[j]}")
    return True
