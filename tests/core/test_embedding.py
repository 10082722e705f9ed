"""Chapter 11 — Embedding and positional encodings: lookup equals indexing the table, the
gradient of repeated ids adds up, the sinusoidal table equals its closed form, gradients
against finite differences, and the errors that name the bad id or length."""
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytorch as tt

SETTINGS = dict(max_examples=25, deadline=None)
ID_SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


def _ids(shape, num_embeddings, seed=0, dtype=np.int64):
    return np.random.default_rng(seed).integers(0, num_embeddings, size=shape).astype(dtype)


def _values(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# --------------------------------------------------------------------------- Embedding
def test_embedding_weight_has_the_table_shape_and_is_float32():
    table = tt.Embedding(50, 8)
    assert table.weight.shape == (50, 8) and table.weight.dtype == np.float32
    assert [name for name, _ in table.named_parameters()] == ["weight"]


def test_embedding_weight_is_standard_normal_from_the_shared_generator():
    tt.manual_seed(3)
    weight = tt.Embedding(400, 25).weight.data
    expected = np.random.default_rng(3).standard_normal((400, 25)).astype(np.float32)
    np.testing.assert_array_equal(weight, expected)
    assert abs(weight.mean()) < 0.02 and abs(weight.std() - 1) < 0.02


@settings(**SETTINGS)
@given(ID_SHAPES, st.sampled_from([np.int8, np.uint8, np.int32, np.int64]), st.integers(0, 99))
def test_embedding_lookup_equals_indexing_the_weight(shape, dtype, seed):
    table = tt.Embedding(7, 3)
    ids = _ids(shape, 7, seed, dtype)
    out = table(ids)
    assert out.shape == shape + (3,)
    np.testing.assert_array_equal(out.data, table.weight.data[ids])


def test_embedding_lookup_equals_one_hot_rows_times_the_weight():
    table = tt.Embedding(6, 4)
    ids = np.array([5, 0, 2, 2])
    one_hot = np.eye(6, dtype=np.float32)[ids]
    np.testing.assert_allclose(table(ids).data, one_hot @ table.weight.data, rtol=1e-6)


def test_embedding_accepts_an_integer_tensor_of_ids():
    table = tt.Embedding(5, 2)
    ids = np.array([[4, 0], [1, 1]])
    np.testing.assert_array_equal(table(tt.Tensor(ids)).data, table.weight.data[ids])


def test_embedding_gradient_of_a_repeated_id_is_the_count_of_its_occurrences():
    table = tt.Embedding(6, 3)
    ids = np.array([[1, 4, 1], [1, 0, 4]])                 # 1 three times, 4 twice, 0 once
    table(ids).sum().backward()
    counts = np.bincount(ids.ravel(), minlength=6)
    np.testing.assert_array_equal(table.weight.grad, np.repeat(counts[:, None], 3, axis=1))
    assert counts.tolist() == [1, 3, 0, 0, 2, 0]


@settings(**SETTINGS)
@given(ID_SHAPES, st.integers(0, 99))
def test_embedding_gradient_equals_add_at_of_the_output_gradient(shape, seed):
    weight = tt.Tensor(_values((5, 3), seed), requires_grad=True)
    ids = _ids(shape, 5, seed)
    g = _values(shape + (3,), seed + 1)
    tt.embedding(ids, weight).backward(g)
    expected = np.zeros((5, 3))
    np.add.at(expected, ids, g)
    np.testing.assert_allclose(weight.grad, expected, rtol=1e-12, atol=1e-12)


@settings(**SETTINGS)
@given(hnp.array_shapes(min_dims=1, max_dims=2, max_side=4), st.integers(0, 99))
def test_embedding_gradient_matches_finite_differences(shape, seed):
    ids = _ids(shape, 4, seed)
    assert tt.gradcheck(lambda w: tt.embedding(ids, w), _values((4, 3), seed))


def test_embedding_of_no_ids_is_empty_and_its_gradient_is_zero():
    table = tt.Embedding(4, 2)
    out = table(np.zeros((0, 3), dtype=np.int64))
    assert out.shape == (0, 3, 2)
    out.backward(np.zeros((0, 3, 2), dtype=np.float32))
    np.testing.assert_array_equal(table.weight.grad, np.zeros((4, 2)))


@pytest.mark.parametrize("bad", [10, 12, -1])
def test_embedding_names_an_id_outside_the_table_and_the_table_size(bad):
    with pytest.raises(IndexError, match=re.escape(
            f"id {bad} is out of range for a table of 10 embeddings (valid ids: 0 to 9)")):
        tt.Embedding(10, 4)(np.array([[0, 3], [bad, 9]]))


def test_embedding_rejects_ids_that_are_not_integers():
    with pytest.raises(TypeError, match="ids must be integers; got dtype float32"):
        tt.Embedding(10, 4)(tt.Tensor([1, 2, 3]))


@pytest.mark.parametrize("args", [(0, 4), (10, 0), (2.5, 4)])
def test_embedding_rejects_a_table_size_that_is_not_a_positive_int(args):
    with pytest.raises((TypeError, ValueError), match="num_embeddings|embedding_dim"):
        tt.Embedding(*args)


# --------------------------------------------------------------------------- sinusoidal
ORACLE = Path(__file__).resolve().parent.parent / "fixtures" / "sinusoidal_closed_form.npz"


def _stored_closed_form(max_len, dim):
    """Vaswani et al.'s definition, element by element, computed by
    tools/make_oracle_fixtures.py (float64) and stored."""
    with np.load(ORACLE, allow_pickle=False) as archive:
        return archive[f"table_{max_len}x{dim}"]


@pytest.mark.parametrize("max_len, dim", [(1, 1), (7, 2), (50, 16), (20, 7)])
def test_sinusoidal_table_equals_the_closed_form(max_len, dim):
    table = tt.sinusoidal_encoding(max_len, dim)
    assert table.shape == (max_len, dim) and table.dtype == np.float32
    np.testing.assert_allclose(table, _stored_closed_form(max_len, dim), atol=1e-6)


def test_sinusoidal_rows_have_norm_sqrt_of_half_the_dim():
    table = tt.sinusoidal_encoding(100, 32).astype(np.float64)    # sin^2 + cos^2 per pair
    np.testing.assert_allclose(np.linalg.norm(table, axis=1), math.sqrt(16), rtol=1e-6)


@settings(**SETTINGS)
@given(st.integers(1, 6), st.integers(0, 99))
def test_sinusoidal_encoding_adds_row_t_to_position_t(length, seed):
    module = tt.SinusoidalPositionalEncoding(6, 4)
    x = _values((2, length, 4), seed).astype(np.float32)
    out = module(tt.Tensor(x))
    np.testing.assert_allclose(out.data, x + _stored_closed_form(6, 4)[:length], atol=1e-6)
    assert out.dtype == np.float32


def test_sinusoidal_encoding_learns_nothing_and_passes_the_gradient_through():
    module = tt.SinusoidalPositionalEncoding(8, 4)
    assert module.parameters() == []
    assert tt.gradcheck(module, _values((2, 5, 4)))


def test_sinusoidal_encoding_names_a_length_beyond_max_len():
    with pytest.raises(ValueError, match=re.escape(
            "the input has 9 positions but the table holds max_len=8")):
        tt.SinusoidalPositionalEncoding(8, 4)(np.zeros((2, 9, 4), dtype=np.float32))


def test_sinusoidal_encoding_names_an_input_of_the_wrong_width():
    with pytest.raises(ValueError, match=re.escape(
            "expected input of shape (..., T, 4); got (2, 3, 5)")):
        tt.SinusoidalPositionalEncoding(8, 4)(np.zeros((2, 3, 5), dtype=np.float32))


# --------------------------------------------------------------------------- learned
def test_learned_positional_embedding_adds_row_t_to_position_t():
    module = tt.LearnedPositionalEmbedding(6, 3)
    x = _values((2, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(module(x).data, x + module.weight.data[:4])
    assert module.weight.shape == (6, 3)
    assert [name for name, _ in module.named_parameters()] == ["weight"]


def test_learned_positional_gradient_is_summed_over_the_batch_on_the_used_rows_only():
    module = tt.LearnedPositionalEmbedding(5, 2)
    g = _values((3, 4, 2), seed=1).astype(np.float32)
    module(np.zeros((3, 4, 2), dtype=np.float32)).backward(g)
    np.testing.assert_allclose(module.weight.grad[:4], g.sum(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(module.weight.grad[4:], 0.0)


@settings(**SETTINGS)
@given(st.integers(1, 5), st.integers(0, 99))
def test_learned_positional_gradients_match_finite_differences(length, seed):
    module = tt.LearnedPositionalEmbedding(5, 3)

    def forward(x, weight):
        module.weight = weight
        return module(x)

    assert tt.gradcheck(forward, _values((2, length, 3), seed), _values((5, 3), seed + 1))


def test_learned_positional_embedding_names_a_length_beyond_max_len():
    with pytest.raises(ValueError, match=re.escape(
            "LearnedPositionalEmbedding: the input has 6 positions but the table holds "
            "max_len=5")):
        tt.LearnedPositionalEmbedding(5, 3)(np.zeros((6, 3), dtype=np.float32))
