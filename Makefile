# The README's commands: `make serve` and `make test`. Each builds .venv on a fresh machine.
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml clients/python/pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: serve test lint typecheck bench install clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "sharelake needs Python >= 3.11 (set PYTHON=python3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e clients/python
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/sharelake serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks clients
	$(BIN)/ruff format --check src tests benchmarks clients

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP)
	bash scripts/test-setup
	$(MAKE) --no-print-directory lint typecheck
	$(BIN)/pytest

bench: $(STAMP)
	bash scripts/bench-setup
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info
