"""Helpers for the gateway-mode governance notebooks, one room per folder.

Importing this package imports nothing else: import the module you need (each module's
docstring says which notebook introduces it). The folders are the architecture; which room
may import which is written down as import-linter contracts in ``pyproject.toml``, and
``docs/architecture.md`` draws it.

* :mod:`helpers.client`: what an application copies: pre-check, audit, background audits,
  ``governed_completion``. Depends on nothing else in the project.
* :mod:`helpers.gateway`: the embedded gateway: HTTP layer (``app``), one governance core
  (``governance``, ``engine``), the policies (``policies``), the audit store (``store``) and
  the reader process that keeps reads off the request path (``reader``, ``readback``).
* :mod:`helpers.standins`: the OpenAI and Anthropic wire-protocol stand-ins.
* :mod:`helpers.lab`: measuring what governance costs (load generator, statistics, plots).
* :mod:`helpers.trail`: reading, exporting and checking the audit trail.
* :mod:`helpers.service`: a governed chat web service built on the client.
* :mod:`helpers.bench`: the benchmarks (``python -m helpers.bench``); nothing imports them.
* The top level is glue for the notebooks: :mod:`~helpers.settings` and
  :mod:`~helpers.errors` (below every room), :mod:`~helpers.server` (services in their own
  processes), :mod:`~helpers.stack` (the stack a notebook starts, gateway or proxy mode),
  :mod:`~helpers.plots` (the style, shared charts and number formatting),
  :mod:`~helpers.walkthrough` and :mod:`~helpers.quickstart` (terminal scripts),
  :mod:`~helpers.nbrun` (re-executing notebooks).
"""
