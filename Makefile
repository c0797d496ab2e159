# Two commands do all set-up: `make run` and `make test`. Both create .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench emulator clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	# Bytecode for the gateway, as a wheel install (the Docker image) has it: an editable
	# install does not compile it, and with PYTHONDONTWRITEBYTECODE every start would compile
	# ~130 modules from source (~6 MiB more idle RSS than a deployed gateway).
	$(BIN)/python -m compileall -q gateway
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/gateway serve

emulator: $(STAMP)
	$(BIN)/gateway emulator

lint: $(STAMP)
	$(BIN)/ruff check gateway tests bench
	$(BIN)/mypy gateway

test: lint
	$(BIN)/pytest -q -rs

bench: $(STAMP)
	$(BIN)/python bench/codec.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
