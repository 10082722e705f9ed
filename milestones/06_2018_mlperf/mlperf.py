"""Milestone 06 · MLPerf (2018): optimised models count only if they still reach the target.

MLPerf (2018; Mattson et al., "MLPerf Training Benchmark", and Reddi et al., "MLPerf
Inference Benchmark", both 2020) made one rule the basis of fair comparisons: a faster or
smaller system counts only if its model still reaches a stated **quality target** on held-out
data. This milestone applies that rule to two trained models of the course, the LeNet-style
CNN of Milestone 04 (``train_cnn``) and the TinyGPT of Milestone 07 (``train_tinygpt``), each
in four variants:

- ``baseline``: the trained float32 model;
- ``int8``: ``tinytorch.quantization.quantize_model`` with a calibration loader: weights int8
  per output channel, and every layer's input rounded to an 8-bit grid fitted to the range
  seen on training batches (static quantization);
- ``pruned``: global magnitude pruning (``tinytorch.prune.global_unstructured``) of the
  weights of every Linear and Conv2d (TinyGPT: of its transformer blocks; the token
  embedding, tied to the output layer, is kept), fine-tuned with the masks in place (a pruned
  weight stays 0), then made permanent with ``prune.remove``;
- ``int8 + pruned``: the pruned, fine-tuned model quantized like ``int8``.

Every row is measured: bytes (``model_nbytes``: what the model stores; pruning leaves
zeros inside a dense matrix, which takes as many bytes as before), the bytes the same
weights take when every matrix with zeros is stored as a bitmap of its nonzero entries plus
their values (``sparse_nbytes``: the arrays are built and their ``nbytes`` summed), held-out
quality (CNN: test accuracy; TinyGPT: validation loss in nats per character, recomputed with
plain numpy), and latency (``tinytorch.benchmark.Benchmark``: median of repeated forward
passes after a warm-up). TinyGPT's generation is also timed with and without the key/value
cache (``GPT.generate(..., use_cache=True/False)``), greedy, which must give the same tokens.

Gates, the quality targets (``checks()``):

- each baseline beats a trivial model: the CNN the majority-class rate of the test split, by
  ``CHANCE_MARGIN``; TinyGPT the unigram baseline of Milestone 07 (``baselines``), by
  ``UNIGRAM_MARGIN`` nats per character, and the bigram baseline (by ``bigram_margin``);
- each baseline reaches the preset's target (``cnn_target``, ``gpt_target``);
- each optimised row stays within tolerance of its baseline: accuracy at least baseline minus
  ``ACCURACY_TOLERANCE``; loss at most baseline times (1 + ``LOSS_TOLERANCE``);
- every TinyGPT loss equals its numpy recomputation to 1e-4 (a broken loss cannot pass);
- cached generation gives the same greedy tokens as uncached generation.

Latency is reported, not gated: on this hardware int8 (dequantize then float) and
unstructured pruning (zeros in dense matrices) do not make numpy faster, and the page says so
with the measurements.

Run from the repository root::

    python milestones/06_2018_mlperf/mlperf.py           # MNIST 5k CNN, full TinyGPT: minutes
    python milestones/06_2018_mlperf/mlperf.py --quick   # 8x8 digits, a short TinyGPT run

The full run reuses Milestone 07's checkpoint (``tinygpt.default_checkpoint()``) when it
holds a full run, and otherwise trains one there. The exit status is 0 when every gate
passes, 1 otherwise.
"""
import contextlib
import copy
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # milestones/, for common.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import tinytorch as tt  # noqa: E402
from tinytorch import prune  # noqa: E402
from tinytorch import quantization as Q  # noqa: E402
from tinytorch.benchmark import Benchmark, Result  # noqa: E402

from common import load_sibling, milestone_parser, report, timed  # noqa: E402

