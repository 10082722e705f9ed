"""Fixtures of the browser suite: the built site served on localhost, and headless Chromium.

The suite needs the built site (``_build/html/index.html``: run the build command of the
README first; ``TINYTORCH_SITE`` names another built ``html`` folder), the ``playwright``
package (requirements.txt) and a Chromium: Debian's
``chromium`` package at /usr/bin/chromium, or the one named by ``$CHROMIUM``. Without any of
them every test is skipped, saying which is missing, so the unit run never needs a browser.
Playwright drives the system Chromium; it never downloads a browser of its own.
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("TINYTORCH_SITE", ROOT / "_build" / "html"))  # or a site built elsewhere
# The flags this machine's notes give for a headless Chromium on a closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")


@pytest.fixture(scope="session")
def site() -> Path:
    if not (SITE / "index.html").is_file():
        pytest.skip(f"no built site at {SITE / 'index.html'}: build it first "
                    "(.venv/bin/jupyter-book build . --all -W -n --keep-going)")
    return SITE


@pytest.fixture(scope="session")
def base_url(site):
    """``http://127.0.0.1:PORT/``: the site served by a thread of this process."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no line per request in the test output
        pass


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the browser suite needs playwright (requirements.txt)")
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium: install Debian's chromium package (apt-get install chromium) "
                    "or set CHROMIUM to a Chromium executable")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh page that may fetch only from localhost (or the disk): every other request
    is refused and recorded in ``page.outside_requests``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.outside_requests = []
    page.console_errors = []

    def only_local(route):
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "file://", "data:", "blob:")):
            route.continue_()
        else:
            page.outside_requests.append(url)
            route.abort()

    context.route("**/*", only_local)
    page.on("console", lambda message: message.type == "error"
            and page.console_errors.append(f"console: {message.text} ({message.location})"))
    page.on("pageerror", lambda error: page.console_errors.append(f"page error: {error}"))
    yield page
    context.close()
