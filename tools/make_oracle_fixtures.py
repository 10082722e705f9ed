"""Stored oracle numbers for handed-out tests: the reference code lives here, not in tests/.

A chapter's tests are given to the student, so they must not contain a complete solution
of what the chapter asks for. Where a test compares with a reference implementation
(sigmoid, tanh and the losses from their definitions for chapters 02 and 04, Adam
written out from the paper for chapter 07, convolution as a loop over output
elements for chapter 09, BPE training by recounting every pair for chapter 10, the
sinusoidal table element by element for chapter 11, attention's textbook formula for
chapter 12, layer norm and the pre-norm block in numpy for chapter 13, distillation's soft
term for chapter 16), this script runs
that reference once on fixed inputs (fixed seeds, float64) and stores its numbers in small
fixtures under ``tests/fixtures/``; the tests regenerate the same inputs and read them
(for chapter 04 this script takes the input helpers from the test file itself).
``tests/test_oracle_fixtures.py`` checks that the files are what this script computes now.

Regenerate (numpy, plus regex and the split pattern of tinytorch.text for the BPE cases)::

    .venv/bin/python -m tools.make_oracle_fixtures
"""
from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
ACTIVATIONS = FIXTURES / "activations_closed_form.npz"
LOSSES = FIXTURES / "losses_closed_form.npz"
ADAM = FIXTURES / "adam_trajectories.npz"
CONV = FIXTURES / "conv2d_naive.npz"
BPE = FIXTURES / "bpe_reference.json"
SINUSOIDAL = FIXTURES / "sinusoidal_closed_form.npz"
ATTENTION = FIXTURES / "attention_formula.npz"
LAYER_NORM = FIXTURES / "layer_norm_formula.npz"
BLOCK = FIXTURES / "transformer_block_numpy.npz"
DISTILLATION = FIXTURES / "distillation_closed_form.npz"

# ------------------------------------------------------------------ chapter 02: sigmoid, tanh
def activation_arrays() -> dict:
    """sigmoid and tanh from their exponential definitions, and their derivatives, on the
    points of tests/core/test_activations.py."""
    x = np.linspace(-6, 6, 13)
    s = 1 / (1 + np.exp(-x))
    x = np.linspace(-3, 3, 13)
    t = (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x))
    return {"sigmoid": s, "sigmoid_derivative": s * (1 - s), "tanh": t,
            "tanh_derivative": 1 - t ** 2}


# ------------------------------------------------------------------ chapter 04: losses
LOSS_SEEDS = (0, 1, 2)