NAME = "Milestone 06 · MLPerf (2018)"
VARIANTS = ("baseline", "int8", "pruned", "int8 + pruned")
ACCURACY_TOLERANCE = 0.02   # an optimised CNN may lose at most 2 points of test accuracy
LOSS_TOLERANCE = 0.05       # an optimised TinyGPT may lose at most 5 % (loss <= 1.05 x)
CHANCE_MARGIN = 0.5         # the CNN baseline beats the majority-class rate by 50 points
UNIGRAM_MARGIN = 0.5        # TinyGPT beats the unigram baseline by 0.5 nats per character
NUMPY_TOLERANCE = 1e-4      # |loss - its numpy recomputation|

# "quick": the tests and the book page (8x8 digits, a TinyGPT of 200 steps); "full": the
# script (MNIST 5k, Milestone 07's full run). gpt_steps=None: the preset's own steps.
PRESETS = {
    "full": dict(cnn_dataset="mnist5k", cnn_epochs=None, cnn_target=0.96, cnn_sparsity=0.8,
                 cnn_finetune_epochs=2, cnn_finetune_lr=5e-4, gpt_preset="full",
                 gpt_steps=None, gpt_val_windows=None, gpt_target=1.90, bigram_margin=0.5,
                 gpt_sparsity=0.5,
                 gpt_finetune_steps=300, gpt_finetune_lr=5e-4, calibration_batches=8,
                 latency_batch=256, gpt_latency_batch=16, warmup=3, repeats=20,
                 gen_prompt=8, gen_tokens=56, gen_repeats=5),
    "quick": dict(cnn_dataset="digits", cnn_epochs=2, cnn_target=0.90, cnn_sparsity=0.8,
                  cnn_finetune_epochs=2, cnn_finetune_lr=5e-4, gpt_preset="quick",
                  gpt_steps=200, gpt_val_windows=128, gpt_target=2.5, bigram_margin=0.0,
                  gpt_sparsity=0.5,
                  gpt_finetune_steps=50, gpt_finetune_lr=1e-3, calibration_batches=4,
                  latency_batch=256, gpt_latency_batch=16, warmup=2, repeats=10,
                  gen_prompt=8, gen_tokens=56, gen_repeats=3),
}


def _cnn_milestone():
    return load_sibling("04_1998_cnn")


def _gpt_milestone():
    return load_sibling("07_2020_tinygpt")


# ----------------------------------------------------------------------------- bytes

def bitmap_encode(array: np.ndarray, zero=0) -> tuple:
    """``(bits, values)``: one bit per entry of ``array``, set where it differs from ``zero``
    (packed eight to a byte, ``np.packbits``), and those entries in order. ``zero`` is the
    value a pruned entry holds: 0 for a float weight, the zero point (one per output row,
    broadcast along axis 0) for an int8 one."""
    zero = np.asarray(zero).reshape((-1,) + (1,) * (array.ndim - 1)) if np.ndim(zero) else zero
    keep = array != zero
    return np.packbits(keep.reshape(-1)), array[keep]


def bitmap_decode(bits: np.ndarray, values: np.ndarray, shape: tuple, zero=0) -> np.ndarray:
    """The array that :func:`bitmap_encode` encoded (dtype of ``values``)."""
    keep = np.unpackbits(bits, count=int(np.prod(shape))).astype(bool).reshape(shape)
    zero = np.asarray(zero).reshape((-1,) + (1,) * (len(shape) - 1)) if np.ndim(zero) else zero
    dense = np.broadcast_to(np.asarray(zero, dtype=values.dtype), shape).copy()
    dense[keep] = values
    return dense


def _weight_matrices(model) -> list:
    """``(array, zero)`` of the weight of every Linear, Conv2d and quantized layer of
    ``model``, each once (a tied weight is one array)."""
    found, seen = [], set()
    for module in model.modules():
        if isinstance(module, Q._QuantizedLayer):
            array, zero = module.weight_q, module.weight_zero_point
        elif isinstance(module, (tt.Linear, tt.Conv2d)):
            array, zero = module.weight.data, 0
        else:
            continue
        if id(array) not in seen:
            seen.add(id(array))
            found.append((array, zero))
    return found


