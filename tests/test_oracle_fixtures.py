"""The oracle fixtures of the handed-out tests (tests/fixtures/*.npz and bpe_reference.json)
are what tools/make_oracle_fixtures.py computes, they stay small, and no handed-out test
carries the reference code itself."""
import json
from pathlib import Path

import numpy as np
import pytest

from tools import make_oracle_fixtures as oracle
from tools.curriculum import CHAPTERS
from tools.release import support_files

TESTS = Path(__file__).resolve().parent
NPZ = [p for p in oracle.BUILDERS if p.suffix == ".npz"]
# test file -> the fixture it reads
READERS = {"tests/core/test_activations.py": oracle.ACTIVATIONS,
           "tests/core/test_losses.py": oracle.LOSSES,
           "tests/optim/test_optimizers.py": oracle.ADAM,
           "tests/core/test_spatial.py": oracle.CONV,
           "tests/text/test_tokenizers.py": oracle.BPE,
           "tests/core/test_embedding.py": oracle.SINUSOIDAL,
           "tests/core/test_attention.py": oracle.ATTENTION,
           "tests/core/test_normalization.py": oracle.LAYER_NORM,
           "tests/models/test_transformer_block.py": oracle.BLOCK,
           "tests/optimization/test_compress.py": oracle.DISTILLATION}
REFERENCES = ["adam_by_hand", "naive_conv2d", "reference_merges", "reference_merge_pair",
              "replay_merges", "closed_form_sinusoidal", "numpy_attention", "numpy_tril",
              "numpy_multi_head", "numpy_layer_norm", "numpy_gelu", "numpy_block",
              "numpy_linear", "numpy_causal_attention", "_log_softmax_rows", "log_softmax_rows",
              "softmax_rows"]


@pytest.mark.parametrize("path", NPZ, ids=lambda p: p.name)
def test_the_fixture_is_reproduced_by_the_script(path):
    expected = oracle.BUILDERS[path]()
    with np.load(path, allow_pickle=False) as archive:
        stored = {key: archive[key] for key in archive.files}
    meta = json.loads(str(stored.pop("__meta__")))
    assert meta["keys"] == sorted(expected) == sorted(stored)
    for key, want in expected.items():
        assert stored[key].dtype == want.dtype, f"{path.name}/{key}"
        np.testing.assert_array_equal(stored[key], want, err_msg=f"{path.name}/{key}")


def test_the_bpe_fixture_is_reproduced_by_the_script():
    stored = json.loads(oracle.BPE.read_text(encoding="utf-8"))
    assert stored.pop("generated_by") == "tools/make_oracle_fixtures.py"
    assert stored == json.loads(json.dumps(oracle.bpe_cases()))


def test_the_float_fixtures_are_float64():
    for path in NPZ:
        with np.load(path, allow_pickle=False) as archive:
            for key in archive.files:
                assert archive[key].dtype.kind in "iU" or archive[key].dtype == np.float64, (
                    f"{path.name}/{key} is {archive[key].dtype}")


@pytest.mark.parametrize("path", [p for p in oracle.BUILDERS if p != oracle.CONV],
                         ids=lambda p: p.name)
def test_a_new_fixture_stays_under_100_kb(path):
    assert path.stat().st_size < 100_000


def test_the_conv_fixture_covers_every_kernel_stride_and_padding():
    rows = {tuple(row[:6]) for row in oracle.geometries()}
    assert len(rows) == 9 * 4 * 4


def test_the_attention_fixture_covers_every_query_key_and_feature_count():
    rows = {tuple(row[2:]) for row in oracle.attention_geometries()}
    assert len(rows) == 4 * 4 * 3 * 3
    assert {tuple(row[:2]) for row in oracle.attention_geometries()} == {
        (1, 1), (1, 2), (2, 1), (2, 2)}


def test_the_bpe_fixture_has_more_cases_than_the_property_tests_ran():
    cases = oracle.bpe_cases()
    sizes = {name: len(rows) for name, rows in cases["training"].items()}
    assert sizes["ascii"] > 150 and sizes["unicode"] > 80 and sizes["pattern"] > 80
    assert len(cases["encoding"]) > 100
    assert any(len(merges) == 25 for _, _, merges in cases["training"]["ascii"])
    assert any(not text.isascii() for text, _, _ in cases["training"]["unicode"])


@pytest.mark.parametrize("name", REFERENCES)
def test_no_handed_out_test_defines_the_reference(name):
    handed_out = {t for chapter in CHAPTERS.values() for t in chapter.tests}
    handed_out |= set(support_files(sorted(handed_out)))
    holders = [t for t in sorted(handed_out) if t.endswith(".py")
               and f"def {name}(" in (TESTS.parent / t).read_text(encoding="utf-8")]
    assert holders == []


@pytest.mark.parametrize("test, fixture", READERS.items(), ids=lambda v: Path(str(v)).name)
def test_releases_and_the_grader_copy_the_fixture_a_test_reads(test, fixture):
    assert str(fixture.relative_to(oracle.ROOT)) in support_files([test])
