"""A custom rule's own tests (``examples``), and the file errors that name file, rule and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.errors import PolicyFileError
from helpers.gateway.policies.custom_policies import CustomPolicySet, PolicyWatcher
from helpers.gateway.policies.rbac import User

HEAD = """rules:
  - id: codename
    keywords: [Nightjar]
    action: {action}
    severity: high
    reason: code names stay inside
"""


def _rule(examples: str, action: str = "block") -> str:
    return HEAD.format(action=action) + examples


def _user() -> User:
    return User("t", "T", "engineer", "platform", frozenset(), False, True)


def test_the_shipped_rules_carry_examples_and_pass_them() -> None:
    rules = CustomPolicySet.load()
    assert all(rule.examples for rule in rules), [r.id for r in rules if not r.examples]
    kinds = {kind for rule in rules for kind, _ in rule.examples}
    assert kinds == {"block", "flag", "allow"}


def test_examples_are_kept_on_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_rule("    examples:\n      block: [Ship Nightjar]\n      allow: [a bird]\n"))
    (rule,) = CustomPolicySet.load(path)
    assert rule.examples == (("block", "Ship Nightjar"), ("allow", "a bird"))
    path.write_text(_rule("    examples:\n      flag: [Nightjar]\n", action="warn"))
    (rule,) = CustomPolicySet.load(path)  # a warn rule's examples fire without stopping
    assert rule.examples == (("flag", "Nightjar"),)


BAD = [
    # (examples block, action, line named, words the problem must contain)
    ("    examples:\n      block: [Nightjar, 'what a lovely day']\n", "block", 8,
     "examples.block[1] 'what a lovely day' is not matched by the rule's pattern: the rule "
     "would not stop it"),
    ("    examples:\n      allow:\n        - fine\n        - Project NIGHTJAR status\n", "block",
     10, "examples.allow[1] 'Project NIGHTJAR status' must pass but the pattern matches it at "
     "characters 8-16 ('NIGHTJAR')"),
    ("    examples:\n      block: [Nightjar]\n", "warn", 8, "it never blocks; list the texts"),
    ("    examples:\n      flag: [Nightjar]\n", "block", 8, "under 'block', not 'flag'"),
    ("    examples: [Nightjar]\n", "block", 7, "'examples' must be a mapping"),
    ("    examples:\n      must_block: [Nightjar]\n", "block", 8,
     "unknown key 'must_block' in 'examples'"),
    ("    examples:\n      block: Nightjar\n", "block", 8, "'examples.block' must be a list"),
    ("    examples:\n      block: []\n", "block", 8, "'examples.block' must not be an empty"),
    ("    examples:\n      allow: [fine, 42]\n", "block", 8, "'examples.allow[1]' must be a"),
    ("    examples: {}\n", "block", 7, "'examples' is empty"),
]  # fmt: skip


@pytest.mark.parametrize(("examples", "action", "line", "problem"), BAD)
def test_a_failing_or_malformed_example_refuses_the_file(
    tmp_path: Path, examples: str, action: str, line: int, problem: str
) -> None:
    path = tmp_path / "policies.yaml"
    path.write_text(_rule(examples, action))
    with pytest.raises(PolicyFileError) as info:
        CustomPolicySet.load(path)
    err = info.value
    assert err.path == str(path) and err.rule == "codename"
    assert err.problem.startswith(f"line {line}: "), err.problem
    assert problem in err.problem, err.problem


PATTERNS = [
    # (pattern, words the problem must contain)
    (r"[^\s\S]", "can never match any text"),
    (r"x[^\x00-\x{10FFFF}]", "can never match any text"),
    ("[a-z]{1000}" * 6, "too costly: its RE2 program has 6004 instructions"),
    (r"\pL{1000}\pL{1000}\pL{1000}", "too costly for RE2"),
]


@pytest.mark.parametrize(("pattern", "problem"), PATTERNS)
def test_patterns_that_never_match_or_cost_too_much_are_refused(
    tmp_path: Path, pattern: str, problem: str
) -> None:
    path = tmp_path / "policies.yaml"
    path.write_text(
        "rules:\n  - id: r\n    action: warn\n    severity: low\n    reason: x\n"
        f"    pattern: '{pattern}'\n"
    )
    with pytest.raises(PolicyFileError) as info:
        CustomPolicySet.load(path)
    assert info.value.rule == "r" and info.value.problem.startswith("line 6: ")
    assert problem in info.value.problem, info.value.problem


def test_nothing_half_loads_and_the_running_rules_stay(tmp_path: Path) -> None:
    path = tmp_path / "policies.yaml"
    path.write_text(_rule("    examples:\n      block: [Nightjar]\n"))
    watcher = PolicyWatcher(path, min_interval_s=0)
    good = watcher.current
    # A second, valid rule before a rule whose example fails: neither is loaded.
    path.write_text(
        "rules:\n  - {id: other, keywords: [Copperline], action: block, severity: high, "
        "reason: r}\n" + _rule("    examples:\n      allow: [Nightjar today]\n")[7:]
    )
    assert watcher.reload_if_changed(force=True) is False
    assert watcher.current is good and [r.id for r in watcher.current] == ["codename"]
    assert watcher.last_error is not None and "examples.allow[0]" in str(watcher.last_error)
    assert [f.policy_id for f in watcher.evaluate("Copperline and Nightjar", _user())] == [
        "codename"
    ]


def test_the_gateway_refuses_a_reload_whose_example_fails(make_gateway, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import httpx

    path = tmp_path / "policies.yaml"
    path.write_text(_rule("    examples:\n      block: [Nightjar]\n"))
    gw = make_gateway(policies_file=path)
    body = {"user_token": "user-123", "client_id": "acme", "query": "Nightjar today"}
    path.write_text(_rule("    examples:\n      allow: [Nightjar today]\n"))
    with httpx.Client(base_url=gw.url, timeout=10) as http:
        r = http.post("/api/policies/reload")
        assert r.status_code == 400
        error = r.json()["error"]
        assert "previous rules stay active" in error and "rule 'codename'" in error
        assert "line 8" in error and "examples.allow[0] 'Nightjar today'" in error
        assert http.post("/api/policy/pre-check", json=body).json()["policies"] == ["codename"]
