"""Chapter 07: SGD, Adam, AdamW and the Optimizer base class."""
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tinytorch import SGD, Adam, AdamW, Linear, Optimizer, Parameter, Tensor

# Fixed gradients for three steps of a parameter starting at [1, -2].
START = [1.0, -2.0]
GRADS = [np.array([0.5, -1.0]), np.array([0.2, 0.3]), np.array([-0.4, 0.1])]
ORACLE = Path(__file__).resolve().parent.parent / "fixtures" / "adam_trajectories.npz"


def run(optimizer_class, grads=GRADS, start=START, **hyper):
    """Apply ``optimizer_class`` to one float64 parameter with the given gradients."""
    p = Parameter(np.array(start, dtype=np.float64))
    opt = optimizer_class([p], **hyper)
    trajectory = []
    for g in grads:
        p.grad = np.array(g, dtype=np.float64)
        opt.step()
        trajectory.append(p.data.copy())
    return trajectory


def stored_trajectory(name):
    """Adam/AdamW's three steps for case ``name``, written out from the paper in
    tools/make_oracle_fixtures.py (float64, fresh temporaries) and stored in a fixture."""
    with np.load(ORACLE, allow_pickle=False) as archive:
        return archive[name]


# --------------------------------------------------------------------------- SGD
def test_plain_sgd_step_is_lr_times_gradient():
    first = run(SGD, lr=0.1)[0]
    np.testing.assert_allclose(first, [1.0 - 0.1 * 0.5, -2.0 + 0.1 * 1.0], rtol=1e-15)


def test_sgd_first_three_steps_with_momentum():
    # buf1 = g1 = [0.5, -1];            p1 = [1 - .05, -2 + .1]       = [0.95, -1.9]
    # buf2 = .9*buf1 + g2 = [.65, -.6];  p2 = [.95 - .065, -1.9 + .06] = [0.885, -1.84]
    # buf3 = .9*buf2 + g3 = [.185, -.44]; p3 = [.885 - .0185, -1.84 + .044]
    trajectory = run(SGD, lr=0.1, momentum=0.9)
    np.testing.assert_allclose(trajectory, [[0.95, -1.9], [0.885, -1.84], [0.8665, -1.796]],
                               rtol=1e-12)


def test_sgd_first_three_steps_with_momentum_and_weight_decay():
    # g1 = g1 + .1*p0 = [.6, -1.2];                 buf1 = g1;  p1 = [.94, -1.88]
    # g2 = [.2 + .094, .3 - .188] = [.294, .112];   buf2 = [.834, -.968];  p2 = [.8566, -1.7832]
    # g3 = [-.4 + .08566, .1 - .17832];             buf3 = [.43626, -.94952]
    trajectory = run(SGD, lr=0.1, momentum=0.9, weight_decay=0.1)
    np.testing.assert_allclose(
        trajectory, [[0.94, -1.88], [0.8566, -1.7832], [0.812974, -1.688248]], rtol=1e-12)


def test_sgd_weight_decay_without_momentum_adds_wd_times_p_to_the_gradient():
    first = run(SGD, lr=0.1, weight_decay=0.5)[0]
    np.testing.assert_allclose(first, [1 - 0.1 * (0.5 + 0.5), -2 - 0.1 * (-1.0 - 1.0)], rtol=1e-15)


# --------------------------------------------------------------------------- Adam / AdamW
def test_adam_first_step_moves_each_coordinate_by_lr_against_the_gradient_sign():
    # m_hat = g and v_hat = g^2 on the first step, so the update is lr * g / (|g| + eps).
    first = run(Adam, lr=0.01)[0]
    np.testing.assert_allclose(first, [1.0 - 0.01, -2.0 + 0.01], rtol=1e-9)


def test_adam_first_three_steps_follow_the_bias_corrected_recurrence():
    expected = stored_trajectory("adam")
    np.testing.assert_allclose(run(Adam, lr=0.01), expected, rtol=1e-12)


def test_adam_with_other_betas_and_eps():
    expected = stored_trajectory("adam_betas_eps")
    np.testing.assert_allclose(run(Adam, lr=0.05, betas=(0.5, 0.8), eps=0.1), expected,
                               rtol=1e-12)


def test_adam_weight_decay_is_an_l2_term_in_the_gradient():
    expected = stored_trajectory("adam_weight_decay")
    np.testing.assert_allclose(run(Adam, lr=0.01, weight_decay=0.1), expected, rtol=1e-12)


def test_adamw_decays_weights_before_the_adam_update():
    expected = stored_trajectory("adamw")
    np.testing.assert_allclose(run(AdamW, lr=0.01, weight_decay=0.1), expected, rtol=1e-12)