def sparse_nbytes(model) -> int:
    """Bytes ``model`` would store if each weight matrix were kept in whichever is smaller,
    dense or as a bitmap plus its nonzero values (:func:`bitmap_encode`, built and measured
    here), and every other array as it is. Equal to ``model_nbytes`` for a model without zeros.
    (A pruned model still has to be decoded to dense matrices before numpy multiplies them.)"""
    saved = 0
    for array, zero in _weight_matrices(model):
        bits, values = bitmap_encode(array, zero)
        saved += max(0, array.nbytes - (bits.nbytes + values.nbytes))
    return Q.model_nbytes(model) - saved


def weight_sparsity(model) -> float:
    """Fraction of the weights of the Linear, Conv2d and quantized layers that are "zero"
    (equal to their zero point, for int8 weights)."""
    zeros = total = 0
    for array, zero in _weight_matrices(model):
        bits, values = bitmap_encode(array, zero)
        zeros, total = zeros + array.size - values.size, total + array.size
    return zeros / total


# ----------------------------------------------------------------------------- one row

@dataclass
class Row:
    """One measured variant of one model. ``score`` is the test accuracy (CNN) or the
    validation loss in nats per character (TinyGPT; ``numpy_score`` its recomputation with
    numpy); ``latency`` a :class:`tinytorch.benchmark.Result` (seconds per forward pass of
    ``latency_inputs`` inputs), or None when latency was not measured."""
    model: str
    variant: str
    nbytes: int
    sparse_nbytes: int
    sparsity: float
    score: float
    numpy_score: float | None = None
    latency: object = None
    latency_inputs: int = 0

    @property
    def latency_ms(self) -> float:
        return math.nan if self.latency is None else 1e3 * self.latency.median


def _forward(model, inputs):
    """``model(inputs)`` in eval mode without a graph (for timing)."""
    model.eval()

    def run():
        with tt.no_grad():
            return model(inputs)
    return run


def interleaved_latency(functions: dict, warmup: int, repeats: int) -> dict:
    """``{name: tinytorch.benchmark.Result}``: each function called ``warmup`` times, then
    timed once per round by the Benchmark harness, round after round, every other round in
    reverse order, so that a slow moment of a shared machine (or the order) favours none."""
    bench = Benchmark(warmup=0, repeats=1)
    for fn in functions.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in functions}
    order = list(functions.items())
    for round_ in range(repeats):
        for name, fn in (order if round_ % 2 == 0 else order[::-1]):
            samples[name] += bench.run(name, fn).samples
    return {name: Result(name, times) for name, times in samples.items()}


def _rows(model_name: str, variants: dict, scores: dict, batch, config: dict,
          latency: bool) -> list:
    """A Row per variant: its bytes, sparsity and score, and (``latency``) its forward time
    on ``batch``, the variants timed in interleaved rounds."""
    times = (interleaved_latency({v: _forward(m, batch) for v, m in variants.items()},
                                 config["warmup"], config["repeats"]) if latency else {})
    size = len(batch.data) if isinstance(batch, tt.Tensor) else len(batch)
    rows = []
    for variant, m in variants.items():
        score = scores[variant]
        score, numpy_score = score if isinstance(score, tuple) else (score, None)
        rows.append(Row(model_name, variant, Q.model_nbytes(m), sparse_nbytes(m),
                        weight_sparsity(m), score, numpy_score, times.get(variant), size))
    return rows


# ----------------------------------------------------------------------------- the CNN

@dataclass
class CNNData:
    """What the CNN's rows need: ``prepare`` (the training standardisation), the split, and
    the training images and labels used for calibration and fine-tuning."""
    split: object
    prepare: object

    @property
    def test_inputs(self) -> np.ndarray:
        return self.prepare(self.split.X_test)

    def calibration(self, batches: int, size: int = 100) -> list:
        X = self.prepare(self.split.X_train[:batches * size])
        return [X[i:i + size] for i in range(0, len(X), size)]


