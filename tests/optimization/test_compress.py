"""Chapter 16 — Compression beyond masks: structured pruning that shrinks layers, low rank by
SVD, and knowledge distillation (its loss gradient-checked, its training loop a fair
control)."""
import copy
from pathlib import Path

import numpy as np
import pytest

import tinytorch as tt
from tinytorch import compress


def _x(shape, seed=1):
    return tt.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _zero_outputs(model, index, removed):
    """``model`` with the given outputs of layer ``index`` silenced (weights and bias 0)."""
    silenced = copy.deepcopy(model)
    silenced[index].weight.data[removed] = 0
    if silenced[index].bias is not None:
        silenced[index].bias.data[removed] = 0
    return silenced


def _removed(model, index, amount):
    weight = model[index].weight.data
    norms = np.linalg.norm(weight.reshape(len(weight), -1), axis=1)
    return np.argsort(norms, kind="stable")[:amount]


# ----------------------------------------------------------------------- prune_channels
def test_removing_neurons_shrinks_both_linear_layers():
    tt.manual_seed(0)
    model = tt.MLP([6, 8, 3])
    smaller = compress.prune_channels(model, 0, amount=0.5)
    assert smaller[0].weight.shape == (4, 6) and smaller[0].bias.shape == (4,)
    assert smaller[2].weight.shape == (3, 4) and smaller[2].bias.shape == (3,)
    assert model[0].weight.shape == (8, 6)                       # the original is unchanged


def test_the_shrunk_mlp_equals_the_original_with_those_neurons_silenced():
    tt.manual_seed(0)
    model, x = tt.MLP([6, 8, 3]), _x((5, 6))
    smaller = compress.prune_channels(model, 0, amount=3)
    expected = _zero_outputs(model, 0, _removed(model, 0, 3))(x).data
    np.testing.assert_allclose(smaller(x).data, expected, rtol=1e-5, atol=1e-6)


def test_removing_conv_filters_shrinks_the_next_conv_and_the_linear_after_flatten():
    tt.manual_seed(0)
    model = tt.Sequential(tt.Conv2d(1, 4, 3, padding=1), tt.ReLU(), tt.MaxPool2d(2),
                          tt.Conv2d(4, 6, 3), tt.ReLU(), tt.Flatten(), tt.Linear(6 * 2 * 2, 3))
    x = _x((2, 1, 8, 8))
    first = compress.prune_channels(model, 0, amount=2)
    assert first[0].weight.shape == (2, 1, 3, 3) and first[3].weight.shape == (6, 2, 3, 3)
    silenced = _zero_outputs(model, 0, _removed(model, 0, 2))
    np.testing.assert_allclose(first(x).data, silenced(x).data, rtol=1e-5, atol=1e-5)
    second = compress.prune_channels(model, 3, amount=0.5)       # 6 filters -> 3
    assert second[3].weight.shape == (3, 4, 3, 3) and second[6].weight.shape == (3, 3 * 2 * 2)
    np.testing.assert_allclose(second(x).data,
                               _zero_outputs(model, 3, _removed(model, 3, 3))(x).data,
                               rtol=1e-5, atol=1e-5)


def test_the_shrunk_model_trains():
    tt.manual_seed(0)
    smaller = compress.prune_channels(tt.MLP([6, 8, 3]), 0, amount=0.5)
    (smaller(_x((4, 6))) ** 2).sum().backward()
    assert all(p.grad is not None for p in smaller.parameters())


def test_prune_channels_does_not_use_up_the_shared_generator():
    model = tt.MLP([6, 8, 3])
    tt.manual_seed(5)
    compress.prune_channels(model, 0, amount=0.5)
    after = tt.default_generator.random()
    tt.manual_seed(5)
    assert tt.default_generator.random() == after


def test_prune_channels_refuses_the_output_layer_and_removing_everything():
    model = tt.MLP([6, 8, 3])
    with pytest.raises(ValueError, match="feed the model's output"):
        compress.prune_channels(model, 2, amount=1)
    with pytest.raises(ValueError, match="would leave none"):
        compress.prune_channels(model, 0, amount=8)
    with pytest.raises(TypeError, match="layer 1 is a ReLU"):
        compress.prune_channels(model, 1, amount=1)


