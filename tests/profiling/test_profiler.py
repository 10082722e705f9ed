"""Chapter 14: FLOPs from the engine's records against hand counts, latency statistics,
peak memory against a lower bound, and the per-op breakdown of a training step."""
import itertools

import numpy as np
import pytest

import tinytorch as tt
from tinytorch.profiling import (
    Profiler,
    Timing,
    activation_bytes,
    count_flops,
    measure_latency,
    op_breakdown,
    peak_memory,
    time_call,
)


def batch(*shape, seed=0):
    return tt.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def fake_clock(durations):
    """A clock whose consecutive (start, end) readings are ``durations`` apart."""
    readings = itertools.accumulate(d for duration in durations for d in (1.0, duration))
    return lambda: next(readings)


# ====================================================================== FLOPs
def test_linear_flops_are_two_per_weight_per_row_with_batch_and_sequence_counted():
    b, t, n_in, n_out = 3, 5, 7, 4
    flops = count_flops(tt.Linear(n_in, n_out, bias=False), batch(b, t, n_in))
    assert flops.total == 2 * (b * t) * n_in * n_out
    assert flops.by("kind") == {"matmul": 2 * (b * t) * n_in * n_out}


def test_the_bias_adds_one_flop_per_output():
    n, n_in, n_out = 6, 7, 4
    flops = count_flops(tt.Linear(n_in, n_out), batch(n, n_in))
    assert flops.by("kind") == {"matmul": 2 * n * n_in * n_out, "bias": n * n_out}


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1)])
def test_conv2d_flops_match_the_hand_count(stride, padding):
    n, c_in, c_out, h, w, k = 2, 3, 5, 9, 8, 3
    conv = tt.Conv2d(c_in, c_out, k, stride=stride, padding=padding)
    oh, ow = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    flops = count_flops(conv, batch(n, c_in, h, w))
    assert flops.by("kind") == {"matmul": 2 * n * oh * ow * c_out * c_in * k * k,
                                "bias": n * c_out * oh * ow}


def test_attention_matmuls_cost_four_b_h_t_squared_d_head_and_softmax_one_per_score():
    b, t, c, h = 2, 6, 16, 4
    d = c // h
    flops = count_flops(tt.MultiHeadAttention(c, h), batch(b, t, c), is_causal=True)
    attention = [r for r in flops.records if r.op == "scaled_dot_product_attention"]
    assert {r.kind: r.flops for r in attention} == {"matmul": 4 * b * h * t * t * d,
                                                    "softmax": b * h * t * t}
    projections = 2 * b * t * c * 3 * c + b * t * 3 * c + 2 * b * t * c * c + b * t * c
    assert flops.total == projections + 4 * b * h * t * t * d + b * h * t * t
    assert flops.uncounted == {}


def test_attention_records_belong_to_the_attention_module():
    model = tt.Sequential(tt.MultiHeadAttention(8, 2))
    flops = count_flops(model, batch(1, 3, 8))
    assert set(flops.by("module")) == {"0", "0.c_attn", "0.c_proj"}


def test_mlp_flops_are_its_layers_and_activations():
    n, sizes = 10, [12, 20, 6]
    flops = count_flops(tt.MLP(sizes), batch(n, sizes[0]))
    linear = sum(2 * n * a * b + n * b for a, b in zip(sizes[:-1], sizes[1:]))
    assert flops.by("op") == {"linear": linear, "relu": n * sizes[1]}
    assert flops.uncounted == {}


