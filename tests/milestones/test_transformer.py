"""Milestone 05 Transformer: attention solves copy, reverse and sort on held-out sequences;
without it, reversal fails.

The targets of the full run (>= 99 % exact-sequence accuracy on each task) are the script's
and the book page's; these tests run the quick mode (fewer training sequences and epochs),
whose target is ``CONFIGS[task]["quick_threshold"]`` (90 %), and the knock-out, which must
stay at or below 50 % on reverse in every epoch.
"""
import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinytorch as tt
from tinytorch.datasets import Split
from tinytorch.notebook import load_milestone

ROOT = Path(__file__).resolve().parents[2]
transformer = load_milestone("05_2017_transformer")
common = sys.modules["common"]


@pytest.fixture(scope="module")
def quick_runs():
    return transformer.run_milestone(quick=True, verbose=False, knock_out=("reverse",))


# ----------------------------------------------------------------------------- the targets

@pytest.mark.parametrize("task", list(transformer.TASKS))
def test_quick_run_reaches_its_exact_sequence_target_on_each_task(quick_runs, task):
    result = quick_runs["attention"][task]
    assert result.test_accuracy >= transformer.CONFIGS[task]["quick_threshold"], \
        result.history["eval_accuracy"]
    assert result.passed and result.metric == "exact-sequence test accuracy"


def test_knocked_out_model_stays_below_half_on_reverse_in_every_epoch(quick_runs):
    result = quick_runs["knocked_out"]["reverse"]
    assert max(result.history["eval_accuracy"]) <= transformer.KNOCKOUT_THRESHOLD == 0.5
    assert result.at_most and result.passed
    assert not result.model.attention


def test_the_gates_can_fail(quick_runs):
    """The knocked-out model misses the real target; the real model breaks the knock-out
    bound: each gate rejects the other model, so neither check is vacuous."""
    real, knocked_out = quick_runs["attention"]["reverse"], quick_runs["knocked_out"]["reverse"]
    as_real = dataclasses.replace(knocked_out, threshold=real.threshold, at_most=False)
    as_knocked_out = dataclasses.replace(real, threshold=knocked_out.threshold, at_most=True)
    assert not as_real.passed and not as_knocked_out.passed
    assert common.report([as_real]) == 1


def test_exact_sequence_accuracy_needs_every_symbol_right():
    tt.manual_seed(0)
    model = transformer.SequenceTransformer()
    split = transformer.make_task("copy", 10, 20)
    predicted = transformer.predict(model, split.X_test)
    targets = predicted.copy()
    targets[split.X_test == transformer.PAD] = transformer.IGNORE
    assert transformer.exact_sequence_accuracy(model, split.X_test, targets) == 1.0
    targets[::2, 3] = (targets[::2, 3] + 1) % transformer.VOCAB  # one symbol wrong in half
    assert transformer.exact_sequence_accuracy(model, split.X_test, targets) == 0.5


# ----------------------------------------------------------------------------- the data

def test_test_sequences_are_never_training_sequences():
    split = transformer.make_task("reverse", 4000, 1000)
    train, test = set(transformer.decode(split.X_train)), set(transformer.decode(split.X_test))
    assert len(train) == 4000 and len(test) == 1000 and not train & test


def test_check_disjoint_catches_a_leaked_test_sequence():
    split = transformer.make_task("copy", 50, 10)
    leaky = Split(split.X_train, split.y_train, np.concatenate([split.X_test, split.X_train[:1]]),
                  np.concatenate([split.y_test, split.y_train[:1]]))
    with pytest.raises(AssertionError, match="also training sequences"):
        transformer.check_disjoint(leaky)


@pytest.mark.parametrize("task, rule", [("copy", list), ("reverse", lambda s: s[::-1]),
                                        ("sort", sorted)])
def test_targets_are_the_transformed_sequence_then_ignored_padding(task, rule):
    split = transformer.make_task(task, 100, 10)
    for ids, target in zip(split.X_train, split.y_train):
        length = int(np.sum(ids != transformer.PAD))
        sequence = (ids[:length] - 1).tolist()
        assert transformer.MIN_LEN <= length <= transformer.MAX_LEN
        assert np.all(ids[length:] == transformer.PAD)
        assert target[:length].tolist() == list(rule(sequence))
        assert np.all(target[length:] == transformer.IGNORE)


