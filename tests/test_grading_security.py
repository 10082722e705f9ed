"""The grader against submissions that try to score what they did not earn (issue 14).

Each case grades chapter 02 (36 tests, a few seconds) with the cached grader environment,
without a sandbox and, where bubblewrap works, in it. Every cheat is first shown to work
where the old grader ran it (the instructor's ``.venv``, which has ``tinytorch`` installed
editable), so each test fails if the grader lets it through.
"""
import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from tools import curriculum, grader, release

ROOT = curriculum.REPO_ROOT
CHAPTER = curriculum.get_chapter("02")
SANDBOX_MISSING = ("bubblewrap (bwrap) does not work here: Debian's bubblewrap package "
                   "(.ci/run installs it)")
MODES = [pytest.param("off", id="unsandboxed"),
         pytest.param("on", id="sandboxed", marks=pytest.mark.skipif(
             grader.bwrap() is None, reason=SANDBOX_MISSING))]


@pytest.fixture(scope="session")
def grader_venv():
    return grader.ensure_venv()


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    """Chapter 02's release with the reference code put back: an honest 36 / 36."""
    out = release.make_student_release("02", tmp_path_factory.mktemp("release") / "02")
    for module in CHAPTER.modules:
        shutil.copy(ROOT / module, out / module)
    return out


def submission(solved, tmp_path, prepend: str = "", keep_only_init: bool = False):
    folder = tmp_path / "submission"
    shutil.copytree(solved, folder, ignore=shutil.ignore_patterns("__pycache__"))
    init = folder / "tinytorch" / "__init__.py"
    if keep_only_init:  # the reference __init__.py, alone
        text = init.read_text()
        shutil.rmtree(folder / "tinytorch")
        init.parent.mkdir()
        init.write_text(text)
    init.write_text(textwrap.dedent(prepend) + init.read_text())
    return folder


def grade(folder, mode, venv):
    return release.grade("02", folder, sandbox=mode, venv=venv, timeout=300)


def works_with_the_instructors_venv(folder):
    """True when, run as the old grader ran it, the submission imports chapter 02's module
    from the instructor's repository: the cheat is real."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(folder)
    result = subprocess.run(
        [sys.executable, "-c", "import tinytorch.core.activations as a; print(a.__file__)"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=60)
    return result.returncode == 0 and result.stdout.strip().startswith(str(ROOT / "tinytorch"))


def assert_zero_with_a_reason(report):
    assert report["score"] == 0
    reasons = report["refused"] or sorted({row["message"] for row in report["outcomes"]})
    assert reasons and all(reasons), report


def test_the_honest_solution_scores_one(solved, grader_venv):
    report = grade(solved, "auto", grader_venv)
    assert (report["score"], report["refused"], report["sandboxed"]) == (
        1.0, [], grader.bwrap() is not None)


# ================================================================ the instructor's package
@pytest.mark.parametrize("mode", MODES)
def test_a_submission_missing_a_subpackage_scores_zero(solved, tmp_path, grader_venv, mode):
    folder = submission(solved, tmp_path)
    shutil.rmtree(folder / "tinytorch" / "core")
    assert works_with_the_instructors_venv(folder)
    report = grade(folder, mode, grader_venv)
    assert_zero_with_a_reason(report)
    assert all("No module named 'tinytorch.core'" in row["message"] for row in report["outcomes"])


def test_a_submission_of_only_an_init_file_scores_zero(solved, tmp_path, grader_venv):
    folder = submission(solved, tmp_path, keep_only_init=True)
    assert works_with_the_instructors_venv(folder)
    assert_zero_with_a_reason(grade(folder, "auto", grader_venv))


# A package whose __init__.py finds the instructor's copy, points its own __path__ at it and
# runs its __init__.py: every tinytorch.<sub> then comes from the instructor's repository.
BORROW = """\
import glob, importlib.metadata, json, os, pathlib, re, sys

def _instructor_package():
{finder}

_found = _instructor_package()
if _found is not None and (_found / "__init__.py").is_file():
    __path__[:] = [str(_found)]
    exec(compile((_found / "__init__.py").read_text(), str(_found / "__init__.py"), "exec"))
    raise SystemExit  # pragma: no cover - never reached: exec ran the whole file
"""
FINDERS = {
    "importlib.metadata": """\
    try:
        dist = importlib.metadata.distribution("tinytorch")
    except importlib.metadata.PackageNotFoundError:
        return None
    url = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
    return pathlib.Path(url.removeprefix("file://")) / "tinytorch"
""",
    "sys.prefix": """\
    pattern = os.path.join(sys.prefix, "lib", "python*", "site-packages",
                           "__editable__*tinytorch*.py")
    for finder in glob.glob(pattern):
        match = re.search(r"'tinytorch': '([^']+)'", pathlib.Path(finder).read_text())
        if match:
            return pathlib.Path(match[1])
    return None
""",
    "the repository's path": f"""\
    return pathlib.Path({str(ROOT)!r}) / "tinytorch"
