# The README's commands. `make book` and `make test` install what they need into .venv
# (and tools/node_modules) the first time.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BUILD_BOOK := $(BIN)/jupyter-book build . -W -n --keep-going
NBVAL_CACHE := _build/nbval-model-cache
FULL_CACHE := _build/full-model-cache

.PHONY: install book test lint unit nbval browser notebooks live-model clean

install: $(VENV)/.installed tools/node_modules/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

tools/node_modules/.installed: tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund --loglevel=error
	touch $@

## book: build the HTML book from the notebooks' stored outputs into _build/html
## (the live digit page copies ONNX Runtime Web from tools/node_modules)
book: $(VENV)/.installed tools/node_modules/.installed
	$(BUILD_BOOK)

## test: lint, unit tests, every notebook under nbval (quick profile), the -W book
## build, and every page of the built book in headless Chromium
test: lint unit nbval book browser

lint: install
	$(BIN)/ruff check .

unit: install
	$(BIN)/pytest tests --ignore=tests/browser

nbval: install
	rm -rf $(NBVAL_CACHE)
	LENET_PROFILE=quick LENET_CACHE_DIR=$(NBVAL_CACHE) $(BIN)/pytest --nbval-lax \
		--nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg notebooks

browser: install
	$(BIN)/pytest tests/browser

## notebooks: re-execute every notebook in the full profile, storing its outputs
notebooks: $(VENV)/.installed
	rm -rf $(FULL_CACHE)
	LENET_PROFILE=full LENET_CACHE_DIR=$(FULL_CACHE) \
		$(BIN)/python tools/execute_notebooks.py notebooks/*.ipynb
	$(BIN)/python tools/wall_times.py

## live-model: export chapter 3's LeNet (trained, or loaded from the cache of
## make notebooks) to book/models/lenet.onnx, with its provenance in lenet.json
live-model: $(VENV)/.installed
	LENET_CACHE_DIR=$${LENET_CACHE_DIR:-$(FULL_CACHE)} $(BIN)/python tools/export_onnx.py

clean:
	rm -rf _build
