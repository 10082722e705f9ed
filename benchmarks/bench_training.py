"""How fast does tinytorch train, next to hand-written numpy (and PyTorch CPU, if installed)?

    python benchmarks/bench_training.py            # full epochs
    python benchmarks/bench_training.py --quick    # fewer repeats, the CNN on a few batches

SPEC section 5, measured side by side in one run. Every framework starts from the same
initial weights (tinytorch's, copied), sees the same batches in the same order (a tinytorch
DataLoader's shuffled order) and uses Adam with the same hyper-parameters. Timings are the
best of several rounds, the frameworks taking turns so a burst of load from elsewhere on the
machine hits them alike: at least ``--repeats`` rounds, and for a cheap case more, until it
has been timed for ``--min-seconds`` (see ``best_times``).

First comes the oracle: the per-step losses of the first steps of every case, and the
output and gradients of the convolution, must equal the numpy reference's (and PyTorch's)
to 1e-5 relative. A mismatch prints the offending case and exits with status 1; the timings
only report (exit 0), whatever the ratios.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # reference_numpy, beside this file

import tinytorch as tt  # noqa: E402

import reference_numpy as ref  # noqa: E402

LEARNING_RATE = 1e-3
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = [time.perf_counter]


def clock() -> float:
    """The clock every timing reads: wall time, or with ``--clock cpu`` this process's CPU
    time, which other work on a shared machine does not inflate (meaningful with
    ``--threads 1``: with more threads it adds up the time of every thread)."""
    return _clock[0]()
ORACLE_RTOL = 1e-5
DATA_SEED = 0   # train/test split and shuffle order
MODEL_SEED = 0  # tinytorch.manual_seed before building each model


def load_torch():
    """The torch module, or None when it is not installed (it is not a project dependency)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


# ------------------------------------------------------------------------------ models
def small_mlp() -> tt.Module:
    tt.manual_seed(MODEL_SEED)
    return tt.MLP([64, 128, 64, 10])


def mnist_mlp() -> tt.Module:
    tt.manual_seed(MODEL_SEED)
    return tt.MLP([784, 128, 10])


def lenet() -> tt.Module:
    """LeNet-style: two conv + ReLU + 2x2 max-pool stages, then a two-layer classifier."""
    tt.manual_seed(MODEL_SEED)
    return tt.Sequential(
        tt.Conv2d(1, 6, 5, padding=2), tt.ReLU(), tt.MaxPool2d(2),     # 28x28 -> 14x14
        tt.Conv2d(6, 16, 5), tt.ReLU(), tt.MaxPool2d(2),               # 10x10 -> 5x5
        tt.Flatten(), tt.Linear(400, 120), tt.ReLU(), tt.Linear(120, 10))


def tiny_cnn() -> tt.Module:
    """For 8x8 digits: one conv stage, then a linear classifier."""
    tt.manual_seed(MODEL_SEED)
    return tt.Sequential(tt.Conv2d(1, 4, 3, padding=1), tt.ReLU(), tt.MaxPool2d(2),
                         tt.Flatten(), tt.Linear(64, 10))


def _weights(layer) -> tuple:
    bias = layer.bias.data.copy() if layer.bias is not None else None
    return layer.weight.data.copy(), bias


def to_numpy_reference(model: tt.Sequential) -> ref.Sequential:
    """The same network in reference_numpy, holding copies of the model's current weights."""
    layers = []
    for layer in model:
        if isinstance(layer, tt.Linear):
            layers.append(ref.Linear(*_weights(layer)))
        elif isinstance(layer, tt.Conv2d):
            if layer.stride != (1, 1) or layer.padding[0] != layer.padding[1]:
                raise ValueError(f"the numpy reference has stride-1, square-padded convolutions "
                                 f"only; got {layer!r}")
            layers.append(ref.Conv2d(*_weights(layer), padding=layer.padding[0]))
        elif isinstance(layer, tt.MaxPool2d):
            if layer.stride != layer.kernel_size or not isinstance(layer.kernel_size, int):
                raise ValueError(f"the numpy reference pools square windows with stride equal "
                                 f"to the kernel size only; got {layer!r}")
            layers.append(ref.MaxPool2d(layer.kernel_size))
        elif isinstance(layer, tt.ReLU):
            layers.append(ref.ReLU())
        elif isinstance(layer, tt.Flatten):
            layers.append(ref.Flatten())
        else:
            raise TypeError(f"no numpy reference for layer {layer!r}")
    return ref.Sequential(layers)


