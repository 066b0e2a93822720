"""Replay a candidate policy file before it ships: what would change, and is it worse?

``python -m helpers.gateway.policy_check --candidate FILE`` decides a body of text under the
policy in force and under the candidate, side by side, with the same engine and switches:

* the labelled corpus (``data/corpus``): recall (blocked among rows that must be blocked)
  and false-block rate (blocked among rows that must pass), before and after, each with a
  95 % bootstrap interval;
* every rule's own examples, from both files;
* optionally, a sample of recent traffic the gateway kept masked (``--sample FILE``, the
  body of ``GET /api/policies/traffic-sample``, or ``--sample-url``).

The report lists every flip (a text whose verdict changes) with its masked text and the
policy that caused it, and the change in decision time. The exit status is 1 when the
replay finds a regression named by ``--fail-on`` (by default ``new-false-block``: a
labelled row that must pass is newly blocked, and ``lost-block``: any text blocked today
passes under the candidate), 2 when a file cannot be loaded, else 0, so it can gate CI.
Introduced in ``14_change_a_policy.ipynb``.

>>> report = replay(Replay.load("data/policies.yaml", "candidate.yaml"))  # doctest: +SKIP
>>> print(report.summary())                                               # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from helpers.corpus import load_corpus
from helpers.errors import ConfigError, PolicyFileError
from helpers.settings import Settings

from .engine import Decision, DecisionEngine
from .policies.custom_policies import PolicyWatcher
from .policies.rbac import User, UserDirectory
from .policies.redaction import mask

__all__ = [
    "REGRESSIONS",
    "Flip",
    "Interval",
    "Replay",
    "ReplayReport",
    "ReplayRow",
    "fetch_sample",
    "main",
    "replay",
    "sample_rows",
]

#: What ``--fail-on`` may name.
REGRESSIONS = ("new-false-block", "lost-block", "new-block")
DEFAULT_FAIL_ON = ("new-false-block", "lost-block")


@dataclass(frozen=True, slots=True)
class ReplayRow:
    """One text to decide: where it came from, who sends it, and its label if it has one
    (``expected_blocked``: True must be blocked, False must pass, None unlabelled)."""

    source: str  # corpus | examples | sample
    id: str
    text: str
    user: User
    expected_blocked: bool | None = None


@dataclass(frozen=True, slots=True)
class Flip:
    """A text decided differently under the candidate."""

    direction: str  # new_block | lost_block
    source: str
    id: str
    text: str  # masked
    policies: tuple[str, ...]  # the policies whose blocking changed
    expected_blocked: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "policies": list(self.policies)}

    def __repr__(self) -> str:
        return f"<Flip {self.direction} {self.source}:{self.id} {list(self.policies)}>"


@dataclass(frozen=True, slots=True)
class Interval:
    """A rate with its 95 % bootstrap interval, over ``n`` labelled rows."""

    value: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "ci95": [self.low, self.high], "n": self.n}

    def __str__(self) -> str:
        return f"{self.value:.1%} [{self.low:.1%}, {self.high:.1%}]"


@dataclass(frozen=True)
class ReplayReport:
    """What the replay found; :meth:`as_dict` is the JSON, :meth:`summary` the short text."""

    current: str
    candidate: str
    rows: Mapping[str, int]
    flips: tuple[Flip, ...]
    recall: Mapping[str, Interval]  # "current", "candidate"
    false_block_rate: Mapping[str, Interval]
    decision_us: Mapping[str, Mapping[str, float]]  # policy -> p50, p90
    regressions: tuple[str, ...]
    fail_on: tuple[str, ...] = field(default=DEFAULT_FAIL_ON)

    @property
    def passed(self) -> bool:
        return not self.regressions

    def count(self, direction: str) -> int:
        return sum(1 for f in self.flips if f.direction == direction)

    def as_dict(self) -> dict[str, Any]:
        cur, cand = self.decision_us["current"]["p50"], self.decision_us["candidate"]["p50"]
        return {
            "current": self.current,
            "candidate": self.candidate,
            "rows": dict(self.rows),
            "flips": {
                "new_block": self.count("new_block"),
                "lost_block": self.count("lost_block"),
                "rows": [f.as_dict() for f in self.flips],
            },
            "labelled": {
                name: {
                    "recall": self.recall[name].as_dict(),
                    "false_block_rate": self.false_block_rate[name].as_dict(),
                }
                for name in ("current", "candidate")
            },
            "decision_us": {k: dict(v) for k, v in self.decision_us.items()},
            "decision_time_change": (cand - cur) / cur if cur else 0.0,
            "fail_on": list(self.fail_on),
            "regressions": list(self.regressions),
            "passed": self.passed,
        }

    def summary(self, max_flips: int = 10) -> str:
        rows = ", ".join(f"{n} {source}" for source, n in self.rows.items())
        lines = [
            f"policy check: {Path(self.current).name} -> {Path(self.candidate).name} ({rows})",
            f"flips: {self.count('new_block')} newly blocked, "
            f"{self.count('lost_block')} no longer blocked",
        ]
        for f in self.flips[:max_flips]:
            label = {True: " [labelled: block]", False: " [labelled: pass]", None: ""}[
                f.expected_blocked
            ]
            lines.append(
                f"  {f.direction:<10} {','.join(f.policies)}: {f.source}:{f.id} "
                f"{_short(f.text)!r}{label}"
            )
        if len(self.flips) > max_flips:
            lines.append(f"  ... and {len(self.flips) - max_flips} more (see the JSON)")
        for name in ("current", "candidate"):
            lines.append(
                f"{name:<9} recall {self.recall[name]}  "
                f"false-block rate {self.false_block_rate[name]}  "
                f"decision p50 {self.decision_us[name]['p50']:.1f} us"
            )
        verdict = "PASS" if self.passed else "FAIL: " + "; ".join(self.regressions)
        lines.append(verdict)
        return "\n".join(lines)

    def __repr__(self) -> str:
        state = "passed" if self.passed else f"failed ({len(self.regressions)})"
        return f"<ReplayReport {len(self.flips)} flips, {state}>"


def _short(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _ReplayUsers:
    """The directory, plus users the replay made up for sample rows (role and department
    only: the sample never keeps a token)."""

    def __init__(self, directory: UserDirectory) -> None:
        self.directory = directory
        self.roles = directory.roles
        self.extra: dict[str, User] = {}

    def lookup(self, token: str | None) -> User:
        return self.extra.get(token or "") or self.directory.lookup(token)

    def add(self, user: User) -> str:
        self.extra[user.token] = user
        return user.token


@dataclass
class Replay:
    """Two engines with the same switches, differing only in their custom policy file."""

    current_path: Path
    candidate_path: Path
    current: DecisionEngine
    candidate: DecisionEngine
    users: UserDirectory

    @classmethod
    def load(
        cls,
        current: str | Path | None,
        candidate: str | Path,
        settings: Settings | None = None,
    ) -> Replay:
        """Load both policy files (each validated, examples run); PolicyFileError if not."""
        settings = settings or Settings.load()
        current_path = Path(current) if current is not None else settings.policies_file
        users = UserDirectory.load(settings.users_file)
        engines = []
        for path in (current_path, Path(candidate)):
            engine = DecisionEngine.from_settings(settings, rate_limits=False)
            engine.policies = PolicyWatcher(path, known_roles=users.roles)
            engine.users = _ReplayUsers(users)  # type: ignore[assignment]
            engine.warm_up()  # RE2 builds its automata lazily: not inside the timed replay
            engines.append(engine)
        return cls(current_path, Path(candidate), engines[0], engines[1], users)

    def sampled_user(self, role: str, department: str) -> User:
        """A user standing for a sample row: a directory user with that role and department
        when there is one, else one made up with that role's admin standing."""
        for user in self.users.users.values():
            if user.role == role and user.department == department:
                return user
        spec = self.users.roles.get(role)
        admin = bool(spec and (spec.admin or "admin" in spec.permissions))
        perms = spec.permissions if spec else frozenset()
        return User(f"sample:{role}/{department}", "sampled", role, department, perms, admin, True)

    def example_rows(self) -> list[ReplayRow]:
        """Every example of every rule in both files, as a user the rule applies to."""
        rows: list[ReplayRow] = []
        seen: set[tuple[str, str, str]] = set()
        for rules in (self.current.policies.current, self.candidate.policies.current):
            for rule in rules:
                user = self._user_in_scope(rule.roles, rule.departments)
                for i, (kind, text) in enumerate(rule.examples):
                    key = (rule.id, kind, text)
                    if key in seen:
                        continue
                    seen.add(key)
                    expected = None if kind == "flag" else kind == "block"
                    rows.append(
                        ReplayRow("examples", f"{rule.id}.{kind}[{i}]", text, user, expected)
                    )
        return rows

    def _user_in_scope(
        self, roles: frozenset[str] | None, departments: frozenset[str] | None
    ) -> User:
        for user in self.users.users.values():
            role_ok = roles is None or user.role.casefold() in roles
            dept_ok = departments is None or user.department.casefold() in departments
            if role_ok and dept_ok:
                return user
        role = sorted(roles)[0] if roles else self.users.default_role
        dept = sorted(departments)[0] if departments else ""
        return self.sampled_user(role, dept)


