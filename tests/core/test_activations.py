"""Chapter 02 — Activations: each function's values and derivative against closed forms and
finite differences, softmax's normalisation and shift invariance, and numerical stability
at logits of ±1000.

This chapter comes before the engine (chapter 06): every gradient here is read from the
operation's own backward rule (``tt.gradcheck(..., rule_only=True)``, ``tt.rule_gradients``),
so these tests pass while the engine is still a stub."""
import functools
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytorch as tt

SETTINGS = dict(max_examples=25, deadline=None)
gradcheck = functools.partial(tt.gradcheck, rule_only=True)
# Overflow, 0/0 and log(0) are errors; underflow to 0 (exp(-2000)) is the correct answer.
NO_OVERFLOW = dict(over="raise", divide="raise", invalid="raise")
SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)
ORACLE = Path(__file__).resolve().parent.parent / "fixtures" / "activations_closed_form.npz"


def stored(name):
    """sigmoid and tanh from their exponential definitions and their derivatives, computed
    by tools/make_oracle_fixtures.py on this file's points (float64)."""
    with np.load(ORACLE, allow_pickle=False) as archive:
        return archive[name]


def _arrays(shape, low=-3.0, high=3.0, away_from_zero=False):
    elements = st.floats(low, high, allow_nan=False, allow_infinity=False)
    if away_from_zero:  # ReLU has a kink at 0 that finite differences cannot straddle
        elements = elements.filter(lambda v: abs(v) > 1e-3)
    return hnp.arrays(np.float64, shape, elements=elements)


@st.composite
def _shape_and_values(draw, **kwargs):
    shape = draw(SHAPES)
    return draw(_arrays(shape, **kwargs))


@st.composite
def _values_and_dim(draw):
    x = draw(_shape_and_values())
    dim = draw(st.integers(-x.ndim, x.ndim - 1))
    return x, dim


def _derivative(fn, x):
    """d fn(x) / dx elementwise: the rule's answer for an upstream gradient of ones."""
    out = fn(tt.Tensor(x, requires_grad=True))
    return tt.rule_gradients(out, np.ones(out.shape))[0]


# --------------------------------------------------------------------------- gradients
@settings(**SETTINGS)
@given(_shape_and_values(away_from_zero=True))
def test_relu_gradient_matches_finite_differences(x):
    assert gradcheck(tt.relu, x)


@settings(**SETTINGS)
@given(_shape_and_values(), st.sampled_from(["sigmoid", "tanh", "gelu"]))
def test_smooth_activation_gradients_match_finite_differences(x, name):
    assert gradcheck(getattr(tt, name), x)


@settings(**SETTINGS)
@given(_values_and_dim(), st.sampled_from(["softmax", "log_softmax"]))
def test_softmax_and_log_softmax_gradients_match_finite_differences(x_and_dim, name):
    x, dim = x_and_dim
    fn = getattr(tt, name)
    assert gradcheck(lambda t: fn(t, dim=dim), x)


# --------------------------------------------------------------------------- values
def test_relu_values_and_derivative():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(tt.relu(tt.Tensor(x)).data, [0, 0, 0, 0.5, 3.0])
    np.testing.assert_array_equal(_derivative(tt.relu, x), [0, 0, 0, 1, 1])


def test_sigmoid_values_and_derivative_match_closed_form():
    x = np.linspace(-6, 6, 13)
    np.testing.assert_allclose(tt.sigmoid(tt.Tensor(x)).data, stored("sigmoid"), rtol=1e-12)
    np.testing.assert_allclose(_derivative(tt.sigmoid, x), stored("sigmoid_derivative"),
                               rtol=1e-12)


