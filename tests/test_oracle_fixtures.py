"""The oracle fixtures of the handed-out tests (tests/fixtures/adam_trajectories.npz,
conv2d_naive.npz) are what tools/make_oracle_fixtures.py computes, and no handed-out test
carries the reference code itself."""
import json
from pathlib import Path

import numpy as np
import pytest

from tools import make_oracle_fixtures as oracle
from tools.release import support_files

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("path", list(oracle.BUILDERS), ids=lambda p: p.name)
def test_the_fixture_is_reproduced_by_the_script(path):
    expected = oracle.BUILDERS[path]()
    with np.load(path, allow_pickle=False) as archive:
        stored = {key: archive[key] for key in archive.files}
    meta = json.loads(str(stored.pop("__meta__")))
    assert meta["keys"] == sorted(expected) == sorted(stored)
    for key, want in expected.items():
        np.testing.assert_array_equal(stored[key], want, err_msg=f"{path.name}/{key}")


def test_the_conv_fixture_covers_every_kernel_stride_and_padding():
    rows = {tuple(row[:6]) for row in oracle.geometries()}
    assert len(rows) == 9 * 4 * 4


@pytest.mark.parametrize("name", ["adam_by_hand", "naive_conv2d"])
def test_no_handed_out_test_defines_the_reference(name):
    holders = [p for p in TESTS.rglob("*.py") if f"def {name}(" in p.read_text(encoding="utf-8")]
    assert holders == []


@pytest.mark.parametrize("test, fixture", [("tests/optim/test_optimizers.py",
                                            "tests/fixtures/adam_trajectories.npz"),
                                           ("tests/core/test_spatial.py",
                                            "tests/fixtures/conv2d_naive.npz")])
def test_releases_and_the_grader_copy_the_fixture_a_test_reads(test, fixture):
    assert fixture in support_files([test])
