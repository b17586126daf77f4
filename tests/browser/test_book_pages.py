"""Every page of the built book, in headless Chromium.

Run after the book is built (``make test`` does both). Full-page screenshots of
every page at 1280×900 and 400×800 go to ``_build/screenshots/<size>/``, and
each page's height at 1280×900 to ``_build/page-heights.json``.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
PAGE_HEIGHTS = ROOT / "_build" / "page-heights.json"
LAYOUT_SIZE = (1280, 900)
SCREENSHOT_SIZES = ((1280, 900), (400, 800))
# An output longer than this is shown in a scrolling or collapsed cell (MyST-NB tags).
EXPANDED_OUTPUT_LINES = 40
CHROMIUM = shutil.which("chromium") or shutil.which("google-chrome") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Assets the theme loads from CDNs. Tests run without network, so these fail to
# resolve; any other failed load, and any other console error, fails the test.
# None now: MathJax is served from the build (sphinx-mathjax-offline).
KNOWN_CDN_ASSETS: tuple[str, ...] = ()
OFFLINE = "net::ERR_NAME_NOT_RESOLVED"
PAGES = sorted(str(path.relative_to(HTML)) for path in HTML.glob("**/*.html")
               if not path.relative_to(HTML).parts[0].startswith("_")) if HTML.is_dir() else []


def require_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing and os.environ.get("CI") != "true":
        pytest.skip(f"not installed: {', '.join(missing)} (apt-get install chromium "
                    "chromium-driver)")
    assert not missing, f"CI must install Chromium and ChromeDriver: {missing}"
    assert PAGES, f"build the book first: {HTML} has no pages"


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture(scope="module")
def site():
    require_browser()
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1280,1000"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag == "a" and attributes.get("href"):
            self.hrefs.append(attributes["href"])


@functools.cache
def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, ""


def offline_cdn_failure(message: str) -> bool:
    return OFFLINE in message and message.startswith(KNOWN_CDN_ASSETS)


def parse(html: str) -> _Links:
    links = _Links()
    links.feed(html)
    return links


@pytest.mark.parametrize("page", PAGES)
def test_page_links_anchors_images_and_console(page, site, browser):
    url = urljoin(site, page)
    status, html = fetch(url)
    assert status == 200
    for href in parse(html).hrefs:
        target, fragment = urldefrag(urljoin(url, href))
        if urlparse(target).netloc != urlparse(site).netloc:
            continue
        target_status, target_html = fetch(target)
        assert target_status == 200, f"{page}: broken link {href}"
        if fragment and target.endswith(".html"):
            assert fragment in parse(target_html).ids, f"{page}: broken anchor {href}"
    browser.get(url)
    broken = browser.execute_script(
        "return [...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
        ".map(i => i.src);")
    assert broken == [], f"{page}: images not loaded"
    errors = [entry["message"] for entry in browser.get_log("browser")
              if entry["level"] == "SEVERE" and not offline_cdn_failure(entry["message"])]
    assert errors == [], f"{page}: console errors"


def show_at(browser, url: str, size: tuple[int, int]) -> None:
    """Load ``url`` in a viewport of ``size`` and wait for its fonts and images."""
    width, height = size
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    browser.get(url)
    browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.all([document.fonts.ready, ...[...document.images].map(i => i.decode()"
        ".catch(() => null))]).then(() => done(true));")


@pytest.fixture
def viewport(browser):
    yield browser
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


# What a reader would have to scroll sideways, what is wider than the text column,
# and which expanded outputs are longer than the limit.
LAYOUT_PROBLEMS = """
const limit = arguments[0];
const article = document.querySelector('article.bd-article') || document.body;
const column = article.getBoundingClientRect();
const shown = el => el.offsetParent !== null;
const name = el => `${el.tagName.toLowerCase()} "${el.innerText.trim().slice(0, 60)}"`;
const scrolls = [...article.querySelectorAll('*')].filter(el => {
  const overflow = getComputedStyle(el).overflowX;
  return shown(el) && (overflow === 'auto' || overflow === 'scroll')
    && el.scrollWidth > el.clientWidth + 1;
}).map(el => `scrolls sideways (${el.scrollWidth} > ${el.clientWidth} px): ${name(el)}`);
const wide = [...article.querySelectorAll('table, img, pre')].filter(el => shown(el)
    && el.getBoundingClientRect().right > column.right + 1)
  .map(el => `wider than the text column: ${name(el)}`);
const collapsed = el => el.closest('.tag_scroll-output, .tag_hide-output');
const tall = [...article.querySelectorAll('.cell_output pre, .cell_output table')]
  .filter(el => shown(el) && !collapsed(el)).map(el => [el, el.tagName === 'TABLE'
    ? el.querySelectorAll('tbody tr').length : el.innerText.split('\\n').length])
  .filter(([el, lines]) => lines > limit)
  .map(([el, lines]) => `${lines} lines shown expanded: ${name(el)}`);
return {problems: [...scrolls, ...wide, ...tall],
        height: document.documentElement.scrollHeight};
