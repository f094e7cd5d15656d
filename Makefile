# Two entry points: `make demo` (the whole pipeline on the embedded corpus) and `make test`.
# Each creates .venv on first use and installs the pinned requirements it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	$(BIN)/python demo.py

lint: $(VENV)/.dev
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -q tests
