"""The root conftest.py: unit tests run without the notebook toolchain, and every chapter of
``tools/curriculum.py`` has a marker (``pytest -m ch06``) selecting its tests and its pages.

Each test runs pytest in a subprocess from the repository root, as a reader would.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tools.curriculum import CHAPTERS

ROOT = Path(__file__).resolve().parent.parent
TOOLCHAIN = ("nbmake", "jupytext", "myst_nb", "nbformat")

# Placed on PYTHONPATH as sitecustomize.py: importing the toolchain fails as if it were not
# installed. An uninstalled nbmake also registers no pytest plugin, hence `-p no:nbmake`.
BLOCKER = textwrap.dedent(f"""\
    import importlib.abc
    import sys

    class _NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in {TOOLCHAIN!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, _NotInstalled())
    """)
WITHOUT_NBMAKE_PLUGIN = ("-p", "no:nbmake")


def run(args, env_extra=None, timeout=300):
    """``python args`` from the repository root, without the caller's pytest settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def run_pytest(*args, env_extra=None):
    return run(["-m", "pytest", "-p", "no:cacheprovider", *args], env_extra)


@pytest.fixture
def without_toolchain(tmp_path):
    """Environment variables under which nbmake, jupytext, myst-nb and nbformat are missing."""
    (tmp_path / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    return {"PYTHONPATH": str(tmp_path)}


def output(result):
    return result.stdout + result.stderr


# ======================================================================= no toolchain
def test_the_blocker_makes_every_toolchain_import_fail(without_toolchain):
    code = textwrap.dedent(f"""\
        import importlib
        for name in {TOOLCHAIN!r}:
            try:
                importlib.import_module(name)
            except ModuleNotFoundError:
                print(name)
        """)
    result = run(["-c", code], without_toolchain)
    assert result.stdout.split() == list(TOOLCHAIN), output(result)


def test_unit_tests_pass_without_the_notebook_toolchain(without_toolchain):
    result = run_pytest(*WITHOUT_NBMAKE_PLUGIN, "-q", "tests/core/test_tensor.py",
                        env_extra=without_toolchain)
    assert result.returncode == 0, output(result)


def test_every_test_file_collects_without_the_notebook_toolchain(without_toolchain):
    result = run_pytest(*WITHOUT_NBMAKE_PLUGIN, "--collect-only", "-q", "tests",
                        env_extra=without_toolchain)
    assert result.returncode == 0, output(result)


def test_book_pipeline_tests_are_skipped_without_the_notebook_toolchain(without_toolchain):
    result = run_pytest(*WITHOUT_NBMAKE_PLUGIN, "-q", "-rs", "tests/test_book_pipeline.py",
                        "tests/test_notebook_helpers.py", env_extra=without_toolchain)
    assert result.returncode == 0, output(result)
    assert "the book pipeline needs the notebook toolchain" in result.stdout, output(result)


def test_a_book_page_without_the_toolchain_fails_naming_what_to_install(without_toolchain):
    result = run_pytest(*WITHOUT_NBMAKE_PLUGIN, "--collect-only", "-q",
                        "book/chapters/01_tensor.md", env_extra=without_toolchain)
    assert result.returncode != 0
    assert "needs the notebook toolchain" in result.stdout, output(result)
    assert "pip install -r requirements.txt" in result.stdout, output(result)


# ==================================================================== chapter markers
def chapter_files(chapter):
    """What ``-m chNN`` must select: the chapter's test files and its pages (NN_*.md)."""
    folder = (ROOT / chapter.page).parent
    pages = {p.relative_to(ROOT).as_posix() for p in folder.glob(f"{chapter.number}_*.md")}
    return set(chapter.tests) | pages


def collected_files(result):
    """The files of the test ids printed by ``pytest --collect-only -q``."""
    return {line.split("::")[0] for line in result.stdout.splitlines() if "::" in line}


def test_chapter_06_marker_selects_its_test_file_and_page_only():
    result = run_pytest("--collect-only", "-q", "--continue-on-collection-errors", "-m", "ch06")
    assert collected_files(result) == chapter_files(CHAPTERS["06"]), output(result)


MARKER_DUMP = textwrap.dedent("""\
    import json, os

    def pytest_collection_finish(session):
        marks = {item.nodeid: [m.name for m in item.iter_markers()] for item in session.items}
        with open(os.environ["MARKER_DUMP"], "w") as out:
            json.dump(marks, out)
    """)


@pytest.fixture(scope="module")
def markers_by_test(tmp_path_factory):
    """Every collected test id of the repository, with the names of its markers."""
    folder = tmp_path_factory.mktemp("dump")
    (folder / "marker_dump.py").write_text(MARKER_DUMP, encoding="utf-8")
    dump = folder / "markers.json"
    result = run_pytest("--collect-only", "-q", "--continue-on-collection-errors",
                        "-p", "marker_dump",
                        env_extra={"PYTHONPATH": str(folder), "MARKER_DUMP": str(dump)})
    assert dump.exists(), output(result)
    return json.loads(dump.read_text(encoding="utf-8"))


@pytest.mark.parametrize("chapter", CHAPTERS.values(), ids=lambda c: c.title)
def test_every_chapter_marker_selects_exactly_its_tests_and_pages(chapter, markers_by_test):
    marker = f"ch{chapter.number}"
    marked = {nodeid for nodeid, names in markers_by_test.items() if marker in names}
    assert marked, f"-m {marker} selects no test"
    assert {nodeid.split("::")[0] for nodeid in marked} == chapter_files(chapter)


def test_milestone_and_tooling_tests_carry_no_chapter_marker(markers_by_test):
    chapter_markers = {f"ch{number}" for number in CHAPTERS}
    for nodeid in ("tests/test_release.py", "tests/milestones/test_milestones.py"):
        tests = {n: names for n, names in markers_by_test.items() if n.startswith(nodeid)}
        assert tests, f"no test collected from {nodeid}"
        assert not any(chapter_markers & set(names) for names in tests.values())


def test_every_chapter_marker_is_registered():
    result = run_pytest("--markers")
    for number in CHAPTERS:
        assert f"@pytest.mark.ch{number}: chapter {number} " in result.stdout, output(result)


def test_strict_markers_accepts_chapter_markers(tmp_path):
    numbers = list(CHAPTERS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp_path / "test_marked.py").write_text("import pytest\n\n" + "".join(
        f"@pytest.mark.ch{n}\ndef test_{n}():\n    pass\n\n" for n in numbers), encoding="utf-8")
    args = ("--strict-markers", "-q", "-c", str(tmp_path / "pytest.ini"),
            "--rootdir", str(tmp_path), str(tmp_path / "test_marked.py"))
    result = run_pytest("-p", "conftest", *args)  # the root conftest as a plugin
    assert result.returncode == 0, output(result)
    assert f"{len(numbers)} passed" in result.stdout


# ----------------------------------------------------------------------- workers (xdist)
needs_xdist = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import xdist"], capture_output=True).returncode,
    reason="pytest-xdist is not installed")
SMALL_RUN = ("tests/test_random.py", "-k", "importable")  # one quick test


@needs_xdist
def test_a_run_that_chooses_nothing_gets_one_worker_per_core():
    # 2 stands for the core count: the machine's own may be 1.
    result = run_pytest(*SMALL_RUN, env_extra={"PYTEST_XDIST_AUTO_NUM_WORKERS": "2"})
    assert result.returncode == 0, output(result)
    assert "created: 2/2 workers" in result.stdout, output(result)


@needs_xdist
def test_n_0_on_the_command_line_runs_in_one_process():
    result = run_pytest("-n", "0", *SMALL_RUN, env_extra={"PYTEST_XDIST_AUTO_NUM_WORKERS": "2"})
    assert result.returncode == 0, output(result)
    assert "workers" not in result.stdout, output(result)


@needs_xdist
def test_a_pytest_started_by_a_test_runs_in_one_process():
    assert os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") == "0"  # set for us by conftest.py
    result = run_pytest(*SMALL_RUN)  # inherits this process's environment
    assert result.returncode == 0, output(result)
    assert "workers" not in result.stdout, output(result)
