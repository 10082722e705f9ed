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

The first code cell of every page is the short :data:`PAGE_SETUP` (``import tinytorch``: the
site build and the tests have the package). In a launch copy it becomes
:func:`setup_cell_source`, generated from the one repository address of ``_config.yml``
(``repository.url`` and ``.branch``): where ``tinytorch`` is missing (Colab, a bare Jupyter)
it shallow-clones the repository and ``pip install -e``'s it with the course extras, so the
chapter and the milestones run; a failed step raises and stops the notebook there.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import jupytext
import nbformat
import yaml
from myst_nb.core.read import is_myst_markdown_notebook

from tinytorch.training.checkpoint import write_text_atomically

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ".nbmake"
CHDIR_TAG = "nbmake-chdir"

PAGE_SETUP = "import tinytorch  # the launch copy (.ipynb) installs it first where it is missing"

SETUP_TEMPLATE = '''\
# Setup (generated from _config.yml by tools/book_pages.py): where the tinytorch package is
# missing (Colab, a bare Jupyter), fetch the course and install it with its course extras.
# TINYTORCH_REPO / TINYTORCH_BRANCH choose another copy, TINYTORCH_CLONE where it goes.
import importlib
import os
import subprocess
import sys
from pathlib import Path


def _setup_step(*command):
    try:
        done = subprocess.run(command, capture_output=True, text=True)
        failed, output = done.returncode != 0, done.stdout + done.stderr
    except OSError as error:  # git or pip missing
        failed, output = True, str(error)
    if failed:
        raise RuntimeError(
            f"Setup failed: `{{' '.join(command)}}`:\\n{{output[-2000:]}}\\nCheck the repository "
            "address (TINYTORCH_REPO) and the network, then run this cell again; or install the "
            "course yourself (git clone it, pip install -e 'CLONE[course]') and restart.")


try:
    import tinytorch
except ImportError:
    _repo = os.environ.get("TINYTORCH_REPO", {url})
    _clone = Path(os.environ.get("TINYTORCH_CLONE", "tinytorch-course")).resolve()
    if not (_clone / "pyproject.toml").is_file():
        _setup_step("git", "clone", "--quiet", "--depth", "1", "--branch",
                    os.environ.get("TINYTORCH_BRANCH", {branch}), _repo, str(_clone))
    _setup_step(sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{{_clone}}[course]")
    sys.path.insert(0, str(_clone))  # this kernel started before the install: show it the clone
    importlib.invalidate_caches()
    import tinytorch
    print(f"tinytorch installed from {{_repo}} into {{_clone}}")'''


def launch_settings(root: Path = ROOT) -> dict:
    """``{"url": ..., "branch": ...}``: the repository address in ``_config.yml``."""
    repository = yaml.safe_load((Path(root) / "_config.yml").read_text(encoding="utf-8"))[
        "repository"]
    return {"url": repository["url"], "branch": repository.get("branch", "main")}


def setup_cell_source(url: str, branch: str) -> str:
    """The first cell of a launch copy: installs the course from ``url`` where it is missing."""
    return SETUP_TEMPLATE.format(url=json.dumps(url), branch=json.dumps(branch))


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
        # Atomic: every pytest-xdist worker converts every page it collects, and one may be
        # running a notebook while another rewrites it.
        write_text_atomically(out, text)
    return out


def launch_copy_text(page: Path, root: Path = ROOT) -> str:
    """The committed ``.ipynb`` twin of ``page`` that Binder and Colab open (no outputs); its
    first code cell, :data:`PAGE_SETUP` in the page, becomes :func:`setup_cell_source`."""
    nb = jupytext.read(Path(page), fmt="md:myst")
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    if code and code[0].source.strip() == PAGE_SETUP:
        code[0].source = setup_cell_source(**launch_settings(root))
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
