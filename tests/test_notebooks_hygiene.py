"""Notebook hygiene: the committed notebooks are a clean, top-to-bottom run a reader can trust.

nbval re-executes them and compares outputs; this suite checks what nbval does not: ordered
execution counts, no errors, no empty cells, no key-shaped strings, the fixed opening and
closing, the notebook rules of the style guide, and a README entry for every notebook.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from helpers.nbrun import NOTEBOOK_DIR, notebooks

README = NOTEBOOK_DIR.parent / "README.md"
# The CrewAI notebook runs in its own environment (make test-crewai) but is held to the same rules.
NOTEBOOKS = notebooks() + notebooks(NOTEBOOK_DIR / "crewai_env")
# Terminal colour codes (ESC [ ... m) and other escape sequences: a notebook shows them as noise.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[@-Z\\-_]")
KEY_SHAPED = re.compile(r"sk-[A-Za-z0-9_-]{16,}|sk-ant-[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}")
FORBIDDEN = {
    "pip install": re.compile(r"^\s*[%!]?\s*pip install", re.M),
    "sys.path edit": re.compile(r"sys\.path\.(insert|append)|sys\.path\s*="),
    "os.environ assignment": re.compile(
        r"os\.environ\[[^\]]+\]\s*=|os\.environ\.(update|setdefault)\("
    ),
}


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 2, f"expected the tutorial notebooks in {NOTEBOOK_DIR}"


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def nb(request: pytest.FixtureRequest) -> nbformat.NotebookNode:
    path: Path = request.param
    node = nbformat.read(path, as_version=4)
    node.metadata["__path__"] = str(path)  # for messages; removed before re-serialising
    return node


def _code(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def test_name_is_numbered_snake_case(nb: nbformat.NotebookNode) -> None:
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", Path(nb.metadata["__path__"]).name)


def test_listed_in_readme(nb: nbformat.NotebookNode) -> None:
    assert Path(nb.metadata["__path__"]).name in README.read_text(encoding="utf-8")


def test_one_question_fits_in_forty_cells(nb: nbformat.NotebookNode) -> None:
    assert len(nb.cells) <= 40, f"{len(nb.cells)} cells: split it into two notebooks"


def test_execution_counts_run_one_to_n(nb: nbformat.NotebookNode) -> None:
    counts = [c.execution_count for c in _code(nb)]
    assert counts == list(range(1, len(counts) + 1)), f"execution counts {counts}"


def test_no_error_outputs(nb: nbformat.NotebookNode) -> None:
    errors = [o for c in _code(nb) for o in c.outputs if o.output_type == "error"]
    assert not errors, f"error output: {errors[0].get('ename')}: {errors[0].get('evalue')}"


def test_no_empty_cells(nb: nbformat.NotebookNode) -> None:
    empty = [i for i, c in enumerate(nb.cells) if not c.source.strip()]
    assert not empty, f"empty cells at positions {empty}"


def test_no_key_shaped_strings(nb: nbformat.NotebookNode) -> None:
    text = nbformat.writes(nb)
    assert not KEY_SHAPED.search(text)


def test_no_ansi_escapes_in_outputs(nb: nbformat.NotebookNode) -> None:
    for i, cell in enumerate(_code(nb)):
        for output in cell.outputs:
            texts = [output.get("text", "")] + [
                v for v in output.get("data", {}).values() if isinstance(v, str)
            ]
            hit = next((t for t in texts if ANSI_ESCAPE.search(t)), None)
            assert hit is None, f"code cell {i} prints an ANSI escape: {hit[:120]!r}"


@pytest.mark.parametrize("rule", sorted(FORBIDDEN))
def test_no_forbidden_setup(nb: nbformat.NotebookNode, rule: str) -> None:
    hits = [c.source for c in _code(nb) if FORBIDDEN[rule].search(c.source)]
    assert not hits, f"{rule} in a notebook cell: {hits[0][:80]!r}"


def test_fixed_opening(nb: nbformat.NotebookNode) -> None:
    first, second, third = nb.cells[:3]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# ")
    assert "offline" in first.source.lower()
    assert second.cell_type == "code" and "import" in second.source
    assert third.cell_type == "code"
    assert "start_stack" in third.source or "Settings" in third.source, "cell 3 sets up via helpers"


def test_fixed_closing(nb: nbformat.NotebookNode) -> None:
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for heading in ("Summary", "Try it"):
        assert re.search(rf"^#+\s*{heading}", text, re.M), f"missing a '{heading}' section"
    assert nb.cells[-1].cell_type == "code" and ".close()" in nb.cells[-1].source


def test_every_code_cell_has_prose_before_it(nb: nbformat.NotebookNode) -> None:
    for i, cell in enumerate(nb.cells[3:], start=3):
        if cell.cell_type == "code":
            assert nb.cells[i - 1].cell_type == "markdown", f"code cell {i} has no prose above it"


def test_nbval_tags_are_explained(nb: nbformat.NotebookNode) -> None:
    for i, cell in enumerate(nb.cells):
        tags = set(cell.metadata.get("tags", ())) & {
            "nbval-ignore-output",
            "nbval-skip",
            "raises-exception",
        }
        if tags:
            prose = nb.cells[i - 1].source.lower()
            assert any(
                w in prose
                for w in (
                    "vary",
                    "varies",
                    "measure",
                    "skip",
                    "live",
                    "error",
                    "timing",
                    "differ",
                    "random",
                )
            ), f"cell {i} is tagged {sorted(tags)} without a reason in the prose above"


def test_readme_reads_in_one_sitting_and_links_what_it_moved_out() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text) < 10_000, f"README is {len(text)} characters; move detail into docs/"
    for target in ("docs/gateway.md", "docs/benchmarks.md", "docs/contributing.md", "LICENSE"):
        assert target in text and (README.parent / target).is_file(), target
    assert text.index("## Learn") < text.index("## Start here") < text.index("## Notebooks")
    assert "make lab" in text[: text.index("## Start here")], "the path starts with make lab"
    assert "make run" in text and "make test" in text
