"""How fast does tinytorch train a GPT, next to the same GPT written by hand in numpy?

    python benchmarks/bench_gpt.py                 # oracle, then best of 5 timings
    python benchmarks/bench_gpt.py --threads 1     # numpy's BLAS on one thread (steadier)

The issue's case: GPT with 2 layers, 4 heads, n_embd 64, context 32, batch 32, trained with
Adam on characters of Shakespeare (``tinytorch.datasets.load_shakespeare``, offline). Both
implementations start from the same weights (tinytorch's, copied) and see the same batches
(random windows of the training text, drawn once with a fixed seed).

First the oracle: the per-step losses of the first steps must equal the numpy reference's
(``reference_numpy_gpt.py``, gradients derived by hand) to 1e-5 relative; a mismatch exits
with status 1 and skips the timings. Then seconds per training step, the frameworks taking
turns, best of ``--repeats``, and the ratio tinytorch / numpy against the target (<= 1.5).
The table only reports: the exit status is 0 whatever the ratio.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the references, beside this file

import bench_training as common  # noqa: E402
import reference_numpy_gpt as ref  # noqa: E402

import tinytorch as tt  # noqa: E402

CONFIG = dict(n_layer=2, n_head=4, n_embd=64, block_size=32)
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
TARGET = 1.5
ORACLE_STEPS = 10
ORACLE_RTOL = 1e-5
TIMED_STEPS = 20
DATA_SEED = 0
MODEL_SEED = 0
TEXT_CHARS = 200_000       # the first 200 k characters of the training plays


def load_text_ids(chars: int = TEXT_CHARS) -> tuple:
    """(token ids of the start of the training text, vocabulary size): one id per
    character of the whole training text's vocabulary."""
    text = tt.datasets.load_shakespeare().train_text
    vocab = sorted(set(text))
    lookup = {ch: i for i, ch in enumerate(vocab)}
    return np.array([lookup[ch] for ch in text[:chars]], dtype=np.int64), len(vocab)


