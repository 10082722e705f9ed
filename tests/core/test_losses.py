"""Chapter 04 — Losses: each loss against its closed form's stored numbers
(tests/fixtures/losses_closed_form.npz), its gradients against finite differences, stability
at extreme inputs, and the error messages for mismatched shapes and bad targets.

This chapter comes before the engine (chapter 06): every gradient here is read from the
loss's own backward rule (``tt.gradcheck(..., rule_only=True)``, ``tt.rule_gradients``), so
these tests pass while the engine is still a stub."""
import functools
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytorch as tt

SETTINGS = dict(max_examples=25, deadline=None)
gradcheck = functools.partial(tt.gradcheck, rule_only=True)
SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)
# Overflow, 0/0 and log(0) are errors; underflow to 0 (exp(-2000)) is the correct answer.
NO_OVERFLOW = dict(over="raise", divide="raise", invalid="raise")


def _rule_grad(loss, x):
    """d loss / d x as the loss's backward rule computes it (x is one of its inputs)."""
    grads = tt.rule_gradients(loss, np.ones(loss.shape))
    return next(g for parent, g in zip(loss._parents, grads) if parent is x)


def _values(shape, seed=0, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def _labels(n, classes, seed=0):
    return np.random.default_rng(seed).integers(0, classes, size=n)


ORACLE = Path(__file__).resolve().parent.parent / "fixtures" / "losses_closed_form.npz"


def stored(name):
    """The losses (and softmax gradients) from their definitions, computed by
    tools/make_oracle_fixtures.py on this file's inputs (float64)."""
    with np.load(ORACLE, allow_pickle=False) as archive:
        return archive[name]


def _unpad(row):
    return tuple(int(side) for side in row if side)


# --------------------------------------------------------------------------- MSE
@settings(**SETTINGS)
@given(SHAPES, st.integers(0, 1000))
def test_mse_matches_mean_of_squared_differences(shape, seed):
    pred, target = _values(shape, seed), _values(shape, seed + 1)
    loss = tt.MSELoss()(tt.Tensor(pred), tt.Tensor(target))
    assert loss.item() == pytest.approx(np.mean((pred - target) ** 2), rel=1e-12)


def test_mse_sum_and_none_reductions():
    pred, target = _values((3, 2), 1), _values((3, 2), 2)
    squared = (pred - target) ** 2
    assert tt.mse_loss(pred, target, reduction="sum").item() == pytest.approx(squared.sum())
    np.testing.assert_allclose(tt.mse_loss(pred, target, reduction="none").data, squared)


@settings(**SETTINGS)
@given(SHAPES, st.sampled_from(["mean", "sum", "none"]))
def test_mse_gradients_match_finite_differences(shape, reduction):
    assert gradcheck(lambda p, t: tt.mse_loss(p, t, reduction), _values(shape, 1),
                        _values(shape, 2))


def test_mse_rejects_column_against_vector_instead_of_broadcasting():
    with pytest.raises(ValueError, match=re.escape("prediction shape (4, 1) and target shape "
                                                   "(4,) differ")):
        tt.MSELoss()(tt.Tensor(np.zeros((4, 1))), tt.Tensor(np.zeros(4)))


def test_loss_rejects_unknown_reduction():
    with pytest.raises(ValueError, match="got 'average'"):
        tt.MSELoss(reduction="average")


# --------------------------------------------------------------------------- cross-entropy
def test_cross_entropy_with_class_indices_matches_closed_form():
    # every n in 1..6 and number of classes in 2..5, three seeds each
    for (n, classes, seed), expected in zip(stored("ce_cases").tolist(), stored("ce_index")):
        logits, labels = _values((n, classes), seed, -5, 5), _labels(n, classes, seed)
        loss = tt.CrossEntropyLoss()(tt.Tensor(logits), tt.Tensor(labels))
        assert loss.item() == pytest.approx(expected, rel=1e-10), (n, classes, seed)


def test_cross_entropy_with_probability_targets_matches_closed_form():
    cases = stored("ce_cases").tolist()
    for (n, classes, seed), expected in zip(cases, stored("ce_probability")):
        logits = _values((n, classes), seed, -5, 5)
        target = np.random.default_rng(seed).dirichlet(np.ones(classes), size=n)
        assert tt.cross_entropy(logits, target).item() == pytest.approx(expected, rel=1e-10), (
            n, classes, seed)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64])