"""


def record_height(page: str, height: int) -> None:
    heights = json.loads(PAGE_HEIGHTS.read_text()) if PAGE_HEIGHTS.is_file() else {}
    heights[page] = height
    PAGE_HEIGHTS.write_text(json.dumps(dict(sorted(heights.items())), indent=1) + "\n")


# Known breaks, each waiting for a re-execution that did not fit the session that found it;
# strict, so that the test fails once the break is fixed and its entry must go.
KNOWN_LAYOUT_BREAKS: dict[str, str] = {}


def layout_cases() -> list:
    return [pytest.param(page, marks=[pytest.mark.xfail(reason=KNOWN_LAYOUT_BREAKS[page],
                                                        strict=True)])
            if page in KNOWN_LAYOUT_BREAKS else page for page in PAGES]


@pytest.mark.parametrize("page", layout_cases())
def test_page_fits_a_1280_px_window(page, site, viewport):
    show_at(viewport, urljoin(site, page), LAYOUT_SIZE)
    layout = viewport.execute_script(LAYOUT_PROBLEMS, EXPANDED_OUTPUT_LINES)
    record_height(page, layout["height"])
    assert layout["problems"] == [], f"{page} at {LAYOUT_SIZE}:\n" + "\n".join(
        layout["problems"])


# Pages given a label in place of their section number (book/_ext/section_labels.py).
SECTION_LABELS = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"][
    "section_labels"]


@pytest.mark.parametrize(("docname", "label"), SECTION_LABELS.items())
def test_labelled_page_shows_its_label_in_heading_sidebar_and_title(site, docname, label):
    _, page = fetch(urljoin(site, f"{docname}.html"))
    heading = re.search(r'<h1><span class="section-number">([^<]*)</span>', page)
    assert heading and heading.group(1).strip() == f"{label}.", heading
    assert re.search(rf"<title>{re.escape(label)}\. ", page)
    first_page = yaml.safe_load((ROOT / "_toc.yml").read_text())["root"]
    _, root = fetch(urljoin(site, f"{first_page}.html"))
    sidebar = re.search(r'<nav class="bd-links bd-docs-nav".*?</nav>', root, re.DOTALL)
    entry = re.search(rf'href="[./]*{re.escape(docname)}.html">([^<]*)<', sidebar.group(0))
    assert entry and entry.group(1).startswith(f"{label}. "), entry


# How many of the page's formulas MathJax has not typeset; -1 if MathJax never started.
UNTYPESET_FORMULAS = """
const done = arguments[arguments.length - 1];
const started = Date.now();
(function wait() {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => done([...document.querySelectorAll('.math')]
      .filter(el => !el.querySelector('mjx-container')).length));
  } else if (Date.now() - started > 15000) {
    done(-1);
  } else {
    setTimeout(wait, 100);
  }
})();
"""
MATH_PAGES = [page for page in PAGES if 'class="math' in (HTML / page).read_text("utf-8")]


@pytest.mark.parametrize("page", MATH_PAGES)
def test_formulas_are_typeset_without_network(page, site, viewport):
    show_at(viewport, urljoin(site, page), LAYOUT_SIZE)
    viewport.set_script_timeout(30)
    untypeset = viewport.execute_async_script(UNTYPESET_FORMULAS)
    assert untypeset == 0, (f"{page}: MathJax did not start" if untypeset == -1
                            else f"{page}: {untypeset} formulas shown as raw TeX")


@pytest.mark.parametrize("page", PAGES)
def test_page_screenshots(page, site, viewport):
    for width, height in SCREENSHOT_SIZES:
        show_at(viewport, urljoin(site, page), (width, height))
        full_height = viewport.execute_script("return document.documentElement.scrollHeight")
        shot = viewport.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": full_height, "scale": 1}})
        folder = SCREENSHOTS / f"{width}x{height}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / (page.replace("/", "_")[:-5] + ".png")).write_bytes(
            base64.b64decode(shot["data"]))


@pytest.mark.parametrize("page", [page for page in PAGES if page.startswith("notebooks/")])
def test_notebook_pages_launch_in_colab(page, site, browser):
    repository = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    owner_and_name = urlparse(repository["url"]).path.strip("/")
    expected = (f"https://colab.research.google.com/github/{owner_and_name}/blob/"
                f"{repository['branch']}/{page[:-5]}.ipynb")
    _, html = fetch(urljoin(site, page))
    assert expected in parse(html).hrefs, f"{page}: no Colab link to {expected}"


def test_search_finds_lenet(site, browser):
    browser.get(urljoin(site, "search.html?q=LeNet"))
    deadline = time.monotonic() + 15
    results: list[str] = []
    while time.monotonic() < deadline and not results:
        time.sleep(0.5)
        results = browser.execute_script(
            "return [...document.querySelectorAll('#search-results li a')]"
            ".map(a => a.textContent);")
    assert results, "the search page found nothing for LeNet"
    assert any(re.search("LeNet|MNIST", title) for title in results)
