"""Chapter 09 — Convolutions: Conv2d, MaxPool2d and AvgPool2d against naive loops, finite
differences and hand-computed values; im2col's layout; output shapes; error messages."""
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytorch as tt

SETTINGS = dict(max_examples=25, deadline=None)

sides = st.integers(1, 3)
geometries = st.fixed_dictionaries({
    "kernel": st.tuples(sides, sides),
    "stride": st.tuples(st.integers(1, 2), st.integers(1, 2)),
    "padding": st.tuples(st.integers(0, 1), st.integers(0, 1)),
    "h": st.integers(5, 7),
    "w": st.integers(5, 7),
})


def _values(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=shape)


ORACLE = Path(__file__).resolve().parent.parent / "fixtures" / "conv2d_naive.npz"


def stored_naive_conv2d():
    """The definition's outputs, one output element at a time, computed by
    tools/make_oracle_fixtures.py: ``(geometries, outputs, layer_out)``."""
    with np.load(ORACLE, allow_pickle=False) as archive:
        rows = archive["geometries"]
        return rows, [archive[f"out{i}"] for i in range(len(rows))], archive["layer_out"]


# ------------------------------------------------------------------ conv2d values and gradients
def test_conv2d_forward_matches_naive_loop():
    # every kernel 1..3 x 1..3, stride 1..2 x 1..2 and padding 0..1 x 0..1 (144 geometries)
    rows, outputs, _ = stored_naive_conv2d()
    for (kh, kw, sh, sw, ph, pw, h, w), expected in zip(rows.tolist(), outputs):
        x, weight, bias = _values((2, 2, h, w), 1), _values((3, 2, kh, kw), 2), _values(3, 3)
        out = tt.conv2d(tt.Tensor(x), tt.Tensor(weight), tt.Tensor(bias), (sh, sw), (ph, pw))
        np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12,
                                   err_msg=f"kernel {(kh, kw)} stride {(sh, sw)} "
                                           f"padding {(ph, pw)} input {(h, w)}")


@settings(**SETTINGS)
@given(geometries)
def test_conv2d_gradients_wrt_input_weight_and_bias_match_finite_differences(g):
    x, weight = _values((2, 2, g["h"], g["w"]), 1), _values((2, 2) + g["kernel"], 2)
    bias = _values(2, 3)
    assert tt.gradcheck(lambda x, w, b: tt.conv2d(x, w, b, g["stride"], g["padding"]),
                        x, weight, bias)


def test_conv2d_without_bias_matches_finite_differences():
    x, weight = _values((2, 3, 6, 5), 1), _values((2, 3, 2, 3), 2)
    assert tt.gradcheck(lambda x, w: tt.conv2d(x, w, None, stride=(2, 1), padding=(1, 0)),
                        x, weight)


def test_conv2d_gradients_with_a_5x5_kernel_stride_2_and_uneven_padding_match_finite_differences():
    # 25 kernel offsets, larger than the property test's kernels, on a non-square input
    x, weight, bias = _values((2, 3, 9, 8), 1), _values((2, 3, 5, 5), 2), _values(2, 3)
    assert tt.gradcheck(lambda x, w, b: tt.conv2d(x, w, b, stride=2, padding=(2, 1)),
                        x, weight, bias)


@pytest.mark.parametrize("stride, padding, kernel", [(1, 1, (3, 3)), (2, (1, 0), (2, 3))])
def test_conv2d_input_gradient_is_col2im_of_weight_matrix_transpose_times_output_gradient(
        stride, padding, kernel):
    # The chapter's formula: dL/dx = col2im(W_mat.T @ G), with G = dL/dout as (N, F, OH*OW).
    x = tt.Tensor(_values((2, 3, 7, 6), 1), requires_grad=True)
    weight = _values((4, 3) + kernel, 2)
    out = tt.conv2d(x, tt.Tensor(weight), None, stride, padding)
    grad_out = _values(out.shape, 3)
    out.backward(grad_out)
    grad_cols = weight.reshape(4, -1).T @ grad_out.reshape(2, 4, -1)
    expected = tt.col2im(grad_cols, x.shape, *kernel, stride=stride, padding=padding)
    np.testing.assert_allclose(x.grad, expected, rtol=1e-12, atol=1e-12)


