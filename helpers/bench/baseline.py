"""The tree before a change, timed in the same run as the tree under test.

``python -m helpers.bench gateway --baseline PATH`` names another checkout of this project
(for example ``git worktree add /tmp/before HEAD~3``). Two worker processes start, one per
tree, each with only its own tree on ``PYTHONPATH``; both run the same timing code (below,
sent as source, so it needs nothing from either tree but the decision engine they both
have). The parent hands them the same texts and asks for one pass of one scenario at a
time, alternating which tree goes first, so machine noise falls on both alike. Each worker
times ``engine.decide`` with ``perf_counter_ns`` in its own process, exactly as the
in-process section does.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from helpers.lab.stats import summarize

__all__ = ["WORKER", "baseline_section"]

#: The timing loop each tree runs: read the scenario texts once, then answer one command per
#: line ("scenario name") with the decision times of one pass, in microseconds.
WORKER = r"""
import json, sys, time
from helpers.gateway.engine import DecisionEngine
from helpers.settings import Settings
engine = DecisionEngine.from_settings(Settings.load(env={}, dotenv_path=None), rate_limits=False)
engine.warm_up()
scenarios = json.load(open(sys.argv[1], encoding="utf-8"))
print("ready", flush=True)
for line in sys.stdin:
    texts = scenarios[line.strip()]
    times = []
    for text in texts:
        t0 = time.perf_counter_ns()
        engine.decide(text, "user-123")
        times.append((time.perf_counter_ns() - t0) / 1e3)
    print(json.dumps(times), flush=True)
"""


class _Worker:
    def __init__(self, tree: Path, scenarios: Path) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(tree),
            "PYTHON_DOTENV_DISABLED": "true",
            "AXONFLOW_TELEMETRY": "off",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(scenarios)],
            cwd=tree,
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        ready = self.stdout.readline().strip()
        if ready != "ready":
            self.close()
            raise RuntimeError(f"the decision worker for {tree} did not start (see its stderr)")

    def run(self, scenario: str) -> list[float]:
        self.stdin.write(scenario + "\n")
        self.stdin.flush()
        times: list[float] = json.loads(self.stdout.readline())
        return times

    def close(self) -> None:
        self.stdin.close()
        self.proc.wait(timeout=30)
        self.stdout.close()


def baseline_section(
    baseline: Path,
    current: Path,
    scenarios: dict[str, list[str]],
    rounds: int,
    worst_of: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Decision times of ``current`` and ``baseline`` per scenario, passes interleaved.

    ``scenarios`` maps a name to its texts; after one warm-up pass of each, left out, each
    round runs one pass of every scenario in both trees, in random order. Scenarios in
    ``worst_of`` report the worst time per text (the adversarial inputs), the rest full
    percentiles in microseconds.
    """
    rng = random.Random(11)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "scenarios.json"
        data.write_text(json.dumps(scenarios), encoding="utf-8")
        workers = {"current": _Worker(current, data), "baseline": _Worker(baseline, data)}
        try:
            samples: dict[str, dict[str, list[list[float]]]] = {
                tree: {name: [] for name in scenarios} for tree in workers
            }
            for name in scenarios:  # one warm-up pass each, left out (lazy RE2 states)
                for worker in workers.values():
                    worker.run(name)
            for _ in range(rounds):
                for name in scenarios:
                    order = list(workers)
                    rng.shuffle(order)
                    for tree in order:
                        samples[tree][name].append(workers[tree].run(name))
        finally:
            for worker in workers.values():
                worker.close()
    out: dict[str, Any] = {"tree": str(baseline), "rounds": rounds, "scenarios": {}}
    for name in scenarios:
        entry: dict[str, Any] = {}
        for tree in workers:
            passes = samples[tree][name]
            if name in worst_of:  # worst of the rounds per text, in milliseconds
                entry[tree] = {"worst_ms": max(max(p) for p in passes) / 1e3}
            else:
                entry[tree] = summarize([t for p in passes for t in p]).as_dict()
        out["scenarios"][name] = entry
    return out
