"""The ``tinytorch`` command line (tinytorch/cli.py): each command, run through ``main(argv)``.

Most tests use a tiny course repository made in ``tmp_path`` (one chapter, one milestone), so
running tests and recording status never touches this checkout; commands that would be slow
against the real course (JupyterLab, a chapter's whole test run) are checked with --dry-run.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tinytorch import cli

ROOT = Path(__file__).resolve().parents[1]

CURRICULUM = '''
from dataclasses import dataclass


@dataclass(frozen=True)
class Chapter:
    number: str
    name: str
    page: str
    modules: tuple
    stubs: tuple
    tests: tuple

    @property
    def title(self):
        return f"{self.number} {self.name}"


class UnknownChapter(ValueError):
    pass


CHAPTERS = {"01": Chapter("01", "Tensor", "book/chapters/01_tensor.md",
                          ("tinytorch/tensor.py",), (), ("tests/test_tensor.py",))}


def get_chapter(number):
    key = f"{int(number):02d}" if str(number).isdigit() else str(number)
    if key not in CHAPTERS:
        raise UnknownChapter(f"unknown chapter {number!r}; valid chapters: 01 Tensor")
    return CHAPTERS[key]
'''

CONFTEST = '''
import pytest

def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.ch01)
'''

MILESTONE = '''
import json, sys
print(json.dumps({"python": sys.executable, "argv": sys.argv[1:]}))
'''


@pytest.fixture
def course(tmp_path, monkeypatch):
    """A minimal course repository: curriculum, one chapter's test and page, one milestone."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # its pytest runs start faster
    repo = tmp_path / "course"
    files = {
        "_toc.yml": "root: book/intro\n",
        "tools/curriculum.py": CURRICULUM,
        "tinytorch/tensor.py": "X = 1\n",
        "tests/test_tensor.py": "def test_x():\n    assert True\n",
        "conftest.py": CONFTEST,
        "pytest.ini": "[pytest]\nmarkers =\n    ch01: chapter 01\n",
        "book/chapters/01_tensor.md": "# 01 Tensor\n",
        "milestones/01_1958_perceptron/perceptron.py": MILESTONE,
    }
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text, encoding="utf-8")
    return repo


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------- finding the course
def test_the_repository_is_found_from_a_folder_inside_it(course, monkeypatch):
    monkeypatch.chdir(course / "book" / "chapters")
    assert cli.find_repo() == course.resolve()


def test_the_repository_is_found_where_the_package_is_installed_from(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not inside any course: the editable install's root
    assert cli.find_repo() == ROOT


def test_without_a_repository_the_error_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "__file__", str(tmp_path / "site-packages" / "tinytorch" / "cli.py"))
    code, _, err = run_cli(capsys, "list")
    assert code == 1
    assert "cannot find the TinyTorch course repository" in err
    assert "--repo PATH" in err and "pip install -e" in err


def test_a_repo_option_that_is_not_the_course_is_refused(tmp_path, capsys):
    code, _, err = run_cli(capsys, "--repo", tmp_path, "list")
    assert code == 1 and "is not the TinyTorch course repository" in err


# ------------------------------------------------------------------------- list and test
def test_list_shows_every_chapter_of_the_real_curriculum(capsys):
    from tools.curriculum import CHAPTERS

    code, out, _ = run_cli(capsys, "--repo", ROOT, "list")
    assert code == 0
    for chapter in CHAPTERS.values():
        assert chapter.title in out and chapter.page in out


def test_list_says_a_chapter_never_tested_is_not_tested(course, capsys):
    code, out, _ = run_cli(capsys, "--repo", course, "list")
    assert code == 0 and "01 Tensor" in out and "not tested yet" in out


def test_test_runs_the_chapter_marker_and_records_that_it_passed(course, capsys):
    code, out, _ = run_cli(capsys, "--repo", course, "test", "1")
    assert code == 0
    status = json.loads((course / cli.STATUS_FILE).read_text())
    assert status["01"]["passed"] is True and status["01"]["scope"] == "tests and pages"
    _, listing, _ = run_cli(capsys, "--repo", course, "list")
    assert "passed (tests and pages" in listing and "changed" not in listing


