"""Chapter 15 — Quantization: the affine and symmetric quantizers (PyTorch's min/max rule:
the range contains 0), per tensor and per channel, int4 packing, the quantized Linear and
Conv2d layers and quantize_model."""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytorch as tt
from tinytorch import quantization as Q

SETTINGS = dict(max_examples=60, deadline=None)


def _round_trip_error(x, q, scale, zero_point, axis=None):
    return np.abs(Q.dequantize(q, scale, zero_point, axis).astype(np.float64) - x)


def _half_step(x, scale, axis=None):
    """scale/2 per element, plus the float32 rounding of the reconstructed value."""
    if axis is not None:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
    return scale.astype(np.float64) / 2 * (1 + 1e-6) + np.abs(x) * 2.0 ** -23


finite_arrays = hnp.arrays(
    np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
    elements=st.floats(-1e4, 1e4, width=32))


# ----------------------------------------------------------------------- round trip
@settings(**SETTINGS)
@given(finite_arrays, st.integers(2, 16), st.sampled_from(Q.SCHEMES))
def test_every_value_round_trips_within_half_a_step(x, bits, scheme):
    q, scale, zero_point = Q.quantize(x, bits, scheme)
    assert np.all(_round_trip_error(x, q, scale, zero_point) <= _half_step(x, scale))


@settings(**SETTINGS)
@given(finite_arrays, st.integers(2, 16), st.sampled_from(Q.SCHEMES), st.data())
def test_every_value_round_trips_within_half_its_channels_step(x, bits, scheme, data):
    axis = data.draw(st.integers(0, x.ndim - 1))
    q, scale, zero_point = Q.quantize(x, bits, scheme, per_channel_axis=axis)
    error = _round_trip_error(x, q, scale, zero_point, axis)
    assert np.all(error <= _half_step(x, scale, axis))


@settings(**SETTINGS)
@given(finite_arrays, st.integers(2, 16), st.sampled_from(Q.SCHEMES))
def test_zero_is_exact_and_the_zero_point_is_a_representable_integer(x, bits, scheme):
    x = np.append(x.ravel(), np.float32(0))
    q, scale, zero_point = Q.quantize(x, bits, scheme)
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    assert qmin <= zero_point <= qmax
    assert Q.dequantize(q, scale, zero_point)[-1] == 0.0


@pytest.mark.parametrize("scheme", Q.SCHEMES)
@pytest.mark.parametrize("value", [3.7, -0.25, 0.0, 1e-12])
def test_a_constant_tensor_round_trips_within_half_a_step(value, scheme):
    x = np.full((3, 4), value, dtype=np.float32)
    q, scale, zero_point = Q.quantize(x, 8, scheme)
    assert np.all(_round_trip_error(x, q, scale, zero_point) <= _half_step(x, scale))
    assert scale > 0


@pytest.mark.parametrize("sign", [1, -1])
def test_a_one_signed_tensor_uses_the_whole_affine_range_and_round_trips(sign):
    x = sign * np.linspace(0.5, 2.0, 50, dtype=np.float32)
    q, scale, zero_point = Q.quantize(x, 8, "affine")
    assert np.all(_round_trip_error(x, q, scale, zero_point) <= _half_step(x, scale))
    assert np.isclose(scale, 2.0 / 255)                         # range [0, 2] or [-2, 0]
    assert zero_point == (-128 if sign > 0 else 127)


def test_affine_uses_min_and_max_extended_to_zero_as_pytorch_does():
    q, scale, zero_point = Q.quantize(np.array([-1.0, 0.5, 3.0], np.float32), 8, "affine")
    assert np.isclose(scale, 4.0 / 255)
    assert zero_point == -128 + round(1.0 / (4.0 / 255))
    assert q.tolist() == [-128, int(zero_point) + round(0.5 / scale), 127]


def test_symmetric_has_zero_point_zero_and_scale_max_abs_over_half_the_range():
    q, scale, zero_point = Q.quantize(np.array([-1.0, 0.5, 3.0], np.float32), 8, "symmetric")
    assert zero_point == 0 and np.isclose(scale, 3.0 / 127.5)


# ----------------------------------------------------------------------- shapes and dtypes
@pytest.mark.parametrize("bits, dtype", [(2, np.int8), (4, np.int8), (8, np.int8),
                                         (9, np.int16), (16, np.int16)])
def test_values_are_stored_as_int8_up_to_8_bits_and_int16_above(bits, dtype):
    q, scale, zero_point = Q.quantize(np.linspace(0, 1, 20, dtype=np.float32), bits)
    assert q.dtype == dtype and zero_point.dtype == dtype and scale.dtype == np.float32
    assert q.min() == -(2 ** (bits - 1)) and q.max() == 2 ** (bits - 1) - 1


