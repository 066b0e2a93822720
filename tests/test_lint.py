"""The maintainer's checks: ruff's style, and the pre-commit hooks `make lint` runs.

ruff keeps the package, the tests and the notebooks in one style (pyproject's settings);
`make lint` and pre-commit run the same local hooks (.pre-commit-config.yaml), which use the
locked tools in .venv and fetch nothing; the notebook hook strips volatile metadata and keeps
the outputs; the key check catches the key shapes the hygiene test forbids.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

from helpers.nbrun import notebooks, strip
from helpers.settings import PROJECT_ROOT

CONFIG = yaml.safe_load((PROJECT_ROOT / ".pre-commit-config.yaml").read_text())
HOOKS = {hook["id"]: hook for repo in CONFIG["repos"] for hook in repo["hooks"]}


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


def test_make_lint_runs_the_pre_commit_hooks_over_every_file() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    body = re.search(r"^lint: .*\n((?:\t.*\n)+)", makefile, re.M)
    assert body, "no lint target"
    assert "pre-commit run --all-files" in body.group(1)
    assert set(HOOKS) == {
        "ruff-check", "ruff-format", "strip-notebook-metadata", "no-key-shaped-strings",
        "import-contracts", "mypy",
    }  # fmt: skip


def test_every_hook_is_local_and_uses_a_locked_tool() -> None:
    assert [repo["repo"] for repo in CONFIG["repos"]] == ["local"]  # nothing to fetch
    locked = (PROJECT_ROOT / "requirements.txt").read_text()
    for hook_id, hook in HOOKS.items():
        if hook["language"] == "pygrep":
            continue
        tool = next(word for word in hook["entry"].split() if word.startswith(".venv/bin/"))
        name = Path(tool).name.replace("lint-imports", "import-linter")
        if name != "python":
            assert re.search(rf"^{name}==", locked, re.M), f"{hook_id}: {name} is not locked"


@pytest.mark.parametrize(
    ("text", "caught"),
    [
        ("OPENAI_API_KEY=sk-" + "a1B2c3D4e5F6g7H8i9", True),
        ("key sk-ant-" + "api03-AbCdEfGhIjKlMnOp", True),
        ("aws AKIA" + "Z" * 16, True),
        ("AWS's documented example AKIAIOSFODNN7EXAMPLE", False),
        ("sk-short", False),
    ],
)
def test_the_key_check_catches_key_shapes(text: str, caught: bool) -> None:
    pattern = re.compile(HOOKS["no-key-shaped-strings"]["entry"])
    assert bool(pattern.search(text)) is caught


def _notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(42)", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="42\n")]
    cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00Z"}
    nb.cells = [cell]
    nb.metadata["widgets"] = {"state": {}}
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    nbformat.write(nb, path)
    return path


def test_the_notebook_hook_strips_metadata_and_keeps_outputs(tmp_path: Path) -> None:
    path = _notebook(tmp_path / "01_x.ipynb")
    assert strip(path) is True
    nb = nbformat.read(path, as_version=4)
    assert "execution" not in nb.cells[0].metadata and "widgets" not in nb.metadata
    assert nb.metadata.language_info == {"name": "python"}
    assert nb.cells[0].execution_count == 1 and nb.cells[0].outputs[0]["text"] == "42\n"
    assert strip(path) is False  # stripped already: the file is left alone


def test_the_committed_notebooks_are_stripped_already(tmp_path: Path) -> None:
    found = notebooks() + sorted((PROJECT_ROOT / "notebooks").glob("*/[0-9][0-9]_*.ipynb"))
    changed = [p.name for p in found if strip(Path(shutil.copy(p, tmp_path / p.name)))]
    assert not changed, f"run `make lint` (or pre-commit) to strip: {changed}"


def test_timeouts_are_minutes_not_half_an_hour() -> None:
    pytest_ini = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    options = pytest_ini["ini_options"]
    cell = re.search(r"--nbval-cell-timeout=(\d+)", options["addopts"])
    assert cell and 60 <= int(cell.group(1)) <= 600
    assert 30 <= int(options["timeout"]) <= 300
