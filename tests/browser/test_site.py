"""The built site, checked in headless Chromium as a reader would see it (see conftest.py).

Every page loads with no console error and fetches nothing from outside localhost; its images
load; its tables are not cut off; formulas are typeset by the site's own MathJax (also from
disk); search finds a chapter by a term it uses; each launch link names a notebook committed
in this repository.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("TINYTORCH_SITE", ROOT / "_build" / "html"))  # as in conftest.py

PAGES = sorted(str(p.relative_to(SITE)) for p in SITE.rglob("*.html")
               if not p.relative_to(SITE).parts[0].startswith("_")) if SITE.is_dir() else []
BOOK_PAGES = [p for p in PAGES if p.startswith("book/")]
MATH_PAGE = "book/chapters/08_training.html"

TYPESET = """() => window.MathJax && MathJax.startup && MathJax.startup.promise
    ? MathJax.startup.promise.then(() => true) : true"""

BROKEN_IMAGES = """() => [...document.images]
    .filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src)"""

# A table is cut off when it is wider than the article and no box around it scrolls.
CLIPPED_TABLES = """() => {
    const article = document.querySelector('article') || document.body;
    const limit = article.getBoundingClientRect().right + 1;
    return [...article.querySelectorAll('table')].filter(table => {
        for (let box = table.parentElement; box && box !== article; box = box.parentElement) {
            if (['auto', 'scroll'].includes(getComputedStyle(box).overflowX)) return false;
        }
        return table.getBoundingClientRect().right > limit;
    }).map(table => table.innerText.slice(0, 60));
}"""


def open_page(page, url: str):
    """Load ``url`` (following a redirect page such as index.html) and wait for MathJax."""
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    page.evaluate(TYPESET)
    return page


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_without_errors_and_fetches_nothing_from_outside(page, base_url, path):
    open_page(page, base_url + path)
    assert page.console_errors == [], "\n".join(page.console_errors)
    assert page.outside_requests == [], f"{path} fetches from outside the site"


@pytest.mark.parametrize("path", BOOK_PAGES)
def test_page_images_load(page, base_url, path):
    open_page(page, base_url + path)
    page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    assert page.evaluate(BROKEN_IMAGES) == []


@pytest.mark.parametrize("path", BOOK_PAGES)
def test_wide_tables_scroll_instead_of_being_cut_off(page, base_url, path):
    open_page(page, base_url + path)
    for width in (1280, 800):  # a laptop, and a narrow window where the sidebar folds away
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(CLIPPED_TABLES) == [], f"at {width} px"


def typeset_formulas(page) -> int:
    """How many formulas MathJax turned into its CHTML output, with a visible size."""
    return page.evaluate("""() => [...document.querySelectorAll('mjx-container')]
        .filter(node => node.getBoundingClientRect().width > 0).length""")


def test_formulas_are_typeset_by_the_sites_own_mathjax(page, base_url):
    open_page(page, base_url + MATH_PAGE)
    assert typeset_formulas(page) > 5
    scripts = page.evaluate("() => [...document.scripts].map(s => s.src).filter(Boolean)")
    assert any(src.split("?")[0].endswith("/_static/mathjax/tex-chtml.js")  # ?v=checksum
               for src in scripts), scripts
    assert page.outside_requests == []


def test_formulas_are_typeset_when_the_site_is_opened_from_disk(page, site):
    open_page(page, (site / MATH_PAGE).as_uri())
    assert typeset_formulas(page) > 5
    assert page.console_errors == [], "\n".join(page.console_errors)


@pytest.mark.parametrize("term, chapter", [("im2col", "09_convolutions"),
                                           ("momentum", "07_optimizers")])
def test_search_finds_the_chapter_that_uses_a_term(page, base_url, term, chapter):
    open_page(page, f"{base_url}search.html?q={term}")
    page.wait_for_selector("#search-results ul.search li a", timeout=20_000)
    hits = page.eval_on_selector_all("#search-results ul.search li a", "as => as.map(a => a.href)")
    assert any(f"/book/chapters/{chapter}.html" in hit for hit in hits), hits


def committed_files() -> set[str]:
    listing = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True)
    return set(listing.stdout.splitlines())


def launch_targets(url: str, repository: str) -> str:
    """The repository path a Binder or Colab link opens; checks it names ``repository``."""
    parts = urlparse(url)
    owner_repo = "/".join(urlparse(repository).path.strip("/").split("/")[:2])
    if parts.netloc == "mybinder.org":
        assert parts.path.startswith(f"/v2/gh/{owner_repo}/"), url
        urlpath = parse_qs(parts.query)["urlpath"][0]
        assert urlpath.startswith("lab/tree/"), url
        return unquote(urlpath.removeprefix("lab/tree/"))
    assert parts.netloc == "colab.research.google.com", url
    prefix = f"/github/{owner_repo}/blob/"
    assert parts.path.startswith(prefix), url
    return unquote(parts.path.removeprefix(prefix).split("/", 1)[1])


def test_every_launch_link_opens_a_notebook_committed_in_the_repository(page, base_url):
    repository = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    committed, checked = committed_files(), 0
    for path in BOOK_PAGES:
        page.goto(base_url + path, wait_until="domcontentloaded")
        links = page.eval_on_selector_all(
            "a[href*='mybinder.org'], a[href*='colab.research.google.com']",
            "as => as.map(a => a.href)")
        source = Path(path).with_suffix(".md")
        if (ROOT / source).is_file() and "format_name: myst" in (ROOT / source).read_text():
            assert len(links) == 2, f"{path}: expected a Binder and a Colab link, got {links}"
        for link in links:
            target = launch_targets(link, repository)
            assert target.endswith(".ipynb") and target in committed, (
                f"{path}: {link} opens {target}, which is not a notebook committed here")
            checked += 1
    assert checked > 0
