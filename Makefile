# The two commands of the README: `make up` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: up down test lint unit bench images prereqs venv clean lock

# constraints.txt pins the tested dependency set (`make lock` renews it)
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# Host tools the offline image recipes need: debootstrap (base image) and cargo (S3 server,
# backend), and the headless browser the `devenv ui` tests drive. Installed when we are root
# and they are missing; otherwise devenv names the fix.
prereqs:
	@command -v debootstrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing debootstrap (needed once, to build the base image)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; \
	  else echo "note: debootstrap is missing; run 'sudo apt-get install debootstrap' if images must be built"; fi; }
	@command -v cargo >/dev/null 2>&1 || echo "note: cargo is missing; install Rust to build the backend image"
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium and chromium-driver (the browser the \`devenv ui\` tests drive)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "note: chromium is missing; run 'sudo apt-get install chromium chromium-driver' for the ui tests"; fi; }

up: venv prereqs
	$(BIN)/devenv up

down: venv
	$(BIN)/devenv down

images: venv prereqs
	$(BIN)/devenv images build

lint: venv
	$(BIN)/ruff check devenv tests bench
	$(BIN)/ruff format --check devenv tests bench
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit -q

test: venv prereqs lint
	$(BIN)/pytest -q

bench: venv
	$(BIN)/python bench/bench.py

# Re-resolve every dependency (runtime and the test extra) to its newest allowed release and
# pin the result in constraints.txt; then `make test`, and commit both if it passes.
lock: venv
	$(BIN)/pip install -q pip-tools
	$(BIN)/pip-compile -q --upgrade --strip-extras --extra test --no-emit-index-url \
	  --no-emit-trusted-host --no-emit-find-links --output-file constraints.txt pyproject.toml
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
