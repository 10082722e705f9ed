"""Adam and AdamW: per-coordinate step sizes from running moments (chapter 07)."""
from __future__ import annotations

import math

import numpy as np

from .optimizer import Optimizer, check_number

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction, as PyTorch computes it.

    Per parameter p with gradient grad, on its t-th update (t = 1, 2, ...)::

        g  = grad + weight_decay * p                    (L2 penalty folded into the gradient)
        m  = beta1 * m + (1 - beta1) * g                (buffer "exp_avg")
        v  = beta2 * v + (1 - beta2) * g * g            (buffer "exp_avg_sq")
        p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """

    _decoupled_weight_decay = False

    def __init__(self, params, lr: float = 0.001, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay))

    def _validate(self, hyper: dict) -> None:
        super()._validate(hyper)
        owner = type(self).__name__
        betas = hyper["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{owner}: betas must be a pair (beta1, beta2); got {betas!r}")
        for k, beta in enumerate(betas):
            check_number(owner, f"beta at index {k}", beta, 0.0, high=1.0)
        check_number(owner, "eps", hyper["eps"], 0.0, low_open=True)
        check_number(owner, "weight_decay", hyper["weight_decay"], 0.0)

    def _state_names(self, hyper: dict) -> tuple:
        """The per-parameter state buffers: ``exp_avg`` (first moment) and ``exp_avg_sq``
        (second moment), both starting at zero.
        """
        return ("exp_avg", "exp_avg_sq")

    def _update(self, i, param, grad, state):
        """Update ``param`` in place, as ``torch.optim.Adam`` (AdamW when weight decay is
        decoupled): with step count ``t`` of this parameter, ``m = b1*m + (1-b1)*g``,
        ``v = b2*v + (1-b2)*g**2`` and
        ``param -= lr * (m / (1-b1**t)) / (sqrt(v / (1-b2**t)) + eps)``; weight decay adds
        ``weight_decay * param`` to ``g``, or (decoupled) first scales ``param`` by
        ``1 - lr * weight_decay``.
        """
        beta1, beta2 = self.betas
        t = self.param_steps[i]
        g = grad
        if self.weight_decay != 0:
            if self._decoupled_weight_decay:
                param *= 1 - self.lr * self.weight_decay
            else:
                g = self._scratch(param, 1)
                np.multiply(param, self.weight_decay, out=g)
                g += grad
        m, v, work = state["exp_avg"], state["exp_avg_sq"], self._scratch(param, 0)
        m *= beta1
        np.multiply(g, 1 - beta1, out=work)
        m += work
        v *= beta2
        np.multiply(g, g, out=work)
        work *= 1 - beta2
        v += work
        np.sqrt(v, out=work)  # work becomes the denominator
        work /= math.sqrt(1 - beta2 ** t)
        work += self.eps
        np.divide(m, work, out=work)
        work *= self.lr / (1 - beta1 ** t)
        param -= work


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as PyTorch's AdamW.

    Before the Adam update (which then uses the raw gradient)::

        p -= lr * weight_decay * p
    """

    _decoupled_weight_decay = True

    def __init__(self, params, lr: float = 0.001, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
