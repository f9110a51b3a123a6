# Set-up is part of every target: a fresh clone needs only `make quickstart` or `make test`.
# The CPU build of torch is installed first unless the environment already has a torch (so a GPU user
# keeps theirs: `make test VENV=/path/to/their/env`, or TORCH_SPEC='torch==2.13.0' for a different pin).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.convlab-installed

.PHONY: setup quickstart demo test test-slow lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/convlab sweep studies/quickstart.yaml

demo: $(STAMP)
	$(BIN)/python -m convlab.demo

test: $(STAMP)
	$(BIN)/python -m pytest --hypothesis-profile=ci -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test-slow: $(STAMP)
	$(BIN)/python -m pytest --hypothesis-profile=ci -q -m slow

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_w2.py
	$(BIN)/python benchmarks/bench_mixture.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_sweep.py
	$(BIN)/python benchmarks/bench_batched.py
	$(BIN)/python benchmarks/bench_kernel.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
