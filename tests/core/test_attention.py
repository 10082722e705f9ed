"""Chapter 12 — Attention: scaled_dot_product_attention and MultiHeadAttention against the
closed form's stored numbers (tests/fixtures/attention_formula.npz), finite-difference
gradients with every kind of mask, causality, permutation equivariance, the key/value-cache
seam, and the error messages."""
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytorch as tt

SETTINGS = dict(max_examples=20, deadline=None)

# (batch, heads, T queries, S keys, d features, e value features)
dims = st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 4), st.integers(1, 4),
                 st.integers(1, 3), st.integers(1, 3))


def _values(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=shape)


def _qkv(b, h, t, s, d, e, seed=0):
    return _values((b, h, t, d), seed), _values((b, h, s, d), seed + 1), _values((b, h, s, e),
                                                                                   seed + 2)


ORACLE = Path(__file__).resolve().parent.parent / "fixtures" / "attention_formula.npz"


def stored(name):
    """softmax(q k^T / sqrt(d) + mask) v written in numpy (masks built with two loops, the
    layer's heads one by one) by tools/make_oracle_fixtures.py, on this file's inputs."""
    with np.load(ORACLE, allow_pickle=False) as archive:
        return archive[name]


def fill_parameters(module, scale=0.3):
    """Every parameter set to ``_values(shape, seed=its size) * scale``, as the oracle's."""
    for p in module.parameters():
        p.data[...] = _values(p.shape, p.size) * scale
    return module


# --------------------------------------------------------------------------- the function
def test_attention_matches_the_numpy_formula():
    # every T, S in 1..4 and d, e in 1..3 (144 shapes), batch and heads cycling through 1..2
    rows = stored("geometries")
    sizes = [b * h * t * e for b, h, t, s, d, e in rows.tolist()]
    expected = np.split(stored("formula_out"), np.cumsum(sizes)[:-1])
    for shape, want in zip(map(tuple, rows.tolist()), expected):
        out = tt.scaled_dot_product_attention(*_qkv(*shape))
        assert out.shape == shape[:3] + (shape[5],)
        np.testing.assert_allclose(out.data.ravel(), want, rtol=1e-12, atol=1e-12,
                                   err_msg=f"(B, H, T, S, d, e) = {shape}")


def test_attention_broadcasts_batch_dimensions_and_takes_an_explicit_scale():
    q, k, v = _values((2, 3, 4, 5)), _values((1, 3, 6, 5), 1), _values((6, 2), 2)
    out = tt.scaled_dot_product_attention(q, k, v, scale=0.5)
    np.testing.assert_allclose(out.data, stored("broadcast_scale_out"), rtol=1e-12)


def test_a_boolean_mask_allows_where_true_like_an_additive_mask_of_zero_and_minus_infinity():
    q, k, v = _qkv(2, 2, 3, 5, 4, 3)
    allowed = np.random.default_rng(3).random((3, 5)) > 0.4
    allowed[:, 0] = True                                    # every query sees some key
    additive = np.where(allowed, 0.0, -np.inf)
    by_bool = tt.scaled_dot_product_attention(q, k, v, allowed).data
    np.testing.assert_allclose(by_bool, stored("bool_mask_out"), rtol=1e-12)
    by_float = tt.scaled_dot_product_attention(q, k, v, additive).data
    np.testing.assert_array_equal(by_bool, by_float)


def test_a_float_mask_is_added_to_the_scores():
    q, k, v = _qkv(1, 2, 3, 4, 2, 2)
    bias = _values((2, 1, 4), 7) * 3                         # broadcasts over queries
    out = tt.scaled_dot_product_attention(q, k, v, bias)
    np.testing.assert_allclose(out.data, stored("float_mask_out"), rtol=1e-12)


@pytest.mark.parametrize("t, s", [(4, 4), (3, 5), (5, 3)])
def test_is_causal_is_the_top_left_aligned_lower_triangle_as_in_pytorch(t, s):
    q, k, v = _qkv(1, 2, t, s, 3, 2)
    out = tt.scaled_dot_product_attention(q, k, v, is_causal=True)
    np.testing.assert_allclose(out.data, stored(f"causal_out_{t}x{s}"), rtol=1e-12)


@pytest.mark.parametrize("t, s", [(4, 4), (2, 5), (1, 6)])
def test_the_lower_right_causal_mask_lets_the_last_query_see_every_key(t, s):
    mask = tt.causal_mask(t, s, lower_right=True, dtype=np.float64)
    np.testing.assert_array_equal(mask, stored(f"lower_right_{t}x{s}"))
    assert np.all(mask[-1] == 0)


