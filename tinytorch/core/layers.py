"""Layers: Linear, Dropout, Flatten, and the containers Sequential and MLP (chapter 03).

Initial weights and Dropout's masks are drawn from the shared generator of
:mod:`tinytorch.random` (seeded with 0 at import; ``manual_seed(seed)`` restarts it), so a
fresh process builds the same model every time.
"""
from __future__ import annotations

import math

import numpy as np

from ..checks import check_int, is_real
from ..random import default_generator
from .activations import ReLU
from .autograd import make_op
from .module import Module, Parameter
from .tensor import Tensor, as_tensor

__all__ = ["Linear", "Dropout", "Flatten", "Sequential", "MLP"]


# --------------------------------------------------------------------------- Linear
class Linear(Module):
    """y = x @ weight.T + bias, applied to the last dimension of x.

    ``weight`` has shape (out_features, in_features) and ``bias`` (out_features,) (or is None
    when ``bias=False``), both float32 and drawn from uniform(-1/sqrt(in), 1/sqrt(in)):
    PyTorch's default (Kaiming-uniform with a = sqrt(5) reduces to exactly that bound).
    Input of shape (..., in_features) gives output of shape (..., out_features).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        """``y = x @ weight.T + bias``: a ``weight`` Parameter of shape (out_features, in_features)
        and, when ``bias``, a ``bias`` of shape (out_features,), both drawn uniformly from
        (-1/sqrt(in_features), 1/sqrt(in_features)) with tinytorch's default generator, as PyTorch.
        """
        super().__init__()
        self.in_features = check_int("Linear", "in_features", in_features, 1)
        self.out_features = check_int("Linear", "out_features", out_features, 1)
        bound = 1 / math.sqrt(self.in_features)
        rng = default_generator
        self.weight = Parameter(
            rng.uniform(-bound, bound, (self.out_features, self.in_features)).astype(np.float32))
        self.bias = (Parameter(rng.uniform(-bound, bound, self.out_features).astype(np.float32))
                     if bias else None)

    def forward(self, x) -> Tensor:
        """``x @ weight.T + bias`` for ``x`` of shape (..., in_features), as one graph node whose
        backward gives the gradients of x, weight and bias. Another last dimension raises
        ValueError naming the expected size and the shape.
        """
        x = as_tensor(x)
        data = x.data
        if data.ndim == 0 or data.shape[-1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}) expected input "
                             f"with last dimension {self.in_features}, got shape {data.shape}")
        # One fused op instead of transpose, matmul and add: fewer graph nodes per step.
        w, b = self.weight, self.bias
        if data.ndim > 2:  # (B, T, in): one 2-D product, which BLAS runs faster than a batch
            out = (data.reshape(-1, self.in_features) @ w.data.T).reshape(
                *data.shape[:-1], self.out_features)
        else:
            out = data @ w.data.T
        if b is not None:
            out += b.data

        def backward(g):
            g2, x2 = g, x.data
            if g.ndim != 2:                                  # leading dims as one batch dim
                g2, x2 = g.reshape(-1, self.out_features), x2.reshape(-1, self.in_features)
            grad_x = None
            if x.requires_grad:
                grad_x = g2 @ w.data
                if g.ndim != 2:
                    grad_x = grad_x.reshape(x.shape)
            grad_w = g2.T @ x2
            grad_b = np.add.reduce(g2, axis=0) if b is not None else None
            return grad_x, grad_w, grad_b

        parents = (x, w) if b is None else (x, w, b)
        return make_op(out, parents, backward, "linear")

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


# --------------------------------------------------------------------------- Dropout
class Dropout(Module):
    """Inverted dropout: in training mode each entry is zeroed with probability ``p`` and the
    survivors are scaled by 1/(1-p), so the expected output equals the input and nothing
    needs rescaling at evaluation time; in eval mode the input passes through unchanged.

    ``p = 1`` zeroes everything (no division by zero); ``p = 0`` is the identity.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not is_real(p):
            raise TypeError(f"Dropout probability must be a number; got {p!r}")
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout probability must be in [0, 1]; got p={p}")
        self.p = float(p)

    def forward(self, x) -> Tensor:
        """In training mode, each element of ``x`` zeroed with probability ``p`` and the others
        scaled by 1/(1-p) (so the expectation is unchanged; p = 1 gives zeros); the gradient goes
        through the same mask. In eval mode, or with p = 0, ``x`` itself.
        """
        x = as_tensor(x)
        if not self.training or self.p == 0:
            return x
        keep = default_generator.random(x.shape) >= self.p
        scale = 0.0 if self.p == 1 else 1 / (1 - self.p)
        dtype = x.dtype if x.dtype.kind == "f" else np.float32
        mask = (keep * scale).astype(dtype)
        return make_op(x.data * mask, (x,), lambda g: (g * mask,), "dropout")

    def extra_repr(self) -> str:
        return f"p={self.p}"