def test_cross_entropy_with_class_indices_equals_one_hot_targets(dtype):
    logits, labels = _values((6, 4), 3), _labels(6, 4, seed=3)
    one_hot = np.eye(4)[labels]
    by_index = tt.cross_entropy(logits, labels.astype(dtype))
    by_one_hot = tt.cross_entropy(logits, one_hot)
    assert by_index.item() == pytest.approx(by_one_hot.item(), rel=1e-12)


def test_cross_entropy_accepts_whole_number_float_labels():
    logits, labels = _values((3, 4), 4), np.array([0, 3, 1])
    assert tt.cross_entropy(logits, tt.Tensor([0, 3, 1])).item() == pytest.approx(
        tt.cross_entropy(logits, labels).item(), rel=1e-6)


@settings(**SETTINGS)
@given(st.integers(1, 5), st.integers(2, 4), st.sampled_from(["mean", "sum", "none"]))
def test_cross_entropy_gradient_with_class_indices_matches_finite_differences(n, classes,
                                                                              reduction):
    labels = _labels(n, classes, seed=n)
    assert gradcheck(lambda z: tt.cross_entropy(z, labels, reduction),
                        _values((n, classes), 1))


@settings(**SETTINGS)
@given(st.integers(1, 5), st.integers(2, 4), st.sampled_from(["mean", "sum", "none"]))
def test_cross_entropy_gradients_with_probability_targets_match_finite_differences(
        n, classes, reduction):
    target = np.random.default_rng(n).dirichlet(np.ones(classes), size=n)
    assert gradcheck(lambda z, t: tt.cross_entropy(z, t, reduction),
                        _values((n, classes), 1), target)


def test_cross_entropy_gradient_holds_for_target_rows_not_summing_to_one():
    target = _values((3, 4), 7, 0.0, 1.0)    # -sum(t * log_softmax) is defined for any t
    assert gradcheck(tt.cross_entropy, _values((3, 4), 1), target)


def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_n():
    logits, labels = _values((4, 3), 5), np.array([2, 0, 1, 2])
    z = tt.Tensor(logits, requires_grad=True)
    grad = _rule_grad(tt.CrossEntropyLoss()(z, labels), z)
    np.testing.assert_allclose(grad, stored("ce_grad"), rtol=1e-10)


def test_cross_entropy_on_logits_of_1000_is_finite_and_equals_shifted_formula():
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]])
    z = tt.Tensor(logits, requires_grad=True)
    with np.errstate(**NO_OVERFLOW):
        loss = tt.CrossEntropyLoss()(z, np.array([0, 2]))
        grad = _rule_grad(loss, z)
    # shifted rows: [0, -2000, -1000] -> loss 0;  [-2000, 0, -1] -> loss 1 + log(1 + e^-1)
    e1 = math.exp(-1)
    assert loss.item() == pytest.approx((0 + 1 + math.log1p(e1)) / 2, rel=1e-12)
    expected_grad = np.array([[0.0, 0.0, 0.0],
                              [0.0, 1 / (1 + e1), e1 / (1 + e1) - 1]]) / 2
    np.testing.assert_allclose(grad, expected_grad, atol=1e-15)


def test_cross_entropy_rejects_class_index_out_of_range():
    logits = tt.Tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=re.escape("target class 7 is out of range for 4 "
                                                   "classes")):
        tt.CrossEntropyLoss()(logits, np.array([0, 7, 2]))
    with pytest.raises(ValueError, match=re.escape("target class -1 is out of range")):
        tt.CrossEntropyLoss()(logits, np.array([0, -1, 2]))


def test_cross_entropy_rejects_fractional_class_labels():
    with pytest.raises(ValueError, match="must be integers; got dtype float64 with value 1.5"):
        tt.cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.5]))


@pytest.mark.parametrize("target_shape", [(4,), (3, 5), (3, 4, 1)])
def test_cross_entropy_rejects_wrong_target_shape(target_shape):
    with pytest.raises(ValueError, match=re.escape(
            f"target must have shape (3,) (class indices) or (3, 4) (class probabilities); "
            f"got {target_shape}")):
        tt.CrossEntropyLoss()(tt.Tensor(np.zeros((3, 4))), np.zeros(target_shape, dtype=int))


