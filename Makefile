# Two commands do everything on a fresh machine:
#   make run    walkthrough + every notebook, executed offline on the embedded defaults
#   make test   unit and HTTP tests, then every notebook under nbval (strict)
# Both build .venv from requirements.txt first (once; again when requirements change).

PYTHON ?= python3
# The official AxonFlow SDK pings its vendor on first use unless this is off; nothing here
# may leave the machine.
export AXONFLOW_TELEMETRY ?= off
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lab bench notebooks lint format clean help

help:
	@echo "make run        run the walkthrough and execute every notebook offline (outputs in build/)"
	@echo "make test       unit + HTTP tests, then the notebooks under nbval"
	@echo "make lab        open the notebooks in JupyterLab"
	@echo "make bench      gateway, pipeline and proxy benchmarks, JSON reports in reports/"
	@echo "make notebooks  re-execute notebooks in place (refresh committed outputs)"
	@echo "make lint       import contracts (layers of helpers/), then ruff over helpers, tests and notebooks"

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m helpers.walkthrough --provider openai
	@echo
	$(PY) -m helpers.walkthrough --provider anthropic
	@echo
	$(PY) -m helpers.nbrun --build build

SANITIZER := build/nbval_sanitize.cfg
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with $(SANITIZER)

# Hermetic: the root conftest.py sets NOTEBOOKS_OFFLINE=1 and drops every key and agent URL,
# so a .env cannot switch a test or a notebook to a paid API.
test: $(STAMP)
	@$(PY) -m helpers.nbrun --sanitizer $(SANITIZER)
	$(PY) -m pytest tests notebooks $(NBVAL)

lab: $(STAMP)
	$(PY) -m jupyter lab notebooks/

bench: $(STAMP)
	$(PY) -m helpers.bench gateway
	$(PY) -m helpers.bench pipeline
	$(PY) -m helpers.bench proxy
	$(PY) -m helpers.bench service

notebooks: $(STAMP)
	$(PY) -m helpers.nbrun --in-place

lint: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m ruff check conftest.py helpers tests notebooks
	$(PY) -m ruff format --check conftest.py helpers tests notebooks

format: $(STAMP)
	$(PY) -m ruff format conftest.py helpers tests
	$(PY) -m ruff check --fix conftest.py helpers tests

clean:
	rm -rf build reports .pytest_cache