@pytest.mark.parametrize("axis, channels", [(0, 4), (1, 3), (-1, 5)])
def test_per_channel_gives_one_scale_and_zero_point_per_slice(axis, channels):
    x = np.random.default_rng(0).standard_normal((4, 3, 5)).astype(np.float32)
    q, scale, zero_point = Q.quantize(x, per_channel_axis=axis)
    assert q.shape == x.shape
    assert scale.shape == (channels,) and zero_point.shape == (channels,)


def test_per_tensor_gives_scalar_scale_and_zero_point():
    q, scale, zero_point = Q.quantize(np.ones((2, 3), np.float32))
    assert scale.shape == () and zero_point.shape == ()


def test_per_channel_scales_follow_each_rows_own_range():
    x = np.array([[0.01, -0.02], [10.0, -5.0]], np.float32)
    _, scale, _ = Q.quantize(x, per_channel_axis=0)
    np.testing.assert_allclose(scale, [0.03 / 255, 15.0 / 255], rtol=1e-6)


def test_dequantize_checks_the_scale_shape_against_the_channels():
    q, scale, zero_point = Q.quantize(np.ones((4, 3), np.float32), per_channel_axis=0)
    with pytest.raises(ValueError, match=r"has 4 channels along axis 0"):
        Q.dequantize(q, scale[:3], zero_point[:3], per_channel_axis=0)
    with pytest.raises(ValueError, match="per_channel_axis"):
        Q.dequantize(q, scale, zero_point)


def test_int4_packs_two_values_per_byte_and_unpacks_exactly():
    q, _, _ = Q.quantize(np.random.default_rng(1).standard_normal((7, 5)).astype(np.float32), 4)
    packed = Q.pack_int4(q)
    assert packed.dtype == np.uint8 and packed.nbytes == (q.size + 1) // 2
    np.testing.assert_array_equal(Q.unpack_int4(packed, q.shape), q)


def test_pack_int4_refuses_values_outside_four_bits():
    with pytest.raises(ValueError, match=r"\[-8, 7\]"):
        Q.pack_int4(np.array([8], np.int8))


# ----------------------------------------------------------------------- errors
@pytest.mark.parametrize("values", [np.arange(4), np.array([True, False]),
                                    np.arange(4, dtype=np.int8)])
def test_quantizing_integers_is_refused(values):
    with pytest.raises(TypeError, match=f"dtype {values.dtype}"):
        Q.quantize(values)


@pytest.mark.parametrize("bits", [1, 17, 0, 32])
def test_bits_outside_2_to_16_are_refused(bits):
    with pytest.raises(ValueError, match=f"between 2 and 16; got {bits}"):
        Q.quantize(np.ones(3, np.float32), bits)


def test_bits_must_be_an_int():
    with pytest.raises(TypeError, match="bits must be an int"):
        Q.quantize(np.ones(3, np.float32), 8.0)


def test_an_unknown_scheme_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=re.escape("unknown scheme 'asym'; choose one of "
                                                   "('affine', 'symmetric')")):
        Q.quantize(np.ones(3, np.float32), scheme="asym")


