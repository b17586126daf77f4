"""book/_ext/section_labels.py, on a small Sphinx project shaped like chapter 7 and 7b."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

# The lowest-versions environment of `make test-matrix` has the package, not the book's tools.
application = pytest.importorskip("sphinx.application", reason="Sphinx builds the book only")
errors = pytest.importorskip("sphinx.errors")

EXTENSIONS = Path(__file__).resolve().parents[1] / "book" / "_ext"
PAGES = {
    "index": "Book\n====\n\n.. toctree::\n   :numbered:\n\n   remedies\n   learned\n",
    "remedies": "Remedies\n========\n\n.. toctree::\n\n   final\n\nDropout\n-------\n",
    "final": "The final model\n===============\n\nThe target\n----------\n",
    "learned": "What LeNet learned\n==================\n",
}


def build(tmp_path: Path, labels: dict[str, str]) -> dict[str, str]:
    for name, text in PAGES.items():
        (tmp_path / f"{name}.rst").write_text(text)
    app = application.Sphinx(tmp_path, None, tmp_path / "_build", tmp_path / "_doctrees", "html",
                             confoverrides={"extensions": ["section_labels"],
                                            "section_labels": labels},
                             status=None, warning=None, freshenv=True)
    app.build()
    return {name: (tmp_path / "_build" / f"{name}.html").read_text() for name in PAGES}


@pytest.fixture(autouse=True)
def _extension_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXTENSIONS))


def numbers(html: str) -> list[str]:
    return re.findall(r'<span class="section-number">([^<]*)</span>', html)


def test_without_a_label_the_page_is_numbered_as_a_section_of_its_chapter(tmp_path):
    pages = build(tmp_path, {})
    assert numbers(pages["final"])[:2] == ["1.1. ", "1.1.1. "]


def test_a_label_replaces_the_number_in_headings_sidebar_and_links(tmp_path):
    pages = build(tmp_path, {"final": "1b"})
    assert numbers(pages["final"])[:2] == ["1b. ", "1b.1. "]
    assert "<title>1b. The final model" in pages["final"]
    assert re.search(r'href="final.html">1b\. The final model<', pages["index"])
    assert re.search(r'href="learned.html">2\. What LeNet learned<', pages["index"])
    assert numbers(pages["remedies"])[:2] == ["1. ", "1.2. "]


def test_an_unknown_page_is_a_configuration_error(tmp_path):
    with pytest.raises(errors.ConfigError, match="'missing' is not a numbered page"):
        build(tmp_path, {"missing": "7b"})
