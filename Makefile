# The two commands a developer needs are `make demo` and `make test`; both set up what they use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: demo test lint types pytest layer synth deploy bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,infra,dev,bench]'
	touch $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(STAMP) node_modules/.installed layer
	$(PY) -m examples.demo

test: lint types pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

types: $(STAMP)
	$(PY) -m mypy

pytest: $(STAMP) node_modules/.installed layer
	$(PY) -m pytest $(PYTEST_ARGS)

layer: $(STAMP)
	$(PY) -m lambda_layer.build --out build/lambda_layer.zip

synth: $(STAMP) node_modules/.installed layer
	npx --no-install cdk synth --quiet --no-notices

deploy: $(STAMP) node_modules/.installed layer
	$(PY) -m infra.deploy $(if $(TARGET),--target $(TARGET),)

bench: $(STAMP) layer
	$(PY) -m bench.run
	$(PY) -m bench.json_row

clean:
	rm -rf build cdk.out .pytest_cache .mypy_cache .ruff_cache
