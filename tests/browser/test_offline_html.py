"""The site is complete offline: MathJax is served from the site, no page loads a script or a
style sheet from the network. (The HTML is read here; test_site.py checks in Chromium that
nothing is fetched at view time, on every page.)"""
import re
from html.parser import HTMLParser
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MATH_PAGE = "book/chapters/08_training.html"


class Assets(HTMLParser):
    """The scripts and style sheets (and preloaded files) a page loads."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.urls.append(attrs["src"])
        rel = (attrs.get("rel") or "").split()
        if tag == "link" and {"stylesheet", "preload", "modulepreload"} & set(rel):
            self.urls.append(attrs["href"])


def test_the_build_uses_the_packaged_mathjax():
    sphinx = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]
    assert "sphinx-mathjax-offline" in sphinx["extra_extensions"]
    assert sphinx["config"]["mathjax_path"] == "mathjax/tex-chtml.js"
    assert any(line.startswith("sphinx-mathjax-offline==")
               for line in (ROOT / "requirements.txt").read_text().splitlines())


def test_a_built_page_loads_no_script_or_style_from_the_network(site):
    assets = Assets()
    assets.feed((site / MATH_PAGE).read_text(encoding="utf-8"))
    assert [url for url in assets.urls if re.match(r"(https?:)?//", url)] == []
    assert any(url.split("?")[0].endswith("_static/mathjax/tex-chtml.js")  # ?v=checksum
               for url in assets.urls)
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert (site / "_static/mathjax/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff").is_file()
