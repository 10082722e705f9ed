"""Chapter 11 — cat, stack, where and masked_fill: values against numpy, gradients against
finite differences (float64, hypothesis choosing shapes and dims), and the errors that name
the shapes involved."""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytorch as tt

SETTINGS = dict(max_examples=25, deadline=None)
SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3)


def _values(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _mask(shape, seed=0):
    return np.random.default_rng(seed).random(shape) < 0.5


@st.composite
def cat_case(draw):
    """Shapes of 1-3 tensors equal except along ``dim`` (sizes 0-3 there), and ``dim``."""
    shape = draw(SHAPES)
    ndim = len(shape)
    dim = draw(st.integers(-ndim, ndim - 1))
    sizes = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    shapes = [shape[:dim % ndim] + (n,) + shape[dim % ndim + 1:] for n in sizes]
    return shapes, dim


@st.composite
def stack_case(draw):
    shape = draw(SHAPES)
    count = draw(st.integers(1, 3))
    dim = draw(st.integers(-(len(shape) + 1), len(shape)))
    return shape, count, dim


# --------------------------------------------------------------------------- cat
@settings(**SETTINGS)
@given(cat_case())
def test_cat_equals_numpy_concatenate(case):
    shapes, dim = case
    arrays = [_values(s, seed=i) for i, s in enumerate(shapes)]
    out = tt.cat([tt.Tensor(a) for a in arrays], dim=dim)
    np.testing.assert_array_equal(out.data, np.concatenate(arrays, axis=dim))


@settings(**SETTINGS)
@given(cat_case())
def test_cat_gradients_match_finite_differences(case):
    shapes, dim = case
    arrays = [_values(s, seed=i) for i, s in enumerate(shapes)]
    assert tt.gradcheck(lambda *ts: tt.cat(list(ts), dim=dim), *arrays)


def test_cat_gradient_is_the_output_gradient_cut_into_the_input_pieces():
    a = tt.Tensor(np.zeros((2, 1)), requires_grad=True)
    b = tt.Tensor(np.zeros((2, 3)), requires_grad=True)
    g = np.arange(8.0).reshape(2, 4)
    tt.cat([a, b], dim=1).backward(g)
    np.testing.assert_array_equal(a.grad, g[:, :1])
    np.testing.assert_array_equal(b.grad, g[:, 1:])


def test_cat_of_one_tensor_twice_adds_both_gradient_pieces():
    a = tt.Tensor(np.zeros(2), requires_grad=True)
    tt.cat([a, a]).backward(np.array([1.0, 2.0, 10.0, 20.0]))
    np.testing.assert_array_equal(a.grad, [11.0, 22.0])


def test_cat_accepts_a_tuple_and_numpy_arrays():
    out = tt.cat((np.ones(2), tt.Tensor(np.zeros(1))))
    np.testing.assert_array_equal(out.data, [1.0, 1.0, 0.0])


def test_cat_names_the_shapes_that_differ_outside_dim():
    with pytest.raises(ValueError, match=re.escape(
            "cat(): tensor 1 has shape (2, 4) but tensor 0 has shape (3, 4); they must match "
            "in every dimension except dim=1")):
        tt.cat([tt.Tensor(np.zeros((3, 4))), tt.Tensor(np.zeros((2, 4)))], dim=1)


def test_cat_names_the_shapes_of_tensors_with_different_ranks():
    with pytest.raises(ValueError, match=re.escape("tensor 1 has shape (3,) but tensor 0 has "
                                                   "shape (3, 4)")):
        tt.cat([tt.Tensor(np.zeros((3, 4))), tt.Tensor(np.zeros(3))])


def test_cat_of_an_empty_list_is_an_error():
    with pytest.raises(ValueError, match=re.escape("cat() needs at least one tensor")):
        tt.cat([])


def test_cat_rejects_a_single_tensor_instead_of_a_list():
    with pytest.raises(TypeError, match=re.escape("cat() takes a list or tuple of tensors; "
                                                  "got Tensor")):
        tt.cat(tt.Tensor(np.zeros(3)))


@pytest.mark.parametrize("dim", [2, -3])
def test_cat_rejects_a_dim_out_of_range(dim):
    with pytest.raises(IndexError, match=re.escape(
            f"dim {dim} is out of range for 2-dimensional tensors (valid: -2 to 1)")):
        tt.cat([tt.Tensor(np.zeros((2, 2)))] * 2, dim=dim)


# --------------------------------------------------------------------------- stack
@settings(**SETTINGS)
@given(stack_case())
def test_stack_equals_numpy_stack(case):
    shape, count, dim = case
    arrays = [_values(shape, seed=i) for i in range(count)]
    out = tt.stack([tt.Tensor(a) for a in arrays], dim=dim)
    np.testing.assert_array_equal(out.data, np.stack(arrays, axis=dim))


@settings(**SETTINGS)
@given(stack_case())
def test_stack_gradients_match_finite_differences(case):
    shape, count, dim = case
    arrays = [_values(shape, seed=i) for i in range(count)]
    assert tt.gradcheck(lambda *ts: tt.stack(list(ts), dim=dim), *arrays)


def test_stack_inserts_the_new_dimension_at_dim():
    parts = [tt.Tensor(np.zeros((2, 3)))] * 4
    assert [tt.stack(parts, dim=d).shape for d in (0, 1, 2, -1, -2, -3)] == [
        (4, 2, 3), (2, 4, 3), (2, 3, 4), (2, 3, 4), (2, 4, 3), (4, 2, 3)]


def test_stack_names_the_shapes_that_differ():
    with pytest.raises(ValueError, match=re.escape(
            "stack(): tensor 2 has shape (3, 1) but tensor 0 has shape (3,); stack needs "
            "tensors of equal shape")):
        tt.stack([np.zeros(3), np.zeros(3), np.zeros((3, 1))])


def test_stack_of_an_empty_list_is_an_error():
    with pytest.raises(ValueError, match=re.escape("stack() needs at least one tensor")):
        tt.stack([])


def test_stack_rejects_a_dim_out_of_range():
    with pytest.raises(IndexError, match=re.escape(
            "stack(): dim 3 is out of range for 3-dimensional tensors (valid: -3 to 2)")):
        tt.stack([np.zeros((2, 2))] * 2, dim=3)


# --------------------------------------------------------------------------- where
@st.composite
def broadcast_triple(draw):
    """Three shapes that broadcast together (condition, input, other)."""
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3,
                                                    max_side=3))
    return shapes.input_shapes


