"""The ``>>>`` examples in helpers/ run: each module that has one is a test.

Examples that need a live client or a running stack say ``# doctest: +SKIP`` on every line
that cannot run; the rest run here, under the root conftest.py (offline, loopback only).
"""

from __future__ import annotations

import doctest
import importlib
from importlib.util import find_spec

import pytest

from helpers.settings import PROJECT_ROOT

HELPERS = PROJECT_ROOT / "helpers"
# Modules that import a package only their own environment has.
NEEDS = {"helpers.client.crewai_governance": "crewai"}


def _modules_with_examples() -> list[str]:
    names = []
    for path in sorted(HELPERS.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_examples()


def test_the_package_has_examples() -> None:
    assert len(MODULES) > 50, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name: str) -> None:
    need = NEEDS.get(name)
    if need and find_spec(need) is None:
        pytest.skip(f"needs {need}, which only its own environment has")
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    examples = 0
    for test in finder.find(module, name):
        examples += len(test.examples)
        runner.run(test, out=report.append)
    assert examples, f"{name} has '>>>' in it but no example doctest can find"
    assert not runner.failures, "".join(report)