def _inputs_of(test_file: str):
    """The test module ``tests/<test_file>``, loaded for the seeded inputs it defines, so that
    the numbers stored here are computed on exactly what the test feeds in."""
    path = ROOT / "tests" / test_file
    spec = importlib.util.spec_from_file_location(f"_oracle_inputs_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_LOSS_TESTS = _inputs_of("core/test_losses.py")
loss_values = _LOSS_TESTS._values
loss_labels = _LOSS_TESTS._labels
ignored_labels = _LOSS_TESTS._ignored_labels


def log_softmax_rows(z):
    """Log-softmax of moderate logits, straight from the definition."""
    return np.log(np.exp(z) / np.exp(z).sum(axis=1, keepdims=True))


def softmax_rows(z):
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def loss_shapes() -> list:
    """Every shape of 1..3 dimensions with sides 1..4, padded with 0: ``(d0, d1, d2)``."""
    return [shape + (0,) * (3 - len(shape)) for ndim in (1, 2, 3)
            for shape in itertools.product(range(1, 5), repeat=ndim)]


unpad = _LOSS_TESTS._unpad


def loss_arrays() -> dict:
    ce_cases = [(n, c, seed) for n in range(1, 7) for c in range(2, 6) for seed in LOSS_SEEDS]
    by_index, by_probability = [], []
    for n, c, seed in ce_cases:
        logits = loss_values((n, c), seed, -5, 5)
        probs = softmax_rows(logits)
        by_index.append(-np.mean(np.log(probs[np.arange(n), loss_labels(n, c, seed)])))
        target = np.random.default_rng(seed).dirichlet(np.ones(c), size=n)
        by_probability.append(-np.mean(np.sum(target * log_softmax_rows(logits), axis=1)))
    shapes = loss_shapes()
    bce, bce_logits = [], []
    for i, row in enumerate(shapes):
        shape = unpad(row)
        p, t = loss_values(shape, i, 0.01, 0.99), loss_values(shape, i + 1, 0.0, 1.0)
        bce.append(-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)))
        x, t = loss_values(shape, i, -4, 4), loss_values(shape, i + 1, 0.0, 1.0)
        p = 1 / (1 + np.exp(-x))
        bce_logits.append(-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)))
    ignored_cases = [(n, c, seed) for n in range(1, 9) for c in range(2, 6)
                     for seed in LOSS_SEEDS]
    ignored = []
    for n, c, seed in ignored_cases:
        labels, kept = ignored_labels(n, c, seed)
        log_probs = log_softmax_rows(loss_values((n, c), seed, -5, 5))
        ignored.append(-np.mean(log_probs[np.arange(n)[kept], labels[kept]]))
    labels = np.array([2, 0, 1, 2])
    grad = (softmax_rows(loss_values((4, 3), 5)) - np.eye(3)[labels]) / 4
    labels = np.array([2, -100, 0, -100, 1])
    kept = labels != -100
    ignored_grad = (softmax_rows(loss_values((5, 3), 2))[kept] - np.eye(3)[labels[kept]]) / 3
    return {
        "ce_cases": np.array(ce_cases, dtype=np.int64), "ce_index": np.array(by_index),
        "ce_probability": np.array(by_probability),
        "bce_shapes": np.array(shapes, dtype=np.int64), "bce": np.array(bce),
        "bce_with_logits": np.array(bce_logits),
        "ignored_cases": np.array(ignored_cases, dtype=np.int64),
        "ignored_mean": np.array(ignored), "ce_grad": grad, "ignored_grad": ignored_grad,
        "ignored_none": -log_softmax_rows(loss_values((4, 3), 3))[[0, 2], [1, 2]],
        "ignore_class_0": np.array(-np.mean(log_softmax_rows(loss_values((4, 3), 4))[[1, 3],
                                                                                   [1, 2]])),
    }


# ------------------------------------------------------------------ chapter 07: Adam / AdamW
# The parameter and gradients of tests/optim/test_optimizers.py (START, GRADS).
START = [1.0, -2.0]
GRADS = [[0.5, -1.0], [0.2, 0.3], [-0.4, 0.1]]
ADAM_CASES = {
    "adam": dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8),
    "adam_betas_eps": dict(lr=0.05, beta1=0.5, beta2=0.8, eps=0.1),
    "adam_weight_decay": dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, l2=0.1),
    "adamw": dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, decoupled=0.1),
    "adamw_defaults": dict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, decoupled=0.01),
}