def to_torch(model: tt.Sequential, torch):
    """The same network in PyTorch, holding copies of the model's current weights."""
    nn = torch.nn
    layers = []
    for layer in model:
        if isinstance(layer, tt.Linear):
            twin = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
        elif isinstance(layer, tt.Conv2d):
            twin = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                             stride=layer.stride, padding=layer.padding,
                             bias=layer.bias is not None)
        elif isinstance(layer, tt.MaxPool2d):
            twin = nn.MaxPool2d(layer.kernel_size, layer.stride)
        elif isinstance(layer, tt.ReLU):
            twin = nn.ReLU()
        elif isinstance(layer, tt.Flatten):
            twin = nn.Flatten(layer.start_dim, layer.end_dim)
        else:
            raise TypeError(f"no PyTorch twin for layer {layer!r}")
        layers.append(twin)
    net = nn.Sequential(*layers)
    with torch.no_grad():
        for mine, theirs in zip(model.parameters(), net.parameters(), strict=True):
            theirs.copy_(torch.from_numpy(mine.data))
    return net


# ------------------------------------------------------------------------------ training loops
# Each ``*_trainer`` returns ``run(n_batches) -> (seconds, per-step losses)``: it restores the
# initial weights and a fresh Adam (not timed), then trains n_batches steps (timed).

def make_loader(X: np.ndarray, y: np.ndarray, batch_size: int) -> tt.DataLoader:
    return tt.DataLoader(tt.TensorDataset(X, y), batch_size=batch_size, shuffle=True,
                         seed=DATA_SEED)


def tinytorch_trainer(model: tt.Module, X, y, batch_size: int, lr: float = LEARNING_RATE):
    initial = [p.data.copy() for p in model.parameters()]
    loader = make_loader(X, y, batch_size)
    loss_fn = tt.CrossEntropyLoss()

    def run(n_batches: int):
        for p, w in zip(model.parameters(), initial):
            p.data[...] = w
        optimizer = tt.Adam(model.parameters(), lr=lr)
        loader.set_epoch(0)
        losses = []
        start = clock()
        for inputs, targets in itertools.islice(loader, n_batches):
            optimizer.zero_grad()
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return clock() - start, losses

    return run


def numpy_trainer(model: tt.Module, X, y, batch_size: int, lr: float = LEARNING_RATE,
                  reference: ref.Sequential | None = None):
    """``reference`` defaults to ``to_numpy_reference(model)``."""
    net = reference if reference is not None else to_numpy_reference(model)
    initial = [p.copy() for p in net.params]
    order = make_loader(X, y, batch_size).sample_order(0)

    def run(n_batches: int):
        for p, w in zip(net.params, initial):
            p[...] = w
        optimizer = ref.Adam(net.params, lr=lr)
        losses = []
        start = clock()
        for first in range(0, min(n_batches * batch_size, len(order)), batch_size):
            batch = order[first:first + batch_size]
            losses.append(ref.train_step(net, optimizer, X[batch], y[batch]))
        return clock() - start, losses

    return run


def torch_trainer(model: tt.Module, X, y, batch_size: int, torch, lr: float = LEARNING_RATE):
    net = to_torch(model, torch)
    initial = [p.detach().clone() for p in net.parameters()]
    order = make_loader(X, y, batch_size).sample_order(0)
    loss_fn = torch.nn.CrossEntropyLoss()

    def run(n_batches: int):
        with torch.no_grad():
            for p, w in zip(net.parameters(), initial):
                p.copy_(w)
        optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        losses = []
        start = clock()
        for first in range(0, min(n_batches * batch_size, len(order)), batch_size):
            batch = order[first:first + batch_size]
            inputs, targets = torch.from_numpy(X[batch]), torch.from_numpy(y[batch])
            optimizer.zero_grad()
            loss = loss_fn(net(inputs), targets)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return clock() - start, losses

    return run


def trainers(model: tt.Module, X, y, batch_size: int, torch=None,
             lr: float = LEARNING_RATE) -> dict:
    """One ``run`` per framework: tinytorch, numpy, and torch when given."""
    runs = {"tinytorch": tinytorch_trainer(model, X, y, batch_size, lr),
            "numpy": numpy_trainer(model, X, y, batch_size, lr)}
    if torch is not None:
        runs["torch"] = torch_trainer(model, X, y, batch_size, torch, lr)
    return runs


