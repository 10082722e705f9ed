"""GPT: a decoder-only transformer language model, with nanoGPT's structure and names
(chapter 13).

    idx (B, T) token ids
      -> transformer.wte(idx) + transformer.wpe(0..T-1)     token + position embeddings
      -> transformer.drop
      -> transformer.h[0] ... transformer.h[n_layer - 1]     causal TransformerBlocks
      -> transformer.ln_f                                    a final LayerNorm
      -> lm_head                                             logits (B, T, vocab_size)

The output embedding is *tied* to the input one, as in GPT-2 and nanoGPT: ``lm_head.weight``
is the same Parameter as ``transformer.wte.weight`` (shape (vocab_size, n_embd)), so it is
counted, stored and updated once, and receives the gradient of both uses.

Parameter count, with V = vocab_size, T = block_size, L = n_layer, C = n_embd (and biases)::

    V C  +  T C  +  L (12 C^2 + 13 C)  +  2 C
    wte     wpe     blocks                 ln_f        (lm_head: tied, adds nothing)

Each block holds 12 C^2 + 13 C: c_attn 3C^2 + 3C, attn.c_proj C^2 + C, c_fc 4C^2 + 4C,
mlp.c_proj 4C^2 + C, and two LayerNorms 2C each. With ``bias=False`` (nanoGPT's option: no
bias in any Linear or LayerNorm) a block holds 12 C^2 + 2 C and ln_f C. ``get_num_params()``
counts them from the model; by default it leaves out the position embeddings, as nanoGPT
does.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..core.autograd import no_grad
from ..core.embedding import Embedding
from ..core.layers import Dropout, Linear
from ..core.module import Module
from ..core.normalization import LayerNorm
from ..core.tensor import Tensor
from ..random import default_generator
from .transformer import TransformerBlock

__all__ = ["GPT"]

_INIT_STD = 0.02


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"GPT: {name} must be a positive int; got {value!r}")
    return int(value)


class _Transformer(Module):
    """The body of the model; nanoGPT keeps these in ``self.transformer`` (a ModuleDict), so
    the parameter names match: ``transformer.wte.weight``, ``transformer.h.0.ln_1.weight``…"""

    def __init__(self, vocab_size, block_size, n_layer, n_head, n_embd, dropout, bias):
        super().__init__()
        self.wte = Embedding(vocab_size, n_embd)
        self.wpe = Embedding(block_size, n_embd)
        self.drop = Dropout(dropout)
        self.h = [TransformerBlock(n_embd, n_head, 4, dropout, bias) for _ in range(n_layer)]
        self.ln_f = LayerNorm(n_embd, bias=bias)


class GPT(Module):
    """``GPT(vocab_size, block_size, n_layer, n_head, n_embd, dropout=0.0, bias=True)``.

    ``forward(idx)`` maps token ids (B, T), T <= block_size, to logits (B, T, vocab_size);
    the logits at position t depend on tokens 0..t only (causal attention).
    ``generate(idx, max_new_tokens, ...)`` samples a continuation. ``bias=False`` drops the
    biases of every Linear and LayerNorm, as nanoGPT's option of that name.

    Initialisation as nanoGPT: every Linear and Embedding weight from N(0, 0.02²), biases
    zero, and the two projections into the residual stream of each block (``c_proj``) from
    N(0, (0.02 / sqrt(2 n_layer))²), so the residual sum of 2 n_layer branches does not grow
    with depth. Draws come from tinytorch's shared generator (``tt.manual_seed``).
    """

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int,
                 n_embd: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.vocab_size = _positive_int("vocab_size", vocab_size)
        self.block_size = _positive_int("block_size", block_size)
        self.n_layer = _positive_int("n_layer", n_layer)
        self.n_head = _positive_int("n_head", n_head)
        self.n_embd = _positive_int("n_embd", n_embd)
        self.transformer = _Transformer(vocab_size, block_size, n_layer, n_head, n_embd,
                                        dropout, bias)
        self.lm_head = Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight          # weight tying
        self._init_weights()

    def _init_weights(self) -> None:
        """nanoGPT's initialisation (class docstring), drawn in parameter order."""
        residual_std = _INIT_STD / math.sqrt(2 * self.n_layer)
        for name, p in self.named_parameters():
            if p.ndim == 2:                                        # Linear and Embedding
                std = residual_std if name.endswith("c_proj.weight") else _INIT_STD
                p.data[...] = default_generator.normal(0.0, std, p.shape)
            elif name.endswith(".bias"):
                p.data[...] = 0.0                                  # LayerNorm weights stay 1

    def get_num_params(self, non_embedding: bool = True) -> int:
        """Number of parameters (the tied lm_head counted once); ``non_embedding`` leaves out
        the position embeddings, as nanoGPT reports it."""
        n = sum(p.size for p in self.parameters())
        return n - self.transformer.wpe.weight.size if non_embedding else n

    # ------------------------------------------------------------------ forward
    def _token_ids(self, idx) -> np.ndarray:
        ids = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ValueError(f"GPT expects token ids of shape (B, T) and an integer dtype; got "
                             f"shape {ids.shape}, dtype {ids.dtype}")
        if ids.shape[1] > self.block_size:
            raise ValueError(f"GPT: the sequence has {ids.shape[1]} tokens, longer than "
                             f"block_size {self.block_size} (the position embeddings end "
                             f"there; crop it to the last {self.block_size})")
        return ids

    def _hidden(self, idx, kv_cache=None) -> Tensor:
        """Token ids (B, T) -> the final LayerNorm's output (B, T, n_embd). With a
        ``kv_cache`` the T tokens are the positions after the ``kv_cache.length`` cached
        ones: their position embeddings start there, and each block's attention extends
        its keys and values with the cache of its layer."""
        ids = self._token_ids(idx)
        start = 0 if kv_cache is None else self._check_cache(kv_cache, ids.shape[1])
        body = self.transformer
        x = body.wte(ids) + body.wpe(np.arange(start, start + ids.shape[1]))
        x = body.drop(x)
        for i, block in enumerate(body.h):
            x = block(x, is_causal=True, kv_cache=None if kv_cache is None else kv_cache[i])
        return body.ln_f(x)

    def _check_cache(self, kv_cache, new_tokens: int) -> int:
        """The number of cached positions, or a ValueError if the cache does not fit."""
        if len(kv_cache) != self.n_layer:
            raise ValueError(f"GPT: the kv_cache has {len(kv_cache)} layers, the model "
                             f"{self.n_layer} (make it with model.new_kv_cache())")
        start = kv_cache.length
        if start + new_tokens > self.block_size:
            raise ValueError(f"GPT: {start} cached + {new_tokens} new tokens exceed block_size "
                             f"{self.block_size} (the position embeddings end there); reset "
                             f"the cache and feed the last {self.block_size} tokens again, as "
                             f"generate(use_cache=True) does")
        return start

    def forward(self, idx, kv_cache=None) -> Tensor:
        """Logits (B, T, vocab_size) for token ids ``idx`` (B, T) with T <= block_size.

        ``kv_cache`` (a :class:`~tinytorch.kv_cache.ModelKVCache`, from
        :meth:`new_kv_cache`) holds the keys and values of earlier positions: ``idx`` is
        then the continuation, its first token at position ``kv_cache.length``, and the
        cache grows by T. The logits equal those of the uncached forward pass over the
        whole sequence at the same positions (chapter 18)."""
        return self.lm_head(self._hidden(idx, kv_cache))

    def new_kv_cache(self):
        """An empty key/value cache for this model: one layer per block, preallocated for
        ``block_size`` positions on first use."""
        from ..kv_cache import ModelKVCache
        return ModelKVCache(self.n_layer, self.block_size)

    # ------------------------------------------------------------------ sampling
    @staticmethod
    def _generator(generator) -> np.random.Generator:
        if generator is None:
            return default_generator
        if isinstance(generator, np.random.Generator):
            return generator
        if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
            return np.random.default_rng(int(generator))
        raise TypeError(f"generate: generator must be None, a seed (int) or a "
                        f"numpy.random.Generator; got {generator!r}")

    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator=None, use_cache: bool = False) -> Tensor:
        """Append ``max_new_tokens`` sampled tokens to ``idx`` ((B, T) or (T,) ids); returns
        a Tensor of int64 ids, (B, T + max_new_tokens) (or 1-D for a 1-D input).

        Each step feeds the last ``block_size`` tokens (the context is cropped), takes the
        logits of the last position, divides them by ``temperature`` (< 1 sharpens, > 1
        flattens), keeps the ``top_k`` largest (the others get probability 0; ``top_k=1`` is
        greedy decoding) and samples from their softmax with ``generator`` (None: the
        shared generator; an int: a fresh generator with that seed). Runs under ``no_grad``
        in evaluation mode (dropout off); the model's mode is restored afterwards.

        ``use_cache=True`` keeps a key/value cache (chapter 18): one forward pass over the
        (cropped) prompt fills it (prefill), then each step feeds only the newest token.
        The logits, hence the tokens for the same generator, are those of the uncached
        loop. Past ``block_size`` the cache is cropped as the uncached context is: once
        it is full, the next step resets it and prefills the last ``block_size`` tokens
        again, so those steps cost a full forward pass, as without the cache.
        """
        ids = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
        if ids.ndim not in (1, 2) or ids.shape[-1] == 0 or ids.dtype.kind not in "iu":
            raise ValueError(f"generate: idx must hold integer token ids, shape (B, T) or (T,) "
                             f"with T >= 1; got shape {ids.shape}, dtype {ids.dtype}")
        one_dim = ids.ndim == 1
        ids = (ids[None, :] if one_dim else ids).astype(np.int64, copy=True)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, numbers.Integral) \
                or max_new_tokens < 0:
            raise ValueError(f"generate: max_new_tokens must be an int >= 0; got "
                             f"{max_new_tokens!r}")
        if not (isinstance(temperature, numbers.Real) and temperature > 0):
            raise ValueError(f"generate: temperature must be a positive number; got "
                             f"{temperature!r} (for greedy decoding use top_k=1)")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(
                top_k, numbers.Integral) or top_k < 1):
            raise ValueError(f"generate: top_k must be None or an int >= 1; got {top_k!r}")
        rng = self._generator(generator)
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                cache = self.new_kv_cache() if use_cache else None
                for _ in range(max_new_tokens):
                    logits = self._next_logits(ids, cache)
                    next_ids = _sample(logits / temperature, top_k, rng)
                    ids = np.concatenate([ids, next_ids[:, None]], axis=1)
        finally:
            self.train(was_training)
        return Tensor(ids[0] if one_dim else ids)

    def _next_logits(self, ids: np.ndarray, cache=None) -> np.ndarray:
        """float64 logits (B, V) of the token after ``ids`` (B, n). Without a cache: a
        forward pass over the last ``block_size`` tokens. With one: only the tokens it has
        not seen (the whole prompt on the first call, then one), or, once it is full, a
        reset and a prefill of the last ``block_size`` tokens."""
        if cache is None or cache.length == 0 or cache.length >= self.block_size:
            if cache is not None:
                cache.reset()
            new = ids[:, -self.block_size:]
        else:
            new = ids[:, cache.length:]
        last = self._hidden(new, cache).data[:, -1, :]                    # (B, C)
        return self.lm_head(Tensor(last)).data.astype(np.float64)

    def extra_repr(self) -> str:
        return (f"vocab_size={self.vocab_size}, block_size={self.block_size}, "
                f"n_layer={self.n_layer}, n_head={self.n_head}, n_embd={self.n_embd}")


def _sample(logits: np.ndarray, top_k: int | None, rng: np.random.Generator) -> np.ndarray:
    """One token id per row of ``logits`` (B, V), from softmax(logits) restricted to the
    ``top_k`` largest logits of the row."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = np.partition(logits, -top_k, axis=-1)[:, -top_k][:, None]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    cdf = np.cumsum(probs, axis=-1)
    # Inverse-CDF sampling, u drawn in [0, total): never lands on a probability-0 token.
    u = rng.random(len(logits))[:, None] * cdf[:, -1:]
    return np.minimum((cdf <= u).sum(axis=-1), logits.shape[-1] - 1)