def adam_by_hand(grads, start, lr, beta1, beta2, eps, l2=0.0, decoupled=0.0):
    """Adam/AdamW written out from the paper, with fresh temporaries and float64 scalars."""
    p = np.array(start, dtype=np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    trajectory = []
    for t, grad in enumerate(grads, start=1):
        p = p - lr * decoupled * p
        g = np.asarray(grad, dtype=np.float64) + l2 * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g ** 2
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        trajectory.append(p)
    return np.stack(trajectory)


def adam_arrays() -> dict:
    """One (steps, 2) trajectory per case of ADAM_CASES."""
    return {name: adam_by_hand(GRADS, START, **hyper) for name, hyper in ADAM_CASES.items()}


# ------------------------------------------------------------------ chapter 09: conv2d
def values(shape, seed=0):
    """The inputs of tests/core/test_spatial.py (its ``_values``)."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=shape)


def geometries() -> list:
    """Every kernel (1..3 x 1..3), stride (1..2 x 1..2) and padding (0..1 x 0..1), with the
    input height and width cycling through 5..7: ``(kh, kw, sh, sw, ph, pw, h, w)``."""
    rows = []
    combos = itertools.product(range(1, 4), range(1, 4), (1, 2), (1, 2), (0, 1), (0, 1))
    for i, combo in enumerate(combos):
        rows.append((*combo, 5 + i % 3, 5 + (i // 3) % 3))
    return rows


def naive_conv2d(x, weight, bias, stride, padding):
    """The definition, one output element at a time (the reference, so loops are fine)."""
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, w = x.shape
    f, _, kh, kw = weight.shape
    padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    padded[:, :, ph:ph + h, pw:pw + w] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.zeros((n, f, oh, ow))
    for b in range(n):
        for k in range(f):
            for r in range(oh):
                for s in range(ow):
                    window = padded[b, :, r * sh:r * sh + kh, s * sw:s * sw + kw]
                    out[b, k, r, s] = np.sum(window * weight[k]) + bias[k]
    return out


def conv_inputs(kh, kw, h, w):
    """x (2, 2, h, w), weight (3, 2, kh, kw), bias (3,) of the property test."""
    return values((2, 2, h, w), 1), values((3, 2, kh, kw), 2), values(3, 3)


def layer_inputs():
    """x, weight, bias (float32) of the Conv2d(3, 4, (3, 2), stride=2, padding=1) test."""
    return (values((2, 3, 7, 6)).astype(np.float32),
            values((4, 3, 3, 2), 4).astype(np.float32), values(4, 5).astype(np.float32))


def conv_arrays() -> dict:
    arrays = {"geometries": np.array(geometries(), dtype=np.int64)}
    for i, (kh, kw, sh, sw, ph, pw, h, w) in enumerate(geometries()):
        arrays[f"out{i}"] = naive_conv2d(*conv_inputs(kh, kw, h, w), (sh, sw), (ph, pw))
    x, weight, bias = layer_inputs()
    arrays["layer_out"] = naive_conv2d(x, weight, bias, (2, 2), (1, 1))
    return arrays


# ------------------------------------------------------------------ chapter 10: BPE
# The cases of tests/text/test_tokenizers.py's oracle tests: texts drawn like its former
# hypothesis strategies (same alphabets, lengths and vocabulary sizes), more of them than
# hypothesis ran, led by the edge cases hypothesis finds first.
BPE_SEED = 10
TRAIN_CASES = {  # name: (alphabet or None for any Unicode, max length, max extra, pattern?, n)
    "ascii": ("ab c\n", 60, 25, False, 200),
    "unicode": (None, 40, 15, False, 120),
    "pattern": ("ab c'\n1", 60, 20, True, 120),
}
EDGE_TEXTS = ["", "a", "aa", "aaa", "aaaa", "a" * 60, "ab" * 30, "aab" * 20, " \n" * 30,
              "abc abc abc", "ba ab ba ab", "\n\n\n", "c'c'c'11 1 1"]
UNICODE_EDGES = ["", "\n", "\n\n\n", "   ", "a  b   c", "\t\tx\t", "\r\n", "\x00\x7f", "😀",
                 "👩\u200d👩\u200d👧", "e\u0301", "\u0301", "日本語のテキスト", "\ufffd", "ﬁ",
                 "Ω≈ç√", "😀😀😀😀", "ééé ééé", "\x00\x00\x00\x00"]


def reference_merges(text, vocab_size, pattern=None):
    """BPE training the slow, obvious way: recount every pair of the text before every
    merge. Ties: the pair whose first occurrence comes first in the text."""
    if pattern is None:
        chunks = [list(text.encode("utf-8"))]
    else:
        import regex
        chunks = [list(c.encode("utf-8")) for c in regex.findall(pattern, text)]
    merges = []
    while 256 + len(merges) < vocab_size:
        counts, first = Counter(), {}
        for c, chunk in enumerate(chunks):
            for i, pair in enumerate(zip(chunk, chunk[1:])):
                counts[pair] += 1
                first.setdefault(pair, (c, i))
        if not counts:
            break
        best = min(counts, key=lambda pair: (-counts[pair], first[pair]))
        new_id = 256 + len(merges)
        merges.append(best)
        chunks = [reference_merge_pair(chunk, best, new_id) for chunk in chunks]
    return merges


def reference_merge_pair(ids, pair, new_id):
    """Replace every non-overlapping occurrence of ``pair``, left to right."""
    out, i = [], 0
    while i < len(ids):
        if tuple(ids[i:i + 2]) == tuple(pair):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def replay_merges(text, merges):
    """Encoding the slow, obvious way: apply merge 0 everywhere, then merge 1, ..."""
    ids = list(text.encode("utf-8"))
    for k, pair in enumerate(merges):
        ids = reference_merge_pair(ids, pair, 256 + k)
    return ids


def _any_character(rng):
    """A code point the way st.text() leans: mostly ASCII, then Latin and combining marks,
    then anything but a surrogate."""
    kind = rng.random()
    if kind < 0.5:
        return chr(int(rng.integers(0, 128)))
    if kind < 0.75:
        return chr(int(rng.integers(128, 0x370)))
    code = int(rng.integers(0x370, 0x110000 - 0x800))
    return chr(code + 0x800 if code >= 0xD800 else code)


def random_text(rng, alphabet, max_size):
    """A text of length 0..max_size; half of them from 1-3 letters only, for long runs."""
    size = int(rng.integers(0, max_size + 1))
    if alphabet is None:
        letters = [_any_character(rng) for _ in range(int(rng.integers(1, 7)))]
        if rng.random() < 0.5:
            return "".join(_any_character(rng) for _ in range(size))
    else:
        letters = list(alphabet)
        if rng.random() < 0.5:
            letters = list(rng.choice(letters, size=int(rng.integers(1, 4)), replace=False))
    return "".join(letters[int(i)] for i in rng.integers(0, len(letters), size=size))


def bpe_cases() -> dict:
    """``{"training": {name: [[text, vocab_size, merges], ...]}, "encoding": [[merges,
    text, ids], ...], "pattern": the split pattern}``."""
    from tinytorch.text import GPT2_SPLIT_PATTERN

    rng = np.random.default_rng(BPE_SEED)
    training = {}
    for name, (alphabet, max_size, max_extra, with_pattern, n) in TRAIN_CASES.items():
        pattern = GPT2_SPLIT_PATTERN if with_pattern else None
        edges = UNICODE_EDGES if alphabet is None else [
            t for t in EDGE_TEXTS if set(t) <= set(alphabet)]
        texts = edges + [random_text(rng, alphabet, max_size) for _ in range(n)]
        cases = []
        for i, text in enumerate(texts):
            extra = max_extra if i < len(edges) else int(rng.integers(0, max_extra + 1))
            merges = reference_merges(text, 256 + extra, pattern)
            cases.append([text, 256 + extra, [list(m) for m in merges]])
        training[name] = cases
    encoding = []
    for i in range(120):      # corpus, text from "ab c\n"; merges learned from the corpus
        corpus = random_text(rng, "ab c\n", 60) or "ab"
        text = EDGE_TEXTS[i] if i < len(EDGE_TEXTS) else random_text(rng, "ab c\n", 60)
        merges = reference_merges(corpus, 256 + int(rng.integers(0, 26)))
        encoding.append([[list(m) for m in merges], text, replay_merges(text, merges)])
    return {"pattern": GPT2_SPLIT_PATTERN, "training": training, "encoding": encoding}


# ------------------------------------------------------------------ chapter 11: sinusoidal
SINUSOIDAL_CASES = [(1, 1), (7, 2), (50, 16), (20, 7), (6, 4)]


def closed_form_sinusoidal(max_len, dim):
    """Vaswani et al.'s definition, element by element."""
    table = np.zeros((max_len, dim))
    for pos in range(max_len):
        for j in range(dim):
            angle = pos / 10000 ** ((j - j % 2) / dim)
            table[pos, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return table


def sinusoidal_arrays() -> dict:
    return {f"table_{n}x{d}": closed_form_sinusoidal(n, d) for n, d in SINUSOIDAL_CASES}


# ------------------------------------------------------------------ chapter 12: attention
def uniform(shape, seed=0, low=-1.0, high=1.0):
    """``_values`` of the chapter 12 and 13 tests."""
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def qkv(b, h, t, s, d, e, seed=0):
    return (uniform((b, h, t, d), seed), uniform((b, h, s, d), seed + 1),
            uniform((b, h, s, e), seed + 2))


def numpy_attention(q, k, v, additive=None, scale=None):
    """softmax(q k^T / sqrt(d) + additive) v, the textbook formula."""
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ np.swapaxes(k, -1, -2) * scale
    if additive is not None:
        scores = scores + additive
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v


def numpy_tril(t, s, offset=0):
    """0 where key j <= query i + offset, -inf elsewhere, built with two loops."""
    mask = np.zeros((t, s))
    for i in range(t):
        for j in range(s):
            if j > i + offset:
                mask[i, j] = -np.inf
    return mask


def attention_geometries() -> list:
    """Every T, S (1..4), d, e (1..3), with batch and heads cycling through 1..2:
    ``(b, h, t, s, d, e)``."""
    rows = []
    for i, (t, s, d, e) in enumerate(itertools.product(range(1, 5), range(1, 5), range(1, 4),
                                                       range(1, 4))):
        rows.append((1 + i % 2, 1 + (i // 2) % 2, t, s, d, e))
    return rows


def layer_parameters(names_and_shapes, scale=1.0, seeds=None):
    """Each parameter set to ``uniform(shape, seed) * scale`` in float32, as the tests fill a
    module's parameters, the seed its size unless ``seeds`` are given; {name: float64 copy}."""
    seeds = seeds or [int(np.prod(shape)) for _, shape in names_and_shapes]
    return {name: (uniform(shape, seed) * scale).astype(np.float32).astype(np.float64)
            for (name, shape), seed in zip(names_and_shapes, seeds)}


def mha_shapes(c):
    return [("c_attn.weight", (3 * c, c)), ("c_attn.bias", (3 * c,)),
            ("c_proj.weight", (c, c)), ("c_proj.bias", (c,))]


MHA_SCALE = 0.3           # about nn.Linear's 1/sqrt(in_features) for 12 inputs


def numpy_multi_head(params, x, num_heads, additive=None, prefix=""):
    """The layer's forward written with numpy and a loop over heads."""
    p = {name[len(prefix):]: value for name, value in params.items() if name.startswith(prefix)}
    c = x.shape[-1]
    d = c // num_heads
    qkv_ = x @ p["c_attn.weight"].T + p["c_attn.bias"]
    q, k, v = qkv_[..., :c], qkv_[..., c:2 * c], qkv_[..., 2 * c:]
    heads = [numpy_attention(q[..., i * d:(i + 1) * d], k[..., i * d:(i + 1) * d],
                             v[..., i * d:(i + 1) * d], additive) for i in range(num_heads)]
    return np.concatenate(heads, axis=-1) @ p["c_proj.weight"].T + p["c_proj.bias"]


def combined_mask():
    """The boolean mask of the mask-and-is_causal test: key 0 hidden except from query 0."""
    allowed = np.ones((4, 4), dtype=bool)
    allowed[:, 0] = False
    allowed[0, 0] = True
    return allowed


def attention_arrays() -> dict:
    rows = attention_geometries()
    arrays = {"geometries": np.array(rows, dtype=np.int64),
              "formula_out": np.concatenate([numpy_attention(*qkv(*g)).ravel() for g in rows])}
    q, k, v = uniform((2, 3, 4, 5)), uniform((1, 3, 6, 5), 1), uniform((6, 2), 2)
    arrays["broadcast_scale_out"] = numpy_attention(q, k, v, scale=0.5)
    q, k, v = qkv(2, 2, 3, 5, 4, 3)
    allowed = np.random.default_rng(3).random((3, 5)) > 0.4
    allowed[:, 0] = True
    arrays["bool_mask_out"] = numpy_attention(q, k, v, np.where(allowed, 0.0, -np.inf))
    q, k, v = qkv(1, 2, 3, 4, 2, 2)
    arrays["float_mask_out"] = numpy_attention(q, k, v, uniform((2, 1, 4), 7) * 3)
    for t, s in [(4, 4), (3, 5), (5, 3)]:
        arrays[f"causal_out_{t}x{s}"] = numpy_attention(*qkv(1, 2, t, s, 3, 2), numpy_tril(t, s))
    for t, s in [(4, 4), (2, 5), (1, 6)]:
        arrays[f"lower_right_{t}x{s}"] = numpy_tril(t, s, offset=s - t)
    arrays["unmasked_out"] = numpy_attention(*qkv(1, 1, 3, 4, 2, 2))
    params = layer_parameters(mha_shapes(12), MHA_SCALE)
    x = uniform((2, 5, 12)).astype(np.float32).astype(np.float64)
    arrays["mha_out"] = numpy_multi_head(params, x, 3)
    arrays["mha_causal_out"] = numpy_multi_head(params, x, 3, numpy_tril(5, 5))
    params = layer_parameters(mha_shapes(6), MHA_SCALE)
    additive = np.where(combined_mask(), 0.0, -np.inf) + numpy_tril(4, 4)
    arrays["mha_mask_and_causal_out"] = numpy_multi_head(params, uniform((1, 4, 6), 8), 2,
                                                         additive)
    return arrays


# ------------------------------------------------------------------ chapter 13: LayerNorm, block
def numpy_layer_norm(x, k, weight, bias, eps=1e-5):
    """Normalise over the last k axes with the biased variance, then scale and shift."""
    axes = tuple(range(x.ndim - k, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def layer_norm_cases() -> list:
    """Every shape (1..3, 1..3, 2..5) and number k (1..2) of normalised axes:
    ``(a, b, c, k)``."""
    return [(a, b, c, k) for a, b, c, k in itertools.product(range(1, 4), range(1, 4),
                                                             range(2, 6), (1, 2))]


def layer_norm_arrays() -> dict:
    def values(shape, seed):
        return uniform(shape, seed, -2.0, 2.0)

    cases = layer_norm_cases()
    outs = []
    for a, b, c, k in cases:
        shape = (a, b, c)
        x, weight, bias = values(shape, 1), values(shape[-k:], 2), values(shape[-k:], 3)
        outs.append(numpy_layer_norm(x, k, weight, bias).ravel())
    return {"cases": np.array(cases, dtype=np.int64), "formula_out": np.concatenate(outs),
            "no_affine_out": numpy_layer_norm(values((2, 3, 5), 4), 1, 1.0, 0.0)}


def numpy_gelu(x):
    """GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def block_shapes(c, hidden):
    return ([("ln_1.weight", (c,)), ("ln_1.bias", (c,))]
            + [(f"attn.{n}", s) for n, s in mha_shapes(c)]
            + [("ln_2.weight", (c,)), ("ln_2.bias", (c,)), ("mlp.c_fc.weight", (hidden, c)),
               ("mlp.c_fc.bias", (hidden,)), ("mlp.c_proj.weight", (c, hidden)),
               ("mlp.c_proj.bias", (c,))])


def numpy_block(x, p, num_heads, eps=1e-5):
    """x + attention(ln_1(x)), then + the GELU MLP of ln_2, causal, written in numpy."""
    def ln(x, name):
        return numpy_layer_norm(x, 1, p[f"{name}.weight"], p[f"{name}.bias"], eps)

    def linear(x, name):
        return x @ p[f"{name}.weight"].T + p[f"{name}.bias"]

    t = x.shape[1]
    x = x + numpy_multi_head(p, ln(x, "ln_1"), num_heads, numpy_tril(t, t), prefix="attn.")
    return x + linear(numpy_gelu(linear(ln(x, "ln_2"), "mlp.c_fc")), "mlp.c_proj")


def block_arrays() -> dict:
    x = np.linspace(-5, 5, 1001).astype(np.float32).astype(np.float64)
    shapes = block_shapes(8, 32)       # seeds 100, 101, ...: ln_1 and ln_2 must differ
    params = layer_parameters(shapes, seeds=range(100, 100 + len(shapes)))
    inputs = uniform((2, 5, 8), 1).astype(np.float32).astype(np.float64)
    return {"gelu": numpy_gelu(x), "block_out": numpy_block(inputs, params, 2)}


# ------------------------------------------------------------------ chapter 16: distillation
def distillation_arrays() -> dict:
    """The soft term t^2 KL(softmax(teacher / t) || softmax(student / t)), mean over rows, for
    tests/optimization/test_compress.py's logits (its ``_logits(0)``, ``_logits(1)``)."""
    student, teacher, t = (np.random.default_rng(0).standard_normal((4, 5)),
                           np.random.default_rng(1).standard_normal((4, 5)), 2.5)
    p = np.exp(teacher / t) / np.exp(teacher / t).sum(axis=1, keepdims=True)
    q = np.exp(student / t) / np.exp(student / t).sum(axis=1, keepdims=True)
    return {"soft_term": np.array(t ** 2 * np.sum(p * np.log(p / q)) / len(p))}


# ------------------------------------------------------------------ files
BUILDERS = {ACTIVATIONS: activation_arrays, LOSSES: loss_arrays, ADAM: adam_arrays,
            CONV: conv_arrays, BPE: bpe_cases, SINUSOIDAL: sinusoidal_arrays,
            ATTENTION: attention_arrays, LAYER_NORM: layer_norm_arrays, BLOCK: block_arrays,
            DISTILLATION: distillation_arrays}


def write(path: Path, arrays: dict) -> None:
    if path.suffix == ".json":
        text = json.dumps({"generated_by": "tools/make_oracle_fixtures.py", **arrays},
                          ensure_ascii=False, separators=(",", ":"))
        path.write_text(text + "\n", encoding="utf-8")
        return
    meta = {"generated_by": "tools/make_oracle_fixtures.py", "keys": sorted(arrays)}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, __meta__=np.array(json.dumps(meta)), **arrays)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    for path, build in BUILDERS.items():
        arrays = build()
        write(path, arrays)
        print(f"wrote {len(arrays)} arrays, {path.stat().st_size:,} bytes to "
              f"{path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
