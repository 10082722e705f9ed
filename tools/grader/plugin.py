"""The pytest plugin of a grading run (``-p tinytorch_grader_plugin``): pytest and the
standard library only.

The grader copies this file next to the run, outside the submission's copy, and reads what
it writes to the file descriptor named by ``TINYTORCH_GRADER_FD``: one JSON object with
``collected`` (node ids of the run), ``outcomes`` (node id -> [outcome, message, where a
skip was raised]), ``broken_files`` (test file -> import error), ``modules`` (every
``tinytorch`` module in ``sys.modules`` -> its file) and ``tampering`` (pytest internals
or hooks that changed after this plugin started, or hooks defined in the package).

It also replaces pytest-timeout's signal timer (``--timeout``): pytest-timeout fails a test
with ``pytest.fail``, which hypothesis takes for a failing example, so it runs the next
example (to shrink) with no timer left and a hanging property test hangs the whole run.
This plugin's timer raises :class:`TestTimeout` instead, which hypothesis does not catch,
and raises it again every second while the test is still running.

It runs in the process of the code it checks, so it catches accidents and obvious cheats,
not a submission written to defeat it (README, "threat model").
"""
import importlib
import json
import os
import signal
import sys
import threading
import types

import pytest

_WATCHED = ("_pytest.reports", "_pytest.runner", "_pytest.main", "_pytest.terminal",
            "_pytest.skipping", "_pytest.python", "_pytest.nodes", "pluggy._hooks",
            "pluggy._callers", "pluggy._manager", __name__)
_DESCRIPTORS = (property, staticmethod, classmethod)
_state = {"collected": [], "outcomes": {}, "broken_files": {}, "snapshot": {}, "running": 0}
_AGAIN = 1.0  # seconds between repeated TestTimeouts for a test that swallowed one


class TestTimeout(BaseException):
    """A test ran longer than ``--timeout``. Neither an ``Exception`` nor pytest's
    ``Failed``, so hypothesis lets it through at once instead of trying more examples;
    pytest reports the test as failed with this message."""

    __test__ = False


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_set_timer(item, settings):
    if settings.method != "signal" or threading.current_thread() is not threading.main_thread():
        return None  # pytest-timeout's own (thread) timer

    def expire(signum, frame):
        if _state["running"]:  # only inside a test's setup, call or teardown
            raise TestTimeout(f"Timeout: the test ran longer than {settings.timeout:g} s "
                              f"(the grader's per-test limit)")

    def cancel():
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)

    item.cancel_timeout = cancel
    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, settings.timeout, _AGAIN)
    return True


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item):
    return (yield from _running())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item):
    return (yield from _running())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    return (yield from _running())


def _running():
    _state["running"] += 1
    try:
        return (yield)
    finally:
        _state["running"] -= 1


def _fingerprint(value):
    code = getattr(value, "__code__", None)
    return (id(value), id(code), id(getattr(code, "co_code", None)))


def _snapshot() -> dict:
    """Identity of every function and class attribute of the watched modules."""
    found = {}
    for name in _WATCHED:
        module = sys.modules.get(name)
        if module is None:
            continue
        for attribute, value in list(vars(module).items()):
            if callable(value):
                found[f"{name}.{attribute}"] = _fingerprint(value)
            if isinstance(value, type) and value.__module__ == name:
                for member, inner in list(vars(value).items()):
                    if callable(inner) or isinstance(inner, _DESCRIPTORS):
                        found[f"{name}.{attribute}.{member}"] = _fingerprint(inner)
    return found


def _under(path, folder) -> bool:
    return bool(path) and os.path.realpath(path).startswith(os.path.realpath(folder) + os.sep)


def pytest_configure(config):
    for name in _WATCHED:
        importlib.import_module(name)
    _state["snapshot"] = _snapshot()


def pytest_collection_finish(session):
    _state["collected"] = [item.nodeid for item in session.items]


def pytest_collectreport(report):
    if report.failed and report.nodeid.endswith(".py"):
        text = str(report.longrepr).strip().splitlines()
        last = text[-1] if text else "collection failed"
        _state["broken_files"][report.nodeid] = last[1:].lstrip() if last.startswith("E ") else last


def pytest_runtest_logreport(report):
    rank = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
    outcome = report.outcome
    if report.failed and report.when != "call":
        outcome = "error"
    if report.when == "call" or outcome != "passed":
        message, where = "", ""
        if outcome == "skipped" and isinstance(report.longrepr, tuple):
            where, _, message = report.longrepr
            message = message[len("Skipped: "):] if message.startswith("Skipped: ") else message
        elif outcome != "passed":
            crash = getattr(report.longrepr, "reprcrash", None)
            message = getattr(crash, "message", None) or report.longreprtext or "failed"
        previous = _state["outcomes"].get(report.nodeid)
        if previous is None or rank[outcome] > rank[previous[0]]:
            _state["outcomes"][report.nodeid] = [outcome, message[:1000], str(where)]


def _tampering(session) -> list:
    found = []
    before, after = _state["snapshot"], _snapshot()
    found += [f"pytest internals replaced: {name}" for name in sorted(before)
              if name in after and after[name] != before[name]]
    package = os.environ.get("TINYTORCH_GRADER_PACKAGE", "")
    for name in dir(session.config.hook):
        caller = getattr(session.config.hook, name, None)
        for impl in getattr(caller, "get_hookimpls", lambda: [])():
            code = getattr(impl.function, "__code__", None)
            if code is not None and _under(code.co_filename, package):
                found.append(f"a pytest hook ({name}) defined in {code.co_filename}")
    return found


def pytest_sessionfinish(session, exitstatus):
    modules = {}
    for name, module in list(sys.modules.items()):
        if name == "tinytorch" or name.startswith("tinytorch."):
            modules[name] = getattr(module, "__file__", None) if isinstance(
                module, types.ModuleType) else repr(type(module))
    result = {"collected": _state["collected"], "outcomes": _state["outcomes"],
              "broken_files": _state["broken_files"], "modules": modules,
              "tampering": _tampering(session), "exitstatus": int(exitstatus)}
    fd = int(os.environ["TINYTORCH_GRADER_FD"])
    with os.fdopen(os.dup(fd), "w", encoding="utf-8") as out:
        json.dump(result, out)
