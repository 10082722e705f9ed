"""Helpers for the book's chapters (MyST notebooks), usable in any Jupyter notebook.

``show_source(obj)`` displays the real source of a class or function of the package, so a
chapter never shows a copy that could drift from the code it runs::

    from tinytorch.notebook import show_source
    show_source(tinytorch.Linear)                          # the whole class
    show_source(tinytorch.Linear, methods=["forward"])     # class line + named methods
    show_source(tinytorch.clip_grad_norm, lines=(1, 12))   # lines 1-12 of the function

The returned object renders as a highlighted ```` ```python ```` block: through
``_repr_markdown_`` in Jupyter, Binder and Colab, and on the Jupyter Book site, where myst-nb
renders ``text/markdown`` outputs as Markdown. ``repr()`` (``text/plain``) is the bare source.

Numbers quoted in a chapter's prose are published with ``glue(name, value)``: myst-nb's glue
when it is installed (the site build, the tests), a plain display elsewhere (e.g. Colab).

First-cell convention for pages
-------------------------------
Every page's first code cell is the same short cell, tagged ``remove-input`` (it runs, the
site does not show it)::

    ```{code-cell} ipython3
    :tags: [remove-input]

    import tinytorch  # the launch copy (.ipynb) installs it first where it is missing
    ```

The site build and pytest/nbmake have the package. In the page's launch copy, which Binder
and Colab open, ``tools/book_pages.py`` replaces it with a cell generated from the repository
address in ``_config.yml``: where ``tinytorch`` is missing it clones the repository and
installs it with the course extras, so the page and ``load_milestone`` work.

Two editions
------------
The default edition is the full textbook. With ``TINYTORCH_EDITION=student`` in the
environment (of the site build, a notebook, pytest), ``show_source`` shows every function
that the curriculum asks a learner to write (``tools/curriculum.py``, ``CHAPTERS[..].stubs``)
as its decorators, ``def`` line and docstring only, the body replaced by
``...  # your code: chapter NN``. Pages display package code only through ``show_source``
(``tests/test_notebook_helpers.py`` checks it), so no cell of the student edition shows a
stubbed body. Outside the repository (no ``tools/curriculum.py`` next to the package) there
is nothing to hide and the full edition is shown.

This module imports nothing beyond the standard library: IPython is not needed.
"""
from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
import os
import sys
import textwrap
from pathlib import Path

__all__ = ["SourceCode", "show_source", "glue", "load_milestone", "config_table", "edition"]

_ROOT = Path(__file__).resolve().parent.parent
EDITION_VARIABLE = "TINYTORCH_EDITION"


class SourceCode:
    """Source text that displays as a highlighted code block in notebooks."""

    def __init__(self, source: str, language: str = "python"):
        self.source = source
        self.language = language

    def _repr_markdown_(self) -> str:
        # A fence longer than any run of backticks inside the code keeps it intact.
        longest, run = 0, 0
        for ch in self.source:
            run = run + 1 if ch == "`" else 0
            longest = max(longest, run)
        fence = "`" * max(3, longest + 1)
        return f"{fence}{self.language}\n{self.source}\n{fence}\n"

    def __repr__(self) -> str:
        return self.source

    __str__ = __repr__


def show_source(obj, *, lines=None, methods=None) -> SourceCode:
    """Return the source code of ``obj`` (a class, function or method) for display.

    lines:   ``(first, last)``, 1-based and inclusive, counted from the first line of the
             object's source (its ``def``/``class`` line or first decorator).
    methods: names of methods of the class ``obj``; shows the ``class`` line followed by
             those methods only (with their decorators), in the order given.
    """
    if lines is not None and methods is not None:
        raise TypeError("show_source() takes either lines= or methods=, not both")
    source = textwrap.dedent(inspect.getsource(obj)).rstrip("\n")
    src_lines = _redacted(obj, source) if edition() == "student" else source.splitlines()

    if lines is not None:
        first, last = lines
        if not 1 <= first <= last <= len(src_lines):
            raise ValueError(
                f"lines={lines!r} is outside 1..{len(src_lines)}, "
                f"the lines of {getattr(obj, '__qualname__', obj)!r}"
            )
        return SourceCode(textwrap.dedent(_join(src_lines[first - 1:last])))

    if methods is not None:
        if isinstance(methods, str):
            methods = [methods]
        if not inspect.isclass(obj):
            raise TypeError(f"methods= needs a class, got {obj!r}")
        cls_node = ast.parse(source).body[0]
        header = [line for line in src_lines[:cls_node.body[0].lineno - 1] if line is not None]
        # The class line(s) without a docstring that might sit on the same line.
        header = header or [src_lines[0]]
        defined = {}
        for node in cls_node.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defined.setdefault(node.name, []).append(node)
        parts = ["\n".join(header)]
        for name in methods:
            if name not in defined:
                raise ValueError(
                    f"{obj.__qualname__} defines no method {name!r}; "
                    f"it defines: {', '.join(sorted(defined)) or 'none'}"
                )
            for node in defined[name]:  # a property's getter and setter share a name
                start = min([d.lineno for d in node.decorator_list] + [node.lineno])
                parts.append(_join(src_lines[start - 1:node.end_lineno]))
        return SourceCode("\n\n".join(parts))

    return SourceCode(_join(src_lines))