def test_a_failing_chapter_is_listed_as_failed(course, capsys):
    (course / "tests/test_tensor.py").write_text("def test_x():\n    assert False\n")
    code, _, _ = run_cli(capsys, "--repo", course, "test", "01")
    assert code == 1
    _, listing, _ = run_cli(capsys, "--repo", course, "list")
    assert "FAILED" in listing


def test_editing_the_chapter_after_its_run_shows_changed(course, capsys):
    run_cli(capsys, "--repo", course, "test", "01")
    (course / "tinytorch/tensor.py").write_text("X = 2\n")
    _, listing, _ = run_cli(capsys, "--repo", course, "list")
    assert "changed since: passed" in listing


def test_list_check_reruns_the_unit_tests_of_every_chapter(course, capsys):
    code, out, _ = run_cli(capsys, "--repo", course, "list", "--check")
    assert code == 0 and "passed (unit tests" in out


def test_test_dry_run_prints_pytest_with_the_chapter_marker(capsys):
    code, out, _ = run_cli(capsys, "--repo", ROOT, "test", "--dry-run", "8", "--", "-x")
    assert code == 0
    assert f"{sys.executable} -m pytest -m ch08 -x  (in {ROOT})" in out


def test_test_unit_runs_only_the_tests_folder(capsys):
    _, out, _ = run_cli(capsys, "--repo", ROOT, "test", "--dry-run", "--unit", "08")
    assert "-m pytest -m ch08 tests" in out


def test_an_unknown_chapter_names_the_valid_ones(capsys):
    code, _, err = run_cli(capsys, "--repo", ROOT, "test", "99")
    assert code == 1 and "unknown chapter '99'" in err and "01 Tensor" in err


