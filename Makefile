# `make run`  : set up .venv, initialise ./var if absent (SQLite + software keys), run the demo.
# `make test` : install what the tests need (SoftHSM2 and OpenSSL included) and run the whole suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
QTSP   := $(VENV)/bin/qtsp
HOME_DIR ?= ./var

.PHONY: run test venv test-deps system-deps lint typecheck bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(PIP) install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

run: venv
	@if [ ! -f "$(HOME_DIR)/qtsp.db" ]; then $(QTSP) --home $(HOME_DIR) init; fi
	$(QTSP) --home $(HOME_DIR) demo

# SoftHSM2, the openssl CLI and nginx come from Debian's archive; the suite needs them and never
# skips.  Tests start their own nginx (own prefix, pid file and loopback port); the system nginx
# the package starts on port 80 is stopped and disabled right after we install it (only then).
system-deps:
	@if ! command -v softhsm2-util >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq softhsm2 openssl >/dev/null; \
	fi
	@if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq nginx >/dev/null; \
	  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then \
	    $$SUDO systemctl disable --now nginx >/dev/null 2>&1 || true; \
	  else \
	    $$SUDO service nginx stop >/dev/null 2>&1 || true; \
	    $$SUDO update-rc.d nginx disable >/dev/null 2>&1 || true; \
	  fi; \
	fi

test-deps: system-deps $(VENV)/.test-installed

lint: test-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: test-deps
	$(VENV)/bin/mypy

test: test-deps lint typecheck
	CI=$${CI:-true} $(VENV)/bin/pytest -q

# Benchmarks print figures (docs/benchmarks.md); they are not part of the test suite.
bench: venv system-deps
	@command -v ab >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get install -y -qq apache2-utils >/dev/null; }
	$(QTSP) bench issue --count 2000 --workers 2 --repeat 3
	$(QTSP) bench crl
	$(QTSP) bench ocsp

clean:
	rm -rf $(VENV) $(HOME_DIR) .mypy_cache .ruff_cache .pytest_cache