@settings(**SETTINGS)
@given(broadcast_triple(), st.integers(0, 1000))
def test_where_equals_numpy_where_with_broadcasting(shapes, seed):
    c_shape, x_shape, y_shape = shapes
    cond, x, y = _mask(c_shape, seed), _values(x_shape, seed), _values(y_shape, seed + 1)
    out = tt.where(cond, tt.Tensor(x), tt.Tensor(y))
    np.testing.assert_array_equal(out.data, np.where(cond, x, y))


@settings(**SETTINGS)
@given(broadcast_triple(), st.integers(0, 1000))
def test_where_gradients_match_finite_differences(shapes, seed):
    c_shape, x_shape, y_shape = shapes
    cond = _mask(c_shape, seed)
    assert tt.gradcheck(lambda x, y: tt.where(cond, x, y), _values(x_shape, seed),
                        _values(y_shape, seed + 1))


def test_where_sends_the_gradient_to_the_branch_that_was_chosen():
    cond = np.array([True, False, True])
    x = tt.Tensor(np.zeros(3), requires_grad=True)
    y = tt.Tensor(np.zeros(3), requires_grad=True)
    tt.where(cond, x, y).backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 3.0])
    np.testing.assert_array_equal(y.grad, [0.0, 2.0, 0.0])


def test_where_sums_the_gradient_of_a_broadcast_branch():
    cond = np.array([[True, False], [True, True]])
    x = tt.Tensor(np.zeros(2), requires_grad=True)      # broadcast over the rows
    tt.where(cond, x, 0.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_where_with_a_number_keeps_the_tensor_dtype(dtype):
    x = tt.Tensor(np.ones(3, dtype=dtype))
    assert tt.where(np.array([True, False, True]), x, 0.0).dtype == dtype
    assert tt.where(np.array([True, False, True]), -1, x).dtype == dtype


def test_where_accepts_a_boolean_tensor_as_condition():
    x = tt.Tensor(np.array([-1.0, 2.0]))
    np.testing.assert_array_equal(tt.where(tt.Tensor(x.data > 0), x, 0.0).data, [0.0, 2.0])


def test_where_rejects_a_condition_that_is_not_boolean():
    with pytest.raises(TypeError, match="condition must be a boolean array or Tensor; got "
                                        "dtype float64"):
        tt.where(np.array([1.0, 0.0]), tt.Tensor(np.ones(2)), 0.0)


def test_where_names_the_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError, match=re.escape(
            "where(): condition (3,), input (2,) and other () cannot be broadcast together")):
        tt.where(np.ones(3, dtype=bool), tt.Tensor(np.ones(2)), 0.0)


