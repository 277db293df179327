# zeroclaim: `make run` starts the service with demo data, `make test` runs every check.
PY := .venv/bin/python
SETUP_STAMP := .venv/.stamp node_modules/.stamp

.PHONY: setup run test lint typecheck unit unit-postgresql bench contracts clean

setup:
	@scripts/setup.sh

run: setup
	$(PY) -m api.cli run --demo

test: setup lint typecheck unit unit-postgresql

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck:
	.venv/bin/mypy chain verifier claims api

unit:
	$(PY) -m pytest -q

# The tests that open the service, again with every database they do not name on a fresh
# PostgreSQL database (tests/conftest.py); the pure packages have no database.
unit-postgresql:
	ZEROCLAIM_TEST_DATABASE=postgresql $(PY) -m pytest -q tests/api tests/web tests/test_bench_load.py

bench: setup
	$(PY) -m bench

contracts: setup
	node contracts/compile.js

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