def cnn_accuracy(model, data: CNNData) -> float:
    """Held-out (test split) accuracy of ``model``, in eval mode."""
    model.eval()
    with tt.no_grad():
        logits = model(tt.Tensor(data.test_inputs)).data
    return float((logits.argmax(axis=1) == data.split.y_test).mean())


def majority_rate(y: np.ndarray) -> float:
    """Accuracy of always answering the most frequent class of ``y``: the chance level a
    model of constant outputs (an all-zero model) reaches, at best."""
    return float(np.bincount(y).max() / len(y))


def prunable(model) -> list:
    """``(module, "weight")`` of every Linear and Conv2d of a Sequential CNN, or of the
    transformer blocks of a GPT (its token embedding is tied to ``lm_head`` and is kept)."""
    root = model.transformer.h if isinstance(model, tt.GPT) else [model]
    return [(m, "weight") for block in root for m in block.modules()
            if isinstance(m, (tt.Linear, tt.Conv2d))]


def prune_and_finetune(model, amount: float, finetune) -> tuple:
    """A pruned copy of ``model``: ``amount`` of the weights of :func:`prunable` removed by
    global magnitude, then ``finetune(copy)`` trains it with the masks in place, then the
    pruning is made permanent. Returns ``(copy, bytes while the masks were attached)``."""
    pruned = copy.deepcopy(model)
    targets = prunable(pruned)
    prune.global_unstructured(targets, amount=amount)
    with_masks = Q.model_nbytes(pruned)
    finetune(pruned)
    for module, name in targets:
        prune.remove(module, name)
    return pruned, with_masks


def _cnn_finetuner(data: CNNData, epochs: int, lr: float, seed: int):
    def finetune(model):
        if epochs == 0:
            return
        loader = tt.DataLoader(tt.TensorDataset(data.prepare(data.split.X_train),
                                                data.split.y_train),
                               batch_size=32, shuffle=True, seed=seed)
        trainer = tt.Trainer(model, tt.Adam(model.parameters(), lr=lr), tt.CrossEntropyLoss())
        for _ in range(epochs):
            trainer.train_epoch(loader)
    return finetune


def four_variants(model, pruned, calibration) -> dict:
    """The rows of the table by name: the trained model, its int8 copy, its pruned and
    fine-tuned copy, and that one in int8 (both quantized with the same calibration data)."""
    return {"baseline": model,
            "int8": Q.quantize_model(model, calibration),
            "pruned": pruned,
            "int8 + pruned": Q.quantize_model(pruned, calibration)}


def cnn_rows(model, data: CNNData, config: dict, seed: int = 0, latency: bool = True) -> tuple:
    """``(rows, facts)``: the four variants of the trained CNN ``model``, measured.
    ``facts`` holds the bytes of the pruned model while its masks were attached."""
    calibration = data.calibration(config["calibration_batches"])
    pruned, with_masks = prune_and_finetune(
        model, config["cnn_sparsity"],
        _cnn_finetuner(data, config["cnn_finetune_epochs"], config["cnn_finetune_lr"], seed))
    variants = four_variants(model, pruned, calibration)
    scores = {variant: cnn_accuracy(m, data) for variant, m in variants.items()}
    batch = tt.Tensor(data.test_inputs[:config["latency_batch"]])
    rows = _rows("CNN", variants, scores, batch, config, latency)
    return rows, {"pruned bytes with masks": with_masks, "models": variants}


# ----------------------------------------------------------------------------- TinyGPT

@dataclass
class GPTData:
    """The TinyGPT's data: tokenizer, training ids, the scored validation windows and the
    count baselines of Milestone 07 on the same characters."""
    tokenizer: object
    train_ids: np.ndarray
    val_inputs: np.ndarray
    val_targets: np.ndarray
    baselines: dict

    def batches(self, steps: int, batch_size: int, block_size: int, seed: int):
        return _gpt_milestone().WindowBatches(self.train_ids, steps, batch_size, block_size,
                                              seed)


