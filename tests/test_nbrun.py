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


def test_a_quiet_machine_is_measured_at_once() -> None:
    from helpers.nbrun import wait_until_quiet

    slept: list[float] = []
    assert wait_until_quiet(60, load=lambda: 0.1, sleep=slept.append) == 0.1
    assert slept == []


def test_a_machine_that_quietens_is_waited_for() -> None:
    from helpers.nbrun import wait_until_quiet

    samples = iter([1.4, 0.9, 0.3])
    slept: list[float] = []
    assert wait_until_quiet(60, poll_s=5, load=lambda: next(samples), sleep=slept.append) == 0.3
    assert slept == [5, 5]


def test_a_busy_machine_is_refused_with_the_load_and_the_override() -> None:
    from helpers.nbrun import BusyMachine, wait_until_quiet

    slept: list[float] = []
    with pytest.raises(BusyMachine, match=r"load average 1\.70 per core.*--allow-busy"):
        wait_until_quiet(20, poll_s=5, load=lambda: 1.7, sleep=slept.append)
    assert sum(slept) == 20


@pytest.mark.parametrize("allow", [None, "flag", "env"])
def test_in_place_refuses_a_measuring_notebook_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allow: str | None
) -> None:
    import helpers.nbrun as nbrun

    path = _write(tmp_path / "03_latency_analysis.ipynb", "print(6 * 7)")
    before = path.read_bytes()
    monkeypatch.setattr(nbrun, "_load_per_core", lambda: 1.9)
    monkeypatch.delenv(nbrun.ALLOW_BUSY_ENV, raising=False)
    executed: list[Path] = []
    monkeypatch.setattr(nbrun, "execute", lambda p, t: executed.append(p) or nbformat.read(p, 4))
    argv = ["--in-place", "--busy-wait", "0", str(path)]
    if allow == "flag":
        argv.insert(0, "--allow-busy")
    elif allow == "env":
        monkeypatch.setenv(nbrun.ALLOW_BUSY_ENV, "1")
    code = main(argv)
    if allow is None:
        assert code == 1 and executed == [] and path.read_bytes() == before
    else:
        assert code == 0 and executed == [path]


def test_the_busy_check_only_guards_measuring_notebooks_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import helpers.nbrun as nbrun

    monkeypatch.setattr(nbrun, "_load_per_core", lambda: 1.9)
    monkeypatch.delenv(nbrun.ALLOW_BUSY_ENV, raising=False)
    monkeypatch.setattr(nbrun, "execute", lambda p, t: nbformat.read(p, 4))
    monkeypatch.setattr(nbrun, "_export", lambda nb, stem, build: 0)
    other = _write(tmp_path / "05_policies.ipynb", "print(1)")
    measuring = _write(tmp_path / "03_latency_analysis.ipynb", "print(1)")
    assert main(["--in-place", "--busy-wait", "0", str(other)]) == 0
    assert main(["--build", str(tmp_path / "b"), "--busy-wait", "0", str(measuring)]) == 0


def test_the_sanitizer_masks_the_machine_line(tmp_path: Path) -> None:
    import configparser
    import re

    from helpers.lab.machine import provenance
    from helpers.nbrun import write_sanitizer

    cfg = configparser.ConfigParser()
    cfg.read(write_sanitizer(tmp_path / "sanitize.cfg", temp_root="/tmp"))

    def clean(text: str) -> str:
        for section in cfg.sections():
            text = re.sub(cfg[section]["regex"], cfg[section]["replace"], text)
        return text

    here = provenance()
    elsewhere = provenance(
        {"cpu": "Other CPU 9000", "cores": 64, "python": "3.13.1", "implementation": "CPython",
         "load_average": (0.0, 0.01, 0.02), "packages": {"numpy": "9.9"}}
    )  # fmt: skip
    assert here != elsewhere
    assert clean(f"{here}\nnext line\n") == clean(f"{elsewhere}\nnext line\n")
    assert clean(f"{here}\nnext line\n").endswith("\nnext line\n")