def edition() -> str:
    """``"student"`` when ``TINYTORCH_EDITION=student``, else ``"full"`` (the default)."""
    value = os.environ.get(EDITION_VARIABLE, "full").strip().lower()
    if value not in ("full", "student"):
        raise ValueError(f"{EDITION_VARIABLE} must be 'full' or 'student', not {value!r}")
    return value


@functools.lru_cache(maxsize=1)
def _stubbed_functions() -> dict:
    """``(file relative to the repository, qualified name) -> chapter number`` of every
    function the curriculum stubs; empty outside the repository."""
    path = _ROOT / "tools" / "curriculum.py"
    if not path.is_file():
        return {}
    spec = importlib.util.spec_from_file_location("_tinytorch_curriculum", path)
    curriculum = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = curriculum  # dataclasses look their module up there
    spec.loader.exec_module(curriculum)
    found = {}
    for number, chapter in curriculum.CHAPTERS.items():
        for stub in chapter.stubs:
            file, _, qualname = stub.partition(":")
            found[(file, qualname)] = number
    return found


def _redacted(obj, source: str) -> list:
    """``source``'s lines with the body of every stubbed function in it (after its
    docstring) replaced by one ``...`` line; removed lines become ``None``, so line
    numbers stay those of ``source``."""
    lines = source.splitlines()
    stubbed = _stubbed_functions()
    try:
        file = Path(inspect.getsourcefile(inspect.unwrap(obj))).resolve().relative_to(_ROOT)
        file = file.as_posix()
        tree = ast.parse(source)
    except (TypeError, ValueError, SyntaxError):
        return lines
    outer = getattr(obj, "__qualname__", "").rpartition(".")[0]

    def visit(body, prefix):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qualname = f"{prefix}.{node.name}" if prefix else node.name
                number = stubbed.get((file, qualname))
                if number is not None and not isinstance(node, ast.ClassDef):
                    hide(node, number)
                else:
                    visit(node.body, qualname)

    def hide(node, number):
        first = node.body[0]
        docstring = (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                     and isinstance(first.value.value, str))
        if docstring:
            if len(node.body) == 1:
                return  # nothing after the docstring
            start = first.end_lineno            # 0-based index of the line after it
            first = node.body[1]
        else:
            start = first.lineno - 1
            while start - 1 >= node.lineno and lines[start - 1].strip().startswith("#"):
                start -= 1                      # comments above the first statement
        body_line = lines[first.lineno - 1]
        indent = body_line[:len(body_line) - len(body_line.lstrip())]
        lines[start:node.end_lineno] = [f"{indent}...  # your code: chapter {number}"] + [
            None] * (node.end_lineno - start - 1)

    visit(tree.body, outer)
    return lines


def _join(lines) -> str:
    return "\n".join(line for line in lines if line is not None)


def glue(name: str, value, display: bool = False) -> None:
    """Publish ``value`` under ``name`` for ``{glue:text}`name:fmt``` references in the prose.

    numpy scalars become Python numbers (myst-nb's text formatting needs them). Where myst-nb
    is not installed (Colab, a bare Jupyter), nothing is published and the value is printed
    when ``display`` is true, so a chapter runs everywhere. Returns None, like myst-nb's glue,
    so a ``glue(...)`` on a cell's last line shows nothing.
    """
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            print(f"{name} = {value!r}")
        return None
    myst_glue(name, value, display=display)
    return None


def config_table(configs: dict, missing: str = "–"):
    """A milestone's ``CONFIGS`` (name -> settings) as a pandas table: one column per
    configuration, one row per setting (in order of first appearance), so that a milestone
    with many settings stays narrow.

    Values show as written (integers stay integers, tuples stay tuples, rather than the floats
    and ``NaN`` pandas makes of a column with a gap); a setting a configuration lacks, or sets
    to None, shows as ``missing``.
    """
    import pandas as pd

    keys = list(dict.fromkeys(key for settings in configs.values() for key in settings))
    rows = [[missing if settings.get(key) is None else settings[key] for settings in
             configs.values()] for key in keys]
    return pd.DataFrame(rows, index=keys, columns=list(configs), dtype=object)


def load_milestone(folder: str, script: str | None = None):
    """Import a milestone script, e.g. ``load_milestone("01_1958_perceptron")``.

    Milestones live outside the package, in ``milestones/NN_YEAR_name/name.py`` at the root of
    the repository, so they stay runnable scripts. They are found by walking up from the
    current folder (a book page runs in ``book/milestones/``, the tests from the root), then
    from this package's folder (an editable install, as a launch copy's first cell makes in
    Colab), then in the folders of ``sys.path``. ``script`` defaults to the folder name
    without its ``NN_YEAR_`` prefix.
    """
    import importlib.util
    import sys
    from pathlib import Path

    script = script or folder.split("_", 2)[-1]
    starts = [Path.cwd().resolve(), Path(__file__).resolve().parent]
    bases = [base for start in starts for base in (start, *start.parents)]
    bases += [Path(entry).resolve() for entry in sys.path if entry]
    for base in bases:
        path = base / "milestones" / folder / f"{script}.py"
        if path.is_file():
            spec = importlib.util.spec_from_file_location(f"milestone_{script}", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # so inspect (show_source of a class) can find it
            spec.loader.exec_module(module)
            return module
    raise FileNotFoundError(
        f"milestone {folder!r} ({script}.py) not found under a 'milestones/' folder above "
        f"{starts[0]} or {starts[1]}, nor in sys.path; run from a clone of the TinyTorch "
        "repository, or run the first cell of the notebook's launch copy (it installs one)")
