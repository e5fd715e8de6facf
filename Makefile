# The two commands of the README: `make up` and `make test`. Everything else is a helper.
# `make up` installs what `devenv up` needs and nothing else; `make test` adds the test tools
# (and, as root, the headless browser the ui tests drive).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# constraints.txt pins the tested dependency set (`make lock` renews it)
PIP    := $(BIN)/pip install -q -c constraints.txt

.PHONY: up down test lint unit bench images base-tools browser venv test-venv clean lock

# devenv and its runtime dependencies only
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	touch $@

# ... plus the test tools (pytest, ruff, mypy, boto3, selenium, ...)
$(VENV)/.test-installed: $(VENV)/.installed
	$(PIP) -e '.[test]'
	touch $@

venv: $(VENV)/.installed
test-venv: $(VENV)/.test-installed

# apt as root only when this machine's offline path needs it: no registry serves
# debian:bookworm-slim, so the plan builds the base image with debootstrap, which is missing.
# (Without root, devenv builds it with mmdebstrap in a user namespace, or says what to do.)
base-tools: venv
	@if [ "$$(id -u)" = 0 ] && ! command -v debootstrap >/dev/null 2>&1 \
	  && $(BIN)/devenv up --dry-run 2>/dev/null | grep -q '^build-image  *base '; then \
	  echo "installing debootstrap: no registry answers, so this machine builds the base image"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; \
	fi

# The headless browser the `devenv ui` tests drive: installed when we are root and it is
# missing; otherwise a note names the fix (those tests then skip).
browser:
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium and chromium-driver (the browser the \`devenv ui\` tests drive)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "note: chromium is missing; run 'sudo apt-get install chromium chromium-driver' for the ui tests"; fi; }

up: venv base-tools
	$(BIN)/devenv up

down: venv
	$(BIN)/devenv down

images: venv base-tools
	$(BIN)/devenv images build

lint: test-venv
	$(BIN)/ruff check devenv tests bench
	$(BIN)/ruff format --check devenv tests bench
	$(BIN)/mypy

unit: test-venv
	$(BIN)/pytest tests/unit -q

test: test-venv browser base-tools lint
	$(BIN)/pytest -q

bench: test-venv
	$(BIN)/python bench/bench.py

# Re-resolve every dependency (runtime and the test extra) to its newest allowed release and
# pin the result in constraints.txt; then `make test`, and commit both if it passes.
lock: venv
	$(BIN)/pip install -q pip-tools
	$(BIN)/pip-compile -q --upgrade --strip-extras --extra test --no-emit-index-url \
	  --no-emit-trusted-host --no-emit-find-links --output-file constraints.txt pyproject.toml
	$(PIP) -e '.[test]'

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
