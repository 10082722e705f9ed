"""The GPT benchmark's oracle: tinytorch's GPT trains exactly like the hand-written numpy GPT
of benchmarks/reference_numpy_gpt.py (same weights, same batches, Adam: per-step losses equal
to 1e-5 relative), and the reference's hand-derived gradients match finite differences.
Correctness only; speed is benchmarks/bench_gpt.py's job."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_gpt as bench  # noqa: E402
import reference_numpy_gpt as ref  # noqa: E402
from bench_training import max_relative_loss_difference  # noqa: E402

RTOL = 1e-5
LR = 1e-2  # larger than the benchmark's, so a few steps move the weights a long way
TINY = dict(n_layer=2, n_head=2, n_embd=16, block_size=8)


@pytest.fixture(scope="module")
def text():
    return bench.load_text_ids(20_000)


@pytest.fixture(scope="module")
def batches(text):
    ids, _ = text
    return bench.make_batches(ids, steps=8, batch_size=4, block_size=TINY["block_size"])


def test_tiny_gpt_losses_equal_the_numpy_reference_over_8_adam_steps(text, batches):
    model = bench.build_gpt(text[1], **TINY)
    losses = bench.oracle(model, batches, steps=8, lr=LR)
    assert len(losses["tinytorch"]) == len(losses["numpy"]) == 8
    assert max_relative_loss_difference(losses["tinytorch"], losses["numpy"]) <= RTOL
    assert losses["numpy"][-1] < losses["numpy"][0] - 0.15  # it learned: not a trivial match


def test_the_oracle_detects_a_reference_that_starts_from_other_weights(text, batches):
    model = bench.build_gpt(text[1], **TINY)
    reference = ref.GPT.from_state(model.state_dict(), TINY["n_layer"], TINY["n_head"])
    reference.p["transformer.h.1.mlp.c_fc.bias"][0] += 0.05
    _, tinytorch_losses = bench.tinytorch_trainer(model, batches, LR)(8)
    _, numpy_losses = bench.numpy_trainer(model, batches, LR, reference=reference)(8)
    assert max_relative_loss_difference(tinytorch_losses, numpy_losses) > RTOL


def test_batches_are_windows_of_the_text_with_targets_shifted_by_one(text):
    ids, _ = text
    (x, y), = bench.make_batches(ids, steps=1, batch_size=3, block_size=5)
    assert x.shape == y.shape == (3, 5)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    for row in x:
        starts = [s for s in range(len(ids) - 5) if np.array_equal(ids[s:s + 5], row)]
        assert starts                                       # every window occurs in the text


def test_reference_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    v, c, t, n_layer, n_head = 6, 4, 3, 1, 2
    shapes = {"transformer.wte.weight": (v, c), "transformer.wpe.weight": (t, c)}
    for i in range(n_layer):
        pre = f"transformer.h.{i}."
        shapes.update({pre + "ln_1.weight": (c,), pre + "ln_1.bias": (c,),
                       pre + "attn.c_attn.weight": (3 * c, c), pre + "attn.c_attn.bias": (3 * c,),
                       pre + "attn.c_proj.weight": (c, c), pre + "attn.c_proj.bias": (c,),
                       pre + "ln_2.weight": (c,), pre + "ln_2.bias": (c,),
                       pre + "mlp.c_fc.weight": (4 * c, c), pre + "mlp.c_fc.bias": (4 * c,),
                       pre + "mlp.c_proj.weight": (c, 4 * c), pre + "mlp.c_proj.bias": (c,)})
    shapes.update({"transformer.ln_f.weight": (c,), "transformer.ln_f.bias": (c,)})
    net = ref.GPT({name: rng.standard_normal(shape) * 0.5 for name, shape in shapes.items()},
                  n_layer, n_head)
    x = np.array([[0, 2, 2], [5, 1, 0]])
    y = np.array([[2, 2, 3], [1, 0, 4]])

    def loss():
        logits = net.forward(x)
        return ref.cross_entropy(logits.reshape(-1, v), y.reshape(-1))

    value, grad = loss()
    grads = net.backward(grad.reshape(2, t, v))
    step = 1e-6
    for name, param, analytic in zip(net.names, net.params, grads):
        numeric = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            saved = param[index]
            param[index] = saved + step
            up = loss()[0]
            param[index] = saved - step
            down = loss()[0]
            param[index] = saved
            numeric[index] = (up - down) / (2 * step)
        np.testing.assert_allclose(analytic, numeric, atol=1e-6, rtol=1e-4, err_msg=name)
