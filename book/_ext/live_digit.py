"""The live digit page: its scripts, its model, and the numbers its prose quotes.

- Only the page ``book/live-digit`` loads ONNX Runtime Web and the model.
- When an HTML build starts, the runtime (ONNX Runtime Web's WebAssembly-only
  build, from ``tools/node_modules``, which ``make install`` fills with
  ``npm ci``), the page's script and style, and the exported model are copied
  into ``_static/live/``. The runtime is not committed.
- The measured numbers in ``book/models/lenet.json`` (written by
  ``tools/export_onnx.py``) become MyST substitutions such as
  ``{{ live_test_accuracy }}``, so the prose quotes the file, never a typed copy.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

from sphinx.errors import ExtensionError

PAGE = "book/live-digit"
TARGET = "live"  # under _static
RUNTIME = Path("tools/node_modules/onnxruntime-web/dist")
RUNTIME_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
PAGE_FILES = ("book/live/live-digit.js", "book/live/live-digit.css",
              "book/models/lenet.onnx", "book/models/lenet.json")


def _sources(app) -> list[Path]:
    root = Path(app.srcdir)
    files = [root / RUNTIME / name for name in RUNTIME_FILES] + [root / name for name in PAGE_FILES]
    missing = [str(path.relative_to(root)) for path in files if not path.is_file()]
    if missing:
        raise ExtensionError(
            f"the live digit page needs {', '.join(missing)}: run `make install` (it runs "
            "npm ci --prefix tools) for the runtime, `make live-model` for the model.")
    return files


def _runtime_bytes_gzip(root: Path) -> int | None:
    paths = [root / RUNTIME / name for name in RUNTIME_FILES]
    if not all(path.is_file() for path in paths):
        return None  # _copy_assets says what to do
    return sum(len(gzip.compress(path.read_bytes(), compresslevel=9)) for path in paths)


def _substitutions(app, config) -> None:
    runtime_bytes = _runtime_bytes_gzip(Path(app.srcdir)) or 0
    record = json.loads((Path(app.srcdir) / "book/models/lenet.json").read_text())
    measured = record["measured"]
    rounding = measured["float16_rounding"]
    model_bytes = record["model"]["bytes_gzip"]
    config.myst_substitutions = {
        **config.myst_substitutions,
        "live_test_accuracy": f"{measured['test_accuracy_keras_float32']:.4f}",
        "live_exported_accuracy": f"{measured['test_accuracy_exported']:.4f}",
        "live_test_images": f"{measured['test_images']:,}",
        "live_changed_predictions": str(rounding["different_predictions"]),
        "live_max_probability_change": f"{rounding['max_abs_probability_difference']:.4f}",
        "live_model_megabytes": f"{record['model']['bytes'] / 1e6:.1f}",
        "live_model_megabytes_gzip": f"{model_bytes / 1e6:.1f}",
        "live_train_images": f"{record['data']['train']:,}",
        "live_runtime_megabytes_gzip": f"{runtime_bytes / 1e6:.1f}",
        "live_download_megabytes_gzip": f"{(runtime_bytes + model_bytes) / 1e6:.1f}",
    }


def _copy_assets(app) -> None:
    # Before the pages are written, so that Sphinx finds the files and gives
    # each link a checksum (?v=...): a new model reaches returning readers.
    if app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / TARGET
    target.mkdir(parents=True, exist_ok=True)
    for source in _sources(app):
        shutil.copyfile(source, target / source.name)


def _add_page_assets(app, pagename, templatename, context, doctree) -> None:
    if pagename == PAGE:
        # Called during html-page-context, these reach this page only.
        app.add_css_file(f"{TARGET}/live-digit.css")
        app.add_js_file(f"{TARGET}/ort.wasm.min.js", loading_method="defer")
        app.add_js_file(f"{TARGET}/live-digit.js", loading_method="defer")


def setup(app):
    app.connect("config-inited", _substitutions)
    app.connect("builder-inited", _copy_assets)
    app.connect("html-page-context", _add_page_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