# ----------------------------------------------------------------------- low rank
def _singular_values(layer):
    return np.linalg.svd(layer.weight.data.astype(np.float64), compute_uv=False)


@pytest.mark.parametrize("rank", [1, 3, 5])
def test_the_low_rank_error_is_the_norm_of_the_dropped_singular_values(rank):
    tt.manual_seed(0)
    layer = tt.Linear(7, 5)
    factored = compress.low_rank_linear(layer, rank)
    approx = factored[1].weight.data.astype(np.float64) @ factored[0].weight.data
    s = _singular_values(layer)
    error = np.linalg.norm(approx - layer.weight.data)
    assert np.isclose(error, np.sqrt(np.sum(s[rank:] ** 2)), atol=1e-5)
    assert np.linalg.matrix_rank(approx, tol=1e-4) == rank


def test_full_rank_reproduces_the_layer_and_stores_rank_times_in_plus_out_weights():
    tt.manual_seed(0)
    layer, x = tt.Linear(7, 5), _x((3, 7))
    factored = compress.low_rank_linear(layer, 5)
    np.testing.assert_allclose(factored(x).data, layer(x).data, rtol=1e-5, atol=1e-5)
    low = compress.low_rank_linear(layer, 2)
    assert low[0].weight.shape == (2, 7) and low[0].bias is None
    assert sum(p.size for p in low.parameters()) == 2 * (7 + 5) + 5


def test_low_rank_refuses_a_rank_above_the_weights_rank():
    with pytest.raises(ValueError, match=r"rank 6 exceeds the rank 5"):
        compress.low_rank_linear(tt.Linear(7, 5), 6)
    with pytest.raises(ValueError, match="rank must be at least 1"):
        compress.low_rank_linear(tt.Linear(7, 5), 0)


# ----------------------------------------------------------------------- distillation
ORACLE = Path(__file__).resolve().parent.parent / "fixtures" / "distillation_closed_form.npz"


def _logits(seed, shape=(4, 5)):
    return np.random.default_rng(seed).standard_normal(shape)


def test_distillation_loss_gradient_matches_finite_differences():
    teacher, targets = _logits(1), np.array([0, 2, 4, 1])
    assert tt.gradcheck(lambda s: compress.distillation_loss(s, teacher, targets, 3.0, 0.7),
                        _logits(0))


def test_the_soft_term_is_t_squared_times_the_kl_divergence():
    # t^2 KL(softmax(teacher / t) || softmax(student / t)), mean over rows, computed by
    # tools/make_oracle_fixtures.py from these logits
    student, teacher, t = _logits(0), _logits(1), 2.5
    loss = compress.distillation_loss(student, teacher, np.zeros(4, int), t, alpha=1.0)
    with np.load(ORACLE, allow_pickle=False) as archive:
        assert np.isclose(loss.item(), archive["soft_term"])


def test_a_student_equal_to_its_teacher_has_zero_soft_loss():
    logits = _logits(0)
    loss = compress.distillation_loss(logits, logits, np.zeros(4, int), 4.0, alpha=1.0)
    assert abs(loss.item()) < 1e-12


def test_alpha_zero_is_cross_entropy_on_the_labels():
    student, targets = _logits(0), np.array([0, 2, 4, 1])
    loss = compress.distillation_loss(student, _logits(1), targets, 4.0, alpha=0.0)
    assert np.isclose(loss.item(), tt.cross_entropy(tt.Tensor(student), targets).item())


def test_at_high_temperature_the_soft_gradient_is_the_logit_difference_over_classes():
    """Hinton et al., eq. 3: for zero-mean logits and a large T the gradient of the soft
    term (times T^2) tends to (z - v) / C per example; the T^2 keeps it independent of T."""
    student, teacher = _logits(0), _logits(1)
    student -= student.mean(axis=1, keepdims=True)
    teacher -= teacher.mean(axis=1, keepdims=True)
    s = tt.Tensor(student, requires_grad=True)
    compress.distillation_loss(s, teacher, np.zeros(4, int), temperature=100.0,
                               alpha=1.0).backward()
    np.testing.assert_allclose(s.grad, (student - teacher) / 5 / len(student), atol=1e-3)


