"""Attention: every position looks at every other and takes a weighted average (chapter 12).

``scaled_dot_product_attention(query, key, value)`` computes, for query rows Q (..., T, d),
key rows K (..., S, d) and value rows V (..., S, e)::

    scores  = Q K^T / sqrt(d) + mask          (..., T, S): how well query i matches key j
    weights = softmax(scores, over the S keys)   each row sums to 1
    output  = weights V                       (..., T, e): a weighted average of the values

It is one fused operation with a hand-written backward pass (chapter 12 derives it): with
G = dL/d(output) and P the weights::

    dV = P^T G        dP = G V^T        dS = P * (dP - sum_j(dP * P))
    dQ = dS K / sqrt(d)                 dK = dS^T Q / sqrt(d)

Masks follow PyTorch: a boolean mask is True where attention is *allowed*; a float mask is
*added* to the scores (0 keeps a score, -inf removes it). Both broadcast to (..., T, S).
Internally every mask becomes an additive float array, because adding a precomputed array is
several times faster than assigning -inf through a boolean index on every call. A query row
whose keys are all masked out gets weights of 0 (and output 0), not NaN, as PyTorch's
``_safe_softmax`` does.

``MultiHeadAttention`` runs ``num_heads`` attentions side by side: one projection makes the
queries, keys and values of every head, one reshape and transpose puts the heads in a batch
dimension, and one call of the fused op attends them all (no Python loop over heads).
"""
from __future__ import annotations

import functools
import math
import numbers

import numpy as np

from ..random import default_generator
from .activations import softmax
from .autograd import make_op
from .layers import Dropout, Linear
from .module import Module
from .tensor import Tensor, as_tensor

__all__ = ["scaled_dot_product_attention", "attention_weights", "causal_mask",
           "MultiHeadAttention"]


# --------------------------------------------------------------------------- masks
@functools.lru_cache(maxsize=64)
def _causal_mask(query_len: int, key_len: int, lower_right: bool, dtype: np.dtype):
    """The (query_len, key_len) array of ``dtype`` holding 0 where key j <= query i + offset
    (offset = key_len - query_len if ``lower_right``, else 0) and -inf elsewhere; read-only,
    because the cache hands the same array to every caller."""
    offset = key_len - query_len if lower_right else 0
    allowed = np.tri(query_len, key_len, k=offset, dtype=bool)
    mask = np.where(allowed, 0.0, -np.inf).astype(dtype)
    mask.setflags(write=False)  # shared between calls: nobody may change it
    return mask


def causal_mask(query_len: int, key_len: int | None = None, *, lower_right: bool = False,
                dtype=np.float32) -> np.ndarray:
    """The additive causal mask of shape (query_len, key_len): 0 where query i may attend to
    key j, -inf where it may not. ``key_len`` defaults to ``query_len``.

    Top-left aligned (the default, what ``is_causal=True`` uses, as in PyTorch): j <= i.
    ``lower_right=True`` shifts it by ``key_len - query_len``: j <= i + (S - T), so the last
    query sees every key. That is the alignment a key/value cache needs, where the T new
    queries are the *last* T of S positions (PyTorch offers it as
    ``torch.nn.attention.bias.causal_lower_right``). When T == S the two are the same.

    The array is cached and read-only; copy it before changing it.
    """
    key_len = query_len if key_len is None else key_len
    for name, n in (("query_len", query_len), ("key_len", key_len)):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"causal_mask: {name} must be a positive int; got {n!r}")
    return _causal_mask(int(query_len), int(key_len), bool(lower_right), np.dtype(dtype))


