"""The policy-replay benchmark: how long a candidate policy takes to replay before it ships.

``python -m helpers.bench policy-replay [--n 10000] [--quick]`` draws ``n`` questions of a
simulated week (:func:`helpers.trail.week.simulate_week`, seeded), masks each with the
typed placeholders as the gateway's traffic sample keeps them, and replays them through the
shipped custom policies and a candidate (the shipped rules plus two new ones, with
examples), with the labelled corpus and every rule's examples, as
``python -m helpers.gateway.policy_check`` does. It reports the wall time of the replay
(target: 10,000 masked queries through two policies in under 10 s), the per-decision time
under each policy, and the flips it found, and writes a JSON report. Benchmarks are not
tests.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from helpers.gateway.policies.redaction import mask
from helpers.gateway.policy_check import Replay, replay, sample_rows
from helpers.lab.machine import machine_info, machine_line, write_report
from helpers.settings import DATA_DIR, PROJECT_ROOT, Settings
from helpers.trail.week import simulate_week

__all__ = ["CANDIDATE_RULES", "TARGET_S", "main", "run_policy_replay_bench"]

#: The target: this many masked queries through two policies in under this many seconds.
TARGET_N, TARGET_S = 10_000, 10.0

CANDIDATE_RULES = """
  - id: named_salaries
    description: A named person's pay stays inside; general questions about pay are fine.
    pattern: '(?i)\\b(?:salary|compensation|pay)\\s+(?:of|for)\\s+\\pL+\\s+\\pL+'
    action: block
    severity: high
    reason: A named person's pay must not be sent to external models
    examples:
      block: ["What is the salary of Dana Whitfield?"]
      allow: ["How do companies usually structure salary reviews?"]
  - id: vendor_quotes
    keywords: [updated quote]
    action: warn
    severity: low
    reason: Vendor quotes are commercial terms; the request is allowed and recorded
    examples:
      flag: ["Draft an email asking Contoso for an updated quote."]
"""


def run_policy_replay_bench(n: int, out: Path) -> int:
    settings = Settings.load()
    report: dict[str, Any] = {"benchmark": "policy-replay", "machine": machine_info()}
    report["load_before"] = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        candidate = Path(tmp) / "candidate.yaml"
        text = (DATA_DIR / "policies.yaml").read_text(encoding="utf-8")
        candidate.write_text(text + CANDIDATE_RULES, encoding="utf-8")
        t0 = time.perf_counter()
        check = Replay.load(DATA_DIR / "policies.yaml", candidate, settings)
        load_s = time.perf_counter() - t0
        per_day = -(-n // 7)
        week = simulate_week(seed=0, per_day=per_day)[:n]
        t0 = time.perf_counter()
        users = [check.users.lookup(q.user_token) for q in week]
        export = [
            {"text": mask(q.text), "role": u.role, "department": u.department}
            for q, u in zip(week, users, strict=True)
        ]
        mask_s = time.perf_counter() - t0
        sample = sample_rows(export, check)
        t0 = time.perf_counter()
        result = replay(check, sample=sample)
        replay_s = time.perf_counter() - t0
    rows = sum(result.rows.values())
    report.update(
        n_masked=len(sample),
        rows=dict(result.rows),
        load_both_policies_s=round(load_s, 3),
        mask_s=round(mask_s, 3),
        replay_s=round(replay_s, 3),
        decisions=2 * rows,
        target={"n": TARGET_N, "seconds": TARGET_S},
        target_met=len(sample) >= TARGET_N and replay_s < TARGET_S,
        decision_us=result.decision_us,
        flips={"new_block": result.count("new_block"), "lost_block": result.count("lost_block")},
    )
    write_report(out, report)
    print(machine_line(report["machine"], report["load_before"]))
    print(
        f"replayed {rows} texts ({len(sample)} masked sample queries) through two policies "
        f"in {replay_s:.2f} s (target: {TARGET_N} masked in < {TARGET_S:g} s: "
        f"{'met' if report['target_met'] else 'not met'})"
    )
    for name, s in result.decision_us.items():
        print(f"  {name:<9} decision p50 {s['p50']:.1f} us, p90 {s['p90']:.1f} us")
    print(f"  flips: {report['flips']}")
    print(f"\nreport written to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m helpers.bench policy-replay", description=__doc__)
    p.add_argument("--n", type=int, default=TARGET_N, help="masked sample queries to replay")
    p.add_argument("--quick", action="store_true", help="1,000 queries instead of 10,000")
    p.add_argument(
        "--out", type=Path, default=PROJECT_ROOT / "reports" / "bench-policy-replay.json"
    )
    args = p.parse_args(argv)
    return run_policy_replay_bench(1_000 if args.quick else args.n, args.out)


if __name__ == "__main__":
    sys.exit(main())