def test_the_causal_mask_is_cached_and_read_only():
    mask = tt.causal_mask(5)
    assert mask is tt.causal_mask(5) and mask.dtype == np.float32
    with pytest.raises(ValueError):
        mask[0, 0] = 1.0


def test_a_query_that_may_see_no_key_gets_zeros_not_nan_as_in_pytorch():
    q, k, v = _qkv(1, 1, 3, 4, 2, 2)
    allowed = np.ones((3, 4), dtype=bool)
    allowed[1] = False
    qt = tt.Tensor(q, requires_grad=True)
    out = tt.scaled_dot_product_attention(qt, k, v, allowed)
    np.testing.assert_array_equal(out.data[0, 0, 1], [0.0, 0.0])
    np.testing.assert_allclose(out.data[0, 0, [0, 2]], stored("unmasked_out")[0, 0, [0, 2]],
                               rtol=1e-12)
    out.sum().backward()
    assert np.all(np.isfinite(qt.grad)) and np.all(qt.grad[0, 0, 1] == 0)


def test_attention_weights_are_rows_summing_to_one_and_times_v_give_the_fused_output():
    q, k, v = _qkv(2, 2, 4, 4, 3, 2)
    weights = tt.attention_weights(q, k, is_causal=True)
    np.testing.assert_allclose(weights.data.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(np.triu(weights.data[0, 0], k=1) == 0)
    fused = tt.scaled_dot_product_attention(q, k, v, is_causal=True)
    np.testing.assert_allclose((weights @ tt.Tensor(v)).data, fused.data, rtol=1e-12)


def test_dropout_zeroes_attention_weights_and_rescales_the_rest():
    q, k, v = _qkv(1, 1, 3, 3, 2, 2)
    out = tt.scaled_dot_product_attention(q, k, v, dropout_p=0.5,
                                          generator=np.random.default_rng(0))
    keep = np.random.default_rng(0).random((1, 1, 3, 3)) >= 0.5
    weights = tt.attention_weights(q, k).data
    np.testing.assert_allclose(out.data, (weights * keep * 2.0) @ v, rtol=1e-12)


# --------------------------------------------------------------------------- gradients
def _mask_for(kind, t, s, seed):
    if kind == "none":
        return None, False
    if kind == "causal":
        return None, True
    allowed = np.random.default_rng(seed).random((t, s)) > 0.5
    allowed[:, 0] = True
    if kind == "boolean":
        return allowed, False
    return np.where(allowed, 0.0, -np.inf) + _values((t, s), seed), False   # additive


@settings(**SETTINGS)
@given(dims, st.sampled_from(["none", "boolean", "additive", "causal"]))
def test_attention_gradients_match_finite_differences(shape, kind):
    q, k, v = _qkv(*shape)
    mask, is_causal = _mask_for(kind, shape[2], shape[3], seed=sum(shape))
    assert tt.gradcheck(lambda q, k, v: tt.scaled_dot_product_attention(
        q, k, v, mask, is_causal=is_causal), q, k, v)


def test_an_additive_mask_that_requires_grad_receives_its_gradient():
    q, k, v = _qkv(2, 2, 3, 4, 2, 3)
    bias = _values((2, 1, 4), 9)                     # broadcast: gradient summed back
    assert tt.gradcheck(lambda q, k, v, m: tt.scaled_dot_product_attention(q, k, v, m),
                        q, k, v, bias)


def test_attention_gradients_with_dropout_match_finite_differences():
    q, k, v = _qkv(1, 2, 3, 3, 2, 2)
    assert tt.gradcheck(lambda q, k, v: tt.scaled_dot_product_attention(
        q, k, v, dropout_p=0.3, generator=np.random.default_rng(5)), q, k, v)


def test_the_fused_op_and_the_composed_ops_give_the_same_gradients():
    q, k, v = _qkv(2, 2, 4, 4, 3, 3)
    grads = []
    for fused in (True, False):
        ts = [tt.Tensor(a, requires_grad=True) for a in (q, k, v)]
        out = (tt.scaled_dot_product_attention(*ts, is_causal=True) if fused else
               tt.attention_weights(ts[0], ts[1], is_causal=True) @ ts[2])
        (out * tt.Tensor(_values(out.shape, 4))).sum().backward()
        grads.append([t.grad for t in ts])
    for fused_grad, composed_grad in zip(*grads):
        np.testing.assert_allclose(fused_grad, composed_grad, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- the layer
def parameter_slots(module):
    """{id(parameter): (parameter, [(owner module, attribute), ...])}, for swapping them."""
    slots = {}
    for owner in module.modules():
        for name, value in vars(owner).items():
            if isinstance(value, tt.Parameter):
                slots.setdefault(id(value), (value, []))[1].append((owner, name))
    return list(slots.values())


def gradcheck_module(module, x):
    """Finite-difference check of a module's output against its input and every parameter,
    in float64: each call puts fresh Tensors in the parameters' places."""
    slots = parameter_slots(module)

    def fn(x, *params):
        for (_, places), p in zip(slots, params):
            for owner, name in places:
                setattr(owner, name, p)
        return module(x)

    return tt.gradcheck(fn, x, *[p.data.astype(np.float64) for p, _ in slots])


def test_multi_head_attention_has_nanogpt_parameters():
    tt.manual_seed(0)
    mha = tt.MultiHeadAttention(8, 2)
    assert [(n, p.shape) for n, p in mha.named_parameters()] == [
        ("c_attn.weight", (24, 8)), ("c_attn.bias", (24,)),
        ("c_proj.weight", (8, 8)), ("c_proj.bias", (8,))]
    assert mha.head_dim == 4
    assert len(tt.MultiHeadAttention(8, 2, bias=False).parameters()) == 2


@pytest.mark.parametrize("is_causal", [False, True])
def test_multi_head_attention_matches_numpy_heads_computed_one_by_one(is_causal):
    mha = fill_parameters(tt.MultiHeadAttention(12, 3))
    x = _values((2, 5, 12)).astype(np.float32)
    out = mha(tt.Tensor(x), is_causal=is_causal)
    expected = stored("mha_causal_out" if is_causal else "mha_out")
    np.testing.assert_allclose(out.data, expected, rtol=1e-5, atol=1e-6)


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 2), st.integers(1, 4), st.sampled_from([(4, 1), (4, 2), (6, 3)]),
       st.sampled_from(["none", "boolean", "additive", "causal"]))