def test_no_gradient_reaches_the_teacher():
    teacher = tt.Tensor(_logits(1), requires_grad=True)
    compress.distillation_loss(tt.Tensor(_logits(0), requires_grad=True), teacher,
                               np.zeros(4, int)).backward()
    assert teacher.grad is None


@pytest.mark.parametrize("kwargs, message", [(dict(temperature=0), "temperature must be"),
                                             (dict(alpha=1.5), r"alpha must be in \[0, 1\]"),
                                             (dict(alpha=-0.1), "alpha must be")])
def test_distillation_loss_refuses_bad_temperature_or_alpha(kwargs, message):
    with pytest.raises(ValueError, match=message):
        compress.distillation_loss(_logits(0), _logits(1), np.zeros(4, int), **kwargs)


def test_distillation_loss_refuses_mismatched_logits():
    with pytest.raises(ValueError, match=r"\(4, 5\) and teacher logits \(4, 3\)"):
        compress.distillation_loss(_logits(0), _logits(1, (4, 3)), np.zeros(4, int))


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 6)).astype(np.float32)
    return X, (X[:, 0] > X[:, 1]).astype(np.int64) + (X[:, 2] > 0)


def _loader(*arrays):
    return tt.DataLoader(tt.TensorDataset(*arrays), batch_size=16, shuffle=True, seed=0)


def _trained_students(make_loader, teacher=None, alphas=(0.9,)):
    runs = []
    for alpha in alphas:
        tt.manual_seed(0)
        student = tt.MLP([6, 4, 3])
        compress.distill(student, make_loader(), tt.SGD(student.parameters(), 0.1), epochs=3,
                         teacher=teacher, alpha=alpha)
        runs.append(student.state_dict())
    return runs


def test_teacher_logits_are_the_eval_mode_outputs_batch_by_batch():
    tt.manual_seed(0)
    teacher = tt.Sequential(tt.Linear(6, 5), tt.Dropout(0.5), tt.Linear(5, 3))
    X, _ = _data()
    logits = compress.teacher_logits(teacher, X, batch_size=10)
    with tt.no_grad():
        np.testing.assert_allclose(logits, teacher(tt.Tensor(X)).data, rtol=1e-6)
    assert not teacher.training


def test_distill_trains_the_student_and_leaves_the_teacher_alone():
    tt.manual_seed(0)
    teacher, student = tt.MLP([6, 16, 3]), tt.MLP([6, 4, 3])
    before = teacher.state_dict()
    losses = compress.distill(student, _loader(*_data()), tt.Adam(student.parameters(), 0.01),
                              epochs=5, teacher=teacher)
    assert len(losses) == 5 and losses[-1] < losses[0]
    for name, value in teacher.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_precomputed_teacher_logits_train_exactly_as_running_the_teacher():
    tt.manual_seed(0)
    teacher = tt.MLP([6, 16, 3])
    X, y = _data()
    logits = compress.teacher_logits(teacher, X)
    with_teacher = _trained_students(lambda: _loader(X, y), teacher=teacher)
    precomputed = _trained_students(lambda: _loader(X, y, logits))
    for name in with_teacher[0]:
        np.testing.assert_allclose(with_teacher[0][name], precomputed[0][name], rtol=1e-5)


def test_the_control_alpha_zero_ignores_the_teacher_and_alpha_changes_the_result():
    X, y = _data()
    runs = _trained_students(lambda: _loader(X, y, np.zeros((64, 3), np.float32)),
                             alphas=(0.0, 0.9))
    labels_only = _trained_students(lambda: _loader(X, y, np.ones((64, 3), np.float32) * 5),
                                    alphas=(0.0,))
    for name in runs[0]:
        np.testing.assert_allclose(runs[0][name], labels_only[0][name], rtol=1e-6)
    assert any(not np.allclose(runs[0][n], runs[1][n]) for n in runs[0])


def test_distill_needs_teacher_logits_or_a_teacher():
    with pytest.raises(ValueError, match=r"\(inputs, labels\) with a teacher module"):
        compress.distill(tt.MLP([6, 4, 3]), _loader(*_data()), tt.SGD(
            tt.MLP([6, 4, 3]).parameters(), 0.1), epochs=1)