def test_conv2d_layer_forward_matches_naive_loop_with_its_own_parameters():
    conv = tt.Conv2d(3, 4, kernel_size=(3, 2), stride=2, padding=1)
    x = _values((2, 3, 7, 6)).astype(np.float32)
    conv.weight.data[...] = _values((4, 3, 3, 2), 4)   # the layer must use these, in place
    conv.bias.data[...] = _values(4, 5)
    expected = stored_naive_conv2d()[2]
    np.testing.assert_allclose(conv(tt.Tensor(x)).data, expected, rtol=1e-5, atol=1e-5)


def test_conv2d_sum_backward_gives_closed_form_weight_and_bias_gradients():
    # d(sum of outputs)/d weight[f, c, i, j] is the sum of the pixels that kernel offset
    # (i, j) touches (stride 1, no padding); d/d bias[f] counts the output positions.
    conv = tt.Conv2d(2, 3, kernel_size=2)
    x = _values((2, 2, 5, 4)).astype(np.float32)
    conv(tt.Tensor(x)).sum().backward()
    touched = np.array([[x[:, :, i:i + 4, j:j + 3].sum(axis=(0, 2, 3)) for j in range(2)]
                        for i in range(2)])                # (kh, kw, C)
    expected_weight = np.broadcast_to(touched.transpose(2, 0, 1), (3, 2, 2, 2))
    assert conv.weight.grad.shape == conv.weight.shape
    np.testing.assert_allclose(conv.weight.grad, expected_weight, rtol=1e-5)
    np.testing.assert_allclose(conv.bias.grad, np.full(3, 2 * 4 * 3), rtol=1e-6)


def test_conv2d_input_gradient_of_sum_counts_the_kernels_covering_each_pixel():
    weight = np.ones((1, 1, 3, 3))
    x = tt.Tensor(np.zeros((1, 1, 4, 4)), requires_grad=True)
    tt.conv2d(x, tt.Tensor(weight)).sum().backward()
    covered = np.array([[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])
    np.testing.assert_array_equal(x.grad[0, 0], covered)


def test_conv2d_keeps_float32_in_output_and_gradients():
    conv = tt.Conv2d(2, 2, 3, padding=1)
    x = tt.Tensor(_values((1, 2, 4, 4)).astype(np.float32), requires_grad=True)
    out = conv(x)
    out.sum().backward()
    assert out.dtype == np.float32
    assert x.grad.dtype == conv.weight.grad.dtype == conv.bias.grad.dtype == np.float32


def test_conv2d_leaves_input_gradient_empty_when_input_does_not_require_it():
    conv = tt.Conv2d(1, 2, 3)
    x = tt.Tensor(_values((1, 1, 5, 5)).astype(np.float32))
    conv(x).sum().backward()
    assert x.grad is None and conv.weight.grad is not None


# ------------------------------------------------------------------ shapes
@pytest.mark.parametrize("h, w, kernel, stride, padding, expected", [
    (32, 32, 3, 1, 1, (32, 32)),            # "same" convolution
    (28, 28, 5, 1, 0, (24, 24)),            # LeNet's first layer
    (7, 7, 3, 2, 0, (3, 3)),
    (8, 8, 3, 2, 1, (4, 4)),                # (8 + 2 - 3) // 2 + 1 = 4
    (5, 7, (3, 1), (2, 1), (0, 1), (2, 9)),
    (4, 4, 4, 1, 0, (1, 1)),                # kernel as large as the input
])
def test_conv_output_shape_follows_the_formula(h, w, kernel, stride, padding, expected):
    assert tt.conv_output_shape(h, w, kernel, stride, padding) == expected


@settings(**SETTINGS)
@given(geometries)
def test_conv2d_layer_output_shape_matches_conv_output_shape(g):
    conv = tt.Conv2d(2, 3, g["kernel"], g["stride"], g["padding"])
    out = conv(tt.Tensor(np.zeros((2, 2, g["h"], g["w"]), dtype=np.float32)))
    assert out.shape == (2, 3) + tt.conv_output_shape(g["h"], g["w"], g["kernel"],
                                                      g["stride"], g["padding"])


def test_conv_output_shape_rejects_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"kernel size \(6, 6\).*\(3, 3\).*padded by \(1, 1\)"):
        tt.conv_output_shape(3, 3, 6, padding=1)  # 3 + 2 < 6


