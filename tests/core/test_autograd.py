"""Chapter 06 — Autograd: every differentiable Tensor operation against finite differences,
broadcasting undone in the backward pass, accumulation, topological order and no_grad."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytorch as tt

SETTINGS = dict(max_examples=25, deadline=None)


def _values(shape, seed=0, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


@settings(**SETTINGS)
@given(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
       st.sampled_from(["add", "sub", "mul", "div"]))
def test_binary_ops_with_broadcasting_match_finite_differences(shapes, op):
    a = _values(shapes.input_shapes[0], seed=1)
    b = _values(shapes.input_shapes[1], seed=2, low=0.5, high=2.0)  # away from 0 for div
    fn = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y,
          "mul": lambda x, y: x * y, "div": lambda x, y: x / y}[op]
    assert tt.gradcheck(fn, a, b)


@settings(**SETTINGS)
@given(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
       st.sampled_from(["exp", "log", "sqrt", "tanh", "neg", "pow2", "pow_half", "pow_minus1"]))
def test_unary_ops_match_finite_differences(shape, op):
    x = _values(shape, low=0.5, high=2.0)  # positive: log, sqrt and fractional powers
    fn = {"exp": lambda t: t.exp(), "log": lambda t: t.log(), "sqrt": lambda t: t.sqrt(),
          "tanh": lambda t: t.tanh(), "neg": lambda t: -t, "pow2": lambda t: t ** 2,
          "pow_half": lambda t: t ** 0.5, "pow_minus1": lambda t: t ** -1}[op]
    assert tt.gradcheck(fn, x)


@settings(**SETTINGS)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.integers(0, 2))
def test_matmul_matches_finite_differences(n, k, m, batch_dims):
    batch = (2,) * batch_dims
    assert tt.gradcheck(lambda a, b: a @ b, _values(batch + (n, k), 1), _values((k, m), 2))


@pytest.mark.parametrize("shape_a, shape_b", [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)),
                                              ((2, 2, 3), (3,))])
def test_matmul_with_vectors_matches_finite_differences(shape_a, shape_b):
    assert tt.gradcheck(lambda a, b: a @ b, _values(shape_a, 1), _values(shape_b, 2))


@settings(**SETTINGS)
@given(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), st.data(),
       st.sampled_from(["sum", "mean", "max"]), st.booleans())
def test_reductions_match_finite_differences(shape, data, op, keepdims):
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    x = _values(shape)  # continuous values: no ties, so max is differentiable
    assert tt.gradcheck(lambda t: getattr(t, op)(axis=axis, keepdims=keepdims), x)


def test_max_splits_the_gradient_between_tied_maxima():
    x = tt.Tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5])


@pytest.mark.parametrize("fn", [lambda t: t.reshape(6, 2), lambda t: t.transpose(),
                                lambda t: t.transpose(0, 2), lambda t: t.T,
                                lambda t: t[1], lambda t: t[:, 1:, ::2], lambda t: t[[0, 0, 1]],
                                lambda t: t[np.array([1, 0]), :, np.array([1, 1])]])
def test_shape_ops_and_indexing_match_finite_differences(fn):
    assert tt.gradcheck(fn, _values((2, 3, 2)))


def test_repeated_fancy_index_accumulates_gradient():
    x = tt.Tensor(np.zeros(3), requires_grad=True)
    x[[0, 0, 2]].sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, 1.0])


def test_broadcast_gradient_is_summed_back_to_the_input_shape():
    bias = tt.Tensor(np.zeros((1, 3)), requires_grad=True)
    (tt.Tensor(np.ones((4, 3))) + bias).sum().backward()
    assert bias.grad.shape == (1, 3)
    np.testing.assert_array_equal(bias.grad, [[4.0, 4.0, 4.0]])


def test_gradients_accumulate_across_backward_calls():
    x = tt.Tensor([2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0])


def test_backward_twice_through_the_same_graph_does_not_double_count_intermediates():
    x = tt.Tensor([2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    y.backward()
    np.testing.assert_array_equal(x.grad, [8.0])  # 2 * dy/dx = 2 * 4


def test_retain_graph_is_accepted_and_the_graph_is_always_kept():
    # PyTorch raises on a second backward() unless the first kept the graph; tinytorch never
    # frees it, so PyTorch's retain_graph=True runs unchanged and so does a plain second call.
    x = tt.Tensor([2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad, [8.0])


def test_a_tensor_used_twice_receives_both_contributions():
    x = tt.Tensor([3.0], requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_array_equal(x.grad, [7.0])  # 2x + 1


def test_diamond_graph_is_visited_in_topological_order():
    x = tt.Tensor([1.5], requires_grad=True)
    a = x.exp()
    b = a * 2
    c = a * 3
    (b * c).sum().backward()  # 6 e^{2x}, derivative 12 e^{2x}
    np.testing.assert_allclose(x.grad, [12 * np.exp(3.0)], rtol=1e-6)


def test_deep_chain_does_not_hit_the_recursion_limit():
    x = tt.Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + 1
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0])


def test_gradient_has_the_dtype_of_its_tensor():
    x = tt.Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    (x * tt.Tensor(np.ones(3, dtype=np.float64))).sum().backward()
    assert x.grad.dtype == np.float32


def test_intermediate_gradients_are_kept_only_when_asked():
    x = tt.Tensor([2.0], requires_grad=True)
    hidden = (x * 3).retain_grad()
    other = x * 5
    (hidden * other).sum().backward()
    np.testing.assert_array_equal(hidden.grad, [10.0])
    assert other.grad is None


def test_no_grad_records_no_graph():
    x = tt.Tensor([1.0], requires_grad=True)
    with tt.no_grad():
        y = x * 2
    assert not y.requires_grad
    assert tt.is_grad_enabled()


def test_backward_on_a_non_scalar_needs_a_gradient():
    x = tt.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\(2,\)"):
        (x * 2).backward()


def test_backward_with_explicit_gradient_of_wrong_shape_is_refused():
    x = tt.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        (x * 2).backward(np.ones(3))


def test_backward_without_any_grad_input_is_refused():
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        (tt.Tensor([1.0]) * 2).backward()


def test_gradcheck_catches_a_wrong_backward_rule():
    def wrong_square(t):
        return tt.make_op(t.data ** 2, (t,), lambda g: (g * t.data,), "bad-square")  # should be 2x
    with pytest.raises(AssertionError, match="differs from finite differences"):
        tt.gradcheck(wrong_square, np.array([1.0, 2.0]))


# ------------------------------------------------------------------ observer hook
def _record(fn):
    events = []
    with tt.observe(events.append):
        fn()
    return events


def test_observer_sees_each_recorded_op_then_each_backward_rule_in_reverse():
    x = tt.Tensor(np.ones((2, 3)), requires_grad=True)

    def step():
        y = (x * 2.0).sum()
        y.backward()

    events = _record(step)
    assert [(e.phase, e.op) for e in events] == [
        ("forward", "*"), ("forward", "sum"), ("backward", "sum"), ("backward", "*")]
    multiply = events[0]
    assert multiply.shape == (2, 3) and multiply.nbytes == 2 * 3 * 8
    assert all(e.seconds >= 0 for e in events)


def test_observer_sees_operations_under_no_grad_too():
    x = tt.Tensor(np.ones(4))
    with tt.no_grad():
        events = _record(lambda: x.exp())
    assert [(e.phase, e.op) for e in events] == [("forward", "exp")]


def test_observer_is_removed_when_the_block_exits_even_on_error():
    events = []
    with pytest.raises(ZeroDivisionError):
        with tt.observe(events.append):
            raise ZeroDivisionError
    tt.Tensor(np.ones(2)).exp()
    assert events == []


def test_inner_observer_replaces_the_outer_one_until_it_exits():
    outer, inner = [], []
    x = tt.Tensor(np.ones(2))
    with tt.observe(outer.append):
        with tt.observe(inner.append):
            x.exp()
        x.log()
    assert [e.op for e in inner] == ["exp"] and [e.op for e in outer] == ["log"]


def test_observe_refuses_a_non_callable():
    with pytest.raises(TypeError, match="callable"):
        with tt.observe("not a function"):
            pass


def test_var_matches_finite_differences():
    x = np.random.default_rng(1).standard_normal((3, 4))
    assert tt.gradcheck(lambda t: t.var(dim=1), x)
    assert tt.gradcheck(lambda t: t.var(dim=(0, 1), correction=0), x)


def test_gradient_of_x_to_the_zero_is_zero_even_at_zero():
    x = tt.Tensor(np.array([0.0, 2.0]), requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


def test_permute_and_transpose_match_finite_differences():
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    assert tt.gradcheck(lambda t: t.permute(2, 0, 1) * np.arange(24.0).reshape(4, 2, 3), x)
    assert tt.gradcheck(lambda t: t.transpose(0, 2) * np.arange(24.0).reshape(4, 3, 2), x)


def test_a_branch_that_sends_no_gradient_does_not_block_the_others():
    x = tt.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    dead = tt.make_op(x.data * 3, (x,), lambda g: (None,), "no-grad-rule")
    blocked = tt.make_op(dead.data + 0, (dead,), lambda g: (None,), "sends-nothing")
    (x * 2.0 + blocked).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_a_deep_chain_needs_no_recursion():
    x = tt.Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + 1.0
    y.backward()
    assert x.grad == 1.0


def test_leaves_fed_the_same_gradient_array_get_arrays_of_their_own():
    a = tt.Tensor(np.ones(3), requires_grad=True)
    b = tt.Tensor(np.ones(3), requires_grad=True)
    (a + b).sum().backward()
    a.grad *= 10  # what clipping does in place
    np.testing.assert_array_equal(b.grad, np.ones(3))
    assert not np.shares_memory(a.grad, b.grad)


def test_a_leaf_never_holds_the_callers_output_gradient():
    x = tt.Tensor(np.ones(3), requires_grad=True)
    upstream = np.full(3, 2.0)
    (x * 1.0 + 0.0).backward(upstream)
    (x + 0.0).backward(upstream)
    x.grad[...] = 0
    np.testing.assert_array_equal(upstream, np.full(3, 2.0))


# ---------------------------------------------------------- earlier chapters' ops, end to end
def test_the_gradient_of_a_sum_over_an_empty_dim_tuple_is_all_ones():
    t = tt.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    t.sum(dim=()).backward()
    np.testing.assert_array_equal(t.grad, np.ones((2, 3)))


@pytest.mark.parametrize("dim", [None, 0, 1, (0, 1)])
def test_every_summed_element_receives_exactly_the_output_gradient(dim):
    t = tt.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    t.sum(dim=dim).backward(np.full(np.sum(t.data, axis=dim).shape, 3.0))
    np.testing.assert_array_equal(t.grad, np.full((2, 3), 3.0))


def test_mlp_backward_fills_every_parameter_gradient():
    model = tt.MLP([4, 8, 3])
    model(tt.Tensor(_values((5, 4)))).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name


# ---------------------------------------------------------- checking one rule without the engine
def test_rule_only_gradcheck_catches_a_wrong_backward_rule():
    def doubled_square(x):
        return tt.make_op(x.data ** 2, (x,), lambda g: (4 * x.data * g,), "square")
    with pytest.raises(AssertionError, match="gradient of input 0"):
        tt.gradcheck(doubled_square, _values((3,)), rule_only=True)


def test_rule_only_gradcheck_refuses_a_function_of_several_operations():
    with pytest.raises(ValueError, match="must be one operation on its inputs"):
        tt.gradcheck(lambda x: (x * 2).sum(), _values((3,)), rule_only=True)


def test_rule_gradients_sum_a_broadcast_gradient_back_to_the_input_shape():
    a = tt.Tensor(_values((2, 3)), requires_grad=True)
    b = tt.Tensor(_values((3,)), requires_grad=True)
    grad_a, grad_b = tt.rule_gradients(a + b, np.ones((2, 3)))
    np.testing.assert_array_equal(grad_a, np.ones((2, 3)))
    np.testing.assert_array_equal(grad_b, np.full(3, 2.0))


def test_rule_gradients_of_a_tensor_no_operation_produced_is_an_error():
    with pytest.raises(ValueError, match=r"not produced by a recorded operation"):
        tt.rule_gradients(tt.Tensor(np.ones(2)), np.ones(2))


# ------------------------------------------------------------------ who owns a leaf's .grad
def _op_returning(out, parents, grads):
    """A recorded op whose backward rule returns ``grads(g)``."""
    return tt.make_op(np.asarray(out), parents, grads, "test_op")


def test_a_leaf_never_holds_the_callers_gradient_array():
    a = tt.Tensor(np.ones(3), requires_grad=True)
    seed = np.full(3, 2.0)
    _op_returning(a.data * 1, (a,), lambda g: (g,)).backward(seed)
    assert not np.shares_memory(a.grad, seed)
    a.grad[...] = 0  # an optimizer changing .grad in place must not change the caller's array
    np.testing.assert_array_equal(seed, 2.0)


def test_one_array_returned_for_two_leaves_becomes_two_gradients():
    a, b = (tt.Tensor(np.ones(3), requires_grad=True) for _ in range(2))
    same = np.full(3, 3.0)
    _op_returning(a.data + b.data, (a, b), lambda g: (same, same)).backward(np.ones(3))
    assert not np.shares_memory(a.grad, b.grad)
    assert not np.shares_memory(a.grad, same) or not np.shares_memory(b.grad, same)


def test_a_fresh_gradient_reaches_its_leaf_without_a_copy():
    # The engine tells the arrays it must copy by id. Along a chain, every rule's input is
    # freed as the walk moves on and numpy hands its id to the next new array: such a freed
    # id must not be taken for an array that something still holds.
    a = tt.Tensor(np.ones((4, 4)), requires_grad=True)
    handed = []

    def last_rule(g):
        handed.append(g * 2)
        return (handed[-1],)

    for _ in range(20):
        a.grad = None
        y = _op_returning(a.data, (a,), last_rule)
        for _ in range(3):
            y = _op_returning(y.data, (y,), lambda g: (g * 2,))
        y.sum().backward()
        assert a.grad is handed[-1]