def test_adamw_default_weight_decay_is_0_01():
    assert AdamW([Parameter(np.zeros(2))]).weight_decay == 0.01
    expected = stored_trajectory("adamw_defaults")
    np.testing.assert_allclose(run(AdamW), expected, rtol=1e-12)


def test_adam_and_adamw_weight_decay_differ():
    assert not np.allclose(run(Adam, lr=0.01, weight_decay=0.5)[-1],
                           run(AdamW, lr=0.01, weight_decay=0.5)[-1])


# --------------------------------------------------------------------------- common behaviour
ALL = [
    pytest.param(SGD, dict(lr=0.1), id="sgd"),
    pytest.param(SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01), id="sgd-momentum"),
    pytest.param(Adam, dict(lr=0.01, weight_decay=0.01), id="adam"),
    pytest.param(AdamW, dict(lr=0.01), id="adamw"),
]
STATEFUL = ALL[1:]


@pytest.mark.parametrize("cls, hyper", ALL)
def test_parameters_without_gradient_are_skipped(cls, hyper):
    moving, idle = Parameter(np.ones(3)), Parameter(np.ones(2))
    opt = cls([moving, idle], **hyper)
    moving.grad = np.full(3, 0.5)
    opt.step()
    np.testing.assert_array_equal(idle.data, np.ones(2))
    assert not np.array_equal(moving.data, np.ones(3))
    assert opt.param_steps == [1, 0]
    for buf in opt.state[1].values():
        np.testing.assert_array_equal(buf, 0)


def test_adam_parameter_skipped_at_first_gets_a_first_step_when_its_gradient_arrives():
    a, b = Parameter(np.array([1.0, 2.0])), Parameter(np.array([1.0, -2.0]))
    opt = Adam([a, b], lr=0.01)
    for _ in range(3):
        a.grad = np.array([0.3, 0.3])
        opt.step()
    a.grad, b.grad = None, np.array([0.5, -1.0])
    opt.step()
    # b's bias correction uses its own count (t = 1), so it moves by exactly lr.
    np.testing.assert_allclose(b.data, [1.0 - 0.01, -2.0 + 0.01], rtol=1e-9)


@pytest.mark.parametrize("cls, hyper", ALL)
def test_zero_grad_sets_every_gradient_to_none(cls, hyper):
    params = [Parameter(np.ones(3)), Parameter(np.ones((2, 2)))]
    for p in params:
        p.grad = np.ones_like(p.data)
    cls(params, **hyper).zero_grad()
    assert [p.grad for p in params] == [None, None]


def test_lr_change_takes_effect_on_the_next_step():
    p = Parameter(np.array([1.0]))
    opt = SGD([p], lr=0.1)
    p.grad = np.array([2.0])
    opt.step()
    opt.lr = 0.5
    opt.step()
    np.testing.assert_allclose(p.data, [1.0 - 0.1 * 2.0 - 0.5 * 2.0], rtol=1e-15)


@pytest.mark.parametrize("cls, hyper", ALL)
def test_lr_set_to_zero_freezes_the_parameters(cls, hyper):
    p = Parameter(np.array([1.0, -2.0]))
    opt = cls([p], **hyper)
    p.grad = np.array([0.5, -1.0])
    opt.step()
    frozen = p.data.copy()
    opt.lr = 0.0
    opt.step()
    np.testing.assert_array_equal(p.data, frozen)


@pytest.mark.parametrize("cls, hyper", ALL)
def test_updates_happen_in_place(cls, hyper):
    p = Parameter(np.ones((3, 2), dtype=np.float32))
    opt = cls([p], **hyper)
    data_id = id(p.data)
    buffer_ids = {name: id(buf) for name, buf in opt.state[0].items()}
    for _ in range(3):
        p.grad = np.full((3, 2), 0.5, dtype=np.float32)
        opt.step()
    assert id(p.data) == data_id
    assert {name: id(buf) for name, buf in opt.state[0].items()} == buffer_ids
    assert p.data.dtype == np.float32
    assert all(buf.dtype == np.float32 for buf in opt.state[0].values())


def _two_parameters():
    return [Parameter(np.array([[1.0, -2.0], [0.5, 3.0]])), Parameter(np.array([0.25, -1.0]))]


def _steps(opt, params, n=3):
    for k in range(n):
        for j, p in enumerate(params):
            p.grad = np.full(p.data.shape, 0.5 * (k + 1) - j)
        opt.step()