def gpt_loss(model, data: GPTData, loss_fn=None, batch_size: int = 64) -> tuple:
    """``(loss, numpy loss)`` of ``model`` on the validation windows, nats per character:
    ``loss_fn`` (default ``CrossEntropyLoss(reduction="sum")``) summed over the batches, and
    the same logits scored with a float64 numpy log-softmax (the check of the first)."""
    m07 = _gpt_milestone()
    loss_fn = loss_fn or tt.CrossEntropyLoss(reduction="sum")
    total, numpy_total = 0.0, 0.0
    for start, logits in m07.logits_in_batches(model, data.val_inputs, batch_size):
        y = data.val_targets[start:start + batch_size]
        total += float(loss_fn(tt.Tensor(logits), tt.Tensor(y)).item())
        z = logits.astype(np.float64)
        z -= z.max(axis=-1, keepdims=True)
        log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        numpy_total -= float(np.take_along_axis(log_probs, y[..., None], axis=-1).sum())
    return total / data.val_targets.size, numpy_total / data.val_targets.size


def _gpt_finetuner(data: GPTData, steps: int, lr: float, seed: int):
    def finetune(model):
        if steps == 0:
            return
        optimizer = tt.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
        trainer = tt.Trainer(model, optimizer, tt.CrossEntropyLoss(), grad_clip_norm=1.0)
        trainer.train_epoch(data.batches(steps, 32, model.block_size, seed + 20_000))
    return finetune


def gpt_rows(model, data: GPTData, config: dict, seed: int = 0, latency: bool = True,
             loss_fn=None) -> tuple:
    """``(rows, facts)``: the four variants of the trained TinyGPT ``model``, measured.
    ``loss_fn`` replaces the validation loss (for the tests: a broken one must fail)."""
    block = model.block_size
    calibration = list(data.batches(config["calibration_batches"], 32, block, seed + 30_000))
    pruned, with_masks = prune_and_finetune(
        model, config["gpt_sparsity"],
        _gpt_finetuner(data, config["gpt_finetune_steps"], config["gpt_finetune_lr"], seed))
    variants = four_variants(model, pruned, calibration)
    scores = {variant: gpt_loss(m, data, loss_fn) for variant, m in variants.items()}
    batch = data.val_inputs[:config["gpt_latency_batch"]]
    rows = _rows("TinyGPT", variants, scores, batch, config, latency)
    return rows, {"pruned bytes with masks": with_masks, "models": variants}


def generation(model, data: GPTData, config: dict, seed: int = 0) -> dict:
    """Greedy generation (``top_k=1``) of ``gen_tokens`` tokens after the first
    ``gen_prompt`` characters of a validation window, without and with the key/value cache:
    timed in interleaved rounds (median of ``gen_repeats`` after one warm-up), the
    time per generated token, and whether the two gave the same tokens. Both draw from a
    generator seeded with ``seed``: greedy decoding picks at random among tied logits (a
    model of zeros ties them all), and the two must see the same draws."""
    prompt = data.val_inputs[0, :config["gen_prompt"]]
    n = config["gen_tokens"]
    runs = {label: (lambda c=cache: model.generate(prompt, n, top_k=1, generator=seed,
                                                    use_cache=c))
            for label, cache in (("uncached", False), ("cached", True))}
    out = interleaved_latency(runs, 1, config["gen_repeats"])
    for label, run in runs.items():
        out[f"{label} tokens"] = run().data
    out["same tokens"] = bool(np.array_equal(out["uncached tokens"], out["cached tokens"]))
    out["uncached ms/token"] = 1e3 * out["uncached"].median / n
    out["cached ms/token"] = 1e3 * out["cached"].median / n
    out["speed-up"] = out["uncached"].median / out["cached"].median
    out["text"] = data.tokenizer.decode(out["cached tokens"].tolist())
    return out


