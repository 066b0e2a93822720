# Two commands do everything on a fresh machine:
#   make run    walkthrough + every notebook, executed offline on the embedded defaults
#   make test   unit and HTTP tests and every notebook under nbval (strict), in parallel
# Both build .venv from the lock requirements.txt first (once; again when it changes), and
# .venv-crewai from requirements-crewai.txt: CrewAI needs openai<3 and pydantic<2.13.
# The locks pin every package with hashes; `make lock` regenerates them from the dependencies
# pyproject.toml declares (docs/toolchain.md).

PYTHON ?= python3
# The official AxonFlow SDK pings its vendor on first use unless this is off; nothing here
# may leave the machine.
export AXONFLOW_TELEMETRY ?= off
# CrewAI sends OpenTelemetry spans to its vendor, offers to upload traces and asks PyPI for
# new versions unless these are set, and on import copies .env into its environment unless
# python-dotenv is switched off (the same list as CREWAI_QUIET in helpers/settings.py).
export PYTHON_DOTENV_DISABLED := true
# A run starts hundreds of Python processes (test workers, gateways, stand-ins, notebook
# kernels): each compiles this project's modules once into __pycache__ (ignored by git)
# instead of from source every time, even where the environment says not to write bytecode.
export PYTHONDONTWRITEBYTECODE :=
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

.PHONY: run test test-crewai test-live lab lab-crewai bench bench-peers notebooks lint format lock clean help

help:
	@echo "make run        run the walkthrough and execute every notebook offline (outputs in build/)"
	@echo "make test       unit + HTTP tests and the notebooks under nbval, in parallel"
	@echo "make test-crewai  the CrewAI tests and notebook in their own env (.venv-crewai)"
	@echo "make test-live  every notebook against the embedded gateway in AxonFlow compatibility mode"
	@echo "make lab        open the notebooks in JupyterLab (start with 01)"
	@echo "make lab-crewai build .venv-crewai, register its kernel, open notebook 13"
	@echo "make bench      gateway, pipeline and proxy benchmarks, JSON reports in reports/"
	@echo "make bench-peers  this gateway beside LiteLLM and Portkey (builds them in build/peers/)"
	@echo "make notebooks  re-execute notebooks in place (refresh committed outputs)"
	@echo "make lint       ruff, mypy, import contracts, notebook metadata, key-shaped strings (pre-commit)"
	@echo "make lock       regenerate the locks (requirements*.txt) from pyproject.toml"

# Every package from the lock, each checked against its hash, then this project's helper
# package (importable from any folder) without dependencies: the lock already holds them.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

$(CREW_STAMP): requirements-crewai.txt pyproject.toml
	$(PYTHON) -m venv $(CREW_VENV)
	$(CREW_PY) -m pip install --quiet --upgrade pip
	$(CREW_PY) -m pip install --quiet --require-hashes -r requirements-crewai.txt
	$(CREW_PY) -m pip install --quiet --no-deps -e .
	@touch $(CREW_STAMP)

