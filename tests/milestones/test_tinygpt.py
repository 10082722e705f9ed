"""Milestone 07 TinyGPT: a character GPT beats the count baselines on plays it never saw.

The full run's target (validation loss <= 1.90 nats per character, 0.5 below the bigram
baseline) is the script's; the book page asserts its own (<= 2.1). These tests run the quick
mode (<= 2.3 and below the bigram baseline), the honesty checks (the loss recomputed with
numpy, the causality probe, the split by play), the baselines, an exact resume from a
checkpoint, and models sabotaged so that the checks must fail.
"""
import dataclasses
import math

import numpy as np
import pytest

import tinytorch as tt
from tinytorch.notebook import load_milestone

tinygpt = load_milestone("07_2020_tinygpt")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    checkpoint = tmp_path_factory.mktemp("tinygpt") / "quick.npz"
    return tinygpt.train_tinygpt(quick=True, verbose=False, checkpoint=checkpoint)


@pytest.fixture(scope="module")
def val_windows(quick):
    _, _, val_ids = tinygpt.encode_split(quick.split)
    return tinygpt.consecutive_windows(val_ids, quick.model.block_size, 128)


def knocked_out(model):
    """The trained model with every attention layer's output zeroed by a forward hook."""
    return [block.attn.register_forward_hook(
        lambda module, args, output: tt.Tensor(np.zeros_like(output.data)))
        for block in model.transformer.h]


# ----------------------------------------------------------------------------- the targets

def test_quick_run_reaches_2_3_nats_and_beats_the_bigram_baseline(quick):
    assert quick.val_loss <= 2.3 and quick.val_loss < quick.baselines["bigram"], (
        quick.val_loss, quick.baselines)
    assert quick.passed, quick.checks()
    assert quick.val_tokens == 1024 * 64


def test_every_check_of_the_quick_run_passes(quick):
    checks = quick.checks()
    assert len(checks) == 5 and all(ok for _, ok in checks), checks


def test_checkpoint_is_written_and_samples_can_be_drawn_from_it(quick):
    model = tinygpt.load_trained(quick.checkpoint, quick.tokenizer.vocab_size)
    for name, value in quick.model.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[name], value)
    text = tinygpt.samples(model, quick.tokenizer, ((0.8, 5),), length=30)[(0.8, 5)]
    assert len(text) == 30


def test_samples_at_every_setting(quick):
    assert set(quick.samples) == set(tinygpt.SAMPLE_SETTINGS)
    assert all(len(text) == 200 for text in quick.samples.values())


# ----------------------------------------------------------------------------- baselines

def test_baselines_are_sane(quick):
    base = quick.baselines
    assert base["uniform"] == pytest.approx(math.log(quick.tokenizer.vocab_size))
    assert quick.tokenizer.vocab_size == len(set(quick.split.train_text))
    assert base["bigram"] < base["unigram"] < base["uniform"]
    assert 2.0 < base["bigram"] < 3.0


def test_baselines_by_hand_on_a_two_letter_text():
    train = np.array([0, 1, 0, 1, 1])      # counts: 0 twice, 1 three times; 0->1 twice, 1->0, 1->1
    previous, target = np.array([[0, 1]]), np.array([[1, 1]])
    base = tinygpt.baselines(train, previous, target, vocab_size=2)
    assert base["uniform"] == pytest.approx(math.log(2))
    assert base["unigram"] == pytest.approx(-math.log((3 + 1) / (5 + 2)))
    p_1_after_0, p_1_after_1 = (2 + 1) / (2 + 2), (1 + 1) / (2 + 2)
    assert base["bigram"] == pytest.approx(-(math.log(p_1_after_0) + math.log(p_1_after_1)) / 2)


# ----------------------------------------------------------------------------- honesty

def test_the_split_is_by_play_and_disjoint(quick):
    split = quick.split
    assert split.val_plays and not set(split.train_plays) & set(split.val_plays)
    assert set(split.train_plays) | set(split.val_plays) == set(tt.datasets.shakespeare_plays())
    tinygpt.check_split(split)


def test_check_split_catches_a_validation_play_in_the_training_text(quick):
    split = quick.split
    play = tt.datasets.shakespeare_plays()[split.val_plays[0]]
    leaky = dataclasses.replace(split, train_text=split.train_text + "\n" + play)
    with pytest.raises(AssertionError, match="is in the training text"):
        tinygpt.check_split(leaky)
    renamed = dataclasses.replace(split, val_plays=split.val_plays + split.train_plays[:1])
    with pytest.raises(AssertionError, match="both"):
        tinygpt.check_split(renamed)
    assert not dataclasses.replace(quick, split=leaky).passed


