"""The live digit page in headless Chromium, offline: the book's LeNet in the browser.

Run after the book is built. MNIST comes from LENET_MNIST_PATH. Every host but
127.0.0.1 fails to resolve, so the runtime and the model must come with the
book. Screenshots go to ``_build/screenshots/live-digit-*.png``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin

import numpy as np
import pytest
from test_book_pages import CHROMEDRIVER, CHROMIUM, HTML, SCREENSHOTS, offline_cdn_failure, site

from lenet_utils import export
from lenet_utils.data import load_mnist, scale_images

__all__ = ["site"]  # the fixture that serves _build/html on 127.0.0.1

ROOT = Path(__file__).resolve().parents[2]
PAGE = "book/live-digit.html"
MODEL = ROOT / "book" / "models" / "lenet.onnx"
DIGITS = 200  # test digits fed through the page
CLASSIFY_ALL = """
const [images, options, done] = arguments;
(async () => {
  const results = [];
  for (const image of images) results.push(await window.liveDigit.classify(image, options));
  return results.map(r => r && {prediction: r.prediction, probabilities: r.probabilities,
                                input: Array.from(r.input)});
})().then(done, error => done({error: String(error)}));
"""
PAINT_ON_PAD = """
// Paint a 28x28 digit onto the drawing pad, scaled and placed as asked, as ink
// (alpha), the way strokes are stored; then run the drawing's pipeline.
const [pixels, scale, left, top, done] = arguments;
const pad = document.querySelector('#live-digit [data-part="pad"]');
const small = document.createElement("canvas");
small.width = small.height = 28;
const picture = small.getContext("2d").createImageData(28, 28);
pixels.forEach((value, i) => picture.data.set([0, 0, 0, Math.round(255 * value)], 4 * i));
small.getContext("2d").putImageData(picture, 0, 0);
const pen = pad.getContext("2d");
pen.clearRect(0, 0, pad.width, pad.height);
pen.imageSmoothingEnabled = true;
pen.drawImage(small, left, top, 28 * scale, 28 * scale);
window.liveDigit.classify(pad).then(
  r => done({prediction: r.prediction, input: Array.from(r.input)}),
  error => done({error: String(error)}));
