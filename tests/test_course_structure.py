"""The chapters are listed in four places, which must agree: ``tools/curriculum.py`` (the
reference), the site's table of contents ``_toc.yml``, the README's chapter table and the
landing page's chapter cards (``book/intro.md``). Same numbers, same names, same pages.
"""
import re
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import yaml

from tools.curriculum import CHAPTERS

ROOT = Path(__file__).resolve().parent.parent
CHAPTER_PAGE = re.compile(r"(\d{2})_\w+\.md")
BACKTICKED = re.compile(r"`([^`]+)`")


class Source:
    """One place that lists the chapters: ``{number: name}`` (None where the source names
    no chapter) and ``{number: [page path, ...]}`` relative to the repository root."""

    def __init__(self, label, names, pages):
        self.label, self.names, self.pages = label, names, pages

    def __repr__(self):
        return self.label


def number_of(page: str) -> str | None:
    match = CHAPTER_PAGE.fullmatch(PurePosixPath(page).name)
    return match.group(1) if match else None


# ============================================================================== parsers
def curriculum_source():
    return Source("tools/curriculum.py", {n: c.name for n, c in CHAPTERS.items()},
                  {n: [c.page] for n, c in CHAPTERS.items()})


def toc_files(entry):
    """Every ``file`` of a _toc.yml entry and of the entries nested in it, in order."""
    if isinstance(entry, list):
        return [f for item in entry for f in toc_files(item)]
    if not isinstance(entry, dict):
        return []
    files = [entry["file"]] if "file" in entry else []
    for key in ("parts", "chapters", "sections"):
        files += toc_files(entry.get(key, []))
    return files


def toc_source():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    pages = {}
    for file in [toc["root"], *toc_files(toc)]:
        page = file if PurePosixPath(file).suffix else f"{file}.md"
        if page.startswith("book/chapters/") and number_of(page):
            pages.setdefault(number_of(page), []).append(page)
    return Source("_toc.yml", dict.fromkeys(pages), pages)


def markdown_tables(text):
    """Every pipe table of a Markdown text, as lists of rows of stripped cells."""
    tables, rows = [], []
    for line in [*text.splitlines(), ""]:
        if line.strip().startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            tables.append(rows)
            rows = []
    return tables


def readme_chapter_table():
    """The README's chapter table: header row, then one dict per chapter row."""
    for header, rule, *rows in markdown_tables((ROOT / "README.md").read_text("utf-8")):
        if header[:2] == ["#", "chapter"] and set("".join(rule)) <= set("-: "):
            return header, [dict(zip(header, row)) for row in rows]
    raise AssertionError("README.md has no chapter table (a header starting `| # | chapter |`)")


def readme_column(header, prefix):
    """The header cell starting with ``prefix`` and the folder it names, e.g. `tinytorch/`."""
    cell = next((c for c in header if c.startswith(prefix)), None)
    assert cell is not None, f"README.md's chapter table has no '{prefix}' column: {header}"
    folder = BACKTICKED.search(cell)
    return cell, folder.group(1) if folder else ""


def readme_source():
    header, rows = readme_chapter_table()
    page_column, folder = readme_column(header, "page")
    names = {row["#"]: row["chapter"] for row in rows}
    pages = {row["#"]: [folder + page for page in BACKTICKED.findall(row[page_column])]
             for row in rows}
    return Source("README.md (its chapter table)", names, pages)


def intro_cards():
    """``(title, options)`` of every ``{grid-item-card}`` directive of book/intro.md."""
    cards, options = [], None
    for line in (ROOT / "book" / "intro.md").read_text(encoding="utf-8").splitlines():
        directive = re.fullmatch(r":{3,}\{grid-item-card\}\s*(.*)", line.strip())
        if directive:
            options = {}
            cards.append((directive.group(1).strip(), options))
        elif options is not None and (option := re.fullmatch(r":([\w-]+):\s*(.*)", line)):
            options[option.group(1)] = option.group(2).strip()
        else:
            options = None  # the card's options end at its first other line
    return cards


def intro_source():
    names, pages = {}, {}
    for title, options in intro_cards():
        link = options.get("link")
        number, dot, name = title.partition("·")
        if not (link or "").startswith("chapters/") and not number.strip().isdigit():
            continue  # a card that is not a chapter's
        assert dot, f"book/intro.md: the chapter card {title!r} is not titled 'NN · Name'"
        number = number.strip()
        names[number] = name.strip()
        pages[number] = [f"book/{link}.md"] if link else []
    return Source("book/intro.md (its chapter cards)", names, pages)


SOURCES = [toc_source, readme_source, intro_source]


def describe(number):
    chapter = CHAPTERS.get(number)
    return chapter.title if chapter else f"chapter {number}"


# ================================================================================ tests
@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.__name__)
def test_every_source_lists_the_chapters_of_the_curriculum(source):
    source, reference = source(), curriculum_source()
    lacks = [describe(n) for n in sorted(set(reference.pages) - set(source.pages))]
    extra = [describe(n) for n in sorted(set(source.pages) - set(reference.pages))]
    assert not lacks, f"{source} does not list {', '.join(lacks)} ({reference} does)"
    assert not extra, f"{source} lists {', '.join(extra)}, which {reference} does not"


