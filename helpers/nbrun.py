"""Execute the notebooks headless: into a build folder, or in place to refresh committed outputs.

``python -m helpers.nbrun [NOTEBOOK ...]``  executes copies into ``build/`` (``--build DIR`` for
                                           another folder) and writes, per notebook, the
                                           executed ``.ipynb``, an ``.html`` page and every
                                           figure as ``figures/<notebook>-<n>.png``. The
                                           committed notebooks are not touched.
``python -m helpers.nbrun --in-place``      re-executes the notebooks in ``notebooks/`` in place
                                           (what ``make notebooks`` runs), each in a clean
                                           kernel, numbered 1..n, volatile metadata stripped,
                                           so a diff shows only real change.
``python -m helpers.nbrun --sanitizer OUT`` writes nbval's sanitizer config for this machine:
                                           the committed one plus this machine's temp root
                                           (``TMPDIR``), which need not be ``/tmp``.

The measuring notebooks (03, 04, 10 and 11) commit timings, so ``--in-place`` refuses to
re-execute them on a busy machine. *Busy* means a 1-minute load average above
``BUSY_LOAD_PER_CORE`` (0.5) per core, sampled just before each of them runs: on a quiet
machine it is near zero, and at 0.5 per core another process is already running half the
time on every core, which is the contention those notebooks must not measure. The load
average lags (the notebooks before it raise it too), so the runner first waits up to
``--busy-wait`` seconds (default 180) for it to fall, then refuses with the load it saw.
``--allow-busy`` (or ``NBRUN_ALLOW_BUSY=1``; ``make notebooks ALLOW_BUSY=1``) runs them
anyway, for a draft whose numbers are not meant to be kept: the notebooks print the load
average beside their results either way.
``python -m helpers.nbrun --strip NB ...``  strips volatile metadata in place, outputs and
                                           counts kept; exits 1 when it changed a file (the
                                           pre-commit hook, docs/toolchain.md).
"""

from __future__ import annotations

import argparse
import atexit
import base64
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from traitlets import default

from .settings import OFFLINE_SWITCH, PROJECT_ROOT

__all__ = [
    "BUILD_DIR",
    "BUSY_LOAD_PER_CORE",
    "MEASURING",
    "NOTEBOOK_DIR",
    "BusyMachine",
    "execute",
    "main",
    "notebooks",
    "strip",
    "wait_until_quiet",
    "write_sanitizer",
]

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
BUILD_DIR = PROJECT_ROOT / "build"
SANITIZER = NOTEBOOK_DIR / "nbval_sanitize.cfg"

#: Notebooks whose committed outputs are timings: never refreshed on a busy machine.
MEASURING = ("03_latency_analysis", "04_measurement_method", "10_real_application", "11_proxy_mode")
#: Above this 1-minute load average per core, the machine is busy (see the module docstring).
BUSY_LOAD_PER_CORE = 0.5
ALLOW_BUSY_ENV = "NBRUN_ALLOW_BUSY"


class BusyMachine(RuntimeError):
    """The load average stayed above the threshold: measuring now would record contention."""


def _load_per_core() -> float:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return os.getloadavg()[0] / (cores or 1)


