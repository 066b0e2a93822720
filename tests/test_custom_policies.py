"""Custom policies: the shipped rules, scoping, validation messages and live reload."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.errors import PolicyFileError
from helpers.gateway.policies.custom_policies import CustomPolicySet, PolicyWatcher
from helpers.gateway.policies.rbac import User, UserDirectory

ENGINEER, ANALYST_FIN, ANALYST_MKT, SUPPORT, ADMIN = (
    "user-123", "user-234", "user-567", "user-345", "user-789",
)  # fmt: skip


@pytest.fixture(scope="module")
def users() -> UserDirectory:
    return UserDirectory.load()


@pytest.fixture(scope="module")
def shipped(users: UserDirectory) -> CustomPolicySet:
    return CustomPolicySet.load(known_roles=users.roles)


FIELD, CRM, CODE, MARK, EARN = (
    "support_customer_name_field", "support_crm_customer_names", "unreleased_code_names",
    "confidential_marker", "finance_unreleased_earnings",
)  # fmt: skip

SHIPPED_CASES = [
    # (user token, text, expected ids in file order)
    (SUPPORT, "Customer name: Jane Doe, she wants a refund for order #12345", [FIELD]),
    (SUPPORT, "customer_name=Jane please draft an apology", [FIELD]),
    (SUPPORT, "Draft a reply to Halvorsen Logistics about the late shipment", [CRM]),
    (SUPPORT, "okonkwo   &  sons asked for an invoice copy", [CRM]),
    (SUPPORT, "Customer name: Marisol Vega wants to cancel", [FIELD, CRM]),
    # the support-only rules do not apply to other roles
    (ENGINEER, "Customer name: Jane Doe, she wants a refund", []),
    (ANALYST_FIN, "Revenue from Halvorsen Logistics grew 4% in Q3", []),
    # a rule without scope applies to everyone, admins included
    (ENGINEER, "What is the launch checklist for Project Nightjar?", [CODE]),
    (ADMIN, "copperline beta feedback summary", [CODE]),
    (SUPPORT, "Is Halcyon Ridge compatible with version 2.3.1?", [CODE]),
    (ENGINEER, "Nightjars are birds; which ones live in Europe?", []),  # word boundary
    # warn-level marker
    (ENGINEER, "This deck is CONFIDENTIAL - summarise slide 3", [MARK]),
    (ANALYST_MKT, "Internal only: tighten the wording of this note", [MARK]),
    (ENGINEER, "Is our retention data handled confidentially?", []),
    # department-scoped rule: finance only
    (ANALYST_FIN, "Summarise our preliminary Q3 2024 revenue for the board", [EARN]),
    (ANALYST_FIN, "Draft talking points before the earnings call", [EARN]),
    (ANALYST_MKT, "Summarise our preliminary Q3 2024 revenue for the board", []),
    (ANALYST_FIN, "What did we report as Q2 revenue last quarter?", []),
    # several rules at once, reported in file order
    (SUPPORT, "Confidential: Halvorsen Logistics is piloting Nightjar", [CRM, CODE, MARK]),
    (ENGINEER, "", []),
]  # fmt: skip


@pytest.mark.parametrize(("token", "text", "expected"), SHIPPED_CASES)
def test_shipped_rules(
    users: UserDirectory, shipped: CustomPolicySet, token: str, text: str, expected: list[str]
) -> None:
    findings = shipped.evaluate(text, users.lookup(token))
    assert [f.policy_id for f in findings] == expected
    for f in findings:
        rule = next(r for r in shipped.rules if r.id == f.policy_id)
        assert (f.family, f.action, f.severity, f.reason) == (
            "custom",
            rule.action,
            rule.severity,
            rule.reason,
        )
        assert f.span is not None and f.span[0] < f.span[1]


def test_warn_rules_do_not_block(users: UserDirectory, shipped: CustomPolicySet) -> None:
    (finding,) = shipped.evaluate("strictly confidential", users.lookup(ENGINEER))
    assert finding.action == "warn" and not finding.blocks


# --- writing policy files ---------------------------------------------------------------------


def _write(path: Path, text: str, mtime_ns: int | None = None) -> Path:
    path.write_text(text, encoding="utf-8")
    if mtime_ns is not None:
        # Set the modification time explicitly so tests never depend on clock granularity.
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def _user(role: str = "engineer", department: str = "platform") -> User:
    return User("t", "T", role, department, frozenset(), False, True)


RULE = """
  - id: {id}
    keywords: [{kw}]
    action: block
    severity: high
    reason: says no
