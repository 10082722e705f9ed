"""tinytorch: the course's everyday commands, installed with the package (console script).

    tinytorch list                   chapters and their status in this checkout
    tinytorch test 08                chapter 08's tests and its pages (pytest -m ch08)
    tinytorch milestone 04 --quick   run milestones/04_*/*.py with the flags after the number
    tinytorch notebook 08            open chapter 08 in JupyterLab, as a notebook
    tinytorch release 08 --out DIR   the instructor's student release (tools/release.py)
    tinytorch grade 08 SUBMISSION    grade a submission (tools/release.py)
    tinytorch submit CKPT --task digits-cnn --learner NAME --out mine.json
                                     a capstone submission of a checkpoint (chapter 20)
    tinytorch score mine.json        score it: measured bytes, held-out accuracy, latency
    tinytorch leaderboard FOLDER     rank every submission of a folder

The chapters, milestones and instructor tools live in the course repository, not in the
installed package, so every command but the capstone's (submit, score, leaderboard: the
package alone) first finds the repository: ``--repo PATH``, else the
current folder or one above it, else the clone this package is installed from (``pip
install -e``). Commands run with the Python that runs this tool.

Status: ``tinytorch test NN`` records its outcome, with a fingerprint of the chapter's code,
tests and pages, in ``.tinytorch/status.json`` (git-ignored); ``list`` shows it, and shows
"changed" once one of those files differs. ``list --check`` reruns every chapter's unit tests.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

STATUS_FILE = Path(".tinytorch") / "status.json"
MARKERS = ("_toc.yml", "tools/curriculum.py", "milestones")  # what makes a folder the course


class CourseError(Exception):
    """A command cannot run; the message says what to do instead."""


# ============================================================================ repository
def is_course_repo(path: Path) -> bool:
    return all((path / marker).exists() for marker in MARKERS)


def find_repo(explicit: str | None = None, cwd: Path | None = None) -> Path:
    """The course repository: ``explicit``, else ``cwd`` or a folder above it, else the
    folder above this package (an editable install)."""
    if explicit is not None:
        repo = Path(explicit).expanduser().resolve()
        if not is_course_repo(repo):
            raise CourseError(f"--repo {explicit}: {repo} is not the TinyTorch course repository "
                              f"(it lacks one of {', '.join(MARKERS)})")
        return repo
    start = (cwd or Path.cwd()).resolve()
    for candidate in (start, *start.parents, Path(__file__).resolve().parent.parent):
        if is_course_repo(candidate):
            return candidate
    raise CourseError(
        f"cannot find the TinyTorch course repository (a folder with {', '.join(MARKERS)}) "
        f"in {start} or above it, nor where tinytorch is installed from. Run this command "
        "inside your clone, pass --repo PATH, or install your clone with "
        "`pip install -e PATH` (git clone the course first if you have no clone).")


def curriculum(repo: Path):
    """``tools/curriculum.py`` of ``repo``, loaded from its file (it imports only stdlib)."""
    spec = importlib.util.spec_from_file_location("tinytorch_course_curriculum",
                                                  repo / "tools" / "curriculum.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


def chapter(repo: Path, number: str):
    course = curriculum(repo)
    try:
        return course.get_chapter(number)
    except course.UnknownChapter as error:
        raise CourseError(f"{error}. `tinytorch list` shows them.") from None


def chapter_pages(repo: Path, ch) -> list[Path]:
    """The chapter's pages: every ``NN_*.md`` beside its main page (as ``pytest -m chNN``)."""
    page = repo / ch.page
    return sorted(page.parent.glob(f"{ch.number}_*.md"))


# ================================================================================ status
def fingerprint(repo: Path, ch) -> str:
    """A hash of the chapter's modules, tests and pages: the files its status is about."""
    digest = hashlib.sha256()
    files = [repo / p for p in (*ch.modules, *ch.tests)] + chapter_pages(repo, ch)
    for path in sorted(files):
        digest.update(str(path.relative_to(repo)).encode())
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
    return digest.hexdigest()


