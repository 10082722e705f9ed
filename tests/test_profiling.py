"""Profiling helpers: parameter counts, training memory, iterations and FLOPs."""
import numpy as np
import pytest

import tinytorch as tt
from tinytorch import profiling
from tinytorch.profiling import (
    count_parameters,
    format_bytes,
    iterations_per_epoch,
    linear_flops,
    mlp_flops,
    parameter_bytes,
    total_iterations,
    training_flops,
    training_memory,
    training_memory_for,
)

MB = 10**6


def test_profiling_declares_its_public_names():
    assert "training_memory_for" in profiling.__all__
    assert all(hasattr(profiling, name) for name in profiling.__all__)


# ------------------------------------------------------------------ parameters
def test_count_parameters_of_an_mlp_counts_weights_and_biases():
    assert count_parameters(tt.MLP([64, 128, 10])) == 64 * 128 + 128 + 128 * 10 + 10


def test_count_parameters_accepts_a_list_of_tensors():
    assert count_parameters([tt.Parameter(np.zeros((3, 4))), tt.Parameter(np.zeros(5))]) == 17


def test_parameter_bytes_follows_the_dtype():
    float32_model = tt.MLP([64, 128, 10])
    assert parameter_bytes(float32_model) == 4 * (64 * 128 + 128 + 128 * 10 + 10)
    assert parameter_bytes([tt.Parameter(np.zeros((2, 3), dtype=np.float64))]) == 48


# ------------------------------------------------------------------ memory
def test_ten_million_float32_parameters_with_adam_need_160_mb():
    assert training_memory_for(10_000_000, "adam") == {
        "parameters": 40 * MB, "gradients": 40 * MB, "optimizer_state": 80 * MB,
        "total": 160 * MB}


def test_ten_million_float32_parameters_with_sgd_momentum_need_120_mb():
    memory = training_memory_for(10_000_000, "sgd_momentum")
    assert memory["optimizer_state"] == 40 * MB and memory["total"] == 120 * MB


def test_plain_sgd_keeps_no_state():
    assert training_memory_for(10_000_000, "sgd")["total"] == 80 * MB


def test_bytes_per_value_scales_everything():
    assert training_memory_for(1000, "adam", bytes_per_value=2)["total"] == 1000 * 2 * 4


def test_unknown_optimizer_name_raises_listing_the_choices():
    with pytest.raises(ValueError, match=r"unknown optimizer 'rmsprop'; choose one of "
                                         r"\['adam', 'adamw', 'sgd', 'sgd_momentum'\]"):
        training_memory_for(10, "rmsprop")


def test_negative_parameter_count_raises():
    with pytest.raises(ValueError, match="num_parameters must be at least 0; got -5"):
        training_memory_for(-5)


@pytest.mark.parametrize("make_optimizer, state_arrays", [
    (lambda ps: tt.SGD(ps, lr=0.1), 0),
    (lambda ps: tt.SGD(ps, lr=0.1, momentum=0.9), 1),
    (lambda ps: tt.Adam(ps), 2),
])
def test_training_memory_measures_a_real_model_and_optimizer(make_optimizer, state_arrays):
    model = tt.MLP([64, 128, 10])
    params = 4 * (64 * 128 + 128 + 128 * 10 + 10)
    memory = training_memory(model, make_optimizer(model.parameters()))
    assert memory == {"parameters": params, "gradients": params,
                      "optimizer_state": state_arrays * params,
                      "total": (2 + state_arrays) * params}


def test_training_memory_estimates_state_an_optimizer_has_not_allocated_yet():
    class LazyAdam:  # allocates its moments on the first step
        state_arrays_per_param = 2

        def state_nbytes(self):
            return 0

    model = tt.Linear(10, 10)
    assert training_memory(model, LazyAdam())["optimizer_state"] == 2 * 4 * 110


@pytest.mark.parametrize("n, text", [
    (0, "0 B"), (999, "999 B"), (1000, "1 kB"), (40 * MB, "40 MB"), (160 * MB, "160 MB"),
    (1_500_000_000, "1.5 GB"), (2.3e12, "2.3 TB")])
def test_format_bytes_uses_decimal_units(n, text):
    assert format_bytes(n) == text


def test_format_bytes_rejects_negative_counts():
    with pytest.raises(ValueError, match="expected a byte count >= 0; got -1"):
        format_bytes(-1)


# ------------------------------------------------------------------ iterations
def test_imagenet_epoch_at_batch_256_takes_4688_iterations():
    assert iterations_per_epoch(1_200_000, 256) == 4_688


def test_drop_last_drops_the_partial_batch():
    assert iterations_per_epoch(1_200_000, 256, drop_last=True) == 4_687


def test_ninety_imagenet_epochs_take_421920_iterations():
    assert total_iterations(1_200_000, 256, 90) == 421_920


def test_batch_size_below_one_raises():
    with pytest.raises(ValueError, match="batch_size must be at least 1; got 0"):
        iterations_per_epoch(100, 0)


# ------------------------------------------------------------------ FLOPs
def test_linear_layer_costs_two_flops_per_weight_forward_and_six_with_backward():
    assert linear_flops(512, 256, num_samples=3, backward=False) == 2 * 512 * 256 * 3
    assert linear_flops(512, 256, num_samples=3) == 6 * 512 * 256 * 3


def test_mlp_flops_sums_its_layers():
    assert mlp_flops([784, 512, 10], num_samples=100) == 6 * (784 * 512 + 512 * 10) * 100


def test_training_flops_is_six_n_d():
    assert training_flops(1_000_000, 2_000) == 12 * 10**9


def test_mlp_flops_needs_two_sizes():
    with pytest.raises(ValueError, match=r"needs at least two sizes .*got \[5\]"):
        mlp_flops([5])
