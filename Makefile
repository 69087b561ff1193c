# One command runner. `make run` starts the whole system; `make test` runs the test suite.
PYTHON ?= python3
VENV_PY := .venv/bin/python

.PHONY: run test install lint typecheck format check-migrations schema bench

run:
	$(PYTHON) config/bootstrap.py run

test:
	$(PYTHON) config/bootstrap.py test $(ARGS)

install:
	$(PYTHON) config/bootstrap.py install

lint: install
	$(VENV_PY) -m ruff check .
	$(VENV_PY) -m ruff format --check .
	$(VENV_PY) -m mypy .

typecheck: install
	$(VENV_PY) -m mypy .

format: install
	$(VENV_PY) -m ruff format .
	$(VENV_PY) -m ruff check --fix .

check-migrations: install
	$(VENV_PY) manage.py makemigrations --check --dry-run

schema: install
	$(VENV_PY) manage.py spectacular --validate --fail-on-warn --file var/openapi.yaml

bench: install
	$(VENV_PY) manage.py loadtest $(ARGS)