def load_status(repo: Path) -> dict:
    try:
        return json.loads((repo / STATUS_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def record_status(repo: Path, ch, passed: bool, scope: str) -> None:
    status = load_status(repo)
    status[ch.number] = {"passed": passed, "scope": scope, "fingerprint": fingerprint(repo, ch),
                         "when": datetime.datetime.now().isoformat(timespec="seconds")}
    (repo / STATUS_FILE).parent.mkdir(exist_ok=True)
    (repo / STATUS_FILE).write_text(json.dumps(status, indent=2) + "\n", encoding="utf-8")


def describe_status(repo: Path, ch, status: dict) -> str:
    entry = status.get(ch.number)
    if entry is None:
        return "not tested yet"
    outcome = "passed" if entry["passed"] else "FAILED"
    text = f"{outcome} ({entry['scope']}, {entry['when'].replace('T', ' ')})"
    if entry["fingerprint"] != fingerprint(repo, ch):
        text = f"changed since: {text}"
    return text


# ============================================================================== commands
def run(command: list[str], args, cwd: Path | None = None, env: dict | None = None) -> int:
    """Run ``command`` (or only print it with --dry-run); its exit status."""
    where = f"  (in {cwd})" if cwd else ""
    if args.dry_run:
        print(shlex.join(command) + where)
        return 0
    return subprocess.run(command, cwd=cwd, env=env).returncode


def cmd_list(repo: Path, args) -> int:
    chapters = list(curriculum(repo).CHAPTERS.values())
    if args.check:
        try:
            from tqdm import tqdm
        except ImportError:  # installed without the course extras: no bar
            def tqdm(items, **_):
                return items
        for ch in tqdm(chapters, desc="unit tests", unit="chapter"):
            done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                   "-m", f"ch{ch.number}", "tests"],
                                  cwd=repo, capture_output=True, text=True)
            record_status(repo, ch, done.returncode == 0, "unit tests")
    status = load_status(repo)
    print(f"Chapters of {repo} (status: the last `tinytorch test NN` here; "
          "`tinytorch list --check` reruns the unit tests)")
    width = max(len(ch.title) for ch in chapters)
    for ch in chapters:
        print(f"  {ch.title:<{width}}  {ch.page:<36} {describe_status(repo, ch, status)}")
    return 0


def cmd_test(repo: Path, args) -> int:
    ch = chapter(repo, args.chapter)
    paths, scope = (["tests"], "unit tests") if args.unit else ([], "tests and pages")
    command = [sys.executable, "-m", "pytest", "-m", f"ch{ch.number}", *paths, *args.pytest_args]
    print(f"Chapter {ch.title}: {scope} ({', '.join(ch.tests)}"
          f"{'' if args.unit else ', ' + ', '.join(p.name for p in chapter_pages(repo, ch))})")
    code = run(command, args, cwd=repo)
    if not args.dry_run and code in (0, 1):  # 0 passed, 1 some failed; others: did not run
        record_status(repo, ch, code == 0, scope)
    return code


def milestone_script(repo: Path, number: str) -> Path:
    folders = sorted((repo / "milestones").glob("[0-9][0-9]_*"))
    key = f"{int(number):02d}" if number.isdigit() else number
    matches = [f for f in folders if f.name.split("_")[0] == key]
    if not matches:
        names = ", ".join(f.name for f in folders)
        raise CourseError(f"no milestone {number!r}; the milestones are: {names}")
    scripts = [p for p in matches[0].glob("*.py") if not p.name.startswith("_")]
    if len(scripts) != 1:
        raise CourseError(f"{matches[0]} should hold exactly one script, found "
                          f"{[p.name for p in scripts] or 'none'}")
    return scripts[0]


def cmd_milestone(repo: Path, args) -> int:
    if args.number is None:
        for folder in sorted((repo / "milestones").glob("[0-9][0-9]_*")):
            print(f"  {folder.name:<20}  tinytorch milestone {folder.name[:2]} [--quick ...]")
        return 0
    script = milestone_script(repo, args.number)
    return run([sys.executable, str(script), *args.flags], args)


def page_for(repo: Path, name: str) -> Path:
    """A chapter number (its main page) or a page name such as ``08_trainer`` or ``04_cnn``."""
    if name.isdigit():
        return repo / chapter(repo, name).page
    pages = [p for p in (repo / "book").rglob(f"{Path(name).stem}.md")]
    if len(pages) != 1:
        raise CourseError(f"no single page named {name!r} under book/; give a chapter number "
                          "(`tinytorch list`) or a page name such as 08_trainer or 04_cnn")
    return pages[0]