def test_tanh_values_and_derivative_match_closed_form():
    x = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(tt.tanh(tt.Tensor(x)).data, stored("tanh"), rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(_derivative(tt.tanh, x), stored("tanh_derivative"), rtol=1e-12)


@pytest.mark.parametrize("x", [-3.0, -1.0, -0.1, 0.0, 0.5, 1.0, 2.5])
def test_gelu_tanh_matches_tanh_formula(x):
    expected = 0.5 * x * (1 + math.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    got = tt.gelu(tt.Tensor(np.array([x])), approximate="tanh").item()
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_gelu_default_is_the_exact_erf_form_like_pytorch():
    x = np.linspace(-6, 6, 241)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
    np.testing.assert_allclose(tt.gelu(tt.Tensor(x)).data, exact, rtol=3e-7, atol=1e-12)
    np.testing.assert_allclose(tt.GELU()(tt.Tensor(x)).data, exact, rtol=3e-7, atol=1e-12)
    tanh_form = tt.gelu(tt.Tensor(x), approximate="tanh").data
    assert 1e-4 < np.abs(tanh_form - exact).max() < 5e-4  # the two forms really differ


@given(st.floats(-30, 30, allow_nan=False))
def test_erf_matches_math_erf_to_float32_precision(v):
    from tinytorch.core.activations import erf
    expected = math.erf(v)
    assert erf(np.array([v]))[0] == pytest.approx(expected, rel=2.5e-7, abs=1e-300)


def test_gelu_rejects_an_unknown_approximation():
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'; got 'fast'"):
        tt.GELU(approximate="fast")


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_gradient_matches_finite_differences(approximate):
    x = np.linspace(-4, 4, 33)
    assert gradcheck(lambda t: tt.gelu(t, approximate=approximate), x)


def test_relu_backward_sends_zero_not_nan_for_an_infinite_upstream_gradient():
    x = tt.Tensor(np.array([-1.0, 0.0, 4.0]), requires_grad=True)
    upstream = np.array([np.inf, np.inf, 0.25])  # what sqrt sends back: d sqrt at 0 is inf
    with np.errstate(invalid="ignore"):
        (grad,) = tt.rule_gradients(tt.relu(x), upstream)
    np.testing.assert_array_equal(grad, [0.0, 0.0, 0.25])  # ReLU's zero slope wins


def test_activations_keep_float32():
    x = tt.Tensor([[-1.0, 0.5, 2.0]])
    for fn in (tt.relu, tt.sigmoid, tt.tanh, tt.gelu, tt.softmax, tt.log_softmax):
        assert fn(x).dtype == np.float32, fn.__name__


@pytest.mark.parametrize("module, function", [
    (tt.ReLU(), tt.relu), (tt.Sigmoid(), tt.sigmoid), (tt.Tanh(), tt.tanh),
    (tt.GELU(), tt.gelu), (tt.Softmax(), tt.softmax), (tt.LogSoftmax(), tt.log_softmax)])
def test_modules_compute_their_functional_form(module, function):
    x = tt.Tensor(np.random.default_rng(0).normal(size=(3, 4)))
    np.testing.assert_array_equal(module(x).data, function(x).data)


def test_softmax_module_uses_its_dim():
    x = tt.Tensor(np.random.default_rng(0).normal(size=(3, 4)))
    np.testing.assert_allclose(tt.Softmax(dim=0)(x).data.sum(axis=0), np.ones(4))


# --------------------------------------------------------------------------- softmax
@settings(**SETTINGS)
@given(_values_and_dim())
def test_softmax_slices_along_dim_sum_to_one(x_and_dim):
    x, dim = x_and_dim
    s = tt.softmax(tt.Tensor(x), dim=dim).data
    assert np.all(s > 0)
    np.testing.assert_allclose(s.sum(axis=dim), 1.0, rtol=1e-12)


@settings(**SETTINGS)
@given(_values_and_dim(), st.floats(-500, 500))
def test_softmax_is_invariant_to_adding_a_constant(x_and_dim, c):
    x, dim = x_and_dim
    np.testing.assert_allclose(tt.softmax(tt.Tensor(x + c), dim=dim).data,
                               tt.softmax(tt.Tensor(x), dim=dim).data, rtol=1e-9, atol=1e-12)


def test_softmax_of_huge_logits_is_finite_and_correct():
    logits = np.array([[1000.0, 999.0, -1000.0], [-1000.0, -1000.0, -999.0]])
    e1 = math.exp(-1)
    # closed form on logits shifted by each row's max: [0, -1, -2000] and [-1, -1, 0]
    expected = np.array([[1 / (1 + e1), e1 / (1 + e1), 0.0],
                         [e1 / (1 + 2 * e1), e1 / (1 + 2 * e1), 1 / (1 + 2 * e1)]])
    with np.errstate(**NO_OVERFLOW):
        s = tt.softmax(tt.Tensor(logits)).data
    np.testing.assert_allclose(s, expected, rtol=1e-12)


def test_log_softmax_of_huge_logits_is_finite_and_correct():
    logits = np.array([[1000.0, 0.0, -1000.0]])
    with np.errstate(**NO_OVERFLOW):
        out = tt.log_softmax(tt.Tensor(logits)).data
    np.testing.assert_allclose(out, [[0.0, -1000.0, -2000.0]], rtol=1e-12)


def test_softmax_backward_on_huge_logits_is_finite():
    x = tt.Tensor(np.array([[1000.0, -1000.0, 0.0]]), requires_grad=True)
    with np.errstate(**NO_OVERFLOW):
        (grad,) = tt.rule_gradients(tt.softmax(x), np.array([[1.0, 2.0, 3.0]]))
    assert np.all(np.isfinite(grad))


def test_softmax_rejects_dim_out_of_range():
    with pytest.raises(ValueError, match=r"dim 2 is out of range for a tensor of shape \(3, 4\)"):
        tt.softmax(tt.Tensor(np.zeros((3, 4))), dim=2)


# --------------------------------------------------------------------------- sigmoid
def test_sigmoid_of_plus_minus_1000_is_finite_without_warnings():
    x = tt.Tensor(np.array([-1000.0, 0.0, 1000.0]), requires_grad=True)
    with warnings.catch_warnings(), np.errstate(**NO_OVERFLOW):
        warnings.simplefilter("error")
        s = tt.sigmoid(x)
        (grad,) = tt.rule_gradients(s, np.ones(3))
    np.testing.assert_array_equal(s.data, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(grad, [0.0, 0.25, 0.0])


def test_sigmoid_of_plus_minus_1000_in_float32_is_finite_without_warnings():
    x = tt.Tensor(np.array([-1000.0, 1000.0], dtype=np.float32))
    with warnings.catch_warnings(), np.errstate(**NO_OVERFLOW):
        warnings.simplefilter("error")
        s = tt.sigmoid(x).data
    np.testing.assert_array_equal(s, [0.0, 1.0])


def test_relu_propagates_nan_like_pytorch():
    out = tt.relu(tt.Tensor(np.array([np.nan, -1.0, 2.0], dtype=np.float32)))
    assert np.isnan(out.data[0])
    np.testing.assert_array_equal(out.data[1:], [0.0, 2.0])
    assert out.dtype == np.float32
