"""Chapter 18 — the key/value cache: cached and uncached forward passes give the same logits
at every position (prompt included), greedy decoding the same tokens, the cache's bytes
follow the closed form, and running past block_size is handled as documented."""
import numpy as np
import pytest

import tinytorch as tt

VOCAB, BLOCK, LAYERS, HEADS, EMBD = 13, 24, 2, 2, 16


def random_gpt(block_size=BLOCK, std=0.3, seed=3):
    """A randomly initialised GPT with weights large enough that attention is far from
    uniform and positions matter (nanoGPT's 0.02 would make both nearly invisible)."""
    tt.manual_seed(seed)
    model = tt.GPT(VOCAB, block_size, LAYERS, HEADS, EMBD)
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.data[...] = rng.normal(0.0, std, p.shape)
    return model.eval()


def _ids(shape, seed=1):
    return np.random.default_rng(seed).integers(0, VOCAB, size=shape)


def cached_logits(model, ids, chunks):
    """Logits of ``ids`` fed through one cache in pieces of the given lengths."""
    cache = model.new_kv_cache()
    out, start = [], 0
    for n in chunks:
        out.append(model(ids[:, start:start + n], kv_cache=cache).data)
        start += n
    return np.concatenate(out, axis=1), cache


# ------------------------------------------------------------------ the model is a fair test
def test_the_test_model_has_spread_logits_and_depends_on_positions():
    model = random_gpt()
    ids = _ids((2, 20))
    with tt.no_grad():
        logits = model(ids).data
        assert logits.std() > 0.5
        # the same token at two positions: different logits, so a position bug would show
        same = np.full((1, 6), 3)
        row = model(same).data[0]
    assert np.abs(row[0] - row[5]).max() > 0.1


# --------------------------------------------------------------------------- equal logits
@pytest.mark.parametrize("chunks", [[20], [8] + [1] * 12, [1] * 20, [5, 7, 3, 5]])
def test_cached_logits_equal_the_uncached_ones_at_every_position(chunks):
    model = random_gpt()
    ids = _ids((2, 20))
    with tt.no_grad():
        full = model(ids).data
        pieces, cache = cached_logits(model, ids, chunks)
    assert cache.length == 20
    np.testing.assert_allclose(pieces, full, atol=1e-5, rtol=0)


def test_a_cached_forward_pass_starts_the_position_embeddings_at_the_cache_length():
    model = random_gpt()
    ids = _ids((1, 10))
    with tt.no_grad():
        cache = model.new_kv_cache()
        model(ids[:, :9], kv_cache=cache)
        last = model(ids[:, 9:], kv_cache=cache).data[:, 0]
        wrong = model(ids[:, 9:]).data[:, 0]               # the same token at position 0
        expected = model(ids).data[:, 9]
    np.testing.assert_allclose(last, expected, atol=1e-5, rtol=0)
    assert np.abs(wrong - expected).max() > 1e-2


# --------------------------------------------------------------------------- generation
def test_greedy_decoding_gives_the_same_tokens_with_and_without_the_cache():
    model = random_gpt()
    prompt = _ids((2, 5))
    plain = model.generate(prompt, 15, top_k=1).data
    cached = model.generate(prompt, 15, top_k=1, use_cache=True).data
    np.testing.assert_array_equal(cached, plain)
    assert len(set(plain[0, 5:].tolist())) > 1              # not one token repeated


def test_sampling_with_the_same_seed_gives_the_same_tokens_with_and_without_the_cache():
    model = random_gpt()
    prompt = _ids((1, 4))
    plain = model.generate(prompt, 12, generator=7).data
    cached = model.generate(prompt, 12, generator=7, use_cache=True).data
    np.testing.assert_array_equal(cached, plain)


def test_generation_with_the_cache_runs_one_prefill_then_one_token_per_step():
    model = random_gpt()
    seen = []
    model.transformer.h[0].attn.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].shape[1]))
    model.generate(_ids((1, 6)), 5, top_k=1, use_cache=True)
    assert seen == [6, 1, 1, 1, 1]


# --------------------------------------------------------------------------- past block_size
def test_past_block_size_cached_generation_crops_as_the_uncached_one_does():
    model = random_gpt(block_size=8)
    prompt = _ids((1, 5))
    plain = model.generate(prompt, 14, top_k=1).data
    cached = model.generate(prompt, 14, top_k=1, use_cache=True).data
    assert cached.shape == (1, 19)
    np.testing.assert_array_equal(cached, plain)


