"""Chapter 13 — GPT: nanoGPT's structure and names, the parameter count in closed form,
causality, the tied embedding's gradient, generation (context cropping, top-k, temperature),
the error messages, and a tiny model that learns a short text by heart."""
import re

import numpy as np
import pytest

import tinytorch as tt

TEXT = "to be or not to be, that is the question. " * 8
CHARS = sorted(set(TEXT))
DATA = np.array([CHARS.index(c) for c in TEXT])


def tiny_gpt(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8, **kwargs):
    tt.manual_seed(0)
    return tt.GPT(vocab_size, block_size, n_layer, n_head, n_embd, **kwargs)


def _ids(shape, vocab_size=11, seed=0):
    return np.random.default_rng(seed).integers(0, vocab_size, size=shape)


# --------------------------------------------------------------------------- structure
@pytest.mark.parametrize("v, t, n_layer, c", [(11, 8, 2, 8), (65, 32, 3, 48), (5, 4, 1, 4)])
def test_the_parameter_count_equals_the_closed_form(v, t, n_layer, c):
    model = tiny_gpt(v, t, n_layer, 2, c)
    closed_form = v * c + t * c + n_layer * (12 * c * c + 13 * c) + 2 * c
    assert sum(p.size for p in model.parameters()) == closed_form
    assert model.get_num_params(non_embedding=False) == closed_form
    assert model.get_num_params() == closed_form - t * c          # nanoGPT leaves out wpe


def test_without_biases_each_block_holds_12_c_squared_plus_2_c_as_in_nanogpt():
    v, t, n_layer, c = 11, 8, 2, 8
    model = tiny_gpt(v, t, n_layer, 2, c, bias=False)
    assert model.get_num_params(False) == v * c + t * c + n_layer * (12 * c * c + 2 * c) + c
    assert not any(name.endswith(".bias") for name, _ in model.named_parameters())


def test_parameters_have_nanogpt_names_and_the_output_layer_is_tied_to_the_token_table():
    model = tiny_gpt(n_layer=1)
    names = [n for n, _ in model.named_parameters()]
    assert names[:3] == ["transformer.wte.weight", "transformer.wpe.weight",
                         "transformer.h.0.ln_1.weight"]
    assert names[-2:] == ["transformer.ln_f.weight", "transformer.ln_f.bias"]
    assert model.lm_head.weight is model.transformer.wte.weight
    assert "lm_head.weight" not in model.state_dict()


def test_weights_start_as_nanogpt_initialises_them():
    tt.manual_seed(0)
    model = tt.GPT(50, 16, 4, 4, 64)
    wte = model.transformer.wte.weight.data
    assert abs(wte.std() - 0.02) < 0.002
    residual = model.transformer.h[0].mlp.c_proj.weight.data
    assert abs(residual.std() - 0.02 / np.sqrt(8)) < 0.001
    assert np.all(model.transformer.h[0].attn.c_attn.bias.data == 0)
    assert np.all(model.transformer.h[0].ln_1.weight.data == 1)


# --------------------------------------------------------------------------- forward
def test_forward_maps_ids_to_logits_of_shape_batch_time_vocab():
    model = tiny_gpt()
    logits = model(_ids((3, 8)))
    assert logits.shape == (3, 8, 11) and logits.dtype == np.float32
    assert model(tt.Tensor(_ids((2, 5)))).shape == (2, 5, 11)


def test_a_sequence_longer_than_block_size_is_refused_naming_both():
    with pytest.raises(ValueError, match="the sequence has 9 tokens, longer than block_size 8"):
        tiny_gpt()(_ids((2, 9)))


def test_token_ids_of_the_wrong_shape_or_dtype_are_refused():
    with pytest.raises(ValueError, match=re.escape("shape (8,)")):
        tiny_gpt()(_ids(8))
    with pytest.raises(ValueError, match="dtype float"):
        tiny_gpt()(np.zeros((1, 4)))


def test_an_id_outside_the_vocabulary_is_refused_naming_it():
    with pytest.raises(IndexError, match="id 11 is out of range"):
        tiny_gpt()(np.array([[1, 11]]))


def test_changing_tokens_after_position_t_changes_no_logit_at_positions_up_to_t():
    model = tiny_gpt()
    ids = _ids((2, 8))
    before = model(ids).data
    for t in range(7):
        changed = ids.copy()
        changed[:, t + 1:] = (changed[:, t + 1:] + 1 + t) % 11
        after = model(changed).data
        np.testing.assert_array_equal(after[:, :t + 1], before[:, :t + 1])
        assert not np.allclose(after[:, t + 1], before[:, t + 1])


