# The two commands a newcomer needs: `make demo` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# JupyterLab refuses to run as root without being told; containers and CI run as root.
LAB_FLAGS := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: demo test setup js chromium test-unit test-reliability test-js test-notebooks test-browser \
        test-packaging bench lint weights clean

demo: setup js
	$(VENV)/bin/jupyter lab $(LAB_FLAGS) notebooks/

test: setup js chromium
	$(MAKE) -k test-unit test-reliability test-js test-notebooks test-browser test-packaging

setup: $(STAMP)

# torch goes first and pinned: anything that pulls an unpinned torch would fetch a multi-GB CUDA build.
$(STAMP): pyproject.toml
	@command -v npm >/dev/null || { echo "Node.js and npm are needed to build the widget JS (js/)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PIN)
	$(PY) -m pip install --quiet -e ".[dev]" $(TORCH_PIN)
	touch $@

js: setup
	cd js && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build

chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  echo "Installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; \
	fi

test-unit: setup
	$(PY) -m pytest tests/unit -q

# Every case fails when the protection it covers is removed (RELIABILITY.md lists which).
test-reliability: js chromium
	$(PY) -m pytest tests/reliability -q

test-js: js
	cd js && npm run typecheck && npm test

test-notebooks: js
	$(PY) -m pytest tests/notebooks -q

test-browser: js chromium
	$(PY) -m pytest tests/browser -q

test-packaging: js
	$(PY) -m pytest tests/packaging -q

bench: js chromium
	$(PY) benchmarks/run_all.py

lint: setup
	$(VENV)/bin/ruff check modelviz_widgets tests benchmarks
	$(VENV)/bin/ruff format --check modelviz_widgets tests benchmarks
	$(VENV)/bin/mypy

# Retrain the shipped demo weights (reproducible: fixed seeds, deterministic split).
weights: setup
	$(PY) -m modelviz_widgets.demo.train

clean:
	rm -rf $(VENV) js/node_modules modelviz_widgets/static dist build
