# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export MICROLEND_DATA_DIR ?= var
# compiled modules are kept (__pycache__, ignored by git): every later start, test worker and CLI subprocess
# imports in ~2.4 s instead of ~6 s, even where the environment asks Python not to write them
export PYTHONDONTWRITEBYTECODE =
# uv installs the environment in seconds; it is taken from PATH, else installed once with pip into .tools/uv.
# pip is the fallback when uv cannot be had or fails (`make demo NO_UV=1` forces it).
UV_HOME ?= .tools/uv
UV ?= $(shell command -v uv 2>/dev/null)

# $(call install,EXTRAS): create the venv if it is missing and install the package (editable) with EXTRAS.
define install
$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"' || exit 1; \
uv="$(UV)"; \
if [ -z "$(NO_UV)" ] && [ -z "$$uv" ]; then \
  [ -x $(UV_HOME)/bin/uv ] || $(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(UV_HOME) uv \
    >/dev/null 2>&1 || true; \
  [ -x $(UV_HOME)/bin/uv ] && uv=$(UV_HOME)/bin/uv; \
fi; \
if [ -z "$(NO_UV)" ] && [ -n "$$uv" ]; then \
  echo "installing the package$(if $(1), with [$(1)],) with uv"; \
  { [ -x $(BIN)/python ] || "$$uv" venv --quiet --python "$(PYTHON)" $(VENV); } && \
  "$$uv" pip install --quiet --python $(BIN)/python -e ".$(if $(1),[$(1)],)" && exit 0; \
  echo "uv could not install the package: installing with pip"; \
fi; \
{ [ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV); } && \
{ $(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --upgrade >/dev/null; } && \
$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip && \
$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".$(if $(1),[$(1)],)"
endef

.PHONY: demo test test-quick lint format bench venv browser java clean

## The environment for development and the tests: the package with its `dev` extra
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(call install,dev)
	@touch $@

# What the demo needs: the package alone (a development environment already has it)
$(VENV)/.installed-demo: pyproject.toml
	@if [ -f $(VENV)/.installed ] && [ ! pyproject.toml -nt $(VENV)/.installed ]; then :; else $(call install,); fi
	@touch $@

## Run the platform with a demo bank on an embedded SQLite database at http://127.0.0.1:8000
## (`make demo PORT=8001` for another port; the CLI is then at .venv/bin/microlend)
demo: $(VENV)/.installed-demo
	$(BIN)/microlend demo run --host $(HOST) --port $(PORT)

## Browser for the end-to-end tests (Debian's chromium; Playwright drives it)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is not installed: browser tests will be skipped (install Debian's chromium)"; fi; }

## Java for the Spark engine's tests (Debian's openjdk-17-jre-headless; PySpark comes with the dev extra)
java:
	@command -v java >/dev/null 2>&1 || [ -x "$$JAVA_HOME/bin/java" ] || { \
	  if [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	  else echo "java is not installed: Spark tests will be skipped (install Debian's openjdk-17-jre-headless)"; fi; }

## The whole suite, on SQLite and PostgreSQL (127.0.0.1:5432, database test), and on both batch engines
test: venv browser java
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
	rm -rf $(VENV) .tools var .pytest_cache .mypy_cache .ruff_cache