# Regenerate both locks from pyproject.toml: one resolution valid on every OS and Python >= 3.11,
# with hashes. Versions already locked are kept unless a declaration moved past them; to take
# newer releases, `make lock LOCK_FLAGS=--upgrade` (or `--upgrade-package NAME`).
LOCK := $(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --quiet --custom-compile-command "make lock" $(LOCK_FLAGS)
lock: $(STAMP)
	$(LOCK) --extra notebooks --group dev -o requirements.txt
	$(LOCK) --extra crewai --group test -o requirements-crewai.txt

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
# so a .env cannot switch a test or a notebook to a paid API. Tests and notebooks run in one
# session on TEST_WORKERS workers (pytest-xdist): each file, and each notebook, stays on one
# worker; every service binds port 0 and every file lives under the worker's own tmp_path.
# More workers than cores, since most tests wait on servers they started. Files are handed
# out in the order given (not largest first), so the notebooks, the longest files, start
# first instead of last. Their measured figures are not compared
# (nbval-ignore-output), so sharing the machine changes no verdict; committed figures come
# from `make notebooks` on a quiet machine.
TEST_WORKERS ?= 4
test: $(STAMP)
	@$(PY) -m helpers.nbrun --sanitizer $(SANITIZER)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder notebooks tests $(NBVAL)

# The CrewAI suite, with the CrewAI environment's python and kernel.
test-crewai: $(CREW_STAMP)
	@$(CREW_PY) -m helpers.nbrun --sanitizer $(SANITIZER)
	$(CREW_PY) -m pytest tests/crewai_env $(CREW_NOTEBOOKS) $(NBVAL)

# Every notebook, CrewAI's included, against the embedded gateway in compatibility mode
# (--compat axonflow: a stock AxonFlow agent on the wire, docs/compat.md) as if it were a live
# agent: helpers.live starts it on loopback and sets AXONFLOW_AGENT_URL, with
# NOTEBOOKS_OFFLINE=1 and NOTEBOOKS_LIVE_AGENT=1 so that this one URL, and no .env or key,
# reaches the notebooks. Outputs are not compared (they differ by design); an error or a
# failed assertion fails the run. make test stays hermetic: it never sets these.
LIVE_BUILD := build/live
test-live: $(STAMP) $(CREW_STAMP)
	$(PY) -m helpers.live $(PY) -m helpers.nbrun --build $(LIVE_BUILD)
	$(CREW_HOME) $(PY) -m helpers.live $(CREW_PY) -m helpers.nbrun --build $(LIVE_BUILD) $(CREW_NOTEBOOKS)/*.ipynb

# Notebook 13 runs on the kernel "crewai-env": .venv-crewai's python, registered in .venv's
# Jupyter with the same switches as the exports above and CrewAI's files kept in build/.
# make lab registers it when .venv-crewai exists; make lab-crewai builds that first.
CREW_KERNEL_ENV := AXONFLOW_TELEMETRY=off PYTHON_DOTENV_DISABLED=true \
	CREWAI_DISABLE_TELEMETRY=true CREWAI_DISABLE_TRACKING=true OTEL_SDK_DISABLED=true \
	CREWAI_TRACING_ENABLED=false CREWAI_DISABLE_VERSION_CHECK=true \
	HOME=$(CURDIR)/build/crewai-home XDG_DATA_HOME=$(CURDIR)/build/crewai-home/data \
	XDG_CONFIG_HOME=$(CURDIR)/build/crewai-home/config
CREW_KERNEL := mkdir -p $(CURDIR)/build/crewai-home && $(CREW_PY) -m ipykernel install --prefix $(CURDIR)/$(VENV) --name crewai-env \
	--display-name "Python (CrewAI env)" \
	$(foreach kv,$(CREW_KERNEL_ENV),--env $(word 1,$(subst =, ,$(kv))) $(word 2,$(subst =, ,$(kv))))

lab: $(STAMP)
	@if [ -f $(CREW_STAMP) ]; then $(CREW_KERNEL) >/dev/null 2>&1 && \
		echo "notebook 13 opens on the kernel 'Python (CrewAI env)'"; \
	else echo "notebook 13 needs .venv-crewai: make lab-crewai builds it and registers its kernel"; fi
	$(PY) -m jupyter lab notebooks/

lab-crewai: $(STAMP) $(CREW_STAMP)
	$(CREW_KERNEL)
	$(PY) -m jupyter lab notebooks/crewai_env/13_crewai_crews.ipynb

bench: $(STAMP)
	$(PY) -m helpers.bench gateway
	$(PY) -m helpers.bench pipeline
	$(PY) -m helpers.bench proxy
	$(PY) -m helpers.bench replies
	$(PY) -m helpers.bench service

# The measuring notebooks (03, 04, 10, 11) are refused on a busy machine (1-minute load
# average above 0.5 per core, sampled just before each; see helpers/nbrun.py).
# ALLOW_BUSY=1 runs them anyway, for a draft whose timings are not meant to be kept.
# The peer benchmark (opt-in, not part of make bench or make test): LiteLLM and Portkey's
# gateway, pinned, each in an environment of its own under build/peers/ (nothing of theirs
# enters .venv), all bound to 127.0.0.1. Options: make bench-peers PEERS_ARGS="--quick".
PEERS_DIR       := build/peers
LITELLM_VERSION := 1.108.7
PORTKEY_VERSION := 1.15.2
LITELLM_STAMP   := $(PEERS_DIR)/litellm/.installed-$(LITELLM_VERSION)
PORTKEY_STAMP   := $(PEERS_DIR)/portkey/.installed-$(PORTKEY_VERSION)
PEERS_ARGS      ?=

$(LITELLM_STAMP):
	rm -rf $(PEERS_DIR)/litellm
	$(PYTHON) -m venv $(PEERS_DIR)/litellm
	$(PEERS_DIR)/litellm/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_DIR)/litellm/bin/python -m pip install --quiet "litellm[proxy]==$(LITELLM_VERSION)"
	@touch $@

$(PORTKEY_STAMP):
	rm -rf $(PEERS_DIR)/portkey
	mkdir -p $(PEERS_DIR)/portkey
	npm install --prefix $(PEERS_DIR)/portkey --no-audit --no-fund --loglevel=error \
		@portkey-ai/gateway@$(PORTKEY_VERSION)
	@touch $@

bench-peers: $(STAMP) $(LITELLM_STAMP) $(PORTKEY_STAMP)
	$(PY) -m helpers.bench peers --root $(PEERS_DIR) $(PEERS_ARGS)

notebooks: $(STAMP) $(CREW_STAMP)
	$(PY) -m helpers.nbrun --in-place $(if $(ALLOW_BUSY),--allow-busy)
	$(CREW_HOME) $(CREW_PY) -m helpers.nbrun --in-place $(CREW_NOTEBOOKS)/*.ipynb

# The pre-commit hooks over every file: ruff (lint and format, notebooks too), notebook
# metadata, key-shaped strings, the import contracts and mypy (.pre-commit-config.yaml).
lint: $(STAMP)
	$(VENV)/bin/pre-commit run --all-files --show-diff-on-failure

format: $(STAMP)
	$(PY) -m ruff format conftest.py helpers tests
	$(PY) -m ruff check --fix conftest.py helpers tests

clean:
	rm -rf build reports .pytest_cache