def test_non_finite_and_empty_tensors_are_refused():
    with pytest.raises(ValueError, match="NaN or infinite"):
        Q.quantize(np.array([1.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="empty"):
        Q.quantize(np.zeros(0, np.float32))


def test_a_per_channel_axis_out_of_range_is_refused():
    with pytest.raises(ValueError, match="dim 2 is out of range"):
        Q.quantize(np.ones((2, 3), np.float32), per_channel_axis=2)


# ----------------------------------------------------------------------- layers
def _linear(n_in=32, n_out=16):
    tt.manual_seed(0)
    return tt.Linear(n_in, n_out)


def _inputs(shape, seed=0):
    return tt.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def test_quantized_linear_stores_int8_weights_and_5_bytes_per_channel():
    layer = _linear(64, 32)
    quantized = Q.QuantizedLinear(layer)
    assert quantized.weight_q.dtype == np.int8 and quantized.weight_q.shape == (32, 64)
    assert 4 * quantized.weight_q.nbytes == layer.weight.nbytes
    assert quantized.weight_scale.nbytes + quantized.weight_zero_point.nbytes == 32 * (4 + 1)
    assert quantized.parameters() == []                   # inference only: buffers


@pytest.mark.parametrize("per_channel, n_in", [(True, 256), (False, 8)])
def test_the_stored_weight_is_at_least_3_9_times_smaller(per_channel, n_in):
    """Per channel, each row of n_in bytes carries 5 more: 4 n_in / (n_in + 5) >= 3.9 needs
    n_in >= 195 (the milestone MLP's 784 inputs, say); per tensor only 5 bytes in all."""
    layer = _linear(n_in, 32)
    quantized = Q.QuantizedLinear(layer, per_channel=per_channel)
    stored = (quantized.weight_q.nbytes + quantized.weight_scale.nbytes
              + quantized.weight_zero_point.nbytes)
    assert layer.weight.nbytes / stored >= 3.9


def test_quantized_linear_output_is_close_to_the_float_output():
    layer, x = _linear(), _inputs((8, 32))
    quantized = Q.QuantizedLinear(layer)
    expected = x.data @ quantized.dequantized_weight().T + layer.bias.data
    np.testing.assert_allclose(quantized(x).data, expected, rtol=1e-5, atol=1e-6)
    # Each weight is off by at most scale/2, so each output by at most |x| . scale/2.
    bound = np.abs(x.data) @ np.broadcast_to(quantized.weight_scale[:, None] / 2,
                                             layer.weight.shape).T
    assert np.all(np.abs(quantized(x).data - layer(x).data) <= bound * 1.001 + 1e-6)


def test_quantized_linear_leaves_the_float_layer_unchanged():
    layer = _linear()
    before = layer.weight.data.copy()
    Q.QuantizedLinear(layer, bits=4)
    np.testing.assert_array_equal(layer.weight.data, before)


def test_integer_compute_matches_the_float_compute_on_the_same_grids():
    layer, x = _linear(), _inputs((8, 32))
    integer = Q.QuantizedLinear(layer, compute="integer")
    qx, sx, zx = Q.quantize(x.data, 8)
    on_grid = Q.dequantize(qx, sx, zx) @ integer.dequantized_weight().T + layer.bias.data
    np.testing.assert_allclose(integer(x).data, on_grid, rtol=1e-4, atol=1e-5)


def test_integer_compute_refuses_more_than_8_bits():
    with pytest.raises(ValueError, match="at most 8 bits"):
        Q.QuantizedLinear(_linear(), bits=12, compute="integer")(_inputs((2, 32)))


def test_quantized_linear_refuses_a_wrong_input_width():
    with pytest.raises(ValueError, match=r"last dimension 32, got shape \(2, 5\)"):
        Q.QuantizedLinear(_linear())(_inputs((2, 5)))


def test_quantized_conv2d_is_close_to_the_float_convolution():
    tt.manual_seed(0)
    conv = tt.Conv2d(3, 4, 3, padding=1)
    quantized, x = Q.QuantizedConv2d(conv), _inputs((2, 3, 6, 6))
    assert quantized.weight_q.dtype == np.int8 and quantized.weight_scale.shape == (4,)
    np.testing.assert_allclose(quantized(x).data, conv(x).data, atol=0.02)


def test_quantize_model_replaces_every_layer_and_leaves_the_original_untouched():
    tt.manual_seed(0)
    model = tt.Sequential(tt.Conv2d(1, 2, 3), tt.ReLU(), tt.Flatten(), tt.Linear(32, 3))
    before = model.state_dict()
    quantized = Q.quantize_model(model, bits=8)
    assert isinstance(quantized[0], Q.QuantizedConv2d)
    assert isinstance(quantized[3], Q.QuantizedLinear)
    assert isinstance(model[0], tt.Conv2d) and isinstance(model[3], tt.Linear)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    x = _inputs((4, 1, 6, 6))
    np.testing.assert_allclose(quantized(x).data, model(x).data, atol=0.02)


def test_quantize_model_shrinks_the_milestone_mlp_at_least_3_9_times():
    tt.manual_seed(0)
    model = tt.MLP([784, 128, 10])
    assert Q.model_nbytes(model) / Q.model_nbytes(Q.quantize_model(model)) >= 3.9


def test_calibration_fixes_each_layers_input_grid_from_the_observed_range():
    tt.manual_seed(0)
    model = tt.MLP([4, 8, 2])
    batches = [np.linspace(-1, 3, 20, dtype=np.float32).reshape(5, 4)]
    quantized = Q.quantize_model(model, calibration_loader=batches)
    first = quantized[0]
    assert first.calibrated and np.isclose(first.input_scale, 4.0 / 255)
    x = tt.Tensor(batches[0])
    np.testing.assert_allclose(quantized(x).data, model(x).data, atol=0.05)