def test_same_seed_same_sequences_for_every_task():
    copy, sort = transformer.make_task("copy", 30, 5, seed=3), transformer.make_task("sort", 30, 5,
                                                                                     seed=3)
    np.testing.assert_array_equal(copy.X_train, sort.X_train)
    assert not np.array_equal(copy.X_train, transformer.make_task("copy", 30, 5, seed=4).X_train)


# ----------------------------------------------------------------------------- the model

def test_padding_is_invisible_to_the_real_positions():
    tt.manual_seed(0)
    model = transformer.SequenceTransformer()
    split = transformer.make_task("copy", 200, 1)
    ids = split.X_train[np.sum(split.X_train != transformer.PAD, axis=1) == 8][:1]
    with tt.no_grad():
        padded, unpadded = model(ids).data[:, :8], model(ids[:, :8]).data
    np.testing.assert_allclose(padded, unpadded, atol=1e-5)


@pytest.mark.parametrize("attention", [True, False])
def test_only_attention_lets_a_position_see_the_others(attention):
    tt.manual_seed(0)
    model = transformer.SequenceTransformer(attention=attention)
    ids = transformer.make_task("copy", 4, 1).X_train
    changed = ids.copy()
    changed[:, 0] = changed[:, 0] % transformer.VOCAB + 1  # another symbol at position 0
    with tt.no_grad():
        difference = np.abs(model(changed).data - model(ids).data).max(axis=(0, 2))
    assert difference[0] > 0
    if attention:
        assert np.all(difference[1:8] > 0)
    else:
        assert np.all(difference[1:] == 0)


def test_knock_out_keeps_the_parameters_but_gives_attention_no_gradient():
    tt.manual_seed(0)
    real, knocked_out = transformer.SequenceTransformer(), transformer.SequenceTransformer(
        attention=False)
    assert tt.profiling.count_parameters(real) == tt.profiling.count_parameters(knocked_out)
    split = transformer.make_task("reverse", 8, 1)
    loss = tt.CrossEntropyLoss(ignore_index=transformer.IGNORE)(knocked_out(split.X_train),
                                                                 tt.Tensor(split.y_train))
    loss.backward()
    assert knocked_out.blocks[0].attn.c_attn.weight.grad is None
    assert knocked_out.blocks[0].mlp.c_fc.weight.grad is not None


def test_attention_maps_are_distributions_over_the_real_tokens(quick_runs):
    result = quick_runs["attention"]["reverse"]
    maps, ids = result.attention, result.attention_inputs
    assert maps.shape == (transformer.MODEL["n_layer"], len(ids), transformer.MODEL["n_head"],
                          transformer.MAX_LEN, transformer.MAX_LEN)
    np.testing.assert_allclose(maps.sum(axis=-1), 1.0, atol=1e-5)
    padded_keys = (ids == transformer.PAD)[None, :, None, None, :]
    assert np.all(np.where(padded_keys, maps, 0.0) == 0.0)


def test_reversal_attends_along_the_anti_diagonal(quick_runs):
    """In the last layer, output position i of a sequence of length L reads input L-1-i."""
    result = quick_runs["attention"]["reverse"]
    maps, ids = result.attention[-1], result.attention_inputs     # (N, H, T, T)
    weights = []
    for n, row in enumerate(ids):
        length = int(np.sum(row != transformer.PAD))
        i = np.arange(length)
        weights.append(maps[n][:, i, length - 1 - i].mean(axis=-1))  # per head
    assert np.max(np.mean(weights, axis=0)) > 0.5


# ----------------------------------------------------------------------------- the script

def test_script_runs_quick_on_one_task_and_prints_the_table():
    run = subprocess.run([sys.executable, "milestones/05_2017_transformer/transformer.py",
                          "--quick", "--task", "copy", "--epochs", "1"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "RESULT: PASS" in run.stdout and "exact-sequence test accuracy" in run.stdout
    assert "attention knocked out" in run.stdout and "total training time" in run.stdout
    assert "training copy" in run.stderr  # the progress bar