"""


@pytest.fixture(scope="module")
def browser():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")
    if not (HTML / PAGE).is_file():
        pytest.fail(f"build the book first: {HTML / PAGE} is missing")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1280,1000",
                 # No network: every host but the local server fails to resolve.
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(120)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(site, browser):
    browser.get(urljoin(site, PAGE))
    error = browser.execute_async_script(
        "const done = arguments[0];"
        "window.liveDigit.ready.then(() => done(null), e => done(String(e)));")
    assert error is None, f"the model did not load: {error}"
    return browser


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    _, (x_test, y_test) = load_mnist()
    return scale_images(x_test[:DIGITS]), y_test[:DIGITS]


def console_errors(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser")
            if entry["level"] == "SEVERE" and not offline_cdn_failure(entry["message"])]


def part(browser, name: str):
    return browser.find_element("css selector", f'#live-digit [data-part="{name}"]')


def test_runtime_and_model_load_from_the_book_only(page):
    resources = page.execute_script(
        "return performance.getEntriesByType('resource').map(r => r.name);")
    local = [url for url in resources if url.startswith(page.current_url.split("book/")[0])]
    for name in ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs",
                 "ort-wasm-simd-threaded.wasm", "lenet.onnx"):
        assert any(url.split("?")[0].endswith(f"_static/live/{name}") for url in local), name
    assert page.find_element("css selector", "#live-digit").get_attribute("data-state") == "ready"
    assert console_errors(page) == []


def test_no_other_page_loads_the_runtime_or_the_model():
    others = [path for path in HTML.glob("**/*.html") if path != HTML / PAGE]
    assert others, f"build the book first: {HTML} has no pages"
    assert [path for path in others if "_static/live/" in path.read_text()] == []


def test_page_predictions_equal_keras_and_onnxruntime(page, digits):
    images, labels = digits
    results = page.execute_async_script(CLASSIFY_ALL, images.reshape(len(images), -1).tolist(),
                                        {"announce": False})
    assert "error" not in results, results
    in_browser = np.array([result["probabilities"] for result in results], np.float32)
    onnxruntime = export.run_onnx(MODEL, images)["probabilities"]
    keras = export.lenet_from_onnx(MODEL).predict(images, verbose=0)
    for reference in (onnxruntime, keras):
        assert np.array_equal(in_browser.argmax(1), reference.argmax(1))
        assert np.abs(in_browser - reference).max() <= 1e-5
    assert [result["prediction"] for result in results] == list(in_browser.argmax(1))
    assert np.mean(in_browser.argmax(1) == labels) >= 0.95  # the trained model, not a stub
    assert np.allclose(results[-1]["input"], images[-1].ravel())
    bars = page.execute_script(
        "return [...document.querySelectorAll('#live-digit .live-digit-bar')].map(bar =>"
        " bar.getBoundingClientRect().width / bar.parentElement.clientWidth);")
    assert np.abs(np.array(bars) - in_browser[-1]).max() < 0.02, "bar lengths"
    shown = part(page, "prediction-visible").text
    assert shown.startswith(f"LeNet reads a {in_browser[-1].argmax()},")
    assert console_errors(page) == []


def test_mnist_digits_survive_the_drawing_preprocessing(page, digits):
    # MNIST digits are already scaled into 20x20 and centred by mass: drawn
    # large and off-centre on the pad, preprocessing should give them back.
    images, _ = digits
    reference = export.run_onnx(MODEL, images)["probabilities"].argmax(1)
    same, differences = 0, []
    for index, image in enumerate(images[:100]):
        scale, left, top = (6, 0, 0) if index % 2 else (9, 20, 10)
        result = page.execute_async_script(PAINT_ON_PAD, image.ravel().tolist(), scale, left, top)
        assert "error" not in result, result
        same += result["prediction"] == reference[index]
        differences.append(np.abs(np.array(result["input"]) - image.ravel()).mean())
    assert same >= 95, f"{same} of 100 digits kept their prediction after preprocessing"
    assert np.median(differences) < 0.05, np.median(differences)
    assert console_errors(page) == []


def draw(browser, strokes: list[list[tuple[int, int]]], touch: bool = False) -> None:
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    pad = part(browser, "pad")
    # Not under the theme's sticky header, where the pointer would land instead.
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", pad)
    kind = interaction.POINTER_TOUCH if touch else interaction.POINTER_MOUSE
    actions = ActionBuilder(browser, mouse=PointerInput(kind, "finger" if touch else "mouse"))
    size = pad.size["width"]
    for stroke in strokes:
        # Points in 0..100 of the pad; WebDriver offsets are from its centre.
        to_offset = [(round((x - 50) * size / 100), round((y - 50) * size / 100))
                     for x, y in stroke]
        actions.pointer_action.move_to(pad, *to_offset[0]).pointer_down()
        for point in to_offset[1:]:
            actions.pointer_action.move_to(pad, *point)
        actions.pointer_action.pointer_up()
    actions.perform()


def resize(browser, width: int, height: int) -> None:
    # Chromium lays the page out again a little after the window changes; until
    # then WebDriver aims pointer actions at where the pad used to be.
    browser.set_window_size(width, height)
    browser.execute_async_script("""
        const [width, done] = arguments;
        const pad = document.querySelector('#live-digit [data-part="pad"]');
        let before = '';
        (function settle() {
          requestAnimationFrame(() => requestAnimationFrame(() => {
            const now = JSON.stringify(pad.getBoundingClientRect());
            if (window.innerWidth === width && now === before) done();
            else { before = now; settle(); }
          }));
        })();""", width)


def press_clear(browser) -> None:
    button = part(browser, "clear")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()


def wait_for_prediction(browser) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    announced = part(browser, "prediction")
    WebDriverWait(browser, 20).until(lambda _: announced.get_attribute("textContent"))
    return announced.get_attribute("textContent")


@pytest.mark.parametrize("touch", [False, True], ids=["mouse", "touch"])
def test_drawing_with_pointer_events_shows_a_prediction(page, touch):
    press_clear(page)
    assert part(page, "prediction").get_attribute("textContent") == ""
    seven = [[(22, 18), (78, 18), (45, 85)]]
    draw(page, seven, touch=touch)
    announced = wait_for_prediction(page)
    assert announced.startswith("LeNet reads a "), announced
    ink = page.execute_script(
        "const c = arguments[0]; return Array.from(c.getContext('2d')"
        ".getImageData(0, 0, 28, 28).data).filter((v, i) => i % 4 === 0 && v > 128).length;",
        part(page, "input"))
    assert ink > 20, "the 28x28 input shows the stroke"
    assert announced.startswith("LeNet reads a 7"), announced
    assert console_errors(page) == []


@pytest.mark.parametrize("key", ["SPACE", "ENTER", "ESCAPE"])
def test_keyboard_clears(page, key):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    draw(page, [[(50, 15), (50, 85)]])
    assert wait_for_prediction(page)
    page.execute_script("arguments[0].focus();", part(page, "clear"))
    ActionChains(page).send_keys(getattr(Keys, key)).perform()
    assert part(page, "prediction").get_attribute("textContent") == ""
    assert part(page, "prediction-visible").text == ""
    assert console_errors(page) == []


def test_layout_fits_400_pixels(page):
    for width in (1280, 400):
        resize(page, width, 1000)
        overflow = page.execute_script(
            "const w = document.getElementById('live-digit');"
            "return [document.documentElement.scrollWidth - window.innerWidth,"
            " w.getBoundingClientRect().right - window.innerWidth];")
        assert max(overflow) <= 0, f"at {width} px the page scrolls sideways: {overflow}"
    resize(page, 1280, 1000)


def test_screenshots_of_a_drawn_digit_light_and_dark(page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    four = [[(40, 12), (28, 55), (75, 55)], [(62, 30), (60, 90)]]  # two strokes
    for theme in ("light", "dark"):
        page.execute_script("document.documentElement.dataset.theme = arguments[0];"
                            "document.documentElement.dataset.mode = arguments[0];", theme)
        for width in (1280, 400):
            resize(page, width, 1400)
            page.execute_script("window.liveDigit.clear();")  # the button is tested above
            draw(page, four)
            assert wait_for_prediction(page).startswith("LeNet reads a 4")
            widget = page.find_element("css selector", "#live-digit")
            page.execute_script("arguments[0].scrollIntoView(); document.activeElement.blur();",
                                widget)
            widget.screenshot(str(SCREENSHOTS / f"live-digit-{width}-{theme}.png"))
    resize(page, 1280, 1000)
    assert console_errors(page) == []
