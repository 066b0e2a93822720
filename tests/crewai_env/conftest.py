"""Tests that need CrewAI, which lives in its own environment (``.venv-crewai``).

``make test-crewai`` runs them with that environment's python. Any other environment leaves
them uncollected. CrewAI keeps its task outputs in a SQLite file under the user's data
folder (and a key file under config); here both go to a temporary home for the session.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from importlib.util import find_spec

collect_ignore_glob = [] if find_spec("crewai") else ["test_*.py"]

if find_spec("crewai"):
    _home = tempfile.mkdtemp(prefix="crewai-home-")
    atexit.register(shutil.rmtree, _home, ignore_errors=True)
    os.environ["XDG_DATA_HOME"] = os.path.join(_home, "data")
    os.environ["XDG_CONFIG_HOME"] = os.path.join(_home, "config")
