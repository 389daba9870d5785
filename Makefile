# Two commands a newcomer needs: `make run` (the demo stack) and `make test` (the suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MANAGE := $(BIN)/python manage.py

.PHONY: run test lint fmt install compilemessages messages migrate worker beat simulator check clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## The translations' .mo files (not in git), built from locale/*/LC_MESSAGES/*.po with GNU
## msgfmt, or with polib (installed with the dev extras) on a machine without gettext.
compilemessages: $(STAMP)
	if command -v msgfmt >/dev/null 2>&1; then $(MANAGE) compilemessages --ignore=$(VENV); \
	else $(BIN)/python -c "import glob, polib; [polib.pofile(p).save_as_mofile(p[:-3] + '.mo') for p in glob.glob('locale/*/LC_MESSAGES/*.po')]"; fi

install: $(STAMP) compilemessages

## Re-extract every marked string into locale/{en,id} (then translate the new `id` entries).
messages: $(STAMP)
	$(MANAGE) makemessages -l id -l en --no-obsolete --ignore=$(VENV) --ignore=var --ignore=node_modules
	$(MANAGE) makemessages -d djangojs -l id -l en --no-obsolete --ignore=$(VENV) --ignore=var --ignore='static/vendor/*'

migrate: install
	mkdir -p var
	$(MANAGE) migrate --noinput

## The portal with worker, beat and panel simulator on SQLite and the filesystem broker.
run: migrate
	$(MANAGE) seed_catalog
	$(MANAGE) setup_periodic_tasks
	$(MANAGE) demo_admin
	$(MANAGE) run_dev_stack

## The whole suite, on the PostgreSQL and Redis of this machine (see config/django/test.py).
test: install
	DATABASE_URL=sqlite:///:memory: $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest

## Style, the app graph of docs/adr/0001 (.importlinter: layers, HTTP/Stripe only in clients),
## and types in the services and selectors (mypy with django-stubs, [tool.mypy] in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

worker: $(STAMP)
	$(BIN)/celery -A config worker -l info -Q default,provisioning,billing &
	$(BIN)/celery -A config worker -l info -Q notifications -P threads -c 16

beat: $(STAMP)
	$(BIN)/celery -A config beat -l info --scheduler django_celery_beat.schedulers:DatabaseScheduler

simulator: $(STAMP)
	$(MANAGE) run_panel_simulator --port 8081

clean:
	rm -rf var .pytest_cache .mypy_cache
