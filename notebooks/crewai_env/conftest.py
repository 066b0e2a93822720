"""Notebooks that need CrewAI, which lives in its own environment (``.venv-crewai``).

``make test-crewai`` runs them under nbval with that environment's python and kernel. Any
other environment (the main ``.venv``, whose ``pytest tests notebooks`` walks this folder
too) leaves them uncollected: they would fail there on ``import crewai``.
"""

from importlib.util import find_spec

# The root conftest.py gives CrewAI a temporary data and config home.
collect_ignore_glob = [] if find_spec("crewai") else ["*.ipynb"]
