# labormon: the two commands a new user needs are `make demo` and `make test`.
# Both do all set-up themselves: Debian packages (when root), the virtualenv, the install.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make bench BENCH_ARGS=` runs the SQLite figures only.
BENCH_ARGS ?= --pg postgresql://postgres@127.0.0.1:5432/postgres
# Debian packages. The demo needs the MQTT broker, CJK fonts and pango for the PDF report;
# the tests add PDF->PNG (poppler) and the browser for the console's end-to-end test.
DEMO_APT := mosquitto mosquitto-clients fonts-noto-cjk \
	libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0
TEST_APT := $(DEMO_APT) poppler-utils chromium
# A production server: the runtime's packages and the system Python's venv, nothing of
# the tests (no browser, no pytest).
INSTALL_APT := mosquitto fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
	python3-venv
# `make install` builds the venv from the system's Python, never from whatever python3 is
# first on root's PATH (a pyenv in /root is unreadable to the service user).
SYSTEM_PYTHON := /usr/bin/python3
SERVICE_USER := labormon
# uv installs the same packages as pip from the same index, in parallel: a cold install of
# the runtime takes ~20 s instead of ~90 s, which is what lets `make demo` on a clean machine
# reach its first alert within a minute. pip stays the fallback if uv cannot be had.
# --compile-bytecode as pip does: where PYTHONDONTWRITEBYTECODE is set (this machine and
# CI), nothing else would ever write .pyc files, and every command would compile its
# imports again (5 s instead of 2 s per CLI call; the test suite 14 min instead of 6).
UV_DIR := var/tools/uv
UV := $(UV_DIR)/bin/uv

.PHONY: demo test lint typecheck check setup apt apt-demo venv venv-runtime clean bench dashboards \
	install apt-install

demo: apt-demo venv-runtime
	$(BIN)/labormon demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -q

setup: apt venv

apt: var/.apt-test
apt-demo: var/.apt-demo

var/.apt-demo: APT_WANT = $(DEMO_APT)
var/.apt-test: APT_WANT = $(TEST_APT)
var/.apt-install: APT_WANT = $(INSTALL_APT)
apt-install: var/.apt-install
var/.apt-demo var/.apt-test var/.apt-install:
	@missing=""; for p in $(APT_WANT); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = "0" ]; then \
			echo "installing Debian packages:$$missing"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing \
			|| { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; }; \
		else \
			echo "missing Debian packages:$$missing -- run: sudo apt-get install$$missing"; exit 1; \
		fi; \
	fi
	@mkdir -p var && touch $@

# The virtualenv: the runtime for the demo, the runtime plus the dev tools for the tests.
venv-runtime: $(VENV)/.installed-runtime
venv: $(VENV)/.installed-dev

$(UV):
	@mkdir -p $(UV_DIR)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(UV_DIR) uv \
	|| echo "uv not available; pip will install the packages"

$(VENV)/.installed-runtime: pyproject.toml | $(UV)
	$(call install,.)
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(UV)
	$(call install,.[dev])
	touch $@ $(VENV)/.installed-runtime

# $(call install,SPEC): create the venv if needed and install SPEC editable, by uv or pip.
define install
	@if [ -x $(UV) ]; then \
		test -x $(BIN)/python || $(UV) venv --quiet --seed --python $(PYTHON) $(VENV); \
		$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -e "$(1)" \
		|| { echo "uv failed; falling back to pip"; $(BIN)/pip install --quiet -e "$(1)"; }; \
	else \
		test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
		$(BIN)/pip install --quiet -e "$(1)"; \
	fi
	@# Our own modules too (an editable install compiles nothing; stale files are ignored).
	@$(BIN)/python -m compileall -q monitor ingest detectors dashboards >/dev/null
endef

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

dashboards: venv
	$(BIN)/python -m dashboards.build

# The production install (README, "Running it for real"), as root in the clone (e.g.
# /opt/labormon): the runtime only, in a venv from $(SYSTEM_PYTHON) that the service user
# can read; the service user; /etc/labormon with the configuration (0640 root:labormon,
# kept if present) and the secret key (made once, 0600 labormon); the state directory
# (0700); the systemd unit, pointing at this clone. Run again after `git pull`.
install:
	@test "$$(id -u)" = 0 || { echo "make install needs root: sudo make install"; exit 1; }
	@$(MAKE) --no-print-directory apt-install
	@if [ -x $(BIN)/python ] && [ "$$(readlink -f $(BIN)/python)" != "$$(readlink -f $(SYSTEM_PYTHON))" ]; then \
		echo "$(VENV) was built from $$(readlink -f $(BIN)/python); rebuilding it from $(SYSTEM_PYTHON)"; \
		rm -rf $(VENV); fi
	umask 022 && $(MAKE) --no-print-directory venv-runtime PYTHON=$(SYSTEM_PYTHON)
	chmod -R a+rX $(VENV) $(CURDIR)/monitor $(CURDIR)/ingest $(CURDIR)/detectors $(CURDIR)/dashboards
	id -u $(SERVICE_USER) >/dev/null 2>&1 || useradd --system --user-group \
		--home-dir /var/lib/labormon --no-create-home --shell /usr/sbin/nologin $(SERVICE_USER)
	install -d -m 0750 -o root -g $(SERVICE_USER) /etc/labormon
	test -e /etc/labormon/labormon.toml || \
		install -m 0640 -o root -g $(SERVICE_USER) deploy/labormon.toml.example /etc/labormon/labormon.toml
	test -e /etc/labormon/secret.key || ( umask 077 && \
		$(SYSTEM_PYTHON) -c 'import secrets; print(secrets.token_hex(32))' > /etc/labormon/secret.key )
	chown $(SERVICE_USER):$(SERVICE_USER) /etc/labormon/secret.key && chmod 0600 /etc/labormon/secret.key
	install -d -m 0700 -o $(SERVICE_USER) -g $(SERVICE_USER) /var/lib/labormon
	sed 's|/opt/labormon|$(CURDIR)|g' deploy/labormon.service > /etc/systemd/system/labormon.service
	chmod 0644 /etc/systemd/system/labormon.service
	ln -sf $(CURDIR)/$(BIN)/labormon /usr/local/bin/labormon
	@if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "installed; next: edit /etc/labormon/labormon.toml (README, Running it for real)"

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
