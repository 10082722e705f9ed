"""Convolution and pooling (chapter 09): im2col turns a convolution into one matrix product.

A convolution slides F kernels of shape (C, kh, kw) over an image and, at every output
position, takes a dot product between each kernel and the window under it. im2col copies
every window into a column of a matrix: then all F kernels at all positions are a single
(F, C*kh*kw) @ (C*kh*kw, OH*OW) product per image, work that BLAS does at full speed.
The backward pass reuses the saved columns: dW is one product with them, and dX sends the
columns' gradients back to the pixels they were copied from (col2im), adding up where
windows overlap. Pooling reduces each window (max or mean) instead of multiplying it,
with the same per-offset strided slices that col2im adds through.

Layouts follow PyTorch: images are NCHW (batch, channels, height, width); ``im2col`` and
``col2im`` match ``torch.nn.functional.unfold`` and ``fold``.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..checks import is_int
from ..random import default_generator
from .autograd import make_op
from .module import Module, Parameter
from .tensor import Tensor

__all__ = ["Conv2d", "MaxPool2d", "AvgPool2d", "conv2d", "max_pool2d", "avg_pool2d",
           "im2col", "col2im", "conv_output_shape"]


# ----------------------------------------------------------------------------- geometry
def _pair(value, name: str) -> tuple:
    """An int or a pair of ints, as a pair of Python ints."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or any(not is_int(v)
                             for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints; got {value!r}")
    return int(pair[0]), int(pair[1])


def _geometry(kernel_size, stride, padding) -> tuple:
    """Validated (kernel, stride, padding) pairs."""
    kernel = _pair(kernel_size, "kernel_size")
    stride = _pair(stride, "stride")
    padding = _pair(padding, "padding")
    if min(kernel) < 1:
        raise ValueError(f"kernel_size must be positive; got {kernel}")
    if min(stride) < 1:
        raise ValueError(f"stride must be positive; got {stride}")
    if min(padding) < 0:
        raise ValueError(f"padding must be non-negative; got {padding}")
    return kernel, stride, padding


def _output_hw(shape: tuple, kernel: tuple, stride: tuple, padding: tuple, who: str) -> tuple:
    """(OH, OW) for an input whose last two dimensions are (H, W); ``shape`` is for messages."""
    h, w = shape[-2:]
    padded_h, padded_w = h + 2 * padding[0], w + 2 * padding[1]
    if kernel[0] > padded_h or kernel[1] > padded_w:
        raise ValueError(
            f"{who}: kernel size {kernel} is larger than the input of shape {shape} "
            f"padded by {padding} (padded height x width: {padded_h} x {padded_w})")
    return (padded_h - kernel[0]) // stride[0] + 1, (padded_w - kernel[1]) // stride[1] + 1


def conv_output_shape(h: int, w: int, kernel_size, stride=1, padding=0) -> tuple:
    """(OH, OW) of a convolution or pooling: OH = (H + 2*padding - kernel) // stride + 1."""
    kernel, stride, padding = _geometry(kernel_size, stride, padding)
    return _output_hw((h, w), kernel, stride, padding, "conv_output_shape")


