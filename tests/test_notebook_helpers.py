"""Tests for tinytorch.notebook.show_source (the chapters' source-display helper)."""
import subprocess
import sys

import pytest

from tinytorch.notebook import SourceCode, show_source


def sample_function(x):
    """Double x."""
    y = x * 2
    return y


class Sample:
    """A class with a few kinds of methods."""

    scale = 3

    def __init__(self, value):
        self.value = value

    def forward(self, x):
        return x * self.value

    @property
    def doubled(self):
        return self.value * 2

    @doubled.setter
    def doubled(self, v):
        self.value = v / 2

    @staticmethod
    def helper():
        return "```"


def test_whole_function_source_is_returned():
    assert repr(show_source(sample_function)) == (
        'def sample_function(x):\n    """Double x."""\n    y = x * 2\n    return y'
    )


def test_markdown_is_a_python_fenced_block():
    md = show_source(sample_function)._repr_markdown_()
    assert md.startswith("```python\ndef sample_function(x):\n")
    assert md.endswith("\n```\n")


def test_plain_text_fallback_is_the_bare_source():
    code = show_source(sample_function)
    assert str(code) == repr(code) == code.source
    assert "```" not in repr(code)


def test_fence_is_longer_than_backticks_inside_the_code():
    md = show_source(Sample.helper)._repr_markdown_()
    assert md.startswith("````python\n")
    assert md.endswith("\n````\n")


def test_lines_selects_an_inclusive_one_based_range():
    assert repr(show_source(sample_function, lines=(3, 4))) == "y = x * 2\nreturn y"


def test_lines_outside_the_source_raise_value_error():
    with pytest.raises(ValueError, match="outside 1..4"):
        show_source(sample_function, lines=(2, 9))


def test_methods_show_class_line_then_named_methods_in_order():
    text = repr(show_source(Sample, methods=["forward", "__init__"]))
    assert text.splitlines()[0] == "class Sample:"
    assert text.index("def forward") < text.index("def __init__")
    assert "scale = 3" not in text
    assert '"""A class' not in text


def test_methods_include_decorators_and_property_setters():
    text = repr(show_source(Sample, methods=["doubled"]))
    assert "@property" in text
    assert "@doubled.setter" in text
    assert text.count("def doubled") == 2


def test_methods_accepts_a_single_name_string():
    assert "def forward" in repr(show_source(Sample, methods="forward"))


def test_unknown_method_names_the_defined_ones():
    with pytest.raises(ValueError, match="no method 'backward'.*forward"):
        show_source(Sample, methods=["backward"])


def test_methods_on_a_function_raise_type_error():
    with pytest.raises(TypeError):
        show_source(sample_function, methods=["forward"])


def test_lines_and_methods_together_raise_type_error():
    with pytest.raises(TypeError):
        show_source(Sample, lines=(1, 2), methods=["forward"])


def test_method_source_is_dedented():
    assert repr(show_source(Sample.forward)).startswith("def forward(self, x):")


def test_show_source_works_on_package_objects():
    code = show_source(show_source)
    assert isinstance(code, SourceCode)
    assert code.source.startswith("def show_source(")


def test_notebook_module_does_not_import_ipython():
    code = "import sys, tinytorch.notebook; print('IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_glue_publishes_python_numbers_for_numpy_scalars(monkeypatch):
    import numpy as np

    from tinytorch.notebook import glue

    myst_nb = pytest.importorskip("myst_nb")
    published = {}
    monkeypatch.setattr(myst_nb, "glue",
                        lambda name, value, display: published.update({name: value}))
    assert glue("test_value", np.float32(0.25)) is None
    assert type(published["test_value"]) is float and published["test_value"] == 0.25


def test_load_milestone_imports_the_script_found_above_the_current_folder(tmp_path, monkeypatch):
    from tinytorch.notebook import load_milestone

    folder = tmp_path / "milestones" / "07_2000_demo"
    folder.mkdir(parents=True)
    (folder / "demo.py").write_text("ANSWER = 42\n")
    deep = tmp_path / "book" / "milestones"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert load_milestone("07_2000_demo").ANSWER == 42


def test_load_milestone_names_what_it_could_not_find(tmp_path, monkeypatch):
    from tinytorch.notebook import load_milestone

    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="99_1900_nothing"):
        load_milestone("99_1900_nothing")


def test_config_table_keeps_integers_and_shows_missing_settings_as_a_dash():
    pytest.importorskip("pandas")
    from tinytorch.notebook import config_table

    table = config_table({"a": {"epochs": 30, "lr": 0.5, "sizes": (8, 16)},
                          "b": {"epochs": 10, "threshold": None}})
    assert list(table.columns) == ["a", "b"]
    assert list(table.index) == ["epochs", "lr", "sizes", "threshold"]
    assert table.loc["epochs", "a"] == 30 and type(table.loc["epochs", "a"]) is int
    assert table.loc["lr", "b"] == "–" and table.loc["threshold", "b"] == "–"
    assert "30.0" not in table.to_html() and "NaN" not in table.to_html()


