"""Gradient clipping by global norm and by value (chapter 08)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tinytorch import Parameter, clip_grad_norm, clip_grad_value


def param_with_grad(grad, dtype=np.float32):
    p = Parameter(np.zeros(np.shape(grad), dtype=dtype))
    p.grad = np.array(grad, dtype=dtype)
    return p


@pytest.mark.parametrize("grad, norm, clipped", [
    ([100, 200, 50], 229.13, [0.436, 0.873, 0.218]),
    ([50, 100, 5], 111.92, [0.447, 0.894, 0.045]),
])
def test_clip_grad_norm_reproduces_the_spec_reference_values(grad, norm, clipped):
    p = param_with_grad(grad)
    assert clip_grad_norm([p], max_norm=1.0) == pytest.approx(norm, abs=0.005)
    np.testing.assert_allclose(p.grad, clipped, atol=0.0005)


def test_clip_grad_value_at_one_gives_all_ones_for_the_reference_gradient():
    p = param_with_grad([100, 200, 50])
    clip_grad_value([p], clip_value=1.0)
    np.testing.assert_array_equal(p.grad, [1, 1, 1])


def test_clip_grad_value_clamps_each_element_on_its_own():
    p = param_with_grad([0.5, -3.0, 2.0, -0.25])
    clip_grad_value([p], 1.0)
    np.testing.assert_array_equal(p.grad, [0.5, -1.0, 1.0, -0.25])


def test_norm_is_global_over_all_parameters():
    a, b = param_with_grad([3.0]), param_with_grad([[4.0]])
    assert clip_grad_norm([a, b], max_norm=1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(a.grad, [0.6], rtol=1e-5)
    np.testing.assert_allclose(b.grad, [[0.8]], rtol=1e-5)


def test_gradients_below_max_norm_are_unchanged_and_the_norm_is_still_returned():
    p = param_with_grad([0.3, 0.4])
    before = p.grad.copy()
    assert clip_grad_norm([p], max_norm=1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(p.grad, before)


def test_clipping_is_in_place():
    p = param_with_grad([30.0, 40.0])
    grad_array = p.grad
    clip_grad_norm([p], max_norm=1.0)
    assert p.grad is grad_array
    np.testing.assert_allclose(grad_array, [0.6, 0.8], rtol=1e-5)


def test_parameters_without_gradient_are_skipped():
    with_grad, without = param_with_grad([6.0, 8.0]), Parameter(np.ones(2, np.float32))
    assert clip_grad_norm([with_grad, without], max_norm=5.0) == pytest.approx(10.0)
    assert without.grad is None
    np.testing.assert_allclose(with_grad.grad, [3.0, 4.0], rtol=1e-5)
    clip_grad_value([without, with_grad], 1.0)
    assert without.grad is None


def test_no_gradients_at_all_gives_norm_zero():
    assert clip_grad_norm([Parameter(np.ones(3, np.float32))], max_norm=1.0) == 0.0


def test_returns_a_python_float():
    assert type(clip_grad_norm([param_with_grad([1.0, 2.0])], 1.0)) is float


def test_accepts_a_single_tensor_and_a_generator():
    p = param_with_grad([3.0, 4.0])
    assert clip_grad_norm(p, max_norm=10.0) == pytest.approx(5.0)
    assert clip_grad_norm((q for q in [p]), max_norm=10.0) == pytest.approx(5.0)


def test_norm_of_huge_float32_gradients_does_not_overflow():
    # 1e20 squared is 1e40, beyond float32's maximum (3.4e38): the sum must be float64.
    p = param_with_grad(np.full(4, 1e20))
    assert clip_grad_norm([p], max_norm=1.0) == pytest.approx(2e20, rel=1e-6)
    np.testing.assert_allclose(p.grad, np.full(4, 0.5), rtol=1e-5)


def test_non_finite_gradients_are_left_alone_and_their_norm_returned():
    p = param_with_grad([np.inf, 1.0])
    assert clip_grad_norm([p], max_norm=1.0) == np.inf
    np.testing.assert_array_equal(p.grad, [np.inf, 1.0])


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_max_norm_must_be_positive(bad):
    with pytest.raises(ValueError, match=f"max_norm must be > 0; got {bad}"):
        clip_grad_norm([param_with_grad([1.0])], max_norm=bad)


@pytest.mark.parametrize("bad", [0, -0.5])
def test_clip_value_must_be_positive(bad):
    with pytest.raises(ValueError, match=f"clip_value must be > 0; got {bad}"):
        clip_grad_value([param_with_grad([1.0])], bad)


def test_max_norm_must_be_a_number():
    with pytest.raises(TypeError, match="max_norm must be a number; got '1'"):
        clip_grad_norm([param_with_grad([1.0])], max_norm="1")


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(1, 8), elements=st.floats(-1e3, 1e3)),
       st.floats(0.01, 100.0))
def test_clipped_gradient_keeps_its_direction_and_has_norm_at_most_max_norm(grad, max_norm):
    p = param_with_grad(grad, dtype=np.float64)
    norm = clip_grad_norm([p], max_norm)
    expected_norm = np.sqrt(np.sum(grad ** 2))
    assert norm == pytest.approx(expected_norm)
    if expected_norm > max_norm:
        # PyTorch's rule: scale by max_norm / (norm + 1e-6), so the result is a hair under
        # max_norm; comparing with max_norm / norm would be off by ~1e-6 / norm.
        np.testing.assert_allclose(p.grad, grad * (max_norm / (expected_norm + 1e-6)), rtol=1e-9)
        assert np.linalg.norm(p.grad) <= max_norm
    else:
        np.testing.assert_array_equal(p.grad, grad)