def gpt_hand_count(b, t, vocab, n_layer, n_head, c):
    """FLOPs of GPT's forward pass, written out layer by layer from the conventions."""
    rows = b * t
    layer_norm = rows * c                                    # one pointwise pass
    attention = (2 * rows * c * 3 * c + rows * 3 * c          # c_attn
                 + 4 * b * n_head * t * t * (c // n_head)     # Q K^T and weights V
                 + b * n_head * t * t                         # softmax
                 + 2 * rows * c * c + rows * c)               # c_proj
    mlp = (2 * rows * c * 4 * c + rows * 4 * c                # c_fc
           + rows * 4 * c                                     # gelu
           + 2 * rows * 4 * c * c + rows * c)                 # c_proj
    block = layer_norm + attention + rows * c + layer_norm + mlp + rows * c   # 2 residuals
    embeddings = rows * c                                     # token + position vectors
    return embeddings + n_layer * block + layer_norm + 2 * rows * c * vocab   # ln_f, lm_head


def test_tiny_gpt_flops_equal_the_hand_count():
    b, t, vocab, n_layer, n_head, c = 2, 8, 11, 2, 2, 16
    tt.manual_seed(0)
    model = tt.GPT(vocab, t, n_layer, n_head, c)
    ids = np.random.default_rng(0).integers(0, vocab, (b, t))
    flops = count_flops(model, ids)
    assert flops.uncounted == {}
    assert flops.total == gpt_hand_count(b, t, vocab, n_layer, n_head, c)


@pytest.mark.parametrize("pool, per_output", [(tt.MaxPool2d(2), 3), (tt.AvgPool2d(2), 4)])
def test_pooling_costs_one_comparison_or_addition_per_window_element(pool, per_output):
    flops = count_flops(pool, batch(2, 3, 4, 6))
    assert flops.total == 2 * 3 * 2 * 3 * per_output


class BareMatmul(tt.Module):
    def __init__(self):
        super().__init__()
        self.w = tt.Parameter(np.ones((4, 3), dtype=np.float32))

    def forward(self, x):
        return (x @ self.w).sum()


def test_ops_the_conventions_cannot_price_are_listed_not_guessed():
    flops = count_flops(BareMatmul(), batch(2, 4))
    assert flops.total == 0
    assert flops.uncounted == {"@": 1, "sum": 1}


def test_counting_removes_its_hooks_even_when_the_forward_pass_fails():
    model = tt.MLP([4, 3, 2])
    with pytest.raises(ValueError, match="expected input with last dimension 4"):
        count_flops(model, batch(2, 5))
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_count_flops_needs_a_module():
    with pytest.raises(TypeError, match="count_flops: expected a Module; got function"):
        count_flops(lambda x: x, batch(2))


def test_flop_count_sums_by_a_known_field_only():
    with pytest.raises(ValueError, match="field must be 'op', 'kind' or 'module'; got 'size'"):
        count_flops(tt.Linear(2, 2), batch(1, 2)).by("size")


# ====================================================================== timing
def test_timing_reports_median_quartiles_and_iqr_of_its_samples():
    timing = Timing([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (timing.median, timing.q1, timing.q3, timing.iqr) == (3.0, 2.0, 4.0, 2.0)
    assert (timing.min, timing.max, len(timing)) == (1.0, 5.0, 5)


def test_timing_needs_a_sample():
    with pytest.raises(ValueError, match="at least one sample"):
        Timing([])


def test_time_call_times_each_repeat_after_an_untimed_warmup():
    calls = []
    timing = time_call(lambda: calls.append(1), repeats=5, warmup=2,
                       clock=fake_clock([5.0, 1.0, 4.0, 2.0, 3.0]))
    assert len(calls) == 7
    assert timing.samples == (5.0, 1.0, 4.0, 2.0, 3.0)
    assert (timing.median, timing.iqr) == (3.0, 2.0)


def test_measure_latency_separates_forward_from_backward():
    readings = iter(np.cumsum([0.0] + [1.0, 2.0, 10.0] * 4))   # start, +1 forward, +2 backward
    clock = lambda: float(next(readings))  # noqa: E731
    latency = measure_latency(tt.Linear(3, 2), batch(4, 3), repeats=3, warmup=1, clock=clock)
    assert latency["forward"].samples == (1.0, 1.0, 1.0)
    assert latency["backward"].samples == (2.0, 2.0, 2.0)


def test_measured_latency_has_the_requested_samples_all_positive():
    latency = measure_latency(tt.MLP([8, 16, 4]), batch(32, 8), repeats=20, warmup=2)
    for timing in latency.values():
        assert len(timing) == 20
        assert all(np.isfinite(s) and s > 0 for s in timing.samples)


def test_measure_latency_leaves_no_gradient_behind():
    model = tt.Linear(3, 2)
    measure_latency(model, batch(4, 3), repeats=2, warmup=0)
    assert all(p.grad is None for p in model.parameters())


# ====================================================================== memory
def test_activation_bytes_counts_each_buffer_once_and_no_leaf():
    x = tt.Tensor(np.ones((10, 10), dtype=np.float32), requires_grad=True)
    doubled = x * 2                               # a fresh 400-byte array
    total = doubled.reshape(100).sum()            # a view (nothing new), then 4 bytes
    assert activation_bytes(total) == doubled.nbytes + total.nbytes


def test_peak_memory_sees_a_numpy_array_the_step_allocates():
    size = 2_000_000
    peak = peak_memory(lambda: np.ones(size, dtype=np.float32).sum())
    assert peak.peak >= 4 * size
    assert peak.retained < 4 * size


def mlp_step_and_its_activations(model, x, y):
    held = []

    def step():
        model.zero_grad()
        loss = tt.CrossEntropyLoss()(model(x), y)
        held.append(activation_bytes(loss))
        loss.backward()

    return step, held


@pytest.mark.parametrize("make_model, shape", [
    (lambda: tt.MLP([64, 256, 256, 10]), (128, 64)),
    (lambda: tt.Sequential(tt.Conv2d(1, 8, 3, padding=1), tt.ReLU(), tt.MaxPool2d(2),
                           tt.Flatten(), tt.Linear(8 * 8 * 8, 10)), (64, 1, 16, 16)),
])
def test_peak_memory_of_a_training_step_is_at_least_its_activations(make_model, shape):
    model = make_model()
    y = np.random.default_rng(1).integers(0, 10, shape[0])
    step, held = mlp_step_and_its_activations(model, batch(*shape), y)
    peak = peak_memory(step)
    assert held[-1] > 0
    assert peak.peak >= held[-1]


def test_profiler_memory_report_measures_peak_and_lasting_arrays():
    model = tt.MLP([32, 64, 10])
    y = np.random.default_rng(0).integers(0, 10, 16)
    prof = Profiler(model, batch(16, 32), y, loss_fn=tt.CrossEntropyLoss(),
                    optimizer=tt.Adam(model.parameters()))
    report = prof.peak_memory()
    params = 4 * (32 * 64 + 64 + 64 * 10 + 10)
    assert (report.parameters, report.gradients, report.optimizer_state) == (
        params, params, 2 * params)
    assert report.peak >= report.activations > 0


# ====================================================================== breakdown
def hand_built_step():
    x = tt.Tensor(np.ones((3, 4), dtype=np.float32), requires_grad=True)
    (x * x + x).sum().backward()


def test_breakdown_lists_the_ops_of_a_hand_built_graph_with_their_counts_and_bytes():
    breakdown = op_breakdown(hand_built_step, repeats=2, warmup=0)
    rows = {(r.phase, r.op): (r.calls, r.bytes) for r in breakdown.rows}
    assert rows == {("forward", "*"): (1, 48), ("forward", "+"): (1, 48),
                    ("forward", "sum"): (1, 4), ("backward", "sum"): (1, 4),
                    ("backward", "+"): (1, 48), ("backward", "*"): (1, 48)}


def test_breakdown_counts_every_layer_of_a_training_step():
    model = tt.MLP([8, 16, 16, 4])
    prof = Profiler(model, batch(5, 8), np.arange(5) % 4, loss_fn=tt.CrossEntropyLoss())
    calls = {(r.phase, r.op): r.calls for r in prof.breakdown(repeats=2).rows}
    assert calls == {("forward", "linear"): 3, ("forward", "relu"): 2,
                     ("forward", "cross_entropy"): 1, ("backward", "cross_entropy"): 1,
                     ("backward", "relu"): 2, ("backward", "linear"): 3}


def test_breakdown_times_each_observed_step_after_the_warmup():
    breakdown = op_breakdown(hand_built_step, repeats=3, warmup=1,
                             clock=fake_clock([0.5, 0.25, 0.375]))
    assert breakdown.step.samples == (0.5, 0.25, 0.375)
    assert breakdown.unattributed_seconds == 0.375 - breakdown.op_seconds
    assert all(r.seconds >= 0 for r in breakdown.rows)
    assert breakdown.op_seconds == pytest.approx(sum(r.seconds for r in breakdown.rows))


def test_breakdown_replaces_no_function_of_the_package():
    originals = {name: getattr(tt.Tensor, name) for name in ("__add__", "__mul__", "sum")}
    seen = []

    def step():
        seen.append({name: getattr(tt.Tensor, name) for name in originals})
        hand_built_step()

    op_breakdown(step, repeats=1, warmup=0)
    assert seen == [originals]


# ====================================================================== Profiler
def test_profiler_reports_parameter_count_and_bytes():
    prof = Profiler(tt.Linear(3, 2), batch(1, 3))
    assert prof.parameters() == {"count": 8, "bytes": 32}


def test_profiler_loss_fn_needs_targets():
    with pytest.raises(ValueError, match="a loss_fn needs targets"):
        Profiler(tt.Linear(3, 2), batch(1, 3), loss_fn=tt.MSELoss())


def test_profiler_step_updates_the_parameters_with_its_optimizer():
    model = tt.Linear(3, 1)
    before = model.weight.data.copy()
    Profiler(model, batch(4, 3), batch(4, 1), loss_fn=tt.MSELoss(),
             optimizer=tt.SGD(model.parameters(), lr=0.1)).step()
    assert not np.array_equal(model.weight.data, before)
