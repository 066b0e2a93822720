"""Benchmarks that write JSON reports: ``python -m helpers.bench gateway|pipeline``.

Speed targets are checked here, not in tests (``MEASURING.md``): every report records the
machine, n, full percentiles, error counts and verdict correctness.

The benchmarks sit on top of everything: they may import any room, and no module imports
them (an import-linter contract in ``pyproject.toml``).
"""
