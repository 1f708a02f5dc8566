# isvc — `make serve` runs the churn example on Ray Serve; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARTIFACTS ?= artifacts/churn
SENTIMENT ?= artifacts/sentiment
MULTIMODEL ?= artifacts/multimodel
RAY_TMPDIR ?= /tmp/isvc-ray
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
# isvc's Ray Serve settings, one place: pipelines/serve.env (KEY=VALUE); a value already in
# the environment wins.
SERVE_ENV := $(shell sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*=.*\)$$/\1/p' pipelines/serve.env)
$(foreach kv,$(SERVE_ENV),$(eval export $(firstword $(subst =, ,$(kv))) ?= $(word 2,$(subst =, ,$(kv)))))

.PHONY: install bytecode artifacts serve serve-collocated serve-sentiment test test-unit test-integration lint bench clean

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q uv==0.13.9
	# uv installs the pinned set in seconds; torch 2.13.0's CPU build comes from this machine's disk.
	$(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) $(FIND_LINKS) \
		-c requirements.lock torch==2.13.0+cpu -e ".[test]"
	touch $@

install: $(VENV)/.installed bytecode

# Every Ray worker imports ray.serve, pandas, sklearn and isvc anew; from source that is ~3x the
# CPU of reading bytecode (import ray.serve: 8.6 s against 2.8 s here). Installs write the
# packages' bytecode (--compile-bytecode, above); this writes isvc's own, since a machine with
# PYTHONDONTWRITEBYTECODE=1 never caches it on import. Stale files are recompiled (by mtime).
PACKAGES := pipelines predictors transformers_ explainers
bytecode: | $(VENV)/.installed
	@$(PY) -m compileall -q $(PACKAGES)

$(ARTIFACTS)/predictor/model.joblib: scripts/build_churn.py | $(VENV)/.installed
	$(PY) scripts/build_churn.py $(ARTIFACTS)

$(SENTIMENT)/predictor/config.json: scripts/build_sentiment.py | $(VENV)/.installed
	$(PY) scripts/build_sentiment.py $(SENTIMENT)

$(MULTIMODEL)/catalog.json: scripts/build_multimodel.py | $(VENV)/.installed
	$(PY) scripts/build_multimodel.py $(MULTIMODEL)

artifacts: $(ARTIFACTS)/predictor/model.joblib $(SENTIMENT)/predictor/config.json $(MULTIMODEL)/catalog.json

serve: install artifacts
	mkdir -p $(RAY_TMPDIR)
	RAY_TMPDIR=$(RAY_TMPDIR) $(VENV)/bin/serve run configs/churn.yaml

serve-collocated: install artifacts
	mkdir -p $(RAY_TMPDIR)
	RAY_TMPDIR=$(RAY_TMPDIR) $(VENV)/bin/serve run configs/churn-collocated.yaml

serve-sentiment: install artifacts
	mkdir -p $(RAY_TMPDIR)
	RAY_TMPDIR=$(RAY_TMPDIR) $(VENV)/bin/serve run configs/sentiment.yaml

test: install
	$(PY) -m pytest -q

test-unit: install
	$(PY) -m pytest -q --ignore=tests/integration

test-integration: install
	$(PY) -m pytest -q tests/integration

# The TypeScript client (clients/typescript): npm ci from its package-lock.json when that changed
# (the stamp is the lock's sha256, as tests/integration/test_1b_typescript_client.py checks), then tsc.
TS_CLIENT := clients/typescript
.PHONY: ts-client ts-client-test
$(TS_CLIENT)/node_modules/.isvc-package-lock.sha256: $(TS_CLIENT)/package-lock.json
	cd $(TS_CLIENT) && npm ci --no-audit --no-fund --prefer-offline --ignore-scripts
	sha256sum $< | cut -d' ' -f1 > $@

ts-client: $(TS_CLIENT)/node_modules/.isvc-package-lock.sha256
	cd $(TS_CLIENT) && npm run build

# The wire tests; with KSERVE_URL (e.g. http://localhost:8000 beside `make serve`) the live ones too.
ts-client-test: $(TS_CLIENT)/node_modules/.isvc-package-lock.sha256
	cd $(TS_CLIENT) && npm test

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: install artifacts
	$(PY) benchmarks/run.py
	$(PY) benchmarks/explain.py
	$(PY) benchmarks/batching.py
	$(PY) benchmarks/multimodel.py
	$(PY) benchmarks/rollout.py

clean:
	rm -rf $(VENV) artifacts .bench .pytest_cache
