"""Student releases and autograding, for instructors (``python -m tools.release --help``).

``student 08 --out DIR`` writes a self-contained copy of the course for chapter 08: the whole
package, in which the chapter's functions (``tools/curriculum.py``) keep their signature
and docstring but raise ``NotImplementedError``, every other chapter's code intact (so each
chapter can be done on its own), the chapter's tests and page, and a README for the student.

``grade 08 SUBMISSION`` runs the instructor's copy of the chapter's tests — never the
submission's own, which a student may have edited — against a copy of the ``tinytorch``
package in SUBMISSION, in the grader's own virtual environment (``tools/grader``) and under
bubblewrap where it works, audits what was imported, and reports per-test outcomes and a
score (JSON with ``--report``).
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import curriculum, grader
from .curriculum import REPO_ROOT, Chapter, find_definition, split_stub

__all__ = ["ReleaseError", "stub_message", "stub_source", "support_files", "stub_package",
           "make_student_release", "grade", "format_summary", "main"]

PACKAGE = "tinytorch"
_JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache",
                               ".hypothesis", ".ipynb_checkpoints")
_MESSAGE_LIMIT = 1000  # characters of a failure message kept in the report
_OUTPUT_TAIL = 3000    # characters of pytest's output shown when grading cannot run


class ReleaseError(Exception):
    """The release cannot be written, or a submission cannot be graded; says why."""


# ================================================================================ stubs
def stub_message(chapter: Chapter, qualname: str) -> str:
    return f"Chapter {chapter.number}: implement {qualname} — see {chapter.page}"


def _is_docstring(statement: ast.stmt) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


def _body_lines(lines: list, node) -> tuple:
    """``(first, stop, indent)``: the 0-based line range of ``node``'s body that a stub
    replaces (everything after the docstring, or after the ``def`` header when there is
    none, comments included) and the indentation of the body."""
    first_statement = node.body[0]
    line = lines[first_statement.lineno - 1]
    if line.encode()[:first_statement.col_offset].strip():  # col_offset counts UTF-8 bytes
        raise ReleaseError(f"cannot stub {node.name}: its body starts on the line of its 'def'")
    indent = line[:len(line) - len(line.lstrip())]
    if _is_docstring(first_statement):
        first = first_statement.end_lineno
    else:
        first = first_statement.lineno - 1
        while first - 1 >= node.lineno and lines[first - 1].strip().startswith("#"):
            first -= 1  # comments above the first statement belong to the solution too
    return first, node.end_lineno, indent


def stub_source(source: str, stubs: dict, filename: str = "<source>") -> str:
    """``source`` with the body of each function in ``stubs`` (qualified name -> message)
    replaced by ``raise NotImplementedError(message)``; decorators, the ``def`` lines and
    the docstring stay, and so does every other line of the file."""
    lines = io.StringIO(source, newline="").readlines()  # the line breaks ast counts
    tree = ast.parse(source, filename=filename)
    edits = []
    for qualname, message in stubs.items():
        try:
            node = find_definition(tree, qualname)
        except LookupError as error:
            raise ReleaseError(f"{filename}: {error}") from None
        first, stop, indent = _body_lines(lines, node)
        header = lines[node.lineno - 1]
        newline = header[len(header.rstrip("\r\n")):] or "\n"
        edits.append((first, stop, f"{indent}raise NotImplementedError({message!r}){newline}"))
    # Bottom-up, so earlier line numbers stay valid. Stubs never nest: only functions in
    # module and class bodies can be named.
    for first, stop, replacement in sorted(edits, reverse=True):
        lines[first:stop] = [replacement]
    stubbed = "".join(lines)
    compile(stubbed, filename, "exec")  # a stub that broke the file must not ship
    return stubbed


# ================================================================================ files
_FIXTURE_NAME = re.compile(r"""["']([\w.-]+\.(?:npz|json))["']""")


def support_files(tests, root: Path = REPO_ROOT) -> list:
    """The files besides ``tests`` (paths relative to ``root``) that they need to run:
    ``conftest.py`` and ``__init__.py`` of their folders inside ``tests/``, the local
    modules they (and those files) import, and the files of ``tests/fixtures/`` they name.
    The repository's root conftest.py, which only turns book pages into tests, is never
    needed."""
    root = Path(root)
    tests_folder = root / "tests"
    found, queue = set(), [root / t for t in tests]
    while queue:
        path = queue.pop()
        folder = path.parent
        while tests_folder == folder or tests_folder in folder.parents:
            for name in ("conftest.py", "__init__.py"):
                candidate = folder / name
                if candidate.is_file() and candidate not in found:
                    found.add(candidate)
                    queue.append(candidate)
            folder = folder.parent
        for module in _imported_modules(path):
            for candidate in _local_files(module, path.parent, root):
                if tests_folder in candidate.parents and candidate not in found:
                    found.add(candidate)
                    queue.append(candidate)
    for path in [root / t for t in tests] + sorted(found):  # stored oracle numbers they read
        for name in _FIXTURE_NAME.findall(path.read_text(encoding="utf-8")):
            if (tests_folder / "fixtures" / name).is_file():
                found.add(tests_folder / "fixtures" / name)
    wanted = {str(Path(t)) for t in tests}
    return sorted(str(p.relative_to(root)) for p in found if str(p.relative_to(root)) not in wanted)


def _imported_modules(path: Path) -> set:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _local_files(module: str, folder: Path, root: Path):
    """Files a test could mean by ``import module``: next to it (pytest puts a test's
    folder on sys.path) or under the repository root (dotted, e.g. ``tests.helpers``)."""
    relative = Path(*module.split("."))
    for base in (folder, root):
        for candidate in (base / relative.with_suffix(".py"), base / relative / "__init__.py"):
            if candidate.is_file():
                yield candidate


def _copy_files(paths, root: Path, destination: Path) -> None:
    for relative in paths:
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, target)