# --------------------------------------------------------------------------- Flatten
class Flatten(Module):
    """Merge dimensions ``start_dim`` .. ``end_dim`` into one: (N, C, H, W) -> (N, C*H*W)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x) -> Tensor:
        """``x`` with dimensions ``start_dim`` … ``end_dim`` (inclusive, negative counting from
        the end) merged into one, as ``torch.flatten``. Dimensions outside the tensor, or a start
        after the end, raise ValueError naming them and the shape.
        """
        x = as_tensor(x)
        ndim = x.ndim
        start, end = self.start_dim, self.end_dim
        if not (-ndim <= start < ndim and -ndim <= end < ndim) or start % ndim > end % ndim:
            raise ValueError(f"Flatten(start_dim={start}, end_dim={end}) cannot flatten a "
                             f"tensor of shape {x.shape}")
        start, end = start % ndim, end % ndim
        merged = int(np.prod(x.shape[start:end + 1]))
        return x.reshape(x.shape[:start] + (merged,) + x.shape[end + 1:])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


# --------------------------------------------------------------------------- containers
class Sequential(Module):
    """Apply layers in order: ``Sequential(a, b, c)(x) == c(b(a(x)))``.

    Also accepts one list or tuple of layers. Supports ``len``, indexing (an int gives a
    layer, a slice a new Sequential sharing the layers) and iteration. Layers are stored as
    attributes named "0", "1", …, so parameter names match PyTorch's ("0.weight",
    "0.bias", "2.weight", …) and ``parameters()`` lists them layer by layer.
    """

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for layer in layers:
            self.append(layer)

    def append(self, layer: Module) -> Sequential:
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential takes Modules; layer {len(self)} is "
                            f"{type(layer).__name__} ({layer!r})")
        setattr(self, str(len(self)), layer)
        return self

    @property
    def layers(self) -> list:
        """The layers, in forward order."""
        return [value for name, value in vars(self).items() if name.isdigit()]

    def forward(self, x):
        """The output of the last layer: ``x`` passed through each layer in order."""
        for name, layer in vars(self).items():  # no list built: this runs every step
            if name.isdigit():
                x = layer(x)
        return x

    def __len__(self) -> int:
        return sum(1 for name in vars(self) if name.isdigit())

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(self.layers[index])
        return self.layers[index]


class MLP(Sequential):
    """A multi-layer perceptron: ``MLP([64, 128, 10])`` is
    ``Sequential(Linear(64, 128), ReLU(), Linear(128, 10))`` — an activation between every two
    Linear layers and none after the last (a loss such as CrossEntropyLoss takes the logits).

    ``activation`` is a Module class (or any zero-argument callable returning a Module); a
    fresh instance goes between each pair of Linear layers.
    """

    def __init__(self, sizes, activation=ReLU, bias: bool = True):
        """Linear layers ``sizes[0] -> sizes[1] -> … -> sizes[-1]`` with a fresh ``activation()``
        between consecutive ones (none after the last), held as a Sequential; ``bias`` for every
        Linear. Fewer than two sizes raise ValueError.
        """
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least two sizes (input and output); got {sizes}")
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if i > 0:
                layers.append(activation())
            layers.append(Linear(n_in, n_out, bias=bias))
        super().__init__(layers)
        self.sizes = sizes
