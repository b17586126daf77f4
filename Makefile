# The README's commands. `make book` and `make test` install what they need into .venv
# (and tools/node_modules) the first time.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BUILD_BOOK := $(BIN)/jupyter-book build . -W -n --keep-going
# Absolute paths: each notebook's kernel runs in notebooks/, where a relative path
# would put the caches under notebooks/_build (and `rm -rf` would miss them).
NBVAL_CACHE := $(CURDIR)/_build/nbval-model-cache
# Full-profile models are kept between runs: their cache key includes a fingerprint
# of the code, so a stale model cannot be loaded. LENET_CACHE_DIR, when set, wins.
LENET_CACHE_DIR ?= $(CURDIR)/_build/full-model-cache
# TensorFlow reads this when it loads: set it for every kernel the targets start.
QUIET_TF := TF_CPP_MIN_LOG_LEVEL=3

.PHONY: install book pdf test lint unit nbval browser notebooks tidy test-matrix live-model clean

install: $(VENV)/.installed tools/node_modules/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

tools/node_modules/.installed: tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund --loglevel=error
	touch $@

## book: build the HTML book from the notebooks' stored outputs into _build/html,
## with the whole book as one PDF in _build/html/lenet-book.pdf when Chromium is there
## (the live digit page copies ONNX Runtime Web from tools/node_modules)
book: $(VENV)/.installed tools/node_modules/.installed
	$(BUILD_BOOK)
	$(BIN)/python tools/build_pdf.py --if-browser

## pdf: the whole book as one PDF, printed by headless Chromium from a single-page
## build: _build/pdf/lenet-book.pdf, copied to _build/html/lenet-book.pdf
pdf: $(VENV)/.installed
	$(BIN)/python tools/build_pdf.py

## test: lint, unit tests, every notebook under nbval (quick profile), the -W book
## build, and every page of the built book in headless Chromium
test: lint unit nbval book browser

lint: install
	$(BIN)/ruff check .

unit: install
	$(BIN)/pytest tests --ignore=tests/browser

nbval: install
	rm -rf $(NBVAL_CACHE)
	$(QUIET_TF) LENET_PROFILE=quick LENET_CACHE_DIR=$(NBVAL_CACHE) $(BIN)/pytest --nbval-lax \
		--nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg notebooks

browser: install
	$(BIN)/pytest tests/browser

## notebooks: tidy every notebook, re-execute it in the full profile and store its
## outputs (stderr stripped), then write the wall times into book/how-to-run.md
notebooks: $(VENV)/.installed
	$(BIN)/python tools/tidy_notebooks.py notebooks/*.ipynb
	$(QUIET_TF) LENET_PROFILE=full LENET_CACHE_DIR=$(LENET_CACHE_DIR) \
		$(BIN)/python tools/execute_notebooks.py notebooks/*.ipynb
	$(BIN)/python tools/wall_times.py

## test-matrix: unit tests and every notebook (quick profile) in three virtual
## environments under _build/matrix: the lowest versions pyproject.toml declares, the
## versions Colab ships, and the newest releases (tools/test_matrix.py; about 1-2 GB each)
test-matrix: tools/node_modules/.installed
	$(PYTHON) tools/test_matrix.py

## tidy: format the notebooks' code to 80 columns and set their metadata
## (tools/tidy_notebooks.py; outputs are left as they are)
tidy: $(VENV)/.installed
	$(BIN)/python tools/tidy_notebooks.py notebooks/*.ipynb

## live-model: export chapter 3's LeNet (trained, or loaded from the cache of
## make notebooks) to book/models/lenet.onnx, with its provenance in lenet.json
live-model: $(VENV)/.installed
	LENET_CACHE_DIR=$(LENET_CACHE_DIR) $(BIN)/python tools/export_onnx.py

clean:
	rm -rf _build