def oracle_losses(build: Callable[[], tt.Module], X, y, batch_size: int, steps: int,
                  torch=None, lr: float = LEARNING_RATE) -> dict:
    """Per-step losses of ``steps`` Adam steps from the same start, by framework."""
    runs = trainers(build(), X, y, batch_size, torch, lr)
    return {name: run(steps)[1] for name, run in runs.items()}


# ------------------------------------------------------------------------------ one convolution
# Each ``run()`` does one forward and backward pass of a padded convolution whose input needs
# a gradient (as inside a network) and returns (seconds, (out, grad_x, grad_weight, grad_bias)).

def conv_runners(x, weight, bias, grad_out, padding: int, torch=None) -> dict:
    def tinytorch_run():
        start = clock()
        inputs = tt.Tensor(x, requires_grad=True)
        w, b = tt.Tensor(weight, requires_grad=True), tt.Tensor(bias, requires_grad=True)
        out = tt.conv2d(inputs, w, b, stride=1, padding=padding)
        out.backward(grad_out)
        seconds = clock() - start
        return seconds, (out.data, inputs.grad, w.grad, b.grad)

    def numpy_run():
        start = clock()
        conv = ref.Conv2d(weight, bias, padding)
        out = conv.forward(x)
        grad_x = conv.backward(grad_out)
        seconds = clock() - start
        return seconds, (out, grad_x, *conv.grads)

    runs = {"tinytorch": tinytorch_run, "numpy": numpy_run}
    if torch is not None:
        def torch_run():
            inputs = torch.from_numpy(x).requires_grad_()
            w = torch.from_numpy(weight).requires_grad_()
            b = torch.from_numpy(bias).requires_grad_()
            g = torch.from_numpy(grad_out)
            start = clock()
            out = torch.nn.functional.conv2d(inputs, w, b, padding=padding)
            out.backward(g)
            seconds = clock() - start
            return seconds, tuple(a.detach().numpy() for a in (out, inputs.grad, w.grad, b.grad))
        runs["torch"] = torch_run
    return runs


def conv_problem(batch=64, channels=16, size=32, filters=32, kernel=3, seed=0,
                 dtype=np.float32) -> tuple:
    """(x, weight, bias, grad_out): random arrays for a 'same'-padded convolution."""
    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(channels * kernel * kernel)
    return (rng.standard_normal((batch, channels, size, size)).astype(dtype),
            rng.uniform(-bound, bound, (filters, channels, kernel, kernel)).astype(dtype),
            rng.uniform(-bound, bound, filters).astype(dtype),
            rng.standard_normal((batch, filters, size, size)).astype(dtype))