# ----------------------------------------------------------------------------- the gates

def tolerance_checks(rows: list) -> list:
    """``(description, passed)`` for each optimised row against its model's baseline."""
    checks = []
    base = {row.model: row for row in rows if row.variant == "baseline"}
    for row in rows:
        if row.variant == "baseline":
            continue
        b = base[row.model]
        if row.model == "CNN":
            floor = b.score - ACCURACY_TOLERANCE
            checks.append((f"CNN {row.variant}: test accuracy {row.score:.2%} >= baseline "
                           f"{b.score:.2%} - {100 * ACCURACY_TOLERANCE:.0f} points",
                           bool(row.score >= floor - 1e-12)))
        else:
            ceiling = b.score * (1 + LOSS_TOLERANCE)
            checks.append((f"TinyGPT {row.variant}: validation loss {row.score:.4f} <= "
                           f"baseline {b.score:.4f} x {1 + LOSS_TOLERANCE:.2f} = {ceiling:.4f}",
                           bool(row.score <= ceiling)))
    return checks


def cnn_baseline_checks(row: Row, chance: float, target: float) -> list:
    return [(f"CNN baseline: test accuracy {row.score:.2%} >= majority-class rate "
             f"{chance:.2%} + {100 * CHANCE_MARGIN:.0f} points",
             bool(row.score >= chance + CHANCE_MARGIN)),
            (f"CNN baseline: test accuracy {row.score:.2%} >= target {target:.0%}",
             bool(row.score >= target))]


def gpt_baseline_checks(row: Row, baselines: dict, target: float,
                        bigram_margin: float = 0.0) -> list:
    unigram, bigram = baselines["unigram"], baselines["bigram"]
    beats_bigram = (row.score <= bigram - bigram_margin if bigram_margin
                    else row.score < bigram)
    return [(f"TinyGPT baseline: validation loss {row.score:.4f} <= unigram {unigram:.4f} - "
             f"{UNIGRAM_MARGIN}", bool(row.score <= unigram - UNIGRAM_MARGIN)),
            (f"TinyGPT baseline: validation loss {row.score:.4f} "
             f"{'<= ' if bigram_margin else '< '}bigram {bigram:.4f}"
             + (f" - {bigram_margin}" if bigram_margin else ""), bool(beats_bigram)),
            (f"TinyGPT baseline: validation loss {row.score:.4f} <= target {target:.2f}",
             bool(row.score <= target))]


def numpy_checks(rows: list) -> list:
    gpt = [row for row in rows if row.numpy_score is not None]
    worst = max((abs(row.score - row.numpy_score) for row in gpt), default=0.0)
    return [(f"TinyGPT losses recomputed with numpy: largest |diff| {worst:.1e} <= "
             f"{NUMPY_TOLERANCE:.0e}", bool(worst <= NUMPY_TOLERANCE))] if gpt else []