def _additive_mask(attn_mask, scores_shape: tuple, dtype):
    """``attn_mask`` as (array to add to the scores, Tensor to send a gradient to or None)."""
    mask_tensor = attn_mask if isinstance(attn_mask, Tensor) else None
    data = attn_mask.data if mask_tensor is not None else np.asarray(attn_mask)
    try:
        broadcast = np.broadcast_shapes(data.shape, scores_shape)
    except ValueError:
        broadcast = None
    if broadcast != scores_shape:
        raise ValueError(f"scaled_dot_product_attention: attn_mask of shape {data.shape} does "
                         f"not broadcast to the attention scores' shape {scores_shape} "
                         f"(..., T queries, S keys)")
    if data.dtype == bool:
        return np.where(data, 0.0, -np.inf).astype(dtype), None
    if data.dtype.kind != "f":
        raise TypeError(f"scaled_dot_product_attention: attn_mask must be boolean (True = may "
                        f"attend) or floating point (added to the scores); got dtype "
                        f"{data.dtype}")
    if mask_tensor is not None and not mask_tensor.requires_grad:
        mask_tensor = None
    return data, mask_tensor


def _check_qkv(query: Tensor, key: Tensor, value: Tensor) -> tuple:
    """The batch shape, or a ValueError naming the three shapes."""
    shapes = f"query {query.shape}, key {key.shape}, value {value.shape}"
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ValueError(f"scaled_dot_product_attention: query, key and value need shape "
                         f"(..., length, features); got {shapes}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"scaled_dot_product_attention: query and key must have the same "
                         f"number of features (last dim); got {shapes}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: key and value must have the same "
                         f"length (second-to-last dim); got {shapes}")
    try:
        return np.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    except ValueError:
        raise ValueError(f"scaled_dot_product_attention: the batch dimensions of {shapes} "
                         f"cannot be broadcast together") from None


def _masked_scores(query, key, attn_mask, is_causal: bool, scale):
    """(scores, mask Tensor needing a gradient or None, scale) for the checked inputs."""
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal=True, not "
                         "both (as in PyTorch); add causal_mask(T, S) to your mask instead")
    q, k = query.data, key.data
    d = q.shape[-1]
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    scores = q @ np.swapaxes(k, -1, -2)
    scores *= scale
    mask_tensor = None
    if is_causal:
        scores += causal_mask(q.shape[-2], k.shape[-2], dtype=scores.dtype)
    elif attn_mask is not None:
        mask, mask_tensor = _additive_mask(attn_mask, scores.shape, scores.dtype)
        scores += mask                        # broadcasts: checked above
    return scores, mask_tensor, scale


