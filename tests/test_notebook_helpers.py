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
