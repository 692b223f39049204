# From a fresh clone: `make demo` (the gate on a generated turnstile video), `make test`, `make serve` (the admin page).
VENV ?= .venv
PY := $(VENV)/bin/python
# The CUDA build of torch 2.14.1 runs on the CPU too; override TORCH for another build.
TORCH ?= torch==2.14.1 torchvision==0.29.1
FACEGATE_DATA ?= ../shared/datasets

.PHONY: demo test lint bench serve

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[dev,demo,evaluate,import,peer,postgres]"
	touch $@

demo: $(VENV)/.installed
	FACEGATE_DATA=$(FACEGATE_DATA) $(VENV)/bin/facegate demo --out out/demo

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	FACEGATE_DATA=$(FACEGATE_DATA) $(PY) -m pytest

# the admin page and API on [service] host:port; on a new database it first asks for the password of `admin`
# (`facegate admin add` states the rule, at least 10 characters, and asks again for a shorter one)
serve: $(VENV)/.installed
	@if $(VENV)/bin/facegate admin list | grep -q '^no accounts'; then \
		echo "no account yet: choose a password for the first admin, 'admin'"; \
		$(VENV)/bin/facegate admin add admin; \
	fi
	$(VENV)/bin/facegate serve

bench: $(VENV)/.installed
	$(PY) benchmarks/latency.py