def test_reported_loss_equals_the_loss_recomputed_from_logits(quick, val_windows):
    assert abs(quick.numpy_val_loss - quick.val_loss) <= 1e-4
    inputs, targets = val_windows
    loss, numpy_loss = tinygpt.validation_losses(quick.model, inputs, targets)
    quick.model.eval()
    with tt.no_grad():
        logits = quick.model(inputs).data.astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    by_hand = -np.take_along_axis(log_probs, targets[..., None], axis=-1).mean()
    assert loss == pytest.approx(by_hand, abs=1e-5) and numpy_loss == pytest.approx(by_hand)


def test_causality_probe_on_the_trained_model(quick):
    leak, later = quick.causality
    assert leak == 0.0 and later > 0.0


class LookingAhead(tt.Module):
    """A sabotaged language model: it reads the sequence backwards, so position t sees the
    tokens after t."""

    def __init__(self, gpt):
        super().__init__()
        self.gpt, self.vocab_size = gpt, gpt.vocab_size

    def forward(self, idx):
        return self.gpt(np.ascontiguousarray(np.asarray(idx)[:, ::-1]))[:, ::-1]


def test_causality_probe_catches_a_model_that_looks_ahead(quick, val_windows):
    inputs, _ = val_windows
    leak, _ = tinygpt.causality_probe(LookingAhead(quick.model), inputs[:4], 32)
    assert leak > 0.0
    assert not dataclasses.replace(quick, causality=(leak, 1.0)).passed


# ----------------------------------------------------------------------------- sabotage

def test_a_model_with_zero_weights_fails_the_targets(quick, val_windows):
    model = tinygpt.build_model(quick.tokenizer.vocab_size)
    for p in model.parameters():
        p.data[...] = 0.0
    inputs, targets = val_windows
    loss, numpy_loss = tinygpt.validation_losses(model, inputs, targets)
    assert loss == pytest.approx(math.log(quick.tokenizer.vocab_size), abs=1e-5)
    sabotaged = dataclasses.replace(quick, model=model, val_loss=loss, numpy_val_loss=numpy_loss)
    failed = [description for description, ok in sabotaged.checks() if not ok]
    assert len(failed) == 2 and not sabotaged.passed, failed  # the threshold and the bigram


def test_knocking_out_attention_in_the_trained_model_fails_the_bigram_check(quick, val_windows):
    inputs, targets = val_windows
    handles = knocked_out(quick.model)
    try:
        loss, numpy_loss = tinygpt.validation_losses(quick.model, inputs, targets)
    finally:
        for handle in handles:
            handle.remove()
    assert loss > quick.baselines["bigram"] > quick.val_loss
    assert not dataclasses.replace(quick, val_loss=loss, numpy_val_loss=numpy_loss).passed


# ----------------------------------------------------------------------------- resume

def test_resume_from_a_checkpoint_continues_identically(tmp_path):
    settings = dict(quick=True, steps=100, verbose=False, val_windows=16, sample_length=10)
    straight = tinygpt.train_tinygpt(checkpoint=tmp_path / "straight.npz", **settings)
    tinygpt.train_tinygpt(checkpoint=tmp_path / "split.npz", stop_after_chunks=1, **settings)
    resumed = tinygpt.train_tinygpt(checkpoint=tmp_path / "split.npz", resume=True, **settings)
    assert resumed.resumed_from_step == 50 and resumed.steps == straight.steps == 100
    for name, value in straight.model.state_dict().items():
        np.testing.assert_array_equal(resumed.model.state_dict()[name], value, err_msg=name)
    np.testing.assert_equal(resumed.history, straight.history)  # NaN accuracies compare equal
    assert resumed.val_loss == straight.val_loss and resumed.samples == straight.samples


def test_window_batches_depend_on_the_chunk_only():
    ids = np.arange(1000)
    batches = tinygpt.WindowBatches(ids, steps=3, batch_size=4, block_size=8, seed=1)
    batches.set_epoch(5)
    first = list(batches)
    batches.set_epoch(6)
    other = list(batches)
    batches.set_epoch(5)
    again = list(batches)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again))
    assert not np.array_equal(first[0][0], other[0][0])
    x, y = first[0]
    assert x.shape == y.shape == (4, 8) and np.array_equal(x[:, 1:], y[:, :-1])


def test_warmup_then_cosine():
    schedule = tinygpt.WarmupCosine(1.0, 0.1, warmup=2, total=10)
    lrs = [schedule.get_lr(e) for e in range(12)]
    assert lrs[:3] == [0.5, 1.0, 1.0]
    assert all(a >= b for a, b in zip(lrs[2:], lrs[3:])) and lrs[10] == lrs[11] == 0.1


# ----------------------------------------------------------------------------- the script

def test_script_fails_an_undertrained_run_and_prints_the_summary(tmp_path, capsys):
    status = tinygpt.main(["--quick", "--steps", "50", "--checkpoint", str(tmp_path / "c.npz")])
    out = capsys.readouterr().out
    assert status == 1 and "RESULT: FAIL" in out  # 100 steps cannot reach 2.3 nats
    assert "bigram" in out and "temperature 0.5" in out and "top_k 10" in out
    assert (tmp_path / "c.npz").exists()