def cmd_notebook(repo: Path, args) -> int:
    page = page_for(repo, args.chapter)
    if importlib.util.find_spec("jupyterlab") is None and not args.dry_run:
        raise CourseError(f"JupyterLab is not installed for {sys.executable}: run "
                          f"`{sys.executable} -m pip install -r {repo / 'requirements.txt'}`")
    # binder/jupyter makes JupyterLab open MyST pages (.md) as notebooks, through jupytext.
    config = str(repo / "binder" / "jupyter")
    env = {**os.environ, "JUPYTER_CONFIG_PATH": os.pathsep.join(
        filter(None, [config, os.environ.get("JUPYTER_CONFIG_PATH")]))}
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={repo}",
               str(page.relative_to(repo))] + (["--no-browser"] if args.no_browser else [])
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # a container's root: JupyterLab asks
        command.append("--allow-root")
    if args.dry_run:
        print(f"JUPYTER_CONFIG_PATH={shlex.quote(env['JUPYTER_CONFIG_PATH'])}")
    return run(command, args, cwd=repo, env=env)


def cmd_release(repo: Path, args, tool_args: list[str]) -> int:
    """``tools/release.py``'s own command line (it runs in this process, paths stay relative
    to the current folder)."""
    if args.dry_run:
        print(shlex.join([sys.executable, "-m", "tools.release", *tool_args])
              + f"  (tools from {repo})")
        return 0
    sys.path.insert(0, str(repo))
    from tools import release
    if tool_args[0] == "grade" and len(tool_args) > 2:
        print(f"grading {tool_args[2]}: running chapter {tool_args[1]}'s tests (can take a "
              "minute) ...", flush=True)
    return release.main(tool_args)


def _capstone():
    try:
        import jsonschema  # noqa: F401  (checked here to say what to install)

        from tinytorch import capstone
    except ImportError as error:
        raise CourseError(f"the capstone commands need {error.name}: run "
                          f"`{sys.executable} -m pip install jsonschema scikit-learn`") from None
    return capstone


def cmd_submit(args) -> int:
    capstone = _capstone()
    recipe = {}
    if args.recipe is not None:
        try:
            recipe = json.loads(Path(args.recipe).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise CourseError(f"--recipe {args.recipe}: not a readable JSON file "
                              f"({error})") from None
    if args.dry_run:
        print(f"would write {args.out} (and {Path(args.out).with_suffix('.npz').name}) for "
              f"task {args.task} from {args.checkpoint}")
        return 0
    try:
        model = capstone.load_model(args.task, args.checkpoint)
        path = capstone.write_submission(model, args.out, task=args.task, learner=args.learner,
                                         recipe=recipe)
    except (OSError, ValueError, KeyError) as error:
        raise CourseError(str(error).strip("'\"")) from None
    print(f"wrote {path} and {path.with_suffix('.npz').name}; "
          f"`tinytorch score {path}` measures it")
    return 0


def cmd_score(args) -> int:
    capstone = _capstone()
    try:
        result = capstone.score(args.submission, repeats=args.repeats)
    except (OSError, ValueError, KeyError) as error:
        raise CourseError(f"{args.submission} cannot be scored:\n{error}") from None
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0 if result.passed else 1
    print(f"{args.submission}: task {result.task}, learner {result.learner} (measured here, "
          f"on the held-out split)")
    for c in result.constraints:
        bound = "<=" if c.at_most else ">="
        print(f"  {c.name:<11} {c.measured:>12.6g}  {bound} {c.limit:<10g} "
              f"{'passed' if c.passed else 'FAILED'}")
    for line in result.disagreements:
        print(f"  note: {line}")
    print(f"score {result.score:.4f}" + ("" if result.passed else
                                         f" (failed: {', '.join(result.failed())})"))
    return 0 if result.passed else 1


def cmd_leaderboard(args) -> int:
    capstone = _capstone()
    if not Path(args.folder).is_dir():
        raise CourseError(f"{args.folder} is not a folder of submissions")
    rows = capstone.leaderboard(args.folder, repeats=args.repeats)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'rank':>4}  {'file':<24} {'learner':<16} {'score':>7} {'bytes':>9} "
          f"{'accuracy':>8} {'ms':>8}  failed / error")
    for row in rows:
        if row["error"] is not None:
            print(f"{'-':>4}  {row['file']:<24} {'':<16} {'':>7} {'':>9} {'':>8} {'':>8}  "
                  f"invalid: {row['error']}")
            continue
        print(f"{row['rank']:>4}  {row['file']:<24} {row['learner']:<16} {row['score']:>7.4f} "
              f"{row['bytes']:>9,} {row['accuracy']:>8.4f} {row['latency_ms']:>8.2f}  "
              f"{', '.join(row['failed'])}")
    return 0


