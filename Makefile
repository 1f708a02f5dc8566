# isvc — `make serve` runs the churn example on Ray Serve; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARTIFACTS ?= artifacts/churn
RAY_TMPDIR ?= /tmp/isvc-ray
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
# HAProxy + direct ingress: Ray's own proxy costs ~6 ms CPU per request (DESIGN §4).
export RAY_SERVE_ENABLE_HA_PROXY ?= 1
# gRPC for ingress → predictor handle calls: ~1.8x the calls/s of Ray's default path on 2 cores.
export RAY_SERVE_USE_GRPC_BY_DEFAULT ?= 1
# Ray's per-request HTTP metrics in HAProxy mode: one log line per request parsed in Python by
# HAProxyManager (~0.1 ms CPU per request). HAProxy's own Prometheus exporter (:9101) stays on.
export RAY_SERVE_HAPROXY_METRICS_ENABLED ?= 0
# User code and the handle router on the replica's own event loop: no cross-thread hand-offs
# per request (+5-15% req/s here). An `async def` hook that blocks now also delays health checks.
export RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD ?= 0
export RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP ?= 0

.PHONY: install artifacts serve serve-collocated test test-unit test-integration lint bench clean

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q uv==0.13.9
	# uv installs the pinned set in seconds; torch 2.13.0's CPU build comes from this machine's disk.
	$(VENV)/bin/uv pip install -q --python $(PY) $(FIND_LINKS) \
		-c requirements.lock torch==2.13.0+cpu -e ".[test]"
	touch $@

install: $(VENV)/.installed

$(ARTIFACTS)/predictor/model.joblib: scripts/build_churn.py | $(VENV)/.installed
	$(PY) scripts/build_churn.py $(ARTIFACTS)

artifacts: $(ARTIFACTS)/predictor/model.joblib

serve: install artifacts
	mkdir -p $(RAY_TMPDIR)
	RAY_TMPDIR=$(RAY_TMPDIR) $(VENV)/bin/serve run configs/churn.yaml

serve-collocated: install artifacts
	mkdir -p $(RAY_TMPDIR)
	RAY_TMPDIR=$(RAY_TMPDIR) $(VENV)/bin/serve run configs/churn-collocated.yaml

test: install
	$(PY) -m pytest -q

test-unit: install
	$(PY) -m pytest -q --ignore=tests/integration

test-integration: install
	$(PY) -m pytest -q tests/integration

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: install artifacts
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) artifacts .bench .pytest_cache
