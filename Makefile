# `make train` and `make test` set up .venv themselves when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
RESULTS_STAMP := $(VENV)/.results-installed

.PHONY: install train test pytest lint startup bench bench-streaming bench-serve bench-wide results clean

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

# style, types, and the layers contracts in pyproject.toml (import-linter)
lint: $(STAMP)
	$(BIN)/ruff check nnctl tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# whole-process start-up of the commands pipelines run, as ratios to a bare `python -c "import numpy"` run in the
# same rounds (median of 15); exits 1 if a goal is missed
startup: $(STAMP)
	$(BIN)/python benchmarks/startup.py

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# nnctl against scikit-learn and PyTorch on W1/W2, predict throughput, then start-up; exits 1 if a goal is missed
bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/bench.py; status=$$?; $(BIN)/python benchmarks/startup.py && exit $$status

# streaming training on a ~3 GB CSV (written once to benchmarks/data/) under a 1.5 GiB address-space limit
bench-streaming: $(STAMP)
	$(BIN)/python benchmarks/streaming.py

# `nnctl serve` on loopback: 32 keep-alive clients sending single-row requests, then one 100,000-row request;
# exits 1 if a goal is missed (>= 1,000 req/s, p99 <= 50 ms, no errors; >= 150,000 rows/s)
bench-serve: $(STAMP)
	$(BIN)/python benchmarks/bench_serve.py

# wide data: train one epoch and predict on CSVs of 1,000 rows and 1k, 10k, 100k columns (written once to
# benchmarks/data/); the seconds per column stay about the same when the cost is linear in the columns
bench-wide: $(STAMP)
	$(BIN)/python benchmarks/wide.py

$(RESULTS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,results]'
	touch $(RESULTS_STAMP)

# every shipped config's test metrics next to scikit-learn's MLP on the same split, then the starter config
# (`nnctl init`) of every shipped dataset next to scikit-learn's MLP and gradient boosting defaults; exits 1 if
# nnctl is worse
results: $(RESULTS_STAMP)
	$(BIN)/python benchmarks/results.py; a=$$?; $(BIN)/python benchmarks/cv_results.py; b=$$?; \
	$(BIN)/python benchmarks/starter_results.py && exit $$(( a || b ))

clean:
	rm -rf $(VENV) models .pytest_cache .mypy_cache .ruff_cache .import_linter_cache build *.egg-info