# --------------------------------------------------------------------------- masked_fill
@st.composite
def tensor_and_mask_shapes(draw):
    """A tensor shape and a mask shape that broadcasts to it (a suffix, some sides 1)."""
    shape = draw(SHAPES)
    kept = draw(st.integers(0, len(shape)))
    suffix = shape[len(shape) - kept:]
    mask = tuple(draw(st.sampled_from([1, n])) for n in suffix)
    return shape, mask


@settings(**SETTINGS)
@given(tensor_and_mask_shapes(), st.integers(0, 1000))
def test_masked_fill_equals_numpy_where(shapes, seed):
    shape, mask_shape = shapes
    x, mask = _values(shape, seed), _mask(mask_shape, seed)
    out = tt.Tensor(x).masked_fill(mask, -7.5)
    np.testing.assert_array_equal(out.data, np.where(mask, -7.5, x))
    assert out.shape == shape


@settings(**SETTINGS)
@given(tensor_and_mask_shapes(), st.integers(0, 1000))
def test_masked_fill_gradient_matches_finite_differences(shapes, seed):
    shape, mask_shape = shapes
    mask = _mask(mask_shape, seed)
    assert tt.gradcheck(lambda x: x.masked_fill(mask, 3.0), _values(shape, seed))


def test_masked_fill_gradient_is_zero_where_filled():
    x = tt.Tensor(np.ones((2, 2)), requires_grad=True)
    mask = np.array([[False, True], [True, False]])
    x.masked_fill(mask, float("-inf")).backward(np.full((2, 2), 5.0))
    np.testing.assert_array_equal(x.grad, [[5.0, 0.0], [0.0, 5.0]])


def test_masked_fill_with_minus_infinity_gives_a_causal_softmax():
    scores = tt.Tensor(np.zeros((3, 3), dtype=np.float32))
    future = np.triu(np.ones((3, 3), dtype=bool), k=1)
    probs = tt.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    np.testing.assert_allclose(probs.data, [[1, 0, 0], [1 / 2, 1 / 2, 0], [1 / 3, 1 / 3, 1 / 3]],
                               rtol=1e-6)
    assert probs.dtype == np.float32


def test_masked_fill_leaves_the_tensor_unchanged():
    x = tt.Tensor(np.ones(3))
    x.masked_fill(np.array([True, True, True]), 0.0)
    np.testing.assert_array_equal(x.data, np.ones(3))


def test_masked_fill_names_a_mask_that_does_not_broadcast():
    with pytest.raises(ValueError, match=re.escape(
            "masked_fill: mask of shape (3,) does not broadcast to the tensor's shape (2, 4)")):
        tt.Tensor(np.zeros((2, 4))).masked_fill(np.ones(3, dtype=bool), 0.0)


def test_masked_fill_rejects_a_mask_that_would_enlarge_the_tensor():
    with pytest.raises(ValueError, match=re.escape(
            "mask of shape (2, 4) does not broadcast to the tensor's shape (4,)")):
        tt.Tensor(np.zeros(4)).masked_fill(np.ones((2, 4), dtype=bool), 0.0)


def test_masked_fill_rejects_a_mask_that_is_not_boolean():
    with pytest.raises(TypeError, match="mask must be boolean; got dtype int64"):
        tt.Tensor(np.zeros(2)).masked_fill(np.array([0, 1]), 0.0)
