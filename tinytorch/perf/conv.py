"""One convolution, three ways (chapter 17): Python loops, one einsum over a window view,
and the package's ``conv2d`` (im2col, then one BLAS product per image; chapter 09).

All three compute, for x (N, C, H, W) and weight (F, C, kh, kw)::

    out[n, f, oh, ow] = bias[f] + sum over c, i, j of
                        weight[f, c, i, j] * padded_x[n, c, oh*sh + i, ow*sw + j]

and return a numpy array (N, F, OH, OW). They take numpy arrays or Tensors; no gradient.
"""
from __future__ import annotations

import numpy as np

from ..core import spatial

__all__ = ["conv2d_loops", "conv2d_windows"]


def _check_conv(who: str, x, weight, bias, stride, padding) -> tuple:
    x = np.asarray(getattr(x, "data", x))
    weight = np.asarray(getattr(weight, "data", weight))
    bias = None if bias is None else np.asarray(getattr(bias, "data", bias))
    if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"{who}: needs x (N, C, H, W) and weight (F, C, kh, kw) with the same "
                         f"C; got shapes {x.shape} and {weight.shape}")
    kernel, stride, padding = spatial._geometry(weight.shape[2:], stride, padding)
    out_hw = spatial._output_hw(x.shape, kernel, stride, padding, who)
    return x, weight, bias, kernel, stride, padding, out_hw


def conv2d_loops(x, weight, bias=None, stride=1, padding=0) -> np.ndarray:
    """The convolution as seven nested Python loops, one multiply-add at a time."""
    x, weight, bias, (kh, kw), (sh, sw), padding, (oh, ow) = _check_conv(
        "conv2d_loops", x, weight, bias, stride, padding)
    padded = spatial._pad(x, padding).tolist()
    w = weight.tolist()
    n, c, f = x.shape[0], x.shape[1], weight.shape[0]
    out = np.zeros((n, f, oh, ow), dtype=np.result_type(x, weight))
    for b in range(n):
        for k in range(f):
            for p in range(oh):
                for q in range(ow):
                    total = 0.0 if bias is None else float(bias[k])
                    for ch in range(c):
                        image, kernel = padded[b][ch], w[k][ch]
                        for i in range(kh):
                            pixels, taps = image[p * sh + i], kernel[i]
                            for j in range(kw):
                                total += taps[j] * pixels[q * sw + j]
                    out[b, k, p, q] = total
    return out


def conv2d_windows(x, weight, bias=None, stride=1, padding=0) -> np.ndarray:
    """The convolution as one ``einsum`` over a view of every window (no im2col copy):
    windows[n, c, i, j, oh, ow] times weight[f, c, i, j], summed over c, i and j."""
    x, weight, bias, kernel, stride, padding, _ = _check_conv(
        "conv2d_windows", x, weight, bias, stride, padding)
    windows = spatial._windows(x, kernel, stride, padding)          # (N, C, kh, kw, OH, OW)
    out = np.einsum("ncijhw,fcij->nfhw", windows, weight)
    if bias is not None:
        out += bias[:, None, None]
    return out
