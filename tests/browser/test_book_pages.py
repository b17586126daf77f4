"""Every page of the built book, in headless Chromium.

Run after the book is built (``make test`` does both). Screenshots of every
page go to ``_build/screenshots``.
"""

from __future__ import annotations

import functools
import http.server
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
CHROMIUM = shutil.which("chromium") or shutil.which("google-chrome") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Assets the theme loads from CDNs. Tests run without network, so these fail to
# resolve; any other failed load, and any other console error, fails the test.
KNOWN_CDN_ASSETS = ("https://cdn.jsdelivr.net/npm/mathjax@3/",)
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
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / (page.replace("/", "_")[:-5] + ".png")))


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
