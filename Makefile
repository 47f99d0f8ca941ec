# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup lint typecheck bench clean check-views

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --no-compile -e '.[dev,dask]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/creditgraph demo

# Neo4j's own Cypher parser (npm), so every statement we can send is checked in the tests.
CYPHER_LINT := tools/cypher-lint/node_modules/@neo4j-cypher/language-support/package.json

$(CYPHER_LINT): tools/cypher-lint/package.json tools/cypher-lint/package-lock.json
	npm ci --prefix tools/cypher-lint --no-audit --no-fund --loglevel=error
	touch $@

test: setup $(CYPHER_LINT)
	$(BIN)/pytest -q --runslow

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/python tools/typecheck.py

# The notebooks' interactive view in headless Chromium (Debian's `chromium`; not needed by
# `make test`): fails unless the graph renders; writes the README's pictures to docs/notebooks/.
check-views: setup
	$(BIN)/python tools/check_views.py

bench: setup
	$(BIN)/python benchmarks/pipeline.py --users 100000

clean:
	rm -rf creditgraph-data .pytest_cache
