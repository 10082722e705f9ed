"""The transformer block: attention then a small MLP, each wrapped in a residual (chapter 13).

Pre-norm, as GPT-2 and nanoGPT (and unlike the original 2017 post-norm design)::

    x = x + attn(ln_1(x))      # positions exchange information
    x = x + mlp(ln_2(x))       # each position computes on its own

The residual path ``x`` is never normalised, so the gradient reaches the first block
unchanged through the additions, however deep the stack; each branch only adds a correction.
"""
from __future__ import annotations

import numbers

from ..core.activations import GELU
from ..core.attention import MultiHeadAttention
from ..core.layers import Dropout, Linear
from ..core.module import Module
from ..core.normalization import LayerNorm
from ..core.tensor import Tensor

__all__ = ["FeedForward", "TransformerBlock"]


class FeedForward(Module):
    """The block's MLP, nanoGPT's names: ``c_fc`` Linear(C, hidden), GELU, ``c_proj``
    Linear(hidden, C), dropout. Applied to every position independently.

    The GELU is the tanh approximation, as in GPT-2 (nanoGPT uses the exact erf form; the
    two differ by less than 5e-4, and the tanh form costs a few elementwise operations
    instead of an erf polynomial).
    """

    def __init__(self, embed_dim: int, hidden_dim: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.c_fc = Linear(embed_dim, hidden_dim, bias=bias)
        self.gelu = GELU(approximate="tanh")
        self.c_proj = Linear(hidden_dim, embed_dim, bias=bias)
        self.dropout = Dropout(dropout)

    def forward(self, x) -> Tensor:
        """(..., C) -> (..., C): c_proj(gelu(c_fc(x))), then dropout."""
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class TransformerBlock(Module):
    """A pre-norm transformer block on x of shape (B, T, embed_dim).

    Sub-modules (nanoGPT's ``Block``): ``ln_1``, ``attn`` (:class:`MultiHeadAttention`),
    ``ln_2``, ``mlp`` (:class:`FeedForward` with ``mlp_ratio * embed_dim`` hidden units).
    ``forward(x, attn_mask=None, is_causal=False, kv_cache=None)`` passes the mask and the
    cache to the attention. Parameters: 12 C^2 + 13 C for C = embed_dim and mlp_ratio 4
    (attention 4 C^2 + 4 C, MLP 8 C^2 + 5 C, two LayerNorms 4 C); ``bias=False`` drops the
    biases of the Linear layers and the LayerNorms (12 C^2 + 2 C), as nanoGPT.
    """

    def __init__(self, embed_dim: int, num_heads: int, mlp_ratio: float = 4,
                 dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, numbers.Real) or not (
                mlp_ratio > 0 and float(mlp_ratio * embed_dim).is_integer()):
            raise ValueError(f"TransformerBlock: mlp_ratio * embed_dim must be a positive whole "
                             f"number of hidden units; got mlp_ratio={mlp_ratio!r} with "
                             f"embed_dim={embed_dim}")
        self.ln_1 = LayerNorm(embed_dim, bias=bias)
        self.attn = MultiHeadAttention(embed_dim, num_heads, dropout=dropout, bias=bias)
        self.ln_2 = LayerNorm(embed_dim, bias=bias)
        self.mlp = FeedForward(embed_dim, int(mlp_ratio * embed_dim), dropout, bias)

    def forward(self, x, attn_mask=None, is_causal: bool = False, kv_cache=None) -> Tensor:
        """x + attn(ln_1(x)), then + mlp(ln_2(x)): two residual branches on x (B, T, C)."""
        x = x + self.attn(self.ln_1(x), attn_mask=attn_mask, is_causal=is_causal,
                          kv_cache=kv_cache)
        return x + self.mlp(self.ln_2(x))
