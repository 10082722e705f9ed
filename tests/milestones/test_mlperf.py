"""Milestone 06 MLPerf: int8 and pruned variants of the trained CNN and TinyGPT, measured,
each held to a quality target; sabotaged models must fail the gates.

One quick run (8x8 digits, a CNN of one epoch, a TinyGPT of 200 steps) is shared by the
tests of the module.
The sabotage tests reuse its trained models with cheap settings (no fine-tuning, one timing
round): a model of zeros, a loss that returns a constant, attention knocked out, a CNN whose
convolutions are zeroed. No test asserts a time.
"""
import copy
import dataclasses

import numpy as np
import pytest

import tinytorch as tt
from tinytorch import quantization as Q
from tinytorch.notebook import load_milestone

mlperf = load_milestone("06_2018_mlperf")

CHEAP = dict(cnn_finetune_epochs=0, gpt_finetune_steps=0, warmup=0, repeats=1, gen_tokens=4,
             gen_repeats=1)


@pytest.fixture(scope="module")
def quick():
    return mlperf.run_mlperf(quick=True, overrides=dict(cnn_epochs=1, repeats=5))


@pytest.fixture(scope="module")
def zero_run(quick):
    """The quick run's pipeline on models of zeros (cheap settings)."""
    zero_cnn = dataclasses.replace(quick.cnn, model=zeroed(quick.cnn.model))
    zero_gpt = dataclasses.replace(quick.gpt, model=zeroed(quick.gpt.model))
    return mlperf.run_mlperf(quick=True, models=(zero_cnn, zero_gpt), overrides=CHEAP)


@pytest.fixture(scope="module")
def gpt_data(quick):
    return mlperf.gpt_data(quick.gpt)


def zeroed(model):
    """A copy of ``model`` with every parameter set to 0."""
    model = copy.deepcopy(model)
    for p in model.parameters():
        p.data[...] = 0
    return model


def failed(result, prefix):
    return [text for text, ok in result.checks() if text.startswith(prefix) and not ok]


# ----------------------------------------------------------------------------- the run

def test_quick_run_passes_every_gate(quick):
    assert quick.passed(), [c for c in quick.checks() if not c[1]]


def test_every_model_has_the_four_variants_in_order(quick):
    assert [(r.model, r.variant) for r in quick.rows] == [
        (m, v) for m in ("CNN", "TinyGPT") for v in mlperf.VARIANTS]


def test_every_row_has_a_measured_latency_and_bytes_from_model_nbytes(quick):
    for row in quick.rows:
        model = quick.facts[row.model]["models"][row.variant]
        assert row.nbytes == Q.model_nbytes(model)
        assert len(row.latency.samples) == quick.config["repeats"] and row.latency_ms > 0


def test_int8_rows_store_the_weights_as_int8_and_take_fewer_bytes(quick):
    for name in ("CNN", "TinyGPT"):
        int8 = quick.facts[name]["models"]["int8"]
        layers = [m for m in int8.modules() if isinstance(m, Q._QuantizedLayer)]
        assert layers and all(m.weight_q.dtype == np.int8 and m.calibrated for m in layers)
        assert quick.row(name, "int8").nbytes < quick.row(name, "baseline").nbytes / 2.5


def test_pruned_dense_storage_takes_exactly_the_baseline_bytes(quick):
    for name in ("CNN", "TinyGPT"):
        assert quick.row(name, "pruned").nbytes == quick.row(name, "baseline").nbytes
        assert quick.row(name, "pruned").sparse_nbytes < quick.row(name, "baseline").nbytes


def test_masks_attached_during_fine_tuning_add_bytes(quick):
    for name in ("CNN", "TinyGPT"):
        assert quick.facts[name]["pruned bytes with masks"] > quick.row(name, "baseline").nbytes


def test_pruned_weights_stay_zero_through_fine_tuning(quick):
    for name, amount in (("CNN", quick.config["cnn_sparsity"]),
                         ("TinyGPT", quick.config["gpt_sparsity"])):
        pruned = quick.facts[name]["models"]["pruned"]
        weights = [m.weight.data for m, _ in mlperf.prunable(pruned)]
        zeros, total = sum(int((w == 0).sum()) for w in weights), sum(w.size for w in weights)
        assert zeros == round(amount * total)
        assert not tt.prune.is_pruned(pruned)          # made permanent: no masks left


def test_pruning_leaves_the_original_model_untouched(quick):
    baseline = quick.facts["TinyGPT"]["models"]["baseline"]
    assert baseline is quick.gpt.model and not tt.prune.is_pruned(baseline)
    assert mlperf.weight_sparsity(baseline) == 0.0


def test_gpt_losses_match_their_numpy_recomputation(quick):
    for row in quick.rows[4:]:
        assert abs(row.score - row.numpy_score) <= 1e-4


def test_gpt_baseline_is_the_milestone_07_score_on_the_same_characters(quick):
    assert quick.row("TinyGPT", "baseline").score == pytest.approx(quick.gpt.val_loss, abs=1e-6)


def test_cached_generation_gives_the_same_greedy_tokens(quick):
    g = quick.generation
    assert g["same tokens"] and len(g["cached tokens"]) == (
        quick.config["gen_prompt"] + quick.config["gen_tokens"])
    assert g["cached"].median > 0 and g["uncached"].median > 0


