# Two commands on a fresh machine: `make run` and `make test`.
# Found once (":="), quietly: a pyenv shim of a version that is not installed answers
# "command -v" but then complains when run, so its complaint goes to /dev/null too.
ifeq ($(origin PYTHON), undefined)
PYTHON := $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { command -v $$p; break; }; done)
endif
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint migrate demo values check messages bench clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed (python3.11, python3.12 or python3.13 on PATH)."; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

migrate: install
	$(MANAGE) migrate --noinput

demo: migrate
	$(MANAGE) seed_demo --if-empty

values: demo
	$(MANAGE) recompute_values --if-missing

run: values
	@echo "Serving on http://$(HOST):$(PORT)/  (demo logins: manager, inside, rep1..rep5; password cvm-demo)"
	$(MANAGE) runserver $(HOST):$(PORT)

test: install
	FAST_PASSWORD_HASHER=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

# Lint: the rule set is in pyproject.toml ([tool.ruff]); the import arrows are tests/test_house.py.
lint: install
	$(BIN)/ruff check .

check: install
	$(MANAGE) check
	$(MANAGE) makemigrations --check --dry-run

# Needs GNU gettext (apt-get install gettext). Commit the .po and the .mo: CI needs no gettext.
messages: install
	$(MANAGE) makemessages -l de --no-obsolete --ignore=.venv --ignore=staticfiles --ignore=tests --ignore=bench
	$(MANAGE) compilemessages -l de --ignore=.venv

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* staticfiles
