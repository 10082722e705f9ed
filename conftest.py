"""Root pytest configuration: book pages are tests, and every chapter has a marker.

Book pages. pytest collects ``book/`` (see ``testpaths`` in pyproject.toml). Each Markdown
page the site build executes (a MyST notebook) is converted to ``.nbmake/<same path>.ipynb``
and run by nbmake, with a 300 s per-cell timeout (``--nbmake-timeout``). A cell that raises
fails the test. Run one page with ``python -m pytest book/chapters/08_training.md``. The
notebook toolchain (nbmake, jupytext, myst-nb) is imported only when a page is collected, so
``python -m pytest tests`` runs without it.

Chapter markers. ``python -m pytest -m ch08`` runs chapter 08 alone: the test files that
``tools/curriculum.py`` lists for it (``CHAPTERS["08"].tests``) and every page beside its
``.page`` whose file name starts with its number (``book/chapters/08_*.md``). Tests that
belong to no chapter (milestones, tooling) carry no chapter marker.

Threads. Kernels and scripts started by the tests use one BLAS thread unless the caller set
``OPENBLAS_NUM_THREADS`` (or ``OMP_``/``MKL_``) itself: see ``tools/environment.py``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.curriculum import CHAPTERS, Chapter  # noqa: E402  (stdlib only: no toolchain)
from tools.environment import single_threaded_blas  # noqa: E402

single_threaded_blas()  # for the kernels and scripts the tests start (tools/environment.py)

TOOLCHAIN_HINT = ("collecting a book page needs the notebook toolchain (nbmake, jupytext, "
                  "myst-nb): `.venv/bin/pip install -r requirements.txt`; "
                  "`python -m pytest tests` runs the package's tests without it")


def _book_pages():
    """``tools.book_pages``, imported on first use: it needs jupytext and myst-nb."""
    try:
        from tools import book_pages
    except ImportError as error:
        raise ImportError(f"{TOOLCHAIN_HINT} ({error})") from error
    return book_pages


class BookPage(pytest.File):
    """A MyST notebook page, executed through its converted .ipynb by nbmake."""

    def collect(self):
        try:
            from nbmake.pytest_items import NotebookItem
        except ImportError as error:
            raise ImportError(f"{TOOLCHAIN_HINT} ({error})") from error
        notebook = _book_pages().convert_page(self.path, ROOT)
        yield NotebookItem.from_parent(self, filename=str(notebook))


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix == ".md" and ROOT / "book" in file_path.parents:
        if _book_pages().is_notebook_page(file_path):
            return BookPage.from_parent(parent, path=file_path)
    return None


def chapter_marker(chapter: Chapter) -> str:
    return f"ch{chapter.number}"


def chapter_of(path: Path) -> Chapter | None:
    """The chapter that ``path`` (a test file or a book page) belongs to, if any."""
    try:
        relative = PurePosixPath(Path(path).resolve().relative_to(ROOT).as_posix())
    except ValueError:  # outside the repository (pytester, tmp_path)
        return None
    for chapter in CHAPTERS.values():
        page = PurePosixPath(chapter.page)
        if str(relative) in chapter.tests or (
                relative.suffix == ".md" and relative.parent == page.parent
                and relative.name.startswith(f"{chapter.number}_")):
            return chapter
    return None


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own, which reads these options
def pytest_cmdline_main(config):
    """Spread the run over every core (pytest-xdist's ``-n auto``), each test file on one
    worker (``--dist loadfile``, so a file's module fixtures are built once), when xdist is
    installed and the command line chose nothing; ``-n 0`` runs in one process, as does a
    pytest started by a test (see :func:`pytest_configure`)."""
    option = config.option
    if (config.pluginmanager.hasplugin("xdist") and option.numprocesses is None
            and option.dist == "no" and not option.collectonly):
        option.numprocesses, option.dist = "auto", "loadfile"


def pytest_configure(config):
    # xdist has chosen this run's workers by now. Every pytest that a test starts (release,
    # grading and marker checks) inherits this and runs in one process: the cores are busy
    # already, and nested workers would only add their start-up time.
    os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"] = "0"
    for chapter in CHAPTERS.values():
        pages = f"{PurePosixPath(chapter.page).parent}/{chapter.number}_*.md"
        config.addinivalue_line("markers", f"{chapter_marker(chapter)}: chapter {chapter.title}: "
                                           f"{', '.join(chapter.tests)} and {pages}")


def pytest_collection_modifyitems(config, items):
    chapters: dict[Path, Chapter | None] = {}  # one lookup per file, not per test
    for item in items:
        if item.path not in chapters:
            chapters[item.path] = chapter_of(item.path)
        if chapters[item.path] is not None:
            item.add_marker(chapter_marker(chapters[item.path]))
