"""The whole book as one PDF (``make pdf``; ``make book`` builds it when Chromium is there)."""

from __future__ import annotations

import json
import os
import re
import shutil
import unicodedata
from pathlib import Path

import pytest
from book_contents import toc_files

ROOT = Path(__file__).resolve().parents[2]
PDF = ROOT / "_build" / "pdf" / "lenet-book.pdf"
PUBLISHED = ROOT / "_build" / "html" / "lenet-book.pdf"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def title_of(name: str) -> str:
    """The first heading of a page of the book, notebook or Markdown."""
    path = ROOT / name
    if path.with_suffix(".ipynb").is_file():
        cells = json.loads(path.with_suffix(".ipynb").read_text())["cells"]
        text = "\n".join("".join(cell["source"]) for cell in cells
                         if cell["cell_type"] == "markdown")
    else:
        text = path.with_suffix(".md").read_text()
    return re.search(r"^# (.+)$", text, re.MULTILINE).group(1).strip()


def figure_count() -> int:
    """Images the book shows: figure outputs of the notebooks and images of its pages."""
    count = 0
    for name in toc_files(with_root=True):
        path = ROOT / name
        if path.with_suffix(".ipynb").is_file():
            cells = json.loads(path.with_suffix(".ipynb").read_text())["cells"]
            count += sum("image/png" in output.get("data", {})
                         for cell in cells if cell["cell_type"] == "code"
                         and "remove-output" not in cell["metadata"].get("tags", [])
                         for output in cell["outputs"])
        else:
            count += len(re.findall(r"!\[|\{figure\}|\{image\}", path.with_suffix(".md")
                                    .read_text()))
    return count


SMART_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def squeeze(text: str) -> str:
    """Text without ligatures, whitespace and curly quotes, as PDF extraction varies in
    the first two and Sphinx's smartquotes print a title's ``'`` as ``\u2019``."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).translate(SMART_QUOTES))


def images_in(page_or_form) -> int:
    """Image objects drawn on a page, counted without decoding them."""
    resources = page_or_form.get("/Resources", {})
    count = 0
    for reference in resources.get("/XObject", {}).values():
        xobject = reference.get_object()
        if xobject.get("/Subtype") == "/Image":
            count += 1
        elif xobject.get("/Subtype") == "/Form":
            count += images_in(xobject)
    return count


@pytest.fixture(scope="module")
def reader():
    if not any(shutil.which(name) for name in BROWSERS) and os.environ.get("CI") != "true":
        pytest.skip("no Chromium to print the PDF with (apt-get install chromium)")
    assert PDF.is_file(), f"build the PDF first: make pdf (no {PDF})"
    from pypdf import PdfReader

    return PdfReader(PDF)


@pytest.fixture(scope="module")
def text(reader) -> str:
    return squeeze("\n".join(page.extract_text() for page in reader.pages))


def test_pdf_has_every_chapter_in_order(text):
    positions = []
    for name in toc_files(with_root=True):
        title = squeeze(title_of(name))
        assert title in text, f"the PDF lacks {name}: {title_of(name)!r}"
        positions.append(text.index(title, positions[-1] if positions else 0))
    assert positions == sorted(positions)


def test_pdf_has_every_figure(reader):
    images = sum(images_in(page) for page in reader.pages)
    assert images >= figure_count() > 0


def test_pdf_has_a_bookmark_for_every_chapter(reader):
    def titles(outline) -> list[str]:
        return [title for item in outline for title in
                (titles(item) if isinstance(item, list) else [item.title])]

    bookmarks = {squeeze(title) for title in titles(reader.outline)}
    for name in toc_files(with_root=True):
        assert any(squeeze(title_of(name)) in bookmark for bookmark in bookmarks), name


def test_the_published_site_serves_the_pdf(reader):
    assert PUBLISHED.is_file(), "make book copies the PDF into _build/html"
    assert PUBLISHED.read_bytes() == PDF.read_bytes()
    intro = (ROOT / "book" / "intro.md").read_text()
    assert 'href="../lenet-book.pdf"' in intro, "book/intro.md links the PDF"