"""


def test_scopes_combine_with_and(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.yaml", """
rules:
  - id: both
    pattern: '(?i)secret plan'
    roles: [Analyst]
    departments: [Finance, legal]
    action: warn
    severity: medium
    reason: scoped
""")  # fmt: skip
    rules = CustomPolicySet.load(path)
    hits = lambda u: [f.policy_id for f in rules.evaluate("the SECRET PLAN", u)]  # noqa: E731
    assert hits(_user("analyst", "finance")) == ["both"]
    assert hits(_user("analyst", "LEGAL")) == ["both"]
    assert hits(_user("analyst", "marketing")) == []
    assert hits(_user("engineer", "finance")) == []


def test_keywords_are_word_bounded_and_caseless(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "p.yaml",
        "rules:" + RULE.format(id="kw", kw="'ACME  Corp', 'customer id:', Zürich"),
    )
    rules = CustomPolicySet.load(path)
    hits = lambda t: [f.policy_id for f in rules.evaluate(t, _user())]  # noqa: E731
    assert hits("a note about acme corp today") == ["kw"]
    assert hits("Customer ID: 17") == ["kw"]
    assert hits("offices in zürich") == ["kw"]
    assert hits("acmecorp and acme corporation") == []
    assert hits("Zürichsee") == []


def test_disabled_rules_are_loaded_but_not_evaluated(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "p.yaml", "rules:" + RULE.format(id="muted", kw="x1") + "    enabled: false\n"
    )
    rules = CustomPolicySet.load(path)
    assert [r.id for r in rules.rules] == ["muted"]
    assert rules.evaluate("x1", _user()) == []


def test_rules_that_cannot_be_combined_still_work(tmp_path: Path) -> None:
    # Two patterns using the same group name cannot share one alternation.
    path = _write(tmp_path / "p.yaml", """
rules:
  - {id: a, pattern: '(?P<n>alpha)', action: warn, severity: low, reason: a}
  - {id: b, pattern: '(?P<n>beta)', action: warn, severity: low, reason: b}
