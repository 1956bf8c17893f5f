# ModelBoard: `make run` starts the app on the embedded demo, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt constraints.txt | sha256sum | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8501
TEST_WORKERS ?= 2
UV_VERSION := 0.13.9
MODELBOARD_HOME ?= $(CURDIR)/data/local
export MODELBOARD_HOME
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test demo bench install chromium postgres lint typecheck clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)

# uv installs the pinned set in well under a minute where pip takes four (docs/decisions/0015); if uv cannot be
# fetched or fails, pip installs the same pins.
$(STAMP): requirements.txt constraints.txt | $(PY)
	( $(PY) -m pip install --quiet uv==$(UV_VERSION) && \
	  $(VENV)/bin/uv pip install --quiet --native-tls --python $(PY) \
	    -r requirements.txt -c constraints.txt ) || \
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "Installing Debian's chromium for the browser tests…"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

# The store and service tests also run on a real PostgreSQL server (15 or newer) that the tests start themselves
# as the `postgres` user (tests/postgres_server.py); Debian's package brings the server binaries and that user.
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || ! id postgres >/dev/null 2>&1; then \
	  echo "Installing Debian's PostgreSQL server for the hospital-profile tests…"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; \
	fi

run: install
	$(PY) -m core.cli demo --if-missing
	MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false $(PY) -m streamlit run app/main.py --server.address $(HOST) --server.port $(PORT) \
	  --server.headless true --browser.gatherUsageStats false

demo: install
	$(PY) -m core.cli demo

bench: install chromium postgres
	bash bench/run.sh

lint: install
	$(PY) -m ruff check core app pages data tests bench

typecheck: install
	$(PY) -m mypy core

test: install chromium postgres lint typecheck
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup

clean-venv:
	rm -rf $(VENV)
