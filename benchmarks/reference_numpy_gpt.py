"""A GPT training step in plain numpy, every gradient derived by hand.

The GPT benchmark's reference (``bench_gpt.py``), in the style of ``reference_numpy.py``: no
graph and no Tensor, only numpy arrays, a forward pass that keeps what the backward pass
needs, and a backward pass that applies the chain rule written out, layer by layer, in the
reverse order. It is the model of ``tinytorch.GPT`` (nanoGPT's): token and position
embeddings, pre-norm blocks (LayerNorm, causal multi-head attention, LayerNorm, GELU MLP,
each in a residual), a final LayerNorm and an output layer tied to the token embedding.

Conventions are tinytorch's, so the two can be compared step by step: float32, parameters
held under tinytorch's names (``transformer.h.0.attn.c_attn.weight``, ...), Linear weights
(out, in) applied as ``x @ W.T + b``, the tanh form of GELU, biased LayerNorm variance with
eps 1e-5, cross-entropy averaged over every position, and Adam from ``reference_numpy``.

    model = GPT.from_state(model_tt.state_dict(), n_layer=2, n_head=4)
    optimizer = Adam(model.params, lr=1e-3)
    loss = train_step(model, optimizer, x, y)      # x, y: (B, T) token ids; returns a float
"""
from __future__ import annotations

import math

import numpy as np

from reference_numpy import Adam, cross_entropy

__all__ = ["GPT", "Adam", "train_step", "layer_norm", "layer_norm_backward", "gelu",
           "gelu_backward", "attention", "attention_backward", "scatter_rows"]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715
_EPS = 1e-5


# ------------------------------------------------------------------------------ pieces
def layer_norm(x, weight, bias):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis; also the cache."""
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + _EPS)
    xhat = centred * rstd
    return xhat * weight + bias, (xhat, rstd, weight)


def layer_norm_backward(g, cache):
    """With gx = g * weight: dx = (gx - mean(gx) - xhat * mean(gx * xhat)) / sqrt(var + eps);
    dweight = sum of g * xhat and dbias = sum of g, over every position."""
    xhat, rstd, weight = cache
    gx = g * weight
    dx = gx - gx.mean(axis=-1, keepdims=True)
    dx -= xhat * (gx * xhat).mean(axis=-1, keepdims=True)
    dx *= rstd
    lead = tuple(range(g.ndim - 1))
    return dx, (g * xhat).sum(axis=lead), g.sum(axis=lead)


def gelu(v):
    """0.5 v (1 + tanh(u)), u = sqrt(2/pi) (v + 0.044715 v^3); also tanh(u) for backward."""
    t = np.tanh(_SQRT_2_OVER_PI * (v + _GELU_CUBIC * v * v * v))
    return 0.5 * v * (1 + t), t


def gelu_backward(g, v, t):
    """d/dv = 0.5 (1 + t) + 0.5 v (1 - t^2) du/dv, du/dv = sqrt(2/pi) (1 + 3 * 0.044715 v^2)."""
    du_dv = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * v * v)
    return g * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du_dv)


def attention(q, k, v, mask):
    """softmax(q k^T / sqrt(d) + mask) v for q, k, v of shape (B, H, T, D)."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = q @ np.swapaxes(k, -1, -2)
    scores *= scale
    scores += mask
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    return scores @ v, (q, k, v, scores, scale)


def attention_backward(g, cache):
    """dV = P^T G, dP = G V^T, dS = P (dP - rowsum(dP P)), dQ = dS K s, dK = dS^T Q s."""
    q, k, v, p, scale = cache
    dv = np.swapaxes(p, -1, -2) @ g
    ds = g @ np.swapaxes(v, -1, -2)
    ds -= (ds * p).sum(axis=-1, keepdims=True)
    ds *= p
    ds *= scale
    return ds @ k, np.swapaxes(ds, -1, -2) @ q, dv