# ------------------------------------------------------------------------------ comparison
def max_relative_difference(actual, expected) -> float:
    """max |actual - expected| / max |expected|, over every element: 0 means identical.

    Applied per step to losses and per array to the convolution's results, so entries near
    zero are judged on the scale of the whole array rather than their own.
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise ValueError(f"cannot compare results of shapes {actual.shape} and {expected.shape}")
    scale = np.max(np.abs(expected))
    return float(np.max(np.abs(actual - expected)) / scale) if scale > 0 else float(
        np.max(np.abs(actual)))


def max_relative_loss_difference(losses, expected_losses) -> float:
    """The largest relative difference between two sequences of per-step losses."""
    if len(losses) != len(expected_losses):
        raise ValueError(f"{len(losses)} losses cannot be compared with {len(expected_losses)}")
    return max(max_relative_difference(a, b) for a, b in zip(losses, expected_losses))


# ------------------------------------------------------------------------------ the cases
@dataclass
class Case:
    name: str
    build: Callable[[], tt.Module]
    load: Callable[[], tuple]          # -> (X_train, y_train)
    batch_size: int
    numpy_target: float                # tinytorch / numpy must be at most this
    torch_target: float | None         # tinytorch / torch must be at most this (None: none set)
    oracle_steps: int
    quick_batches: int | None = None   # with --quick, time only this many batches


def _digits():
    split = tt.datasets.load_digits(seed=DATA_SEED)
    return split.X_train, split.y_train


def _mnist(flatten: bool):
    def load():
        split = tt.datasets.load_mnist_5k(seed=DATA_SEED, flatten=flatten)
        return split.X_train, split.y_train
    return load


# "faster than PyTorch" on the small MLP: a ratio below 1.
CASES = [
    Case("MLP 64-128-64-10, 8x8 digits, batch 32", small_mlp, _digits, 32, 1.25, 1.0, 20),
    Case("MLP 784-128-10, MNIST 5k, batch 64", mnist_mlp, _mnist(True), 64, 1.3, None, 20),
    Case("LeNet CNN, MNIST 5k, batch 64", lenet, _mnist(False), 64, 1.5, None, 5,
         quick_batches=10),
]
CONV_CASE = ("Conv2d fwd+bwd (64,16,32,32), 32 filters 3x3, pad 1", 1.3, 2.5)


# ------------------------------------------------------------------------------ running
MAX_ROUNDS = 500  # with --min-seconds: a cap on the rounds of a very cheap case


def best_times(runs: dict, call: Callable, repeats: int, min_seconds: float = 0.0) -> tuple:
    """Best (smallest) timing per framework, the frameworks taking turns: at least
    ``repeats`` rounds, and more until the case has been timed for ``min_seconds`` of the
    clock in all (at most MAX_ROUNDS). A case of a few milliseconds then gets enough rounds
    for its best to fall in a quiet moment of a shared machine; a slow case gets ``repeats``.
    Returns ``({framework: best seconds}, rounds taken)``."""
    times = {name: [] for name in runs}
    spent, rounds = 0.0, 0
    while rounds < repeats or (spent < min_seconds and rounds < MAX_ROUNDS):
        for name, run in runs.items():
            seconds = call(run)[0]
            times[name].append(seconds)
            spent += seconds
        rounds += 1
    return {name: min(t) for name, t in times.items()}, rounds


def check_oracle(torch) -> bool:
    """Print the oracle table; True when every comparison is within ORACLE_RTOL."""
    print(f"Oracle: per-step losses (first steps, same weights and batches) and the "
          f"convolution's results,\nmax relative difference of tinytorch against each "
          f"reference (must be <= {ORACLE_RTOL:g})")
    rows = []
    for case in CASES:
        X, y = case.load()
        losses = oracle_losses(case.build, X, y, case.batch_size, case.oracle_steps, torch)
        rows.append((f"{case.name}: {case.oracle_steps} steps",
                     {name: max_relative_loss_difference(losses["tinytorch"], other)
                      for name, other in losses.items() if name != "tinytorch"}))
    # In float64: dW and db sum 65,536 products each, and float32 rounding of sums that long
    # differs between implementations by a few 1e-6; the oracle checks the arithmetic.
    x, weight, bias, grad_out = conv_problem(dtype=np.float64)
    results = {name: run()[1] for name, run in conv_runners(x, weight, bias, grad_out, 1,
                                                            torch).items()}
    rows.append((f"{CONV_CASE[0]}, float64: out, dx, dW, db",
                 {name: max(max_relative_difference(a, b)
                            for a, b in zip(results["tinytorch"], other, strict=True))
                  for name, other in results.items() if name != "tinytorch"}))
    ok = True
    width = max(len(label) for label, _ in rows)
    for label, differences in rows:
        cells = []
        for name, difference in differences.items():
            passed = difference <= ORACLE_RTOL
            ok &= passed
            cells.append(f"vs {name} {difference:.1e} {'ok' if passed else 'MISMATCH'}")
        print(f"  {label:<{width}}  " + "   ".join(cells))
    if torch is None:
        print("  vs torch: torch not installed: skipped")
    return ok


def _ratio_cells(mine: float, theirs: float | None, target: float | None) -> list:
    if theirs is None:
        return ["-", "-", "-", "-"]
    ratio = mine / theirs
    verdict = "-" if target is None else ("yes" if ratio <= target else "no")
    return [f"{theirs:.4f}", f"{ratio:.2f}", "-" if target is None else f"<= {target:g}",
            verdict]


def time_everything(torch, quick: bool, repeats: int, min_seconds: float) -> list:
    rows = []
    for case in CASES:
        X, y = case.load()
        runs = trainers(case.build(), X, y, case.batch_size, torch)
        per_epoch = -(-len(X) // case.batch_size)
        timed = min(case.quick_batches or per_epoch, per_epoch) if quick else per_epoch
        for run in runs.values():     # warm-up: first-touch allocations, caches
            run(min(3, timed))
        best, rounds = best_times(runs, lambda run, batches=timed: run(batches), repeats,
                                  min_seconds)
        scale = per_epoch / timed   # --quick: estimate a whole epoch from the timed batches
        seconds = {name: b * scale for name, b in best.items()}
        label = case.name + (f" (est. from {timed} of {per_epoch} batches)" if timed < per_epoch
                             else "")
        rows.append((label, seconds, case.numpy_target, case.torch_target))
        print(f"  timed: {label}: best of {rounds} rounds", flush=True)

    x, weight, bias, grad_out = conv_problem()
    runs = conv_runners(x, weight, bias, grad_out, 1, torch)
    for run in runs.values():
        run()
    best, rounds = best_times(runs, lambda run: run(), repeats, min_seconds)
    rows.append((CONV_CASE[0] + " [s/call]", best,
                 CONV_CASE[1], CONV_CASE[2]))
    print(f"  timed: {CONV_CASE[0]}: best of {rounds} rounds", flush=True)
    return rows


def print_table(rows: list, torch) -> None:
    header = ["case (s/epoch unless marked)", "tinytorch s", "numpy s", "tt/numpy", "target",
              "within"]
    if torch is not None:
        header += ["torch s", "tt/torch", "target", "within"]
    table = [header]
    for label, seconds, numpy_target, torch_target in rows:
        line = [label, f"{seconds['tinytorch']:.4f}",
                *_ratio_cells(seconds["tinytorch"], seconds["numpy"], numpy_target)]
        if torch is not None:
            line += _ratio_cells(seconds["tinytorch"], seconds["torch"], torch_target)
        table.append(line)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for k, line in enumerate(table):
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(line, widths))))
        if k == 0:
            print("  ".join("-" * w for w in widths))
    if torch is None:
        print("torch not installed: skipped")


def limit_threads(threads: int | None, torch):
    """A context in which numpy's BLAS (and torch) use at most ``threads`` threads.

    On a machine shared with other work, a multi-threaded BLAS waits for descheduled threads
    and its timings swing widely; one thread per process gives steadier ratios.
    """
    if threads is None:
        return contextlib.nullcontext()
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("threadpoolctl is not installed, so numpy's BLAS threads cannot be limited from "
              "here; set OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS, MKL_NUM_THREADS) instead")
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads)


def blas_threads() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "?"
    counts = {str(pool["num_threads"]) for pool in threadpool_info()
              if pool.get("user_api") == "blas"}
    return "/".join(sorted(counts)) or "?"


def describe_machine(torch) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = (f"Python {platform.python_version()}, numpy {np.__version__} "
            f"({blas_threads()} BLAS threads), {os.cpu_count()} CPUs, "
            f"load average {load:.1f}")
    if torch is not None:
        text += f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats; time the CNN on a subset of batches")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timings per framework and case (best is kept); default 5, "
                             "3 with --quick")
    parser.add_argument("--threads", type=int, default=None,
                        help="cap numpy's BLAS and torch at this many threads (default: "
                             "their own default, usually one per core); 1 gives steadier "
                             "numbers on a busy machine")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="what a timing measures: 'wall' seconds (default) or the "
                             "process's 'cpu' seconds, steadier on a shared machine (use "
                             "with --threads 1)")
    parser.add_argument("--min-seconds", type=float, default=None,
                        help="keep taking turns until a case has been timed this long in all "
                             f"(at least --repeats rounds, at most {MAX_ROUNDS}): default 2, "
                             "0.5 with --quick")
    args = parser.parse_args(argv)
    _clock[0] = CLOCKS[args.clock]
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 5)
    if repeats < 1:
        parser.error(f"--repeats must be at least 1; got {repeats}")
    min_seconds = args.min_seconds if args.min_seconds is not None else (
        0.5 if args.quick else 2.0)
    if min_seconds < 0:
        parser.error(f"--min-seconds must not be negative; got {min_seconds}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1; got {args.threads}")

    torch = load_torch()
    with limit_threads(args.threads, torch):
        return run_benchmark(torch, args.quick, repeats, min_seconds)


def run_benchmark(torch, quick: bool, repeats: int, min_seconds: float) -> int:
    print(describe_machine(torch), end="\n\n")
    if not check_oracle(torch):
        print("\nORACLE MISMATCH: tinytorch does not compute what the references compute; "
              "timings skipped.")
        return 1
    kind = "CPU seconds" if _clock[0] is time.process_time else "wall seconds"
    print(f"\nTiming (best of at least {repeats} rounds, and of at least {min_seconds:g} s of "
          f"{kind} per case; numbers depend on the machine and its load)")
    rows = time_everything(torch, quick, repeats, min_seconds)
    print()
    print_table(rows, torch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
