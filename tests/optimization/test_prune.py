"""Chapter 16 — Pruning with persistent masks, as torch.nn.utils.prune: weight_orig (the
Parameter), the weight_mask buffer and the pre-hook that recomputes weight; per layer, global,
structured and iterative pruning; remove; the errors."""
import copy
import math
import re

import numpy as np
import pytest

import tinytorch as tt
from tinytorch import prune
from tinytorch.quantization import quantize_model


def _linear(n_in=6, n_out=4, seed=0):
    tt.manual_seed(seed)
    return tt.Linear(n_in, n_out)


def _x(shape, seed=1):
    return tt.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


# ----------------------------------------------------------------------- the mechanism
def test_pruning_keeps_the_parameter_as_weight_orig_with_a_mask_buffer():
    layer = _linear()
    param = layer.weight
    prune.l1_unstructured(layer, "weight", amount=0.5)
    assert layer.weight_orig is param
    assert layer.weight_mask.shape == param.shape and layer.weight_mask.dtype == param.dtype
    assert not isinstance(layer.weight, tt.Parameter)
    assert [name for name, _ in layer.named_parameters()] == ["bias", "weight_orig"]
    assert [name for name, _ in layer.named_buffers()] == ["weight_mask"]


def test_l1_unstructured_zeroes_the_smallest_magnitudes():
    layer = _linear()
    magnitudes = np.abs(layer.weight.data).ravel()
    prune.l1_unstructured(layer, amount=0.25)                    # 6 of the 24 weights
    dropped = np.flatnonzero(layer.weight_mask.ravel() == 0)
    assert set(dropped) == set(np.argsort(magnitudes)[:6])
    np.testing.assert_array_equal(layer.weight.data, layer.weight_orig.data * layer.weight_mask)


def test_an_int_amount_is_a_count():
    layer = prune.l1_unstructured(_linear(), amount=5)
    assert int((layer.weight_mask == 0).sum()) == 5


def test_the_output_uses_the_masked_weight():
    layer, x = _linear(), _x((3, 6))
    prune.l1_unstructured(layer, amount=0.5)
    expected = x.data @ (layer.weight_orig.data * layer.weight_mask).T + layer.bias.data
    np.testing.assert_allclose(layer(x).data, expected, rtol=1e-6)


def test_the_gradient_of_weight_orig_is_the_dense_gradient_times_the_mask():
    layer, x = _linear(), _x((5, 6))
    prune.l1_unstructured(layer, amount=0.5)
    dense = tt.Linear(6, 4)
    dense.weight.data[...] = layer.weight.data
    dense.bias.data[...] = layer.bias.data
    (layer(x) ** 2).sum().backward()
    (dense(x) ** 2).sum().backward()
    np.testing.assert_allclose(layer.weight_orig.grad, dense.weight.grad * layer.weight_mask,
                               rtol=1e-5, atol=1e-6)
    assert np.all(layer.weight_orig.grad[layer.weight_mask == 0] == 0)


def test_the_gradient_of_the_masked_product_matches_finite_differences():
    mask = (np.random.default_rng(0).random((3, 4)) > 0.5).astype(np.float64)
    x = np.random.default_rng(1).standard_normal((2, 4))
    assert tt.gradcheck(lambda w, a: (a @ (w * mask).T).tanh(), np.ones((3, 4)) * 0.3, x)


@pytest.mark.parametrize("optimizer", [tt.SGD, tt.Adam])
def test_pruned_weights_stay_zero_while_the_model_trains(optimizer):
    tt.manual_seed(0)
    model = tt.MLP([6, 8, 3])
    opt = optimizer(model.parameters(), lr=0.05)           # built before pruning
    prune.l1_unstructured(model[0], amount=0.6)
    before = model[0].weight_orig.data.copy()
    x, y = _x((16, 6)), tt.Tensor(np.arange(16) % 3)
    for _ in range(20):
        opt.zero_grad()
        tt.CrossEntropyLoss()(model(x), y).backward()
        opt.step()
    model(x)
    pruned = model[0].weight_mask == 0
    assert np.all(model[0].weight.data[pruned] == 0)
    assert np.all(model[0].weight_orig.data[~pruned] != before[~pruned])   # the rest trains