# ------------------------------------------------------------------ im2col / col2im
def test_im2col_puts_each_window_in_a_column_in_row_major_output_order():
    x = np.arange(9.0).reshape(1, 1, 3, 3)  # [[0 1 2] [3 4 5] [6 7 8]]
    cols = tt.im2col(x, 2, 2)
    expected = np.array([[0, 1, 3, 4],      # kernel offset (0, 0) at the 4 output positions
                         [1, 2, 4, 5],      # offset (0, 1)
                         [3, 4, 6, 7],      # offset (1, 0)
                         [4, 5, 7, 8]])     # offset (1, 1)
    np.testing.assert_array_equal(cols, expected[None])


def test_im2col_orders_rows_channel_first_and_includes_zero_padding():
    x = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 2.0)])[None]  # (1, 2, 2, 2)
    cols = tt.im2col(x, 3, 3, stride=1, padding=1)
    assert cols.shape == (1, 2 * 9, 4)
    channel_1, channel_2 = cols[0, :9], cols[0, 9:]
    assert set(np.unique(channel_1)) == {0.0, 1.0} and set(np.unique(channel_2)) == {0.0, 2.0}
    # output position (0, 0): the kernel's top row and left column lie in the padding
    np.testing.assert_array_equal(channel_1[:, 0].reshape(3, 3), [[0, 0, 0], [0, 1, 1], [0, 1, 1]])


@settings(**SETTINGS)
@given(geometries)
def test_col2im_is_the_adjoint_of_im2col(g):
    # <im2col(x), c> == <x, col2im(c)> for every x and c: col2im sends each entry back to
    # the pixel it was copied from, which is exactly the input gradient of im2col.
    kh, kw = g["kernel"]
    x = _values((2, 2, g["h"], g["w"]), 1)
    cols = tt.im2col(x, kh, kw, g["stride"], g["padding"])
    c = _values(cols.shape, 2)
    back = tt.col2im(c, x.shape, kh, kw, g["stride"], g["padding"])
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(cols * c), np.sum(x * back), rtol=1e-10)


# ------------------------------------------------------------------ Conv2d layer
def test_conv2d_parameters_have_pytorch_shapes_and_order():
    conv = tt.Conv2d(3, 8, kernel_size=(5, 3))
    assert conv.weight.shape == (8, 3, 5, 3) and conv.bias.shape == (8,)
    assert conv.parameters() == [conv.weight, conv.bias]
    assert conv.weight.dtype == conv.bias.dtype == np.float32


def test_conv2d_without_bias_has_only_a_weight():
    conv = tt.Conv2d(3, 8, 3, bias=False)
    assert conv.bias is None and conv.parameters() == [conv.weight]


def test_conv2d_init_is_uniform_within_one_over_sqrt_fan_in():
    conv = tt.Conv2d(4, 64, 3)
    bound = 1 / np.sqrt(4 * 3 * 3)  # 1/6
    w = conv.weight.data
    assert np.abs(w).max() <= bound and np.abs(conv.bias.data).max() <= bound
    assert np.abs(w).max() > 0.95 * bound                # fills the range...
    assert abs(w.std() - bound / np.sqrt(3)) < 0.01      # ...uniformly (std of U(-a, a))


def test_conv2d_init_is_repeatable_with_manual_seed():
    tt.manual_seed(7)
    first = tt.Conv2d(2, 3, 3).weight.data
    tt.manual_seed(7)
    np.testing.assert_array_equal(tt.Conv2d(2, 3, 3).weight.data, first)


