"""CosineSchedule: the learning rate of each epoch (chapter 08)."""
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch import CosineSchedule


@pytest.mark.parametrize("epoch, expected", [
    (0, 0.1000), (25, 0.0868), (50, 0.0550), (75, 0.0232), (100, 0.0100)])
def test_cosine_schedule_reproduces_the_spec_reference_values(epoch, expected):
    schedule = CosineSchedule(max_lr=0.1, min_lr=0.01, total_epochs=100)
    assert round(schedule.get_lr(epoch), 4) == pytest.approx(expected, abs=1e-12)


def test_defaults_are_max_0_1_min_0_01_over_100_epochs():
    schedule = CosineSchedule()
    assert (schedule.max_lr, schedule.min_lr, schedule.total_epochs) == (0.1, 0.01, 100)


def test_halfway_is_the_midpoint_of_max_and_min():
    schedule = CosineSchedule(max_lr=1.0, min_lr=0.2, total_epochs=10)
    assert schedule.get_lr(5) == pytest.approx(0.6)


@pytest.mark.parametrize("epoch", [100, 101, 250, 10**6])
def test_epochs_past_the_end_return_min_lr(epoch):
    assert CosineSchedule(0.1, 0.01, 100).get_lr(epoch) == 0.01


def test_get_lr_returns_a_python_float():
    assert type(CosineSchedule().get_lr(3)) is float


@settings(max_examples=25, deadline=None)
@given(st.floats(0.0, 120.0), st.floats(0.0, 120.0))
def test_learning_rate_never_increases_and_stays_between_min_and_max(a, b):
    schedule = CosineSchedule(max_lr=0.5, min_lr=0.05, total_epochs=100)
    early, late = sorted((a, b))
    assert schedule.get_lr(early) >= schedule.get_lr(late)
    assert 0.05 <= schedule.get_lr(late) <= 0.5


def test_negative_epoch_raises_naming_it():
    with pytest.raises(ValueError, match="epoch must be >= 0; got -1"):
        CosineSchedule().get_lr(-1)


@pytest.mark.parametrize("total", [0, -3])
def test_total_epochs_below_one_raises_naming_it(total):
    with pytest.raises(ValueError, match=f"total_epochs must be at least 1; got {total}"):
        CosineSchedule(total_epochs=total)


def test_non_integer_total_epochs_raises_type_error():
    with pytest.raises(TypeError, match="total_epochs must be an int; got 2.5"):
        CosineSchedule(total_epochs=2.5)


def test_min_lr_above_max_lr_raises_naming_both():
    with pytest.raises(ValueError, match=r"min_lr \(0.5\) must not exceed max_lr \(0.1\)"):
        CosineSchedule(max_lr=0.1, min_lr=0.5)


def test_negative_learning_rate_raises_naming_it():
    with pytest.raises(ValueError, match="min_lr must be a finite number >= 0; got -0.1"):
        CosineSchedule(max_lr=0.1, min_lr=-0.1)


def test_non_numeric_epoch_raises_type_error():
    with pytest.raises(TypeError, match="epoch must be a number; got '3'"):
        CosineSchedule().get_lr("3")


def test_state_dict_is_json_able_and_round_trips():
    original = CosineSchedule(max_lr=0.3, min_lr=0.001, total_epochs=7)
    state = json.loads(json.dumps(original.state_dict()))
    restored = CosineSchedule()
    restored.load_state_dict(state)
    assert restored.state_dict() == original.state_dict()
    assert all(restored.get_lr(e) == original.get_lr(e) for e in range(9))


def test_load_state_dict_with_wrong_keys_raises_and_changes_nothing():
    schedule = CosineSchedule(0.2, 0.02, 5)
    with pytest.raises(ValueError, match=r"expected keys \['max_lr', 'min_lr', 'total_epochs'\]"):
        schedule.load_state_dict({"max_lr": 1.0})
    assert schedule.state_dict() == {"max_lr": 0.2, "min_lr": 0.02, "total_epochs": 5}


def test_load_state_dict_with_invalid_values_raises_and_changes_nothing():
    schedule = CosineSchedule(0.2, 0.02, 5)
    with pytest.raises(ValueError, match="total_epochs must be at least 1; got 0"):
        schedule.load_state_dict({"max_lr": 1.0, "min_lr": 0.5, "total_epochs": 0})
    assert schedule.state_dict() == {"max_lr": 0.2, "min_lr": 0.02, "total_epochs": 5}


def test_first_epoch_uses_exactly_max_lr():
    assert CosineSchedule(max_lr=0.37, min_lr=0.0, total_epochs=3).get_lr(0) == 0.37
    assert math.isclose(CosineSchedule(0.37, 0.0, 3).get_lr(3), 0.0)