def _check_4d(x: Tensor, who: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{who} expects a 4-D input (N, C, H, W); got shape {x.shape}")


# ----------------------------------------------------------------------------- im2col
def _pad(x: np.ndarray, padding: tuple) -> np.ndarray:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    return padded


def _windows(x: np.ndarray, kernel: tuple, stride: tuple, padding: tuple) -> np.ndarray:
    """A view (no copy) of shape (N, C, kh, kw, OH, OW) of the zero-padded input.

    Element [n, c, i, j, oh, ow] is padded_x[n, c, oh*sh + i, ow*sw + j]: the pixel under
    kernel offset (i, j) when the kernel sits at output position (oh, ow).
    """
    (sh, sw) = stride
    every_window = sliding_window_view(_pad(x, padding), kernel, axis=(2, 3))
    return every_window[:, :, ::sh, ::sw].transpose(0, 1, 4, 5, 2, 3)


def im2col(x, kh: int, kw: int, stride=1, padding=0) -> np.ndarray:
    """The column matrices of a batch of images, as ``torch.nn.functional.unfold``.

    ``x`` has shape (N, C, H, W). The result has shape (N, C*kh*kw, OH*OW): for image n,
    column p = oh*OW + ow holds the window the kernel covers at output position (oh, ow),
    and row r = (c*kh + i)*kw + j holds kernel offset (i, j) of channel c, i.e.
    ``result[n, (c*kh + i)*kw + j, oh*OW + ow] = padded_x[n, c, oh*sh + i, ow*sw + j]``.
    A convolution is then ``weight.reshape(F, C*kh*kw) @ result``, of shape (N, F, OH*OW).
    """
    x = x.data if isinstance(x, Tensor) else np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"im2col expects a 4-D input (N, C, H, W); got shape {x.shape}")
    kernel, stride, padding = _geometry((kh, kw), stride, padding)
    n, c = x.shape[:2]
    oh, ow = _output_hw(x.shape, kernel, stride, padding, "im2col")
    return _windows(x, kernel, stride, padding).reshape(n, c * kh * kw, oh * ow)


def _offsets(kernel: tuple, stride: tuple, out_hw: tuple):
    """For each kernel offset (i, j), in row-major order, the index of the strided slice of
    a (padded) image holding the pixels under that offset at every output position: an
    (N, C, OH, OW) view whose [n, c, oh, ow] is padded_x[n, c, oh*sh + i, ow*sw + j].

    Looping over these kh*kw offsets (9 for a 3x3 kernel), each slice covering every image,
    channel and output position at once, is how col2im and pooling stay vectorised.
    """
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    for i in range(kh):
        for j in range(kw):
            yield i, j, (slice(None), slice(None), slice(i, i + sh * oh, sh),
                         slice(j, j + sw * ow, sw))


def _col2im(blocks, input_shape: tuple, kernel: tuple, stride: tuple, padding: tuple,
            dtype) -> np.ndarray:
    """Add column entries back onto the (N, C, H, W) image they were copied from.

    ``blocks`` gives, for each kernel offset (i, j) in row-major order, the (N, C, OH, OW)
    column entries under that offset: ``cols[:, :, i, j]`` in _windows' layout. Each block
    is added onto the strided slice of the padded image under its offset, so overlapping
    windows add up, and the padding is cut off at the end. ``blocks`` may be a generator
    that computes each block only when it is needed (conv2d's backward pass does).
    """
    n, c, h, w = input_shape
    ph, pw = padding
    out_hw = _output_hw(input_shape, kernel, stride, padding, "col2im")
    padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dtype)
    for (_, _, under_offset), block in zip(_offsets(kernel, stride, out_hw), blocks):
        padded[under_offset] += block
    return padded[:, :, ph:ph + h, pw:pw + w]


def col2im(cols, input_shape: tuple, kh: int, kw: int, stride=1, padding=0) -> np.ndarray:
    """The adjoint of :func:`im2col`, as ``torch.nn.functional.fold``.

    ``cols`` has im2col's layout (N, C*kh*kw, OH*OW); each entry is added to the pixel of an
    image of shape ``input_shape`` = (N, C, H, W) that im2col copied it from (entries that
    came from the zero padding are dropped). So a pixel covered by k windows receives the
    sum of k entries: this is how a convolution's input gradient is formed.
    """
    cols = cols.data if isinstance(cols, Tensor) else np.asarray(cols)
    kernel, stride, padding = _geometry((kh, kw), stride, padding)
    if len(input_shape) != 4:
        raise ValueError(f"col2im expects a 4-D input_shape (N, C, H, W); got {input_shape}")
    n, c = input_shape[:2]
    oh, ow = _output_hw(tuple(input_shape), kernel, stride, padding, "col2im")
    expected = (n, c * kh * kw, oh * ow)
    if cols.shape != expected:
        raise ValueError(f"col2im: columns of shape {cols.shape} do not match input shape "
                         f"{tuple(input_shape)} with kernel {kernel}, stride {stride}, "
                         f"padding {padding}; expected {expected}")
    cols = cols.reshape(n, c, kh, kw, oh, ow)
    blocks = (cols[:, :, i, j] for i in range(kh) for j in range(kw))
    return _col2im(blocks, tuple(input_shape), kernel, stride, padding, cols.dtype)


