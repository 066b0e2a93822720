# Two commands do everything on a fresh machine:
#   make run    walkthrough + every notebook, executed offline on the embedded defaults
#   make test   unit and HTTP tests, then every notebook under nbval (strict), then the
#               CrewAI suite (make test-crewai)
# Both build .venv from requirements.txt first (once; again when requirements change), and
# .venv-crewai from requirements-crewai.txt: CrewAI needs openai<3 and pydantic<2.13.

PYTHON ?= python3
# The official AxonFlow SDK pings its vendor on first use unless this is off; nothing here
# may leave the machine.
export AXONFLOW_TELEMETRY ?= off
# CrewAI sends OpenTelemetry spans to its vendor, offers to upload traces and asks PyPI for
# new versions unless these are set, and on import copies .env into its environment unless
# python-dotenv is switched off (the same list as CREWAI_QUIET in helpers/settings.py).
export PYTHON_DOTENV_DISABLED := true
export CREWAI_DISABLE_TELEMETRY := true
export CREWAI_DISABLE_TRACKING := true
export OTEL_SDK_DISABLED := true
export CREWAI_TRACING_ENABLED := false
export CREWAI_DISABLE_VERSION_CHECK := true
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# CrewAI's own environment: its notebooks and tests live in crewai_env/ folders, which the
# main environment does not collect.
CREW_VENV  := .venv-crewai
CREW_PY    := $(CREW_VENV)/bin/python
CREW_STAMP := $(CREW_VENV)/.installed-stamp
CREW_NOTEBOOKS := notebooks/crewai_env
# CrewAI writes each kickoff's task outputs under the user's data folder and a key file under
# ~/.local/share: keep both in build/.
CREW_HOME := HOME=$(CURDIR)/build/crewai-home XDG_DATA_HOME=$(CURDIR)/build/crewai-home/data XDG_CONFIG_HOME=$(CURDIR)/build/crewai-home/config

.PHONY: run test test-crewai lab bench notebooks lint format clean help

help:
	@echo "make run        run the walkthrough and execute every notebook offline (outputs in build/)"
	@echo "make test       unit + HTTP tests, then the notebooks under nbval"
	@echo "make test-crewai  the CrewAI tests and notebook in their own env (.venv-crewai)"
	@echo "make lab        open the notebooks in JupyterLab"
	@echo "make bench      gateway, pipeline and proxy benchmarks, JSON reports in reports/"
	@echo "make notebooks  re-execute notebooks in place (refresh committed outputs)"
	@echo "make lint       import contracts (layers of helpers/), then ruff over helpers, tests and notebooks"

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

$(CREW_STAMP): requirements-crewai.txt pyproject.toml
	$(PYTHON) -m venv $(CREW_VENV)
	$(CREW_PY) -m pip install --quiet --upgrade pip
	$(CREW_PY) -m pip install --quiet -r requirements-crewai.txt
	@touch $(CREW_STAMP)

run: $(STAMP) $(CREW_STAMP)
	$(PY) -m helpers.walkthrough --provider openai
	@echo
	$(PY) -m helpers.walkthrough --provider anthropic
	@echo
	$(PY) -m helpers.nbrun --build build
	$(CREW_HOME) $(CREW_PY) -m helpers.nbrun --build build $(CREW_NOTEBOOKS)/*.ipynb

SANITIZER := build/nbval_sanitize.cfg
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with $(SANITIZER)

# Hermetic: the root conftest.py sets NOTEBOOKS_OFFLINE=1 and drops every key and agent URL,
# so a .env cannot switch a test or a notebook to a paid API. The tests run on two workers
# (pytest-xdist; each test file stays on one worker, every service binds port 0 and every
# file lives under the worker's own tmp_path); the notebooks then run one at a time, since
# the measuring ones time their own work.
test: $(STAMP)
	@$(PY) -m helpers.nbrun --sanitizer $(SANITIZER)
	$(PY) -m pytest -n 2 --dist loadfile tests
	$(PY) -m pytest notebooks $(NBVAL)

# The CrewAI suite, with the CrewAI environment's python and kernel.
test-crewai: $(CREW_STAMP)
	@$(CREW_PY) -m helpers.nbrun --sanitizer $(SANITIZER)
	$(CREW_PY) -m pytest tests/crewai_env $(CREW_NOTEBOOKS) $(NBVAL)

# The CrewAI notebook needs .venv-crewai: run it with make notebooks or make test-crewai.
lab: $(STAMP)
	$(PY) -m jupyter lab notebooks/

bench: $(STAMP)
	$(PY) -m helpers.bench gateway
	$(PY) -m helpers.bench pipeline
	$(PY) -m helpers.bench proxy
	$(PY) -m helpers.bench replies
	$(PY) -m helpers.bench service

notebooks: $(STAMP) $(CREW_STAMP)
	$(PY) -m helpers.nbrun --in-place
	$(CREW_HOME) $(CREW_PY) -m helpers.nbrun --in-place $(CREW_NOTEBOOKS)/*.ipynb

lint: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m ruff check conftest.py helpers tests notebooks
	$(PY) -m ruff format --check conftest.py helpers tests notebooks

format: $(STAMP)
	$(PY) -m ruff format conftest.py helpers tests
	$(PY) -m ruff check --fix conftest.py helpers tests

clean:
	rm -rf build reports .pytest_cache
