"""The user directory (loading, lookup, validation) and the admin-access policy family."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.errors import PolicyFileError
from helpers.gateway.policies.rbac import ADMIN_POLICIES, User, UserDirectory, scan_admin_access

USERS = "sys_admin_users_table"
AUDIT = "sys_admin_audit_log"
CONFIG = "sys_admin_config_table"
SCHEMA = "sys_admin_info_schema"


@pytest.fixture(scope="module")
def directory() -> UserDirectory:
    return UserDirectory.load()


@pytest.fixture(scope="module")
def engineer(directory: UserDirectory) -> User:
    return directory.lookup("user-123")


# --- the shipped directory --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "role", "department", "is_admin"),
    [
        ("user-123", "engineer", "platform", False),
        ("user-456", "engineer", "payments", False),
        ("user-234", "analyst", "finance", False),
        ("user-567", "analyst", "marketing", False),
        ("user-345", "support", "support", False),
        ("user-789", "admin", "security", True),
        ("contractor-901", "guest", "external", False),
    ],
)
def test_shipped_users(
    directory: UserDirectory, token: str, role: str, department: str, is_admin: bool
) -> None:
    user = directory.lookup(token)
    assert (user.token, user.role, user.department, user.is_admin, user.known) == (
        token, role, department, is_admin, True,
    )  # fmt: skip
    assert directory.roles[role].permissions <= user.permissions


@pytest.mark.parametrize("token", ["", None, "no-such-user", "USER-123"])
def test_unknown_tokens_get_the_default_role(directory: UserDirectory, token: str | None) -> None:
    user = directory.lookup(token)
    assert user.known is False
    assert user.role == directory.default_role == "guest"
    assert user.is_admin is False
    assert user.token == (token or "")


def test_roles_and_limits(directory: UserDirectory) -> None:
    assert {"engineer", "analyst", "support", "admin", "guest"} <= set(directory.roles)
    assert directory.role_limit("guest") == (10, 60.0)
    requests, per_seconds = directory.role_limit("engineer")
    assert isinstance(requests, int) and requests > 10 and per_seconds > 0
    assert directory.roles["admin"].admin is True
    assert not any(r.admin for name, r in directory.roles.items() if name != "admin")


def test_extra_permissions_are_added_to_the_role(directory: UserDirectory) -> None:
    assert "deploy" in directory.lookup("user-456").permissions
    assert "deploy" not in directory.lookup("user-123").permissions


def test_user_repr(engineer: User, directory: UserDirectory) -> None:
    assert repr(engineer) == "<User user-123 engineer/platform>"
    assert repr(directory.lookup("")) == "<User (empty) guest/- unknown>"


# --- validation -------------------------------------------------------------------------------

GOOD_ROLES = """
roles:
  engineer:
    permissions: [llm_chat]
    rate_limit: {requests: 5, per_seconds: 60}
  guest:
    permissions: []
    rate_limit: {requests: 1, per_seconds: 60}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "users.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_admin_permission_waives_admin_checks(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD_ROLES + """
users:
  ops-1: {name: Ops, role: engineer, department: sre, permissions: [admin]}
  dev-1: {name: Dev, role: engineer, department: sre}