@dataclass
class MLPerfResult:
    """One run: the rows of both models, the trivial baselines, generation timings, the
    preset's config, the trained models (``cnn``, ``gpt``: the milestones' results) and how
    long it took."""
    preset: str
    config: dict
    rows: list
    chance: float
    gpt_baselines: dict
    generation: dict
    seconds: float
    cnn: object = None
    gpt: object = None
    facts: dict = field(default_factory=dict)

    def row(self, model: str, variant: str) -> Row:
        return next(r for r in self.rows if r.model == model and r.variant == variant)

    def checks(self) -> list:
        """``(description, passed)`` of every gate."""
        cfg = self.config
        return [*cnn_baseline_checks(self.row("CNN", "baseline"), self.chance, cfg["cnn_target"]),
                *gpt_baseline_checks(self.row("TinyGPT", "baseline"), self.gpt_baselines,
                                     cfg["gpt_target"], cfg["bigram_margin"]),
                *tolerance_checks(self.rows),
                *numpy_checks(self.rows),
                (f"generation: cached and uncached greedy tokens identical "
                 f"({self.config['gen_tokens']} tokens)", self.generation["same tokens"])]

    def passed(self) -> bool:
        return all(ok for _, ok in self.checks())

    def table(self) -> list:
        """One dict per row, for printing or a DataFrame."""
        base = {r.model: r for r in self.rows if r.variant == "baseline"}
        return [{"model": r.model, "variant": r.variant, "bytes": r.nbytes,
                 "x smaller": base[r.model].nbytes / r.nbytes,
                 "bytes stored sparse": r.sparse_nbytes,
                 "x smaller sparse": base[r.model].nbytes / r.sparse_nbytes,
                 "weight sparsity": r.sparsity,
                 "metric": "test accuracy" if r.model == "CNN" else "val loss (nats/char)",
                 "score": r.score, "latency ms": r.latency_ms,
                 "latency IQR ms": math.nan if r.latency is None else 1e3 * r.latency.iqr,
                 "latency x baseline": r.latency_ms / base[r.model].latency_ms}
                for r in self.rows]


# ----------------------------------------------------------------------------- the run

def train_models(quick: bool = True, seed: int = 0, verbose: bool = False,
                 config: dict | None = None) -> tuple:
    """``(cnn result, TinyGPT result)`` of Milestones 04 and 07 with the preset's settings
    (or ``config``'s).

    The full preset reuses Milestone 07's default checkpoint when it holds a full run
    (finished, or interrupted: it is resumed), and otherwise trains one and writes it there."""
    config = config or PRESETS["quick" if quick else "full"]
    cnn = _cnn_milestone().train_cnn(config["cnn_dataset"], config["cnn_epochs"], quick=False,
                                     seed=seed, verbose=verbose)
    m07 = _gpt_milestone()
    checkpoint, resume = None, False
    if not quick:
        checkpoint = m07.default_checkpoint()
        resume = _is_full_run(checkpoint, m07)
    gpt = m07.train_tinygpt(config["gpt_preset"], config["gpt_steps"], seed, verbose=verbose,
                            checkpoint=checkpoint, resume=resume,
                            val_windows=config["gpt_val_windows"], sample_length=20)
    return cnn, gpt


def _is_full_run(checkpoint: Path, m07) -> bool:
    """Whether ``checkpoint`` exists and was written by Milestone 07's full run (its
    schedule spans the full preset's chunks)."""
    if not checkpoint.exists():
        return False
    try:
        state = tt.training.checkpoint.load_checkpoint(checkpoint)
        total = state["trainer"]["scheduler"]["state"]["total"]
    except (OSError, KeyError, TypeError, ValueError):
        return False
    full = m07.PRESETS["full"]
    return total == max(full["warmup_chunks"] + 1, math.ceil(full["steps"] / full["chunk_steps"]))


def gpt_data(gpt) -> GPTData:
    """The GPTData of a Milestone 07 result: the same validation windows it was scored on."""
    m07 = _gpt_milestone()
    tokenizer, train_ids, val_ids = m07.encode_split(gpt.split)
    inputs, targets = m07.consecutive_windows(val_ids, gpt.model.block_size,
                                              gpt.config["val_windows"], 0)
    return GPTData(tokenizer, train_ids, inputs, targets, gpt.baselines)