@pytest.mark.parametrize("source", [readme_source, intro_source], ids=lambda s: s.__name__)
def test_every_source_names_the_chapters_as_the_curriculum_does(source):
    source = source()
    wrong = [f"{n}: {source.names[n]!r} instead of {c.name!r}"
             for n, c in CHAPTERS.items() if n in source.names and source.names[n] != c.name]
    assert not wrong, f"{source} names chapters differently from tools/curriculum.py: {wrong}"


def test_the_curriculum_page_of_each_chapter_is_its_first_page_in_the_toc():
    toc = toc_source()
    wrong = [f"{c.title}: {c.page} is not first in {toc.pages.get(n)}"
             for n, c in CHAPTERS.items() if n in toc.pages and toc.pages[n][0] != c.page]
    assert not wrong, f"_toc.yml and tools/curriculum.py disagree: {wrong}"


def test_the_readme_table_lists_the_pages_of_each_chapter_in_the_toc():
    toc, readme = toc_source(), readme_source()
    wrong = [f"{describe(n)}: README.md lists {readme.pages[n]}, _toc.yml {toc.pages[n]}"
             for n in sorted(set(toc.pages) & set(readme.pages))
             if readme.pages[n] != toc.pages[n]]
    assert not wrong, f"README.md's chapter table and _toc.yml list different pages: {wrong}"


def test_each_intro_card_links_the_chapter_page_of_the_curriculum():
    intro = intro_source()
    wrong = [f"{c.title}: the card links {intro.pages[n]}, not {c.page}"
             for n, c in CHAPTERS.items() if n in intro.pages and intro.pages[n] != [c.page]]
    assert not wrong, f"book/intro.md's cards link the wrong pages: {wrong}"


def test_every_chapter_page_on_disk_is_in_the_toc():
    listed = {page for pages in toc_source().pages.values() for page in pages}
    on_disk = {p.relative_to(ROOT).as_posix() for p in (ROOT / "book" / "chapters").glob("*.md")}
    unlisted = sorted(on_disk - listed)
    assert not unlisted, f"_toc.yml lacks {unlisted}: a page it does not list is never built"


def readme_code_paths():
    """``{number: [path, ...]}`` of the README table's code column, relative to the root."""
    header, rows = readme_chapter_table()
    code_column, folder = readme_column(header, "code")
    return {row["#"]: [folder + path for path in BACKTICKED.findall(row[code_column])]
            for row in rows}


def test_the_readme_code_column_covers_every_module_of_each_chapter():
    code = readme_code_paths()
    uncovered = [f"{c.title}: {module}" for n, c in CHAPTERS.items() for module in c.modules
                 if n in code and not any(module == path or (path.endswith("/")
                                          and module.startswith(path)) for path in code[n])]
    assert not uncovered, f"README.md's code column omits modules of the curriculum: {uncovered}"


def test_the_readme_code_column_names_files_that_exist():
    missing = [path for paths in readme_code_paths().values() for path in paths
               if not (ROOT / path).exists()]
    assert not missing, f"README.md's code column names files that do not exist: {missing}"


def test_the_readme_states_the_python_version_that_pyproject_requires():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    version = re.fullmatch(r">=\s*(\d+\.\d+)", project["requires-python"]).group(1)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"Python {re.escape(version)}(\+| or newer)", readme), (
        f"README.md does not say Python {version}+ (requires-python in pyproject.toml)")


# ============================================================================== milestones
def milestone_pages():
    """``book/milestones/NN_name.md`` of every ``milestones/NN_YEAR_name/`` folder, in order."""
    folders = sorted(p for p in (ROOT / "milestones").glob("[0-9][0-9]_*") if p.is_dir())
    return [f"book/milestones/{f.name[:2]}_{f.name.split('_', 2)[-1]}.md" for f in folders]


def test_every_milestone_folder_has_a_readme_and_a_page():
    missing = [page for page in milestone_pages() if not (ROOT / page).is_file()]
    folders = sorted((ROOT / "milestones").glob("[0-9][0-9]_*"))
    missing += [str(f / "README.md") for f in folders if not (f / "README.md").is_file()]
    assert not missing, f"milestones without their page or README: {missing}"


def test_the_toc_lists_the_milestone_pages_in_number_order():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    listed = [f"{f}.md" for f in toc_files(toc) if re.fullmatch(r"book/milestones/\d\d_\w+", f)]
    assert listed == milestone_pages()


@pytest.mark.parametrize("page, prefix", [("book/milestones/index.md", ""),
                                          ("book/intro.md", "milestones/")])
def test_the_milestone_timelines_link_every_milestone_in_order(page, prefix):
    text = (ROOT / page).read_text(encoding="utf-8")
    linked = re.findall(r"\{doc\}`[^`<]*<" + re.escape(prefix) + r"(\d\d_\w+)>`", text)
    assert [f"book/milestones/{name}.md" for name in linked] == milestone_pages()
