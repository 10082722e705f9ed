"""What autograd saves you from writing: a training step in plain numpy, gradients by hand.

This is the benchmarks' reference implementation, and a teaching artefact. Each layer has a
``forward`` that keeps what its backward pass will need, and a ``backward`` that applies the
chain rule written out by hand: given dL/d(output), return dL/d(input) and store
dL/d(parameter) in ``grads``. There is no graph and no Tensor, only numpy arrays; the order
of the backward calls is fixed by hand too (the reverse of the forward). In tinytorch each
operation states its forward and one local derivative, and ``loss.backward()`` does the rest.

Conventions are tinytorch's (and PyTorch's), so the two can be compared step by step: float32
arrays, NCHW images, ``Linear`` weights of shape (out, in) applied as ``x @ W.T + b``,
``Conv2d`` weights of shape (F, C, kh, kw), cross-entropy averaged over the batch, max-pool
gradients routed to the first maximum of each window, and Adam with PyTorch's bias correction.

    model = Sequential([Linear(W1, b1), ReLU(), Linear(W2, b2)])
    optimizer = Adam(model.params, lr=1e-3)
    loss = train_step(model, optimizer, x, y)      # forward, backward, update; a float
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["Linear", "ReLU", "Conv2d", "MaxPool2d", "Flatten", "Sequential",
           "cross_entropy", "Adam", "train_step", "im2col", "col2im"]


# ------------------------------------------------------------------------------ layers
class Linear:
    """y = x @ W.T + b, for x of shape (N, in), W (out, in), b (out,).

    Backward, from dL/dy = g of shape (N, out):
        dL/dx = g @ W          (N, in)
        dL/dW = g.T @ x        (out, in): each weight sums its effect over the batch
        dL/db = g.sum(axis=0)  (out,)
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray):
        self.weight, self.bias = weight, bias
        self.params = [weight, bias]

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.weight.T + self.bias

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True):
        self.grads = [grad_out.T @ self.x, grad_out.sum(axis=0)]
        return grad_out @ self.weight if need_input_grad else None


class ReLU:
    """y = max(x, 0). Backward: the gradient passes where x > 0 and is 0 elsewhere."""

    params: list = []
    grads: list = []

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.positive = x > 0
        return np.maximum(x, 0)

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True):
        return grad_out * self.positive


class Flatten:
    """(N, C, H, W) -> (N, C*H*W). Backward: reshape the gradient back."""

    params: list = []
    grads: list = []

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True):
        return grad_out.reshape(self.shape)


# ------------------------------------------------------------------------------ convolution
def im2col(x: np.ndarray, kh: int, kw: int, padding: int) -> np.ndarray:
    """Every (kh, kw) window of the zero-padded x (stride 1) as a column.

    x: (N, C, H, W) -> (N, C*kh*kw, OH*OW), laid out as ``torch.nn.functional.unfold``:
    ``cols[n, (c*kh + i)*kw + j, oh*OW + ow] = padded_x[n, c, oh + i, ow + j]``.
    ``sliding_window_view`` sees every window without copying; the reshape is the one copy.
    """
    n, c, h, w = x.shape
    p = padding
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    oh, ow = h + 2 * p - kh + 1, w + 2 * p - kw + 1
    windows = sliding_window_view(padded, (kh, kw), axis=(2, 3))  # (N, C, OH, OW, kh, kw)
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, oh * ow)


def col2im(blocks, x_shape: tuple, kh: int, kw: int, padding: int, dtype) -> np.ndarray:
    """The adjoint of im2col: add each column entry back onto the pixel it was copied from.

    ``blocks`` yields, for each kernel offset (i, j) in row-major order, the (N, C, OH, OW)
    entries of the columns under that offset, i.e. ``cols.reshape(N, C, kh, kw, OH, OW)[:,
    :, i, j]``. A pixel covered by several windows receives the sum of their entries;
    entries that came from the zero padding are dropped.
    """
    n, c, h, w = x_shape
    p = padding
    oh, ow = h + 2 * p - kh + 1, w + 2 * p - kw + 1
    padded = np.zeros((n, c, h + 2 * p, w + 2 * p), dtype=dtype)
    offsets = [(i, j) for i in range(kh) for j in range(kw)]
    for (i, j), block in zip(offsets, blocks, strict=True):
        padded[:, :, i:i + oh, j:j + ow] += block
    return padded[:, :, p:p + h, p:p + w]


