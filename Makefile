# The two commands a developer needs are `make demo` and `make test`; both set up what they use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
INFRA_STAMP := $(VENV)/.installed-infra
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: demo test check lint types pytest fast pythons layer synth deploy bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e . --group dev
	touch $(STAMP)

# synth and deploy need the CDK app and the local endpoint only, not the test and bench tools;
# both build the layer zip themselves (infra.app and infra.deploy call ensure_layer).
$(INFRA_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e . --group infra
	touch $(INFRA_STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(STAMP) node_modules/.installed layer
	$(PY) -m examples.demo

# The whole suite, as CI runs it: lint, types, every test, and the library's tests on every
# supported Python (nox).
test: lint types pytest pythons

# The fast loop: lint, types and every test not marked slow; no npm, no CDK CLI, no layer build.
check: lint types fast

fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

pythons: $(STAMP)
	$(PY) -m nox

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

types: $(STAMP)
	$(PY) -m mypy

pytest: $(STAMP) node_modules/.installed layer
	$(PY) -m pytest $(PYTEST_ARGS)

layer: $(STAMP)
	$(PY) -m lambda_layer.build --out build/lambda_layer.zip

synth: $(INFRA_STAMP) node_modules/.installed
	npx --no-install cdk synth --quiet --no-notices

deploy: $(INFRA_STAMP) node_modules/.installed
	$(PY) -m infra.deploy $(if $(TARGET),--target $(TARGET),)

# Every figure of the performance issue in one go: the contenders side by side on a quiet machine,
# then again beside a process that keeps one core busy (bench/results/neighbour/), then the JSON
# formatter's row, Lambda's latency and the fleet sharing one account's quotas.
bench: $(STAMP) layer
	$(PY) -m bench.run
	$(PY) -m bench.run --neighbour --out bench/results/neighbour
	$(PY) -m bench.json_row
	$(PY) -m bench.lambda_latency
	$(PY) -m bench.fleet

clean:
	rm -rf build cdk.out .pytest_cache .mypy_cache .ruff_cache
