"""Where a submission's tests run: a grader virtual environment and, on Linux, a sandbox.

The grader environment (:func:`ensure_venv`) holds only what the chapter tests need,
``PACKAGES`` at the versions ``requirements.txt`` pins, never ``tinytorch``: a submission
cannot import the instructor's package from it, whether by a missing subpackage, by
``importlib.metadata`` or by ``sys.prefix``. It is built once per set of pins and Python
version, under ``$XDG_CACHE_HOME/tinytorch-grader/<hash>`` (``~/.cache`` by default).

:func:`sandbox_command` wraps a command in bubblewrap where ``bwrap`` works: the file system
read-only and limited to the system, the Python installation, the grader environment and
the run's own folders; a private ``/tmp``; no network; its own process tree, ended with it.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["PACKAGES", "GraderError", "pins", "default_venv", "ensure_venv", "bwrap",
           "sandbox_command", "PLUGIN"]

PACKAGES = ("pytest", "pytest-timeout", "hypothesis", "numpy", "tqdm", "regex",
            "scikit-learn", "jsonschema")  # the capstone: its digits, its submission schema
PLUGIN = Path(__file__).with_name("plugin.py")
_ROOT = Path(__file__).resolve().parents[2]
_READY = "tinytorch-grader-ready"  # written last: a half-built environment is never used


class GraderError(Exception):
    """The grader environment or sandbox cannot be set up; says why."""


def pins(requirements: Path = _ROOT / "requirements.txt") -> list:
    """``name==version`` of each of ``PACKAGES``, as ``requirements`` pins it."""
    found = {}
    for line in Path(requirements).read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s#;]+)", line)
        if match:
            found[match[1].lower().replace("_", "-")] = f"{match[1]}=={match[2]}"
    missing = [name for name in PACKAGES if name not in found]
    if missing:
        raise GraderError(f"{requirements} pins no version of {', '.join(missing)}, which the "
                          f"grader environment needs (one 'name==version' line each)")
    return [found[name] for name in PACKAGES]


def default_venv(requirements: Path = _ROOT / "requirements.txt") -> Path:
    """The cached grader environment for these pins and this Python."""
    key = "\n".join([*pins(requirements), sys.version])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "tinytorch-grader" / digest


def _python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _check_no_tinytorch(python: Path) -> None:
    probe = ("import importlib.util, importlib.metadata as m, sys\n"
             "spec = importlib.util.find_spec('tinytorch')\n"
             "try:\n    m.distribution('tinytorch'); dist = True\n"
             "except m.PackageNotFoundError:\n    dist = False\n"
             "print(spec.origin if spec else '', dist)")
    with tempfile.TemporaryDirectory() as empty:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        result = subprocess.run([str(python), "-c", probe], cwd=empty, env=env,
                                capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or result.stdout.split() != ["False"]:
        raise GraderError(f"the grader environment of {python} can import or find tinytorch "
                          f"({result.stdout.strip()!r} {result.stderr.strip()}); it must not")


def ensure_venv(venv=None, requirements: Path = _ROOT / "requirements.txt") -> Path:
    """The grader environment at ``venv`` (default: :func:`default_venv`), built first when
    it is missing: ``python -m venv`` and ``pip install`` of exactly :func:`pins`."""
    venv = Path(venv) if venv is not None else default_venv(requirements)
    if (venv / _READY).is_file():
        return venv
    if venv.exists() and any(venv.iterdir()):
        if not _python(venv).exists():
            raise GraderError(f"{venv} exists and is not a virtual environment")
        _check_no_tinytorch(_python(venv))  # an environment the instructor made by hand
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=venv.name + ".building-", dir=venv.parent))
    try:
        base = getattr(sys, "_base_executable", sys.executable)
        for command in ([base, "-m", "venv", str(building)],
                        [str(_python(building)), "-m", "pip", "install", "-q",
                         "--disable-pip-version-check", *pins(requirements)]):
            result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
            if result.returncode != 0:
                raise GraderError(f"building the grader environment failed: {' '.join(command)}"
                                  f"\n{(result.stdout + result.stderr)[-3000:]}")
        _check_no_tinytorch(_python(building))
        (building / _READY).write_text("\n".join(pins(requirements)) + "\n", encoding="utf-8")
        # pyvenv.cfg and the scripts hold the building path; only bin/python is used, which
        # finds its site-packages from where it is, so the rename keeps it working.
        try:
            building.rename(venv)
        except OSError:  # another grader finished first
            if not (venv / _READY).is_file():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return venv


def python_of(venv: Path) -> Path:
    return _python(Path(venv))


@functools.cache
def bwrap() -> str | None:
    """The path of a working ``bwrap`` (it can make the namespaces it needs), or None."""
    path = shutil.which("bwrap")
    if path is None or not sys.platform.startswith("linux"):
        return None
    probe = subprocess.run([path, *_system_binds(), "--unshare-net", "--unshare-pid",
                            "--die-with-parent", "true"], capture_output=True, timeout=60)
    return path if probe.returncode == 0 else None


def _system_binds() -> list:
    args = []
    for folder in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"):
        if os.path.islink(folder):
            args += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            args += ["--ro-bind", folder, folder]
    return args + ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]


def _base_prefix(python: Path) -> str:
    result = subprocess.run([str(python), "-c", "import sys; print(sys.base_prefix)"],
                            capture_output=True, text=True, timeout=60)
    return result.stdout.strip()


def sandbox_command(command: list, *, venv: Path, readable: list, writable: list,
                    cwd: Path) -> list:
    """``command`` under bubblewrap: only the system folders, the Python installation
    ``venv`` was made from, ``venv`` and ``readable`` are visible, all read-only; ``/tmp``
    and ``writable`` (folders that must exist) are fresh empty tmpfs; no network."""
    path = bwrap()
    if path is None:
        raise GraderError("bubblewrap (bwrap) is not available or cannot run here")
    args = [path, *_system_binds()]
    prefix = _base_prefix(python_of(venv))
    for folder in dict.fromkeys([prefix, str(Path(venv).resolve()), *map(str, readable)]):
        if folder and not any(folder == p or folder.startswith(p + "/") for p in ("/usr", "/etc")):
            args += ["--ro-bind", folder, folder]
    for folder in writable:
        args += ["--tmpfs", str(folder)]
    args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
             "--die-with-parent", "--new-session", "--chdir", str(cwd), "--setenv", "HOME", "/tmp"]
    return args + ["--", *map(str, command)]
