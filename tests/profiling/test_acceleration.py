"""Chapter 17: the slow and the fast versions compute the same thing, and the roofline's
costs match hand counts."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytorch as tt
from tinytorch import perf

MATMULS = [perf.matmul_loops, perf.matmul_broadcast, perf.matmul_einsum,
           lambda a, b: perf.matmul_tiled(a, b, tile=3),
           lambda a, b: perf.matmul_tiled(a, b, tile=4, kernel=perf.matmul_loops),
           lambda a, b: perf.matmul_tiled(a, b, tile=2, kernel=np.matmul)]
MATMUL_IDS = ["loops", "broadcast", "einsum", "tiled", "tiled-loops", "tiled-blas"]


def random(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ===================================================================== matmul
@pytest.mark.parametrize("matmul", MATMULS, ids=MATMUL_IDS)
def test_every_matmul_equals_numpy_on_a_rectangular_product(matmul):
    a, b = random(7, 5), random(5, 9, seed=1)
    np.testing.assert_allclose(matmul(a, b), a @ b, rtol=1e-5, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 6), k=st.integers(1, 6), n=st.integers(1, 6), tile=st.integers(1, 7))
def test_tiles_of_any_size_give_the_product(m, k, n, tile):
    a, b = random(m, k, dtype=np.float64), random(k, n, seed=1, dtype=np.float64)
    np.testing.assert_allclose(perf.matmul_tiled(a, b, tile=tile), a @ b, rtol=1e-12)


@pytest.mark.parametrize("matmul", MATMULS, ids=MATMUL_IDS)
def test_a_matmul_keeps_float64(matmul):
    a, b = random(3, 4, dtype=np.float64), random(4, 2, dtype=np.float64)
    assert matmul(a, b).dtype == np.float64


@pytest.mark.parametrize("matmul", [perf.matmul_loops, perf.matmul_broadcast,
                                    perf.matmul_einsum, perf.matmul_tiled])
def test_a_matmul_of_mismatched_shapes_names_them(matmul):
    with pytest.raises(ValueError, match=r"needs matrices \(M, K\) and \(K, N\); got shapes "
                                         r"\(2, 3\) and \(4, 2\)"):
        matmul(np.ones((2, 3)), np.ones((4, 2)))


def test_a_tile_must_be_positive():
    with pytest.raises(ValueError, match="matmul_tiled: tile must be at least 1; got 0"):
        perf.matmul_tiled(np.ones((2, 2)), np.ones((2, 2)), tile=0)


# ===================================================================== convolution
@pytest.mark.parametrize("conv", [perf.conv2d_loops, perf.conv2d_windows],
                         ids=["loops", "windows"])
@pytest.mark.parametrize("kernel, stride, padding, bias", [
    ((3, 3), 1, 0, True), ((3, 3), 2, 1, False), ((2, 3), (1, 2), (1, 0), True)])
def test_every_convolution_equals_the_package_conv2d(conv, kernel, stride, padding, bias):
    x, w = random(2, 3, 7, 6), random(4, 3, *kernel, seed=1)
    b = random(4, seed=2) if bias else None
    expected = tt.conv2d(tt.Tensor(x), tt.Tensor(w), None if b is None else tt.Tensor(b),
                         stride=stride, padding=padding).data
    np.testing.assert_allclose(conv(x, w, b, stride, padding), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("conv", [perf.conv2d_loops, perf.conv2d_windows])
def test_a_convolution_with_mismatched_channels_names_the_shapes(conv):
    with pytest.raises(ValueError, match=r"the same C; got shapes \(1, 2, 5, 5\) and "
                                         r"\(3, 4, 3, 3\)"):
        conv(np.ones((1, 2, 5, 5)), np.ones((3, 4, 3, 3)))


# ===================================================================== roofline
def test_matmul_cost_is_two_flops_per_multiply_add_and_each_matrix_moved_once():
    assert perf.matmul_cost(2, 3, 4) == (2 * 2 * 3 * 4, (2 * 3 + 3 * 4 + 2 * 4) * 4)
    assert perf.matmul_cost(2, 3, 4, itemsize=8)[1] == (6 + 12 + 8) * 8


def test_conv2d_cost_counts_outputs_times_window_and_moves_input_weight_output():
    flops, nbytes = perf.conv2d_cost((2, 3, 8, 8), (5, 3, 3, 3), stride=1, padding=1)
    assert flops == 2 * 2 * 8 * 8 * 5 * 3 * 3 * 3
    assert nbytes == (2 * 3 * 8 * 8 + 5 * 3 * 3 * 3 + 2 * 5 * 8 * 8) * 4


def test_conv2d_cost_checks_the_channels():
    with pytest.raises(ValueError, match=r"has 3 channels, the weight \(5, 2, 3, 3\) expects 2"):
        perf.conv2d_cost((1, 3, 8, 8), (5, 2, 3, 3))


def test_elementwise_add_does_one_flop_per_twelve_bytes_in_float32():
    flops, nbytes = perf.elementwise_cost(1000)
    assert (flops, nbytes) == (1000, 12_000)
    assert perf.arithmetic_intensity(flops, nbytes) == pytest.approx(1 / 12)


def test_intensity_needs_bytes():
    with pytest.raises(ValueError, match="bytes must be positive; got 0"):
        perf.arithmetic_intensity(10, 0)


def test_the_roof_is_bandwidth_bound_below_the_ridge_and_flat_above():
    peak, bandwidth = 100e9, 10e9
    assert perf.ridge_point(peak, bandwidth) == 10.0
    np.testing.assert_allclose(perf.attainable([0.5, 10.0, 40.0], peak, bandwidth),
                               [5e9, 100e9, 100e9])


def test_a_measured_matmul_rate_counts_its_flops_and_is_positive():
    rate = perf.measure_matmul(8, 16, 4, repeats=3, warmup=1)
    assert rate.work == 2 * 8 * 16 * 4 and len(rate.timing) == 3
    assert np.isfinite(rate.per_second) and rate.per_second > 0
    low, high = rate.spread
    assert 0 < low <= rate.per_second <= high


def test_measured_bandwidth_counts_two_arrays_read_and_one_written():
    rate = perf.measure_bandwidth(nbytes=400_000, repeats=3)
    assert rate.work == 3 * 400_000
    assert rate.per_second > 0
