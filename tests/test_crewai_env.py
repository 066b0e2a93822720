"""CrewAI's separate environment, seen from the main one.

CrewAI needs ``openai<3`` and ``pydantic<2.13``, so its notebook and tests live in
``crewai_env/`` folders, run by ``make test-crewai`` in ``.venv-crewai``. Here: the main
environment's ``pytest tests notebooks`` does not collect them, the CrewAI requirements are
pinned exactly, and the Makefile switches CrewAI's telemetry off as ``CREWAI_QUIET`` says.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.util import find_spec

import pytest

from helpers.settings import CREWAI_QUIET, PROJECT_ROOT

REQUIREMENTS = PROJECT_ROOT / "requirements-crewai.txt"
CREW_NOTEBOOKS = PROJECT_ROOT / "notebooks" / "crewai_env"
PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[a-z0-9,_-]+\])?==[0-9][^\s;]*(\s*;.+)?$")

main_env_only = pytest.mark.skipif(
    find_spec("crewai") is not None, reason="checks the main environment, which has no crewai"
)


def _collected(*paths: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "--nbval", "--nbval-current-env", *paths],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode in (0, 5), done.stdout[-2000:] + done.stderr[-2000:]  # 5: none
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_the_crewai_notebook_exists_where_make_test_crewai_runs_it() -> None:
    assert sorted(p.name for p in CREW_NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


@main_env_only
def test_the_main_run_collects_neither_the_crewai_notebook_nor_its_tests() -> None:
    items = _collected("notebooks", "tests/crewai_env")
    assert any("12_frameworks.ipynb" in item for item in items), items[:5]
    assert not [item for item in items if "crewai_env" in item]


def test_crewai_requirements_pin_every_package_exactly() -> None:
    # The lock continues each requirement over lines ("\\"), one "--hash" option a line.
    text = REQUIREMENTS.read_text().replace("\\\n", " ")
    lines = [re.sub(r"\s+--hash=\S+", "", line).strip() for line in text.splitlines()]
    specs = [line for line in lines if line and not line.startswith("#")]
    assert all("--hash=" in line for line in text.splitlines() if "==" in line), "hashes"
    loose = [spec for spec in specs if not PINNED.match(spec)]
    assert not loose, f"pin these with ==: {loose}"
    assert any(re.fullmatch(r"crewai==1\.15\.\d+", spec) for spec in specs)


def test_make_switches_crewai_telemetry_off_as_settings_says() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    for name, value in CREWAI_QUIET.items():
        assert re.search(rf"^export {name} := {value}$", makefile, re.M), name
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test\nmake test-crewai$", ci, re.M)  # CI runs both suites
