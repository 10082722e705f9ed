"""Instructor tooling: the curriculum table, student releases and autograding.

The end-to-end tests use chapter 08, whose tests run in about two seconds; each grading
runs pytest twice in a subprocess (collecting against the reference, then the run).
"""
import ast
import contextlib
import dataclasses
import importlib
import inspect
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tools import curriculum, grader, release

ROOT = curriculum.REPO_ROOT
CHAPTER = curriculum.get_chapter("08")
REPORT_KEYS = {"chapter", "name", "submission", "tests", "total", "passed", "failed", "errors",
               "skipped", "score", "refused", "sandboxed", "outcomes"}


def run_python(args, cwd, **kwargs):
    """A Python subprocess without the caller's PYTHONPATH (so imports resolve from cwd)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, **kwargs)


def copy_release(source, destination):
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__"))
    return destination


# ============================================================================ curriculum
@pytest.mark.parametrize("chapter", curriculum.CHAPTERS.values(), ids=lambda c: c.title)
def test_every_curriculum_entry_names_files_and_stubs_that_exist(chapter):
    assert curriculum.chapter_problems(chapter) == []


def test_chapter_problems_reports_a_stub_that_no_longer_exists():
    renamed = dataclasses.replace(CHAPTER, stubs=CHAPTER.stubs + (
        "tinytorch/training/schedule.py:CosineSchedule.learning_rate",))
    assert curriculum.chapter_problems(renamed) == [
        "stub tinytorch/training/schedule.py:CosineSchedule.learning_rate: no definition of "
        "'learning_rate' in CosineSchedule"]


def test_chapter_problems_reports_a_stub_outside_the_chapter_modules():
    stray = dataclasses.replace(CHAPTER, stubs=("tinytorch/core/layers.py:Linear.forward",))
    assert curriculum.chapter_problems(stray) == [
        "stub tinytorch/core/layers.py:Linear.forward: tinytorch/core/layers.py is not one of "
        "the chapter's modules"]


def test_every_test_file_of_the_package_folders_grades_exactly_one_chapter():
    graded = [test for chapter in curriculum.CHAPTERS.values() for test in chapter.tests]
    mirrored = [str(path.relative_to(ROOT))
                for folder in ("core", "data", "optim", "training", "text", "models", "profiling",
                               "optimization", "capstone")
                for path in (ROOT / "tests" / folder).glob("test_*.py")]
    assert sorted(graded) == sorted(mirrored)


@pytest.mark.parametrize("number", [8, "8", "08", " 08 "])
def test_a_chapter_number_may_be_an_int_or_omit_the_leading_zero(number):
    assert curriculum.get_chapter(number) is CHAPTER


def test_an_unknown_chapter_names_it_and_lists_the_valid_ones():
    last = list(curriculum.CHAPTERS.values())[-1].title
    with pytest.raises(curriculum.UnknownChapter,
                       match=r"unknown chapter '99'; valid chapters: 01 Tensor, 02 Activations, "
                             rf"03 Layers, .* 09 Convolutions, .*{last}$"):
        curriculum.get_chapter("99")


def test_the_cli_rejects_an_unknown_chapter_listing_the_valid_ones(tmp_path):
    result = run_python(["-m", "tools.release", "student", "99", "--out", str(tmp_path / "out")],
                        cwd=ROOT)
    assert result.returncode == 2
    assert "unknown chapter '99'; valid chapters: 01 Tensor" in result.stderr
    assert not (tmp_path / "out").exists()


# ============================================================================ stubbing
SOURCE = '''\
import functools


def plain(a, b=2):
    # a comment that would give the answer away
    return a + b


class Box:
    @property
    def size(self):
        """The size."""
        return 3

    @functools.lru_cache
    def grow(
        self, by: int,
    ) -> int:
        """Grow by ``by``.

        A longer contract.
        """
        self.n = by  # a hint

        return by


def untouched():
    return "kept"
'''

STUBBED = '''\
import functools


def plain(a, b=2):
    raise NotImplementedError('implement plain')


class Box:
    @property
    def size(self):
        """The size."""
        raise NotImplementedError('implement Box.size')

    @functools.lru_cache
    def grow(
        self, by: int,
    ) -> int:
        """Grow by ``by``.

        A longer contract.
        """
        raise NotImplementedError('implement Box.grow')


def untouched():
    return "kept"
'''


def test_stub_source_keeps_decorators_signature_and_docstring_and_replaces_the_rest():
    stubs = {"plain": "implement plain", "Box.size": "implement Box.size",
             "Box.grow": "implement Box.grow"}
    assert release.stub_source(SOURCE, stubs) == STUBBED


def test_stub_source_names_a_function_that_does_not_exist():
    with pytest.raises(release.ReleaseError,
                       match=r"box\.py: Box\.shrink: no definition of 'shrink' in Box"):
        release.stub_source(SOURCE, {"Box.shrink": "implement it"}, "box.py")


def test_stub_source_refuses_a_name_defined_twice():
    with pytest.raises(release.ReleaseError, match=r"f: 'f' is defined 2 times in the module"):
        release.stub_source("def f():\n    return 1\n\n\ndef f():\n    return 2\n", {"f": "a"})


def test_support_files_finds_conftests_init_files_and_local_helper_modules(tmp_path):
    files = {
        "conftest.py": "",  # the repository's book-page conftest: never needed
        "tests/conftest.py": "import tests.shared\n",
        "tests/shared.py": "",
        "tests/unit/__init__.py": "",
        "tests/unit/helpers.py": "",
        "tests/unit/test_a.py": "import numpy\nfrom helpers import make\n",
        "tests/unit/test_b.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert release.support_files(["tests/unit/test_a.py"], tmp_path) == [
        "tests/conftest.py", "tests/shared.py", "tests/unit/__init__.py", "tests/unit/helpers.py"]


# ============================================================================ student release
def describe(module_name, qualname):
    """(kind, signature, docstring, function) of ``qualname`` in the imported module."""
    found = importlib.import_module(module_name)
    for part in qualname.split("."):
        found = inspect.getattr_static(found, part)
    kind = type(found).__name__
    function = found.fget if isinstance(found, property) else getattr(found, "__func__", found)
    return kind, str(inspect.signature(function)), function.__doc__, function


PROBE = textwrap.dedent("""
    import importlib, inspect, json, sys
    import tinytorch
    {describe}
    report = {{"package": tinytorch.__file__, "stubs": {{}}}}
    for module_name, qualname in json.loads(sys.argv[1]):
        kind, signature, doc, function = describe(module_name, qualname)
        parameters = inspect.signature(function).parameters.values()
        positional = [p for p in parameters if p.default is p.empty
                      and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        keywords = {{p.name: None for p in parameters
                    if p.default is p.empty and p.kind == p.KEYWORD_ONLY}}
        try:
            function(*[None] * len(positional), **keywords)
            raised = "nothing"
        except NotImplementedError as error:
            raised = str(error)
        except Exception as error:
            raised = f"{{type(error).__name__}}: {{error}}"
        report["stubs"][qualname] = [kind, signature, doc, raised]
    print(json.dumps(report))
""").format(describe=inspect.getsource(describe))


def stub_targets(chapter):
    return [(path[:-3].replace("/", "."), qualname)
            for path, qualname in map(curriculum.split_stub, chapter.stubs)]


@pytest.mark.parametrize("chapter", curriculum.CHAPTERS.values(), ids=lambda c: c.title)
def test_every_stub_of_a_release_keeps_its_signature_and_docstring_and_raises_naming_the_chapter(
        chapter, tmp_path):
    out = release.make_student_release(chapter.number, tmp_path / "release")
    targets = stub_targets(chapter)
    result = run_python(["-c", PROBE, json.dumps(targets)], cwd=out)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["package"] == str(out / "tinytorch" / "__init__.py")
    for module_name, qualname in targets:
        kind, signature, doc, _ = describe(module_name, qualname)  # the reference, in-process
        assert probe["stubs"][qualname] == [
            kind, signature, doc,
            f"Chapter {chapter.number}: implement {qualname} — see {chapter.page}"]


@pytest.fixture(scope="module")
def student_release(tmp_path_factory):
    return release.make_student_release("08", tmp_path_factory.mktemp("release") / "08")


def test_a_release_holds_the_package_the_chapter_tests_and_page_and_no_conftest(student_release):
    expected = {"README.md", "pyproject.toml", "requirements.txt", CHAPTER.page, *CHAPTER.tests}
    twin = ROOT / CHAPTER.page.replace(".md", ".ipynb")
    if twin.is_file():
        expected.add(str(twin.relative_to(ROOT)))
    outside_package = {str(p.relative_to(student_release)) for p in student_release.rglob("*")
                       if p.is_file() and p.parts[len(student_release.parts)] != "tinytorch"}
    assert outside_package == expected
    for test in CHAPTER.tests:
        assert (student_release / test).read_text() == (ROOT / test).read_text()


def test_a_release_changes_only_the_chapter_modules(student_release):
    reference = {str(p.relative_to(ROOT)) for p in (ROOT / "tinytorch").rglob("*.py")}
    released = {str(p.relative_to(student_release))
                for p in (student_release / "tinytorch").rglob("*.py")}
    assert released == reference
    changed = {path for path in reference
               if (student_release / path).read_text() != (ROOT / path).read_text()}
    assert changed == set(CHAPTER.modules)


def test_a_release_readme_lists_every_stub_and_how_to_run_the_tests(student_release):
    readme = (student_release / "README.md").read_text()
    assert readme.startswith("# TinyTorch · Chapter 08: Training (student release)")
    for stub in CHAPTER.stubs:
        path, qualname = curriculum.split_stub(stub)
        assert f"| `{qualname}` | `{path}` |" in readme
    assert "python -m pytest tests" in readme


def test_the_other_chapters_still_work_in_a_release(student_release):
    script = textwrap.dedent("""
        import numpy as np
        import tinytorch as tt
        model = tt.Linear(2, 1)
        optimizer = tt.SGD(model.parameters(), lr=0.1)
        loader = tt.DataLoader(tt.TensorDataset(np.ones((4, 2), np.float32),
                                                np.zeros((4, 1), np.float32)), batch_size=2)
        before = model.weight.data.copy()
        for x, y in loader:
            tt.MSELoss()(model(x), y).backward()
            optimizer.step()
        assert not np.allclose(model.weight.data, before)
        print(tt.relu(tt.Tensor([-1.0, 2.0])).data.tolist())
    """)
    result = run_python(["-c", script], cwd=student_release)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[0.0, 2.0]"


def test_the_chapter_tests_of_a_release_fail_before_the_student_writes_anything(
        student_release, tmp_path):
    student = copy_release(student_release, tmp_path / "student")  # pytest writes caches
    result = run_python(["-m", "pytest", "tests", "-x", "-q", "-p", "no:cacheprovider"],
                        cwd=student)
    assert result.returncode == 1
    assert "NotImplementedError: Chapter 08: implement" in result.stdout


# ====================================================================== in-order progression
def _run_chapter_tests_with_stubs(chapter, stubbed, folder):
    """Chapter ``chapter``'s tests, run in ``folder`` against the package with the stubs of
    the chapters ``stubbed``."""
    release.stub_package(folder, stubbed)
    tests = list(chapter.tests)
    for path in [*tests, *release.support_files(tests), "pyproject.toml"]:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, folder / path)
    return run_python(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *tests],
                      cwd=folder)


@pytest.mark.parametrize("chapter", curriculum.CHAPTERS.values(), ids=lambda c: c.title)
def test_a_chapter_passes_its_tests_while_every_later_chapter_is_still_a_stub(chapter, tmp_path):
    """A learner working in order has chapters 01..N written and N+1.. still stubs: chapter
    N's tests must pass then, so none of them may lean on a later chapter's code."""
    later = [c for n, c in curriculum.CHAPTERS.items() if n > chapter.number]
    result = _run_chapter_tests_with_stubs(chapter, later, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "NotImplementedError" not in result.stdout


def test_the_in_order_check_runs_the_stubbed_copy_not_the_installed_package(tmp_path):
    first = curriculum.get_chapter("01")
    result = _run_chapter_tests_with_stubs(first, list(curriculum.CHAPTERS.values()), tmp_path)
    assert result.returncode == 1
    assert "NotImplementedError: Chapter 01: implement" in result.stdout


def test_an_in_order_release_stubs_the_chapter_and_every_later_one(tmp_path):
    out = release.make_student_release("06", tmp_path / "06", in_order=True)
    later_stub = curriculum.get_chapter("07").stubs[0]
    path, qualname = curriculum.split_stub(later_stub)
    assert f"Chapter 07: implement {qualname}" in (out / path).read_text(encoding="utf-8")
    earlier_stub = curriculum.get_chapter("05").stubs[0]
    path, qualname = curriculum.split_stub(earlier_stub)
    assert "Chapter 05: implement" not in (out / path).read_text(encoding="utf-8")


def test_a_release_refuses_to_overwrite_a_non_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(release.ReleaseError, match=r"is not empty; .* pass --force"):
        release.make_student_release("08", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_force_replaces_the_contents_of_a_non_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("old")
    release.make_student_release("08", tmp_path, force=True)
    assert not (tmp_path / "notes.txt").exists()
    assert (tmp_path / "tinytorch" / "training" / "schedule.py").is_file()


@pytest.mark.parametrize("inside, message", [("", "it contains the repository"),
                                             ("book", "inside the repository's book/")])
def test_a_release_is_never_written_into_the_repository(inside, message):
    with pytest.raises(release.ReleaseError, match=message):
        release.make_student_release("08", ROOT / inside, force=False)


# ============================================================================ grading
@pytest.fixture(scope="module")
def graded_release(student_release, tmp_path_factory):
    """(exit status, printed summary, JSON report) of grading the untouched release."""
    report_path = tmp_path_factory.mktemp("grades") / "grades.json"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = release.main(["grade", "08", str(student_release), "--report", str(report_path)])
    return status, printed.getvalue(), json.loads(report_path.read_text())


def test_grading_exits_0_and_prints_passed_per_test_file_and_the_score(graded_release):
    status, printed, report = graded_release
    assert status == 0
    lines = printed.splitlines()
    for test in CHAPTER.tests:
        assert any(line.startswith(test) for line in lines)
    assert f"{report['passed']:>4} / {report['total']}   score {report['score']:.3f}" in printed


def test_grading_the_untouched_release_scores_below_one_and_lists_the_failures(graded_release):
    report = graded_release[2]
    assert report["score"] < 1
    failures = [row for row in report["outcomes"] if row["outcome"] in ("failed", "error")]
    assert len(failures) == report["failed"] + report["errors"] > 0
    assert any("NotImplementedError: Chapter 08: implement CosineSchedule.get_lr" in row["message"]
               for row in failures)


def test_the_report_has_the_documented_keys_and_consistent_counts(graded_release, student_release):
    report = graded_release[2]
    assert set(report) == REPORT_KEYS
    assert (report["chapter"], report["name"], report["tests"]) == ("08", "Training",
                                                                    list(CHAPTER.tests))
    assert report["submission"] == str(student_release)
    assert all(set(row) == {"test", "outcome", "message"} for row in report["outcomes"])
    assert len({row["test"] for row in report["outcomes"]}) == report["total"]
    assert report["total"] == sum(report[k] for k in ("passed", "failed", "errors", "skipped"))
    assert report["score"] == report["passed"] / (report["total"] - report["skipped"])
    assert report["refused"] == []


def test_grading_uses_the_instructors_tests_not_the_submitted_ones(
        student_release, graded_release, tmp_path):
    submission = copy_release(student_release, tmp_path / "submission")
    for test in CHAPTER.tests:
        (submission / test).write_text("def test_everything():\n    assert True\n")
    report = release.grade("08", submission)
    untouched = graded_release[2]
    assert ([(row["test"], row["outcome"]) for row in report["outcomes"]]
            == [(row["test"], row["outcome"]) for row in untouched["outcomes"]])
    assert report["score"] < 1


def test_grading_a_solved_release_scores_one(student_release, tmp_path):
    submission = copy_release(student_release, tmp_path / "submission")
    for module in CHAPTER.modules:
        shutil.copy(ROOT / module, submission / module)
    report = release.grade("08", submission)
    assert report["score"] == 1.0
    assert report["passed"] == report["total"] == len(report["outcomes"]) > 0


def test_grading_a_folder_without_a_package_fails_with_exit_status_1(tmp_path, capsys):
    assert release.main(["grade", "08", str(tmp_path)]) == 1
    assert f"{tmp_path} holds no tinytorch/ package to grade" in capsys.readouterr().err


def test_grading_refuses_to_run_when_another_tinytorch_would_be_imported(tmp_path):
    (tmp_path / "run").mkdir()
    elsewhere = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    elsewhere["PYTHONPATH"] = str(ROOT)  # the repository's own package, not the submission
    with pytest.raises(release.ReleaseError, match="would not import the package under test"):
        release._check_imports_staged_package(tmp_path / "run", elsewhere,
                                              tmp_path / "student" / "tinytorch")


# ============================================================================ smaller points
@pytest.mark.parametrize("chapter", curriculum.CHAPTERS.values(), ids=lambda c: c.title)
def test_every_stub_has_a_docstring_stating_its_task(chapter):
    """The student README says the docstring states the task: a stub without one says nothing."""
    missing = []
    for stub in chapter.stubs:
        path, qualname = curriculum.split_stub(stub)
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        if not (ast.get_docstring(curriculum.find_definition(tree, qualname)) or "").strip():
            missing.append(stub)
    assert missing == []


def test_a_chapter_without_tests_is_an_error_at_release_time(tmp_path, monkeypatch):
    empty = dataclasses.replace(CHAPTER, tests=())
    monkeypatch.setitem(curriculum.CHAPTERS, CHAPTER.number, empty)
    with pytest.raises(release.ReleaseError, match="lists no test files, so nothing could grade"):
        release.make_student_release("08", tmp_path / "out")


def test_a_test_file_that_defines_no_test_is_an_error_at_release_time(tmp_path):
    for path in {*CHAPTER.modules, CHAPTER.page, *CHAPTER.tests}:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    (tmp_path / CHAPTER.tests[0]).write_text("import numpy\n")
    with pytest.raises(release.ReleaseError, match=f"{CHAPTER.tests[0]} defines no test function"):
        release._check_chapter(CHAPTER, tmp_path)


def test_the_grader_environment_pins_every_package_the_tests_need():
    assert [pin.split("==")[0] for pin in grader.pins()] == list(grader.PACKAGES)
    assert {"pytest", "hypothesis", "numpy", "tqdm", "pytest-timeout"} <= set(grader.PACKAGES)


def solved_chapter_02(tmp_path, relu_body):
    out = release.make_student_release("02", tmp_path / "release")
    source = (ROOT / "tinytorch/core/activations.py").read_text()
    path = out / "tinytorch/core/activations.py"
    path.write_text(release.stub_source(source, {"relu": "x"}).replace(
        "raise NotImplementedError('x')", relu_body))
    return out


def test_a_skip_raised_by_the_package_counts_as_failed_not_skipped(tmp_path):
    submission = solved_chapter_02(tmp_path, "import pytest\n    pytest.skip('not today')")
    report = release.grade("02", submission)
    dodged = [row for row in report["outcomes"] if row["outcome"] != "passed"]
    assert dodged and report["skipped"] == 0
    assert all(row["outcome"] == "failed" and "skipped by code outside the tests" in row["message"]
               and "not today" in row["message"] for row in dodged)