def test_cross_entropy_rejects_logits_that_are_not_a_matrix():
    with pytest.raises(ValueError, match=re.escape("logits must have shape (N, C); got (4,)")):
        tt.cross_entropy(np.zeros(4), np.array([1]))


# --------------------------------------------------------------------------- BCE
def test_bce_matches_closed_form():
    # every shape of 1..3 dimensions with sides 1..4, the i-th drawn with seed i
    for seed, (row, expected) in enumerate(zip(stored("bce_shapes"), stored("bce"))):
        shape = _unpad(row)
        p, t = _values(shape, seed, 0.01, 0.99), _values(shape, seed + 1, 0.0, 1.0)
        loss = tt.BCELoss()(tt.Tensor(p), tt.Tensor(t))
        assert loss.item() == pytest.approx(expected, rel=1e-12), shape


@settings(**SETTINGS)
@given(SHAPES, st.sampled_from(["mean", "sum", "none"]))
def test_bce_gradients_match_finite_differences(shape, reduction):
    p, t = _values(shape, 1, 0.01, 0.99), _values(shape, 2, 0.0, 1.0)
    assert gradcheck(lambda a, b: tt.binary_cross_entropy(a, b, reduction), p, t)


def test_bce_at_exactly_zero_and_one_is_finite_with_logs_clamped_at_minus_100():
    p = tt.Tensor(np.array([0.0, 1.0, 0.0, 1.0]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = tt.BCELoss()(p, tt.Tensor(np.array([1.0, 0.0, 0.0, 1.0])))
        grad = _rule_grad(loss, p)
    assert loss.item() == pytest.approx((100 + 100 + 0 + 0) / 4)
    assert np.all(np.isfinite(grad))


def test_bce_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=re.escape("prediction shape (4, 1) and target shape "
                                                   "(4,) differ")):
        tt.BCELoss()(tt.Tensor(np.full((4, 1), 0.5)), tt.Tensor(np.ones(4)))


def test_bce_rejects_predictions_outside_zero_one():
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]; got 1.5"):
        tt.BCELoss()(tt.Tensor(np.array([0.5, 1.5])), tt.Tensor(np.ones(2)))


@pytest.mark.parametrize("bad", [-0.25, 1.5, np.nan])
def test_bce_rejects_targets_outside_zero_one_naming_the_value(bad):
    target = np.array([[0.0, 1.0], [bad, 0.5]])
    with pytest.raises(ValueError, match=rf"targets must be probabilities in \[0, 1\]; got "
                                         rf"{bad} at index \(1, 0\)"):
        tt.BCELoss()(tt.Tensor(np.full((2, 2), 0.5)), tt.Tensor(target))


def test_bce_accepts_soft_targets_inside_zero_one():
    loss = tt.binary_cross_entropy(tt.Tensor(np.array([0.5])), tt.Tensor(np.array([0.25])))
    assert loss.item() == pytest.approx(np.log(2))


def test_bce_with_logits_equals_bce_of_sigmoid():
    rows = stored("bce_shapes")
    for seed, (row, expected) in enumerate(zip(rows, stored("bce_with_logits"))):
        shape = _unpad(row)
        x, t = _values(shape, seed, -4, 4), _values(shape, seed + 1, 0.0, 1.0)
        assert tt.BCEWithLogitsLoss()(tt.Tensor(x), tt.Tensor(t)).item() == pytest.approx(
            expected, rel=1e-10), shape


@settings(**SETTINGS)
@given(SHAPES)
def test_bce_with_logits_gradients_match_finite_differences(shape):
    assert gradcheck(tt.binary_cross_entropy_with_logits, _values(shape, 1, -4, 4),
                        _values(shape, 2, 0.0, 1.0))


def test_bce_with_logits_of_1000_is_exact_and_finite():
    x = tt.Tensor(np.array([1000.0, -1000.0]), requires_grad=True)
    with np.errstate(**NO_OVERFLOW):
        loss = tt.binary_cross_entropy_with_logits(x, tt.Tensor(np.array([0.0, 0.0])),
                                                   reduction="sum")
        grad = _rule_grad(loss, x)
    assert loss.item() == pytest.approx(1000.0, rel=1e-12)   # -log(1 - sigmoid(1000)) = 1000
    np.testing.assert_allclose(grad, [1.0, 0.0], atol=1e-300)