def test_a_pruned_state_dict_loads_into_a_model_pruned_the_same_way():
    source, target = _linear(seed=0), _linear(seed=1)
    prune.l1_unstructured(source, amount=0.5)
    prune.l1_unstructured(target, amount=0.5)
    target.load_state_dict(source.state_dict())
    x = _x((2, 6))
    np.testing.assert_array_equal(target(x).data, source(x).data)
    assert list(source.state_dict()) == ["bias", "weight_orig", "weight_mask"]


def test_a_deep_copy_of_a_pruned_model_has_its_own_mask_and_hook():
    model = tt.Sequential(_linear())
    prune.l1_unstructured(model[0], amount=0.5)
    twin = copy.deepcopy(model)
    twin[0].weight_mask[...] = 0
    x = _x((2, 6))
    np.testing.assert_array_equal(twin(x).data, np.broadcast_to(twin[0].bias.data, (2, 4)))
    assert np.any(model[0].weight_mask != 0)


def test_pruned_zeros_stay_exactly_zero_after_quantization():
    model = tt.Sequential(_linear(32, 16))
    prune.l1_unstructured(model[0], amount=0.7)
    quantized = quantize_model(model, bits=4)
    assert np.all(quantized[0].dequantized_weight()[model[0].weight_mask == 0] == 0)


# ----------------------------------------------------------------------- global and structured
def test_global_pruning_takes_more_from_the_layer_of_smaller_weights():
    big, small = _linear(6, 4, seed=0), _linear(6, 4, seed=1)
    small.weight.data *= 0.1
    prune.global_unstructured([(big, "weight"), (small, "weight")], amount=0.5)
    zeros = [int((m.weight_mask == 0).sum()) for m in (big, small)]
    assert sum(zeros) == 24 and zeros[1] > zeros[0]


def test_per_layer_pruning_gives_every_layer_the_same_sparsity():
    layers = [_linear(6, 4, seed=0), _linear(6, 4, seed=1)]
    layers[1].weight.data *= 0.1
    for layer in layers:
        prune.l1_unstructured(layer, amount=0.5)
    assert [int((m.weight_mask == 0).sum()) for m in layers] == [12, 12]


def test_global_pruning_drops_the_globally_smallest_magnitudes():
    a, b = _linear(6, 4, seed=0), _linear(3, 2, seed=1)
    everything = np.concatenate([np.abs(a.weight.data).ravel(), np.abs(b.weight.data).ravel()])
    threshold = np.sort(everything)[9]                      # the 10th smallest survives
    prune.global_unstructured([(a, "weight"), (b, "weight")], amount=9)
    for layer in (a, b):
        kept = layer.weight_mask == 1
        assert np.all(np.abs(layer.weight_orig.data[kept]) >= threshold)
        assert np.all(np.abs(layer.weight_orig.data[~kept]) < threshold)


def test_ln_structured_zeroes_the_rows_with_the_smallest_norm():
    layer = _linear(6, 4)
    norms = np.linalg.norm(layer.weight.data, axis=1)
    prune.ln_structured(layer, amount=0.5, n=2, dim=0)
    kept_rows = np.flatnonzero(layer.weight_mask.any(axis=1))
    assert set(kept_rows) == set(np.argsort(norms)[2:])
    assert np.all(layer.weight_mask[kept_rows] == 1)
    assert layer.weight.shape == (4, 6)                     # masks only: the shape stays


def test_ln_structured_along_dim_1_zeroes_input_columns():
    layer = _linear(6, 4)
    prune.ln_structured(layer, amount=2, n=1, dim=1)
    assert int((~layer.weight_mask.any(axis=0)).sum()) == 2


def test_ln_structured_prunes_whole_conv_filters_by_their_max_norm():
    tt.manual_seed(0)
    conv = tt.Conv2d(2, 4, 3)
    peaks = np.abs(conv.weight.data).reshape(4, -1).max(axis=1)
    prune.ln_structured(conv, amount=1, n=math.inf, dim=0)
    assert not conv.weight_mask[np.argmin(peaks)].any()
    assert int(conv.weight_mask.reshape(4, -1).all(axis=1).sum()) == 3