def corpus_rows(directory: UserDirectory, folder: Path | None = None) -> list[ReplayRow]:
    """The labelled corpus as replay rows (tokens looked up in ``directory``)."""
    rows = load_corpus(folder) if folder is not None else load_corpus()
    return [
        ReplayRow("corpus", r.id, r.query, directory.lookup(r.user_token), not r.expected_approved)
        for r in rows
    ]


def sample_rows(data: Any, check: Replay) -> list[ReplayRow]:
    """Rows from an exported sample: the endpoint's JSON body, or a list of row objects
    (``text``, ``role``, ``department``). A malformed export is a ConfigError."""
    rows = data.get("rows") if isinstance(data, Mapping) else data
    if not isinstance(rows, list):
        raise ConfigError("the traffic sample must be the export's JSON body or a list of rows")
    out = []
    for i, row in enumerate(rows):
        if not (isinstance(row, Mapping) and isinstance(row.get("text"), str)):
            raise ConfigError(f"traffic sample row {i} has no 'text' string: {row!r:.80}")
        user = check.sampled_user(str(row.get("role", "")), str(row.get("department", "")))
        out.append(ReplayRow("sample", str(i), row["text"], user))
    return out


def fetch_sample(url: str, admin_token: str = "") -> Any:
    """The body of ``GET {url}/api/policies/traffic-sample`` (Bearer ``admin_token`` if set)."""
    import httpx

    headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
    r = httpx.get(url.rstrip("/") + "/api/policies/traffic-sample", headers=headers, timeout=30)
    if r.status_code != 200:
        raise ConfigError(f"traffic sample: {r.status_code} from {url}: {r.text[:200]}")
    return r.json()


