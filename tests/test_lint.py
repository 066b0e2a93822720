"""ruff keeps the package, the tests and the notebooks in one style (pyproject's settings)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers.settings import PROJECT_ROOT


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff_is_clean(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "conftest.py", "helpers", "tests", "notebooks"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]
