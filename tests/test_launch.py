"""binder/: what Binder (repo2docker) reads agrees with the package and the site.

repo2docker takes the Python version from binder/runtime.txt, installs binder/requirements.txt
from the repository root, then runs binder/postBuild. The site's launch buttons (_config.yml)
send learners there.
"""
import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"


def minimum_python() -> str:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    match = re.fullmatch(r">=\s*(\d+\.\d+)", requires)
    assert match, f"requires-python {requires!r} is not of the form '>=X.Y'"
    return match.group(1)


def test_binder_runs_the_oldest_python_the_package_supports():
    assert (BINDER / "runtime.txt").read_text().strip() == f"python-{minimum_python()}"


def requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def test_binder_installs_the_pinned_requirements_and_the_package_with_its_course_extras():
    lines = requirement_lines(BINDER / "requirements.txt")
    assert "-r ../requirements.txt" in lines
    assert "-e .[course]" in lines  # relative to the repository root, where repo2docker runs pip
    assert "course" in tomllib.loads((ROOT / "pyproject.toml").read_text())[
        "project"]["optional-dependencies"]


def test_the_pinned_requirements_bring_jupyterlab_and_jupytext():
    names = {line.split("==")[0] for line in requirement_lines(ROOT / "requirements.txt")}
    assert {"jupyterlab", "jupytext", "ipykernel"} <= names


def test_post_build_installs_the_setting_that_opens_md_pages_as_notebooks(tmp_path):
    post_build = BINDER / "postBuild"
    assert os.access(post_build, os.X_OK), "binder/postBuild must be executable"
    subprocess.run([str(post_build)], cwd=ROOT, check=True,
                   env={**os.environ, "NB_PYTHON_PREFIX": str(tmp_path)})
    installed = tmp_path / "etc/jupyter/labconfig/default_setting_overrides.json"
    source = BINDER / "jupyter/labconfig/default_setting_overrides.json"
    assert installed.read_text() == source.read_text()
    assert '"Jupytext Notebook"' in installed.read_text()


def test_the_site_launches_binder_in_jupyterlab():
    yaml = pytest.importorskip("yaml", reason="reading _config.yml needs PyYAML (jupyter-book)")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert config["launch_buttons"]["notebook_interface"] == "jupyterlab"
    assert config["repository"]["url"].startswith("https://github.com/")
