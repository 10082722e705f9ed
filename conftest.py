"""Root pytest configuration: every notebook page of the book is a test.

pytest collects ``book/`` (see ``testpaths`` in pyproject.toml). Each Markdown page the site
build executes (a MyST notebook) is converted to ``.nbmake/<same path>.ipynb`` and run by
nbmake, with a 300 s per-cell timeout (``--nbmake-timeout``). A cell that raises fails the
test. Run one page with ``python -m pytest book/chapters/08_training.md``.
"""
import sys
from pathlib import Path

import pytest
from nbmake.pytest_items import NotebookItem

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import book_pages  # noqa: E402


class BookPage(pytest.File):
    """A MyST notebook page, executed through its converted .ipynb by nbmake."""

    def collect(self):
        notebook = book_pages.convert_page(self.path, ROOT)
        yield NotebookItem.from_parent(self, filename=str(notebook))


def pytest_collect_file(file_path: Path, parent):
    book = ROOT / "book"
    if book in file_path.parents and book_pages.is_notebook_page(file_path):
        return BookPage.from_parent(parent, path=file_path)
    return None