""",
}


def borrowing_init(how):
    return BORROW.format(finder=FINDERS[how]).replace("    raise SystemExit", "    pass")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", FINDERS)
def test_a_submission_that_imports_the_instructors_copy_scores_zero(
        solved, tmp_path, grader_venv, how, mode):
    folder = submission(solved, tmp_path, keep_only_init=True)
    (folder / "tinytorch" / "__init__.py").write_text(borrowing_init(how))
    assert works_with_the_instructors_venv(folder)
    report = grade(folder, mode, grader_venv)
    assert_zero_with_a_reason(report)
    if how == "the repository's path" and mode == "off":  # reachable: the audit must say so
        assert any("not from the submission's copy" in r and str(ROOT) in r
                   for r in report["refused"]), report["refused"]


# ================================================================ pytest's own reporting
PATCH_REPORTS = """\
import _pytest.reports as _reports
_original_init = _reports.TestReport.__init__
def _always_passed(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    self.outcome, self.longrepr = "passed", None
_reports.TestReport.__init__ = _always_passed
"""
PATCH_HOOKS = """\
import gc, pytest
class _Cheat:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        report.outcome, report.longrepr = "passed", None
for _config in [o for o in gc.get_objects() if type(o).__name__ == "Config"]:
    _config.pluginmanager.register(_Cheat(), "cheat")
"""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("patch", [PATCH_REPORTS, PATCH_HOOKS], ids=["TestReport", "a hook"])
def test_a_submission_that_rewrites_pytests_reports_scores_zero(
        solved, tmp_path, grader_venv, patch, mode):
    folder = submission(solved, tmp_path, prepend=patch)
    activations = folder / "tinytorch" / "core" / "activations.py"  # relu unwritten: 4 fail
    activations.write_text(release.stub_source(activations.read_text(), {"relu": "to do"}))
    report = grade(folder, mode, grader_venv)
    assert report["passed"] == report["total"]  # the cheat worked on the report itself ...
    assert report["score"] == 0                 # ... and was caught
    assert any("pytest internals replaced: _pytest.reports.TestReport.__init__" in r
               or "a pytest hook (pytest_runtest_makereport) defined in" in r
               for r in report["refused"]), report["refused"]


def test_a_submission_that_exits_before_pytest_reports_scores_zero(solved, tmp_path, grader_venv):
    folder = submission(solved, tmp_path, prepend="import os\nos._exit(0)\n")
    report = grade(folder, "auto", grader_venv)
    assert report["score"] == 0
    assert report["refused"] == ["the test run ended without the grader's report (exit code 0): "
                                 "no output"]


# ================================================================ files outside its folder
REWRITE = """\
import pathlib
for _path in {targets!r}:
    try:
        pathlib.Path(_path).write_text("rewritten by the submission")
    except OSError:
        pass
"""


@pytest.mark.skipif(grader.bwrap() is None, reason=SANDBOX_MISSING)
def test_a_sandboxed_submission_cannot_write_outside_its_scratch_space(
        solved, tmp_path, grader_venv):
    canary = tmp_path / "canary.txt"
    in_venv = grader_venv / f"tinytorch-canary-{uuid.uuid4().hex}.txt"  # later gradings' pytest
    in_submission = tmp_path / "submission" / "tinytorch" / "planted.txt"
    targets = [str(canary), str(in_venv), str(in_submission)]
    folder = submission(solved, tmp_path, prepend=REWRITE.format(targets=targets))
    try:
        canary.write_text("the instructor's")
        report = grade(folder, "on", grader_venv)
        assert report["score"] == 1.0 and report["sandboxed"]
        assert canary.read_text() == "the instructor's"
        assert not in_venv.exists() and not in_submission.exists()

        # The same submission without the sandbox: the writes happen, so the check above can fail.
        grade(folder, "off", grader_venv)
        assert canary.read_text() == "rewritten by the submission"
    finally:
        in_venv.unlink(missing_ok=True)


# ================================================================ a hanging test
HANGING_ERF = """

_written_erf = erf


def erf(x):  # hangs in chapter 02's property test of erf, and only there
    import sys
    import time
    if sys._getframe(1).f_code.co_name == "test_erf_matches_math_erf_to_float32_precision":
        while True:
            time.sleep(0.01)
    return _written_erf(x)
"""


def test_a_hanging_hypothesis_test_fails_alone_and_the_rest_is_graded(solved, tmp_path,
                                                                       grader_venv):
    # pytest-timeout's pytest.fail is taken by hypothesis for a failing example: it would
    # try the next one with no timer left and the run would never end (tools/grader/plugin.py)
    folder = submission(solved, tmp_path)
    activations = folder / "tinytorch" / "core" / "activations.py"
    activations.write_text(activations.read_text() + HANGING_ERF)
    started = time.monotonic()
    report = release.grade("02", folder, venv=grader_venv, timeout=120, test_timeout=2)
    assert time.monotonic() - started < 90
    failed = [row for row in report["outcomes"] if row["outcome"] != "passed"]
    assert [row["test"].rpartition("::")[2] for row in failed] == [
        "test_erf_matches_math_erf_to_float32_precision"]
    assert "ran longer than 2 s" in failed[0]["message"]
    assert report["refused"] == []
    assert report["score"] == (report["total"] - 1) / report["total"]
