# The README's two commands: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: run dev test setup lint format bench model

$(STAMP): requirements.txt
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py compile_translations

# Production mode over plain HTTP on this machine (debug off; koboldchat/run_env.py).
run: setup
	$(PY) -m koboldchat.launcher

# The same with Django's debug pages and auto-refreshed static files.
dev: setup
	DJANGO_DEBUG=on $(PY) -m koboldchat.launcher

test: setup
	$(PY) -m pytest -q -rs

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	$(PY) bench/run_all.py

model: $(STAMP)
	$(PY) -m koboldchat.embedded_model install
