"""Tests that need CrewAI, which lives in its own environment (``.venv-crewai``).

``make test-crewai`` runs them with that environment's python. Any other environment leaves
them uncollected.
"""

from importlib.util import find_spec

# The root conftest.py gives CrewAI a temporary data and config home.
collect_ignore_glob = [] if find_spec("crewai") else ["test_*.py"]
