"""Chapter 03 — Layers: Linear's shapes, values, gradients and initialisation; Dropout in
training and eval mode; Sequential, MLP and Flatten; parameter order, train/eval and the
state-dict round trip, as PyTorch defines them.

This chapter comes before the engine (chapter 06): gradients are read from each layer's own
backward rule (``tt.gradcheck(..., rule_only=True)``, ``tt.rule_gradients``); that a whole
model's backward pass reaches every parameter is chapter 06's test."""
import functools
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytorch as tt

SETTINGS = dict(max_examples=25, deadline=None)
gradcheck = functools.partial(tt.gradcheck, rule_only=True)


def _values(shape, seed=0):
    return np.random.default_rng(seed).uniform(-2.0, 2.0, size=shape)


# --------------------------------------------------------------------------- Linear
def test_linear_weight_and_bias_have_pytorch_shapes_and_float32():
    layer = tt.Linear(4, 3)
    assert layer.weight.shape == (3, 4) and layer.bias.shape == (3,)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    assert isinstance(layer.weight, tt.Parameter) and isinstance(layer.bias, tt.Parameter)


def test_linear_without_bias_has_only_a_weight():
    layer = tt.Linear(4, 3, bias=False)
    assert layer.bias is None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]


@pytest.mark.parametrize("batch_shape", [(), (5,), (2, 5)])
def test_linear_output_equals_x_times_weight_transposed_plus_bias(batch_shape):
    layer = tt.Linear(4, 3)
    x = _values(batch_shape + (4,)).astype(np.float32)
    out = layer(tt.Tensor(x))
    assert out.shape == batch_shape + (3,)
    np.testing.assert_allclose(out.data, x @ layer.weight.data.T + layer.bias.data, rtol=1e-6)


@settings(**SETTINGS)
@given(st.lists(st.integers(1, 3), max_size=2), st.integers(1, 4), st.integers(1, 4),
       st.booleans())
def test_linear_gradients_match_finite_differences(batch_shape, n_in, n_out, bias):
    layer = tt.Linear(n_in, n_out, bias=bias)

    def forward(x, w, *b):
        layer.weight = w             # float64 copies, so finite differences are accurate
        if b:
            layer.bias = b[0]
        return layer(x)

    inputs = [_values(tuple(batch_shape) + (n_in,), 1), _values((n_out, n_in), 2)]
    if bias:
        inputs.append(_values((n_out,), 3))
    assert gradcheck(forward, *inputs)


def test_linear_rejects_input_with_wrong_feature_count():
    with pytest.raises(ValueError, match=re.escape(
            "Linear(4, 3) expected input with last dimension 4, got shape (2, 5)")):
        tt.Linear(4, 3)(tt.Tensor(np.zeros((2, 5))))


@pytest.mark.parametrize("n_in, error, message", [
    (0, ValueError, "in_features must be at least 1; got 0"),
    (2.5, TypeError, "in_features must be an int; got 2.5")])
def test_linear_rejects_bad_sizes(n_in, error, message):
    with pytest.raises(error, match=re.escape(message)):
        tt.Linear(n_in, 3)


def test_linear_init_is_uniform_within_one_over_sqrt_fan_in():
    layer = tt.Linear(100, 400)
    bound = 1 / np.sqrt(100)
    for p in (layer.weight.data, layer.bias.data):
        assert np.abs(p).max() <= bound
    w = layer.weight.data
    assert w.max() > 0.98 * bound and w.min() < -0.98 * bound    # the whole range is used
    assert abs(w.mean()) < 0.005 and w.std() == pytest.approx(bound / np.sqrt(3), rel=0.02)