def _check_chapter(chapter: Chapter, root: Path) -> None:
    problems = curriculum.chapter_problems(chapter, root)
    if not chapter.tests:
        problems.append("it lists no test files, so nothing could grade it")
    for test in chapter.tests:
        path = root / test
        if path.is_file() and not any(
                isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.name.startswith("test") for node in ast.walk(ast.parse(
                    path.read_text(encoding="utf-8"), filename=test))):
            problems.append(f"{test} defines no test function")
    if problems:
        raise ReleaseError(f"tools/curriculum.py no longer matches the repository for chapter "
                           f"{chapter.title}:\n  " + "\n  ".join(problems))


# ================================================================================ release
def _prepare_output(out: Path, root: Path, force: bool) -> None:
    if out == root or out in root.parents:
        raise ReleaseError(f"refusing to write a release into {out}: it contains the repository")
    for protected in (PACKAGE, "tests", "book", "tools"):
        folder = root / protected
        if out == folder or folder in out.parents:
            raise ReleaseError(f"refusing to write a release into {out}: it is inside the "
                               f"repository's {protected}/")
    if out.exists() and not out.is_dir():
        raise ReleaseError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise ReleaseError(f"{out} is not empty; choose an empty folder, or pass --force to "
                               f"replace its contents")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def stub_package(out, chapters, root: Path = REPO_ROOT) -> Path:
    """Copy the package from ``root`` into ``out`` with the stubs of every chapter in
    ``chapters`` (Chapter objects); return ``out / "tinytorch"``."""
    out = Path(out)
    shutil.copytree(Path(root) / PACKAGE, out / PACKAGE, ignore=_JUNK, dirs_exist_ok=True)
    by_file: dict = {}
    for chapter in chapters:
        for stub in chapter.stubs:
            path, qualname = split_stub(stub)
            by_file.setdefault(path, {})[qualname] = stub_message(chapter, qualname)
    for path, stubs in by_file.items():
        source = (Path(root) / path).read_text(encoding="utf-8")
        (out / path).write_text(stub_source(source, stubs, path), encoding="utf-8")
    return out / PACKAGE


