"""Chapter 19 — the benchmark harness: statistics on hand-worked samples, exact timings from
a fake clock, the bootstrap interval of a ratio of medians on a fixed seed, the machine's
facts and a JSON round trip."""
import json

import numpy as np
import pytest

import tinytorch as tt
from tinytorch.benchmark import (
    Benchmark,
    Comparison,
    Report,
    Result,
    bootstrap_ratio_ci,
    machine_info,
    pareto_front,
)


class FakeClock:
    """A clock that only moves when the benchmarked function says how long it took."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def function(self, durations):
        """A function whose successive calls take ``durations`` seconds."""
        durations = list(durations)

        def fn():
            self.now += durations.pop(0)
        return fn


# --------------------------------------------------------------------------- statistics
def test_median_and_iqr_of_known_samples_use_numpys_linear_quantiles():
    # sorted: 1 2 3 4 10 -> median 3; q1 at rank 0.25*4 = 1 -> 2; q3 at rank 3 -> 4
    r = Result("x", [10.0, 1.0, 3.0, 2.0, 4.0])
    assert r.median == 3.0
    assert (r.timing.q1, r.timing.q3, r.iqr) == (2.0, 4.0, 2.0)


def test_quartiles_between_samples_interpolate_linearly():
    # sorted 1 2 3 4: q1 at rank 0.75 -> 1 + 0.75 = 1.75; q3 at rank 2.25 -> 3.25
    r = Result("x", [4.0, 3.0, 2.0, 1.0])
    assert r.median == 2.5
    assert r.timing.q1 == pytest.approx(1.75) and r.timing.q3 == pytest.approx(3.25)
    assert r.iqr == pytest.approx(1.5)


# --------------------------------------------------------------------------- the fake clock
def test_a_fake_clock_gives_exact_timings_and_the_warmup_is_not_recorded():
    clock = FakeClock()
    bench = Benchmark(warmup=2, repeats=4, clock=clock)
    result = bench.run("f", clock.function([100, 200, 1, 2, 3, 4]), batch=8)
    assert result.samples == (1, 2, 3, 4)
    assert result.median == 2.5 and result.params == {"batch": 8}


def test_compare_interleaves_the_candidates_and_divides_baseline_by_candidate():
    clock = FakeClock()
    order = []

    def timed(name, seconds):
        def fn():
            order.append(name)
            clock.now += seconds
        return fn
    bench = Benchmark(warmup=1, repeats=3, clock=clock)
    c = bench.compare(("slow", timed("a", 6.0)), ("fast", timed("b", 2.0)))
    assert order == ["a", "b"] * 4                     # warm-up round, then 3 rounds
    assert c.baseline.samples == (6.0, 6.0, 6.0) and c.candidate.samples == (2.0, 2.0, 2.0)
    assert (c.ratio, c.low, c.high) == (3.0, 3.0, 3.0)
    assert c.significant


# --------------------------------------------------------------------------- the bootstrap
def test_constant_samples_give_a_ratio_and_an_interval_that_are_exactly_the_ratio():
    ratio, low, high = bootstrap_ratio_ci([2.0] * 5, [0.5] * 7, n_resamples=50, seed=3)
    assert (ratio, low, high) == (4.0, 4.0, 4.0)


def test_the_interval_on_a_fixed_seed_is_the_documented_resampling_done_by_hand():
    a = np.array([1.0, 1.2, 1.1, 1.5, 1.3])
    b = np.array([0.9, 1.0, 0.8, 1.1])
    rng = np.random.default_rng(42)
    ia = rng.integers(0, 5, size=(1000, 5))
    ib = rng.integers(0, 4, size=(1000, 4))
    ratios = np.median(a[ia], axis=1) / np.median(b[ib], axis=1)
    expected = np.quantile(ratios, [0.05, 0.95])
    ratio, low, high = bootstrap_ratio_ci(a, b, n_resamples=1000, confidence=0.90, seed=42)
    assert ratio == pytest.approx(1.2 / 0.95)
    assert (low, high) == (pytest.approx(expected[0]), pytest.approx(expected[1]))
    # every resampled median lies between the samples' extremes
    assert 1.0 / 1.1 <= low <= ratio <= high <= 1.5 / 0.8


def test_the_same_seed_gives_the_same_interval_and_another_seed_another():
    a, b = [1.0, 1.3, 1.1, 1.7, 1.2, 1.4], [1.0, 0.9, 1.2, 1.1, 0.95]
    first = bootstrap_ratio_ci(a, b, n_resamples=20, seed=1)
    assert bootstrap_ratio_ci(a, b, n_resamples=20, seed=1) == first
    assert bootstrap_ratio_ci(a, b, n_resamples=20, seed=2) != first


def test_a_wider_confidence_gives_a_wider_interval():
    a, b = [1.0, 1.3, 1.1, 1.7, 1.2, 1.4], [1.0, 0.9, 1.2, 1.1, 0.95]
    _, low90, high90 = bootstrap_ratio_ci(a, b, confidence=0.90)
    _, low99, high99 = bootstrap_ratio_ci(a, b, confidence=0.99)
    assert low99 <= low90 and high99 >= high90 and (low99, high99) != (low90, high90)


@pytest.mark.parametrize("a, b, message", [
    ([], [1.0], "baseline must be a non-empty"),
    ([1.0], [0.0, 1.0], "candidate times must be finite and positive"),
    ([1.0, float("nan")], [1.0], "baseline times must be finite"),
])
def test_bad_samples_raise_naming_the_argument(a, b, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_ratio_ci(a, b)


def test_a_confidence_outside_0_1_raises():
    with pytest.raises(ValueError, match="confidence must be in"):
        bootstrap_ratio_ci([1.0], [1.0], confidence=1.0)


# --------------------------------------------------------------------------- Pareto front
def test_the_pareto_front_keeps_the_points_nothing_beats_on_every_axis():
    points = [{"ms": 1.0, "acc": 0.90},    # fastest
              {"ms": 2.0, "acc": 0.95},    # better accuracy, slower: on the front
              {"ms": 3.0, "acc": 0.93},    # beaten by the second on both
              {"ms": 2.0, "acc": 0.95},    # a tie with the second: both stay
              {"ms": 4.0, "acc": 0.99}]    # most accurate
    assert pareto_front(points, minimize=["ms"], maximize=["acc"]) == [0, 1, 3, 4]


def test_a_third_axis_can_rescue_a_point_that_two_axes_dominate():
    points = [{"ms": 1.0, "bytes": 100, "acc": 0.9}, {"ms": 2.0, "bytes": 10, "acc": 0.9}]
    assert pareto_front(points, minimize=["ms"], maximize=["acc"]) == [0]
    assert pareto_front(points, minimize=["ms", "bytes"], maximize=["acc"]) == [0, 1]


def test_a_pareto_front_needs_an_axis():
    with pytest.raises(ValueError, match="at least one key"):
        pareto_front([{"a": 1}])


# --------------------------------------------------------------------------- machine and JSON
def test_machine_info_states_cpu_cores_numpy_and_blas():
    info = machine_info()
    assert isinstance(info["cpu"], str) and info["cpu"]
    assert info["cores"] >= 1 and 1 <= info["usable_cores"] <= info["cores"]
    assert info["numpy"] == np.__version__
    assert isinstance(info["blas"], list)
    json.dumps(info)                                     # JSON-able as it is


def test_a_report_round_trips_through_json_and_a_file(tmp_path):
    clock = FakeClock()
    bench = Benchmark(warmup=0, repeats=3, clock=clock)
    r = bench.run("mlp", clock.function([1.0, 2.0, 4.0]), batch=32)
    c = Comparison(Result("a", [2.0, 2.2]), Result("b", [1.0, 1.1]),
                   *bootstrap_ratio_ci([2.0, 2.2], [1.0, 1.1], n_resamples=10), 0.95, 10, 0)
    report = Report([r], [c], machine={"cpu": "test"}, notes={"what": "fixture"})
    again = Report.load(report.save(tmp_path / "bench.json"))
    assert again.to_dict() == report.to_dict()
    assert json.loads(report.to_json())["results"][0] == {
        "name": "mlp", "samples": [1.0, 2.0, 4.0], "params": {"batch": 32}, "median": 2.0,
        "q1": 1.5, "q3": 3.0, "iqr": 1.5, "min": 1.0, "max": 4.0, "n": 3}


def test_report_add_sorts_results_and_comparisons_and_refuses_anything_else():
    report = Report(machine={})
    report.add(Result("a", [1.0]))
    with pytest.raises(TypeError, match="Result or a Comparison; got dict"):
        report.add({"name": "a"})
    assert len(report.results) == 1 and report.comparisons == []


def test_the_harness_is_importable_from_tinytorch():
    assert tt.benchmark.Benchmark is Benchmark
