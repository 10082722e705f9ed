"""Trainer: the training loop, accumulation, schedules, NaN guard, evaluation, fit (chapter 08)."""
import json
import math
import sys

import numpy as np
import pytest

import tinytorch as tt
from tinytorch import Trainer

rng = np.random.default_rng(1)
X = rng.normal(size=(40, 5)).astype(np.float32)
Y = rng.integers(0, 3, size=40)


def batches(x, y, size):
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


def make_trainer(optimizer="sgd", seed=0, scheduler=None, grad_clip_norm=None, lr=0.5,
                 loss_fn=None, sizes=(5, 6, 3)):
    tt.manual_seed(seed)
    model = tt.MLP(list(sizes))
    if optimizer == "sgd":
        opt = tt.SGD(model.parameters(), lr=lr)
    else:
        opt = tt.Adam(model.parameters(), lr=0.01)
    return Trainer(model, opt, loss_fn or tt.CrossEntropyLoss(), scheduler=scheduler,
                   grad_clip_norm=grad_clip_norm)


def parameters_of(trainer):
    return [p.data.copy() for p in trainer.model.parameters()]


class Recording:
    """An iterable of batches that calls ``on_draw(index)`` as each batch is drawn."""

    def __init__(self, items, on_draw):
        self.items, self.on_draw = items, on_draw

    def __iter__(self):
        for i, item in enumerate(self.items):
            self.on_draw(i)
            yield item


