# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
export MICROLEND_DATA_DIR ?= var

.PHONY: demo test test-quick lint format bench venv browser clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $@

## Run the platform with a demo bank on an embedded SQLite database at http://127.0.0.1:8000
demo: venv
	$(BIN)/microlend demo run

## Browser for the end-to-end tests (Debian's chromium; Playwright drives it)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is not installed: browser tests will be skipped (install Debian's chromium)"; fi; }

## The whole suite, on SQLite and PostgreSQL (127.0.0.1:5432, database test)
test: venv browser
	$(BIN)/lint-imports
	$(BIN)/pytest -n 2 --dist loadgroup -q

test-quick: venv
	MICROLEND_TEST_BACKENDS=sqlite $(BIN)/pytest -q -m "not slow and not browser" -x

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format src tests bench

bench: venv
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
