# The README's two commands: `make demo` and `make test`. Everything they need is set up here.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SYSTEM_PYTHON ?= python3
# With podman installed, `make test` builds the worker image (when its sources changed) and tests it.
PODMAN_BIN := $(shell command -v podman 2>/dev/null)

.PHONY: help deps ffmpeg chromium test lint bench load demo serve clean image image-base image-if-changed

help:
	@echo "make demo   - run the whole pipeline offline (devhost + Azurite + local worker)"
	@echo "make test   - lint and run every test (offline)"
	@echo "make serve  - keep the local stack running for curl"
	@echo "make bench  - worker throughput and memory benchmark; orchestration cost of long jobs"
	@echo "make load   - JOBS=40 CAP=3 USERS=1 WORKER=real|stub jobs at once under MAX_RUNNING_JOBS=CAP (the load: line)"
	@echo "make image  - build the worker image with podman (localhost/video-worker:dev)"

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

# The web page's browser tests (tests/e2e/test_web_page.py) drive Debian's Chromium; without it they are skipped.
chromium:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium and chromium-driver with apt-get"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "note: chromium and chromium-driver are not installed; the web page's browser tests will be skipped"; \
	  fi; }

# checkov lives in its own venv: its pinned dependencies would conflict with the app's.
.venv-checkov/.installed: infra/requirements-checkov.txt
	$(SYSTEM_PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install -q --disable-pip-version-check -r infra/requirements-checkov.txt
	touch $@

.PHONY: infra-check
infra-check: .venv-checkov/.installed
	.venv-checkov/bin/checkov --config-file infra/.checkov.yaml --compact --quiet

# Import rules (pyproject.toml [tool.importlinter]): the layers, a worker that needs only the contract, a pure domain.
lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-cache

test: deps chromium lint infra-check $(if $(PODMAN_BIN),image-if-changed)
	$(PY) -m pytest -q

bench: deps
	$(PY) -m bench.worker_bench
	$(PY) -m bench.replay_bench

# JOBS at once under MAX_RUNNING_JOBS=CAP on the devhost (issues 13, 22): the `load:` line, last.
JOBS ?= 40
CAP ?= 3
USERS ?= 1
WORKER ?= real
load: deps
	$(PY) -m bench.load_bench --jobs $(JOBS) --cap $(CAP) --users $(USERS) --worker $(WORKER)

demo: deps $(if $(filter podman,$(CONTAINER_BACKEND)),image-if-changed)
	$(PY) -m devhost.demo $(if $(URL),--url "$(URL)")

serve: deps $(if $(filter podman,$(CONTAINER_BACKEND)),image-if-changed)
	$(PY) -m devhost.serve

clean:
	rm -rf $(VENV) node_modules .devhost .bench .pytest_cache .ruff_cache .image

# --- The worker image (podman; see README "The worker image") -------------------------------------
# These machines need runc (crun refuses the hybrid cgroup layout), ulimits the sandbox allows,
# the host network for apt and pip, and pip pointed at the machine's CA bundle (TLS interception).
# All of it stays here: worker/Dockerfile builds as is in the cloud (ACR Tasks, debian:bookworm-slim).
PODMAN ?= podman --runtime runc
PODMAN_ULIMITS ?= --ulimit nofile=1024:1024 --ulimit nproc=4096:4096
WORKER_IMAGE_TAG ?= localhost/video-worker:dev
WORKER_BASE_IMAGE ?= localhost/debian:bookworm-local
HOST_CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
# What debian:bookworm-slim leaves out (docs, manuals, translations), so the local base is its equivalent;
# merged /usr by mmdebstrap's hook, not the usrmerge package (which would bring the whole of perl).
SLIM_DPKG_OPTS := --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/groff/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
# Everything the image is built from: the same hash means the same image (no rebuild for `make test`).
IMAGE_SOURCES_HASH = $(shell { find worker videojob/__init__.py videojob/contract -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
  | LC_ALL=C sort -z | xargs -0 sha256sum; sha256sum .dockerignore; } | sha256sum | cut -c1-16)

# A Debian bookworm base made from Debian's packages (no registry here); built once per machine.
image-base:
	@$(PODMAN) image exists $(WORKER_BASE_IMAGE) || { \
	  tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	  echo "image: building the base $(WORKER_BASE_IMAGE) with mmdebstrap"; \
	  mmdebstrap --quiet --variant=minbase $(SLIM_DPKG_OPTS) --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
	    bookworm "$$tmp/base.tar" && \
	  $(PODMAN) import --quiet --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	    --change 'CMD ["bash"]' "$$tmp/base.tar" $(WORKER_BASE_IMAGE) >/dev/null; }

# The `image:` line: the uncompressed size, and start_s: from `podman start` of a job's container
# to the worker's `started` report (bench/image_start.py, median of 5; standard library only, no venv).
image: image-base
	@mkdir -p .image && printf '[global]\ncert = /run/host-ca.crt\n' >.image/pip.conf
	$(PODMAN) build $(PODMAN_ULIMITS) --network=host --layers \
	  -v "$(HOST_CA_BUNDLE):/run/host-ca.crt:ro" -v "$(CURDIR)/.image/pip.conf:/etc/pip.conf:ro" \
	  --build-arg BASE_IMAGE=$(WORKER_BASE_IMAGE) -f worker/Dockerfile -t $(WORKER_IMAGE_TAG) .
	@size_mb=$$(( $$($(PODMAN) image inspect --format '{{.Size}}' $(WORKER_IMAGE_TAG)) / 1000000 )) && \
	start=$$($(SYSTEM_PYTHON) -m bench.image_start $(WORKER_IMAGE_TAG)) && \
	echo "image: name=$(WORKER_IMAGE_TAG) size_mb=$$size_mb $$start"

# `make image` unless this very source tree was built into the image already.
image-if-changed:
	@stamp=".image/built-$(IMAGE_SOURCES_HASH)"; \
	if [ -f "$$stamp" ] && $(PODMAN) image exists $(WORKER_IMAGE_TAG); then \
	  echo "image: name=$(WORKER_IMAGE_TAG) is up to date"; \
	else \
	  $(MAKE) --no-print-directory image && rm -f .image/built-* && touch "$$stamp"; \
	fi