# --------------------------------------------------------------------------- modules
@pytest.mark.parametrize("loss_cls, function, pred, target", [
    (tt.MSELoss, tt.mse_loss, _values((3, 2), 1), _values((3, 2), 2)),
    (tt.CrossEntropyLoss, tt.cross_entropy, _values((3, 4), 1), np.array([1, 0, 3])),
    (tt.BCELoss, tt.binary_cross_entropy, _values((5,), 1, 0.1, 0.9), _values((5,), 2, 0, 1)),
    (tt.BCEWithLogitsLoss, tt.binary_cross_entropy_with_logits, _values((5,), 1),
     _values((5,), 2, 0, 1))])
def test_loss_modules_call_and_forward_equal_the_function(loss_cls, function, pred, target):
    loss_fn = loss_cls()
    expected = function(pred, target).item()
    assert loss_fn(tt.Tensor(pred), target).item() == expected
    assert loss_fn.forward(tt.Tensor(pred), target).item() == expected
    assert loss_cls(reduction="sum")(pred, target).item() == pytest.approx(
        function(pred, target, reduction="sum").item())


# --------------------------------------------------------------------------- ignore_index
def _ignored_labels(n, classes, seed, ignore_index=-100):
    """Labels with a random subset (never all) replaced by ``ignore_index``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=n)
    drop = rng.random(n) < 0.5
    drop[rng.integers(n)] = False
    return np.where(drop, ignore_index, labels), ~drop


def test_cross_entropy_mean_is_over_the_targets_not_ignored():
    # every n in 1..8 and number of classes in 2..5, three seeds each
    cases = stored("ignored_cases").tolist()
    for (n, classes, seed), expected in zip(cases, stored("ignored_mean")):
        logits = _values((n, classes), seed, -5, 5)
        labels, _ = _ignored_labels(n, classes, seed)
        loss = tt.CrossEntropyLoss()(tt.Tensor(logits), labels)   # -100 is the default
        assert loss.item() == pytest.approx(expected, rel=1e-10), (n, classes, seed)


def test_cross_entropy_gradient_is_zero_on_ignored_rows_and_divided_by_the_kept_count():
    logits, labels = _values((5, 3), 2), np.array([2, -100, 0, -100, 1])
    z = tt.Tensor(logits, requires_grad=True)
    grad = _rule_grad(tt.cross_entropy(z, labels), z)
    kept = labels != -100
    np.testing.assert_array_equal(grad[~kept], 0.0)
    np.testing.assert_allclose(grad[kept], stored("ignored_grad"), rtol=1e-10)


@settings(**SETTINGS)
@given(st.integers(1, 5), st.integers(2, 4), st.sampled_from(["mean", "sum", "none"]),
       st.integers(0, 1000))
def test_cross_entropy_gradient_with_ignored_targets_matches_finite_differences(
        n, classes, reduction, seed):
    labels, _ = _ignored_labels(n, classes, seed)
    assert gradcheck(lambda z: tt.cross_entropy(z, labels, reduction),
                        _values((n, classes), seed))


def test_cross_entropy_none_and_sum_give_ignored_targets_zero_loss():
    logits, labels = _values((4, 3), 3), np.array([1, -100, 2, -100])
    per_sample = tt.cross_entropy(logits, labels, reduction="none").data
    expected = stored("ignored_none")
    np.testing.assert_array_equal(per_sample[[1, 3]], 0.0)
    np.testing.assert_allclose(per_sample[[0, 2]], expected, rtol=1e-12)
    assert tt.cross_entropy(logits, labels, reduction="sum").item() == pytest.approx(
        expected.sum(), rel=1e-12)


def test_cross_entropy_with_every_target_ignored_is_nan_with_zero_gradient():
    z = tt.Tensor(_values((3, 4), 1), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # nan by definition, not by accident
        loss = tt.cross_entropy(z, np.full(3, -100))
        grad = _rule_grad(loss, z)
    assert math.isnan(loss.item())
    np.testing.assert_array_equal(grad, 0.0)
    assert tt.cross_entropy(z, np.full(3, -100), reduction="sum").item() == 0.0


def test_cross_entropy_ignore_index_may_be_a_valid_class():
    logits, labels = _values((4, 3), 4), np.array([0, 1, 0, 2])
    loss = tt.CrossEntropyLoss(ignore_index=0)(tt.Tensor(logits), labels)
    expected = stored("ignore_class_0").item()
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_still_rejects_out_of_range_targets_other_than_ignore_index():
    with pytest.raises(ValueError, match=re.escape("target class -1 is out of range")):
        tt.cross_entropy(np.zeros((3, 4)), np.array([-100, -1, 2]))


def test_cross_entropy_loss_module_passes_ignore_index_and_shows_it():
    loss_fn = tt.CrossEntropyLoss(reduction="sum", ignore_index=2)
    logits, labels = _values((3, 4), 5), np.array([2, 1, 3])
    assert loss_fn(logits, labels).item() == tt.cross_entropy(
        logits, labels, "sum", ignore_index=2).item()
    assert repr(loss_fn) == "CrossEntropyLoss(reduction='sum', ignore_index=2)"
    assert repr(tt.CrossEntropyLoss()) == "CrossEntropyLoss()"


# --------------------------------------------------------------------------- sequences
def test_cross_entropy_of_sequence_logits_equals_the_flattened_batch():
    logits, labels = _values((2, 5, 4), 6), _labels(10, 4, seed=6).reshape(2, 5)
    labels[0, 3] = -100
    flat = tt.cross_entropy(logits.reshape(10, 4), labels.reshape(10))
    assert tt.cross_entropy(logits, labels).item() == pytest.approx(flat.item(), rel=1e-12)
    per_position = tt.cross_entropy(logits, labels, reduction="none")
    assert per_position.shape == (2, 5)
    np.testing.assert_allclose(per_position.data.reshape(10),
                               tt.cross_entropy(logits.reshape(10, 4), labels.reshape(10),
                                                reduction="none").data, rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_gradient_of_sequence_logits_matches_finite_differences(reduction):
    labels = _labels(6, 3, seed=7).reshape(2, 3)
    labels[1, 0] = -100
    assert gradcheck(lambda z: tt.cross_entropy(z, labels, reduction), _values((2, 3, 3), 8))


def test_cross_entropy_of_sequence_logits_accepts_probability_targets():
    logits = _values((2, 3, 4), 9)
    target = np.random.default_rng(9).dirichlet(np.ones(4), size=(2, 3))
    expected = tt.cross_entropy(logits.reshape(6, 4), target.reshape(6, 4)).item()
    assert tt.cross_entropy(logits, target).item() == pytest.approx(expected, rel=1e-12)
    assert gradcheck(tt.cross_entropy, logits, target)


def test_cross_entropy_of_sequence_logits_names_the_target_shapes_it_takes():
    with pytest.raises(ValueError, match=re.escape(
            "for logits of shape (2, 3, 4) the target must have shape (2, 3) (class indices) "
            "or (2, 3, 4) (class probabilities); got (6,)")):
        tt.cross_entropy(np.zeros((2, 3, 4)), np.zeros(6, dtype=int))


# --------------------------------------------------------------------------- empty batches
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("loss_fn, pred, target", [
    (tt.MSELoss, np.zeros((0, 1)), np.zeros((0, 1))),
    (tt.BCELoss, np.zeros((0, 1)), np.zeros((0, 1))),
    (tt.BCEWithLogitsLoss, np.zeros((0, 1)), np.zeros((0, 1))),
    (tt.CrossEntropyLoss, np.zeros((0, 3)), np.zeros(0, dtype=np.int64)),
    (tt.CrossEntropyLoss, np.zeros((0, 3)), np.zeros((0, 3))),
])
def test_an_empty_batch_is_an_error_naming_the_shapes(loss_fn, pred, target, reduction):
    # PyTorch returns nan for the mean; before this check tinytorch returned 0.0 silently.
    name = loss_fn.__name__
    with pytest.raises(ValueError, match=rf"{name}: empty batch: prediction shape "
                                         rf"{re.escape(str(pred.shape))} and target shape "
                                         rf"{re.escape(str(target.shape))}"):
        loss_fn(reduction)(tt.Tensor(pred), tt.Tensor(target))


def test_cross_entropy_of_logits_without_classes_names_the_shape():
    with pytest.raises(ValueError, match=re.escape("logits of shape (4, 0) have no classes")):
        tt.cross_entropy(tt.Tensor(np.zeros((4, 0))), np.zeros(4, dtype=np.int64))
