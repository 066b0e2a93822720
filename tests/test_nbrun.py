"""The notebook runner: clean-kernel execution, build output, figures, failure exit code."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from helpers.nbrun import execute, main, notebooks


def _write(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# title")]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in sources]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_execute_numbers_cells_and_strips_volatile_metadata(tmp_path: Path) -> None:
    path = _write(tmp_path / "01_tiny.ipynb", "x = 6 * 7", "print(x)", "import os; os.getcwd()")
    nb = execute(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [1, 2, 3]
    assert code[1].outputs[0]["text"] == "42\n"
    assert str(tmp_path) in code[2].outputs[0]["data"]["text/plain"]  # runs in its own folder
    assert all("execution" not in c.metadata for c in code)


@pytest.mark.slow
def test_build_writes_html_and_figures_and_failures_exit_1(tmp_path: Path) -> None:
    good = _write(
        tmp_path / "01_plot.ipynb",
        "import matplotlib.pyplot as plt\n%matplotlib inline",
        "plt.plot([1, 2, 3]); plt.title('t'); plt.show()",
    )
    build = tmp_path / "build"
    assert main(["--build", str(build), str(good)]) == 0
    assert (build / "01_plot.html").read_text().startswith("<!DOCTYPE html>")
    figure = build / "figures" / "01_plot-1.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = _write(tmp_path / "02_bad.ipynb", "raise ValueError('boom')")
    assert main(["--build", str(build), str(bad)]) == 1
    assert not (build / "02_bad.html").exists()


def test_suite_notebooks_are_found_in_reading_order() -> None:
    names = [p.name for p in notebooks()]
    assert names == sorted(names) and names[0].startswith("01_")


@pytest.mark.slow
def test_default_writes_to_build_and_leaves_the_notebook_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import helpers.nbrun as nbrun

    path = _write(tmp_path / "01_tiny.ipynb", "print(6 * 7)")
    before = path.read_bytes()
    monkeypatch.setattr(nbrun, "BUILD_DIR", tmp_path / "default-build")
    assert main([str(path)]) == 0
    assert path.read_bytes() == before, "the committed notebook was rewritten"
    assert (tmp_path / "default-build" / "01_tiny.ipynb").exists()
    assert main(["--in-place", str(path)]) == 0
    refreshed = nbformat.read(path, as_version=4)
    assert refreshed.cells[1].outputs[0]["text"] == "42\n"


@pytest.mark.parametrize("root", ["/var/folders/xy/T", "/work/scratch/tmp dir", "/var/tmp/x"])
def test_sanitizer_knows_the_machines_temp_root(tmp_path: Path, root: str) -> None:
    import configparser
    import re

    from helpers.nbrun import write_sanitizer

    out = write_sanitizer(tmp_path / "sanitize.cfg", temp_root=root)
    cfg = configparser.ConfigParser()
    cfg.read(out)
    text = f"database at {root}/abc123/gw.db and /tmp/pytest-7/x.db"
    for section in cfg.sections():
        text = re.sub(cfg[section]["regex"], cfg[section]["replace"], text)
    assert text == "database at TMPPATH and TMPPATH"


def test_sanitizer_for_plain_tmp_is_the_committed_one(tmp_path: Path) -> None:
    from helpers.nbrun import SANITIZER, write_sanitizer

    out = write_sanitizer(tmp_path / "sanitize.cfg", temp_root="/tmp")
    assert out.read_text() == SANITIZER.read_text()
