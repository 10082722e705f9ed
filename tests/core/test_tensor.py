"""Chapter 01 — Tensor: construction, dtypes, broadcasting, matmul, shape operations."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytorch as tt


def test_python_numbers_and_lists_become_float32():
    assert tt.Tensor(3).dtype == np.float32
    assert tt.Tensor([[1, 2], [3, 4]]).dtype == np.float32


def test_numpy_arrays_keep_their_dtype():
    assert tt.Tensor(np.zeros(3, dtype=np.float64)).dtype == np.float64
    assert tt.Tensor(np.array([1, 2], dtype=np.int64)).dtype == np.int64


def test_nbytes_is_elements_times_itemsize():
    t = tt.Tensor(np.zeros((1000, 1000), dtype=np.float16))
    assert t.nbytes == 1000 * 1000 * 2


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="int64"):
        tt.Tensor(np.array([1, 2]), requires_grad=True)


def test_scalar_arithmetic_keeps_float32():
    t = tt.Tensor([1.0, 2.0])
    for result in (t + 1, 1 - t, t * 2.5, 3 / t, t ** 2, -t):
        assert result.dtype == np.float32


def test_arithmetic_with_numpy_array_on_the_left_returns_tensor():
    out = np.ones(2, dtype=np.float32) * tt.Tensor([2.0, 3.0])
    assert isinstance(out, tt.Tensor)
    np.testing.assert_array_equal(out.data, [2.0, 3.0])


@settings(max_examples=30, deadline=None)
@given(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4))
def test_broadcasting_matches_numpy(shapes):
    a = np.arange(np.prod(shapes.input_shapes[0]), dtype=np.float32).reshape(shapes.input_shapes[0])
    b = np.ones(shapes.input_shapes[1], dtype=np.float32)
    out = tt.Tensor(a) + tt.Tensor(b)
    assert out.shape == shapes.result_shape
    np.testing.assert_array_equal(out.data, a + b)


def test_incompatible_shapes_name_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        tt.Tensor(np.zeros((2, 3))) + tt.Tensor(np.zeros(4))


def test_matmul_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    np.testing.assert_allclose((tt.Tensor(a) @ tt.Tensor(b)).data, a @ b)


def test_matmul_shape_mismatch_names_the_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5, 2\).*4.*5"):
        tt.Tensor(np.zeros((3, 4))) @ tt.Tensor(np.zeros((5, 2)))


def test_matmul_rejects_zero_dimensional_operand():
    with pytest.raises(ValueError, match=r"\(\)"):
        tt.Tensor(np.zeros(3)) @ tt.Tensor(np.float64(2.0))


def test_reshape_accepts_tuple_or_varargs():
    t = tt.Tensor(np.arange(6.0))
    assert t.reshape(2, 3).shape == (2, 3)
    assert t.reshape((3, 2)).shape == (3, 2)


def test_reshape_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(6,\).*\(4,\)"):
        tt.Tensor(np.arange(6.0)).reshape(4)


def test_transpose_swaps_two_axes_like_pytorch():
    t = tt.Tensor(np.zeros((2, 3, 4)))
    assert t.transpose(0, 2).shape == (4, 3, 2)
    assert t.T.shape == (4, 3, 2)


def test_reductions_match_numpy():
    x = np.random.default_rng(1).standard_normal((3, 4))
    t = tt.Tensor(x)
    np.testing.assert_allclose(t.sum(axis=1).data, x.sum(axis=1))
    np.testing.assert_allclose(t.mean(axis=0, keepdims=True).data, x.mean(axis=0, keepdims=True))
    np.testing.assert_allclose(t.max().data, x.max())


def test_item_requires_one_element():
    assert tt.Tensor([2.5]).item() == 2.5
    with pytest.raises(ValueError, match=r"\(2,\)"):
        tt.Tensor([1.0, 2.0]).item()


def test_indexing_returns_the_selected_values():
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(tt.Tensor(x)[1:, [0, 3]].data, x[1:, [0, 3]])


@given(st.lists(st.floats(-1e3, 1e3, width=32), min_size=1, max_size=20))
def test_repr_shows_the_values(values):
    assert repr(tt.Tensor(values)).startswith("Tensor(")


def test_transpose_of_two_dims_swaps_them_on_a_square_matrix_too():
    x = np.arange(4, dtype=np.float32).reshape(2, 2)
    np.testing.assert_array_equal(tt.Tensor(x).transpose(0, 1).data, x.T)
    np.testing.assert_array_equal(tt.Tensor(x).transpose(1, 1).data, x)


def test_permute_reorders_dims_and_refuses_a_non_permutation():
    x = np.zeros((2, 3, 4), dtype=np.float32)
    assert tt.Tensor(x).permute(2, 0, 1).shape == (4, 2, 3)
    with pytest.raises(ValueError, match=r"not a permutation"):
        tt.Tensor(x).permute(0, 0, 1)


def test_dim_and_keepdim_are_accepted_with_axis_as_an_alias():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = tt.Tensor(x)
    np.testing.assert_array_equal(t.sum(dim=1, keepdim=True).data, x.sum(axis=1, keepdims=True))
    np.testing.assert_array_equal(t.sum(axis=1).data, t.sum(1).data)
    np.testing.assert_array_equal(t.max(dim=0).data, x.max(axis=0))
    np.testing.assert_array_equal(t.argmax(dim=1).data, x.argmax(axis=1))
    with pytest.raises(TypeError, match="not both"):
        t.sum(dim=0, axis=0)


def test_var_matches_numpy_with_and_without_correction():
    x = np.random.default_rng(0).standard_normal((4, 5))
    np.testing.assert_allclose(tt.Tensor(x).var(dim=1).data, x.var(axis=1, ddof=1))
    np.testing.assert_allclose(tt.Tensor(x).var(dim=1, correction=0).data, x.var(axis=1))


def test_mean_of_an_empty_tensor_names_the_shape():
    with pytest.raises(ValueError, match=r"empty.*\(0, 3\)"):
        tt.Tensor(np.zeros((0, 3), dtype=np.float32)).mean()


def test_batched_matmul_with_unbroadcastable_batch_dims_names_the_shapes():
    a, b = tt.Tensor(np.ones((2, 3, 4))), tt.Tensor(np.ones((5, 4, 2)))
    with pytest.raises(ValueError, match=r"batch dimensions \(2,\) and \(5,\)"):
        a @ b


def test_an_empty_dim_tuple_reduces_every_dimension_as_in_pytorch():
    # torch.arange(6.).reshape(2, 3).sum(dim=()) is tensor(15.); numpy's axis=() would
    # reduce nothing and return the (2, 3) array unchanged.
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = tt.Tensor(x)
    assert t.sum(dim=()).shape == () and t.sum(dim=()).item() == 15.0
    assert t.sum(dim=[]).item() == 15.0
    assert t.sum(dim=(), keepdim=True).shape == (1, 1)
    assert t.mean(dim=()).item() == 2.5
    assert t.var(dim=()).item() == 3.5
    assert t.max(dim=()).item() == 5.0