class Conv2d:
    """Stride-1 convolution with zero padding: out[n] = W_matrix @ cols[n] + b.

    With W_matrix = W.reshape(F, C*kh*kw) and cols = im2col(x), of shape (N, C*kh*kw, P),
    P = OH*OW output positions. Backward, from g = dL/dout reshaped to (N, F, P):
        dL/dW    = sum over n of g[n] @ cols[n].T     then reshaped to (F, C, kh, kw)
        dL/db    = g summed over n and P
        dL/dcols = W_matrix.T @ g[n] for each n       and dL/dx = col2im(dL/dcols)
    dL/dW is computed transposed (sum of cols[n] @ g[n].T), which BLAS runs faster, and
    dL/dcols one kernel offset at a time: its rows for offset (i, j) are W[:, :, i, j].T @ g,
    an (N, C, P) block that col2im adds onto the image before the next one is formed.
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray, padding: int = 0):
        self.weight, self.bias, self.padding = weight, bias, padding
        self.params = [weight, bias]

    def forward(self, x: np.ndarray) -> np.ndarray:
        f, _, kh, kw = self.weight.shape
        n, _, h, w = x.shape
        oh, ow = h + 2 * self.padding - kh + 1, w + 2 * self.padding - kw + 1
        self.x_shape = x.shape
        self.cols = im2col(x, kh, kw, self.padding)
        out = np.matmul(self.weight.reshape(f, -1), self.cols)   # (N, F, P)
        out += self.bias[:, None]
        return out.reshape(n, f, oh, ow)

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True):
        f, c, kh, kw = self.weight.shape
        n, p = len(grad_out), grad_out.shape[2] * grad_out.shape[3]
        g = grad_out.reshape(n, f, p)                                     # (N, F, P)
        grad_weight_t = np.matmul(self.cols, g.transpose(0, 2, 1)).sum(axis=0)   # (C*kh*kw, F)
        self.grads = [grad_weight_t.T.reshape(self.weight.shape), g.sum(axis=(0, 2))]
        if not need_input_grad:  # a network's input needs no gradient: skip col2im
            return None
        per_offset = np.ascontiguousarray(self.weight.transpose(2, 3, 1, 0))   # (kh, kw, C, F)
        block = np.empty((n, c, p), dtype=np.result_type(self.weight, g))  # reused
        oh, ow = grad_out.shape[2:]
        blocks = (np.matmul(per_offset[i, j], g, out=block).reshape(n, c, oh, ow)
                  for i in range(kh) for j in range(kw))
        return col2im(blocks, self.x_shape, kh, kw, self.padding, block.dtype)


class MaxPool2d:
    """Max over non-overlapping k x k windows (stride k); rows/columns that do not fill a
    window are dropped, as in PyTorch.

    Forward visits the k*k offsets (i, j) of a window; the pixels at offset (i, j) of every
    window form one strided slice ``x[:, :, i::k, j::k]``, so each visit is one vectorised
    ``np.maximum`` over the whole batch.

    Backward: each window's gradient goes to its first maximum in row-major order (PyTorch's
    rule: with ties, as in a blank image region, only one input receives it).
    """

    params: list = []
    grads: list = []

    def __init__(self, kernel_size: int):
        self.k = kernel_size

    def _offsets(self):
        """The strided slice of the input holding offset (i, j) of every window."""
        oh, ow = self.out_shape[2:]
        k = self.k
        for i in range(k):
            for j in range(k):
                yield (slice(None), slice(None), slice(i, i + k * oh, k), slice(j, j + k * ow, k))

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        self.x = x
        self.out_shape = (n, c, h // self.k, w // self.k)
        out = None
        for offset in self._offsets():
            out = x[offset].copy() if out is None else np.maximum(out, x[offset], out=out)
        self.out = out
        return out

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True):
        grad_x = np.zeros(self.x.shape, dtype=grad_out.dtype)
        unclaimed = np.ones(self.out.shape, dtype=bool)  # windows whose maximum is not met yet
        for offset in self._offsets():
            first = (self.x[offset] == self.out) & unclaimed
            unclaimed &= ~first
            grad_x[offset] = grad_out * first
        return grad_x


class Sequential:
    """Layers applied in order; backward visits them in reverse, by hand."""

    def __init__(self, layers: list):
        self.layers = list(layers)
        self.params = [p for layer in self.layers for p in layer.params]

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out: np.ndarray) -> list:
        """Backpropagate dL/d(output); return the parameter gradients, in ``params`` order."""
        for position in range(len(self.layers) - 1, -1, -1):
            grad_out = self.layers[position].backward(grad_out, need_input_grad=position > 0)
        return [g for layer in self.layers for g in layer.grads]


# ------------------------------------------------------------------------------ loss
def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple:
    """Mean cross-entropy of logits (N, C) against class indices (N,), and dL/dlogits.

    loss = mean over n of -log softmax(logits[n])[targets[n]], computed stably from
    z = logits - row max. Its gradient is the famous short one: (softmax - onehot) / N.
    """
    n = len(logits)
    z = logits - logits.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = -log_probs[rows, targets].sum() / n
    grad = np.exp(log_probs)
    grad[rows, targets] -= 1
    grad /= n
    return float(loss), grad


# ------------------------------------------------------------------------------ optimizer
class Adam:
    """Adam with bias correction, as PyTorch computes it. On update t (1, 2, ...), per
    parameter p with gradient g::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """

    def __init__(self, params: list, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list) -> None:
        beta1, beta2 = self.betas
        self.t += 1
        step_size = self.lr / (1 - beta1 ** self.t)
        root_correction = math.sqrt(1 - beta2 ** self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * (g * g)
            p -= step_size * m / (np.sqrt(v) / root_correction + self.eps)


# ------------------------------------------------------------------------------ one step
def train_step(model: Sequential, optimizer: Adam, x: np.ndarray, y: np.ndarray) -> float:
    """Forward, loss, backward, update; returns the batch loss (before the update)."""
    logits = model.forward(x)
    loss, grad_logits = cross_entropy(logits, y)
    optimizer.step(model.backward(grad_logits))
    return loss
