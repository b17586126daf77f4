# The README's commands. Each creates .venv and installs requirements.txt the first time.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BUILD_BOOK := $(BIN)/jupyter-book build . -W -n --keep-going
NBVAL_CACHE := _build/nbval-model-cache
FULL_CACHE := _build/full-model-cache

.PHONY: install book test lint unit nbval notebooks clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

## book: build the HTML book from the notebooks' stored outputs into _build/html
book: install
	$(BUILD_BOOK)

## test: lint, unit tests, every notebook under nbval (quick profile), the -W book build
test: lint unit nbval book

lint: install
	$(BIN)/ruff check .

unit: install
	$(BIN)/pytest tests

nbval: install
	rm -rf $(NBVAL_CACHE)
	LENET_PROFILE=quick LENET_CACHE_DIR=$(NBVAL_CACHE) $(BIN)/pytest --nbval-lax \
		--nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg notebooks

## notebooks: re-execute every notebook in the full profile, storing its outputs
notebooks: install
	rm -rf $(FULL_CACHE)
	LENET_PROFILE=full LENET_CACHE_DIR=$(FULL_CACHE) $(BIN)/python tools/execute_notebooks.py notebooks/*.ipynb

clean:
	rm -rf _build
