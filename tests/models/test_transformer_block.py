"""Chapter 13 — TransformerBlock: the pre-norm residual structure and its GELU MLP against
the closed form's stored numbers (tests/fixtures/transformer_block_numpy.npz), its parameter
count, gradients and causality."""
from pathlib import Path

import numpy as np
import pytest

import tinytorch as tt


def _values(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=shape)


ORACLE = Path(__file__).resolve().parent.parent / "fixtures" / "transformer_block_numpy.npz"


def stored(name):
    """GELU's tanh form and the causal pre-norm block (x + attention(ln_1(x)), then + the
    GELU MLP of ln_2) written in numpy by tools/make_oracle_fixtures.py, float64."""
    with np.load(ORACLE, allow_pickle=False) as archive:
        return archive[name]


def test_the_mlp_gelu_in_float32_matches_the_tanh_closed_form():
    x = np.linspace(-5, 5, 1001).astype(np.float32)
    gelu = tt.TransformerBlock(8, 2).mlp.gelu
    np.testing.assert_allclose(gelu(tt.Tensor(x)).data, stored("gelu"), rtol=1e-5, atol=1e-6)


def test_a_block_is_x_plus_attention_of_ln1_then_plus_the_gelu_mlp_of_ln2():
    tt.manual_seed(0)
    block = tt.TransformerBlock(8, 2)
    for seed, p in enumerate(block.parameters(), start=100):   # LayerNorm's ones and zeros
        p.data[...] = _values(p.shape, seed)        # would hide a swapped weight and bias,
                                                    # equal ln_1 and ln_2 a swapped norm
    x = _values((2, 5, 8), 1).astype(np.float32)
    out = block(tt.Tensor(x), is_causal=True)
    np.testing.assert_allclose(out.data, stored("block_out"), rtol=1e-4, atol=1e-5)


def test_a_block_has_nanogpt_names_and_12_c_squared_plus_13_c_parameters():
    block = tt.TransformerBlock(16, 4)
    names = [n for n, _ in block.named_parameters()]
    assert names == ["ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                     "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                     "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"]
    assert sum(p.size for p in block.parameters()) == 12 * 16 ** 2 + 13 * 16
    assert block.mlp.c_fc.out_features == 64
    assert tt.TransformerBlock(16, 4, mlp_ratio=2).mlp.c_fc.out_features == 32
    no_bias = tt.TransformerBlock(16, 4, bias=False)
    assert sum(p.size for p in no_bias.parameters()) == 12 * 16 ** 2 + 2 * 16


def test_block_gradients_match_finite_differences():
    tt.manual_seed(2)
    block = tt.TransformerBlock(4, 2)
    slots = {}
    for owner in block.modules():
        for name, value in vars(owner).items():
            if isinstance(value, tt.Parameter):
                slots[id(value)] = (value, owner, name)
    slots = list(slots.values())

    def fn(x, *params):
        for (_, owner, name), p in zip(slots, params):
            setattr(owner, name, p)
        return block(x, is_causal=True)

    params = [p.data.astype(np.float64) for p, _, _ in slots]
    assert tt.gradcheck(fn, _values((2, 3, 4), 3), *params)


def test_a_causal_block_ignores_later_positions():
    tt.manual_seed(0)
    block = tt.TransformerBlock(8, 2)
    x = _values((1, 6, 8), 4)
    changed = x.copy()
    changed[:, 3:] += 1.0
    before = block(tt.Tensor(x), is_causal=True).data
    after = block(tt.Tensor(changed), is_causal=True).data
    np.testing.assert_array_equal(before[:, :3], after[:, :3])
    assert not np.allclose(before[:, 3:], after[:, 3:])


def test_the_residual_path_carries_the_gradient_even_when_the_branches_are_silent():
    tt.manual_seed(0)
    block = tt.TransformerBlock(8, 2)
    block.attn.c_proj.weight.data[...] = 0
    block.attn.c_proj.bias.data[...] = 0
    block.mlp.c_proj.weight.data[...] = 0
    block.mlp.c_proj.bias.data[...] = 0
    x = tt.Tensor(_values((2, 3, 8), 5), requires_grad=True)
    block(x).sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones_like(x.data))


@pytest.mark.parametrize("ratio", [0, -1, 0.3])
def test_an_mlp_ratio_that_gives_no_whole_number_of_units_is_refused(ratio):
    with pytest.raises(ValueError, match="mlp_ratio"):
        tt.TransformerBlock(8, 2, mlp_ratio=ratio)