# ----------------------------------------------------------------------------- functional ops
def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
           padding=0) -> Tensor:
    """2-D cross-correlation (what deep learning calls convolution), one fused op.

    x: (N, C, H, W); weight: (F, C, kh, kw); bias: (F,) or None. Returns (N, F, OH, OW) with
    out[n, f, oh, ow] = bias[f] + sum over c, i, j of
    weight[f, c, i, j] * padded_x[n, c, oh*sh + i, ow*sw + j].
    """
    _check_4d(x, "conv2d")
    n, c, h, w = x.shape
    f, weight_c, kh, kw = weight.shape
    if c != weight_c:
        raise ValueError(f"conv2d: input of shape {x.shape} has {c} channels but the weight of "
                         f"shape {weight.shape} expects in_channels={weight_c}")
    kernel, stride, padding = _geometry((kh, kw), stride, padding)
    oh, ow = _output_hw(x.shape, kernel, stride, padding, "conv2d")

    cols = im2col(x.data, kh, kw, stride, padding)      # (N, C*kh*kw, OH*OW)
    weight_matrix = weight.data.reshape(f, c * kh * kw)  # (F, C*kh*kw)
    out = np.matmul(weight_matrix, cols)                 # (N, F, OH*OW): NCHW order already
    if bias is not None:
        out += bias.data[:, None]

    def backward(grad_out):
        grad_out = grad_out.reshape(n, f, oh * ow)
        grad_x = grad_weight = grad_bias = None
        if x.requires_grad:  # skipped for a network's input: col2im is the costly part
            # dL/dcols = weight_matrix.T @ grad_out, (N, C*kh*kw, OH*OW), goes to col2im one
            # kernel offset at a time: its rows for offset (i, j) are weight[:, :, i, j].T @
            # grad_out. Each block is added onto the image before the next is computed into
            # the same buffer, so the whole matrix (kh*kw times the input) never exists.
            per_offset = np.ascontiguousarray(weight.data.transpose(2, 3, 1, 0))  # kh,kw,C,F
            block = np.empty((n, c, oh * ow), dtype=np.result_type(per_offset, grad_out))
            blocks = (np.matmul(per_offset[i, j], grad_out, out=block).reshape(n, c, oh, ow)
                      for i in range(kh) for j in range(kw))
            grad_x = _col2im(blocks, x.shape, kernel, stride, padding, block.dtype)
        if weight.requires_grad:
            # Summed over n, cols[n] @ grad_out[n].T: dW transposed, (C*kh*kw, F). BLAS runs
            # this orientation faster than grad_out[n] @ cols[n].T, which has only F rows.
            grad_weight_t = np.matmul(cols, grad_out.transpose(0, 2, 1)).sum(axis=0)
            grad_weight = grad_weight_t.T.reshape(weight.shape)
        if bias is not None and bias.requires_grad:
            grad_bias = grad_out.sum(axis=(0, 2))
        return (grad_x, grad_weight, grad_bias)[:len(parents)]

    parents = (x, weight) if bias is None else (x, weight, bias)
    return make_op(out.reshape(n, f, oh, ow), parents, backward, "conv2d")


def _pool_geometry(x: Tensor, kernel_size, stride, who: str) -> tuple:
    _check_4d(x, who)
    kernel, stride, padding = _geometry(kernel_size, kernel_size if stride is None else stride, 0)
    return kernel, stride, _output_hw(x.shape, kernel, stride, padding, who)


