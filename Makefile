# The two commands a fresh machine needs: `make demo` and `make test` (both set themselves up).
.PHONY: setup demo test test-fast lint bench clean

VENV := .venv
PYTEST_ARGS ?=

setup:
	@scripts/setup.sh

demo: setup
	$(VENV)/bin/trustwall lab demo

test: setup
	$(VENV)/bin/ruff check src tests bench ansible_collections
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-fast: setup
	$(VENV)/bin/pytest -m "not lab and not slow" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests bench ansible_collections

bench: setup
	$(VENV)/bin/python -m bench $(BENCH)

clean:
	rm -rf $(VENV) .venv-mitm build *.egg-info