def test_multi_head_attention_gradients_match_finite_differences(b, t, dims_heads, kind):
    tt.manual_seed(1)
    mha = tt.MultiHeadAttention(*dims_heads)
    mask, is_causal = _mask_for(kind, t, t, seed=b + t)

    class Masked(tt.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, attn_mask=mask, is_causal=is_causal)

    assert gradcheck_module(Masked(), _values((b, t, dims_heads[0]), 2))


def test_a_causal_layer_is_not_changed_at_positions_up_to_t_by_later_tokens():
    tt.manual_seed(0)
    mha = tt.MultiHeadAttention(8, 2)
    x = _values((2, 6, 8), 3)
    before = mha(tt.Tensor(x), is_causal=True).data
    for t in range(6):
        changed = x.copy()
        changed[:, t + 1:] = _values(changed[:, t + 1:].shape, 10 + t)
        after = mha(tt.Tensor(changed), is_causal=True).data
        np.testing.assert_array_equal(after[:, :t + 1], before[:, :t + 1])
        if t < 5:
            assert not np.allclose(after[:, t + 1:], before[:, t + 1:])


def test_without_a_mask_attention_is_equivariant_to_permuting_the_sequence():
    tt.manual_seed(0)
    mha = tt.MultiHeadAttention(8, 4)
    x = _values((2, 7, 8), 4)
    perm = np.random.default_rng(0).permutation(7)
    out = mha(tt.Tensor(x)).data
    np.testing.assert_allclose(mha(tt.Tensor(x[:, perm])).data, out[:, perm], rtol=1e-10,
                               atol=1e-12)
    q, k, v = _qkv(1, 2, 7, 7, 3, 3)
    plain = tt.scaled_dot_product_attention(q, k, v).data
    permuted = tt.scaled_dot_product_attention(q[:, :, perm], k[:, :, perm], v[:, :, perm]).data
    np.testing.assert_allclose(permuted, plain[:, :, perm], rtol=1e-12)


def test_a_causal_mask_breaks_permutation_equivariance():
    tt.manual_seed(0)
    mha = tt.MultiHeadAttention(8, 4)
    x = _values((1, 5, 8), 5)
    perm = np.array([4, 3, 2, 1, 0])
    out = mha(tt.Tensor(x), is_causal=True).data
    assert not np.allclose(mha(tt.Tensor(x[:, perm]), is_causal=True).data, out[:, perm])


def test_dropout_applies_in_training_mode_only():
    tt.manual_seed(0)
    mha = tt.MultiHeadAttention(8, 2, dropout=0.5)
    x = tt.Tensor(_values((2, 4, 8), 6))
    assert not np.allclose(mha(x).data, mha(x).data)
    mha.eval()
    np.testing.assert_array_equal(mha(x).data, mha(x).data)


