"""Chapter 13 — LayerNorm: PyTorch's defaults, the closed form's stored numbers
(tests/fixtures/layer_norm_formula.npz), finite-difference gradients for hypothesis-chosen
shapes, and the error messages."""
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytorch as tt

SETTINGS = dict(max_examples=25, deadline=None)


def _values(shape, seed=0):
    return np.random.default_rng(seed).uniform(-2.0, 2.0, size=shape)


ORACLE = Path(__file__).resolve().parent.parent / "fixtures" / "layer_norm_formula.npz"


def stored(name):
    """Layer norm over the last k axes (biased variance, eps 1e-5, then scale and shift)
    written in numpy by tools/make_oracle_fixtures.py, on this file's inputs."""
    with np.load(ORACLE, allow_pickle=False) as archive:
        return archive[name]


def test_layer_norm_starts_as_pytorch_with_weight_ones_and_bias_zeros():
    ln = tt.LayerNorm(6)
    assert [(n, p.shape) for n, p in ln.named_parameters()] == [("weight", (6,)), ("bias", (6,))]
    np.testing.assert_array_equal(ln.weight.data, np.ones(6, np.float32))
    np.testing.assert_array_equal(ln.bias.data, np.zeros(6, np.float32))
    assert ln.eps == 1e-5 and ln.weight.dtype == np.float32


def test_each_vector_comes_out_with_mean_zero_and_biased_variance_one():
    x = _values((3, 4, 16), 1) * 5 + 3
    y = tt.LayerNorm(16)(tt.Tensor(x)).data
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=-1), 1.0, rtol=1e-4)   # np.var is biased, as LN


shapes = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(2, 5))


def test_layer_norm_matches_the_numpy_formula():
    # every shape (1..3, 1..3, 2..5), normalised over its last 1 and last 2 axes
    cases = stored("cases").tolist()
    sizes = [a * b * c for a, b, c, _ in cases]
    expected = np.split(stored("formula_out"), np.cumsum(sizes)[:-1])
    for (a, b, c, k), want in zip(cases, expected):
        shape = (a, b, c)
        x, weight, bias = _values(shape, 1), _values(shape[-k:], 2), _values(shape[-k:], 3)
        out = tt.layer_norm(x, shape[-k:], tt.Tensor(weight), tt.Tensor(bias))
        np.testing.assert_allclose(out.data.ravel(), want, rtol=1e-10, atol=1e-12,
                                   err_msg=f"shape {shape}, last {k} axes")


@settings(**SETTINGS)
@given(shapes, st.integers(1, 2))
def test_layer_norm_gradients_match_finite_differences(shape, k):
    x, weight, bias = _values(shape, 1), _values(shape[-k:], 2), _values(shape[-k:], 3)
    assert tt.gradcheck(lambda x, w, b: tt.layer_norm(x, shape[-k:], w, b), x, weight, bias)


def test_layer_norm_without_affine_parameters_has_the_same_input_gradient_formula():
    x = _values((2, 3, 5), 4)
    assert tt.gradcheck(lambda x: tt.layer_norm(x, 5), x)
    ln = tt.LayerNorm(5, elementwise_affine=False)
    assert ln.parameters() == []
    np.testing.assert_allclose(ln(tt.Tensor(x)).data, stored("no_affine_out"), rtol=1e-10)


def test_positions_are_normalised_independently():
    x = _values((1, 4, 8), 5)
    changed = x.copy()
    changed[0, 2] *= 10
    ln = tt.LayerNorm(8)
    before, after = ln(tt.Tensor(x)).data, ln(tt.Tensor(changed)).data
    np.testing.assert_array_equal(np.delete(before, 2, axis=1), np.delete(after, 2, axis=1))


def test_a_constant_vector_normalises_to_the_bias_without_dividing_by_zero():
    ln = tt.LayerNorm(4)
    ln.bias.data[...] = [1, 2, 3, 4]
    x = tt.Tensor(np.full((2, 4), 7.0, np.float32), requires_grad=True)
    y = ln(x)
    np.testing.assert_allclose(y.data, [[1, 2, 3, 4]] * 2)
    y.sum().backward()
    assert np.all(np.isfinite(x.grad))


def test_a_trailing_shape_that_does_not_match_is_named():
    with pytest.raises(ValueError, match=re.escape("the last 1 dimension(s) of the input must "
                                                   "be (8,); got input of shape (2, 6)")):
        tt.LayerNorm(8)(tt.Tensor(np.zeros((2, 6), np.float32)))


@pytest.mark.parametrize("bad", [0, -3, (), (4, 0), 2.5])
def test_an_invalid_normalized_shape_is_refused(bad):
    with pytest.raises(ValueError, match="normalized_shape"):
        tt.LayerNorm(bad)
