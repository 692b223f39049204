# Two commands from a fresh clone: `make demo` (the gate on a generated turnstile video) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# The CUDA build of torch 2.14.1 runs on the CPU too; override TORCH for another build.
TORCH ?= torch==2.14.1 torchvision==0.29.1
FACEGATE_DATA ?= ../shared/datasets

.PHONY: demo test lint bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[dev,demo,peer,postgres]"
	touch $@

demo: $(VENV)/.installed
	FACEGATE_DATA=$(FACEGATE_DATA) $(VENV)/bin/facegate demo --out out/demo

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	FACEGATE_DATA=$(FACEGATE_DATA) $(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) benchmarks/latency.py
