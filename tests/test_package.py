"""The package's public surface, and importing it has no side effects."""

from __future__ import annotations

import subprocess
import sys


def test_public_names_resolve() -> None:
    import helpers

    missing = [name for name in helpers.__all__ if not hasattr(helpers, name)]
    assert not missing
    assert len(helpers.__all__) == len(set(helpers.__all__))


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
