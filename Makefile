# The README's commands. `make book` and `make test` install what they need into .venv
# (and tools/node_modules) the first time.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BUILD_BOOK := $(BIN)/jupyter-book build . -W -n --keep-going
NBVAL_CACHE := _build/nbval-model-cache
FULL_CACHE := _build/full-model-cache

.PHONY: install book test lint unit nbval browser notebooks test-matrix clean

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
book: $(VENV)/.installed
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

## test-matrix: unit tests and every notebook (quick profile) in three virtual
## environments under _build/matrix: the lowest versions pyproject.toml declares, the
## versions Colab ships, and the newest releases (tools/test_matrix.py; about 1-2 GB each)
test-matrix: tools/node_modules/.installed
	$(PYTHON) tools/test_matrix.py

clean:
	rm -rf _build
