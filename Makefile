# labormon: the two commands a new user needs are `make demo` and `make test`.
# Both do all set-up themselves: Debian packages (when root), the virtualenv, the install.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_STAMP := var/.apt-installed
# `make bench BENCH_ARGS=` runs the SQLite figures only.
BENCH_ARGS ?= --pg postgresql://postgres@127.0.0.1:5432/postgres
# Debian packages: the MQTT broker, CJK fonts for reports, PDF->PNG, the browser for UI tests,
# and pango for WeasyPrint's PDF rendering.
APT_PACKAGES := mosquitto mosquitto-clients fonts-noto-cjk poppler-utils chromium \
	libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0

.PHONY: demo test lint typecheck check setup apt venv clean bench dashboards

demo: setup
	$(BIN)/labormon demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -q

setup: apt venv

apt: $(APT_STAMP)

$(APT_STAMP):
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = "0" ]; then \
			echo "installing Debian packages:$$missing"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing \
			|| { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; }; \
		else \
			echo "missing Debian packages:$$missing -- run: sudo apt-get install$$missing"; exit 1; \
		fi; \
	fi
	@mkdir -p var && touch $@

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

dashboards: venv
	$(BIN)/python -m dashboards.build

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