# ------------------------------------------------------------------ the student edition
def _stub_parts(stub):
    """``(signature line, docstring's first line, body lines)`` of a curriculum stub."""
    import ast
    import inspect

    from tools import curriculum
    from tools.release import find_definition

    file, _, qualname = stub.partition(":")
    source = (curriculum.REPO_ROOT / file).read_text(encoding="utf-8")
    node = find_definition(ast.parse(source), qualname)
    lines = source.splitlines()
    docstring = inspect.cleandoc(ast.get_docstring(node, clean=False)).splitlines()[0]
    after = node.body[1:] if ast.get_docstring(node) else node.body
    body = [line.strip() for line in lines[after[0].lineno - 1:node.end_lineno]] if after else []
    return lines[node.lineno - 1].strip(), docstring, [b for b in body if b]


def test_the_student_edition_shows_a_stub_as_signature_docstring_and_placeholder(monkeypatch):
    import tinytorch as tt

    _, _, body = _stub_parts("tinytorch/core/activations.py:relu")
    assert all(line in str(show_source(tt.relu)) for line in body)  # the full edition
    monkeypatch.setenv("TINYTORCH_EDITION", "student")
    shown = str(show_source(tt.relu))
    assert shown.startswith("def relu(x) -> Tensor:\n    \"\"\"max(x, 0)")
    assert shown.endswith("\n    ...  # your code: chapter 02")
    assert not any(line in shown for line in body)


def test_an_unknown_edition_is_an_error_naming_the_variable(monkeypatch):
    monkeypatch.setenv("TINYTORCH_EDITION", "teacher")
    with pytest.raises(ValueError, match="TINYTORCH_EDITION must be 'full' or 'student'"):
        show_source(sample_function)


def test_no_page_displays_package_code_except_through_show_source():
    # show_source is where the student edition hides the answers; another way in would leak
    from tools import curriculum

    pages = sorted((curriculum.REPO_ROOT / "book").rglob("*.md"))
    assert [p.name for p in pages if "getsource" in p.read_text(encoding="utf-8")] == []


def test_a_page_built_in_the_student_edition_shows_no_stubbed_body(monkeypatch):
    """Chapter 02's page, executed and rendered to HTML as the site does, under
    TINYTORCH_EDITION=student: each stub's signature and docstring appear, no body line."""
    import html
    import re

    jupytext = pytest.importorskip("jupytext")  # the book toolchain, as the other page tests
    nbclient = pytest.importorskip("nbclient")
    HTMLExporter = pytest.importorskip("nbconvert").HTMLExporter

    from tools import curriculum

    chapter = curriculum.get_chapter("02")
    page = curriculum.REPO_ROOT / chapter.page
    monkeypatch.setenv("TINYTORCH_EDITION", "student")
    notebook = jupytext.read(page)
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(page.parent)}}).execute()
    body, _ = HTMLExporter().from_notebook_node(notebook)
    text = html.unescape(re.sub(r"<[^>]+>", "", body))
    shown = [stub for stub in chapter.stubs if f"def {stub.rpartition(':')[2]}(" in text]
    assert len(shown) >= 5, shown  # the page shows (almost) every function it asks for
    for stub in shown:
        signature, docstring, lines = _stub_parts(stub)
        assert signature in text and docstring in text, stub
        assert f"...  # your code: chapter {chapter.number}" in text
        leaked = [line for line in lines if line in text and len(line) > 12]
        assert leaked == [], f"{stub}: {leaked}"


def test_the_student_edition_hides_every_curriculum_stub_alone_and_in_its_class(monkeypatch):
    import importlib
    import inspect

    from tools import curriculum

    monkeypatch.setenv("TINYTORCH_EDITION", "student")
    shown_in_full = []
    for chapter in curriculum.CHAPTERS.values():
        for stub in chapter.stubs:
            file, _, qualname = stub.partition(":")
            owner = importlib.import_module(file.removesuffix(".py").replace("/", "."))
            *classes, name = qualname.split(".")
            for part in classes:
                owner = getattr(owner, part)
            found = inspect.getattr_static(owner, name)
            function = found.fget if isinstance(found, property) else getattr(
                found, "__func__", found)
            placeholder = f"...  # your code: chapter {chapter.number}"
            for view in [function] + ([owner] if classes else []):
                if placeholder not in str(show_source(view)):
                    shown_in_full.append(f"{stub} (shown through {view.__qualname__})")
    assert shown_in_full == []
