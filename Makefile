# lmmcore: two commands. `make run` serves the app; `make test` runs the whole suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: run test lint bench install clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	STREAMLIT_BROWSER_GATHER_USAGE_STATS=false $(BIN)/streamlit run app.py \
		--server.port $(PORT) --server.address localhost

test: $(STAMP)
	STREAMLIT_BROWSER_GATHER_USAGE_STATS=false $(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check lmmcore tests benchmarks app.py views
	$(BIN)/ruff format --check lmmcore tests benchmarks app.py views

bench: $(STAMP)
	$(BIN)/python benchmarks/fit.py

clean:
	rm -rf $(VENV) build *.egg-info