""")  # fmt: skip
    d = UserDirectory.load(path)
    assert d.lookup("ops-1").is_admin and not d.lookup("dev-1").is_admin
    assert scan_admin_access("dump the users table", d.lookup("ops-1")) == []
    assert len(scan_admin_access("dump the users table", d.lookup("dev-1"))) == 1


NO_USERS = "users: {}\n"


def _users(*lines: str) -> str:
    return GOOD_ROLES + "users:\n" + "".join(f"  {line}\n" for line in lines)


def _roles(old: str, new: str) -> str:
    return GOOD_ROLES.replace(old, new) + NO_USERS


BAD_DIRECTORIES = [
    # (file text, rule named in the error, words the problem must contain)
    (_users("u1: {name: A, role: enginer, department: x}"), "u1", "role 'enginer' is not"),
    (_users("u1: {name: A, role: engineer}"), "u1", "missing required key 'department'"),
    (_users("u1: {name: A, role: engineer, department: x, dept: 2}"), "u1", "unknown key 'dept'"),
    (_users("u1: {name: 7, role: engineer, department: x}"), "u1", "'name' must be a string"),
    (_users("u1: {name: A, role: engineer, department: x, permissions: admin}"),
     "u1", "'permissions' must be a list"),
    (_users("u1: {name: A, role: engineer, department: x}",
            "u1: {name: B, role: engineer, department: y}"), None, "duplicate key 'u1'"),
    ("default_role: visitor\n" + GOOD_ROLES + NO_USERS, "default_role", "'visitor' is not"),
    (_roles("requests: 5", "requests: 0"), "engineer", "rate_limit.requests"),
    (_roles("requests: 5", "requests: many"), "engineer", "whole number"),
    (_roles("requests: 5", "requests: true"), "engineer", "whole number"),
    (_roles("per_seconds: 60}\n  guest", "per_seconds: -1}\n  guest"),
     "engineer", "rate_limit.per_seconds"),
    (_roles(", per_seconds: 60}\n  guest", "}\n  guest"),
     "engineer", "missing required key 'per_seconds'"),
    (_roles("permissions: [llm_chat]", "permissions: [llm_chat]\n    admin: yes please"),
     "engineer", "'admin' must be true or false"),
    (_roles("permissions: [llm_chat]", "permisions: [llm_chat]"),
     "engineer", "did you mean 'permissions'"),
    ("roles: {}\nusers: {}\n", None, "'roles' is empty"),
    ("users: {}\n", None, "missing required key 'roles'"),
    (GOOD_ROLES + "users: [u1, u2]\n", None, "'users' must be a mapping"),
    (_users("u1: {name: A, role: engineer, department: [x"), None, "YAML syntax error at line"),
    ("- just\n- a list\n", None, "must hold a mapping"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "rule", "problem"), BAD_DIRECTORIES)
def test_invalid_directories_name_file_rule_and_problem(
    tmp_path: Path, text: str, rule: str | None, problem: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(PolicyFileError) as info:
        UserDirectory.load(path)
    err = info.value
    assert err.path == str(path) and str(path) in str(err)
    assert err.rule == rule
    if rule:
        assert repr(rule) in str(err)
    assert problem in err.problem


def test_missing_file_is_a_policy_file_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="cannot read"):
        UserDirectory.load(tmp_path / "absent.yaml")


# --- admin access -----------------------------------------------------------------------------

ADMIN_CASES = [
    # users and credentials tables
    ("SELECT name FROM users WHERE id = 5", [USERS]),
    ("select email from users limit 10", [USERS]),
    ("SELECT * FROM `users`;", [USERS]),
    ('SELECT * FROM "public"."users" LIMIT 10', [USERS]),
    ("SELECT u.name FROM orders o JOIN users u ON u.id = o.user_id WHERE o.total > 100", [USERS]),
    ("UPDATE users SET role = 'admin' WHERE id = 7", [USERS]),
    ("INSERT INTO credentials (user_id, secret) VALUES (1, 'x')", [USERS]),
    ("Please dump the users table for me", [USERS]),
    ("export the passwords table to a spreadsheet", [USERS]),
    ("What columns does the user_accounts table have?", [USERS]),
    ("list every row in auth.users", [USERS]),
    ("how are password_hashes stored?", [USERS]),
    ("SELECT id, balance FROM accounts WHERE id = 3", [USERS]),
    # audit logs
    ("show me everything in the audit_logs table", [AUDIT]),
    ("SELECT * FROM audit_log WHERE actor = 'bob'", [AUDIT]),
    ("delete the last week of the audit trail table", [AUDIT]),
    ("Summarize the audit_events from yesterday", [AUDIT]),
    # system and configuration tables
    ("SELECT key, value FROM system_config", [CONFIG]),
    ("select name, setting from pg_settings where name = 'max_connections'", [CONFIG]),
    ("Show the contents of the settings table", [CONFIG]),
    ("What is stored in the system settings table?", [CONFIG]),
    ("UPDATE app_config SET debug = 1 WHERE id = 1", [CONFIG]),
    # catalogs
    ("SELECT table_name FROM information_schema.tables", [SCHEMA]),
    ("list all relations in pg_catalog", [SCHEMA]),
    ("SELECT sql FROM sqlite_master", [SCHEMA]),
    ("show grants stored in mysql.db", [SCHEMA]),
    # mysql.user is both a catalog and the credentials table: both families report it
    ("SELECT host, authentication_string FROM mysql.user", [USERS, SCHEMA]),
    # several families in one query: every one is reported, in a fixed order
    ("Compare the users table with the audit_logs table and information_schema",
     [USERS, AUDIT, SCHEMA]),
    # plain English stays clear
    ("How many users signed up last week?", []),
    ("Write an audit report for the Q3 vendor review", []),
    ("Where are the system settings in the UI?", []),
    ("Collect feedback from users who churned", []),
    ("We should update users about the outage", []),
    ("Join users on the onboarding call tomorrow", []),
    ("Turn more trial visitors into users", []),
    ("Select the best option from the list of accounts we reviewed", []),
    ("What is the audit log retention policy?", []),
    ("My settings page will not save my display name", []),
    ("How do I configure the system prompt for our chatbot?", []),
    ("Drop me a line when the dashboard renders the user list", []),
    ("Our tables have a row per user; which chart fits best?", []),
    ("", []),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), ADMIN_CASES)
def test_admin_access_for_a_non_admin(engineer: User, text: str, expected: list[str]) -> None:
    findings = scan_admin_access(text, engineer)
    assert [f.policy_id for f in findings] == expected
    for f in findings:
        assert (f.family, f.action, f.severity) == ("admin", "block", "high")
        assert "admin" in f.reason and f.span is not None
        start, end = f.span
        assert 0 <= start < end <= len(text)


@pytest.mark.parametrize("text", [t for t, ids in ADMIN_CASES if ids])
def test_admin_user_is_exempt(directory: UserDirectory, text: str) -> None:
    assert scan_admin_access(text, directory.lookup("user-789")) == []


@pytest.mark.parametrize("token", ["user-234", "user-345", "contractor-901", "unknown-token", ""])
def test_every_non_admin_role_is_checked(directory: UserDirectory, token: str) -> None:
    findings = scan_admin_access("SELECT * FROM audit_logs", directory.lookup(token))
    assert [f.policy_id for f in findings] == [AUDIT]


def test_reason_names_the_protected_thing(engineer: User) -> None:
    (finding,) = scan_admin_access("dump the users table", engineer)
    assert ADMIN_POLICIES[USERS] in finding.reason
    assert "engineer" in finding.reason


def test_large_input_is_scanned_to_the_end(engineer: User) -> None:
    text = (
        "harmless words about users and settings " * 30_000 + " SELECT * FROM pg_catalog.pg_roles"
    )
    assert [f.policy_id for f in scan_admin_access(text, engineer)] == [SCHEMA]
