"""Tests for tools/book_pages.py: book pages converted to notebooks for pytest + nbmake."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

for _module in ("nbformat", "jupytext", "myst_nb", "nbmake"):  # the notebook toolchain
    pytest.importorskip(_module, reason="the book pipeline needs the notebook toolchain")

import jupytext  # noqa: E402
import nbformat  # noqa: E402

from tools import book_pages  # noqa: E402

FRONT_MATTER = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""

FIRST_CELL = f"""\
```{{code-cell}} ipython3
:tags: [remove-input]

{book_pages.PAGE_SETUP}
```
"""


def write_page(root: Path, rel: str, body: str, front_matter: str = FRONT_MATTER) -> Path:
    page = root / rel
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(front_matter + "\n# Title\n\n" + body, encoding="utf-8")
    return page


def code_cells(notebook: Path):
    nb = nbformat.read(notebook, as_version=4)
    return [c for c in nb.cells if c.cell_type == "code"]


def test_myst_notebook_page_is_a_notebook(tmp_path):
    assert book_pages.is_notebook_page(write_page(tmp_path, "book/a.md", "text"))


def test_plain_markdown_page_is_not_a_notebook(tmp_path):
    assert not book_pages.is_notebook_page(write_page(tmp_path, "book/a.md", "x", ""))


def test_kernelspec_alone_is_not_a_notebook_as_for_myst_nb(tmp_path):
    front = "---\nkernelspec:\n  name: python3\n  display_name: Python 3\n---\n"
    assert not book_pages.is_notebook_page(write_page(tmp_path, "book/a.md", "x", front))


def test_notebook_path_mirrors_the_page_under_dot_nbmake(tmp_path):
    page = tmp_path / "book" / "chapters" / "08_training.md"
    assert book_pages.notebook_path(page, tmp_path) == (
        tmp_path / ".nbmake" / "book" / "chapters" / "08_training.ipynb"
    )


def test_converted_notebook_first_cell_changes_to_the_page_folder(tmp_path):
    page = write_page(tmp_path, "book/chapters/01_x.md", "```{code-cell} ipython3\nx = 1\n```\n")
    first = code_cells(book_pages.convert_page(page, tmp_path))[0]
    assert first.source == f"import os\nos.chdir({str(page.parent.resolve())!r})"
    assert "remove-cell" in first.metadata["tags"]


def test_converted_notebook_keeps_the_page_cells_in_order(tmp_path):
    body = "```{code-cell} ipython3\na = 1\n```\n\ntext\n\n```{code-cell} ipython3\nb = 2\n```\n"
    page = write_page(tmp_path, "book/p.md", body)
    cells = code_cells(book_pages.convert_page(page, tmp_path))
    assert [c.source for c in cells[1:]] == ["a = 1", "b = 2"]


def test_first_cell_convention_survives_conversion(tmp_path):
    page = write_page(tmp_path, "book/p.md", FIRST_CELL)
    cell = code_cells(book_pages.convert_page(page, tmp_path))[1]
    assert cell.source == book_pages.PAGE_SETUP
    assert cell.metadata["tags"] == ["remove-input"]


def test_unchanged_page_is_not_rewritten(tmp_path):
    page = write_page(tmp_path, "book/p.md", "```{code-cell} ipython3\nx = 1\n```\n")
    out = book_pages.convert_page(page, tmp_path)
    os.utime(out, (0, 0))
    book_pages.convert_page(page, tmp_path)
    assert out.stat().st_mtime == 0


def test_changed_page_is_rewritten(tmp_path):
    page = write_page(tmp_path, "book/p.md", "```{code-cell} ipython3\nx = 1\n```\n")
    book_pages.convert_page(page, tmp_path)
    page.write_text(page.read_text().replace("x = 1", "x = 2"))
    assert code_cells(book_pages.convert_page(page, tmp_path))[1].source == "x = 2"


def test_notebook_pages_lists_only_notebooks_sorted(tmp_path):
    b = write_page(tmp_path, "book/b.md", "x")
    a = write_page(tmp_path, "book/sub/a.md", "x")
    write_page(tmp_path, "book/plain.md", "x", "")
    assert book_pages.notebook_pages(tmp_path / "book") == sorted([a, b])


def run_nbmake(tmp_path, body):
    page = write_page(tmp_path, "book/chapters/p.md", FIRST_CELL + "\n" + body)
    notebook = book_pages.convert_page(page, tmp_path)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake",
         "--rootdir", str(tmp_path), str(notebook)],
        cwd=tmp_path, capture_output=True, text=True,
    )


def test_page_runs_in_its_own_folder_with_the_package_under_nbmake(tmp_path):
    body = ("```{code-cell} ipython3\nimport os, tinytorch\n"
            "assert os.path.exists('p.md'), os.getcwd()\n```\n")
    result = run_nbmake(tmp_path, body)
    assert result.returncode == 0, result.stdout + result.stderr


def test_page_whose_cell_raises_fails_under_nbmake(tmp_path):
    result = run_nbmake(tmp_path, "```{code-cell} ipython3\nraise ValueError('boom')\n```\n")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ValueError" in result.stdout


@pytest.mark.parametrize("page", book_pages.notebook_pages(), ids=lambda p: p.name)
def test_every_page_starts_with_the_setup_cell_its_launch_copy_replaces(page):
    first = next(c for c in jupytext.read(page, fmt="md:myst").cells if c.cell_type == "code")
    assert first.source.strip() == book_pages.PAGE_SETUP and first.metadata.get("tags") == [
        "remove-input"], (
        f"{page.name}: the first code cell must be exactly\n{FIRST_CELL}(the README's 'How to "
        "write a chapter'); its launch copy replaces it with the cell that installs the course")


@pytest.mark.parametrize("page", book_pages.notebook_pages(), ids=lambda p: p.name)
def test_every_page_has_an_up_to_date_launch_copy_for_colab(page):
    copy = book_pages.launch_copy_path(page)
    assert copy.exists(), f"{copy} is missing: run `python -m tools.book_pages --launch-copies`"
    assert copy.read_text(encoding="utf-8") == book_pages.launch_copy_text(page), (
        f"{copy} differs from {page.name}: run `python -m tools.book_pages --launch-copies`")


def test_launch_copy_is_a_plain_notebook_without_outputs(tmp_path):
    body = FIRST_CELL + "\n```{code-cell} ipython3\n1 + 1\n```\n"
    page = write_page(tmp_path, "book/chapters/01_x.md", body)
    nb = nbformat.reads(book_pages.launch_copy_text(page), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.source for c in code][1] == "1 + 1"
    assert all(not c.outputs for c in code)
    assert "jupytext" not in nb.metadata


SETUP_PAGE = ("```{code-cell} ipython3\n:tags: [remove-input]\n\n" + book_pages.PAGE_SETUP
              + "\n```\n\n```{code-cell} ipython3\n1 + 1\n```\n")


def write_config(root: Path, url: str, branch: str = "main") -> None:
    (root / "_config.yml").write_text(f"repository:\n  url: {url}\n  branch: {branch}\n")


def test_launch_copy_first_cell_installs_from_the_address_in_config(tmp_path):
    write_config(tmp_path, "https://github.com/someone/fork", "spring")
    page = write_page(tmp_path, "book/chapters/01_x.md", SETUP_PAGE)
    nb = nbformat.reads(book_pages.launch_copy_text(page, tmp_path), as_version=4)
    first, second = [c for c in nb.cells if c.cell_type == "code"][:2]
    assert first.source == book_pages.setup_cell_source("https://github.com/someone/fork", "spring")
    assert '"https://github.com/someone/fork"' in first.source and '"spring"' in first.source
    assert first.metadata["tags"] == ["remove-input"] and second.source == "1 + 1"


def test_the_page_itself_keeps_the_short_setup_cell(tmp_path):
    page = write_page(tmp_path, "book/chapters/01_x.md", SETUP_PAGE)
    cells = code_cells(book_pages.convert_page(page, tmp_path))  # what the tests and site run
    assert cells[1].source == book_pages.PAGE_SETUP


def test_a_failed_clone_raises_naming_the_command_and_what_to_do(tmp_path):
    source = book_pages.setup_cell_source("https://example.invalid/none", "main")
    env = {**os.environ, "TINYTORCH_REPO": f"file://{tmp_path}/missing.git",
           "TINYTORCH_CLONE": str(tmp_path / "clone"), "GIT_TERMINAL_PROMPT": "0"}
    # -I -S: no site-packages and no current folder, so tinytorch is not importable
    done = subprocess.run([sys.executable, "-I", "-S", "-c", source], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert "RuntimeError: Setup failed: `git clone" in done.stderr
    assert f"file://{tmp_path}/missing.git" in done.stderr
    assert "Check the repository address (TINYTORCH_REPO)" in done.stderr