@pytest.mark.parametrize("cls, hyper", ALL)
def test_building_an_optimizer_keeps_every_parameter_value(cls, hyper):
    params = _two_parameters()
    before = [p.data.copy() for p in params]
    cls(params, **hyper)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.data, b)
        assert p.data.dtype == b.dtype and p.data.flags.writeable


@pytest.mark.parametrize("cls, hyper", ALL)
def test_a_parameter_whose_data_is_replaced_is_still_updated_like_the_others(cls, hyper):
    untouched, replaced = _two_parameters(), _two_parameters()
    opt_a, opt_b = cls(untouched, **hyper), cls(replaced, **hyper)
    _steps(opt_a, untouched, 1)
    _steps(opt_b, replaced, 1)
    own = replaced[0].data.copy()
    replaced[0].data = own       # rebinding, as a learner might: the optimizer must follow it
    _steps(opt_a, untouched, 2)
    _steps(opt_b, replaced, 2)
    assert replaced[0].data is own
    for a, b in zip(untouched, replaced):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("cls, hyper", ALL)
def test_two_optimizers_over_the_same_parameters_both_move_them(cls, hyper):
    def alternate(params):
        first = cls(params, **hyper)
        _steps(first, params[:2], 1)
        second = cls(params, **hyper)      # a second optimizer over the same parameters
        _steps(first, params[:2], 1)
        _steps(second, params[:2], 1)
        return [p.data for p in params[:2]]

    flat = alternate(_two_parameters())
    # The same steps through the per-parameter rule only: mixed dtypes get no flat storage.
    per_parameter = alternate(_two_parameters() + [Parameter(np.zeros(1, np.float32))])
    for a, b in zip(flat, per_parameter):
        np.testing.assert_array_equal(a, b)


def test_optimizer_accepts_a_generator_of_parameters():
    model = Linear(3, 2)
    opt = SGD(p for p in model.parameters())
    assert opt.params == [model.weight, model.bias]
    model.weight.grad = np.ones((2, 3), dtype=np.float32)
    opt.step()  # the generator was materialised, so the step sees the parameters


def test_optimizer_rejects_a_module_with_a_hint():
    with pytest.raises(TypeError, match=r"got a Linear \(did you mean model.parameters\(\)\?\)"):
        SGD(Linear(3, 2))


def test_optimizer_rejects_an_empty_parameter_list():
    with pytest.raises(ValueError, match="Adam got an empty parameter list"):
        Adam([])


def test_optimizer_rejects_a_gradient_of_the_wrong_shape():
    p = Parameter(np.ones(3))
    opt = SGD([p])
    p.grad = np.ones(4)
    with pytest.raises(ValueError, match=r"parameter 0 has shape \(3,\) but its gradient has "
                                         r"shape \(4,\)"):
        opt.step()


def test_base_optimizer_needs_an_update_rule():
    p = Parameter(np.ones(2))
    p.grad = np.ones(2)
    with pytest.raises(NotImplementedError, match="_update"):
        Optimizer([p], dict(lr=0.1)).step()


@pytest.mark.parametrize("make, message", [
    (lambda p: SGD(p, lr=-0.1), r"SGD: invalid learning rate lr: -0.1"),
    (lambda p: SGD(p, momentum=-0.5), r"SGD: invalid momentum: -0.5"),
    (lambda p: SGD(p, weight_decay=-1), r"SGD: invalid weight_decay: -1.0"),
    (lambda p: Adam(p, lr=-1e-3), r"Adam: invalid learning rate lr: -0.001"),
    (lambda p: Adam(p, betas=(1.0, 0.999)), r"Adam: invalid beta at index 0: 1.0 \(must lie "
                                            r"in \[0, 1\)\)"),
    (lambda p: Adam(p, betas=(0.9, -0.1)), r"Adam: invalid beta at index 1: -0.1"),
    (lambda p: Adam(p, eps=0.0), r"Adam: invalid eps: 0.0 \(must lie in \(0, inf\)\)"),
    (lambda p: AdamW(p, eps=-1e-8), r"AdamW: invalid eps: -1e-08"),
    (lambda p: AdamW(p, weight_decay=-0.01), r"AdamW: invalid weight_decay: -0.01"),
])
def test_invalid_hyper_parameters_are_rejected_by_value(make, message):
    with pytest.raises(ValueError, match=message):
        make([Parameter(np.ones(2))])


def test_setting_a_negative_lr_is_rejected():
    opt = SGD([Parameter(np.ones(2))], lr=0.1)
    with pytest.raises(ValueError, match="invalid learning rate lr: -2.0"):
        opt.lr = -2.0
    assert opt.lr == 0.1


