"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""
import numpy as np

from .optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""SGD as ``torch.optim.SGD`` computes it.  For each parameter :math:`\theta` with
    gradient :math:`g`, weight decay :math:`\lambda`, momentum :math:`\mu`, dampening
    :math:`\tau` and learning rate :math:`\gamma`:

    .. math::
        \begin{aligned}
        g &\leftarrow g + \lambda\theta \\
        b &\leftarrow \mu b + (1-\tau) g \quad (b = g \text{ at the first step}) \\
        g &\leftarrow g + \mu b \text{ if nesterov, else } b \\
        \theta &\leftarrow \theta - \gamma g
        \end{aligned}

    >>> import qlearn as ql
    >>> from qlearn import nn, optim
    >>> w = nn.Parameter(np.array([1.0, -2.0], np.float32))
    >>> opt = optim.SGD([w], lr=0.1, momentum=0.9)
    >>> (w * w).sum().backward(); opt.step()
    >>> w.numpy()
    array([ 0.8, -1.6], dtype=float32)
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False):
        if lr < 0:
            raise ValueError(f"`lr` must be >= 0, got {lr}")
        if momentum < 0:
            raise ValueError(f"`momentum` must be >= 0, got {momentum}")
        if weight_decay < 0:
            raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns ``closure()`` if given."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, mu, damp = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov = group["weight_decay"], group["nesterov"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = -p.grad.data if group["maximize"] else p.grad.data
                if wd:
                    d = d + np.float32(wd) * p.data
                if mu:
                    state = self._state(p)
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = np.array(d, np.float32, copy=True)
                    else:
                        buf *= np.float32(mu)
                        buf += np.float32(1 - damp) * d
                    d = d + np.float32(mu) * buf if nesterov else buf
                p.data -= np.float32(lr) * d
        return loss
