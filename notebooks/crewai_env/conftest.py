"""Notebooks that need CrewAI, which lives in its own environment (``.venv-crewai``).

``make test-crewai`` runs them under nbval with that environment's python and kernel. Any
other environment (the main ``.venv``, whose ``pytest tests notebooks`` walks this folder
too) leaves them uncollected: they would fail there on ``import crewai``. CrewAI keeps its
task outputs under the user's data folder; the kernels get a temporary one instead.
"""

import atexit
import os
import shutil
import tempfile
from importlib.util import find_spec

collect_ignore_glob = [] if find_spec("crewai") else ["*.ipynb"]

if find_spec("crewai"):
    _home = tempfile.mkdtemp(prefix="crewai-home-")
    atexit.register(shutil.rmtree, _home, ignore_errors=True)
    os.environ["XDG_DATA_HOME"] = os.path.join(_home, "data")
    os.environ["XDG_CONFIG_HOME"] = os.path.join(_home, "config")