# ----------------------------------------------------------------------- iterative and remove
def test_iterative_pruning_applies_the_amount_to_what_is_still_unpruned():
    layer = _linear(8, 4)                                        # 32 weights
    prune.l1_unstructured(layer, amount=0.5)
    first = layer.weight_mask.copy()
    prune.l1_unstructured(layer, amount=0.5, iterative=True)
    assert int((layer.weight_mask == 0).sum()) == 24             # 16, then half of 16 more
    assert np.all(layer.weight_mask[first == 0] == 0)            # the masks combine
    assert len(layer._forward_pre_hooks) == 1


def test_iterative_global_pruning_counts_the_unpruned_weights_of_all_layers():
    a, b = _linear(4, 4, seed=0), _linear(4, 4, seed=1)          # 32 weights
    pairs = [(a, "weight"), (b, "weight")]
    prune.global_unstructured(pairs, amount=0.5)
    prune.global_unstructured(pairs, amount=0.5, iterative=True)
    assert sum(int((m.weight_mask == 0).sum()) for m in (a, b)) == 24


def test_pruning_twice_without_remove_or_iterative_is_refused_naming_the_fixes():
    layer = prune.l1_unstructured(_linear(), amount=0.5)
    with pytest.raises(ValueError, match=re.escape("Linear.weight is already pruned; call "
                                                   "prune.remove(module, 'weight') first")):
        prune.l1_unstructured(layer, amount=0.5)
    with pytest.raises(ValueError, match="iterative=True"):
        prune.global_unstructured([(layer, "weight")], amount=0.5)


def test_remove_makes_the_pruning_permanent():
    layer = _linear()
    param = layer.weight
    prune.l1_unstructured(layer, amount=0.5)
    masked = layer.weight.data.copy()
    prune.remove(layer, "weight")
    assert layer.weight is param and isinstance(layer.weight, tt.Parameter)
    np.testing.assert_array_equal(layer.weight.data, masked)
    assert layer.buffers() == [] and not layer._forward_pre_hooks
    assert not hasattr(layer, "weight_orig") and not hasattr(layer, "weight_mask")
    assert list(layer.state_dict()) == ["weight", "bias"]        # the original order
    assert not prune.is_pruned(layer)


def test_after_remove_the_zeros_can_train_again_and_pruning_is_allowed_again():
    layer = prune.remove(prune.l1_unstructured(_linear(), amount=0.5))
    (layer(_x((3, 6))) ** 2).sum().backward()
    assert np.any(layer.weight.grad[layer.weight.data == 0] != 0)
    prune.l1_unstructured(layer, amount=0.75)
    assert int((layer.weight_mask == 0).sum()) == 18


def test_is_pruned_looks_inside_a_model():
    model = tt.MLP([4, 5, 2])
    assert not prune.is_pruned(model)
    prune.l1_unstructured(model[2], amount=0.5)
    assert prune.is_pruned(model) and not prune.is_pruned(model[0])


# ----------------------------------------------------------------------- errors
@pytest.mark.parametrize("amount", [1.0, -0.1, 1.5])
def test_a_fraction_outside_zero_one_is_refused(amount):
    with pytest.raises(ValueError, match=re.escape(f"fraction in [0, 1) (or an int count); "
                                                   f"got {amount}")):
        prune.l1_unstructured(_linear(), amount=amount)


def test_a_count_larger_than_the_weights_left_is_refused():
    with pytest.raises(ValueError, match="amount=25 weights is more than the 24 left"):
        prune.l1_unstructured(_linear(), amount=25)


def test_an_amount_that_is_not_a_number_is_refused():
    with pytest.raises(TypeError, match="amount must be"):
        prune.l1_unstructured(_linear(), amount="half")


def test_an_unknown_parameter_name_lists_the_parameters():
    with pytest.raises(ValueError, match=r"no parameter 'weigth' \(its parameters: weight, bias"):
        prune.l1_unstructured(_linear(), "weigth", 0.5)


def test_remove_on_a_parameter_that_is_not_pruned_is_refused():
    with pytest.raises(ValueError, match="Linear.weight is not pruned"):
        prune.remove(_linear(), "weight")


def test_ln_structured_refuses_a_bad_norm_or_dim():
    with pytest.raises(ValueError, match="n must be a positive number"):
        prune.ln_structured(_linear(), amount=0.5, n=0)
    with pytest.raises(ValueError, match=r"dim 2 is out of range for weight of shape \(4, 6\)"):
        prune.ln_structured(_linear(), amount=0.5, dim=2)
