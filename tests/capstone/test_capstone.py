"""Chapter 20 — the capstone: the submission schema names the field at fault, the scorer
measures bytes, held-out accuracy and latency itself (on its own data, whatever the
submission claims), refuses a checkpoint whose checksum does not match, fails a model of zeros
and budgets it exceeds; the leaderboard ranks a folder and lists the invalid files; the
learner's recipe (prune channels, fine-tune, quantize) meets the budget.

Everything uses the small ``digits-mlp`` task: a base MLP trains in about a second."""
import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytorch as tt
from tinytorch import capstone
from tinytorch.capstone import SubmissionError, score, write_submission
from tinytorch.quantization import model_nbytes, quantize_model

TASK = capstone.get_task("digits-mlp")


def train(model, epochs=8, lr=3e-3, seed=0):
    """Adam on the task's training split (not the recipe's fine_tune: that is the learner's)."""
    X, y = TASK.train()
    optimizer, loss_fn = tt.Adam(model.parameters(), lr=lr), tt.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for start in range(0, len(X), 32):
            batch = order[start:start + 32]
            optimizer.zero_grad()
            loss_fn(model(X[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def base():
    tt.manual_seed(0)
    return train(TASK.build({"hidden": [128]}))


@pytest.fixture(scope="module")
def small(base):
    """A model inside the official budget: 48 hidden units, int8 per channel."""
    tt.manual_seed(1)
    return quantize_model(train(TASK.build({"hidden": [48]})))


@pytest.fixture
def submitted(small, tmp_path):
    return write_submission(small, tmp_path / "small.json", task=TASK.name, learner="ada")


def document(path):
    return json.loads(path.read_text())


def rewrite(path, change):
    doc = document(path)
    change(doc)
    path.write_text(json.dumps(doc))
    return path


# ============================================================================ the schema
def test_a_valid_submission_passes_the_schema(submitted):
    assert capstone.validate_submission(document(submitted))["learner"] == "ada"


@pytest.mark.parametrize("change, message", [
    (lambda d: d["model"].update(checkpoint=5),
     "submission.model.checkpoint: 5 is not of type 'string'"),
    (lambda d: d.pop("learner"), "submission: 'learner' is a required property"),
    (lambda d: d["budget"].update(max_bytes="a lot"),
     "submission.budget.max_bytes: 'a lot' is not of type 'integer'"),
    (lambda d: d["model"]["quantization"].update(bits=1),
     "submission.model.quantization.bits: 1 is less than the minimum of 2"),
    (lambda d: d["model"]["architecture"].update(hidden=[0]),
     "submission.model.architecture.hidden[0]: 0 is less than the minimum of 1"),
    (lambda d: d.update(task="imagenet"), "submission.task: 'imagenet' is not one of"),
    (lambda d: d.update(held_out=[[0.0] * 64]),
     "submission: Additional properties are not allowed ('held_out' was unexpected)"),
])
def test_a_schema_error_names_the_field(submitted, change, message):
    rewrite(submitted, change)
    with pytest.raises(SubmissionError) as error:
        score(submitted)
    assert message in str(error.value)


@settings(max_examples=25, deadline=None)
@given(st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.none(),
                 st.lists(st.integers(), max_size=3)))
def test_a_learner_that_is_not_a_string_is_refused_naming_the_field(learner):
    doc = {"format": capstone.FORMAT, "task": TASK.name, "learner": learner,
           "budget": dict(TASK.budget), "recipe": {},
           "model": {"architecture": {"hidden": [8]}, "quantization": None,
                     "checkpoint": "m.npz", "sha256": "0" * 64}}
    with pytest.raises(SubmissionError, match=r"^submission\.learner: .* is not of type 'string'"):
        capstone.validate_submission(doc)


def test_write_submission_refuses_an_invalid_document_before_writing_anything(small, tmp_path):
    with pytest.raises(SubmissionError, match="submission.learner"):
        write_submission(small, tmp_path / "x.json", task=TASK.name, learner="")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_checkpoint_write_leaves_no_submission_behind(small, tmp_path, monkeypatch):
    def disk_full(state, path):
        raise OSError("No space left on device")
    monkeypatch.setattr(capstone.scoring, "save_checkpoint", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_submission(small, tmp_path / "s.json", task=TASK.name, learner="ada")
    assert list(tmp_path.iterdir()) == []


BUDGETS = st.fixed_dictionaries({
    "max_bytes": st.integers(1, 10 ** 9),
    "max_latency_ms": st.floats(1e-6, 1e6),
    "min_accuracy": st.floats(0, 1)})


@given(BUDGETS)
def test_the_budget_used_is_never_looser_than_the_official_one(stated):
    used = capstone.scoring._effective_budget(stated, TASK.budget)
    assert used["max_bytes"] == min(stated["max_bytes"], TASK.budget["max_bytes"])
    assert used["max_latency_ms"] <= TASK.budget["max_latency_ms"]
    assert used["min_accuracy"] >= TASK.budget["min_accuracy"]
    assert used["min_accuracy"] >= stated["min_accuracy"]


# ============================================================================ scoring
def test_a_valid_submission_is_scored_with_measured_numbers(small, submitted):
    result = score(submitted, repeats=3)
    X, y = TASK.held_out()
    assert result.bytes == model_nbytes(small)
    assert result.accuracy == capstone.accuracy(small, X, y) > 0.9
    assert result.latency_ms > 0
    assert [c.name for c in result.constraints] == ["bytes", "latency_ms", "accuracy"]
    assert result.passed and result.score == result.accuracy


def test_claimed_numbers_are_ignored_and_reported_when_they_disagree(small, tmp_path):
    path = write_submission(small, tmp_path / "s.json", task=TASK.name, learner="ada",
                            claimed={"accuracy": 1.0, "bytes": 10})
    result = score(path, repeats=3)
    assert result.accuracy < 1.0 and result.bytes == model_nbytes(small)
    assert [d.split(" but ")[0] for d in result.disagreements] == [
        "claimed accuracy 1.0", "claimed bytes 10"]


def test_a_model_of_zeros_fails_the_accuracy_floor(tmp_path):
    zeros = TASK.build({"hidden": [8]})
    for parameter in zeros.parameters():
        parameter.data[...] = 0
    result = score(write_submission(zeros, tmp_path / "zeros.json", task=TASK.name,
                                    learner="z"), repeats=3)
    assert result.accuracy < 0.2
    assert result.failed() == ["accuracy"] and result.score == 0.0


def test_a_checkpoint_whose_sha256_does_not_match_is_refused(submitted, tmp_path):
    checkpoint = submitted.with_suffix(".npz")
    other = TASK.build({"hidden": [48]})
    tt.training.checkpoint.save_checkpoint(
        {"model": quantize_model(other).state_dict(), "optimizer": {}, "trainer": {}},
        checkpoint)
    with pytest.raises(SubmissionError, match=r"^submission\.model\.sha256: .* changed after"):
        score(submitted)


def test_a_checkpoint_outside_the_submission_folder_is_refused(submitted, tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere.npz"
    shutil.copy(submitted.with_suffix(".npz"), outside)
    rewrite(submitted, lambda d: d["model"].update(checkpoint=f"../{outside.name}"))
    with pytest.raises(SubmissionError, match="must be a relative path inside"):
        score(submitted)


def test_a_checkpoint_that_does_not_fit_the_stated_architecture_is_refused(submitted):
    rewrite(submitted, lambda d: d["model"]["architecture"].update(hidden=[64]))
    with pytest.raises(SubmissionError, match="'0.weight_q' is int8\\(48, 64\\); the stated "
                                              "model needs int8\\(64, 64\\)"):
        score(submitted)


def test_the_scorer_uses_its_own_held_out_split_never_the_training_data(submitted, monkeypatch):
    X_train, _ = TASK.train()
    X_test, y_test = TASK.held_out()
    train_rows = {row.tobytes() for row in X_train}
    assert not any(row.tobytes() in train_rows for row in X_test)  # disjoint

    def no_training_data(self):
        raise AssertionError("the scorer looked at the training split")
    monkeypatch.setattr(capstone.Task, "train", no_training_data)
    result = score(submitted, repeats=3)
    assert result.accuracy == capstone.accuracy(capstone.load_submission(submitted)[1],
                                                X_test, y_test)


def test_the_held_out_data_cannot_be_changed_by_a_caller():
    X, _ = TASK.held_out()
    with pytest.raises(ValueError, match="read-only"):
        X[0, 0] = 0


@pytest.mark.parametrize("budget, failed", [
    ({"max_bytes": 100}, ["bytes"]),
    ({"max_latency_ms": 1e-9}, ["latency_ms"]),
    ({"min_accuracy": 1.0}, ["accuracy"]),
])
def test_a_stated_budget_the_model_exceeds_fails_that_constraint(small, tmp_path, budget, failed):
    path = write_submission(small, tmp_path / "s.json", task=TASK.name, learner="ada",
                            budget={**TASK.budget, **budget})
    result = score(path, repeats=3)
    assert result.failed() == failed and result.score == 0.0


def test_a_budget_looser_than_the_official_one_is_not_used(base, tmp_path):
    path = write_submission(base, tmp_path / "base.json", task=TASK.name, learner="ada",
                            budget={"max_bytes": 10 ** 9, "max_latency_ms": 1e6,
                                    "min_accuracy": 0.0})
    result = score(path, repeats=3)
    assert result.budget == TASK.budget
    assert result.bytes > TASK.budget["max_bytes"] and "bytes" in result.failed()


def test_pruning_masks_are_made_permanent_and_the_sparsity_is_measured(base, tmp_path):
    pruned = quantize_model(base)
    model = TASK.build({"hidden": [128]})
    model.load_state_dict(base.state_dict())
    tt.prune.global_unstructured([(layer, "weight") for layer in model.layers
                                  if isinstance(layer, tt.Linear)], amount=0.5)
    path = write_submission(model, tmp_path / "p.json", task=TASK.name, learner="ada")
    result = score(path, repeats=3)
    assert result.sparsity == pytest.approx(0.5, abs=0.01)
    assert result.bytes == model_nbytes(base) > model_nbytes(pruned)  # masks save no bytes


# ============================================================================ leaderboard
def test_the_leaderboard_ranks_the_folder_and_lists_invalid_files_with_their_error(
        small, base, tmp_path):
    zeros = TASK.build({"hidden": [8]})
    for parameter in zeros.parameters():
        parameter.data[...] = 0
    write_submission(small, tmp_path / "b_small.json", task=TASK.name, learner="ada")
    write_submission(zeros, tmp_path / "a_zeros.json", task=TASK.name, learner="zed")
    write_submission(base, tmp_path / "c_base.json", task=TASK.name, learner="bo")
    (tmp_path / "d_broken.json").write_text("{not json")
    tampered = write_submission(small, tmp_path / "e_tampered.json", task=TASK.name,
                                learner="eve")
    with open(tampered.with_suffix(".npz"), "ab") as file:
        file.write(b"\0")
    rows = capstone.leaderboard(tmp_path, repeats=3)
    assert [(r["file"], r["rank"]) for r in rows] == [
        ("b_small.json", 1), ("c_base.json", 2), ("a_zeros.json", 3),
        ("d_broken.json", None), ("e_tampered.json", None)]
    assert rows[0]["passed"] and not rows[1]["passed"] and rows[2]["failed"] == ["accuracy"]
    assert "not a readable JSON file" in rows[3]["error"]
    assert rows[4]["error"].startswith("submission.model.sha256:")


# ============================================================================ the recipe
def test_prunable_layers_are_those_feeding_another_linear():
    assert capstone.prunable_layers(TASK.build({"hidden": [16, 8]})) == [0, 2]
    cnn = capstone.get_task("digits-cnn").build({"channels": [4, 8], "hidden": 16})
    assert capstone.prunable_layers(cnn) == [0, 3, 7]


def test_shrink_removes_a_fraction_of_the_largest_layers_outputs():
    model = TASK.build({"hidden": [40, 8]})
    smaller = capstone.shrink(model, 0.25)
    assert [layer.weight.shape for layer in smaller.layers if isinstance(layer, tt.Linear)] == [
        (30, 64), (8, 30), (10, 8)]
    assert model.layers[0].weight.shape == (40, 64)  # the original is unchanged


def test_fine_tune_lowers_the_training_loss_and_zero_epochs_change_nothing():
    X, y = TASK.train()
    tt.manual_seed(0)
    model = TASK.build({"hidden": [16]})
    before = [p.data.copy() for p in model.parameters()]
    capstone.fine_tune(model, (X, y), 0)
    assert all(np.array_equal(a, p.data) for a, p in zip(before, model.parameters()))
    loss = tt.CrossEntropyLoss()
    start = loss(model(X), y).item()
    assert capstone.fine_tune(model, (X, y), 2, lr=3e-3) is model and not model.training
    assert loss(model(X), y).item() < 0.5 * start


def test_the_optimised_model_meets_the_official_budget_when_scored(base, tmp_path):
    optimised, recipe = capstone.optimise(base, TASK.budget, TASK.train(), epochs=3)
    assert model_nbytes(optimised) <= TASK.budget["max_bytes"] < model_nbytes(quantize_model(base))
    assert recipe["quantization"] == {"bits": 8, "per_channel": True, "scheme": "affine"}
    assert 0 < recipe["pruning"]["amount"] < 1 and recipe["fine_tune_epochs"] == 3
    path = write_submission(optimised, tmp_path / "mine.json", task=TASK.name, learner="ada",
                            recipe=recipe)
    result = score(path, repeats=3)
    assert result.passed, result.constraints
    assert base.layers[0].weight.shape == (128, 64)  # optimise does not change its input


def test_optimise_of_a_model_already_inside_the_budget_only_quantizes_it(tmp_path):
    tt.manual_seed(0)
    model = train(TASK.build({"hidden": [16]}), epochs=2)
    optimised, recipe = capstone.optimise(model, TASK.budget, TASK.train())
    assert recipe["pruning"] is None and recipe["fine_tune_epochs"] == 0
    assert np.allclose(optimised.layers[0].dequantized_weight(), model.layers[0].weight.data,
                       atol=float(optimised.layers[0].weight_scale.max()))
