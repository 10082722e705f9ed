"""SGD with optional momentum and L2 weight decay, exactly PyTorch's rule (chapter 07)."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, check_number

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent.

    Per parameter p with gradient grad, at each step (PyTorch's rule, no dampening)::

        g   = grad + weight_decay * p
        buf = g                     on the parameter's first update
        buf = momentum * buf + g    afterwards
        p  -= lr * buf              (with momentum = 0: p -= lr * g, and no buffer is kept)
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    def _validate(self, hyper: dict) -> None:
        super()._validate(hyper)
        check_number("SGD", "momentum", hyper["momentum"], 0.0)
        check_number("SGD", "weight_decay", hyper["weight_decay"], 0.0)

    def _state_names(self, hyper: dict) -> tuple:
        """The per-parameter state buffers of these hyperparameters: a ``momentum_buffer``
        when momentum is not 0, none otherwise.
        """
        return ("momentum_buffer",) if hyper["momentum"] != 0 else ()

    def _update(self, i, param, grad, state):
        """Update ``param`` in place with its gradient, as ``torch.optim.SGD``: add
        ``weight_decay * param`` to the gradient, then with momentum ``buf = momentum * buf + g``
        and ``g = buf``; finally ``param -= lr * g``.
        """
        step = self._scratch(param)
        g = grad
        if self.weight_decay != 0:
            np.multiply(param, self.weight_decay, out=step)
            step += grad
            g = step
        if self.momentum != 0:
            buf = state["momentum_buffer"]  # starts at zero, so the first update leaves buf = g
            buf *= self.momentum
            buf += g
            g = buf
        np.multiply(g, self.lr, out=step)
        param -= step
