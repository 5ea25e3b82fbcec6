# maskformer-tfx: `make run` runs the local pipeline on the default sample,
# `make test` runs the whole test suite. Both create/update .venv first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# TF must see this before it is imported (tf.keras = Keras 2 / tf_keras).
export TF_USE_LEGACY_KERAS := 1
export PYTHONDONTWRITEBYTECODE := 1

VENV := .venv
VENV_PY := $(VENV)/bin/python
# Python 3.10 (tfx 1.16 does not support 3.11): PATH first, then pyenv's copies.
PYTHON310 ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10; do \
  if $$p -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then echo $$p; break; fi; done)
STAMP := $(VENV)/.installed

RUN_ARGS ?=
PYTEST_ARGS ?=
# The suite runs on two pytest-xdist workers, each test module on one worker,
# in the order conftest.py gives (pipeline runs shared by several modules are
# built once: tests/worker_shared.py). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

.PHONY: help venv run lint test test-deps lock clean

help:
	@echo "make run    create/update .venv, then run the local pipeline on the default sample"
	@echo "make test   create/update .venv, then lint (ruff) and run the whole test suite"
	@echo "make lint   create/update .venv, then check the code with ruff (pyproject.toml)"
	@echo "make test-deps  install the system tools the tests need (Chromium; apt-get, as root or with sudo)"
	@echo "make lock   re-resolve the stack and rewrite requirements.lock"

$(STAMP): requirements.lock pyproject.toml
	@test -n "$(PYTHON310)" || { echo "Python 3.10 not found (tfx 1.16 needs it); set PYTHON310=/path/to/python3.10"; exit 1; }
	@test -x $(VENV_PY) || $(PYTHON310) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --upgrade "pip==26.3" "setuptools==84.2.1" "wheel==0.48.0"
	$(VENV_PY) -m pip install --quiet --no-deps -r requirements.lock
	$(VENV_PY) -m pip install --quiet --no-deps --no-build-isolation --config-settings editable_mode=compat -e .
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/maskformer-tfx run $(RUN_ARGS)

# ruff with the rules in pyproject.toml ([tool.ruff]); takes about a second.
lint: $(STAMP)
	$(VENV_PY) -m ruff check .

test: lint test-deps
	$(VENV_PY) -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

# System tools the tests need and pip cannot install: the report browser
# test's headless Chromium (tests/chromium.py). Silent when it is on the PATH;
# otherwise apt-get installs it, refreshing the package lists only if the
# install fails without it. Tests never install anything themselves.
CHROMIUM_BINARIES := chromium chromium-browser google-chrome
test-deps:
	@for b in $(CHROMIUM_BINARIES); do command -v $$b >/dev/null 2>&1 && exit 0; done; \
	command -v apt-get >/dev/null 2>&1 || { echo "test-deps: Chromium is not installed and apt-get is missing: install chromium (the report browser test needs it)."; exit 1; }; \
	sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	echo "test-deps: installing chromium (apt-get) ..."; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$sudo apt-get install -y -qq chromium >/dev/null 2>&1 || { $$sudo apt-get update -qq && $$sudo apt-get install -y -qq chromium; }

# Re-resolves the pinned stack from scratch (minutes) and records every version.
lock:
	rm -rf /tmp/maskformer-tfx-lock && $(PYTHON310) -m venv /tmp/maskformer-tfx-lock
	/tmp/maskformer-tfx-lock/bin/python -m pip install --quiet --upgrade "pip==26.3" "setuptools==84.2.1" "wheel==0.48.0"
	/tmp/maskformer-tfx-lock/bin/python -m pip install "tfx[kfp]==1.16.0" tf-models-official==2.16.0 "apache-beam[gcp]==2.59.0" \
	  kfp==2.5.0 pycocotools dill pytest pytest-xdist panopticapi-lite ruff
	/tmp/maskformer-tfx-lock/bin/python -m pip freeze --exclude-editable > requirements.lock

clean:
	rm -rf $(VENV) build *.egg-info