def _safe_softmax_(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in place; a row of -inf becomes a row of 0, not NaN."""
    top = scores.max(axis=-1, keepdims=True)
    np.maximum(top, np.finfo(scores.dtype).min, out=top)   # -inf rows: subtract a finite
    scores -= top
    np.exp(scores, out=scores)
    total = scores.sum(axis=-1, keepdims=True)
    np.maximum(total, np.finfo(scores.dtype).tiny, out=total)  # 0 / tiny = 0
    scores /= total
    return scores


# --------------------------------------------------------------------------- the fused op
def scaled_dot_product_attention(query, key, value, attn_mask=None, *, is_causal: bool = False,
                                 dropout_p: float = 0.0, scale: float | None = None,
                                 generator: np.random.Generator | None = None) -> Tensor:
    """softmax(query key^T * scale + mask) value, as ``torch.nn.functional.
    scaled_dot_product_attention``; one graph node, backward by hand (module docstring).

    query (..., T, d), key (..., S, d), value (..., S, e) -> output (..., T, e); the batch
    dimensions ``...`` broadcast. ``scale`` defaults to 1/sqrt(d).

    attn_mask: boolean (True = may attend) or float (added to the scores; a float Tensor
        that requires a gradient receives one), broadcastable to (..., T, S).
    is_causal: query i attends to keys j <= i (top-left aligned, as PyTorch; see
        :func:`causal_mask` for the lower-right alignment a key/value cache needs). Not
        together with ``attn_mask``.
    dropout_p: probability of zeroing each attention weight (survivors scaled by
        1/(1 - p)); pass 0 in evaluation, as PyTorch. Masks are drawn from ``generator``
        (default: tinytorch's shared generator).

    The arguments after ``attn_mask`` are keyword-only: PyTorch's positional order
    (dropout_p before is_causal) differs from the course's, so neither is accepted by
    position.
    """
    query, key, value = as_tensor(query), as_tensor(key), as_tensor(value)
    _check_qkv(query, key, value)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1); got "
                         f"{dropout_p!r}")
    scores, mask_tensor, scale = _masked_scores(query, key, attn_mask, is_causal, scale)
    weights = _safe_softmax_(scores)
    kept = weights
    keep = None
    if dropout_p > 0:
        rng = default_generator if generator is None else generator
        keep = (rng.random(weights.shape) >= dropout_p).astype(weights.dtype)
        keep *= 1.0 / (1.0 - dropout_p)
        kept = weights * keep
    q, k, v = query.data, key.data, value.data
    out = kept @ v

    def backward(g):
        grad_v = np.swapaxes(kept, -1, -2) @ g if value.requires_grad else None
        grad_s = g @ np.swapaxes(v, -1, -2)                      # dL/d(kept)
        if keep is not None:
            grad_s *= keep                                       # dL/d(weights)
        grad_s -= (grad_s * weights).sum(axis=-1, keepdims=True)
        grad_s *= weights                                        # dL/d(scores)
        grad_mask = grad_s.copy() if mask_tensor is not None else None
        grad_s *= scale
        grad_q = grad_s @ k if query.requires_grad else None
        grad_k = np.swapaxes(grad_s, -1, -2) @ q if key.requires_grad else None
        if mask_tensor is None:
            return grad_q, grad_k, grad_v
        return grad_q, grad_k, grad_v, grad_mask

    parents = (query, key, value) if mask_tensor is None else (query, key, value, mask_tensor)
    return make_op(out, parents, backward, "scaled_dot_product_attention")


def attention_weights(query, key, attn_mask=None, *, is_causal: bool = False,
                      scale: float | None = None) -> Tensor:
    """The attention weights softmax(query key^T * scale + mask), shape (..., T, S), composed
    from ordinary Tensor operations (matmul, multiply, add, softmax), so it is differentiable
    the slow way. For looking at (a heat map) and for comparing against the fused op;
    ``attention_weights(q, k, ...) @ v`` equals ``scaled_dot_product_attention(q, k, v, ...)``.
    It is the textbook formula, softmax included: a query whose keys are all masked gets a
    row of NaN here, where the fused op gives zeros.
    """
    query, key = as_tensor(query), as_tensor(key)
    _check_qkv(query, key, key)
    if is_causal and attn_mask is not None:
        raise ValueError("attention_weights: give attn_mask or is_causal=True, not both")
    d = query.shape[-1]
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    scores = (query @ key.transpose(-2, -1)) * scale
    if is_causal:
        scores = scores + Tensor(causal_mask(query.shape[-2], key.shape[-2],
                                             dtype=scores.dtype))
    elif attn_mask is not None:
        mask, mask_tensor = _additive_mask(attn_mask, scores.shape, scores.dtype)
        scores = scores + (mask_tensor if mask_tensor is not None else Tensor(mask))
    return softmax(scores, dim=-1)


# --------------------------------------------------------------------------- the layer
def _check_positive_int(owner: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive int; got {value!r}")
    return int(value)


class MultiHeadAttention(Module):
    """Multi-head self-attention, nanoGPT's ``CausalSelfAttention`` with the mask chosen per
    call: ``forward(x, attn_mask=None, is_causal=False, kv_cache=None)`` on x (B, T, C).

    Parameters (nanoGPT's names): ``c_attn``, a Linear(C, 3C) making the queries, keys and
    values of every head at once, and ``c_proj``, a Linear(C, C) mixing the heads' outputs.
    With H heads each head works on D = C / H features. ``dropout`` applies to the attention
    weights and to the output (nanoGPT's attn_dropout and resid_dropout), in training mode.

    The steps, each a method so a later chapter can reuse them::

        q, k, v = self._split_heads(self.c_attn(x))   # each (B, H, T, D): one reshape + permute
        k, v = kv_cache.update(k, v)                  # only with a cache: (B, H, S, D)
        y = self._attend(q, k, v, attn_mask, is_causal)   # the fused op, all heads at once
        y = self.c_proj(self._merge_heads(y))         # (B, T, C)

    The key/value cache seam. ``kv_cache`` is any object with a method
    ``update(k, v) -> (k_all, v_all)``: it receives the keys and values of the T new
    positions and returns those of all S positions so far (the cached ones first). With a
    cache, ``is_causal=True`` uses the lower-right aligned mask (query i of the T new ones
    sees keys j <= i + S - T), so feeding a sequence in pieces gives the same outputs as
    feeding it whole. Chapter 18 builds the cache; this layer needs no change for it.

    ``attn_mask`` (boolean or additive float) must broadcast to (B, H, T, S); a (T, S) mask
    applies to every sequence and head. With ``is_causal=True`` too, the two are combined.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.embed_dim = _check_positive_int("MultiHeadAttention", "embed_dim", embed_dim)
        self.num_heads = _check_positive_int("MultiHeadAttention", "num_heads", num_heads)
        if embed_dim % num_heads != 0:
            raise ValueError(f"MultiHeadAttention: embed_dim {embed_dim} is not divisible by "
                             f"num_heads {num_heads} (each head gets embed_dim / num_heads "
                             f"features)")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not (
                0 <= dropout < 1):
            raise ValueError(f"MultiHeadAttention: dropout must be a probability in [0, 1); "
                             f"got {dropout!r}")
        self.head_dim = embed_dim // num_heads
        self.c_attn = Linear(embed_dim, 3 * embed_dim, bias=bias)
        self.c_proj = Linear(embed_dim, embed_dim, bias=bias)
        self.resid_dropout = Dropout(dropout)
        self.dropout = float(dropout)

    def forward(self, x, attn_mask=None, is_causal: bool = False, kv_cache=None) -> Tensor:
        """Self-attention of x (B, T, C) -> (B, T, C): project to q, k, v, split the heads,
        let the cache (if any) extend k and v, attend, merge the heads, project back."""
        x = as_tensor(x)
        if x.ndim != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(f"MultiHeadAttention(embed_dim={self.embed_dim}) expects input of "
                             f"shape (B, T, {self.embed_dim}); got {x.shape}")
        q, k, v = self._split_heads(self.c_attn(x))
        if kv_cache is not None:
            k, v = kv_cache.update(k, v)
        y = self._attend(q, k, v, attn_mask, is_causal)
        return self.resid_dropout(self.c_proj(self._merge_heads(y)))

    def _split_heads(self, qkv: Tensor) -> tuple:
        """(B, T, 3C) -> q, k, v, each (B, H, T, D): the heads become a batch dimension."""
        b, t, _ = qkv.shape
        heads = qkv.reshape(b, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return heads[0], heads[1], heads[2]

    def _merge_heads(self, y: Tensor) -> Tensor:
        """(B, H, T, D) -> (B, T, C): the heads' outputs side by side."""
        b, _, t, _ = y.shape
        return y.transpose(1, 2).reshape(b, t, self.embed_dim)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, attn_mask=None,
                is_causal: bool = False) -> Tensor:
        """All heads' attention in one fused call; q (B, H, T, D), k and v (B, H, S, D)."""
        t, s = q.shape[-2], k.shape[-2]
        if is_causal and (attn_mask is not None or s != t):
            causal = causal_mask(t, s, lower_right=True, dtype=q.dtype)
            if attn_mask is None:
                attn_mask = causal
            else:
                user = attn_mask.data if isinstance(attn_mask, Tensor) else np.asarray(attn_mask)
                user = np.where(user, 0.0, -np.inf) if user.dtype == bool else user
                attn_mask = (user + causal).astype(q.dtype, copy=False)
            is_causal = False
        dropout_p = self.dropout if self.training else 0.0
        return scaled_dot_product_attention(q, k, v, attn_mask, is_causal=is_causal,
                                            dropout_p=dropout_p)

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}")