@contextlib.contextmanager
def _one_blas_thread():
    """BLAS on one thread while the block runs (as the chapters time it): on a shared
    machine, threads of one matrix product wait for each other and blur the timings."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:     # not installed: leave numpy's threads alone
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def run_mlperf(quick: bool = True, seed: int = 0, verbose: bool = False,
               models: tuple | None = None, overrides: dict | None = None) -> MLPerfResult:
    """Train (or take ``models = (cnn result, TinyGPT result)``, results of Milestones 04
    and 07), optimise and measure both models with ``PRESETS["quick" if quick else "full"]``,
    updated with ``overrides``; the result's ``checks()`` are the gates, ``passed()``
    whether all hold."""
    preset = "quick" if quick else "full"
    config = {**PRESETS[preset], **(overrides or {})}
    unknown = set(overrides or {}) - set(PRESETS[preset])
    if unknown:
        raise ValueError(f"run_mlperf: unknown settings {sorted(unknown)}; the preset has "
                         f"{sorted(PRESETS[preset])}")

    stages = {}

    def stage(name, function, *args, **kwargs):
        value, stages[name] = timed(function, *args, **kwargs)
        return value

    def run():
        cnn, gpt = (models if models is not None
                    else stage("training", train_models, quick, seed, verbose, config))
        data = CNNData(cnn.split, cnn.prepare)
        c_rows, c_facts = stage("CNN rows", cnn_rows, cnn.model, data, config, seed)
        g_data = gpt_data(gpt)
        g_rows, g_facts = stage("TinyGPT rows", gpt_rows, gpt.model, g_data, config, seed)
        gen = stage("generation", generation, gpt.model, g_data, config, seed)
        return cnn, gpt, c_rows + g_rows, g_data, {"CNN": c_facts, "TinyGPT": g_facts}, gen

    with _one_blas_thread():
        (cnn, gpt, rows, g_data, facts, gen), seconds = timed(run)
    facts["seconds"] = stages
    return MLPerfResult(preset, config, rows, majority_rate(cnn.split.y_test), g_data.baselines,
                        gen, seconds, cnn=cnn, gpt=gpt, facts=facts)


# ----------------------------------------------------------------------------- summary

def summary(result: MLPerfResult) -> str:
    """The results table and the generation timings, as text."""
    lines = [f"{NAME} ({result.preset} run, {result.seconds:.0f} s)",
             f"  {'model':<8} {'variant':<14} {'bytes':>9} {'x':>5} {'sparse':>9} {'x':>5} "
             f"{'zeros':>6} {'score':>8} {'ms':>8} {'x base':>6}"]
    for r in result.table():
        score = (f"{r['score']:.2%}" if r["model"] == "CNN" else f"{r['score']:.4f}")
        lines.append(f"  {r['model']:<8} {r['variant']:<14} {r['bytes']:>9,} "
                     f"{r['x smaller']:>5.2f} {r['bytes stored sparse']:>9,} "
                     f"{r['x smaller sparse']:>5.2f} {r['weight sparsity']:>6.1%} {score:>8} "
                     f"{r['latency ms']:>8.2f} {r['latency x baseline']:>6.2f}")
    cnn_base = result.row("CNN", "baseline")
    lines += [f"  CNN: test accuracy on {len(result.cnn.split.y_test):,} "
              f"{result.config['cnn_dataset']} images; latency of {cnn_base.latency_inputs} "
              f"images; majority-class rate {result.chance:.2%}",
              f"  TinyGPT: validation loss (nats/char) on "
              f"{result.gpt.val_tokens:,} "
              f"characters; latency of {result.config['gpt_latency_batch']} windows of "
              f"{result.gpt.model.block_size}; baselines "
              + ", ".join(f"{k} {v:.4f}" for k, v in result.gpt_baselines.items())]
    g = result.generation
    lines.append(f"  generation ({result.config['gen_tokens']} greedy tokens): uncached "
                 f"{g['uncached ms/token']:.2f} ms/token, cached {g['cached ms/token']:.2f} "
                 f"ms/token, speed-up {g['speed-up']:.2f}x, same tokens: {g['same tokens']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = milestone_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    if args.epochs is not None:
        parser.error("MLPerf takes its training settings from PRESETS: no --epochs")
    result = run_mlperf(quick=args.quick, seed=args.seed, verbose=True)
    print("=" * 72)
    print(summary(result))
    return report([], result.checks())


if __name__ == "__main__":
    sys.exit(main())