def test_a_non_numeric_lr_is_a_type_error():
    with pytest.raises(TypeError, match="lr must be a number; got 'fast'"):
        SGD([Parameter(np.ones(2))], lr="fast")


# --------------------------------------------------------------------------- memory helpers
@pytest.mark.parametrize("opt, arrays_per_param", [
    (lambda p: SGD(p), 0),
    (lambda p: SGD(p, momentum=0.9), 1),
    (lambda p: Adam(p), 2),
    (lambda p: AdamW(p), 2),
])
def test_state_size_helpers(opt, arrays_per_param):
    params = [Parameter(np.zeros((10, 10), dtype=np.float32)), Parameter(np.zeros(10, np.float32))]
    optimizer = opt(params)
    assert optimizer.state_arrays_per_param == arrays_per_param
    assert optimizer.state_nbytes() == arrays_per_param * 110 * 4  # float32: 4 bytes each


# --------------------------------------------------------------------------- state dict
def quadratic_grads(params):
    """A deterministic gradient field: that of sum((p - 3)^2 + p^3 / 10)."""
    for p in params:
        p.grad = 2 * (p.data - 3) + 0.3 * p.data ** 2


def fresh_params():
    return [Parameter(np.array([1.0, -2.0, 0.5])), Parameter(np.array([[0.1, 0.2], [0.3, -0.4]]))]


def to_checkpoint_and_back(state):
    """What the training engineer's checkpoint does: arrays into .npz, the rest as JSON."""
    file = io.BytesIO()
    np.savez(file, **state["buffers"])
    meta = json.dumps({k: v for k, v in state.items() if k != "buffers"})
    file.seek(0)
    with np.load(file, allow_pickle=False) as stored:
        buffers = {name: stored[name] for name in stored.files}
    return {**json.loads(meta), "buffers": buffers}


@pytest.mark.parametrize("cls, hyper", ALL)
def test_resuming_from_a_state_dict_matches_an_uninterrupted_run(cls, hyper):
    straight = fresh_params()
    opt = cls(straight, **hyper)
    for _ in range(6):
        quadratic_grads(straight)
        opt.step()

    first_half = fresh_params()
    opt = cls(first_half, **hyper)
    for _ in range(3):
        quadratic_grads(first_half)
        opt.step()
    saved = to_checkpoint_and_back(opt.state_dict())

    resumed = [Parameter(p.data.copy()) for p in first_half]
    opt = cls(resumed, lr=0.5)  # hyper-parameters come from the state dict
    opt.load_state_dict(saved)
    for _ in range(3):
        quadratic_grads(resumed)
        opt.step()

    assert opt.step_count == 6
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.data, b.data)


