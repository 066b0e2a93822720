"""Importing the package has no side effects and loads no room."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_package_imports_no_room() -> None:
    code = "import sys, helpers\nprint(sorted(m for m in sys.modules if m.startswith('helpers.')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_import_starts_nothing_and_changes_no_global_state() -> None:
    code = (
        "import threading, matplotlib\n"
        "before = dict(matplotlib.rcParams)\n"
        "import helpers, helpers.plots, helpers.gateway, helpers.standins\n"
        "import helpers.lab.latency_plots, helpers.lab.overhead_plots, helpers.trail\n"
        "assert dict(matplotlib.rcParams) == before, 'rcParams changed at import'\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "import helpers.server as s\n"
        "assert not s._running\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