def make_student_release(number, out, *, force: bool = False, root: Path = REPO_ROOT,
                         in_order: bool = False) -> Path:
    """Write the student release of chapter ``number`` into the folder ``out``; return it.

    ``out`` must be empty or missing; ``force=True`` deletes what is in it first. With
    ``in_order=True`` every later chapter is stubbed too, as in a course worked through in
    order: chapter ``number``'s tests pass once its own functions are written, whatever
    the later chapters hold (``tests/test_release.py`` checks this for every chapter).
    """
    chapter = curriculum.get_chapter(number)
    root, out = Path(root).resolve(), Path(out).resolve()
    _check_chapter(chapter, root)
    _prepare_output(out, root, force)

    later = [c for n, c in curriculum.CHAPTERS.items() if n > chapter.number] if in_order else []
    stub_package(out, [chapter, *later], root)

    tests = list(chapter.tests)
    page_twin = str(Path(chapter.page).with_suffix(".ipynb"))
    pages = [chapter.page] + ([page_twin] if (root / page_twin).is_file() else [])
    _copy_files(["pyproject.toml", "requirements.txt", *tests, *support_files(tests, root),
                 *pages], root, out)
    (out / "README.md").write_text(_student_readme(chapter, pages), encoding="utf-8")
    return out


def _student_readme(chapter: Chapter, pages: list) -> str:
    rows = "\n".join(f"| `{qualname}` | `{path}` |"
                     for path, qualname in map(split_stub, chapter.stubs))
    notebook = f" (as a notebook: `{pages[1]}`)" if len(pages) > 1 else ""
    tests = "\n".join(f"- `{t}`" for t in chapter.tests)
    return f"""# TinyTorch · Chapter {chapter.number}: {chapter.name} (student release)

Implement the {len(chapter.stubs)} functions and methods below. Each one now raises
`NotImplementedError`; its signature and docstring, kept from the reference, state what it
must do. The rest of `tinytorch/` is the reference implementation of the other chapters, so
you can build on it.

| implement | in |
| --- | --- |
{rows}

Read the chapter: `{chapter.page}`{notebook}.
Its code cells run the package: those that call your functions work once you have written them.

## Set up (once)

```bash
python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
```

This installs the `tinytorch` of this folder (editable: your changes apply at once) and what
the tests and the chapter page need (Python 3.10 or newer).

## Run the tests

From this folder:

```bash
python -m pytest tests
```

(with the set-up above: `.venv/bin/python -m pytest tests`). The tests of this chapter fail
until you have implemented the functions above; you are done when they all pass:

{tests}

Hand in this folder (what counts is its `tinytorch/`). It is graded with the instructor's own
copy of these tests, so changing the tests here changes nothing.
"""