def test_a_prompt_longer_than_block_size_is_cropped_to_its_last_block():
    model = random_gpt(block_size=8)
    prompt = _ids((1, 12))
    plain = model.generate(prompt, 4, top_k=1).data
    cached = model.generate(prompt, 4, top_k=1, use_cache=True).data
    np.testing.assert_array_equal(cached, plain)


def test_a_forward_pass_past_block_size_with_a_cache_raises_saying_what_to_do():
    model = random_gpt(block_size=8)
    cache = model.new_kv_cache()
    with tt.no_grad():
        model(_ids((1, 8)), kv_cache=cache)
        with pytest.raises(ValueError, match=r"8 cached \+ 1 new tokens exceed block_size 8"):
            model(_ids((1, 1)), kv_cache=cache)
    assert cache.length == 8                                # nothing half-written


# --------------------------------------------------------------------------- bytes
@pytest.mark.parametrize("length", [1, 7, 20])
def test_the_cache_bytes_are_2_layers_heads_length_head_dim_itemsize(length):
    model = random_gpt()
    with tt.no_grad():
        _, cache = cached_logits(model, _ids((1, length)), [length])
    head_dim = EMBD // HEADS
    itemsize = model.transformer.wte.weight.data.itemsize
    assert cache.nbytes == 2 * LAYERS * HEADS * length * head_dim * itemsize
    assert cache.allocated_nbytes == 2 * LAYERS * HEADS * BLOCK * head_dim * itemsize


# --------------------------------------------------------------------------- the KVCache itself
def test_update_returns_the_cached_positions_first_then_the_new_ones():
    cache = tt.KVCache()
    a = np.arange(2 * 3 * 2 * 4, dtype=np.float32).reshape(2, 3, 2, 4)
    b = -np.ones((2, 3, 1, 4), dtype=np.float32)
    cache.update(a, a + 100)
    k, v = cache.update(b, b - 100)
    np.testing.assert_array_equal(k.data, np.concatenate([a, b], axis=2))
    np.testing.assert_array_equal(v.data, np.concatenate([a + 100, b - 100], axis=2))
    assert cache.length == 3


def test_a_growing_cache_keeps_its_contents_when_it_reallocates():
    cache = tt.KVCache()
    rows = [np.full((1, 1, 1, 2), float(i), dtype=np.float32) for i in range(40)]
    for r in rows:
        k, _ = cache.update(r, r)
    np.testing.assert_array_equal(k.data[0, 0, :, 0], np.arange(40))


def test_reset_and_crop_forget_positions():
    cache = tt.KVCache(max_length=10)
    x = np.ones((1, 1, 4, 2), dtype=np.float32)
    cache.update(x, x)
    cache.crop(3)
    assert cache.length == 3 and cache.keys.shape == (1, 1, 3, 2)
    cache.reset()
    assert cache.length == 0 and cache.nbytes == 0


def test_a_preallocated_cache_refuses_to_overflow_naming_the_lengths():
    cache = tt.KVCache(max_length=4)
    x = np.ones((1, 1, 3, 2), dtype=np.float32)
    cache.update(x, x)
    with pytest.raises(ValueError, match="3 cached \\+ 3 new positions exceed max_length 4"):
        cache.update(x, x)


def test_mismatched_shapes_raise_naming_them():
    cache = tt.KVCache()
    cache.update(np.ones((1, 2, 3, 4)), np.ones((1, 2, 3, 4)))
    with pytest.raises(ValueError, match=r"\(1, 2, 3, 4\).*\(1, 3, 1, 4\)"):
        cache.update(np.ones((1, 3, 1, 4)), np.ones((1, 3, 1, 4)))
    with pytest.raises(ValueError, match="keys \\(1, 2, 1, 4\\), values \\(1, 2, 1, 5\\)"):
        tt.KVCache().update(np.ones((1, 2, 1, 4)), np.ones((1, 2, 1, 5)))


def test_keys_that_require_a_gradient_are_refused():
    k = tt.Tensor(np.ones((1, 1, 1, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        tt.KVCache().update(k, k)
