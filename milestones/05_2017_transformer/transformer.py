"""Milestone 05 · The Transformer (Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser &
Polosukhin, 2017): attention is all you need, proven small.

A small transformer encoder reads a sequence of 8 to 12 symbols (a vocabulary of 10, shown as
the digits 0-9) and writes a transformed sequence of the same length, every output position
at once::

    ids (B, 12), padded with PAD
      -> Embedding(symbol) + Embedding(position)     what and where
      -> TransformerBlock x n_layer                  attention over the real tokens only
      -> LayerNorm -> Linear                         logits (B, 12, 10): the output symbol
                                                     at every position

Three generated tasks, the same input sequences for all three:

- ``copy``:    3 1 4 1 5 9 2 6  ->  3 1 4 1 5 9 2 6
- ``reverse``: 3 1 4 1 5 9 2 6  ->  6 2 9 5 1 4 1 3
- ``sort``:    3 1 4 1 5 9 2 6  ->  1 1 2 3 4 5 6 9

Variable lengths are padded to 12 with the id ``PAD``. The attention gets a key-padding mask
(a boolean ``attn_mask``, True on real tokens), so no position ever reads a padding token, and
the targets at padded positions are ``IGNORE`` (-100), which ``CrossEntropyLoss(ignore_index=
-100)`` leaves out of the loss. The model is trained with ``AdamW``, a ``CosineSchedule``,
gradient clipping and the ``Trainer``. The held-out test sequences are distinct from every
training sequence (``check_disjoint`` asserts it).

Score: **exact-sequence accuracy**, the fraction of test sequences whose every output symbol
is right. Targets: at least 99 % on each task. Knock-out: the same model, trained the same
way, with the output of every attention layer zeroed by a forward hook
(``SequenceTransformer(attention=False)``): each position then computes on its own symbol and
position only. It can still copy, but it must fail to reverse: at most 50 % on ``reverse``,
in every epoch. With ``--quick`` (fewer training sequences and epochs): at least 90 % on
each task, the same knock-out bound.

Run from the repository root::

    python milestones/05_2017_transformer/transformer.py                  # all three tasks
    python milestones/05_2017_transformer/transformer.py --task reverse
    python milestones/05_2017_transformer/transformer.py --quick

The exit status is 0 when every target is met, 1 otherwise.
"""
import sys
from dataclasses import dataclass, field
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # milestones/, for common.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import tinytorch as tt  # noqa: E402
from tinytorch.datasets import Split  # noqa: E402

from common import MilestoneResult, milestone_parser, pick_config, report, timed  # noqa: E402

NAME = "Milestone 05 · Transformer (2017)"
VOCAB = 10                # symbols 0..9; their input ids are 1..10
PAD = 0                   # the input id of padding
IGNORE = -100             # the target at padded positions (CrossEntropyLoss's ignore_index)
MIN_LEN, MAX_LEN = 8, 12
KNOCKOUT_THRESHOLD = 0.5  # the knocked-out model may not exceed this on reverse

TASKS = {
    "copy": lambda s: list(s),
    "reverse": lambda s: list(s[::-1]),
    "sort": sorted,
}

# One network for every task; how long to train it, per task.
MODEL = dict(n_layer=2, n_head=4, n_embd=64)
CONFIGS = {
    task: dict(n_train=8000, n_test=1000, lr=3e-3, weight_decay=0.01, batch_size=64,
               epochs=epochs, threshold=0.99, quick_n_train=4000, quick_epochs=quick_epochs,
               quick_threshold=0.90)
    for task, epochs, quick_epochs in (("copy", 3, 2), ("reverse", 6, 5), ("sort", 10, 6))
}


# ----------------------------------------------------------------------------- data

def random_sequences(n: int, seed: int) -> list:
    """``n`` distinct sequences (tuples) of MIN_LEN..MAX_LEN symbols in 0..VOCAB-1, seeded."""
    rng = np.random.default_rng(seed)
    seen, sequences = set(), []
    while len(sequences) < n:
        lengths = rng.integers(MIN_LEN, MAX_LEN + 1, n)
        symbols = rng.integers(0, VOCAB, (n, MAX_LEN))
        for length, row in zip(lengths, symbols):
            sequence = tuple(row[:length].tolist())
            if sequence not in seen and len(sequences) < n:
                seen.add(sequence)
                sequences.append(sequence)
    return sequences


