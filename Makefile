# Set-up is part of every target: a fresh clone needs only `make quickstart` or `make test`.
# The CPU build of torch is installed first unless the environment already has a torch (so a GPU user
# keeps theirs: `make test VENV=/path/to/their/env`, or TORCH_SPEC='torch==2.13.0' for a different pin).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.convlab-installed

.PHONY: setup quickstart demo test test-slow lint docs docs-check docs-serve bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -e ".[dev]"
	# MathJax for the site, served offline: the package carries MathJax 3's files and declares Sphinx, which
	# the site does not use (docs/gen_pages.py copies the one file it needs)
	$(BIN)/python -m pip install --no-deps "sphinx-mathjax-offline==0.0.2"
	# TorchCFM's flow matchers need only torch, numpy and POT; its declared dependencies (torchdyn, torchvision,
	# pytorch-lightning) would replace the CPU torch with a CUDA build, so it comes without them (tests/evaluate)
	$(BIN)/python -m pip install --no-deps "torchcfm==1.0.7"
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

# The site (mkdocs-material): reference pages generated from the code, study pages from docs/studies/; --strict
# turns broken links and missing references into errors.
# (The two variables silence banners that mkdocs plugins print about mkdocs' future; they change nothing built.)
DOCS_ENV := NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true

docs: $(STAMP)
	$(DOCS_ENV) $(BIN)/mkdocs build --strict

# The built site in Debian's chromium (apt-get install chromium): no console error, no request outside the site,
# every image decoded, every formula rendered, navigation and search working; screenshots in site/screenshots/.
docs-check: docs
	$(BIN)/python scripts/check_site.py site

docs-serve: $(STAMP)
	$(DOCS_ENV) $(BIN)/mkdocs serve

# Each benchmark's output is recorded in benchmarks/results/<name>.txt (the docs' performance page shows them).
BENCHES := bench_w2 bench_mixture bench_training bench_batched bench_sweep bench_kernel

bench: $(STAMP)
	for b in $(BENCHES); do PYTHON=$(BIN)/python bash benchmarks/record.sh $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis site
