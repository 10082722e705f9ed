"""The shared random generator: manual_seed, default_generator, get/set_rng_state."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytorch as tt
from tinytorch import random as tt_random


def test_the_functions_are_importable_from_tinytorch():
    for name in tt_random.__all__:
        assert getattr(tt, name) is getattr(tt_random, name)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2 ** 64))
def test_manual_seed_draws_what_numpy_draws_from_the_same_seed(seed):
    generator = tt.manual_seed(seed)
    assert generator is tt.default_generator
    np.testing.assert_array_equal(generator.random(5), np.random.default_rng(seed).random(5))


def test_set_rng_state_continues_from_the_saved_state():
    tt.manual_seed(4)
    tt.default_generator.random(3)
    state = tt.get_rng_state()
    expected = tt.default_generator.random(6)
    tt.manual_seed(99)
    tt.set_rng_state(state)
    np.testing.assert_array_equal(tt.default_generator.random(6), expected)


def test_set_rng_state_changes_the_generator_in_place():
    held = tt.default_generator
    tt.manual_seed(1)
    state = tt.get_rng_state()
    first = held.random()
    tt.set_rng_state(state)
    assert tt.default_generator is held and held.random() == first


def test_layers_draw_their_initial_weights_from_the_shared_generator():
    tt.manual_seed(2)
    state = tt.get_rng_state()
    first = tt.Linear(4, 3).weight.data
    tt.set_rng_state(state)
    np.testing.assert_array_equal(tt.Linear(4, 3).weight.data, first)


def test_the_state_survives_a_json_round_trip():
    tt.manual_seed(5)
    state = json.loads(json.dumps(tt.get_rng_state()))
    expected = tt.default_generator.random(4)
    tt.set_rng_state(state)
    np.testing.assert_array_equal(tt.default_generator.random(4), expected)


def test_get_rng_state_returns_a_copy():
    tt.manual_seed(6)
    state = tt.get_rng_state()
    state["state"]["state"] = 12345
    assert tt.get_rng_state() != state


def _state(**changes):
    tt.manual_seed(0)
    state = tt.get_rng_state()
    inner = changes.pop("inner", {})
    state.update(changes)
    if isinstance(state["state"], dict):
        state["state"].update(inner)
    return state


MALFORMED = [
    (lambda: [1, 2], "must be a dict as returned by get_rng_state.*got a list"),
    (lambda: _state(bit_generator="MT19937"),
     "generator state is for 'MT19937'; tinytorch's default generator is a PCG64"),
    (lambda: {"bit_generator": "PCG64"},
     r"must have the keys .*missing \['has_uint32', 'state', 'uinteger'\]"),
    (lambda: {**_state(), "extra": 1}, r"unexpected \['extra'\]"),
    (lambda: _state(state=7), r"generator state\['state'\] must be a dict .*got a int"),
    (lambda: _state(inner={"inc": "x"}), r"\['state'\]\['inc'\] must be an int .*got 'x'"),
    (lambda: _state(inner={"state": 1.5}), r"\['state'\]\['state'\] must be an int .*got 1.5"),
    (lambda: _state(inner={"state": -1}), r"\['state'\]\['state'\] must be an int in \[0, "),
    (lambda: _state(inner={"state": 2 ** 128}), r"\['state'\]\['state'\] must be an int in"),
    (lambda: _state(has_uint32=5), r"\['has_uint32'\] must be an int in \[0, 2\); got 5"),
    (lambda: _state(has_uint32=True), r"\['has_uint32'\] must be an int .*got True"),
    (lambda: _state(uinteger=-3), r"\['uinteger'\] must be an int in \[0, 4294967296\); got -3"),
]


@pytest.mark.parametrize("make, message", MALFORMED)
def test_a_malformed_state_raises_value_error_naming_the_problem(make, message):
    bad = make()
    tt.manual_seed(8)
    before = tt.get_rng_state()
    with pytest.raises(ValueError, match=message):
        tt.set_rng_state(bad)
    assert tt.get_rng_state() == before