def encode(sequences, task: str) -> tuple:
    """``(inputs, targets)``, int64 arrays (N, MAX_LEN): input ids (symbol + 1, then PAD) and
    the task's output symbols (then IGNORE)."""
    transform = TASKS[task]
    inputs = np.full((len(sequences), MAX_LEN), PAD, dtype=np.int64)
    targets = np.full((len(sequences), MAX_LEN), IGNORE, dtype=np.int64)
    for i, sequence in enumerate(sequences):
        inputs[i, :len(sequence)] = np.asarray(sequence) + 1
        targets[i, :len(sequence)] = transform(sequence)
    return inputs, targets


def decode(inputs: np.ndarray) -> list:
    """The symbol sequences (tuples) of padded input ids."""
    return [tuple((row[row != PAD] - 1).tolist()) for row in np.asarray(inputs)]


def make_task(task: str, n_train: int, n_test: int, seed: int = 0) -> Split:
    """The ``Split`` of ``task``: ``n_train`` training and ``n_test`` test sequences, all
    distinct (so no test sequence is ever trained on). Same seed, same sequences, whatever the
    task: the three tasks differ only in their targets."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(TASKS)}")
    sequences = random_sequences(n_train + n_test, seed)
    split = Split(*encode(sequences[:n_train], task), *encode(sequences[n_train:], task))
    check_disjoint(split)
    return split


def check_disjoint(split: Split) -> None:
    """Raise AssertionError if a test sequence also appears among the training sequences."""
    shared = set(decode(split.X_train)) & set(decode(split.X_test))
    assert not shared, f"{len(shared)} test sequences are also training sequences, e.g. " \
                       f"{sorted(shared)[0]}"


# ----------------------------------------------------------------------------- the model

def key_padding_mask(ids: np.ndarray) -> np.ndarray:
    """Boolean (B, 1, 1, T): True where key j is a real token. Broadcast over heads and
    queries, so no position attends to padding."""
    return (np.asarray(ids) != PAD)[:, None, None, :]


def _zero_output(module, args, output):
    """Forward hook: replace an attention layer's output by zeros (the knock-out)."""
    return tt.Tensor(np.zeros_like(output.data))


class SequenceTransformer(tt.Module):
    """Encoder-style transformer: ids (B, T), T <= max_len, PAD = 0 -> logits (B, T, vocab).

    ``tok_emb`` (vocab + 1 ids: PAD and the symbols) plus ``pos_emb`` (learned positions),
    ``n_layer`` pre-norm ``TransformerBlock`` s without a causal mask (every position sees the
    whole sequence, except padding), ``ln_f`` and a ``head`` Linear(n_embd, vocab).

    ``attention=False`` is the knock-out: a forward hook on every block's ``attn`` replaces
    its output by zeros, so the residual stream of each position only ever holds its own
    symbol and position. The parameters are the same (the attention's receive no gradient).
    """

    def __init__(self, vocab_size: int = VOCAB, max_len: int = MAX_LEN, n_layer: int = 2,
                 n_head: int = 4, n_embd: int = 64, attention: bool = True):
        super().__init__()
        self.tok_emb = tt.Embedding(vocab_size + 1, n_embd)
        self.pos_emb = tt.Embedding(max_len, n_embd)
        self.blocks = [tt.TransformerBlock(n_embd, n_head) for _ in range(n_layer)]
        self.ln_f = tt.LayerNorm(n_embd)
        self.head = tt.Linear(n_embd, vocab_size)
        self.attention = bool(attention)
        self.hooks = [] if attention else [block.attn.register_forward_hook(_zero_output)
                                           for block in self.blocks]

    def forward(self, ids) -> tt.Tensor:
        ids = np.asarray(ids.data if isinstance(ids, tt.Tensor) else ids)
        mask = key_padding_mask(ids)
        x = self.tok_emb(ids) + self.pos_emb(np.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x, attn_mask=mask)
        return self.head(self.ln_f(x))

    def extra_repr(self) -> str:
        return (f"vocab={self.head.out_features}, n_layer={len(self.blocks)}, "
                f"n_embd={self.head.in_features}, attention={self.attention}")