# ------------------------------------------------------------------ accumulation
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_four_accumulated_batches_of_8_update_like_one_batch_of_32(optimizer):
    whole = make_trainer(optimizer)
    whole.train_epoch(batches(X[:32], Y[:32], 32))
    accumulated = make_trainer(optimizer)
    accumulated.train_epoch(batches(X[:32], Y[:32], 8), accumulation_steps=4)
    assert whole.step == accumulated.step == 1
    for a, b in zip(parameters_of(whole), parameters_of(accumulated)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_accumulation_actually_changes_the_update():
    # Guards the test above: without accumulation, four steps on batches of 8 differ.
    whole = make_trainer()
    whole.train_epoch(batches(X[:32], Y[:32], 32))
    separate = make_trainer()
    separate.train_epoch(batches(X[:32], Y[:32], 8))
    assert separate.step == 4
    assert not np.allclose(parameters_of(whole)[0], parameters_of(separate)[0], atol=1e-4)


def test_last_partial_group_steps_on_the_mean_of_its_batches():
    # 5 batches of 8 with k = 2: groups {0, 1}, {2, 3} and the partial group {4}.
    accumulated = make_trainer()
    accumulated.train_epoch(batches(X, Y, 8), accumulation_steps=2)
    reference = make_trainer()
    reference.train_epoch([(X[0:16], Y[0:16]), (X[16:32], Y[16:32]), (X[32:40], Y[32:40])])
    assert accumulated.step == reference.step == 3
    for a, b in zip(parameters_of(accumulated), parameters_of(reference)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_partial_group_works_for_an_iterable_without_len():
    accumulated = make_trainer()
    accumulated.train_epoch(iter(batches(X, Y, 8)), accumulation_steps=3)
    reference = make_trainer()
    reference.train_epoch([(X[0:24], Y[0:24]), (X[24:40], Y[24:40])])
    assert accumulated.step == 2
    for a, b in zip(parameters_of(accumulated), parameters_of(reference)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_train_epoch_returns_mean_of_unscaled_batch_losses():
    trainer = make_trainer(lr=0.0)  # lr 0: the parameters, hence the losses, stay fixed
    data = batches(X, Y, 8)
    expected = np.mean([trainer.loss_fn(trainer.model(x), y).item() for x, y in data])
    assert trainer.train_epoch(data, accumulation_steps=2) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("bad", [0, -2])
def test_accumulation_steps_below_one_raises(bad):
    with pytest.raises(ValueError, match=f"accumulation_steps must be at least 1; got {bad}"):
        make_trainer().train_epoch(batches(X, Y, 8), accumulation_steps=bad)


# ------------------------------------------------------------------ inputs
def test_train_epoch_accepts_a_list_of_numpy_pairs_and_returns_a_float():
    loss = make_trainer().train_epoch(batches(X, Y, 10))
    assert type(loss) is float and math.isfinite(loss)


def test_train_epoch_accepts_tensors_and_python_lists():
    data = [(tt.Tensor(X[:8]), tt.Tensor(Y[:8])), (X[8:16].tolist(), Y[8:16].tolist())]
    trainer = make_trainer()
    trainer.train_epoch(data)
    assert trainer.step == 2


def test_train_epoch_works_with_a_dataloader():
    loader = tt.DataLoader(tt.TensorDataset(X, Y), batch_size=16, shuffle=True, seed=2)
    trainer = make_trainer()
    trainer.train_epoch(loader)
    assert trainer.step == len(loader) == 3


def test_a_batch_that_is_not_a_pair_raises_type_error():
    with pytest.raises(TypeError, match="batch 0 must be an \\(inputs, targets\\) pair; "
                                        "got a tuple of length 3"):
        make_trainer().train_epoch([(X, Y, Y)])


def test_an_empty_dataloader_raises():
    with pytest.raises(ValueError, match="yielded no batches"):
        make_trainer().train_epoch([])


def test_train_epoch_puts_the_model_in_training_mode():
    trainer = make_trainer()
    trainer.model.eval()
    trainer.train_epoch(batches(X, Y, 20))
    assert all(m.training for m in trainer.model.modules())


# ------------------------------------------------------------------ counters and set_epoch
def test_counters_count_epochs_and_optimizer_steps():
    trainer = make_trainer()
    trainer.train_epoch(batches(X, Y, 8))                         # 5 steps
    trainer.train_epoch(batches(X, Y, 8), accumulation_steps=2)   # 3 steps
    assert (trainer.epoch, trainer.step) == (2, 8)


def test_set_epoch_is_called_with_the_trainers_epoch_before_iterating():
    calls = []

    class Loader(list):
        def set_epoch(self, epoch):
            calls.append(("set_epoch", epoch))

        def __iter__(self):
            calls.append(("iter", None))
            return super().__iter__()

    trainer = make_trainer()
    trainer.epoch = 7
    trainer.train_epoch(Loader(batches(X, Y, 20)))
    trainer.train_epoch(Loader(batches(X, Y, 20)))
    assert calls == [("set_epoch", 7), ("iter", None), ("set_epoch", 8), ("iter", None)]


# ------------------------------------------------------------------ learning rates
def test_each_epoch_runs_at_the_schedules_rate_and_history_records_it():
    schedule = tt.CosineSchedule(max_lr=0.2, min_lr=0.02, total_epochs=4)
    trainer = make_trainer(scheduler=schedule, lr=0.9)  # the optimizer's own lr is overridden
    seen = []  # (epoch, lr at the moment each batch is drawn)
    for _ in range(5):
        data = Recording(batches(X, Y, 10),
                         lambda i: seen.append((trainer.epoch, trainer.optimizer.lr)))
        trainer.train_epoch(data)
    assert seen[0] == (0, schedule.get_lr(0)) == (0, 0.2)
    assert all(lr == schedule.get_lr(epoch) for epoch, lr in seen)
    assert trainer.history["learning_rates"] == [schedule.get_lr(e) for e in range(5)]
    assert trainer.history["learning_rates"][4] == 0.02


def test_without_scheduler_the_optimizers_lr_is_recorded_and_kept():
    trainer = make_trainer(lr=0.125)
    trainer.train_epoch(batches(X, Y, 20))
    assert trainer.optimizer.lr == 0.125
    assert trainer.history["learning_rates"] == [0.125]


# ------------------------------------------------------------------ clipping
def test_grad_clip_norm_bounds_each_update():
    tt.manual_seed(0)
    model = tt.Linear(3, 1, bias=False)
    before = model.weight.data.copy()
    trainer = Trainer(model, tt.SGD(model.parameters(), lr=1.0), tt.MSELoss(), grad_clip_norm=0.5)
    huge_target = np.full((4, 1), 1e4, dtype=np.float32)
    trainer.train_epoch([(np.ones((4, 3), np.float32), huge_target)])
    # One SGD step with lr 1 moves the weights by exactly the clipped gradient.
    assert np.linalg.norm(model.weight.data - before) == pytest.approx(0.5, rel=1e-4)


@pytest.mark.parametrize("bad", [0, -1.0])
def test_grad_clip_norm_must_be_positive(bad):
    with pytest.raises(ValueError, match=f"grad_clip_norm must be a finite number > 0; got {bad}"):
        make_trainer(grad_clip_norm=bad)


# ------------------------------------------------------------------ NaN guard
@pytest.mark.parametrize("poison", [np.nan, np.inf])
def test_non_finite_loss_stops_naming_epoch_and_step_before_updating(poison):
    trainer = make_trainer(loss_fn=tt.MSELoss(), sizes=(5, 4, 1))
    x, y = X[:32], rng.normal(size=(32, 1)).astype(np.float32)
    data = batches(x, y, 8)
    bad_y = y[16:24].copy()
    bad_y[3] = poison
    data[2] = (x[16:24], bad_y)
    snapshots = []
    recording = Recording(data, lambda i: snapshots.append(parameters_of(trainer)))
    trainer.train_epoch(batches(x, y, 8))  # epoch 0 goes fine
    with pytest.raises(FloatingPointError, match=rf"loss is {poison} at epoch 1, step 6"):
        trainer.train_epoch(recording)
    assert trainer.step == 6 and trainer.epoch == 1
    # The parameters are those in place when the bad batch was drawn (after step 6).
    for now, then in zip(parameters_of(trainer), snapshots[2]):
        np.testing.assert_array_equal(now, then)


class Gated(tt.Module):
    """A linear layer plus ``0 * sqrt(gate)`` with the gate at 0: the loss stays finite, but
    the gate's gradient is 0 * inf = NaN (and inf with ``scale`` instead of 0)."""

    def __init__(self, scale=0.0):
        super().__init__()
        self.body = tt.Linear(5, 3)
        self.gate = tt.Parameter(np.zeros(1, np.float32))
        self.scale = scale

    def forward(self, x):
        return self.body(x) + self.gate.sqrt() * self.scale


def gated_trainer(optimizer="adam", scale=0.0, **options):
    tt.manual_seed(0)
    model = Gated(scale)
    opt = (tt.Adam(model.parameters(), lr=0.01) if optimizer == "adam"
           else tt.SGD(model.parameters(), lr=0.1, momentum=0.9))
    return Trainer(model, opt, tt.CrossEntropyLoss(), **options)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("options", [{}, {"grad_clip_norm": 1.0}])
def test_a_nan_gradient_of_a_finite_loss_stops_before_the_step_naming_the_parameter(
        optimizer, options):
    trainer = gated_trainer(optimizer, **options)
    before = trainer.model.state_dict()
    with np.errstate(divide="ignore", invalid="ignore"), pytest.raises(
            FloatingPointError, match=r"gradient of 'gate' is not finite \(1 NaN and 0 "
                                      r"infinite of 1 entries in 'gate'\) at epoch 0, step 0 "
                                      r"\(batch 0\), although the loss was finite"):
        trainer.train_epoch(batches(X, Y, 8))
    assert trainer.step == 0 and trainer.optimizer.step_count == 0
    for name, value in trainer.model.state_dict().items():  # 'body.*' too, not only the gate
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_an_infinite_gradient_is_caught_as_well():
    trainer = gated_trainer(scale=1.0)  # d sqrt(gate) / d gate at 0 is inf
    with np.errstate(divide="ignore"), pytest.raises(
            FloatingPointError, match=r"'gate' is not finite \(0 NaN and 1 infinite"):
        trainer.train_epoch(batches(X, Y, 8))


def test_the_gradient_guard_checks_the_accumulated_group_naming_its_last_batch():
    trainer = make_trainer(loss_fn=tt.MSELoss(), sizes=(5, 4, 1))
    x, y = X[:32], rng.normal(size=(32, 1)).astype(np.float32)
    trainer.train_epoch(batches(x, y, 8), accumulation_steps=2)  # epoch 0: two steps
    first = trainer.model.layers[0].weight

    def poisoned(outputs, targets):  # finite losses; batch 2 also spoils the first weight
        if poisoned.calls == 2:
            first.grad = np.full_like(first.data, np.nan)
        poisoned.calls += 1
        return tt.mse_loss(outputs, targets)

    poisoned.calls = 0
    trainer.loss_fn = poisoned
    snapshots = []
    recording = Recording(batches(x, y, 8), lambda i: snapshots.append(parameters_of(trainer)))
    with pytest.raises(FloatingPointError, match=r"'0.weight' is not finite .* at "
                                                 r"epoch 1, step 3 \(batch 3\)"):
        trainer.train_epoch(recording, accumulation_steps=2)
    assert trainer.step == 3  # the first group (batches 0 and 1) stepped, the second did not
    for now, then in zip(parameters_of(trainer), snapshots[2]):
        np.testing.assert_array_equal(now, then)


# ------------------------------------------------------------------ empty batches
def sum_of_squares(outputs, targets):
    """A loss that does not refuse an empty batch itself (its sum over nothing is 0)."""
    return ((outputs - targets) ** 2).sum()


def test_an_empty_training_batch_is_refused_naming_the_shapes_before_any_step():
    trainer = make_trainer(optimizer="adam", loss_fn=sum_of_squares, sizes=(5, 4, 1))
    x, y = X[:16], rng.normal(size=(16, 1)).astype(np.float32)
    data = [(x[:8], y[:8]), (x[8:8], y[8:8]), (x[8:], y[8:])]
    with pytest.raises(ValueError, match=r"Trainer.train_epoch: batch 1 of epoch 0 is empty: "
                                         r"inputs of shape \(0, 5\), targets of shape "
                                         r"\(0, 1\)"):
        trainer.train_epoch(data)
    assert trainer.step == 1  # batch 0 stepped; the empty batch 1 did not


def test_an_empty_evaluation_batch_is_refused_naming_the_shapes():
    trainer = make_trainer(loss_fn=sum_of_squares, sizes=(5, 4, 1))
    x, y = X[:8], rng.normal(size=(8, 1)).astype(np.float32)
    with pytest.raises(ValueError, match=r"Trainer.evaluate: batch 1 is empty: inputs of shape "
                                         r"\(0, 5\), targets of shape \(0, 1\)"):
        trainer.evaluate([(x, y), (x[:0], y[:0])])


# ------------------------------------------------------------------ evaluate
LOGITS = np.array([[2.0, 1.0], [0.0, 3.0], [5.0, 4.0], [1.0, 0.0]], dtype=np.float32)
CLASSES = np.array([0, 1, 1, 0])  # the argmax is right for samples 0, 1 and 3


def identity_trainer(loss_fn):
    model = tt.Sequential()  # no layers: the outputs are the inputs
    return Trainer(model, tt.SGD([tt.Parameter(np.zeros(1, np.float32))], lr=0.1), loss_fn)


def test_evaluate_with_integer_targets_uses_argmax_and_averages_loss_over_samples():
    trainer = identity_trainer(tt.CrossEntropyLoss())
    # Batches of 3 and 1: a mean of batch means would weight the last sample 3 times more.
    loss, accuracy = trainer.evaluate([(LOGITS[:3], CLASSES[:3]), (LOGITS[3:], CLASSES[3:])])
    shifted = LOGITS - LOGITS.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    assert loss == pytest.approx(-log_probs[np.arange(4), CLASSES].mean(), rel=1e-6)
    assert accuracy == 0.75
    assert type(loss) is float and type(accuracy) is float


def test_evaluate_with_one_hot_targets_uses_argmax_of_both():
    one_hot = np.eye(2, dtype=np.float32)[CLASSES]
    _, accuracy = identity_trainer(tt.CrossEntropyLoss()).evaluate([(LOGITS, one_hot)])
    assert accuracy == 0.75


def test_evaluate_with_sigmoid_probabilities_thresholds_at_one_half():
    probabilities = np.array([[0.9], [0.2], [0.6], [0.4]], dtype=np.float32)
    targets = np.array([[1], [0], [0], [0]], dtype=np.float32)  # sample 2 is wrong
    _, accuracy = identity_trainer(tt.BCELoss()).evaluate([(probabilities, targets)])
    assert accuracy == 0.75


def test_evaluate_with_a_logits_loss_thresholds_at_zero():
    logits = np.array([0.3, -0.1, 2.0, -2.0], dtype=np.float32)
    targets = np.array([1, 1, 1, 0], dtype=np.float32)  # sample 1 (logit -0.1) is wrong
    _, accuracy = identity_trainer(tt.BCEWithLogitsLoss()).evaluate([(logits, targets)])
    assert accuracy == 0.75


def test_evaluate_accuracy_is_nan_for_a_regression():
    outputs = np.array([[0.5], [1.7]], dtype=np.float32)
    _, accuracy = identity_trainer(tt.MSELoss()).evaluate([(outputs, outputs + 0.25)])
    assert math.isnan(accuracy)


def test_evaluate_changes_no_parameter_and_leaves_no_gradient():
    trainer = make_trainer()
    before = parameters_of(trainer)
    trainer.evaluate(batches(X, Y, 16))
    for now, then in zip(parameters_of(trainer), before):
        np.testing.assert_array_equal(now, then)
    assert all(p.grad is None for p in trainer.model.parameters())


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_restores_the_previous_mode(training):
    trainer = make_trainer()
    trainer.model.train(training)
    trainer.evaluate(batches(X, Y, 16))
    assert all(m.training is training for m in trainer.model.modules())


def test_evaluate_runs_in_eval_mode_and_restores_mixed_modes():
    tt.manual_seed(0)
    dropout = tt.Dropout(0.5)
    model = tt.Sequential(tt.Linear(5, 3), dropout)
    dropout.eval()  # sub-module in eval mode while the container trains
    modes_during = []
    trainer = Trainer(model, tt.SGD(model.parameters(), lr=0.1), tt.CrossEntropyLoss())

    def record(index):
        modes_during.append([m.training for m in model.modules()])

    trainer.evaluate(Recording(batches(X, Y, 20), record))
    assert modes_during == [[False, False, False]] * 2
    assert [m.training for m in model.modules()] == [True, True, False]


def test_evaluate_is_deterministic_despite_dropout():
    tt.manual_seed(0)
    model = tt.Sequential(tt.Linear(5, 8), tt.Dropout(0.5), tt.Linear(8, 3))
    trainer = Trainer(model, tt.SGD(model.parameters(), lr=0.1), tt.CrossEntropyLoss())
    assert trainer.evaluate(batches(X, Y, 8)) == trainer.evaluate(batches(X, Y, 8))


# ------------------------------------------------------------------ fit
def test_fit_returns_history_with_the_four_keys_one_value_per_epoch():
    trainer = make_trainer()
    history = trainer.fit(batches(X, Y, 8), batches(X, Y, 20), epochs=3, verbose=False)
    for key in ("train_loss", "eval_loss", "eval_accuracy", "learning_rates"):
        assert len(history[key]) == 3, key
    assert len(history["train_accuracy"]) == 3
    assert history is trainer.history
    assert (trainer.epoch, trainer.step) == (3, 15)


def test_fit_records_the_evaluation_of_each_epoch():
    trainer = make_trainer()
    history = trainer.fit(batches(X, Y, 8), batches(X, Y, 20), epochs=2, verbose=False)
    assert (history["eval_loss"][-1], history["eval_accuracy"][-1]) == \
        trainer.evaluate(batches(X, Y, 20))


def test_fit_runs_more_epochs_on_each_call():
    trainer = make_trainer()
    trainer.fit(batches(X, Y, 20), epochs=2, verbose=False)
    trainer.fit(batches(X, Y, 20), epochs=1, verbose=False)
    assert trainer.epoch == 3 and len(trainer.history["train_loss"]) == 3


def test_fit_without_val_loader_records_nan_evaluations():
    history = make_trainer().fit(batches(X, Y, 20), epochs=2, verbose=False)
    assert len(history["eval_loss"]) == 2 and all(math.isnan(v) for v in history["eval_loss"])


def test_fit_training_reduces_the_loss():
    trainer = make_trainer(optimizer="adam")
    history = trainer.fit(batches(X, Y, 8), epochs=15, verbose=False)
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_fit_verbose_shows_a_progress_bar_with_loss_and_accuracy(capsys):
    make_trainer().fit(batches(X, Y, 20), batches(X, Y, 20), epochs=2, verbose=True)
    err = capsys.readouterr().err
    assert "2/2" in err and "loss=" in err and "val_acc=" in err


def test_fit_quiet_prints_nothing(capsys):
    make_trainer().fit(batches(X, Y, 20), batches(X, Y, 20), epochs=2, verbose=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_fit_save_best_needs_a_val_loader(tmp_path):
    with pytest.raises(ValueError, match="save_best=True needs both a checkpoint_path and a "
                                         "val_loader"):
        make_trainer().fit(batches(X, Y, 20), epochs=1, verbose=False,
                           checkpoint_path=tmp_path / "best.npz", save_best=True)


def test_fit_with_save_best_saves_only_when_eval_accuracy_improves(tmp_path, monkeypatch):
    trainer = make_trainer()
    saved_at = []
    monkeypatch.setattr(trainer, "save_checkpoint", lambda path: saved_at.append(trainer.epoch))
    history = trainer.fit(batches(X, Y, 8), batches(X, Y, 20), epochs=6, verbose=False,
                          checkpoint_path=tmp_path / "best.npz", save_best=True)
    best, expected = -math.inf, []
    for epoch, accuracy in enumerate(history["eval_accuracy"], start=1):
        if accuracy > best:
            best, expected = accuracy, expected + [epoch]
    assert saved_at == expected
    assert len(saved_at) < 6  # this run's accuracy does dip, so some epochs are not saved


def test_fit_with_checkpoint_path_saves_after_every_epoch(tmp_path, monkeypatch):
    trainer = make_trainer()
    saved_at = []
    monkeypatch.setattr(trainer, "save_checkpoint", lambda path: saved_at.append(trainer.epoch))
    trainer.fit(batches(X, Y, 20), epochs=3, verbose=False, checkpoint_path=tmp_path / "c.npz")
    assert saved_at == [1, 2, 3]


def test_fit_rejects_a_negative_number_of_epochs():
    with pytest.raises(ValueError, match="epochs must be at least 0; got -1"):
        make_trainer().fit(batches(X, Y, 20), epochs=-1, verbose=False)


def test_fit_verbose_without_tqdm_prints_one_line_per_epoch(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # makes `import tqdm.auto` fail
    make_trainer().fit(batches(X, Y, 20), batches(X, Y, 20), epochs=2, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1", "epoch 2"]
    assert "val_acc=" in lines[0]


def test_train_accuracy_is_computed_from_the_training_batches():
    trainer = make_trainer(lr=0.0)  # no update and no dropout: training sees the same model
    trainer.train_epoch(batches(X, Y, 8))
    _, accuracy = trainer.evaluate(batches(X, Y, 40))
    assert trainer.history["train_accuracy"] == [accuracy]


def test_a_nan_input_sample_stops_training_before_the_step():
    tt.manual_seed(0)
    model = tt.Sequential(tt.Linear(3, 4), tt.ReLU(), tt.Linear(4, 2))
    trainer = tt.Trainer(model, tt.SGD(model.parameters(), lr=0.1), tt.CrossEntropyLoss())
    inputs = np.ones((2, 3), dtype=np.float32)
    inputs[1, 0] = np.nan
    before = model.state_dict()
    with pytest.raises(FloatingPointError, match="epoch 0, step 0"):
        trainer.train_epoch([(inputs, np.array([0, 1]))])
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


# ------------------------------------------------------------------ state_dict
def trained_with_schedule():
    schedule = tt.CosineSchedule(max_lr=0.3, min_lr=0.03, total_epochs=5)
    trainer = make_trainer(scheduler=schedule, grad_clip_norm=1.5)
    trainer.fit(batches(X, Y, 10), batches(X, Y, 20), epochs=2, verbose=False)
    return trainer


def test_state_dict_holds_counters_clipping_history_schedule_and_generator():
    trainer = trained_with_schedule()
    state = trainer.state_dict()
    assert (state["epoch"], state["step"], state["grad_clip_norm"]) == (2, 8, 1.5)
    assert state["history"] == trainer.history
    assert state["scheduler"] == {"type": "CosineSchedule",
                                  "state": {"max_lr": 0.3, "min_lr": 0.03, "total_epochs": 5}}
    assert state["generator"] == tt.get_rng_state()
    assert json.loads(json.dumps(state)) == state  # JSON-able as it is


def test_state_dict_is_a_copy():
    trainer = trained_with_schedule()
    state = trainer.state_dict()
    state["history"]["train_loss"].append(0.0)
    assert len(trainer.history["train_loss"]) == 2


def test_load_state_dict_into_a_fresh_trainer_restores_everything():
    trainer = trained_with_schedule()
    state = json.loads(json.dumps(trainer.state_dict()))  # as read back from a file
    expected_draw = tt.default_generator.random()
    tt.manual_seed(42)
    fresh = make_trainer(seed=3, scheduler=tt.CosineSchedule(1.0, 0.5, 50))
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state
    assert (fresh.epoch, fresh.step, fresh.grad_clip_norm) == (2, 8, 1.5)
    assert fresh.scheduler.get_lr(1) == trainer.scheduler.get_lr(1)
    assert tt.default_generator.random() == expected_draw


def _change(key, value):
    def apply(state):
        state[key] = value
    return apply


BAD_STATES = [
    (lambda s: s.pop("history"), r"missing keys \['history'\], unexpected keys \[\]"),
    (_change("extra", 1), r"missing keys \[\], unexpected keys \['extra'\]"),
    (_change("epoch", -1), "counter 'epoch' must be a non-negative int; got -1"),
    (_change("step", 2.5), "counter 'step' must be a non-negative int; got 2.5"),
    (_change("grad_clip_norm", 0), "grad_clip_norm must be a finite number > 0; got 0"),
    (_change("grad_clip_norm", "1"), "grad_clip_norm must be a number or None; got '1'"),
    (_change("history", {"train_loss": [1.0]}), "'history' must map .*'eval_loss'"),
    (lambda s: s["history"]["train_loss"].append("low"), "'history' must map"),
    (_change("scheduler", None),
     "the state was saved with no scheduler; this trainer has a CosineSchedule"),
    (_change("scheduler", {"type": "StepLR", "state": None}),
     "the state's scheduler is a StepLR; this trainer's is a CosineSchedule"),
    (_change("scheduler", "cosine"), "'scheduler' must be None or a dict with the keys"),
    (lambda s: s["scheduler"]["state"].update(total_epochs=0),
     "'scheduler' state is invalid: .*total_epochs must be at least 1; got 0"),
    (_change("generator", {"bit_generator": "MT19937"}), "generator state is for 'MT19937'"),
]


@pytest.mark.parametrize("spoil, message", BAD_STATES)
def test_load_state_dict_refuses_a_bad_entry_naming_it_and_changes_nothing(spoil, message):
    state = trained_with_schedule().state_dict()
    spoil(state)
    fresh = make_trainer(seed=3, scheduler=tt.CosineSchedule(1.0, 0.5, 50))
    fresh.train_epoch(batches(X, Y, 20))
    before = fresh.state_dict()
    with pytest.raises(ValueError, match="Trainer.load_state_dict: " + message):
        fresh.load_state_dict(state)
    assert fresh.state_dict() == before


def test_load_state_dict_refuses_what_is_not_a_dict():
    with pytest.raises(ValueError, match="expected a dict from Trainer.state_dict"):
        make_trainer().load_state_dict([("epoch", 1)])


def test_a_custom_loss_that_declares_takes_logits_is_thresholded_at_zero():
    class MyLogitLoss(tt.BCEWithLogitsLoss.__mro__[1]):  # the common loss base, not WithLogits
        takes_logits = True

        def forward(self, logits, target):
            return tt.binary_cross_entropy_with_logits(logits, target)

    logits = tt.Tensor(np.array([[-0.2], [0.3]], dtype=np.float32))
    targets = tt.Tensor(np.array([[0.0], [1.0]], dtype=np.float32))
    _, accuracy = identity_trainer(MyLogitLoss()).evaluate([(logits, targets)])
    assert accuracy == 1.0  # at 0.5 the -0.2 and 0.3 logits would both be class 0
