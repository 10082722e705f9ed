"""The benchmarks' oracle (SPEC section 5): tinytorch trains exactly like hand-written numpy.

Same data, same initial weights (tinytorch's, copied), same batch order, Adam: the per-step
losses of tinytorch and of benchmarks/reference_numpy.py, whose gradients are derived by
hand, agree to 1e-5 relative. Only correctness is checked here; speed is the benchmark's job.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

import tinytorch as tt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_training as bench  # noqa: E402

import reference_numpy as ref  # noqa: E402

RTOL = 1e-5
LR = 0.01  # larger than the default, so 20 steps move the weights a long way


@pytest.fixture(scope="module")
def digits():
    split = tt.datasets.load_digits(seed=0)
    return split.X_train, split.y_train


@pytest.fixture(scope="module")
def digit_images():
    split = tt.datasets.load_digits(seed=0, flatten=False)
    return split.X_train, split.y_train


def small_mlp():
    tt.manual_seed(0)
    return tt.MLP([64, 32, 10])


def test_mlp_losses_equal_the_numpy_reference_over_20_adam_steps(digits):
    X, y = digits
    losses = bench.oracle_losses(small_mlp, X, y, batch_size=32, steps=20, lr=LR)
    assert len(losses["tinytorch"]) == len(losses["numpy"]) == 20
    assert bench.max_relative_loss_difference(losses["tinytorch"], losses["numpy"]) <= RTOL
    assert losses["numpy"][-1] < losses["numpy"][0] - 0.3  # it learned: not a trivial match


def test_tiny_cnn_losses_equal_the_numpy_reference_over_5_adam_steps(digit_images):
    X, y = digit_images
    losses = bench.oracle_losses(bench.tiny_cnn, X, y, batch_size=32, steps=5, lr=LR)
    assert len(losses["tinytorch"]) == len(losses["numpy"]) == 5
    assert bench.max_relative_loss_difference(losses["tinytorch"], losses["numpy"]) <= RTOL
    assert len(set(losses["numpy"])) == 5  # every step changed the loss


def test_oracle_detects_a_reference_that_starts_from_other_weights(digits):
    X, y = digits
    model = small_mlp()
    reference = bench.to_numpy_reference(model)
    reference.params[-1][0] += 0.01             # one bias of the output layer differs
    _, tinytorch_losses = bench.tinytorch_trainer(model, X, y, batch_size=32, lr=LR)(20)
    _, numpy_losses = bench.numpy_trainer(model, X, y, batch_size=32, lr=LR,
                                          reference=reference)(20)
    assert bench.max_relative_loss_difference(tinytorch_losses, numpy_losses) > RTOL


def test_both_frameworks_see_the_same_batches_in_the_same_order(digits):
    X, y = digits
    loader = bench.make_loader(X, y, batch_size=32)
    order = loader.sample_order(0)
    first_inputs, first_targets = next(iter(loader))
    np.testing.assert_array_equal(first_inputs.data, X[order[:32]])
    np.testing.assert_array_equal(first_targets.data, y[order[:32]])
    assert not np.array_equal(order[:32], np.arange(32))  # shuffled, not the stored order


def test_conv2d_forward_and_backward_equal_the_numpy_im2col_reference():
    x, weight, bias, grad_out = bench.conv_problem(batch=3, channels=2, size=7, filters=4,
                                                   dtype=np.float64)
    runs = bench.conv_runners(x, weight, bias, grad_out, padding=1)
    _, (out, grad_x, grad_weight, grad_bias) = runs["tinytorch"]()
    _, expected = runs["numpy"]()
    assert out.shape == (3, 4, 7, 7) and grad_x.shape == x.shape
    for name, actual, wanted in zip(("out", "dx", "dW", "db"),
                                    (out, grad_x, grad_weight, grad_bias), expected):
        assert bench.max_relative_difference(actual, wanted) <= 1e-12, name


def test_reference_conv2d_computes_the_definition_of_a_padded_convolution():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 5))
    weight = rng.standard_normal((4, 3, 3, 3))
    bias = rng.standard_normal(4)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.empty((2, 4, 5, 5))
    for r in range(5):
        for c in range(5):
            window = padded[:, :, r:r + 3, c:c + 3]            # (N, C, 3, 3)
            expected[:, :, r, c] = np.einsum("nckl,fckl->nf", window, weight) + bias
    out = ref.Conv2d(weight, bias, padding=1).forward(x)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_reference_max_pool_sends_a_tied_windows_gradient_to_its_first_maximum():
    x = np.array([[[[2.0, 2.0], [1.0, 2.0]]]])         # one 2x2 window, maximum 2 three times
    pool = ref.MaxPool2d(2)
    np.testing.assert_array_equal(pool.forward(x), [[[[2.0]]]])
    grad_x = pool.backward(np.array([[[[5.0]]]]))
    np.testing.assert_array_equal(grad_x, [[[[5.0, 0.0], [0.0, 0.0]]]])


def test_reference_gradients_match_finite_differences():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 1, 6, 6))
    y = np.array([0, 2, 1])
    layers = [ref.Conv2d(rng.standard_normal((2, 1, 3, 3)), rng.standard_normal(2), padding=1),
              ref.ReLU(), ref.MaxPool2d(2), ref.Flatten(),
              ref.Linear(rng.standard_normal((3, 18)), rng.standard_normal(3))]
    net = ref.Sequential(layers)
    loss, grad_logits = ref.cross_entropy(net.forward(x), y)
    grads = net.backward(grad_logits)
    step = 1e-6
    for param, grad in zip(net.params, grads):
        for index in np.ndindex(param.shape):
            saved = param[index]
            param[index] = saved + step
            loss_up, _ = ref.cross_entropy(net.forward(x), y)
            param[index] = saved - step
            loss_down, _ = ref.cross_entropy(net.forward(x), y)
            param[index] = saved
            assert (loss_up - loss_down) / (2 * step) == pytest.approx(grad[index], abs=1e-6)


# ---------------------------------------------------------------- how timings are taken
def _fake_runs(seconds_per_call):
    calls = {"a": 0, "b": 0}

    def make(name):
        def run():
            calls[name] += 1
            return seconds_per_call[name] * (1 + 1 / calls[name]), None  # faster with time
        return run
    return {name: make(name) for name in calls}, calls


def test_best_times_takes_turns_for_at_least_the_given_rounds_and_keeps_the_best():
    runs, calls = _fake_runs({"a": 0.5, "b": 1.0})
    best, rounds = bench.best_times(runs, lambda run: run(), repeats=4)
    assert rounds == 4 and calls == {"a": 4, "b": 4}
    assert best == {"a": 0.5 * 1.25, "b": 1.0 * 1.25}


def test_best_times_adds_rounds_until_the_case_has_been_timed_long_enough():
    runs, calls = _fake_runs({"a": 0.01, "b": 0.01})
    best, rounds = bench.best_times(runs, lambda run: run(), repeats=3, min_seconds=1.0)
    assert 3 < rounds < bench.MAX_ROUNDS and calls["a"] == calls["b"] == rounds
    assert sum(0.01 * (1 + 1 / k) for k in range(1, rounds + 1)) * 2 >= 1.0


def test_best_times_stops_at_its_round_cap():
    runs, _ = _fake_runs({"a": 0.0, "b": 0.0})
    _, rounds = bench.best_times(runs, lambda run: run(), repeats=2, min_seconds=5.0)
    assert rounds == bench.MAX_ROUNDS