# ------------------------------------------------------------------------------ milestone
def test_milestone_runs_the_script_with_its_flags_and_this_python(course, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # any folder
    command = [sys.executable, "-m", "tinytorch.cli", "--repo", str(course),
               "milestone", "01", "--quick", "--seed", "3"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    ran = json.loads(done.stdout)
    assert ran == {"python": sys.executable, "argv": ["--quick", "--seed", "3"]}


def test_the_installed_console_script_runs_a_real_milestone_from_any_folder(tmp_path):
    script = Path(sys.executable).with_name("tinytorch")
    assert script.exists(), f"{script} is missing: reinstall the package (`pip install -e .`)"
    done = subprocess.run([str(script), "milestone", "01", "--quick"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "RESULT: PASS" in done.stdout


def test_milestone_without_a_number_lists_the_milestones(capsys):
    code, out, _ = run_cli(capsys, "--repo", ROOT, "milestone")
    assert code == 0 and "04_1998_cnn" in out and "tinytorch milestone 04" in out


def test_an_unknown_milestone_names_the_existing_ones(capsys):
    code, _, err = run_cli(capsys, "--repo", ROOT, "milestone", "99")
    assert code == 1 and "no milestone '99'" in err and "01_1958_perceptron" in err


# ------------------------------------------------------------------------------- notebook
def test_notebook_opens_the_chapter_page_in_jupyterlab(capsys):
    code, out, _ = run_cli(capsys, "--repo", ROOT, "notebook", "--dry-run", "--no-browser", "8")
    assert code == 0
    assert (f"{sys.executable} -m jupyterlab --ServerApp.root_dir={ROOT} "
            f"book/chapters/08_training.md --no-browser") in out
    assert f"JUPYTER_CONFIG_PATH={ROOT / 'binder' / 'jupyter'}" in out


def test_notebook_accepts_a_page_name(capsys):
    _, out, _ = run_cli(capsys, "--repo", ROOT, "notebook", "--dry-run", "04_cnn")
    assert "book/milestones/04_cnn.md" in out


def test_notebook_of_an_unknown_page_says_what_to_give(capsys):
    code, _, err = run_cli(capsys, "--repo", ROOT, "notebook", "--dry-run", "no_such_page")
    assert code == 1 and "give a chapter number" in err


def test_jupyterlab_opens_myst_pages_with_jupytext():
    config = ROOT / "binder/jupyter/labconfig/default_setting_overrides.json"
    viewers = json.loads(config.read_text())["@jupyterlab/docmanager-extension:plugin"]
    assert viewers["defaultViewers"] == {"markdown": "Jupytext Notebook",
                                         "myst": "Jupytext Notebook"}


def test_jupyterlab_is_installed_by_the_requirements():
    pytest.importorskip("jupyterlab", reason="JupyterLab comes with requirements.txt")
    assert any(line.startswith("jupyterlab==")
               for line in (ROOT / "requirements.txt").read_text().splitlines())


# ------------------------------------------------------------------------ release / grade
def test_release_writes_the_student_release_through_tools_release(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "--repo", ROOT, "release", "08", "--out", tmp_path / "r")
    assert code == 0 and "wrote the student release of chapter 08" in out
    assert (tmp_path / "r" / "tinytorch" / "training" / "schedule.py").is_file()


def test_grade_passes_its_options_to_tools_release(capsys):
    code, out, _ = run_cli(capsys, "--repo", ROOT, "grade", "--dry-run", "08", "sub",
                           "--report", "g.json", "--timeout", "60")
    assert code == 0
    assert "-m tools.release grade 08 sub --report g.json --timeout 60" in out


def test_grade_of_a_folder_without_the_package_says_why(tmp_path, capsys):
    code, _, err = run_cli(capsys, "--repo", ROOT, "grade", "08", tmp_path)
    assert code == 1 and "holds no tinytorch/ package to grade" in err


# ------------------------------------------------------------------------------ capstone
@pytest.fixture
def capstone_checkpoint(tmp_path):
    """A checkpoint (the chapter 08 format) of a small int8 MLP of the digits-mlp task."""
    import tinytorch as tt
    from tinytorch.capstone import get_task
    from tinytorch.quantization import quantize_model

    tt.manual_seed(0)
    model = quantize_model(get_task("digits-mlp").build({"hidden": [16]}))
    path = tmp_path / "mine-trained.npz"
    tt.training.checkpoint.save_checkpoint(
        {"model": model.state_dict(), "optimizer": {}, "trainer": {}}, path)
    return path


def test_submit_writes_a_submission_that_score_measures(capstone_checkpoint, tmp_path, capsys):
    out = tmp_path / "subs" / "mine.json"
    out.parent.mkdir()
    code, printed, _ = run_cli(capsys, "submit", capstone_checkpoint, "--task", "digits-mlp",
                               "--learner", "ada", "--out", out)
    assert code == 0 and f"wrote {out} and mine.npz" in printed
    assert json.loads(out.read_text())["model"]["architecture"] == {"hidden": [16]}
    code, printed, _ = run_cli(capsys, "score", out, "--json", "--repeats", "2")
    result = json.loads(printed)
    assert result["bytes"] > 0 and result["learner"] == "ada"
    assert code == (0 if result["passed"] else 1)


def test_score_of_a_tampered_submission_fails_naming_the_checksum(capstone_checkpoint, tmp_path,
                                                                  capsys):
    run_cli(capsys, "submit", capstone_checkpoint, "--task", "digits-mlp", "--learner", "ada",
            "--out", tmp_path / "mine.json")
    with open(tmp_path / "mine.npz", "ab") as file:
        file.write(b"\0")
    code, _, err = run_cli(capsys, "score", tmp_path / "mine.json")
    assert code == 1 and "submission.model.sha256:" in err


def test_submit_of_an_unknown_task_names_the_tasks(capstone_checkpoint, tmp_path, capsys):
    code, _, err = run_cli(capsys, "submit", capstone_checkpoint, "--task", "imagenet",
                           "--learner", "ada", "--out", tmp_path / "x.json")
    assert code == 1 and "unknown capstone task 'imagenet'" in err and "digits-cnn" in err


def test_leaderboard_ranks_a_folder_and_lists_an_invalid_file(capstone_checkpoint, tmp_path,
                                                              capsys):
    run_cli(capsys, "submit", capstone_checkpoint, "--task", "digits-mlp", "--learner", "ada",
            "--out", tmp_path / "a.json")
    (tmp_path / "b.json").write_text("[]")
    code, printed, _ = run_cli(capsys, "leaderboard", tmp_path, "--repeats", "2")
    lines = printed.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["rank", "file", "learner"]
    assert lines[1].split()[:3] == ["1", "a.json", "ada"]
    assert lines[2].split()[:3] == ["-", "b.json", "invalid:"]
    assert "submission: [] is not of type 'object'" in lines[2]
