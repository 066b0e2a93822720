"""The folders are the architecture: import contracts and room docstrings.

The contracts live in ``pyproject.toml`` and run through import-linter (also ``make lint``).
A second test breaks a contract on a copy of the package, so the check is known to bite.
Modules are sized by their concept, not by a line count (STYLE.md), so no length is checked.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from helpers.settings import PROJECT_ROOT

HELPERS = PROJECT_ROOT / "helpers"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
MAX_TOP_LEVEL_MODULES = 12


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root), "NO_COLOR": "1"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_contracts_are_kept() -> None:
    done = _lint_imports(PROJECT_ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "forbidden_import", "contract"),
    [
        ("client/gateway_client.py", "import helpers.gateway.engine", "needs no server code"),
        ("gateway/engine.py", "import helpers.lab.stats", "The gateway stands alone"),
        ("gateway/policies/pii.py", "import helpers.gateway.store", "Policies are pure"),
        ("standins/tokens.py", "import helpers.gateway.metrics", "The stand-ins are"),
        ("lab/stats.py", "import helpers.bench.gateway", "Nothing imports the benchmarks"),
        ("service/app.py", "import helpers.gateway.engine", "The governed service is"),
        ("gateway/proxy.py", "import helpers.gateway.app", "One governance core"),
        ("trail/integrity.py", "import helpers.lab.stats", "Layers"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, forbidden_import: str, contract: str
) -> None:
    shutil.copytree(HELPERS, tmp_path / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "helpers" / module
    target.write_text(target.read_text() + f"\n{forbidden_import}  # noqa\n")
    done = _lint_imports(tmp_path)
    assert done.returncode != 0, done.stdout[-3000:]
    broken = [line for line in done.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(contract in line for line in broken), done.stdout[-3000:]


def _cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in imports.get(module, ()):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(imports):
        if module not in index:
            visit(module)
    return found


def test_cycles_are_found() -> None:
    imports = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(imports) == [["a", "b", "c"]]


def test_no_import_cycle_between_modules() -> None:
    """Counting imports under ``TYPE_CHECKING`` too: a cycle there is still two modules that
    cannot be understood apart."""
    graph = grimp.build_graph("helpers", cache_dir=None)
    imports = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    assert _cycles(imports) == []


def _private_imports(path: Path) -> list[str]:
    """``from helpers... import _name`` and ``module._name`` for a helpers module."""
    tree = ast.parse(path.read_text())
    found, modules = [], set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        ours = node.level > 0 or (node.module or "").startswith("helpers")
        for alias in node.names if ours else ():
            if alias.name.startswith("_") and not alias.name.startswith("__"):
                found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
            modules.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_private_imports_are_found(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("from .schema import _str, read_head\nfrom . import query\nquery._page\n")
    assert _private_imports(sample) == ["line 1: from schema import _str", "line 3: query._page"]


def test_no_module_imports_another_modules_private_name() -> None:
    offenders = {
        str(path.relative_to(HELPERS)): found
        for path in sorted(HELPERS.rglob("*.py"))
        if (found := _private_imports(path))
    }
    assert offenders == {}


def test_top_level_holds_glue_only() -> None:
    top = sorted(p.name for p in HELPERS.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


ROOMS = sorted(
    str(p.parent.relative_to(HELPERS)) for p in HELPERS.rglob("__init__.py") if p.parent != HELPERS
)


@pytest.mark.parametrize("package", ROOMS)
def test_every_room_says_what_it_is_for_and_what_it_may_not_import(package: str) -> None:
    doc = ast.get_docstring(ast.parse((HELPERS / package / "__init__.py").read_text()))
    assert doc, f"helpers/{package}/__init__.py has no docstring"
    assert "import" in doc, f"helpers/{package}: the docstring does not name its import rules"
