"""Stored oracle numbers for handed-out tests: the reference code lives here, not in tests/.

A chapter's tests are given to the student, so they must not contain a complete solution
of what the chapter asks for. Where a test compares with a reference implementation
(Adam written out from the paper for chapter 07, convolution as a loop over output
elements for chapter 09), this script runs that reference once and stores its numbers in
small fixtures under ``tests/fixtures/``; the tests read them. ``tests/test_oracle_fixtures.py``
checks that the files are what this script computes now.

Regenerate (numpy only)::

    .venv/bin/python -m tools.make_oracle_fixtures
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
ADAM = FIXTURES / "adam_trajectories.npz"
CONV = FIXTURES / "conv2d_naive.npz"

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


# ------------------------------------------------------------------ files
BUILDERS = {ADAM: adam_arrays, CONV: conv_arrays}


def write(path: Path, arrays: dict) -> None:
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