def test_a_mask_and_is_causal_together_combine_in_the_layer():
    mha = fill_parameters(tt.MultiHeadAttention(6, 2))
    x = _values((1, 4, 6), 8)
    allowed = np.ones((4, 4), dtype=bool)
    allowed[:, 0] = False
    allowed[0, 0] = True
    out = mha(tt.Tensor(x), attn_mask=allowed, is_causal=True).data
    np.testing.assert_allclose(out, stored("mha_mask_and_causal_out"), rtol=1e-10)


# --------------------------------------------------------------------------- the cache seam
class ListCache:
    """The smallest key/value cache: it appends the new keys and values and returns all."""

    def __init__(self):
        self.k = self.v = None

    def update(self, k, v):
        if self.k is not None:
            k = tt.cat([self.k, k], dim=2)
            v = tt.cat([self.v, v], dim=2)
        self.k, self.v = k, v
        return k, v


def test_feeding_a_sequence_in_pieces_through_a_cache_gives_the_same_causal_outputs():
    tt.manual_seed(0)
    mha = tt.MultiHeadAttention(8, 2).eval()
    x = _values((2, 7, 8), 11).astype(np.float32)
    whole = mha(tt.Tensor(x), is_causal=True).data
    cache, pieces = ListCache(), []
    with tt.no_grad():
        for start, stop in [(0, 3), (3, 4), (4, 7)]:          # a prompt, then new tokens
            pieces.append(mha(tt.Tensor(x[:, start:stop]), is_causal=True,
                              kv_cache=cache).data)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole, rtol=1e-5, atol=1e-6)
    assert cache.k.shape == (2, 2, 7, 4)


# --------------------------------------------------------------------------- errors
def test_embed_dim_not_divisible_by_num_heads_names_both():
    with pytest.raises(ValueError, match="embed_dim 10 is not divisible by num_heads 3"):
        tt.MultiHeadAttention(10, 3)


@pytest.mark.parametrize("shapes, message", [
    (((2, 4, 3), (2, 5, 2), (2, 5, 3)), "same number of features"),
    (((2, 4, 3), (2, 5, 3), (2, 6, 3)), "same length"),
    (((2, 4, 3), (3, 5, 3), (3, 5, 3)), "cannot be broadcast"),
    (((4,), (5, 4), (5, 4)), "need shape"),
])
def test_mismatched_query_key_value_shapes_raise_naming_all_three(shapes, message):
    q, k, v = (_values(s) for s in shapes)
    with pytest.raises(ValueError, match=message) as error:
        tt.scaled_dot_product_attention(q, k, v)
    for shape in shapes:
        assert str(shape) in str(error.value)


def test_a_mask_of_the_wrong_shape_names_it_and_the_scores_shape():
    q, k, v = _qkv(2, 2, 3, 5, 4, 4)
    with pytest.raises(ValueError, match=re.escape(
            "attn_mask of shape (3, 4) does not broadcast to the attention scores' shape "
            "(2, 2, 3, 5)")):
        tt.scaled_dot_product_attention(q, k, v, np.ones((3, 4), dtype=bool))
    mha = tt.MultiHeadAttention(4, 2)
    with pytest.raises(ValueError, match=re.escape("(5, 5)")):
        mha(tt.Tensor(_values((2, 4, 4))), attn_mask=np.ones((5, 5), dtype=bool))


def test_an_integer_mask_is_refused_because_its_meaning_is_ambiguous():
    q, k, v = _qkv(1, 1, 2, 2, 2, 2)
    with pytest.raises(TypeError, match="boolean .* or floating point"):
        tt.scaled_dot_product_attention(q, k, v, np.ones((2, 2), dtype=np.int64))


def test_a_mask_and_is_causal_together_are_refused_by_the_function_as_by_pytorch():
    q, k, v = _qkv(1, 1, 2, 2, 2, 2)
    with pytest.raises(ValueError, match="not both"):
        tt.scaled_dot_product_attention(q, k, v, np.ones((2, 2), bool), is_causal=True)


def test_the_layer_names_the_shape_it_expects():
    mha = tt.MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match=re.escape("expects input of shape (B, T, 8); got "
                                                   "(2, 3, 6)")):
        mha(tt.Tensor(np.zeros((2, 3, 6), np.float32)))


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_an_impossible_dropout_probability_is_refused(p):
    with pytest.raises(ValueError, match=re.escape(repr(p))):
        tt.MultiHeadAttention(4, 2, dropout=p)
    q, k, v = _qkv(1, 1, 2, 2, 2, 2)
    with pytest.raises(ValueError, match="dropout_p"):
        tt.scaled_dot_product_attention(q, k, v, dropout_p=p)