def test_state_dict_records_hyper_parameters_steps_and_buffers():
    p = Parameter(np.array([1.0, -2.0]))
    opt = Adam([p], lr=0.01, betas=(0.8, 0.99))
    p.grad = np.array([0.5, -1.0])
    opt.step()
    opt.step()
    state = opt.state_dict()
    assert state["optimizer"] == "Adam"
    assert state["hyper"] == {"lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-8, "weight_decay": 0.0}
    assert state["step"] == 2 and state["param_steps"] == [2]
    # two steps of the same gradient: m = (1 - .8^2) g, v = (1 - .99^2) g^2
    np.testing.assert_allclose(state["buffers"]["exp_avg.0"], 0.36 * np.array([0.5, -1.0]))
    np.testing.assert_allclose(state["buffers"]["exp_avg_sq.0"], 0.0199 * np.array([0.25, 1.0]))


def assert_plain_json(value, where="state"):
    assert type(value) in (dict, list, str, int, float, bool, type(None)), (where, type(value))
    if isinstance(value, dict):
        for k, v in value.items():
            assert type(k) is str, (where, k)
            assert_plain_json(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            assert_plain_json(v, f"{where}[{i}]")


@pytest.mark.parametrize("cls, hyper", ALL)
def test_state_dict_holds_only_plain_json_values_and_numpy_arrays(cls, hyper):
    params = fresh_params()
    opt = cls(params, **hyper)
    quadratic_grads(params)
    opt.step()
    state = opt.state_dict()
    rest = {k: v for k, v in state.items() if k != "buffers"}
    json.dumps(rest)
    assert_plain_json(rest)
    assert all(type(k) is str and type(v) is np.ndarray for k, v in state["buffers"].items())


@pytest.mark.parametrize("cls, hyper", STATEFUL)
def test_state_dict_is_a_copy(cls, hyper):
    params = fresh_params()
    opt = cls(params, **hyper)
    quadratic_grads(params)
    opt.step()
    state = opt.state_dict()
    snapshot = {k: v.copy() for k, v in state["buffers"].items()}
    opt.step()
    for key, buf in state["buffers"].items():
        np.testing.assert_array_equal(buf, snapshot[key])


def stepped_adam(shapes, lr=0.01):
    params = [Parameter(np.ones(s)) for s in shapes]
    opt = Adam(params, lr=lr)
    for p in params:
        p.grad = np.full(p.shape, 0.5)
    opt.step()
    return opt


def assert_unchanged(opt, before):
    after = opt.state_dict()
    assert {k: v for k, v in after.items() if k != "buffers"} == \
        {k: v for k, v in before.items() if k != "buffers"}
    assert after["buffers"].keys() == before["buffers"].keys()
    for key in before["buffers"]:
        np.testing.assert_array_equal(after["buffers"][key], before["buffers"][key])


def test_load_state_dict_with_a_mismatched_shape_raises_and_changes_nothing():
    target = stepped_adam([(2,), (3,)], lr=0.01)
    before = target.state_dict()
    source = stepped_adam([(2,), (4,)], lr=0.5)
    source.step()
    with pytest.raises(ValueError, match=r"buffer 'exp_avg.1' has shape \(4,\) but parameter 1 "
                                         r"has shape \(3,\)"):
        target.load_state_dict(source.state_dict())
    assert_unchanged(target, before)
    assert target.lr == 0.01


def test_load_state_dict_with_more_parameters_raises_and_changes_nothing():
    target = stepped_adam([(2,)])
    before = target.state_dict()
    with pytest.raises(ValueError, match="step counts for 2 parameters; this optimizer has 1"):
        target.load_state_dict(stepped_adam([(2,), (2,)]).state_dict())
    assert_unchanged(target, before)


def test_load_state_dict_with_a_missing_buffer_names_the_parameter():
    target = stepped_adam([(2,), (3,)])
    state = target.state_dict()
    del state["buffers"]["exp_avg_sq.1"]
    with pytest.raises(ValueError, match=r"no buffer 'exp_avg_sq.1' for parameter 1 \(shape "
                                         r"\(3,\)\)"):
        target.load_state_dict(state)


def test_load_state_dict_with_an_unexpected_buffer_raises():
    target = stepped_adam([(2,)])
    state = target.state_dict()
    state["buffers"]["exp_avg.1"] = np.zeros(2)
    with pytest.raises(ValueError, match=r"unexpected buffers \['exp_avg.1'\]"):
        target.load_state_dict(state)


def test_load_state_dict_from_another_optimizer_type_raises():
    p = Parameter(np.ones(2))
    with pytest.raises(ValueError, match="the state dict is from a Adam optimizer"):
        AdamW([p]).load_state_dict(Adam([p]).state_dict())


def test_load_state_dict_validates_hyper_parameters_before_changing_anything():
    target = stepped_adam([(2,)])
    before = target.state_dict()
    state = target.state_dict()
    state["hyper"]["betas"] = [0.9, 1.5]
    with pytest.raises(ValueError, match="invalid beta at index 1: 1.5"):
        target.load_state_dict(state)
    assert_unchanged(target, before)


def test_loading_a_momentum_state_into_plain_sgd_adds_the_buffer():
    params = fresh_params()
    source = SGD(params, lr=0.1, momentum=0.9)
    quadratic_grads(params)
    source.step()
    target = SGD([Parameter(p.data.copy()) for p in params], lr=0.1)
    target.load_state_dict(source.state_dict())
    assert target.momentum == 0.9 and target.state_arrays_per_param == 1
    np.testing.assert_array_equal(target.state[1]["momentum_buffer"],
                                  source.state[1]["momentum_buffer"])


# --------------------------------------------------------------------------- they optimise
@pytest.mark.parametrize("cls, hyper", [
    (SGD, dict(lr=0.05)), (SGD, dict(lr=0.05, momentum=0.9)),
    (Adam, dict(lr=0.1)), (AdamW, dict(lr=0.1)),
])
@settings(max_examples=15, deadline=None)
@given(start=arrays(np.float64, 4, elements=st.floats(-5, 5)),
       target=arrays(np.float64, 4, elements=st.floats(-5, 5)))
def test_minimises_a_quadratic(cls, hyper, start, target):
    p = Parameter(start.copy())
    opt = cls([p], **hyper)

    def loss():
        return ((p - Tensor(target)) ** 2).sum()

    initial = loss().item()
    assume(initial > 0.1)  # at the minimum already, weight decay may nudge it off
    for _ in range(30):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    final = loss().item()
    assert final < initial
