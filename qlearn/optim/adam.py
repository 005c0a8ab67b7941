"""Adam and AdamW."""
import math

import numpy as np

from .optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam as ``torch.optim.Adam`` computes it.  At step :math:`t`, with
    :math:`\beta_1, \beta_2` = ``betas``:

    .. math::
        \begin{aligned}
        g &\leftarrow g + \lambda\theta \quad\text{(weight_decay; AdamW decays } \theta
            \text{ directly instead)}\\
        m &\leftarrow \beta_1 m + (1-\beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2 \\
        \theta &\leftarrow \theta - \frac{\gamma}{1-\beta_1^t}\,
            \frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon}
        \end{aligned}

    (``amsgrad`` uses the running maximum of :math:`v`.)

    >>> import qlearn as ql
    >>> from qlearn import nn, optim
    >>> w = nn.Parameter(np.array([1.0, -2.0], np.float32))
    >>> opt = optim.Adam([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> w.numpy().round(4)
    array([ 0.9, -1.9], dtype=float32)
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False):
        if lr < 0:
            raise ValueError(f"`lr` must be >= 0, got {lr}")
        if eps < 0:
            raise ValueError(f"`eps` must be >= 0, got {eps}")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"`betas` must be in [0, 1), got {betas}")
        if weight_decay < 0:
            raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns ``closure()`` if given."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
            wd = group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad.data if group["maximize"] else p.grad.data
                if wd and self._decoupled:
                    p.data *= np.float32(1 - lr * wd)
                elif wd:
                    g = g + np.float32(wd) * p.data
                state = self._state(p)
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = np.zeros_like(p.data)
                    state["exp_avg_sq"] = np.zeros_like(p.data)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = np.zeros_like(p.data)
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m += (g - m) * np.float32(1 - b1)          # lerp, as torch
                v *= np.float32(b2)
                v += np.float32(1 - b2) * g * g
                if group["amsgrad"]:
                    np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
                    v = state["max_exp_avg_sq"]
                step_size = lr / (1 - b1 ** t)
                denom = np.sqrt(v) / np.float32(math.sqrt(1 - b2 ** t)) + np.float32(eps)
                p.data -= np.float32(step_size) * (m / denom)
        return loss


class AdamW(Adam):
    r"""Adam with decoupled weight decay: :math:`\theta \leftarrow \theta(1 - \gamma\lambda)`
    before the Adam step (``torch.optim.AdamW``; default ``weight_decay=0.01``).

    >>> import numpy as np
    >>> from qlearn import nn, optim
    >>> w = nn.Parameter(np.array([1.0], np.float32))
    >>> opt = optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> (w * 0).sum().backward(); opt.step()      # zero gradient: only the decay acts
    >>> w.numpy()
    array([0.95], dtype=float32)
    """

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