""")  # fmt: skip
    rules = CustomPolicySet.load(path)
    assert [f.policy_id for f in rules.evaluate("beta then alpha", _user())] == ["a", "b"]
    assert rules.evaluate("gamma", _user()) == []


def test_empty_rule_list_is_valid(tmp_path: Path) -> None:
    rules = CustomPolicySet.load(_write(tmp_path / "p.yaml", "rules: []\n"))
    assert len(rules) == 0 and rules.evaluate("anything", _user()) == []


BASE = "  - id: r1\n    action: block\n    severity: high\n    reason: nope\n"
R = "rules:\n" + BASE  # one valid rule head, still missing pattern/keywords
KW = "    keywords: [a]\n"


def _base(old: str, new: str) -> str:
    return "rules:\n" + BASE.replace(old, new)


BAD_FILES = [
    # (file text, rule named in the error, words the problem must contain)
    (R + KW + "    acton: warn\n", "r1", "unknown key 'acton'"),
    (_base("block", "deny") + KW, "r1", "must be one of block, require_approval, warn, log"),
    (_base("high", "urgent") + KW, "r1", "'severity' must be one of"),
    (R + "    pattern: '(?<=x)y'\n", "r1", "not a valid RE2 regular expression: invalid perl"),
    (R + "    pattern: 'a('\n", "r1", "missing )"),
    (R + "    pattern: 'x*'\n", "r1", "matches the empty string"),
    (R + "    keywords: []\n", "r1", "'keywords' must not be an empty list"),
    (R + "    keywords: ['ok', '']\n", "r1", "'keywords[1]' must not be empty"),
    (R + "    keywords: nightjar\n", "r1", "'keywords' must be a list"),
    (R + KW + "    pattern: b\n", "r1", "exactly one of 'pattern' or 'keywords' (both"),
    (R, "r1", "exactly one of 'pattern' or 'keywords' (neither"),
    (R + KW + BASE + "    keywords: [b]\n", "r1", "duplicate id 'r1' (rule #2)"),
    (R + KW + "    roles: support\n", "r1", "'roles' must be a list"),
    (R + KW + "    roles: [suport]\n", "r1", "did you mean 'support'"),
    (R + KW + "    departments: []\n", "r1", "'departments' must not be an empty list"),
    (R + KW + "    enabled: maybe\n", "r1", "'enabled' must be true or false"),
    (_base("reason: nope", "reason: 42") + KW, "r1", "'reason' must be a string"),
    (_base("reason: nope", "reason: no") + KW, "r1", "quote it"),
    (_base("id: r1", "id: sys_pii_ssn") + KW, "sys_pii_ssn", "reserved"),
    (_base("id: r1", "id: 'two words'") + KW, "two words", "'id' must start"),
    (_base("- id: r1\n    action", "- action") + KW, "#1", "missing required key 'id'"),
    (R + KW + "  - just a string\n", "#2", "the rule must be a mapping"),
    (R + "    keywords: [a, b\n", None, "YAML syntax error at line 7"),
    ("rules: {r1: 1}\n", None, "'rules' must be a list"),
    ("policies: []\n", None, "unknown key 'policies'"),
    ("", None, "must hold a mapping, not nothing"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "rule", "problem"), BAD_FILES)
def test_invalid_files_name_file_rule_and_problem(
    tmp_path: Path, text: str, rule: str | None, problem: str
) -> None:
    path = _write(tmp_path / "policies.yaml", text)
    with pytest.raises(PolicyFileError) as info:
        CustomPolicySet.load(path, known_roles=["support", "engineer"])
    err = info.value
    assert err.path == str(path) and str(path) in str(err)
    assert err.rule == rule
    assert problem in err.problem, err.problem


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="cannot read"):
        CustomPolicySet.load(tmp_path / "nope.yaml")


# --- reload -----------------------------------------------------------------------------------


class Tick:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_reload_swaps_in_a_changed_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.yaml", "rules:" + RULE.format(id="one", kw="alpha"), 1_000_000_000)
    tick = Tick()
    watcher = PolicyWatcher(path, clock=tick)
    old = watcher.current
    _write(path, "rules:" + RULE.format(id="two", kw="beta"), 2_000_000_000)

    assert watcher.reload_if_changed() is False  # throttled: checked less than 1 s ago
    tick.now += 1.0
    assert watcher.reload_if_changed() is True
    assert [r.id for r in watcher.current.rules] == ["two"]
    assert [f.policy_id for f in watcher.evaluate("beta", _user())] == ["two"]
    assert [r.id for r in old.rules] == ["one"]  # the old set is untouched (in-flight requests)
    tick.now += 1.0
    assert watcher.reload_if_changed() is False  # unchanged file: no reload
    assert watcher.reloads == 1


def test_reload_keeps_the_old_set_on_a_bad_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.yaml", "rules:" + RULE.format(id="one", kw="alpha"), 1_000_000_000)
    tick = Tick()
    watcher = PolicyWatcher(path, clock=tick)
    _write(path, "rules:\n  - id: broken\n    pattern: '(?<=x)'\n", 2_000_000_000)
    tick.now += 5
    assert watcher.reload_if_changed() is False
    assert [r.id for r in watcher.current.rules] == ["one"]
    assert watcher.last_error is not None and watcher.last_error.rule == "broken"
    assert "error" in repr(watcher)

    # Deleting the file is also a bad file: the rules stay.
    path.unlink()
    tick.now += 5
    assert watcher.reload_if_changed() is False
    assert [r.id for r in watcher.current.rules] == ["one"]

    # A good file clears the error.
    _write(path, "rules:" + RULE.format(id="three", kw="gamma"), 3_000_000_000)
    assert watcher.reload_if_changed(force=True) is True
    assert watcher.last_error is None and [r.id for r in watcher.current.rules] == ["three"]


def test_watcher_refuses_a_bad_file_at_start(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.yaml", "rules:\n  - id: x\n")
    with pytest.raises(PolicyFileError):
        PolicyWatcher(path)


def test_repr_and_rules(shipped: CustomPolicySet) -> None:
    assert "5 rules" in repr(shipped)
    assert "support_crm_customer_names block high 7 keywords roles=['support']" in repr(
        shipped.rules[1]
    )