# ================================================================================= parser
def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tinytorch", description=__doc__.split("\n\n")[0],
                                  formatter_class=argparse.RawDescriptionHelpFormatter,
                                  epilog=__doc__.split("\n\n", 1)[1])
    top.add_argument("--repo", help="the course repository (default: found from the current "
                                    "folder, else where tinytorch is installed from)")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help_text):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--dry-run", action="store_true", help="print the command, do not run it")
        return sub

    listing = command("list", "the chapters and their status in this checkout")
    listing.add_argument("--check", action="store_true",
                         help="rerun every chapter's unit tests first (progress bar)")
    test = command("test", "run a chapter's tests and pages (python -m pytest -m chNN)")
    test.add_argument("chapter", help="chapter number, e.g. 08")
    test.add_argument("--unit", action="store_true", help="the unit tests only, not the pages")
    test.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARGS",
                      help="more arguments for pytest, after --, e.g. -- -x -q")
    milestone = command("milestone", "run a milestone script; arguments after the number are "
                                     "its own flags (e.g. --quick, --dataset, --help)")
    milestone.add_argument("number", nargs="?", help="milestone number, e.g. 04 (none: list)")
    milestone.add_argument("flags", nargs=argparse.REMAINDER, help="the script's flags")
    notebook = command("notebook", "open a chapter's page in JupyterLab as a notebook")
    notebook.add_argument("chapter", help="chapter number (e.g. 08) or page name (08_trainer)")
    notebook.add_argument("--no-browser", action="store_true",
                          help="start JupyterLab without opening a browser (it prints the URL)")
    release = command("release", "write a chapter's student release: the arguments of "
                                 "`python -m tools.release student` (NN --out DIR [--force])")
    release.add_argument("tool_args", nargs=argparse.REMAINDER, metavar="NN --out DIR ...")
    grade = command("grade", "grade a submission with the chapter's tests: the arguments of "
                             "`python -m tools.release grade` (NN SUBMISSION [--report FILE] ...)")
    grade.add_argument("tool_args", nargs=argparse.REMAINDER, metavar="NN SUBMISSION ...")
    submit = command("submit", "write a capstone submission (JSON and checkpoint) of a "
                               "checkpoint's model (chapter 20)")
    submit.add_argument("checkpoint", help="a checkpoint of save_checkpoint or Trainer")
    submit.add_argument("--task", required=True, help="the capstone task, e.g. digits-cnn")
    submit.add_argument("--learner", required=True, help="your name")
    submit.add_argument("--out", required=True, help="the submission's JSON file to write")
    submit.add_argument("--recipe", help="a JSON file describing what you applied")
    for name, help_text in (("score", "score a capstone submission on the held-out data"),
                            ("leaderboard", "rank every capstone submission of a folder")):
        sub = command(name, help_text)
        sub.add_argument("submission" if name == "score" else "folder")
        sub.add_argument("--json", action="store_true", help="print the result as JSON")
        sub.add_argument("--repeats", type=int, default=15,
                         help="timed forward passes for the latency (default 15)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        capstone_commands = {"submit": cmd_submit, "score": cmd_score,
                             "leaderboard": cmd_leaderboard}
        if args.command in capstone_commands:  # the package alone: no repository needed
            return capstone_commands[args.command](args)
        repo = find_repo(args.repo)
        if args.command in ("release", "grade"):  # tools/release.py's own options, as given
            tool = "student" if args.command == "release" else "grade"
            return cmd_release(repo, args, [tool, *args.tool_args])
        handlers = {"list": cmd_list, "test": cmd_test, "milestone": cmd_milestone,
                    "notebook": cmd_notebook}
        return handlers[args.command](repo, args)
    except CourseError as error:
        print(f"tinytorch: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