def _decide(engine: DecisionEngine, row: ReplayRow) -> Decision:
    users: _ReplayUsers = engine.users  # type: ignore[assignment]
    token = row.user.token if users.directory.users.get(row.user.token) else users.add(row.user)
    return engine.decide(row.text, token)


def _blocking(decision: Decision) -> set[str]:
    return {f.policy_id for f in decision.blocking}


def _interval(hits: np.ndarray, rng: np.random.Generator, resamples: int) -> Interval:
    n = len(hits)
    if n == 0:
        return Interval(0.0, 0.0, 0.0, 0)
    means = hits[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Interval(float(hits.mean()), float(low), float(high), n)


def replay(
    check: Replay,
    rows: Sequence[ReplayRow] | None = None,
    *,
    sample: Iterable[ReplayRow] = (),
    fail_on: Sequence[str] = DEFAULT_FAIL_ON,
    resamples: int = 2000,
    seed: int = 0,
) -> ReplayReport:
    """Decide every row under both policies and report (see the module docstring).

    ``rows`` defaults to the labelled corpus and every rule's examples; ``sample`` adds
    unlabelled rows. Each row is timed under both policies, in alternating order.
    """
    unknown = [name for name in fail_on if name not in REGRESSIONS]
    if unknown:
        raise ConfigError(f"--fail-on {unknown[0]!r}: choose from {', '.join(REGRESSIONS)}")
    if rows is None:
        rows = corpus_rows(check.users) + check.example_rows()
    every = [*rows, *sample]
    counts: dict[str, int] = {}
    for row in every:
        counts[row.source] = counts.get(row.source, 0) + 1
    flips: list[Flip] = []
    blocked: dict[str, list[bool]] = {"current": [], "candidate": []}
    labels: list[bool] = []
    times: dict[str, list[int]] = {"current": [], "candidate": []}
    clock = time.perf_counter_ns
    for i, row in enumerate(every):
        order = ("current", "candidate") if i % 2 == 0 else ("candidate", "current")
        out: dict[str, Decision] = {}
        for name in order:
            engine = check.current if name == "current" else check.candidate
            t0 = clock()
            out[name] = _decide(engine, row)
            times[name].append(clock() - t0)
        a, b = out["current"], out["candidate"]
        if row.source == "corpus" and row.expected_blocked is not None:
            labels.append(row.expected_blocked)
            blocked["current"].append(not a.approved)
            blocked["candidate"].append(not b.approved)
        if a.approved != b.approved:
            direction = "new_block" if a.approved else "lost_block"
            changed = _blocking(b) - _blocking(a) if a.approved else _blocking(a) - _blocking(b)
            text = row.text if row.source == "sample" else mask(row.text)
            flips.append(
                Flip(
                    direction,
                    row.source,
                    row.id,
                    text,
                    tuple(sorted(changed)),
                    row.expected_blocked,
                )
            )
    rng = np.random.default_rng(seed)
    must_block = np.array(labels, dtype=bool)
    recall, fbr = {}, {}
    for name in ("current", "candidate"):
        got = np.array(blocked[name], dtype=bool)
        recall[name] = _interval(got[must_block].astype(float), rng, resamples)
        fbr[name] = _interval(got[~must_block].astype(float), rng, resamples)
    decision_us = {
        name: {
            "p50": float(np.percentile(ns, 50)) / 1e3 if ns else 0.0,
            "p90": float(np.percentile(ns, 90)) / 1e3 if ns else 0.0,
            "total_ms": sum(ns) / 1e6,
        }
        for name, ns in times.items()
    }
    regressions = []
    new_false = [f for f in flips if f.direction == "new_block" and f.expected_blocked is False]
    lost = [f for f in flips if f.direction == "lost_block"]
    new = [f for f in flips if f.direction == "new_block"]
    if "new-false-block" in fail_on and new_false:
        regressions.append(f"{len(new_false)} text(s) that must pass are newly blocked")
    if "lost-block" in fail_on and lost:
        regressions.append(f"{len(lost)} text(s) blocked today would pass")
    if "new-block" in fail_on and new:
        regressions.append(f"{len(new)} text(s) would be newly blocked")
    return ReplayReport(
        str(check.current_path),
        str(check.candidate_path),
        counts,
        tuple(flips),
        recall,
        fbr,
        decision_us,
        tuple(regressions),
        tuple(fail_on),
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m helpers.gateway.policy_check",
        description="Replay a candidate custom-policy file against the one in force.",
    )
    p.add_argument("--candidate", required=True, type=Path, help="the policy file to check")
    p.add_argument("--current", type=Path, help="the policy in force (default: settings)")
    p.add_argument("--sample", type=Path, help="an exported traffic sample (JSON)")
    p.add_argument("--sample-url", help="a gateway URL to export the sample from")
    p.add_argument("--no-corpus", action="store_true", help="skip the labelled corpus")
    p.add_argument(
        "--fail-on",
        default=",".join(DEFAULT_FAIL_ON),
        help=f"comma-separated regressions that fail the run ({', '.join(REGRESSIONS)}), or 'none'",
    )
    p.add_argument("--json", type=Path, help="write the JSON report here ('-' for stdout)")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    return p


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """The command line: 0 passed, 1 a regression, 2 a file or option that cannot be used."""
    args = _parser().parse_args(argv)
    fail_on = (
        ()
        if args.fail_on.strip() == "none"
        else tuple(name.strip() for name in args.fail_on.split(",") if name.strip())
    )
    try:
        check = Replay.load(args.current, args.candidate, settings)
        rows = check.example_rows()
        if not args.no_corpus:
            rows = corpus_rows(check.users) + rows
        sample: list[ReplayRow] = []
        if args.sample is not None:
            try:
                data = json.loads(args.sample.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"{args.sample}: cannot read the traffic sample ({exc})"
                ) from None
            sample = sample_rows(data, check)
        if args.sample_url:
            token = (settings or Settings.load()).admin_token.get()
            sample += sample_rows(fetch_sample(args.sample_url, token), check)
        report = replay(
            check, rows, sample=sample, fail_on=fail_on, resamples=args.resamples, seed=args.seed
        )
    except (PolicyFileError, ConfigError) as exc:
        print(f"policy check: {exc}", file=sys.stderr)
        return 2
    body = json.dumps(report.as_dict(), indent=2)
    if args.json is not None and str(args.json) == "-":
        print(body)
    else:
        if args.json is not None:
            args.json.write_text(body + "\n", encoding="utf-8")
        print(report.summary())
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
