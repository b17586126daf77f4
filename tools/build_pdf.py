"""Build the whole book as one PDF, offline, with headless Chromium.

Usage: ``python tools/build_pdf.py [--if-browser]`` (``make pdf``; ``make book``
passes ``--if-browser``, which skips the PDF with a note when no Chromium is
installed, except under CI, where a missing browser is an error).

Jupyter Book's single-page builder renders the stored outputs into one HTML page
(with MathJax served from the build, not from a CDN); this script adds a print
style sheet (no navigation, each chapter on a new page, solutions shown) and
Chromium prints it to ``_build/pdf/lenet-book.pdf``, copied to
``_build/html/lenet-book.pdf`` so that the published site serves it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "_build" / "pdf"
SINGLE_PAGE = WORK / "_build" / "singlehtml"
PDF = WORK / "lenet-book.pdf"
PUBLISHED = ROOT / "_build" / "html" / "lenet-book.pdf"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PRINT_STYLE = """
<style media="print">
  @page { size: A4; margin: 16mm 14mm; }
  html { font-size: 13px; }
  .bd-header, .bd-header-article, .bd-footer-article, .prev-next-area, .bd-footer,
  .bd-sidebar-primary, .bd-sidebar-secondary, .skip-link, a.headerlink, .toggle-button {
    display: none !important;
  }
  /* Chromium does not break pages inside flex boxes: the theme's layout is one. */
  .bd-container, .bd-container__inner, .bd-main, .bd-content, .bd-article-container,
  .bd-article { display: block !important; max-width: 100% !important; }
  /* Each page of the book starts a new page; its title reads as a chapter's. */
  span[id^="document-"] + section { break-before: page; }
  /* (With :is() or a margin here, Chromium 156 doubles the titles in the PDF's bookmarks.) */
  span[id^="document-"] + section > h3 { font-size: 2.2rem; }
  pre { white-space: pre-wrap; overflow: visible !important; }
  figure, img, tr, .admonition-title { break-inside: avoid; }
  h1, h2, h3, h4, .admonition-title { break-after: avoid; }
  /* Solutions are hidden until clicked on the web; on paper they are shown. */
  .admonition.toggle-hidden .admonition-title ~ * {
    height: auto; margin: revert; opacity: 1; visibility: visible;
  }
  .admonition.toggle-hidden { padding-bottom: revert; }
</style>
"""


def find_browser() -> str | None:
    """The first Chromium or Chrome on the PATH (the browser test's own choice)."""
    found = (shutil.which(name) for name in BROWSERS)
    return next((path for path in found if path), None)


def build_single_page() -> Path:
    """Run Jupyter Book's single-page builder; return the page of the whole book."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    # The copy lives in _build/pdf: its paths must not depend on where it is.
    sphinx = config["sphinx"]
    sphinx["local_extensions"] = {name: str(ROOT / folder)
                                  for name, folder in sphinx.get("local_extensions", {}).items()}
    sphinx["local_extensions"]["single_page"] = str(ROOT / "book" / "_ext")
    sphinx["config"]["html_static_path"] = [
        str(ROOT / folder) for folder in sphinx["config"].get("html_static_path", [])]
    config["bibtex_bibfiles"] = [str(ROOT / name) for name in config.get("bibtex_bibfiles", [])]
    if "favicon" in config.get("html", {}):
        config["html"]["favicon"] = str(ROOT / config["html"]["favicon"])
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    subprocess.run([str(jupyter_book), "build", str(ROOT), "--builder", "singlehtml",
                    "--config", str(WORK / "_config.yml"), "--toc", str(ROOT / "_toc.yml"),
                    "--path-output", str(WORK), "-W", "-n", "--keep-going", "-q"],
                   check=True)
    root_document = yaml.safe_load((ROOT / "_toc.yml").read_text())["root"]
    return SINGLE_PAGE / f"{root_document}.html"


def printable_copy(page: Path) -> Path:
    """The page moved to the build's root (its links are relative to it), print style added."""
    html = page.read_text(encoding="utf-8")
    html = html.replace("</head>", PRINT_STYLE + "</head>", 1)
    html = re.sub(r'<script[^>]*src="https://[^"]*"[^>]*></script>', "", html)
    printable = SINGLE_PAGE / "lenet-book.html"
    printable.write_text(html, encoding="utf-8")
    return printable


def print_to_pdf(browser: str, page: Path, pdf: Path) -> None:
    """Let Chromium load ``page`` (and typeset its formulas), then print it."""
    command = [browser, "--headless=new", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", "--disable-background-networking",
               "--disable-component-update", "--no-first-run",
               # MathJax loads its fonts next to the page.
               "--allow-file-access-from-files",
               "--run-all-compositor-stages-before-draw", "--virtual-time-budget=30000",
               # Bookmarks from the headings, for a reader to jump to a chapter.
               "--generate-pdf-document-outline",
               "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri()]
    pdf.unlink(missing_ok=True)
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0 or not pdf.is_file():
        raise SystemExit(f"{browser} printed no PDF (exit {result.returncode}):\n"
                         f"{result.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--if-browser", action="store_true",
                        help="skip, with a note, when no Chromium is installed (not under CI)")
    arguments = parser.parse_args(argv)
    browser = find_browser()
    if browser is None:
        message = ("no Chromium for the PDF: install it (apt-get install chromium) "
                   "or run without the PDF")
        if arguments.if_browser and os.environ.get("CI") != "true":
            print(f"skipping the PDF: {message}")
            return 0
        raise SystemExit(message)
    page = printable_copy(build_single_page())
    print_to_pdf(browser, page, PDF)
    if PUBLISHED.parent.is_dir():
        shutil.copyfile(PDF, PUBLISHED)
    print(f"the book as one PDF: {PDF.relative_to(ROOT)} ({PDF.stat().st_size / 1e6:.1f} MB)"
          + (f", published as {PUBLISHED.relative_to(ROOT)}" if PUBLISHED.is_file() else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