def max_pool2d(x: Tensor, kernel_size, stride=None) -> Tensor:
    """The largest value of each (kh, kw) window; ``stride`` defaults to ``kernel_size``.

    The gradient of each window goes to exactly one input: its first maximum in row-major
    window order, as in PyTorch. (Sending it to every tied maximum would inflate it in flat
    regions.) Windows that overlap add their gradients. A window holding a NaN has the
    maximum NaN, and its gradient goes to its last NaN in that order, as PyTorch's CPU
    kernel does.
    """
    kernel, stride, out_hw = _pool_geometry(x, kernel_size, stride, "max_pool2d")
    pixels = x.data
    out = None
    for _, _, under_offset in _offsets(kernel, stride, out_hw):
        candidate = pixels[under_offset]
        out = candidate.copy() if out is None else np.maximum(out, candidate, out=out)

    def backward(grad_out):
        grad_x = np.zeros(pixels.shape, dtype=grad_out.dtype)
        unclaimed = np.ones(out.shape, dtype=bool)  # windows whose maximum is not found yet
        for _, _, under_offset in _offsets(kernel, stride, out_hw):
            first = pixels[under_offset] == out
            first &= unclaimed
            unclaimed &= ~first
            grad_x[under_offset] += np.where(first, grad_out, 0)
        if unclaimed.any():  # only a NaN maximum equals no input (NaN != NaN)
            for _, _, under_offset in reversed(list(_offsets(kernel, stride, out_hw))):
                last = np.isnan(pixels[under_offset])
                last &= unclaimed
                unclaimed &= ~last
                grad_x[under_offset] += np.where(last, grad_out, 0)
        return (grad_x,)

    return make_op(out, (x,), backward, "max_pool2d")


def avg_pool2d(x: Tensor, kernel_size, stride=None) -> Tensor:
    """The mean of each (kh, kw) window; ``stride`` defaults to ``kernel_size``."""
    kernel, stride, out_hw = _pool_geometry(x, kernel_size, stride, "avg_pool2d")
    pixels = x.data
    window_size = kernel[0] * kernel[1]
    total = None
    for _, _, under_offset in _offsets(kernel, stride, out_hw):
        candidate = pixels[under_offset]
        total = candidate.copy() if total is None else np.add(total, candidate, out=total)
    out = total / window_size

    def backward(grad_out):
        share = grad_out / window_size  # every pixel of a window gets an equal part
        blocks = [share] * window_size  # the same block under every kernel offset
        return (_col2im(blocks, pixels.shape, kernel, stride, (0, 0), share.dtype),)

    return make_op(out, (x,), backward, "avg_pool2d")


# ----------------------------------------------------------------------------- modules
def _positive_int(value, name: str) -> int:
    if not is_int(value):
        raise TypeError(f"{name} must be an int; got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be positive; got {value}")
    return int(value)


class Conv2d(Module):
    """Applies ``out_channels`` learned (in_channels, kh, kw) kernels across an NCHW batch.

    ``weight`` has shape (out_channels, in_channels, kh, kw) and ``bias`` (out_channels,);
    both start uniform in (-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels*kh*kw,
    as in PyTorch, drawn from the shared generator (``manual_seed`` makes them repeatable).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.kernel_size, self.stride, self.padding = _geometry(kernel_size, stride, padding)
        kh, kw = self.kernel_size
        bound = 1.0 / np.sqrt(in_channels * kh * kw)
        rng = default_generator
        self.weight = Parameter(rng.uniform(-bound, bound, (out_channels, in_channels, kh, kw))
                                .astype(np.float32))
        self.bias = (Parameter(rng.uniform(-bound, bound, out_channels).astype(np.float32))
                     if bias else None)

    def forward(self, x: Tensor) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(x)
        _check_4d(x, "Conv2d")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2d: input of shape {x.shape} has {x.shape[1]} channels but "
                             f"in_channels={self.in_channels}")
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.bias is None:
            text += ", bias=False"
        return text


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None):
        super().__init__()
        stride = kernel_size if stride is None else stride
        _geometry(kernel_size, stride, 0)  # fail at construction, not at the first forward
        self.kernel_size, self.stride = kernel_size, stride

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class MaxPool2d(_Pool2d):
    """Max over (kh, kw) windows; ``stride`` defaults to ``kernel_size``. See max_pool2d."""

    def forward(self, x: Tensor) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(x)
        return max_pool2d(x, self.kernel_size, self.stride)


class AvgPool2d(_Pool2d):
    """Mean over (kh, kw) windows; ``stride`` defaults to ``kernel_size``."""

    def forward(self, x: Tensor) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(x)
        return avg_pool2d(x, self.kernel_size, self.stride)