def test_gradients_of_every_parameter_including_the_tied_one_match_finite_differences():
    model = tiny_gpt(vocab_size=5, block_size=4, n_layer=1, n_embd=4)
    ids = _ids((2, 3), vocab_size=5)
    slots = {}
    for owner in model.modules():
        for name, value in vars(owner).items():
            if isinstance(value, tt.Parameter):
                slots.setdefault(id(value), (value, []))[1].append((owner, name))
    slots = list(slots.values())
    assert len(slots[0][1]) == 2                      # wte and lm_head share one Parameter

    def fn(*params):
        for (_, places), p in zip(slots, params):
            for owner, name in places:
                setattr(owner, name, p)
        return model(ids)

    assert tt.gradcheck(fn, *[p.data.astype(np.float64) for p, _ in slots])


# --------------------------------------------------------------------------- generate
def test_generate_appends_max_new_tokens_and_keeps_the_prompt():
    model = tiny_gpt()
    prompt = _ids((2, 3))
    out = model.generate(prompt, 12, generator=0)
    assert out.shape == (2, 15) and out.dtype == np.int64 and not out.requires_grad
    np.testing.assert_array_equal(out.data[:, :3], prompt)
    assert out.data.min() >= 0 and out.data.max() < 11
    one = model.generate(prompt[0], 4, generator=0)
    assert one.shape == (7,)


def test_generate_crops_the_context_to_the_last_block_size_tokens():
    model = tiny_gpt()
    prompt = _ids((1, 20))
    other = prompt.copy()
    other[:, :12] = (other[:, :12] + 3) % 11               # differs outside the last 8 only
    a = model.generate(prompt, 1, generator=1).data[:, -1]
    b = model.generate(other, 1, generator=1).data[:, -1]
    np.testing.assert_array_equal(a, b)
    assert model.generate(prompt, 10, generator=1).shape == (1, 30)


def test_top_k_1_is_greedy_decoding_the_argmax_of_the_last_logits():
    model = tiny_gpt().eval()
    ids = _ids((3, 2))
    out = model.generate(ids, 10, top_k=1, generator=0).data
    for step in range(10):
        context = out[:, :2 + step][:, -8:]
        expected = model(context).data[:, -1].argmax(axis=-1)
        np.testing.assert_array_equal(out[:, 2 + step], expected)


def _first_token_frequencies(model, temperature, top_k, rows=4000):
    prompt = np.tile(_ids((1, 4), seed=3), (rows, 1))
    out = model.generate(prompt, 1, temperature=temperature, top_k=top_k, generator=7).data
    return np.bincount(out[:, -1], minlength=11) / rows


@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.5, None), (2.0, 3)])
def test_samples_follow_softmax_of_logits_over_temperature_restricted_to_top_k(temperature,
                                                                                top_k):
    model = tiny_gpt(n_embd=16)
    model.lm_head.weight.data *= 10                     # make the distribution uneven
    logits = model(_ids((1, 4), seed=3)).data[0, -1].astype(np.float64) / temperature
    if top_k is not None:
        logits[np.argsort(logits)[:-top_k]] = -np.inf
    expected = np.exp(logits - logits.max())
    expected /= expected.sum()
    frequencies = _first_token_frequencies(model, temperature, top_k)
    np.testing.assert_allclose(frequencies, expected, atol=0.03)
    assert np.all(frequencies[expected == 0] == 0)


def test_a_lower_temperature_concentrates_the_samples():
    model = tiny_gpt(n_embd=16)
    model.lm_head.weight.data *= 10
    peaks = [_first_token_frequencies(model, t, None).max() for t in (2.0, 1.0, 0.25)]
    assert peaks[0] < peaks[1] < peaks[2]


def test_generation_is_reproducible_with_a_seed_and_restores_training_mode():
    model = tiny_gpt(dropout=0.1)
    a = model.generate(_ids((2, 2)), 6, generator=5).data
    assert model.training
    np.testing.assert_array_equal(a, model.generate(_ids((2, 2)), 6, generator=5).data)


@pytest.mark.parametrize("kwargs, message", [
    (dict(temperature=0.0), "temperature must be a positive number"),
    (dict(top_k=0), "top_k must be None or an int >= 1"),
    (dict(generator="seed"), "generator must be"),
])
def test_generate_refuses_impossible_settings(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        tiny_gpt().generate(_ids((1, 2)), 3, **kwargs)


# --------------------------------------------------------------------------- learning
def test_a_tiny_gpt_learns_a_repeated_sentence_in_a_few_dozen_steps():
    vocab, block = len(CHARS), 16
    tt.manual_seed(0)
    model = tt.GPT(vocab, block, n_layer=1, n_head=2, n_embd=32)
    optimizer = tt.Adam(model.parameters(), lr=1e-2)
    loss_fn = tt.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(80):
        starts = rng.integers(0, len(DATA) - block - 1, 16)
        x = np.stack([DATA[s:s + block] for s in starts])
        y = np.stack([DATA[s + 1:s + block + 1] for s in starts])
        loss = loss_fn(model(x).reshape(-1, vocab), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 0.9 * np.log(vocab)              # it starts knowing nothing
    assert np.mean(losses[-5:]) < 0.4