def predict(model, inputs: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """The predicted output symbol at every position (N, T), in eval mode, without a graph."""
    was_training = model.training
    model.eval()
    try:
        with tt.no_grad():
            return np.concatenate([model(inputs[i:i + batch_size]).data.argmax(axis=-1)
                                   for i in range(0, len(inputs), batch_size)])
    finally:
        model.train(was_training)


def exact_sequence_accuracy(model, inputs: np.ndarray, targets: np.ndarray) -> float:
    """Fraction of sequences whose every (non-padded) output symbol is right."""
    right = (predict(model, inputs) == targets) | (targets == IGNORE)
    return float(right.all(axis=1).mean())


def attention_maps(model: SequenceTransformer, inputs: np.ndarray) -> np.ndarray:
    """Attention weights of every layer and head for ``inputs``: (n_layer, N, H, T, T), where
    ``[l, n, h, i, j]`` is how much query position i of sequence n attends to key j.

    The fused attention op never materialises its weights for the graph, so a forward hook
    records each block's attention input, and the weights are recomputed from it with the
    layer's own projection and ``tt.attention_weights`` (same mask, same scale).
    """
    inputs = np.asarray(inputs)
    mask = key_padding_mask(inputs)
    recorded = []
    handles = [block.attn.register_forward_hook(
        lambda module, args, output: recorded.append(args[0].data)) for block in model.blocks]
    was_training = model.training
    model.eval()
    try:
        with tt.no_grad():
            model(inputs)
            maps = []
            for block, x in zip(model.blocks, recorded):
                q, k, _ = block.attn._split_heads(block.attn.c_attn(tt.Tensor(x)))
                maps.append(tt.attention_weights(q, k, attn_mask=mask).data)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return np.stack(maps)


# ----------------------------------------------------------------------------- training

@dataclass
class SequenceResult(MilestoneResult):
    """A MilestoneResult whose score is exact-sequence accuracy; ``attention`` holds the
    attention maps of the first ``len(attention_inputs)`` test sequences after training."""
    task: str = ""
    attention_inputs: np.ndarray = field(default_factory=lambda: np.zeros((0, MAX_LEN)))
    attention: np.ndarray = field(default_factory=lambda: np.zeros((0,)))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return predict(self.model, np.asarray(X))

    def outputs(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError("use predict(): the model takes ids, not float features")


def _fit(trainer, split: Split, config: dict, epochs: int, seed: int, desc: str,
         verbose: bool) -> None:
    """``epochs`` Trainer epochs; after each, the token loss and the exact-sequence accuracy
    of the test split (and of the first 1,000 training sequences) go into the history."""
    from tqdm.auto import tqdm
    loader = tt.DataLoader(tt.TensorDataset(split.X_train, split.y_train),
                           batch_size=config["batch_size"], shuffle=True, seed=seed)
    test_loader = tt.DataLoader(tt.TensorDataset(split.X_test, split.y_test), batch_size=1000)
    history, model = trainer.history, trainer.model
    with tqdm(total=epochs, desc=desc, unit="epoch", disable=not verbose) as bar:
        for _ in range(epochs):
            loss = trainer.train_epoch(loader)
            history["train_accuracy"][-1] = exact_sequence_accuracy(
                model, split.X_train[:1000], split.y_train[:1000])
            history["eval_loss"].append(trainer.evaluate(test_loader)[0])
            history["eval_accuracy"].append(
                exact_sequence_accuracy(model, split.X_test, split.y_test))
            bar.set_postfix(loss=f"{loss:.4f}", test_exact=f"{history['eval_accuracy'][-1]:.3f}")
            bar.update(1)


def train_transformer(task: str = "reverse", epochs: int | None = None, quick: bool = False,
                      seed: int = 0, verbose: bool = True, attention: bool = True,
                      n_examples: int = 4) -> SequenceResult:
    """Train a ``SequenceTransformer`` (``MODEL``) on ``task`` with ``CONFIGS[task]``.

    ``attention=False`` trains the knocked-out model the same way (same data, seed, schedule);
    its target is to *fail* on reverse (no epoch above ``KNOCKOUT_THRESHOLD``), and it is
    report-only on the other tasks. ``quick`` uses fewer training sequences and epochs (and
    the quick target). ``seed`` fixes the sequences, the initial weights and the batch order.
    ``n_examples``: how many test sequences the result keeps attention maps of.
    """
    config, epochs = pick_config(CONFIGS, task, epochs, quick)
    split = make_task(task, config["quick_n_train" if quick else "n_train"], config["n_test"],
                      seed)
    tt.manual_seed(seed)
    model = SequenceTransformer(VOCAB, MAX_LEN, attention=attention, **MODEL)
    lr = config["lr"]
    optimizer = tt.AdamW(model.parameters(), lr=lr, weight_decay=config["weight_decay"])
    schedule = tt.CosineSchedule(max_lr=lr, min_lr=lr / 20, total_epochs=epochs)
    trainer = tt.Trainer(model, optimizer, tt.CrossEntropyLoss(ignore_index=IGNORE),
                         scheduler=schedule, grad_clip_norm=1.0)
    desc = f"training {task}" + ("" if attention else " (attention knocked out)")
    _, seconds = timed(_fit, trainer, split, config, epochs, seed, desc, verbose)

    if attention:
        threshold, at_most = config["quick_threshold" if quick else "threshold"], False
    else:
        threshold, at_most = (KNOCKOUT_THRESHOLD, True) if task == "reverse" else (None, False)
    examples = split.X_test[:n_examples]
    label = "" if attention else ", attention knocked out"
    return SequenceResult(
        name=f"{NAME}: {task}{label}", dataset=task, model=model, history=trainer.history,
        test_accuracy=trainer.history["eval_accuracy"][-1], threshold=threshold, epochs=epochs,
        seconds=seconds, split=split, trainer=trainer, seed=seed, at_most=at_most,
        metric="exact-sequence test accuracy", task=task, attention_inputs=examples,
        attention=attention_maps(model, examples))


def run_milestone(tasks=tuple(TASKS), quick: bool = False, seed: int = 0, verbose: bool = True,
                  knock_out=tuple(TASKS), epochs: int | None = None) -> dict:
    """Train the transformer on every task of ``tasks`` and, on every task of ``knock_out``,
    the knocked-out model. Returns ``{"attention": {task: SequenceResult}, "knocked_out":
    {task: SequenceResult}}``; each result holds the model, its learning curves, its
    exact-sequence accuracy and the attention maps of a few test sequences."""
    runs = {"attention": {}, "knocked_out": {}}
    for task in tasks:
        runs["attention"][task] = train_transformer(task, epochs, quick, seed, verbose)
    for task in knock_out:
        runs["knocked_out"][task] = train_transformer(task, epochs, quick, seed, verbose,
                                                      attention=False)
    return runs


def summary_table(runs: dict) -> str:
    """Exact-sequence accuracy per task, with attention and knocked out, against the targets."""
    def cell(result):
        if result is None:
            return "-"
        target = ("" if result.threshold is None else
                  f" ({'<=' if result.at_most else '>='} {100 * result.threshold:.0f} %)")
        return f"{100 * result.test_accuracy:6.2f} %{target}"

    tasks = list(dict.fromkeys([*runs["attention"], *runs["knocked_out"]]))
    lines = [f"{'task':<9}{'with attention':<26}{'attention knocked out':<26}seconds",
             "-" * 72]
    for task in tasks:
        with_attention, without = runs["attention"].get(task), runs["knocked_out"].get(task)
        seconds = sum(r.seconds for r in (with_attention, without) if r is not None)
        lines.append(f"{task:<9}{cell(with_attention):<26}{cell(without):<26}{seconds:.1f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = milestone_parser(__doc__.splitlines()[0])
    parser.add_argument("--task", choices=list(TASKS), default=None,
                        help="train on one task only (default: all three)")
    args = parser.parse_args(argv)
    tasks = (args.task,) if args.task else tuple(TASKS)
    runs, seconds = timed(run_milestone, tasks, args.quick, args.seed, True, tasks, args.epochs)
    results = [*runs["attention"].values(), *runs["knocked_out"].values()]
    status = report(results)
    print(summary_table(runs))
    print(f"total training time: {seconds:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