def wait_until_quiet(
    wait_s: float = 180.0,
    *,
    threshold: float = BUSY_LOAD_PER_CORE,
    poll_s: float = 5.0,
    load: Callable[[], float] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Return the 1-minute load average per core once it is at or below ``threshold``.

    Samples every ``poll_s`` seconds for up to ``wait_s`` seconds; raises
    :class:`BusyMachine`, naming the last sample and the override, if it never gets there.
    ``load`` (default: this machine's) returns the 1-minute load average per core.
    """
    load = load or _load_per_core
    waited = 0.0
    while True:
        now = load()
        if now <= threshold:
            return now
        if waited >= wait_s:
            raise BusyMachine(
                f"the machine is busy: 1-minute load average {now:.2f} per core after "
                f"waiting {waited:.0f} s, above {threshold:.2f}; a measuring notebook run now "
                f"would commit contention as its result. Stop what else is running and retry, "
                f"or pass --allow-busy ({ALLOW_BUSY_ENV}=1, make notebooks ALLOW_BUSY=1) for a "
                f"draft whose timings are not meant to be kept."
            )
        sleep(poll_s)
        waited += poll_s


def notebooks(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """The suite's notebooks in reading order (``NN_name.ipynb``)."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def _ipc_dir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="nbrun-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


class _LocalKernelManager(KernelManager):
    """IPC sockets: the kernel is local, so nothing needs TCP (and ipykernel warns about it)."""

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("ip")
    def _default_ip(self) -> str:
        return str(_ipc_dir() / "kernel")


def _strip_volatile(nb: nbformat.NotebookNode) -> None:
    nb.metadata.pop("widgets", None)
    lang = nb.metadata.get("language_info", {})
    for key in ("version", "pygments_lexer", "codemirror_mode"):
        lang.pop(key, None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)


def strip(path: Path) -> bool:
    """Strip volatile metadata from a committed notebook in place; True if it changed."""
    before = path.read_text(encoding="utf-8")
    nb = nbformat.reads(before, as_version=4)
    _strip_volatile(nb)
    after = nbformat.writes(nb) + "\n"
    if after == before:
        return False
    path.write_text(after, encoding="utf-8")
    return True


def execute(path: Path, timeout: int = 600) -> nbformat.NotebookNode:
    """Run one notebook top to bottom in a fresh ``python3`` kernel, working dir ``notebooks/``."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_manager_class=_LocalKernelManager,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    _strip_volatile(nb)
    return nb


def write_sanitizer(out: Path, temp_root: str | None = None) -> Path:
    """The committed sanitizer config, with this machine's temp root added when it is not /tmp.

    Temporary paths in outputs then read ``TMPPATH`` whatever ``TMPDIR`` says (macOS puts it
    under ``/var/folders/...``, reached through the ``/private`` symlink).
    """
    root = temp_root or tempfile.gettempdir()
    roots = sorted({root, os.path.realpath(root)} - {"/tmp"}, key=len, reverse=True)
    committed = SANITIZER.read_text(encoding="utf-8")
    # The machine's roots go first: the committed /tmp rule would otherwise turn
    # "/var/tmp/x/gw.db" into "/varTMPPATH" before a longer root could match.
    first = committed.index("\n[") + 1
    text = committed[:first]
    for i, r in enumerate(roots):
        text += (
            f"[temp-root-{i}]\nregex: {re.escape(r.rstrip('/'))}/[^\\s'\"]+\nreplace: TMPPATH\n\n"
        )
    text += committed[first:]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def _export(nb: nbformat.NotebookNode, stem: str, build: Path) -> int:
    from nbconvert import HTMLExporter

    build.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, build / f"{stem}.ipynb")
    html, _ = HTMLExporter().from_notebook_node(nb)
    (build / f"{stem}.html").write_text(html, encoding="utf-8")
    figures = build / "figures"
    figures.mkdir(exist_ok=True)
    count = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                count += 1
                (figures / f"{stem}-{count}.png").write_bytes(base64.b64decode(png))
    return count


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m helpers.nbrun",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all in notebooks/)")
    p.add_argument(
        "--build",
        type=Path,
        default=BUILD_DIR,
        help="write executed copies, HTML and PNGs here (default: build/)",
    )
    p.add_argument(
        "--in-place",
        action="store_true",
        help="refresh the committed outputs instead (make notebooks)",
    )
    p.add_argument(
        "--sanitizer",
        type=Path,
        metavar="OUT",
        help="only write nbval's sanitizer config for this machine to OUT",
    )
    p.add_argument(
        "--strip",
        action="store_true",
        help="only strip volatile metadata, in place (exit 1 if changed)",
    )
    p.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    p.add_argument(
        "--allow-busy",
        action="store_true",
        help=f"re-execute measuring notebooks in place even on a busy machine "
        f"(also {ALLOW_BUSY_ENV}=1)",
    )
    p.add_argument(
        "--busy-wait",
        type=float,
        default=180.0,
        metavar="S",
        help="seconds to wait for a busy machine to quieten (default 180)",
    )
    args = p.parse_args(argv)
    allow_busy = args.allow_busy or os.environ.get(ALLOW_BUSY_ENV, "") not in ("", "0")
    if args.sanitizer:
        print(f"nbval sanitizer written to {write_sanitizer(args.sanitizer)}")
        return 0
    if args.strip:
        changed = [path for path in args.paths or notebooks() if strip(path)]
        for path in changed:
            print(f"stripped volatile metadata from {path}")
        return 1 if changed else 0
    paths = [path.resolve() for path in args.paths] or notebooks()
    if args.in_place:
        # Committed outputs are the offline ones: never a user's .env or keys (the kernels
        # inherit this environment).
        os.environ[OFFLINE_SWITCH] = "1"
    failed = 0
    for path in paths:
        if args.in_place and path.stem in MEASURING:
            if allow_busy:
                print(f"{path.name}: measuring on a possibly busy machine (--allow-busy)")
            else:
                try:
                    quiet = wait_until_quiet(args.busy_wait)
                except BusyMachine as exc:
                    failed += 1
                    print(f"  REFUSED {path.name}: {exc}", file=sys.stderr)
                    continue
                print(f"{path.name}: load average {quiet:.2f} per core, quiet enough to measure")
        started = time.perf_counter()
        print(f"executing {path.name} ...", flush=True)
        try:
            nb = execute(path, args.timeout)
        except CellExecutionError as exc:
            failed += 1
            print(f"  FAILED: {str(exc).splitlines()[0] if str(exc) else exc}", file=sys.stderr)
            continue
        seconds = time.perf_counter() - started
        if not args.in_place:
            figures = _export(nb, path.stem, args.build)
            print(
                f"  done in {seconds:.1f} s -> {args.build / path.stem}.html, {figures} figure(s)"
            )
        else:
            nbformat.write(nb, path)
            print(f"  done in {seconds:.1f} s (outputs written in place)")
    if not args.in_place and not failed:
        print(
            f"\nopen {args.build.resolve()}/*.html in a browser; "
            f"figures in {args.build / 'figures'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