def make_batches(ids: np.ndarray, steps: int, batch_size: int, block_size: int,
                 seed: int = DATA_SEED) -> list:
    """``steps`` (x, y) pairs of (batch_size, block_size) windows; y is x shifted by one."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(steps):
        starts = rng.integers(0, len(ids) - block_size - 1, batch_size)
        windows = np.stack([ids[s:s + block_size + 1] for s in starts])
        batches.append((windows[:, :-1], windows[:, 1:]))
    return batches


def build_gpt(vocab_size: int, n_layer: int, n_head: int, n_embd: int, block_size: int,
              seed: int = MODEL_SEED) -> tt.GPT:
    tt.manual_seed(seed)
    return tt.GPT(vocab_size, block_size, n_layer, n_head, n_embd)


def tinytorch_trainer(model: tt.GPT, batches: list, lr: float = LEARNING_RATE):
    """``run(n) -> (seconds, losses)``: restore the initial weights and a fresh Adam (not
    timed), then n training steps on the first n batches (timed)."""
    initial = [p.data.copy() for p in model.parameters()]
    loss_fn = tt.CrossEntropyLoss()
    vocab = model.vocab_size

    def run(n_steps: int):
        for p, w in zip(model.parameters(), initial):
            p.data[...] = w
        optimizer = tt.Adam(model.parameters(), lr=lr)
        losses = []
        start = time.perf_counter()
        for x, y in batches[:n_steps]:
            optimizer.zero_grad()
            loss = loss_fn(model(x).reshape(-1, vocab), y.reshape(-1))
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return time.perf_counter() - start, losses

    return run


def numpy_trainer(model: tt.GPT, batches: list, lr: float = LEARNING_RATE,
                  reference: ref.GPT | None = None):
    """The same, for the numpy reference holding copies of ``model``'s weights (or
    ``reference``, when given)."""
    net = reference or ref.GPT.from_state(model.state_dict(), model.n_layer, model.n_head)
    initial = [p.copy() for p in net.params]

    def run(n_steps: int):
        for p, w in zip(net.params, initial):
            p[...] = w
        optimizer = ref.Adam(net.params, lr=lr)
        losses = []
        start = time.perf_counter()
        for x, y in batches[:n_steps]:
            losses.append(ref.train_step(net, optimizer, x, y))
        return time.perf_counter() - start, losses

    return run


def oracle(model: tt.GPT, batches: list, steps: int, lr: float = LEARNING_RATE) -> dict:
    """Per-step losses of ``steps`` Adam steps from the same start, by framework."""
    runs = trainers(model, batches, lr)          # both copy the weights before either runs
    return {name: run(steps)[1] for name, run in runs.items()}


def trainers(model: tt.GPT, batches: list, lr: float = LEARNING_RATE) -> dict:
    return {"tinytorch": tinytorch_trainer(model, batches, lr),
            "numpy": numpy_trainer(model, batches, lr)}


def run_benchmark(repeats: int, steps: int) -> int:
    print(common.describe_machine(None), end="\n\n")
    ids, vocab = load_text_ids()
    cfg = CONFIG
    label = (f"GPT {cfg['n_layer']} layers, {cfg['n_head']} heads, d={cfg['n_embd']}, "
             f"context {cfg['block_size']}, batch {BATCH_SIZE}, vocab {vocab}, Adam")
    batches = make_batches(ids, max(steps, ORACLE_STEPS), BATCH_SIZE, cfg["block_size"])
    model = build_gpt(vocab, **cfg)
    print(f"{label}: {model.get_num_params(non_embedding=False):,} parameters")

    losses = oracle(model, batches, ORACLE_STEPS)
    difference = common.max_relative_loss_difference(losses["tinytorch"], losses["numpy"])
    verdict = "ok" if difference <= ORACLE_RTOL else "MISMATCH"
    print(f"Oracle: {ORACLE_STEPS} steps, max relative loss difference tinytorch vs numpy "
          f"{difference:.1e} (must be <= {ORACLE_RTOL:g}) {verdict}")
    print(f"  losses: {losses['tinytorch'][0]:.4f} -> {losses['tinytorch'][-1]:.4f}")
    if difference > ORACLE_RTOL:
        print("\nORACLE MISMATCH: timings skipped.")
        return 1

    runs = trainers(model, batches)
    for run in runs.values():      # warm-up
        run(3)
    best, _ = common.best_times(runs, lambda run: run(steps), repeats)
    per_step = {name: seconds / steps for name, seconds in best.items()}
    ratio = per_step["tinytorch"] / per_step["numpy"]
    print(f"\nTiming: {steps} steps, best of {repeats} (numbers depend on the machine and "
          f"its load)")
    header = ["case", "tinytorch ms/step", "numpy ms/step", "tt/numpy", "target", "within"]
    row = [label, f"{per_step['tinytorch'] * 1e3:.2f}", f"{per_step['numpy'] * 1e3:.2f}",
           f"{ratio:.2f}", f"<= {TARGET:g}", "yes" if ratio <= TARGET else "no"]
    widths = [max(len(a), len(b)) for a, b in zip(header, row)]
    for line in (header, ["-" * w for w in widths], row):
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(line, widths))))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5,
                        help="timings per framework (the best is kept); default 5")
    parser.add_argument("--steps", type=int, default=TIMED_STEPS,
                        help=f"training steps per timing; default {TIMED_STEPS}")
    parser.add_argument("--threads", type=int, default=None,
                        help="cap numpy's BLAS at this many threads; 1 gives steadier numbers "
                             "on a busy machine")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.steps < 1:
        parser.error(f"--repeats and --steps must be at least 1; got {args.repeats}, "
                     f"{args.steps}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1; got {args.threads}")
    with common.limit_threads(args.threads, None):
        return run_benchmark(args.repeats, args.steps)


if __name__ == "__main__":
    sys.exit(main())
