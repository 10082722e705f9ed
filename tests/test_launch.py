"""binder/: what Binder (repo2docker) reads agrees with the package and the site.

repo2docker takes the Python version from binder/runtime.txt, installs binder/requirements.txt
from the repository root, then runs binder/postBuild. The site's launch buttons (_config.yml)
send learners there.
"""
import json
import os
import re
import subprocess
import sys
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
    config = yaml_config()
    assert config["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert config["launch_buttons"]["notebook_interface"] == "jupyterlab"
    assert config["repository"]["url"].startswith("https://github.com/")


# ------------------------------------------------------------ launch copies in a bare Python
# A learner opens a launch copy (book/**/X.ipynb) in Colab or a bare Jupyter: no tinytorch,
# no repository. Its first cell must fetch and install the course so that every cell runs.
# Here: a fresh virtual environment with only ipykernel, the repository address pointed at a
# bare clone of this checkout's HEAD (TINYTORCH_REPO=file://...), and an empty working folder.
# One venv serves both notebooks, and pip's cache keeps the installs short; the versions are
# held to requirements.txt's pins (PIP_CONSTRAINT), the ones the rest of the suite verifies.
CHAPTER_COPY = ROOT / "book/chapters/04_losses.ipynb"
MILESTONE_COPY = ROOT / "book/milestones/01_perceptron.ipynb"


def pinned_requirements() -> list[str]:
    return [line for line in requirement_lines(ROOT / "requirements.txt") if "==" in line]


@pytest.fixture(scope="module")
def bare_kernel(tmp_path_factory):
    """A kernel spec for a fresh venv (ipykernel only), set up to install from this HEAD."""
    pytest.importorskip("nbclient", reason="executing notebooks needs nbclient (jupyter-book)")
    tmp = tmp_path_factory.mktemp("launch")
    constraints = tmp / "constraints.txt"
    constraints.write_text("\n".join(pinned_requirements()) + "\n")
    python = tmp / "venv" / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True)
    ipykernel = next(r for r in pinned_requirements() if r.startswith("ipykernel=="))
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-c", str(constraints), ipykernel],
                   check=True, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    found = subprocess.run([str(python), "-c", "import tinytorch"], capture_output=True)
    assert found.returncode != 0, "the fresh venv must not have tinytorch"

    origin = tmp / "origin.git"  # the repository a learner would clone, as of this HEAD
    subprocess.run(["git", "clone", "--quiet", "--bare", str(ROOT), str(origin)], check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()
    branch = yaml_config()["repository"]["branch"]
    subprocess.run(["git", "update-ref", f"refs/heads/{branch}", head], cwd=origin, check=True)

    spec = tmp / "kernels" / "bare"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "bare Python", "language": "python",
        "env": {"TINYTORCH_REPO": f"file://{origin}", "PIP_CONSTRAINT": str(constraints),
                "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONPATH": "", "MPLBACKEND": "agg"},
    }))
    workdir = tmp / "work"  # outside the repository: nothing to find by walking up
    workdir.mkdir()
    return tmp / "kernels", workdir


def run_launch_copy(copy: Path, kernels: Path, workdir: Path):
    """Execute every cell of ``copy`` in the bare kernel, then a probe cell; the notebook."""
    import nbclient
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    nb = nbformat.read(copy, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import tinytorch\nprint('PROBE', tinytorch.__file__)"))
    manager = KernelManager(kernel_name="bare",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    client = nbclient.NotebookClient(nb, km=manager, timeout=600,
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute()
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "a cell did not run"
    return code


def yaml_config() -> dict:
    yaml = pytest.importorskip("yaml", reason="reading _config.yml needs PyYAML (jupyter-book)")
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def text_output(cell) -> str:
    return "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")


@pytest.mark.slow
def test_a_milestone_launch_copy_installs_the_course_and_runs_in_a_bare_python(bare_kernel):
    kernels, workdir = bare_kernel
    code = run_launch_copy(MILESTONE_COPY, kernels, workdir)
    assert "tinytorch installed from file://" in text_output(code[0])
    assert f"PROBE {workdir / 'tinytorch-course' / 'tinytorch'}" in text_output(code[-1])


@pytest.mark.slow
def test_a_chapter_launch_copy_runs_in_the_same_bare_python(bare_kernel):
    kernels, workdir = bare_kernel
    code = run_launch_copy(CHAPTER_COPY, kernels, workdir)  # installed by now, or installs it
    assert f"PROBE {workdir / 'tinytorch-course' / 'tinytorch'}" in text_output(code[-1])