def test_conv2d_repr_matches_pytorch():
    assert repr(tt.Conv2d(3, 16, 3, padding=1)) == \
        "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    assert repr(tt.Conv2d(1, 6, 5, stride=2, bias=False)) == \
        "Conv2d(1, 6, kernel_size=(5, 5), stride=(2, 2), bias=False)"


def test_conv2d_rejects_kernel_larger_than_padded_input():
    conv = tt.Conv2d(1, 1, 5, padding=(0, 1))
    with pytest.raises(ValueError, match=re.escape("kernel size (5, 5) is larger than the input "
                                                   "of shape (2, 1, 3, 3) padded by (0, 1)")):
        conv(tt.Tensor(np.zeros((2, 1, 3, 3), dtype=np.float32)))


def test_conv2d_rejects_input_with_wrong_channel_count():
    conv = tt.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"shape \(2, 4, 5, 5\) has 4 channels.*in_channels=3"):
        conv(tt.Tensor(np.zeros((2, 4, 5, 5), dtype=np.float32)))


def test_conv2d_rejects_3d_input():
    with pytest.raises(ValueError, match=r"4-D input \(N, C, H, W\); got shape \(3, 5, 5\)"):
        tt.Conv2d(3, 4, 3)(tt.Tensor(np.zeros((3, 5, 5), dtype=np.float32)))


def test_conv2d_rejects_non_positive_stride_and_non_integer_kernel():
    with pytest.raises(ValueError, match=r"stride must be positive; got \(0, 0\)"):
        tt.Conv2d(1, 1, 3, stride=0)
    with pytest.raises(TypeError, match=r"kernel_size must be an int or a pair of ints; got 2.5"):
        tt.Conv2d(1, 1, 2.5)


# ------------------------------------------------------------------ MaxPool2d
def test_maxpool_takes_the_largest_value_of_each_window():
    x = np.array([[1, 5, 2, 0],
                  [3, 4, 8, 1],
                  [0, 2, 6, 7],
                  [9, 1, 3, 5]], dtype=np.float32)[None, None]
    out = tt.MaxPool2d(2)(tt.Tensor(x))
    np.testing.assert_array_equal(out.data[0, 0], [[5, 8], [9, 7]])


def test_maxpool_stride_defaults_to_kernel_size_and_can_overlap():
    x = tt.Tensor(np.zeros((2, 3, 6, 6), dtype=np.float32))
    assert tt.MaxPool2d(2)(x).shape == (2, 3, 3, 3)
    assert tt.MaxPool2d(3, stride=1)(x).shape == (2, 3, 4, 4)


def test_maxpool_routes_a_tied_window_gradient_to_its_first_element_only():
    x = tt.Tensor(np.full((1, 1, 2, 2), 3.0), requires_grad=True)  # a flat region
    tt.MaxPool2d(2)(x).sum().backward()
    np.testing.assert_array_equal(x.grad[0, 0], [[1, 0], [0, 0]])


def test_maxpool_picks_the_first_tied_maximum_in_row_major_order():
    x = tt.Tensor(np.array([[0.0, 3.0], [3.0, 1.0]])[None, None], requires_grad=True)
    tt.MaxPool2d(2)(x).sum().backward()
    np.testing.assert_array_equal(x.grad[0, 0], [[0, 1], [0, 0]])


def test_maxpool_overlapping_windows_add_their_gradients():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0  # the centre is the max of all four 2x2 windows
    xt = tt.Tensor(x, requires_grad=True)
    out = tt.MaxPool2d(2, stride=1)(xt)
    out.backward(np.array([[1.0, 2.0], [3.0, 4.0]])[None, None])
    expected = np.zeros((3, 3))
    expected[1, 1] = 1 + 2 + 3 + 4
    np.testing.assert_array_equal(xt.grad[0, 0], expected)


