# `make train` and `make test` set up .venv themselves when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install train test pytest lint startup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(BIN)/nnctl train configs/iris.yaml

test: lint pytest

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check nnctl tests bench
	$(BIN)/mypy

# whole-process start-up medians of the commands pipelines run; exits 1 if a goal is missed
startup: $(STAMP)
	$(BIN)/python bench/startup.py

clean:
	rm -rf $(VENV) models .pytest_cache .mypy_cache .ruff_cache build *.egg-info
