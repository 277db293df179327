# zeroclaim: `make run` starts the service with demo data, `make test` runs every check.
PY := .venv/bin/python
SETUP_STAMP := .venv/.stamp node_modules/.stamp

.PHONY: setup run test lint typecheck unit bench contracts clean

setup:
	@scripts/setup.sh

run: setup
	$(PY) -m api.cli run --demo

test: setup lint typecheck unit

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck:
	.venv/bin/mypy chain verifier claims api

unit:
	$(PY) -m pytest -q

bench: setup
	$(PY) -m bench

contracts: setup
	node contracts/compile.js

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
