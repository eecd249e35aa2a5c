# gossamer: every entry point a user or CI needs. `make test` works from a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: install system-deps test lint typecheck unit bench soak demo clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# Debian packages the tests use: benchmark peers (HAProxy, nginx, wrk) and Chromium for the
# dashboard's browser tests. Installed with apt when run as root.
DEB_PACKAGES := haproxy nginx-light wrk nghttp2-client chromium prometheus
system-deps:
	@missing=""; for b in haproxy nginx wrk h2load chromium prometheus promtool; do command -v $$b >/dev/null || [ -x /usr/sbin/$$b ] || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES) >/dev/null; \
	  else echo "note: missing$$missing (tests that need them are skipped; install as root)"; fi; \
	fi

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest

test: install system-deps lint typecheck unit
	$(MAKE) --no-print-directory bench QUICK=1

bench: install system-deps
	$(if $(QUICK),,@$(PY) -c 'import matplotlib' 2>/dev/null || $(BIN)/pip install -q -e '.[bench]')
	$(PY) -m bench $(if $(QUICK),--quick,)

soak: install
	$(BIN)/pytest -m slow --soak

demo: install
	$(BIN)/gossamer demo

clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