# ----------------------------------------------------------------------------- sparse bytes

def test_bitmap_round_trip_of_a_float_and_an_int8_per_channel_weight():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 5)).astype(np.float32)
    w[rng.random(w.shape) < 0.6] = 0
    bits, values = mlperf.bitmap_encode(w)
    np.testing.assert_array_equal(mlperf.bitmap_decode(bits, values, w.shape), w)
    assert bits.nbytes == 4 and values.size == int((w != 0).sum())
    q, _, zero_point = Q.quantize(w + 0.5 * (w != 0), per_channel_axis=0)
    bits, values = mlperf.bitmap_encode(q, zero_point)
    np.testing.assert_array_equal(mlperf.bitmap_decode(bits, values, q.shape, zero_point), q)


def test_sparse_bytes_equal_the_stored_bytes_without_zeros():
    tt.manual_seed(0)
    model = tt.Sequential(tt.Linear(20, 30), tt.ReLU(), tt.Linear(30, 4))
    assert mlperf.sparse_nbytes(model) == Q.model_nbytes(model)
    model[0].weight.data[:, :10] = 0
    bitmap = 600 // 8 + 300 * 4                       # 300 nonzero float32 values
    assert mlperf.sparse_nbytes(model) == Q.model_nbytes(model) - (600 * 4 - bitmap)


# ----------------------------------------------------------------------------- sabotage

def test_a_model_of_zeros_fails_the_baseline_gates(quick, zero_run):
    result = zero_run
    assert not result.passed()
    assert len(failed(result, "CNN baseline")) == 2, result.checks()
    assert len(failed(result, "TinyGPT baseline")) == 3, result.checks()
    assert result.row("TinyGPT", "baseline").score == pytest.approx(
        quick.gpt_baselines["uniform"], abs=1e-4)


def test_a_loss_that_returns_a_constant_fails_the_numpy_check(quick, gpt_data):
    def constant(logits, targets):
        return tt.Tensor(np.array(0.0, dtype=np.float32))

    rows, _ = mlperf.gpt_rows(quick.gpt.model, gpt_data, {**quick.config, **CHEAP},
                              latency=False, loss_fn=constant)
    assert all(row.score == 0.0 for row in rows)           # every gate on the loss alone passes
    (text, ok), = mlperf.numpy_checks(rows)
    assert not ok, text


def knocked_out(model):
    """A copy of the GPT ``model`` whose attention layers output zeros (forward hooks)."""
    broken = copy.deepcopy(model)
    for block in broken.transformer.h:
        block.attn.register_forward_hook(
            lambda module, args, output: tt.Tensor(np.zeros_like(output.data)))
    return broken


def test_a_baseline_with_attention_knocked_out_fails_the_bigram_gate(quick, gpt_data):
    loss, numpy_loss = mlperf.gpt_loss(knocked_out(quick.gpt.model), gpt_data)
    row = dataclasses.replace(quick.row("TinyGPT", "baseline"), score=loss, numpy_score=numpy_loss)
    checks = mlperf.gpt_baseline_checks(row, quick.gpt_baselines, quick.config["gpt_target"])
    assert [ok for _, ok in checks] == [True, False, False], checks   # still beats the unigram


def test_an_optimisation_that_knocks_out_attention_fails_the_loss_gate(quick, gpt_data):
    loss, numpy_loss = mlperf.gpt_loss(knocked_out(quick.gpt.model), gpt_data)
    row = dataclasses.replace(quick.row("TinyGPT", "int8"), score=loss, numpy_score=numpy_loss)
    (text, ok), = mlperf.tolerance_checks([quick.row("TinyGPT", "baseline"), row])
    assert not ok, text


def test_an_optimisation_that_zeroes_the_convolutions_fails_the_accuracy_gate(quick):
    broken = copy.deepcopy(quick.cnn.model)
    for module in broken.modules():
        if isinstance(module, tt.Conv2d):
            module.weight.data[...] = 0
    data = mlperf.CNNData(quick.cnn.split, quick.cnn.prepare)
    row = dataclasses.replace(quick.row("CNN", "pruned"), score=mlperf.cnn_accuracy(broken, data))
    (text, ok), = mlperf.tolerance_checks([quick.row("CNN", "baseline"), row])
    assert not ok, text


def test_a_failing_gate_makes_the_script_exit_with_status_1(zero_run, monkeypatch, capsys):
    monkeypatch.setattr(mlperf, "run_mlperf", lambda **kwargs: zero_run)
    assert mlperf.main(["--quick"]) == 1
    assert "RESULT: FAIL" in capsys.readouterr().out


def test_the_passing_run_makes_the_script_exit_with_status_0(quick, monkeypatch, capsys):
    monkeypatch.setattr(mlperf, "run_mlperf", lambda **kwargs: quick)
    assert mlperf.main(["--quick"]) == 0
    assert "RESULT: PASS" in capsys.readouterr().out


def test_unknown_settings_are_refused_by_name():
    with pytest.raises(ValueError, match="cnn_epoch"):
        mlperf.run_mlperf(overrides={"cnn_epoch": 1})