# ================================================================================ grading
def _environment(package_parent: Path, *extra_path: Path) -> dict:
    """The environment of the pytest runs: ``package_parent`` (then ``extra_path``) alone on
    PYTHONPATH, so ``import tinytorch`` finds the package staged there and nothing else of
    the instructor's; no PYTEST_* or PYTHON* setting of the caller's."""
    env = {k: v for k, v in os.environ.items()
           if k in ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TZ")}
    env["PYTHONPATH"] = os.pathsep.join(map(str, (package_parent, *extra_path)))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(command: list, cwd: Path, env: dict, timeout: float, what: str):
    try:
        return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ReleaseError(f"{what} did not finish within {timeout:g} s") from None


def _tail(result) -> str:
    return (result.stdout + result.stderr)[-_OUTPUT_TAIL:]


def _check_imports_staged_package(folder: Path, env: dict, staged: Path,
                                  python: str = sys.executable) -> None:
    """Fail unless ``import tinytorch``, run in ``folder`` with ``env``, finds ``staged``.

    Locates the package without importing it: a submission that does not import is graded
    (its tests fail), not an error of the grader.
    """
    probe = ("import importlib.util; spec = importlib.util.find_spec('tinytorch'); "
             "print(spec.origin if spec else '')")
    result = _run([str(python), "-c", probe], folder, env, 60, "locating tinytorch")
    origin = result.stdout.strip()
    if result.returncode != 0 or not origin or staged not in Path(origin).resolve().parents:
        raise ReleaseError(f"the tests would not import the package under test ({staged}); "
                           f"'import tinytorch' finds {origin or 'nothing'!r} instead. "
                           f"{result.stderr.strip()}")


class _Stage:
    """The folders of one grading run, all in a fresh temporary folder ``scratch``:
    ``run`` (the instructor's tests, the tests' working folder), ``student`` and ``ref``
    (each holding a copy of one ``tinytorch``), ``plugin`` (the grader's pytest plugin),
    ``tmp`` (scratch space when there is no sandbox) and the result files."""

    def __init__(self, scratch: Path, python: Path, sandboxed: bool, venv: Path):
        self.scratch, self.python, self.sandboxed, self.venv = scratch, python, sandboxed, venv
        self.run, self.plugin, self.tmp = scratch / "run", scratch / "plugin", scratch / "tmp"
        self.runs = 0

    def pytest(self, package_parent: Path, tests: list, extra: list, timeout: float):
        """Run pytest over ``tests`` with ``package_parent/tinytorch``; return ``(exit
        status or None after a timeout, the plugin's result or None, output tail)``."""
        self.runs += 1
        results = self.scratch / f"result-{self.runs}.json"
        fd = os.open(results, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        env = _environment(package_parent, self.plugin)
        env.update(TINYTORCH_GRADER_FD=str(fd),
                   TINYTORCH_GRADER_PACKAGE=str(package_parent / PACKAGE),
                   HOME="/tmp" if self.sandboxed else str(self.tmp),
                   TMPDIR="/tmp" if self.sandboxed else str(self.tmp))
        command = [str(self.python), "-m", "pytest", *tests, "-p", "tinytorch_grader_plugin",
                   "-p", "no:cacheprovider", "--tb=short", "--hypothesis-seed=0", *extra]
        if self.sandboxed:
            command = grader.sandbox_command(
                command, venv=self.venv, readable=[self.run, self.plugin, package_parent],
                writable=[self.run / ".hypothesis"], cwd=self.run)
        try:
            result = subprocess.run(command, cwd=self.run, env=env, capture_output=True,
                                    text=True, timeout=timeout, pass_fds=(fd,))
            status, tail = result.returncode, _tail(result)
        except subprocess.TimeoutExpired as expired:
            status, tail = None, str(expired.stdout or "")[-_OUTPUT_TAIL:]
        finally:
            os.close(fd)
        text = results.read_text(encoding="utf-8")
        try:
            return status, (json.loads(text) if text else None), tail
        except json.JSONDecodeError:
            return status, None, tail


_EXPECTED: dict = {}  # collections against the reference, by the content of what they read


def _collect_expected(stage: _Stage, reference: Path, tests: list, timeout: float) -> list:
    """Node ids of the tests as collected against the reference package (remembered for as
    long as the tests, their support files, the package and the grader are unchanged)."""
    digest = hashlib.sha256(str(stage.python).encode())
    for folder in (stage.run, reference, stage.plugin):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    key = digest.hexdigest()
    if key not in _EXPECTED:
        status, result, tail = stage.pytest(reference, tests, ["--collect-only", "-q"], timeout)
        ids = result["collected"] if result else []
        if status != 0 or not ids:
            raise ReleaseError("the instructor's tests do not collect against the reference "
                               f"package (pytest exit code {status}):\n{tail}")
        _EXPECTED[key] = ids
    return list(_EXPECTED[key])


def _under(path, folder: Path) -> bool:
    return bool(path) and Path(folder).resolve() in Path(path).resolve().parents


def _audit(stage: _Stage, status, result, expected: list, tail: str, student: Path) -> list:
    """Why this run's report cannot be trusted (empty when it can)."""
    if status is None:
        return ["the test run did not finish within its time limit"]
    if result is None:
        return [f"the test run ended without the grader's report (exit code {status}): "
                f"{tail.strip().splitlines()[-1] if tail.strip() else 'no output'}"]
    reasons = list(result["tampering"])
    for name, file in sorted(result["modules"].items()):
        if not _under(file, student / PACKAGE):
            reasons.append(f"{name} was imported from {file}, not from the submission's copy")
    collected, outcomes = result["collected"], result["outcomes"]
    unknown = sorted(set(collected) - set(expected))
    if unknown:
        reasons.append(f"the run collected {len(unknown)} test(s) the instructor's tests do not "
                       f"have, e.g. {unknown[0]}")
    if set(outcomes) - set(collected):
        reasons.append(f"the report names {len(set(outcomes) - set(collected))} test(s) that "
                       f"pytest did not collect")
    unexplained = [node for node in set(expected) - set(collected)
                   if node.split("::")[0] not in result["broken_files"]]
    if unexplained:
        reasons.append(f"pytest collected {len(collected)} of the {len(expected)} tests, and no "
                       f"import error explains the {len(unexplained)} missing")
    failing = bool(result["broken_files"]) or any(
        outcome in ("failed", "error") for outcome, _, _ in outcomes.values()) or bool(
        set(collected) - set(outcomes))
    if status not in (0, 1) or result.get("exitstatus") != status:
        reasons.append(f"pytest did not complete (exit code {status}, its report says "
                       f"{result.get('exitstatus')}):\n{tail}")
    elif (status == 0) == failing:
        reasons.append(f"pytest's exit code {status} disagrees with its report "
                       f"({'some' if failing else 'no'} test failed)")
    return reasons


def _rows(stage: _Stage, result: dict, expected: list) -> list:
    outcomes = result["outcomes"] if result else {}
    broken = result["broken_files"] if result else {}
    rows = []
    for node in expected:
        outcome, message, where = outcomes.get(node, (None, "", ""))
        if outcome is None:
            file = node.split("::")[0]
            reason = broken.get(file, "it is missing from pytest's report")
            outcome, message = "error", f"not run: {file} failed to import: {reason}"
        elif outcome == "skipped" and not _under(stage.run / where.split(":")[0], stage.run):
            outcome = "failed"  # a skip raised by the package under test is no excuse
            message = f"skipped by code outside the tests ({where}): {message}"
        rows.append({"test": node, "outcome": outcome, "message": message[:_MESSAGE_LIMIT]})
    return rows


def grade(number, submission, *, root: Path = REPO_ROOT, timeout: float = 900,
          test_timeout: float = 60, venv=None, sandbox: str = "auto") -> dict:
    """Run the instructor's tests of chapter ``number`` against ``submission/tinytorch``.

    The tests run with the grader environment (``tools/grader``, ``venv`` to choose its
    folder), on a copy of the submitted package, under bubblewrap when ``sandbox`` is "on",
    or "auto" and it works here; each test may take ``test_timeout`` seconds, the whole run
    ``timeout``.

    Returns the report: ``chapter``, ``name``, ``submission``, ``tests`` (the test files),
    ``total`` (tests collected against the reference implementation), ``passed``,
    ``failed``, ``errors``, ``skipped``, ``score`` (passed / (total - skipped), 0 when
    refused), ``refused`` (why the run's report cannot be trusted; empty when it can),
    ``sandboxed`` and ``outcomes``, one ``{"test", "outcome", "message"}`` per test. A test
    that did not run (its file failed to import) counts as an error. Raises ReleaseError
    when grading itself cannot run.
    """
    chapter = curriculum.get_chapter(number)
    root, submission = Path(root).resolve(), Path(submission).resolve()
    if not (submission / PACKAGE / "__init__.py").is_file():
        raise ReleaseError(f"{submission} holds no {PACKAGE}/ package to grade "
                           f"(expected {submission / PACKAGE / '__init__.py'})")
    _check_chapter(chapter, root)
    if sandbox not in ("auto", "on", "off"):
        raise ReleaseError(f"sandbox must be 'auto', 'on' or 'off', not {sandbox!r}")
    sandboxed = sandbox != "off" and grader.bwrap() is not None
    if sandbox == "on" and not sandboxed:
        raise ReleaseError("--sandbox on: bubblewrap (bwrap) is not available or cannot run "
                           "here (Debian: apt-get install bubblewrap)")
    try:
        venv = grader.ensure_venv(venv, root / "requirements.txt")
    except grader.GraderError as error:
        raise ReleaseError(str(error)) from None
    tests = list(chapter.tests)

    with tempfile.TemporaryDirectory(prefix="tinytorch-grade-") as scratch:
        stage = _Stage(Path(scratch).resolve(), grader.python_of(venv), sandboxed, venv)
        # The tests run from their own folder, which holds no package: only the copy of the
        # submission's package is importable, never a conftest.py or module it might add.
        student, reference = stage.scratch / "student", stage.scratch / "ref"
        _copy_files(["pyproject.toml", *tests, *support_files(tests, root)], root, stage.run)
        (stage.run / ".hypothesis").mkdir()
        stage.plugin.mkdir()
        stage.tmp.mkdir()
        shutil.copy(grader.PLUGIN, stage.plugin / "tinytorch_grader_plugin.py")
        shutil.copytree(submission / PACKAGE, student / PACKAGE, ignore=_JUNK)
        shutil.copytree(root / PACKAGE, reference / PACKAGE, ignore=_JUNK)

        _check_imports_staged_package(stage.run, _environment(student), student / PACKAGE,
                                      stage.python)
        expected = _collect_expected(stage, reference, tests, timeout)
        status, result, tail = stage.pytest(
            student, tests, ["--continue-on-collection-errors", "--timeout", f"{test_timeout:g}"],
            timeout)
        refused = _audit(stage, status, result, expected, tail, student)
        rows = _rows(stage, result, expected)

    counts = {kind: sum(row["outcome"] == kind for row in rows)
              for kind in ("passed", "failed", "error", "skipped")}
    graded = len(rows) - counts["skipped"]
    return {
        "chapter": chapter.number,
        "name": chapter.name,
        "submission": str(submission),
        "tests": tests,
        "total": len(rows),
        "passed": counts["passed"],
        "failed": counts["failed"],
        "errors": counts["error"],
        "skipped": counts["skipped"],
        "score": 0.0 if refused or not graded else counts["passed"] / graded,
        "refused": refused,
        "sandboxed": sandboxed,
        "outcomes": rows,
    }


def format_summary(report: dict, failures_shown: int = 5) -> str:
    """A short table: passed / total per test file, the totals and the first failures."""
    files = {}
    for row in report["outcomes"]:
        passed, total = files.get(row["test"].split("::")[0], (0, 0))
        files[row["test"].split("::")[0]] = (passed + (row["outcome"] == "passed"), total + 1)
    width = max(len(f) for f in [*files, "total"])
    lines = [f"Chapter {report['chapter']} {report['name']}: {report['submission']}",
             f"{'test file':<{width}}  passed"]
    lines += [f"{file:<{width}}  {p:>4} / {t}" for file, (p, t) in files.items()]
    lines.append(f"{'total':<{width}}  {report['passed']:>4} / {report['total']}   "
                 f"score {report['score']:.3f}   ({report['failed']} failed, "
                 f"{report['errors']} errors, {report['skipped']} skipped, not scored)")
    if report["refused"]:
        lines.append("REFUSED, score 0: the run's report cannot be trusted:")
        lines += [f"  {reason.splitlines()[0]}" for reason in report["refused"]]
    if not report["sandboxed"]:
        lines.append("(not sandboxed: bubblewrap is not available here, see the README)")
    not_passed = [row for row in report["outcomes"] if row["outcome"] != "passed"]
    if not_passed:
        lines.append("first failures:")
        lines += [f"  {row['test']}: {(row['message'] or row['outcome']).splitlines()[0]}"
                  for row in not_passed[:failures_shown]]
        if len(not_passed) > failures_shown:
            lines.append(f"  ... and {len(not_passed) - failures_shown} more")
    return "\n".join(lines)


# ================================================================================ CLI
def _parser() -> argparse.ArgumentParser:
    chapters = ", ".join(c.title for c in curriculum.CHAPTERS.values())
    parser = argparse.ArgumentParser(
        prog="python -m tools.release", description=__doc__.split("\n\n")[0],
        epilog=f"chapters: {chapters}")
    commands = parser.add_subparsers(dest="command", required=True)

    student = commands.add_parser("student", help="write the student release of a chapter")
    student.add_argument("chapter", help="chapter number, e.g. 08")
    student.add_argument("--out", required=True, type=Path,
                         help="folder to write the release into (must be empty or missing)")
    student.add_argument("--force", action="store_true",
                         help="replace the contents of a non-empty --out folder")
    student.add_argument("--in-order", action="store_true",
                         help="stub every later chapter too (a course done in order)")

    grader = commands.add_parser("grade", help="grade a submission with the chapter's tests")
    grader.add_argument("chapter", help="chapter number, e.g. 08")
    grader.add_argument("submission", type=Path,
                        help="the student's folder (the release, with tinytorch/ completed)")
    grader.add_argument("--report", type=Path, help="also write the full report as JSON here")
    grader.add_argument("--timeout", type=float, default=900,
                        help="seconds the test run may take (default 900)")
    grader.add_argument("--test-timeout", type=float, default=60,
                        help="seconds one test may take before it fails (default 60)")
    grader.add_argument("--grader-venv", type=Path, default=None,
                        help="the grader's virtual environment (built there when missing; "
                             "default: a cached one per set of pins)")
    grader.add_argument("--sandbox", choices=("auto", "on", "off"), default="auto",
                        help="run the tests under bubblewrap: where it works (auto, the "
                             "default), always (on: an error where it does not) or never")

    commands.add_parser("list", help="list the chapters and the functions each stubs")
    return parser


def main(argv=None) -> int:
    """Exit status: 0 when the command ran (whatever the score), 1 when it could not, 2
    for a usage error such as an unknown chapter."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for chapter in curriculum.CHAPTERS.values():
                print(f"{chapter.title}  ({chapter.page}; tests: {', '.join(chapter.tests)})")
                for stub in chapter.stubs:
                    print(f"    {stub}")
            return 0
        chapter = curriculum.get_chapter(args.chapter)
        if args.command == "student":
            out = make_student_release(chapter.number, args.out, force=args.force,
                                       in_order=args.in_order)
            print(f"wrote the student release of chapter {chapter.title} to {out}: "
                  f"{len(chapter.stubs)} stubs, tests {', '.join(chapter.tests)}")
            return 0
        report = grade(chapter.number, args.submission, timeout=args.timeout,
                       test_timeout=args.test_timeout, venv=args.grader_venv,
                       sandbox=args.sandbox)
        if args.report is not None:
            args.report.parent.mkdir(parents=True, exist_ok=True)
            args.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(format_summary(report))
        return 0
    except curriculum.UnknownChapter as error:
        parser.error(str(error))  # exits with status 2
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