def scatter_rows(ids, rows, num_rows):
    """Row i of the result is the sum of rows[n] over every n with ids[n] == i: the gradient
    of an embedding lookup. Sorting groups equal ids; np.add.reduceat sums each group."""
    out = np.zeros((num_rows, rows.shape[1]), dtype=rows.dtype)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    out[sorted_ids[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return out


# ------------------------------------------------------------------------------ the model
class GPT:
    """The forward and backward passes of a GPT whose parameters are numpy arrays, held in
    ``self.p`` under tinytorch's names; ``self.params`` lists them in that order (the order
    of ``tinytorch.GPT.parameters()``) and ``backward`` returns gradients in the same order.
    """

    def __init__(self, params: dict, n_layer: int, n_head: int):
        self.p = params
        self.names = list(params)
        self.params = [params[name] for name in self.names]
        self.n_layer, self.n_head = n_layer, n_head
        self.masks = {}

    @classmethod
    def from_state(cls, state: dict, n_layer: int, n_head: int) -> GPT:
        return cls({name: np.array(value) for name, value in state.items()}, n_layer, n_head)

    def _mask(self, t, dtype):
        if t not in self.masks:
            self.masks[t] = np.where(np.tri(t, dtype=bool), 0.0, -np.inf).astype(dtype)
        return self.masks[t]

    def _linear(self, x, prefix):
        out = x @ self.p[prefix + ".weight"].T
        out += self.p[prefix + ".bias"]
        return out

    def _linear_backward(self, g, x, prefix, grads):
        weight = self.p[prefix + ".weight"]
        g2 = g.reshape(-1, weight.shape[0])
        grads[prefix + ".weight"] = g2.T @ x.reshape(-1, weight.shape[1])
        grads[prefix + ".bias"] = g2.sum(axis=0)
        return g @ weight

    def forward(self, idx):
        """Logits (B, T, V) for token ids (B, T); keeps what backward needs in self.cache."""
        p = self.p
        b, t = idx.shape
        wte = p["transformer.wte.weight"]
        c = wte.shape[1]
        h, d = self.n_head, c // self.n_head
        x = wte[idx] + p["transformer.wpe.weight"][:t]
        mask = self._mask(t, x.dtype)
        layers = []
        for i in range(self.n_layer):
            pre = f"transformer.h.{i}."
            a_in, ln1 = layer_norm(x, p[pre + "ln_1.weight"], p[pre + "ln_1.bias"])
            qkv = self._linear(a_in, pre + "attn.c_attn")
            heads = qkv.reshape(b, t, 3, h, d).transpose(2, 0, 3, 1, 4)   # (3, B, H, T, D)
            y, att = attention(heads[0], heads[1], heads[2], mask)
            merged = y.transpose(0, 2, 1, 3).reshape(b, t, c)
            x = x + self._linear(merged, pre + "attn.c_proj")
            m_in, ln2 = layer_norm(x, p[pre + "ln_2.weight"], p[pre + "ln_2.bias"])
            hidden = self._linear(m_in, pre + "mlp.c_fc")
            act, tanh_u = gelu(hidden)
            x = x + self._linear(act, pre + "mlp.c_proj")
            layers.append((a_in, ln1, att, merged, m_in, ln2, hidden, act, tanh_u))
        final, ln_f = layer_norm(x, p["transformer.ln_f.weight"], p["transformer.ln_f.bias"])
        self.cache = (idx, layers, final, ln_f)
        return final @ wte.T                                   # tied output layer

    def backward(self, grad_logits) -> list:
        """Given dL/dlogits (B, T, V), the gradient of every parameter, in ``params`` order."""
        p = self.p
        idx, layers, final, ln_f = self.cache
        b, t = idx.shape
        wte = p["transformer.wte.weight"]
        v, c = wte.shape
        h, d = self.n_head, c // self.n_head
        grads = {}
        g2 = grad_logits.reshape(-1, v)
        grad_wte = g2.T @ final.reshape(-1, c)                 # the output layer's use of wte
        g, grads["transformer.ln_f.weight"], grads["transformer.ln_f.bias"] = (
            layer_norm_backward(grad_logits @ wte, ln_f))
        for i in reversed(range(self.n_layer)):
            pre = f"transformer.h.{i}."
            a_in, ln1, att, merged, m_in, ln2, hidden, act, tanh_u = layers[i]
            # x = x + mlp(ln_2(x)): the residual passes g through, the branch adds its part
            g_act = self._linear_backward(g, act, pre + "mlp.c_proj", grads)
            g_hidden = gelu_backward(g_act, hidden, tanh_u)
            g_m_in = self._linear_backward(g_hidden, m_in, pre + "mlp.c_fc", grads)
            g_x, grads[pre + "ln_2.weight"], grads[pre + "ln_2.bias"] = layer_norm_backward(
                g_m_in, ln2)
            g = g + g_x
            # x = x + attn(ln_1(x))
            g_merged = self._linear_backward(g, merged, pre + "attn.c_proj", grads)
            g_y = g_merged.reshape(b, t, h, d).transpose(0, 2, 1, 3)
            g_heads = np.stack(attention_backward(g_y, att))                # (3, B, H, T, D)
            g_qkv = g_heads.transpose(1, 3, 0, 2, 4).reshape(b, t, 3 * c)
            g_a_in = self._linear_backward(g_qkv, a_in, pre + "attn.c_attn", grads)
            g_x, grads[pre + "ln_1.weight"], grads[pre + "ln_1.bias"] = layer_norm_backward(
                g_a_in, ln1)
            g = g + g_x
        grads["transformer.wpe.weight"] = np.zeros_like(p["transformer.wpe.weight"])
        grads["transformer.wpe.weight"][:t] = g.sum(axis=0)
        grads["transformer.wte.weight"] = grad_wte + scatter_rows(idx.reshape(-1),
                                                                  g.reshape(-1, c), v)
        return [grads[name] for name in self.names]


# ------------------------------------------------------------------------------ one step
def train_step(model: GPT, optimizer: Adam, x: np.ndarray, y: np.ndarray) -> float:
    """Forward, loss (mean cross-entropy over every position), backward, Adam update."""
    logits = model.forward(x)
    loss, grad = cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    optimizer.step(model.backward(grad.reshape(logits.shape)))
    return loss