def test_manual_seed_makes_initialisation_reproducible():
    tt.manual_seed(7)
    first = tt.MLP([3, 5, 2])
    tt.manual_seed(7)
    second = tt.MLP([3, 5, 2])
    third = tt.MLP([3, 5, 2])
    for a, b, c in zip(first.parameters(), second.parameters(), third.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
        assert not np.array_equal(a.data, c.data)


def test_manual_seed_resets_the_shared_generator_in_place():
    generator = tt.default_generator
    tt.manual_seed(3)
    draw = generator.random()
    assert tt.manual_seed(3) is generator and tt.default_generator is generator
    assert generator.random() == draw


def test_linear_repr_matches_pytorch():
    assert repr(tt.Linear(4, 3)) == "Linear(in_features=4, out_features=3, bias=True)"


# --------------------------------------------------------------------------- Dropout
def test_dropout_in_eval_mode_is_the_identity():
    x = tt.Tensor(_values((4, 5)))
    np.testing.assert_array_equal(tt.Dropout(0.5).eval()(x).data, x.data)


def test_dropout_with_p_zero_is_the_identity_in_training():
    x = tt.Tensor(_values((4, 5)))
    np.testing.assert_array_equal(tt.Dropout(0.0)(x).data, x.data)


def test_dropout_zeroes_about_p_and_scales_the_rest_by_one_over_one_minus_p():
    tt.manual_seed(0)
    p, n = 0.3, 100_000
    out = tt.Dropout(p)(tt.Tensor(np.ones(n))).data
    zeroed = np.mean(out == 0)
    assert abs(zeroed - p) < 0.01                        # ~7 standard deviations
    np.testing.assert_allclose(out[out != 0], 1 / (1 - p))


def test_dropout_preserves_the_expectation():
    tt.manual_seed(1)
    x = np.random.default_rng(0).uniform(1.0, 3.0, size=100_000)
    out = tt.Dropout(0.5)(tt.Tensor(x)).data
    assert out.mean() == pytest.approx(x.mean(), rel=0.01)


def test_dropout_draws_a_new_mask_each_call():
    layer, x = tt.Dropout(0.5), tt.Tensor(np.ones(1000))
    assert not np.array_equal(layer(x).data, layer(x).data)


def test_dropout_gradient_flows_only_through_kept_entries():
    x = tt.Tensor(np.ones((50, 40)), requires_grad=True)
    out = tt.Dropout(0.25)(x)
    (grad,) = tt.rule_gradients(out, np.ones(out.shape))
    kept = out.data != 0
    np.testing.assert_allclose(grad[kept], 1 / 0.75)
    np.testing.assert_array_equal(grad[~kept], 0.0)


def test_dropout_with_p_one_gives_zeros_without_warnings():
    with np.errstate(all="raise"):
        out = tt.Dropout(1.0)(tt.Tensor(np.ones(10)))
    np.testing.assert_array_equal(out.data, np.zeros(10))


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_rejects_probability_outside_zero_one(p):
    with pytest.raises(ValueError, match=re.escape(f"got p={p}")):
        tt.Dropout(p)


def test_dropout_keeps_float32():
    assert tt.Dropout(0.5)(tt.Tensor(np.ones(8, dtype=np.float32))).dtype == np.float32


# --------------------------------------------------------------------------- Flatten
@pytest.mark.parametrize("start, end, expected", [
    (1, -1, (2, 60)), (0, -1, (120,)), (1, 2, (2, 12, 5)), (2, 3, (2, 3, 20))])
def test_flatten_merges_the_chosen_dimensions(start, end, expected):
    x = tt.Tensor(np.arange(120.0).reshape(2, 3, 4, 5))
    out = tt.Flatten(start, end)(x)
    assert out.shape == expected
    np.testing.assert_array_equal(out.data.ravel(), np.arange(120.0))


def test_flatten_gradient_matches_finite_differences():
    assert gradcheck(tt.Flatten(), _values((2, 3, 2, 2)))


def test_flatten_rejects_tensor_without_the_start_dimension():
    with pytest.raises(ValueError, match=re.escape("cannot flatten a tensor of shape (5,)")):
        tt.Flatten()(tt.Tensor(np.zeros(5)))


# --------------------------------------------------------------------------- Sequential, MLP
def test_sequential_chains_layers_in_order():
    first, second = tt.Linear(3, 4), tt.Linear(4, 2)
    model = tt.Sequential(first, tt.ReLU(), second)
    x = tt.Tensor(_values((5, 3)))
    expected = second(tt.relu(first(x)))
    np.testing.assert_array_equal(model(x).data, expected.data)


def test_sequential_from_a_list_equals_sequential_from_arguments():
    layers = [tt.Linear(3, 4), tt.Tanh(), tt.Linear(4, 2)]
    from_args, from_list = tt.Sequential(*layers), tt.Sequential(layers)
    x = tt.Tensor(_values((5, 3)))
    np.testing.assert_array_equal(from_args(x).data, from_list(x).data)
    assert list(from_args) == list(from_list) == layers
    assert [id(p) for p in from_args.parameters()] == [id(p) for p in from_list.parameters()]


def test_sequential_supports_len_indexing_slicing_and_iteration():
    layers = [tt.Linear(3, 4), tt.ReLU(), tt.Linear(4, 2)]
    model = tt.Sequential(layers)
    assert len(model) == 3
    assert model[0] is layers[0] and model[-1] is layers[2]
    assert list(model) == layers and model.layers == layers
    assert isinstance(model[1:], tt.Sequential) and list(model[1:]) == layers[1:]


def test_sequential_rejects_a_layer_that_is_not_a_module():
    with pytest.raises(TypeError, match="layer 1 is function"):
        tt.Sequential(tt.Linear(2, 2), lambda x: x)


def test_mlp_alternates_linear_and_activation_with_none_after_the_last():
    model = tt.MLP([64, 128, 32, 10])
    assert [type(layer) for layer in model] == [tt.Linear, tt.ReLU, tt.Linear, tt.ReLU,
                                                tt.Linear]
    assert isinstance(model, tt.Sequential)
    assert model(tt.Tensor(np.zeros((2, 64)))).shape == (2, 10)


def test_mlp_uses_the_given_activation():
    assert [type(layer) for layer in tt.MLP([2, 3, 1], activation=tt.Tanh)] == [
        tt.Linear, tt.Tanh, tt.Linear]


def test_mlp_rejects_fewer_than_two_sizes():
    with pytest.raises(ValueError, match=re.escape("at least two sizes (input and output); "
                                                   "got [5]")):
        tt.MLP([5])


def test_mlp_parameters_are_weight_then_bias_layer_by_layer_with_pytorch_names():
    model = tt.MLP([4, 8, 3])
    assert [(name, p.shape) for name, p in model.named_parameters()] == [
        ("0.weight", (8, 4)), ("0.bias", (8,)), ("2.weight", (3, 8)), ("2.bias", (3,))]
    assert model.parameters() == [model[0].weight, model[0].bias, model[2].weight,
                                  model[2].bias]


def test_train_and_eval_reach_nested_modules():
    inner_dropout = tt.Dropout(0.5)
    model = tt.Sequential(tt.Linear(3, 3), tt.Sequential(tt.ReLU(), inner_dropout))
    model.eval()
    assert not inner_dropout.training and all(not m.training for m in model.modules())
    x = tt.Tensor(np.ones((4, 3)))
    np.testing.assert_array_equal(model(x).data, model(x).data)
    model.train()
    assert inner_dropout.training and all(m.training for m in model.modules())


def test_state_dict_round_trip_into_a_fresh_model_gives_identical_outputs():
    source, fresh = tt.MLP([4, 8, 3]), tt.MLP([4, 8, 3])
    x = tt.Tensor(_values((5, 4)))
    assert not np.array_equal(source(x).data, fresh(x).data)
    fresh.load_state_dict(source.state_dict())
    np.testing.assert_array_equal(source(x).data, fresh(x).data)


def test_load_state_dict_with_a_wrong_shape_names_the_key_and_changes_nothing():
    model = tt.MLP([4, 8, 3])
    before = {name: value.copy() for name, value in model.state_dict().items()}
    state = {name: value + 1 for name, value in before.items()}    # all new values...
    state["2.weight"] = np.zeros((3, 9), dtype=np.float32)          # ...one with a bad shape
    with pytest.raises(ValueError, match=re.escape("'2.weight' has shape (3, 9) in the state "
                                                   "dict but (3, 8) in the model")):
        model.load_state_dict(state)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


# ------------------------------------------------------------------ forward hooks
def test_forward_pre_hook_sees_the_input_and_can_replace_it():
    layer = tt.Linear(3, 2)
    seen = []

    def double_input(module, args):
        seen.append((module, args[0].shape))
        return (args[0] * 2.0,)

    x = tt.Tensor(np.ones((4, 3), dtype=np.float32))
    plain = layer(x).data.copy()
    layer.register_forward_pre_hook(double_input)
    hooked = layer(x).data
    assert seen == [(layer, (4, 3))]
    np.testing.assert_allclose(hooked - layer.bias.data, 2 * (plain - layer.bias.data), rtol=1e-6)


def test_forward_hook_can_replace_the_output_and_remove_restores_it():
    layer = tt.Linear(3, 2)
    x = tt.Tensor(np.ones((1, 3), dtype=np.float32))
    before = layer(x).data.copy()
    handle = layer.register_forward_hook(lambda module, args, out: out * 0.0)
    assert np.all(layer(x).data == 0)
    handle.remove()
    handle.remove()  # removing twice is harmless
    np.testing.assert_array_equal(layer(x).data, before)


def test_hooks_run_in_registration_order_and_do_not_leak_into_parameters():
    layer = tt.Linear(2, 2)
    order = []
    layer.register_forward_hook(lambda m, a, o: order.append("first"))
    layer.register_forward_hook(lambda m, a, o: order.append("second"))
    layer(tt.Tensor(np.ones((1, 2), dtype=np.float32)))
    assert order == ["first", "second"]
    assert list(layer.state_dict()) == ["weight", "bias"]
    assert tt.Linear(2, 2)._forward_hooks == {}  # another instance has none


def test_a_hook_must_be_callable():
    with pytest.raises(TypeError, match="callable"):
        tt.Linear(2, 2).register_forward_hook(42)


def test_a_refused_load_state_dict_changes_nothing_and_names_the_key_and_dtype():
    model = tt.MLP([3, 4, 2])
    before = model.state_dict()
    bad = {name: value.copy() for name, value in before.items()}
    for name in bad:
        bad[name] += 1.0
    bad["2.bias"] = np.array(["a", "b"])  # the last entry: earlier ones would be written first
    with pytest.raises(TypeError, match=r"'2.bias' has dtype <U1"):
        model.load_state_dict(bad)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


# ------------------------------------------------------------------ buffers
def _with_mask():
    """A Sequential whose first Linear keeps a buffer ``mask`` of its weight's shape."""
    model = tt.MLP([3, 4, 2])
    model[0].register_buffer("mask", np.ones((4, 3), dtype=np.float32))
    return model


def test_a_buffer_is_an_attribute_listed_by_named_buffers_and_not_a_parameter():
    model = _with_mask()
    assert model[0].mask.shape == (4, 3)
    assert [name for name, _ in model.named_buffers()] == ["0.mask"]
    assert model.buffers()[0] is model[0].mask
    assert all(p is not model[0].mask for p in model.parameters())
    assert len(model.parameters()) == 4


def test_a_module_without_buffers_has_a_state_dict_of_parameters_only():
    model = tt.MLP([3, 4, 2])
    assert model.buffers() == []
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_state_dict_lists_parameters_then_buffers_as_copies():
    model = _with_mask()
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias", "0.mask"]
    state["0.mask"][...] = 0
    assert np.all(model[0].mask == 1)


def test_load_state_dict_restores_buffers_in_place():
    source, target = _with_mask(), _with_mask()
    source[0].mask[0] = 0
    kept = target[0].mask
    target.load_state_dict(source.state_dict())
    assert target[0].mask is kept
    np.testing.assert_array_equal(target[0].mask, source[0].mask)


def test_load_state_dict_requires_the_buffers_when_strict():
    with pytest.raises(KeyError, match=r"missing keys \['0.mask'\]"):
        _with_mask().load_state_dict(tt.MLP([3, 4, 2]).state_dict())
    with pytest.raises(KeyError, match=r"unexpected keys \['0.mask'\]"):
        tt.MLP([3, 4, 2]).load_state_dict(_with_mask().state_dict())


def test_load_state_dict_refuses_a_buffer_of_the_wrong_shape_and_changes_nothing():
    model = _with_mask()
    state = {name: value * 0 for name, value in model.state_dict().items()}
    state["0.mask"] = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=re.escape("'0.mask' has shape (3, 4)")):
        model.load_state_dict(state)
    assert np.all(model[0].mask == 1) and np.any(model[0].weight.data != 0)


def test_deleting_a_buffer_unregisters_it():
    model = _with_mask()
    del model[0].mask
    assert model.buffers() == [] and "0.mask" not in model.state_dict()


def test_assigning_a_registered_buffer_replaces_its_value():
    layer = tt.Linear(2, 2)
    layer.register_buffer("steps", np.zeros(1))
    layer.steps = np.array([5.0])
    assert layer.state_dict()["steps"].tolist() == [5.0]


def test_a_buffer_cannot_take_the_name_of_a_parameter_or_a_dotted_name():
    layer = tt.Linear(2, 2)
    with pytest.raises(KeyError, match="already a Parameter"):
        layer.register_buffer("weight", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="identifier"):
        layer.register_buffer("a.b", np.zeros(1))
    with pytest.raises(TypeError, match="numpy array"):
        layer.register_buffer("t", tt.Tensor([1.0]))


def test_buffers_of_one_instance_do_not_leak_into_another():
    _with_mask()
    assert tt.Linear(3, 4).buffers() == []
