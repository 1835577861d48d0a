# make demo: run the example project on SQLite (migrate, enqueue, work, show).
# make test: run the test suite; DATABASE_URL picks the database (SQLite by
#            default), DJANGO pins another Django, e.g. DJANGO="Django>=6.0,<6.1".
PYTHON ?= $(shell scripts/find-python)
VENV ?= .venv
DJANGO ?= Django>=6.1,<6.2
DATABASE_URL ?=
EXTRAS = dev,postgres,cloudtasks,metrics$(if $(findstring mysql,$(DATABASE_URL)),$(comma)mysql)
comma := ,
PYTEST_ARGS ?=

.PHONY: demo test lint clean

$(VENV)/.installed-$(EXTRAS): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e ".[$(EXTRAS)]" "$(DJANGO)"
	touch $@

.venv-demo/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-demo
	.venv-demo/bin/python -m pip install -q -e .
	touch $@

demo: .venv-demo/.installed
	rm -f example/db.sqlite3
	cd example && ../.venv-demo/bin/python manage.py migrate --verbosity 0
	cd example && ../.venv-demo/bin/python manage.py enqueue_examples
	cd example && ../.venv-demo/bin/python manage.py run_database_tasks
	@echo "Waiting for the delayed task to come due..."
	@sleep 3
	cd example && ../.venv-demo/bin/python manage.py run_database_tasks
	cd example && ../.venv-demo/bin/python manage.py show_results

test: $(VENV)/.installed-$(EXTRAS)
	DATABASE_URL="$(DATABASE_URL)" $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-$(EXTRAS)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	DJANGO_SETTINGS_MODULE=tests.settings $(VENV)/bin/python -m django makemigrations --check --dry-run --verbosity 1

clean:
	rm -rf .venv .venv-* example/db.sqlite3 tests/*.sqlite3*
