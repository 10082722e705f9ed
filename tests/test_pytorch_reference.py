"""tinytorch against stored PyTorch numbers: values and gradients of every op, layer, loss,
optimizer trajectory and clip_grad_norm in tools/make_pytorch_reference.py, read from
tests/fixtures/pytorch_reference.npz (PyTorch is not needed here; the README says how to
regenerate the file)."""
import numpy as np
import pytest

from tools import make_pytorch_reference as reference

META, STORED = reference.read_fixture()
CASES = reference.CASES


def test_the_fixture_holds_exactly_the_cases_of_the_script():
    # A case added to the script but not to the file (or left in the file) means: regenerate.
    assert META["cases"] == [case.name for case in CASES]
    assert META["torch"] and META["generated_by"] == "tools/make_pytorch_reference.py"


def test_the_fixture_stays_small():
    assert reference.FIXTURE.stat().st_size < reference.MAX_BYTES


def test_the_cases_cover_ops_layers_attention_losses_optimizers_and_clipping():
    kinds = {case.kind for case in CASES}
    assert kinds == {"op", "layer", "attention", "loss", "optimizer", "clipping"}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_tinytorch_matches_pytorch(case):
    inputs, expected = reference.stored_case(STORED, case.name)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # extreme inputs
        actual = reference.evaluate(reference.TinyLib(), case, inputs)
    assert sorted(actual) == sorted(expected)
    for key, want in expected.items():
        got = actual[key]
        assert got.shape == want.shape, f"{case.name}/{key}: shape {got.shape} != {want.shape}"
        np.testing.assert_allclose(got, want, rtol=case.rtol, atol=case.atol, equal_nan=True,
                                   err_msg=f"{case.name}/{key} (tolerance: {case.why})")
