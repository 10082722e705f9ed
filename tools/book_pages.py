"""Convert the book's MyST Markdown notebooks to .ipynb so pytest + nbmake can run them.

A page is a notebook exactly when the site build executes it: when myst-nb recognises it
(front matter with ``jupytext: text_representation: format_name: myst``, or
``file_format: mystnb``). ``book/chapters/08_training.md`` becomes
``.nbmake/book/chapters/08_training.ipynb`` (git-ignored), rewritten only when it changes.

nbmake runs a notebook with the notebook's folder as working directory; the converted
notebook starts with a cell that changes to the page's own folder instead, so relative paths
behave as in the site build.

The root ``conftest.py`` calls this for every page pytest collects under ``book/``. By hand:
``python -m tools.book_pages`` converts every page and prints the notebooks' paths.

Launch copies: Colab opens only ``.ipynb`` files, and the site's launch buttons link
``X.ipynb`` when it sits next to ``X.md``. ``python -m tools.book_pages --launch-copies``
writes those copies (no outputs; excluded from the site build); a test fails when one is
missing or differs from its page, so they never drift.
"""
from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import nbformat
from myst_nb.core.read import is_myst_markdown_notebook

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ".nbmake"
CHDIR_TAG = "nbmake-chdir"


def is_notebook_page(page: Path) -> bool:
    """True if ``page`` is a Markdown file the site build executes as a notebook."""
    page = Path(page)
    return page.suffix == ".md" and is_myst_markdown_notebook(page.read_text(encoding="utf-8"))


def notebook_path(page: Path, root: Path = ROOT) -> Path:
    """Where the converted notebook of ``page`` goes: ``root/.nbmake/<page path>.ipynb``."""
    page, root = Path(page).resolve(), Path(root).resolve()
    return root / OUT_DIR / page.relative_to(root).with_suffix(".ipynb")


def convert_page(page: Path, root: Path = ROOT) -> Path:
    """Write the notebook of ``page`` (only if its content changed); return its path."""
    page = Path(page).resolve()
    nb = jupytext.read(page, fmt="md:myst")
    chdir = nbformat.v4.new_code_cell(
        f"import os\nos.chdir({str(page.parent)!r})",
        metadata={"tags": ["remove-cell", CHDIR_TAG]},
    )
    nb.cells.insert(0, chdir)
    for i, cell in enumerate(nb.cells):  # stable ids, so an unchanged page gives equal text
        cell.id = f"cell-{i}"
    text = jupytext.writes(nb, fmt="ipynb")
    out = notebook_path(page, root)
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    return out


def launch_copy_text(page: Path) -> str:
    """The committed ``.ipynb`` twin of ``page`` that Binder and Colab open (no outputs)."""
    nb = jupytext.read(Path(page), fmt="md:myst")
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"
    nb.metadata.pop("jupytext", None)  # a plain notebook, not paired with the .md
    return jupytext.writes(nb, fmt="ipynb")


def launch_copy_path(page: Path) -> Path:
    return Path(page).with_suffix(".ipynb")


def notebook_pages(book_dir: Path = ROOT / "book") -> list[Path]:
    """Every page under ``book_dir`` that is a notebook, sorted."""
    return sorted(p for p in Path(book_dir).rglob("*.md") if is_notebook_page(p))


if __name__ == "__main__":
    for page in notebook_pages():
        if "--launch-copies" in sys.argv[1:]:
            out = launch_copy_path(page)
            out.write_text(launch_copy_text(page), encoding="utf-8")
        else:
            out = convert_page(page)
        print(out.relative_to(ROOT))
    sys.exit(0)
