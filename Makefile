# stmails: `make run` starts the server, `make test` runs every check CI runs.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: run test lint typecheck unit setup bench clean i18n lock docs

$(STAMP): pyproject.toml requirements.lock scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/stmails serve

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	bash scripts/test.sh

test: lint typecheck unit

# Extract the interface's messages (babel.cfg) and update the en and zh_CN catalogs; then
# translate the new zh_CN entries (tests/web/ui/test_i18n.py fails while any is missing).
I18N := src/stmails/web/i18n
i18n: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output \
		-o $(I18N)/messages.pot .
	$(BIN)/pybabel update -i $(I18N)/messages.pot -d $(I18N) -D messages \
		--no-fuzzy-matching --ignore-obsolete

# Re-resolves requirements.lock (every package at the newest version pyproject.toml allows);
# commit the result, then `make setup` installs exactly it.
lock: $(STAMP)
	$(BIN)/pip install -q pip-tools
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --upgrade --extra dev \
		--strip-extras --no-emit-index-url --no-emit-find-links --output-file requirements.lock \
		pyproject.toml

# Regenerates the pages made from the code (tests check that they are up to date).
docs: $(STAMP)
	$(BIN)/stmails config reference --output docs/configuration.md

bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
