# The README's two commands: `make demo` and `make test`. Everything they need is set up here.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SYSTEM_PYTHON ?= python3

.PHONY: help deps ffmpeg test lint bench demo serve clean

help:
	@echo "make demo   - run the whole pipeline offline (devhost + Azurite + local worker)"
	@echo "make test   - lint and run every test (offline)"
	@echo "make serve  - keep the local stack running for curl"
	@echo "make bench  - worker throughput and memory benchmark"

$(VENV)/.installed: requirements.txt requirements-dev.txt worker/requirements.txt
	$(SYSTEM_PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

ffmpeg:
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing ffmpeg with apt-get"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
	  else \
	    echo "ffmpeg and ffprobe are required: install them (Debian/Ubuntu: sudo apt-get install ffmpeg; macOS: brew install ffmpeg)"; exit 1; \
	  fi; }

deps: $(VENV)/.installed node_modules/.installed ffmpeg

# checkov lives in its own venv: its pinned dependencies would conflict with the app's.
.venv-checkov/.installed: infra/requirements-checkov.txt
	$(SYSTEM_PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install -q --disable-pip-version-check -r infra/requirements-checkov.txt
	touch $@

.PHONY: infra-check
infra-check: .venv-checkov/.installed
	.venv-checkov/bin/checkov --config-file infra/.checkov.yaml --compact --quiet

lint: $(VENV)/.installed
	$(PY) -m ruff check .

test: deps lint infra-check
	$(PY) -m pytest -q

bench: deps
	$(PY) -m bench.worker_bench

demo: deps
	$(PY) -m devhost.demo $(if $(URL),--url "$(URL)")

serve: deps
	$(PY) -m devhost.serve

clean:
	rm -rf $(VENV) node_modules .devhost .bench .pytest_cache .ruff_cache
