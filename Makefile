# The two commands a fresh machine needs: `make demo` and `make test` (both set themselves up).
.PHONY: setup demo test test-fast lint package bench clean

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

# Build the sdist and wheel, check them, smoke-test the wheel in a fresh venv (CI runs this).
# `make package KEEP=dist` keeps the artefacts in dist/.
package: setup
	scripts/package-check.sh

bench: setup
	$(VENV)/bin/python -m bench $(BENCH)

clean:
	rm -rf $(VENV) .venv-mitm build dist src/*.egg-info *.egg-info