def test_maxpool_sends_the_gradient_of_a_window_with_a_nan_to_its_last_nan_like_pytorch():
    # torch.nn.functional.max_pool2d on the same input: output nan, gradient 1 at [1, 0].
    nan = np.nan
    x = tt.Tensor(np.array([[1.0, nan], [nan, 0.0]])[None, None], requires_grad=True)
    out = tt.MaxPool2d(2)(x)
    out.sum().backward()
    assert np.isnan(out.data).all()
    np.testing.assert_array_equal(x.grad[0, 0], [[0, 0], [1, 0]])


def test_maxpool_nan_windows_overlapping_send_to_the_nan_and_other_windows_are_unchanged():
    # PyTorch: stride-1 windows [[1, nan], [5, nan]] and [[nan, 2], [nan, 3]] both choose the
    # NaN at [1, 1], so it receives 2; the finite second image routes as without NaNs.
    nan = np.nan
    x = np.array([[[[1.0, nan, 2.0], [5.0, nan, 3.0]]], [[[1.0, 4.0, 2.0], [5.0, 0.0, 3.0]]]])
    xt = tt.Tensor(x, requires_grad=True)
    tt.max_pool2d(xt, 2, stride=1).sum().backward()
    np.testing.assert_array_equal(xt.grad[0, 0], [[0, 0, 0], [0, 2, 0]])
    np.testing.assert_array_equal(xt.grad[1, 0], [[0, 1, 0], [1, 0, 0]])


@settings(**SETTINGS)
@given(st.tuples(sides, sides), st.tuples(st.integers(1, 3), st.integers(1, 3)),
       st.integers(4, 6), st.integers(4, 6))
def test_maxpool_matches_finite_differences(kernel, stride, h, w):
    # distinct values at least 0.1 apart: finite differences never cross a tie
    x = np.random.default_rng(0).permutation(2 * 2 * h * w).reshape(2, 2, h, w) * 0.1
    assert tt.gradcheck(lambda t: tt.max_pool2d(t, kernel, stride), x)


def test_maxpool_rejects_3d_input_and_kernel_larger_than_input():
    with pytest.raises(ValueError, match=r"got shape \(1, 4, 4\)"):
        tt.MaxPool2d(2)(tt.Tensor(np.zeros((1, 4, 4), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"kernel size \(5, 5\).*\(1, 1, 4, 4\)"):
        tt.MaxPool2d(5)(tt.Tensor(np.zeros((1, 1, 4, 4), dtype=np.float32)))


def test_pool_reprs_match_pytorch_fields():
    assert repr(tt.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2)"
    assert repr(tt.AvgPool2d(3, stride=1)) == "AvgPool2d(kernel_size=3, stride=1)"


# ------------------------------------------------------------------ AvgPool2d
def test_avgpool_takes_the_mean_of_each_window():
    x = np.array([[1, 5, 2, 0],
                  [3, 4, 8, 1],
                  [0, 2, 6, 7],
                  [9, 1, 3, 5]], dtype=np.float32)[None, None]
    out = tt.AvgPool2d(2)(tt.Tensor(x))
    np.testing.assert_allclose(out.data[0, 0], [[13 / 4, 11 / 4], [12 / 4, 21 / 4]])
    assert out.dtype == np.float32


@settings(**SETTINGS)
@given(st.tuples(sides, sides), st.tuples(st.integers(1, 3), st.integers(1, 3)),
       st.integers(4, 6), st.integers(4, 6))
def test_avgpool_matches_finite_differences(kernel, stride, h, w):
    assert tt.gradcheck(lambda t: tt.avg_pool2d(t, kernel, stride), _values((2, 2, h, w)))


# ------------------------------------------------------------------ end to end
def test_conv_pool_stack_backpropagates_to_every_parameter():
    conv1, pool, conv2 = tt.Conv2d(1, 4, 3, padding=1), tt.MaxPool2d(2), tt.Conv2d(4, 2, 3)
    x = tt.Tensor(_values((2, 1, 8, 8)).astype(np.float32))
    out = conv2(pool(conv1(x)))
    assert out.shape == (2, 2, 2, 2)
    out.sum().backward()
    for p in conv1.parameters() + conv2.parameters():
        assert p.grad is not None and p.grad.shape == p.shape and np.any(p.grad != 0)
